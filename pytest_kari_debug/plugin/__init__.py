"""The pytest plugin's entry point (``pytest11``: ``kari_debug``), lazy by design.

It registers the options and ini keys, the markers, the fixtures and the hook specifications,
and nothing else: the features (``core`` and one module per feature) and everything they use
(the components, the store, the exporters, the report) are imported and registered only when a
run asks for the plugin -- a ``--kari-*`` flag or ``kari_*`` ini key, a test using a kari
fixture or marker, or an xdist worker sending a test's record. A run that does not ask pays
for one look at the collected tests.

The package's own modules are imported as Python imports them outside pytest, not through
pytest's assertion rewriter (PYTEST_DONT_REWRITE): see :class:`OwnModulesFinder`.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Sequence
from functools import partial
from importlib import machinery
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest


class OwnModulesFinder:
    """Finds the package's submodules with Python's own path finder, ahead of pytest's.

    pytest puts every module of a plugin's distribution under its assertion rewriter, whose
    import path costs about 0.3 ms a module: a third of a ``--kari-debug`` run's start-up for
    the hundred modules the features import. The package's asserts only narrow types for the
    type checker, so rewriting them changes nothing; its modules load as they do outside pytest.
    """

    prefix = f"{__name__.split('.', 1)[0]}."

    @classmethod
    def find_spec(
        cls, name: str, path: Sequence[str] | None = None, target: object = None
    ) -> ModuleSpec | None:
        """The spec of a submodule of the package, as ``sys.path``'s finders give it."""
        if path is None or not name.startswith(cls.prefix):
            return None
        return PathFinder.find_spec(name, path)

    @classmethod
    def install(cls) -> None:
        """Put the finder first in ``sys.meta_path`` (pytest inserts its hook at the front)."""
        if sys.meta_path and sys.meta_path[0] is cls:
            return
        if cls in sys.meta_path:
            sys.meta_path.remove(cls)
        sys.meta_path.insert(0, cls)

    @classmethod
    def adopt(cls) -> None:
        """Give the package's modules imported before the finder (pytest imports the package,
        ``lazy`` and this module when it loads the plugin) the loader ``sys.path``'s finders
        give them, in place of pytest's assertion rewriter.

        The rewriter holds pytest's config, and every module of the package reaches one of
        those three: at the process's exit the whole run (config, session, every test item and
        report) would outlive the first collection of the interpreter's module teardown, and
        the next collection would walk it all again.
        """
        top = cls.prefix[:-1]
        modules = sys.modules
        # A copy first: another thread may import while the entry module loads.
        for name in [top, *(name for name in list(modules) if name.startswith(cls.prefix))]:
            module = modules.get(name)
            spec = getattr(module, "__spec__", None)
            if module is None or spec is None or isinstance(spec.loader, _PYTHONS_LOADERS):
                continue
            path = None
            if name != top:
                path = getattr(modules.get(name.rpartition(".")[0]), "__path__", None)
                if path is None:
                    continue
            found = PathFinder.find_spec(name, path)
            if found is not None and found.loader is not None and found.origin == spec.origin:
                spec.loader = module.__loader__ = found.loader


#: The loaders Python's path finder gives a module (see :meth:`OwnModulesFinder.adopt`).
_PYTHONS_LOADERS = (
    machinery.SourceFileLoader, machinery.SourcelessFileLoader, machinery.ExtensionFileLoader,
)  # fmt: skip

OwnModulesFinder.install()
OwnModulesFinder.adopt()

from .options import KARI_FIXTURES, KARI_MARKERS, add_options, asked_for, option_bool  # noqa: E402

if TYPE_CHECKING:
    from ..alerting import AlertManager
    from ..errors import ErrorTracker
    from ..logger import ExtensionLogger
    from ..manager import ExtensionDebugManager
    from ..metrics import MetricsCollector
    from ..profiler import PerformanceProfiler
    from ..tracing import ExtensionTracer

#: The feature plugins, in the order they are registered (the core first).
FEATURES = (
    "pytest_kari_debug.plugin.core",
    "pytest_kari_debug.plugin.sharing",
    "pytest_kari_debug.plugin.logcapture",
    "pytest_kari_debug.plugin.errors",
    "pytest_kari_debug.plugin.tracing",
    "pytest_kari_debug.plugin.gates",
    "pytest_kari_debug.plugin.alerts",
    "pytest_kari_debug.plugin.metrics",
    "pytest_kari_debug.plugin.profiling",
    "pytest_kari_debug.plugin.report",
    "pytest_kari_debug.plugin.markdown",
    "pytest_kari_debug.plugin.junit",
    "pytest_kari_debug.plugin.hangdump",
    "pytest_kari_debug.plugin.serve",
)
WATCHER = "kari-debug-record-watcher"

_INI_DEFAULTS: dict[str, Any] = {}
_ACTIVE = pytest.StashKey[bool]()
_SESSION = pytest.StashKey[pytest.Session]()
#: When the session started (the run's start even when the features come later).
SESSION_STARTED = pytest.StashKey[float]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the ``pytest_kari_debug_*`` hook specifications."""
    from .. import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``kari-debug`` option group and its ini twins."""
    _INI_DEFAULTS.update(add_options(parser))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; bring the features in when an option asks for them."""
    for text in KARI_MARKERS.values():
        config.addinivalue_line("markers", text)
    if asked_for(config, _INI_DEFAULTS):
        activate(config)
    elif not hasattr(config, "workerinput") and config.getoption("dist", "no") != "no":
        # An xdist controller collects no test: its workers' records say they were asked.
        config.pluginmanager.register(RecordWatcher(config), WATCHER)


def is_active(config: pytest.Config) -> bool:
    """Whether the features are registered in this run."""
    return config.stash.get(_ACTIVE, False)


def activate(config: pytest.Config, session: pytest.Session | None = None) -> None:
    """Import and register the features (once per run).

    pytest replays ``pytest_configure`` to a plugin registered after it; a *session* that has
    already started is replayed to them here.
    """
    if config.stash.get(_ACTIVE, False):
        return
    config.stash[_ACTIVE] = True
    manager = config.pluginmanager
    watcher = manager.get_plugin(WATCHER)
    if watcher is not None:
        manager.unregister(watcher, WATCHER)
    before = set(manager.get_plugins())
    OwnModulesFinder.install()
    from .githead import start_git_head

    start_git_head(config)  # git answers for the run's metadata while the features import
    for name in FEATURES:
        # Not import_plugin: it marks each module for assertion rewriting, and warns about
        # those already imported (the core imports some of the others).
        if not manager.is_blocked(name) and manager.get_plugin(name) is None:
            manager.register(_hooks_only(importlib.import_module(name)), name)
    if session is not None:
        _replay(manager, "pytest_sessionstart", before, {"session": session})


def _hooks_only(module: ModuleType) -> ModuleType:
    """*module*, its ``dir()`` listing only its hook implementations (``pytest_*``).

    pytest looks at every name a plugin's ``dir()`` lists for a fixture (a few µs a name)
    and pluggy for a hook: a feature module's imports and helpers are hundreds of names, and
    a feature defines no fixture (the entry module does).
    """
    namespace = module.__dict__
    if "__dir__" not in namespace:
        namespace["__dir__"] = partial(_hook_names, namespace)
    return module


def _hook_names(namespace: dict[str, Any]) -> list[str]:
    return sorted(name for name in namespace if name.startswith("pytest_"))


def _replay(
    manager: pytest.PytestPluginManager, hook: str, before: set[object], kwargs: dict[str, Any]
) -> None:
    """Call *hook* with *kwargs* on the plugins registered since *before* (the features)."""
    manager.subset_hook_caller(hook, remove_plugins=before)(**kwargs)


@pytest.hookimpl(trylast=True)  # after pytest's garbage collection at unconfigure
def pytest_unconfigure(config: pytest.Config) -> None:
    """Reap the git process a run that recorded no test never asked (see ``githead``); at
    the end of the process's own run, under ``--kari-exit-freeze``, freeze what is left for its
    exit (see ``exitheap``)."""
    if is_active(config):
        from .githead import GIT_HEAD

        probe = config.stash.get(GIT_HEAD, None)
        if probe is not None:
            probe.close()
        if option_bool(config, "exit_freeze"):  # else not even imported
            from .exitheap import freeze_for_exit

            freeze_for_exit(config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Note when the run started (its features may come later)."""
    session.config.stash[SESSION_STARTED] = time.time()
    session.config.stash[_SESSION] = session


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Bring the features in when a collected test uses a kari fixture or marker."""
    if is_active(config) or not _uses_kari(items):
        return
    before = set(config.pluginmanager.get_plugins())
    activate(config, session)
    kwargs = {"session": session, "config": config, "items": items}
    _replay(config.pluginmanager, "pytest_collection_modifyitems", before, kwargs)


def _uses_kari(items: Sequence[pytest.Item]) -> bool:
    """Whether a test requests a kari fixture or carries a ``kari_*`` marker (its own or a
    parent's: each parent is looked at once)."""
    seen: set[int] = set()
    for item in items:
        if not KARI_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            return True
        node: pytest.Item | pytest.Collector | None = item
        while node is not None and id(node) not in seen:
            seen.add(id(node))
            for mark in node.own_markers:
                if mark.name.startswith("kari_"):
                    return True
            node = node.parent
    return False


class RecordWatcher:
    """On an xdist controller the plugin was not asked for: the first test record a worker
    sends brings the features in (and goes to the run's records)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Activate on the first report that carries a kari record."""
        if report.when != "teardown" or not hasattr(report, "kari_debug"):
            return
        config = self.config
        activate(config, config.stash.get(_SESSION, None))
        recorder = config.pluginmanager.get_plugin("kari-debug-recorder")
        if recorder is not None:
            recorder.pytest_runtest_logreport(report=report)


# Fixtures: requesting one works without --kari-debug. ------------------------------------
def _manager(request: pytest.FixtureRequest) -> ExtensionDebugManager:
    activate(request.config, request.session)
    from .core import fixture_manager

    return fixture_manager(request)


@pytest.fixture
def kari_debug(request: pytest.FixtureRequest) -> ExtensionDebugManager:
    """The debug manager of this test's extension; the test runs in one of its sessions."""
    return _manager(request)


@pytest.fixture
def kari_logger(kari_debug: ExtensionDebugManager) -> ExtensionLogger:
    """The structured logger of this test's extension."""
    return kari_debug.get_logger()


@pytest.fixture
def kari_metrics(kari_debug: ExtensionDebugManager) -> MetricsCollector:
    """The metrics collector of this test's extension."""
    return kari_debug.get_metrics_collector()


@pytest.fixture
def kari_errors(kari_debug: ExtensionDebugManager) -> ErrorTracker:
    """The error tracker of this test's extension."""
    return kari_debug.get_error_tracker()


@pytest.fixture
def kari_profiler(kari_debug: ExtensionDebugManager) -> PerformanceProfiler:
    """The profiler of this test's extension."""
    return kari_debug.get_profiler()


@pytest.fixture
def kari_tracer(kari_debug: ExtensionDebugManager) -> ExtensionTracer:
    """The tracer of this test's extension."""
    return kari_debug.get_tracer()


@pytest.fixture
def kari_alerts(kari_debug: ExtensionDebugManager) -> AlertManager:
    """The alert manager of this test's extension."""
    return kari_debug.get_alert_manager()
