"""Core of the plugin: settings, per-test debug sessions and their records, the end of the run
(outputs, JSON, terminal summary), fixtures. Keeping records and the run's metadata: `records`."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .. import memtrace, selfcost
from ..config import LINE_LISTS, DebugConfiguration, field_names, parse_field
from ..exceptions import ConfigurationError, KariDebugAssertion
from ..exporters.json_export import stream_run_json, summary_of
from ..journal import (
    RunJournal,
    line_of,
)
from ..manager import ExtensionDebugManager
from ..model import SCHEMA_VERSION, records_of
from ..storage import dumps
from ..summaries import RunSections, run_sections
from .committer import close_committer
from .failures import captured_sections, failure_summary, verdict_longrepr
from .options import KARI_FIXTURES, option_bool, option_flag, option_text
from .progress import RunProgress
from .records import (
    RunRecorder,
    committer_for,
    complete_run_meta,
    keep,
    kept_text,
    run_meta,
    run_records,
    scrubbed,
)
from .sharing import settle, store_label, store_location
from .state import (
    STATE,
    HookObject,
    KariState,
    PluginSettings,
    checked_marker,
    guard,
    internal_error,
    kari_markers,
    register_when_sessions,
    settle_outputs,
)


def _settings(config: pytest.Config) -> PluginSettings:
    values: dict[str, Any] = {}
    for name in field_names():
        raw = config.getoption(f"kari_{name}", default=None)
        source = option_flag(name)
        if raw is None:
            raw = config.getini(f"kari_{name}") if name != "memory_tracking" else None
            source = f"ini kari_{name}"
        if raw is None or raw == "" or raw == []:
            continue
        if isinstance(raw, list):  # a linelist-style ini value
            raw = ("\n" if name in LINE_LISTS else ",").join(raw)
        values[name] = parse_field(name, raw, source=source)
    enabled = option_bool(config, "debug")
    profile = option_bool(config, "profile")
    trace = option_bool(config, "trace")
    memory = option_bool(config, "memory")
    if profile:
        values["profiling_enabled"] = True
    if trace:
        values["tracing_enabled"] = True
    if memory:
        values["memory_tracking"] = True
    configuration = DebugConfiguration(**values)
    store_path = store_location(config)
    json_text = option_text(config, "json")
    csv_text = option_text(config, "csv")
    return PluginSettings(
        enabled=enabled or profile or trace or memory,
        configuration=configuration,
        store_path=store_path,
        json_path=Path(json_text) if json_text else None,
        csv_dir=Path(csv_text) if csv_text else None,
        extension_id=option_text(config, "extension_id") or None,
        profile=profile,
        trace=trace,
        memory=memory,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Check every option, and set up the run's state."""
    try:
        settings = _settings(config)
    except ConfigurationError as exc:
        raise pytest.UsageError(f"kari-debug: {exc}") from None
    workerinput = getattr(config, "workerinput", None)
    state = KariState(
        settings=settings,
        is_worker=workerinput is not None,
        worker_id=str(workerinput["workerid"]) if workerinput is not None else None,
    )
    config.stash[STATE] = state
    if not state.is_worker:  # an xdist worker's records ride on its reports to the controller
        progress = RunProgress(config, lambda done: committer_for(config, state).set_progress(done))
        config.pluginmanager.register(RunRecorder(config, progress), "kari-debug-recorder")
        config.pluginmanager.register(progress, "kari-debug-progress")
        if settings.json_path is not None:
            state.expect_output("json", settings.json_path)


# Markers -------------------------------------------------------------------------------
def _extension_marker(item: pytest.Item) -> tuple[str, str | None] | None:
    if "kari_extension" not in kari_markers(item):
        return None
    marker = item.get_closest_marker("kari_extension")
    if marker is None:
        return None
    kwargs = dict(marker.kwargs)
    args = list(marker.args)
    if "id" in kwargs:
        args.insert(0, kwargs.pop("id"))
    name = kwargs.pop("name", None)
    problem = ""
    if kwargs:
        problem = f"unknown argument(s) {sorted(kwargs)!r}; accepted: id, name"
    elif len(args) != 1 or not isinstance(args[0], str) or not args[0].strip():
        problem = f"takes one extension id string, got {tuple(args)!r}"
    elif name is not None and not isinstance(name, str):
        problem = f"name must be a string, got {name!r}"
    if problem:
        msg = f"kari-debug: marker kari_extension on {item.nodeid}: {problem}"
        raise pytest.UsageError(msg)
    return args[0], name


def _check_flag_marker(item: pytest.Item, name: str) -> None:
    marker = item.get_closest_marker(name) if name in kari_markers(item) else None
    if marker is not None and (marker.args or marker.kwargs):
        got = f"{marker.args!r} {marker.kwargs!r}"
        msg = f"kari-debug: marker {name} on {item.nodeid} takes no arguments, got {got}"
        raise pytest.UsageError(msg)


def _check_profile_marker(item: pytest.Item) -> None:
    _check_flag_marker(item, "kari_profile")


_MARKED = pytest.StashKey["tuple[str, str | None] | None"]()
SESSIONS_PLUGIN = "kari-debug-test-sessions"


@pytest.hookimpl(trylast=True)  # after every plugin and conftest added its markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check the kari markers of every collected test (bad arguments are a usage error); note
    whether a test wants a debug session."""
    state = config.stash[STATE]
    wanted = state.settings.enabled
    for item in items:
        if kari_markers(item):
            item.stash[_MARKED] = checked_marker(item, _extension_marker, None)
            checked_marker(item, _check_profile_marker, None)
        else:  # most tests: no marker to check
            item.stash[_MARKED] = None
        wanted = wanted or _wants_session(item, state)
    state.sessions_wanted = wanted


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Set up per-test sessions when a collected test wants one (markers may come from any
    plugin's or conftest's ``pytest_collection_modifyitems``: this runs after all of them).

    The own-work clock is registered last: of ``trylast`` wrappers pluggy calls the one
    registered last innermost, so every feature's wrapper runs outside its windows.
    """
    register_when_sessions(session.config, SESSIONS_PLUGIN, lambda: SessionHooks(session.config))
    register_when_sessions(session.config, CLOCK_PLUGIN, OwnWorkClock)


_PACKAGE_ROOTS: dict[str, str] = {}


def _package_root_name(folder: str) -> str:
    """The name of the top package containing *folder*, else the folder's own name."""
    found = _PACKAGE_ROOTS.get(folder)
    if found is None:
        path = top = Path(folder)
        while (path / "__init__.py").exists():
            top = path
            if path.parent == path:
                break
            path = path.parent
        found = _PACKAGE_ROOTS[folder] = top.name or "default"
    return found


def _default_extension_id(item: pytest.Item) -> str:
    return _package_root_name(os.path.dirname(str(item.path)))


def extension_of(item: pytest.Item) -> tuple[str, str | None]:
    """The extension id (and display name) a test belongs to."""
    marked = item.stash[_MARKED] if _MARKED in item.stash else _extension_marker(item)
    if marked is not None:
        return marked
    state = item.config.stash[STATE]
    return state.settings.extension_id or _default_extension_id(item), None


_MANAGER = pytest.StashKey[ExtensionDebugManager]()


def manager_for(item: pytest.Item) -> ExtensionDebugManager:
    """The debug manager of *item*'s extension, created and started on first use."""
    # Without a kari_extension marker every test of a module has the same extension.
    parent = item.parent if "kari_extension" not in kari_markers(item) else None
    if parent is None:
        return _manager_for(item)
    found = parent.stash.get(_MANAGER, None)
    if found is None:
        found = parent.stash[_MANAGER] = _manager_for(item)
    return found


def _manager_for(item: pytest.Item) -> ExtensionDebugManager:
    state = item.config.stash[STATE]
    extension_id, name = extension_of(item)
    manager = state.managers.get(extension_id)
    if manager is None:
        manager = ExtensionDebugManager(extension_id, name, state.settings.configuration)
        manager.start()
        state.managers[extension_id] = manager
    elif name and manager.extension_name == manager.extension_id:
        manager.extension_name = name
    return manager


# Per-test debug sessions ---------------------------------------------------------------
class _TestState:
    """A running test: its debug session and what its phases showed so far."""

    __slots__ = (
        "began_ns", "captured", "collected", "cpu_s", "failure", "longrepr", "manager",
        "phases", "pytest_s", "reports", "session_id", "started_at",
    )  # fmt: skip

    def __init__(self, manager: ExtensionDebugManager, session_id: str, started_at: float) -> None:
        self.manager = manager
        self.session_id = session_id
        self.started_at = started_at
        #: The test's own time per phase, in ms (timed by OwnWorkClock, inside every wrapper).
        self.phases: dict[str, float] = {}
        #: pytest's time per phase, in seconds as its reports give it (rounded only where
        #: it is shown): the test's own plus the plugin's work around it.
        self.pytest_s: dict[str, float] = {}
        #: Epoch ns at the start of the test's own setup: where its root span starts.
        self.began_ns = 0
        #: The test's own CPU seconds over setup + call (without the plugin's threads).
        self.cpu_s = 0.0
        self.reports: dict[str, tuple[str, bool]] = {}
        self.longrepr: str | None = None
        self.failure: dict[str, Any] | None = None
        self.captured: list[dict[str, str]] | None = None
        #: The session's collected data, once it is stopped.
        self.collected: dict[str, Any] | None = None


_ITEM = pytest.StashKey[_TestState]()
#: The running test (item, state): what each phase's hooks ask for first, without a stash
#: lookup. One tuple, replaced whole, so that a reader never pairs one test with another's.
_running: tuple[pytest.Item | None, _TestState | None] = (None, None)


def _test_of(item: pytest.Item) -> _TestState | None:
    running = _running
    if running[0] is item:
        return running[1]
    return item.stash.get(_ITEM, None)


def _begin_test(item: pytest.Item, test: _TestState) -> None:
    global _running
    item.stash[_ITEM] = test
    _running = (item, test)


def _end_test(item: pytest.Item) -> None:
    """Forget *item*'s state: its session is over (pytest keeps every item to the end)."""
    global _running
    if _running[0] is item:
        _running = (None, None)
    del item.stash[_ITEM]


def own_figures(item: pytest.Item) -> tuple[dict[str, float], dict[str, float]] | None:
    """The running test's own phase times so far and its ``cpu_ms`` / ``kari_overhead_ms``.

    What :class:`~pytest_kari_debug.figures.SessionFigures` needs so that a verdict reads the
    same figures as the record: the test's own work, never the plugin's.
    """
    test = _test_of(item)
    if test is None:
        return None
    return dict(test.phases), _own_costs(test)


def charge_to_plugin(seconds: float) -> None:
    """Count *seconds* of the plugin's work done outside pytest's phase windows while a test
    runs (the wait for the store's last commit before its call phase) in that test's
    ``kari_overhead_ms``: the plugin's own cost stays visible, never the test's."""
    test = _running[1]
    if test is not None:
        test.pytest_s["store"] = test.pytest_s.get("store", 0.0) + seconds


def _own_costs(test: _TestState) -> dict[str, float]:
    """The test's ``cpu_ms`` and the plugin's own time in its phases, ``kari_overhead_ms``."""
    cpu_ms, overhead_ms = _own_cost_values(test)
    return {"cpu_ms": cpu_ms, "kari_overhead_ms": overhead_ms}


def _own_cost_values(test: _TestState) -> tuple[float, float]:
    """``cpu_ms`` and ``kari_overhead_ms`` of *test* (what :func:`_own_costs` names)."""
    phases = test.phases
    overhead = 0.0
    for when, seconds in test.pytest_s.items():
        overhead += seconds * 1000.0 - phases.get(when, 0.0)
    return round(test.cpu_s * 1000.0, 3), round(overhead, 3) if overhead > 0.0 else 0.0


def session_of(item: pytest.Item) -> tuple[ExtensionDebugManager, str] | None:
    """The manager and debug session id of a running test, or ``None`` when not wrapped."""
    test = _test_of(item)
    return None if test is None else (test.manager, test.session_id)


def _wants_session(item: pytest.Item, state: KariState) -> bool:
    if state.settings.enabled:
        return True
    if KARI_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    return bool(kari_markers(item))


def _session_options(item: pytest.Item, state: KariState) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if state.settings.profile:
        options["enable_profiling"] = True
    if state.settings.trace:
        options["enable_tracing"] = True
    if state.settings.memory:
        options["profile_memory"] = True
    hook = item.config.hook.pytest_kari_debug_session_options
    if hook.get_hookimpls():  # none unless a feature of this run or a conftest has one
        for extra in hook(item=item):
            if extra:
                options.update(extra)
    return options


_perf_counter = time.perf_counter
_process_time = time.process_time
_time = time.time
_time_ns = time.time_ns
_own_cpu = selfcost.cpu_seconds
_own_wall = selfcost.own_wall_seconds


def _own_work(when: str) -> Callable[..., Generator[None, object, object]]:
    """The wrapper that times the test's own *when* phase (setup: its fixtures; call: the
    test itself), wall clock and CPU. The setup's also notes when the test's own work began.
    CPU is the process's minus what the package's own threads used meanwhile; CPU and wall
    time leave out the first uses' preparations (:func:`selfcost.first_use`)."""
    starts = when == "setup"

    # The CPU readings nest inside the wall-clock ones: CPU never gains a reading's time.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def own_phase(self: OwnWorkClock, item: pytest.Item) -> Generator[None, object, object]:
        running = _running
        test = running[1] if running[0] is item else _test_of(item)
        if test is None:
            return (yield)
        if starts:
            test.began_ns = _time_ns()
        began = _perf_counter()
        own_wall = _own_wall()
        own_cpu = _own_cpu()
        cpu = _process_time()
        try:
            return (yield)
        finally:
            cpu = _process_time() - cpu - (_own_cpu() - own_cpu)
            wall = _perf_counter() - began - (_own_wall() - own_wall)
            test.phases[when] = round(max(0.0, wall) * 1000.0, 3)
            if cpu > 0.0:
                test.cpu_s += cpu

    own_phase.__doc__ = f"Time the test's own {when} phase."
    return own_phase


class OwnWorkClock(HookObject):
    """Times each phase of a test inside every other hook wrapper: the test's own work.

    Its wrappers are ``trylast`` and it is registered after the features' hook objects, so
    the debug session's start and stop, verdicts, profiler start/stop and gate repeats all
    run outside its windows. CPU is the process's CPU time in the same windows minus what
    the package's own threads used meanwhile (:mod:`pytest_kari_debug.selfcost`).
    """

    pytest_runtest_setup = _own_work("setup")
    pytest_runtest_call = _own_work("call")

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        """Time the test's own teardown (wall time only: a test's CPU is setup + call)."""
        running = _running
        test = running[1] if running[0] is item else _test_of(item)
        if test is None:
            return (yield)
        began = _perf_counter()
        own_wall = _own_wall()
        try:
            return (yield)
        finally:
            wall = _perf_counter() - began - (_own_wall() - own_wall)
            test.phases["teardown"] = round(max(0.0, wall) * 1000.0, 3)


CLOCK_PLUGIN = "kari-debug-own-work-clock"


def _hold_tracemalloc(config: pytest.Config) -> None:
    """Keep tracemalloc on to the end of the run once a test started it.

    Starting and stopping it around every test cost each test tens of milliseconds; per-test
    figures come from ``reset_peak`` and the traced size at the test's start (``memtrace``).
    """
    if not config.stash.get(_TRACEMALLOC_HELD, False) and memtrace.is_tracing():
        memtrace.acquire()
        config.stash[_TRACEMALLOC_HELD] = True


_TRACEMALLOC_HELD = pytest.StashKey[bool]()


class SessionHooks(HookObject):
    """The per-test hooks of a run where some test has a debug session.

    Registered at the end of collection: a run where no test asks for one pays for none.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state = config.stash[STATE]
        self.steps = self.state.steps
        #: --kari-debug (or --kari-profile...): every test has a session (fixed for the run).
        self.every_test = self.state.settings.enabled

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        """Start the test's debug session before its fixtures are set up."""
        state = self.state
        try:
            if self.every_test or _wants_session(item, state):
                manager = manager_for(item)
                session_id = manager.start_debug_session(
                    _session_options(item, state), name=item.nodeid
                )
                _begin_test(item, _TestState(manager, session_id, _time()))
                if memtrace.is_tracing():
                    _hold_tracemalloc(self.config)
            for step in self.steps.setting_up:
                step(item)
        except Exception as exc:  # (a try, not a guard: this runs at every test)
            internal_error(self.config, "starting the debug session", exc)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """After a passing call phase, apply the verdicts (alerts, budgets, gates) asked for."""
        try:
            for step in self.steps.calling:
                step(item)
        except Exception as exc:
            internal_error(self.config, "preparing the call phase", exc)
        result = yield
        running = _running
        test = running[1] if running[0] is item else _test_of(item)
        messages: list[str] = []
        if test is not None:
            manager, session_id = test.manager, test.session_id
            try:
                hook = self.config.hook.pytest_kari_debug_verdicts
                if hook.get_hookimpls():  # gates, a user's conftest
                    for found in hook(item=item, manager=manager, session_id=session_id):
                        if found:
                            messages.extend(found)
                for judge in self.steps.judging:
                    found = judge(item, manager, session_id)
                    if found:
                        messages.extend(found)
            except Exception as exc:
                internal_error(self.config, "evaluating verdicts", exc)
        if messages:
            _fail_with(messages)
        return result

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        """Stop the test's debug session once its fixtures are torn down."""
        steps = self.steps
        try:
            return (yield)
        except BaseException as exc:
            with guard(self.config, "noting the teardown's exception"):
                for failed in steps.teardown_failed:
                    failed(item, exc)
            raise
        finally:
            try:
                for step in steps.torn_down:
                    step(item)
            except Exception as exc:
                internal_error(self.config, "checking the test's teardown", exc)
            running = _running
            test = running[1] if running[0] is item else _test_of(item)
            if test is not None:
                try:
                    if test.began_ns and test.manager.tracer.enabled:
                        _time_root_span(test)
                    session = test.manager.stop_debug_session(test.session_id)
                    test.collected = session.collected_data
                except Exception as exc:
                    internal_error(self.config, "stopping the debug session", exc)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Note each phase's outcome and time; attach the test's record to the teardown report."""
        report = yield
        running = _running
        test = running[1] if running[0] is item else _test_of(item)
        if test is not None:
            try:
                _note_report(item, test, call, report, self.state)
            except Exception as exc:
                internal_error(self.config, "building the test record", exc)
        return report


def _note_report(
    item: pytest.Item,
    test: _TestState,
    call: pytest.CallInfo[None],
    report: pytest.TestReport,
    state: KariState,
) -> None:
    when = report.when
    test.pytest_s[when] = duration = report.duration
    if when not in test.phases:
        test.phases[when] = round(duration * 1000.0, 3)
    outcome = report.outcome
    test.reports[when] = (outcome, hasattr(report, "wasxfail"))
    if outcome == "failed":
        excinfo = call.excinfo
        if excinfo and isinstance(excinfo.value, KariDebugAssertion):
            # the user's verdict, not an error of theirs: no plugin frames
            report.longrepr = verdict_longrepr(item, str(excinfo.value))
        if test.longrepr is None:
            test.longrepr = kept_text(item.config, report.longreprtext)
            test.failure = failure_summary(item, call, report)
    if when == "teardown":
        if report.sections:
            test.captured = captured_sections(report, partial(kept_text, item.config))
        report.kari_debug = _test_record(item, test, state)  # type: ignore[attr-defined]
        _end_test(item)


def _time_root_span(test: _TestState) -> None:
    """Time the session's root span (under --kari-trace) like ``duration_ms``: from the start
    of the test's own setup, as long as its own setup + call, without the plugin's work."""
    tracer = test.manager.get_tracer()
    if test.began_ns and getattr(tracer, "enabled", False):
        own_ms = test.phases.get("setup", 0.0) + test.phases.get("call", 0.0)
        tracer.time_session_root(
            test.session_id, test.began_ns, test.began_ns + round(own_ms * 1e6)
        )


def keep_unfinished(item: pytest.Item, longrepr: str) -> None:
    """Record *item*, still running, as failed with *longrepr* (its process is about to end)."""
    test = _test_of(item)
    if test is None:
        return
    _end_test(item)
    with guard(item.config, "stopping the debug session of an unfinished test"):
        test.collected = test.manager.stop_debug_session(test.session_id).collected_data
    elapsed = round((time.time() - test.started_at) * 1000.0, 3)
    test.phases.setdefault("call", max(0.0, elapsed - sum(test.phases.values())))
    test.reports.setdefault("call", ("failed", False))
    test.longrepr = kept_text(item.config, longrepr)
    state = item.config.stash[STATE]
    record = _test_record(item, test, state)
    if not state.is_worker:
        keep(item.config, state, record)


def _fail_with(messages: list[str]) -> None:
    __tracebackhide__ = True
    raise KariDebugAssertion("\n".join(messages))


def outcome_of(reports: dict[str, tuple[str, bool]]) -> str:
    """pytest's outcome word for a test from its phase reports."""
    setup = reports.get("setup", ("passed", False))
    if setup[0] == "failed":
        return "error"
    if setup[0] == "skipped":
        return "xfailed" if setup[1] else "skipped"
    outcome, wasxfail = reports.get("call", ("passed", False))
    if outcome == "failed":
        result = "failed"
    elif outcome == "skipped":
        result = "xfailed" if wasxfail else "skipped"
    else:
        result = "xpassed" if wasxfail else "passed"
    if reports.get("teardown", ("passed", False))[0] == "failed" and result == "passed":
        return "error"
    return result


def _test_record(item: pytest.Item, test: _TestState, state: KariState) -> dict[str, Any]:
    config = item.config
    phases = test.phases
    cpu_ms, overhead_ms = _own_cost_values(test)
    record: dict[str, Any] = {
        "record_version": SCHEMA_VERSION,
        "nodeid": item.nodeid,
        "extension_id": test.manager.extension_id,
        "extension_name": test.manager.extension_name,
        "outcome": outcome_of(test.reports),
        "phases": phases,
        "duration_ms": round(phases.get("setup", 0.0) + phases.get("call", 0.0), 3),
        "cpu_ms": cpu_ms,
        "kari_overhead_ms": overhead_ms,
        "started_at": test.started_at,
        "finished_at": _time(),
        "session_id": test.session_id,
        "worker": state.worker_id,
        "longrepr": test.longrepr,
        "failure": scrubbed(config, test.failure) if test.failure else test.failure,
        "captured": test.captured or [],
        "collected_data": {} if test.collected is None else test.collected,
        "extra": {},
    }
    try:
        for step in state.steps.recording:
            step(item, record)
        hook = config.hook.pytest_kari_debug_test_record
        if hook.get_hookimpls():  # a user's conftest, another plugin
            hook(item=item, record=record)
    except Exception as exc:  # a feature's part is lost, never the test
        state.diagnose(
            f"test {item.nodeid!r}: a part of its record could not be built and is missing:"
            f" {type(exc).__name__}: {exc}"
        )
    if state.is_worker:
        component_diagnostics(state)
        if state.diagnostics:
            record["diagnostics"] = list(state.diagnostics)
    return record


def component_diagnostics(state: KariState) -> None:
    """Make each component's internal problems (a failing sampler...) run diagnostics."""
    for manager in state.managers.values():
        for component in manager.components.values():
            for message in list(component.diagnostics):
                state.diagnose(f"{manager.extension_id} {component.kind}: {message}")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Note the run's metadata (controller only)."""
    config = session.config
    state = config.stash[STATE]
    if not state.is_worker:
        with guard(config, "reading run metadata"):
            state.run = run_meta(config)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    """On the controller: finish the store's run, let features write outputs, write the JSON;
    under --kari-strict-exports an output that could not be written fails the run."""
    finish_run(session.config, exitstatus)
    state = session.config.stash.get(STATE, None)
    if state is None or state.is_worker or not state.failed_outputs:
        return
    if option_bool(session.config, "strict_exports"):
        failed = ", ".join(sorted(state.failed_outputs))
        state.summary_lines.append(
            f"--kari-strict-exports: the run fails because {failed} could not be written"
        )
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def finish_run(config: pytest.Config, exitstatus: int | pytest.ExitCode) -> None:
    """Write the run's outputs now (at the end of the session, or before the process is ended
    under a hung test: pytest-timeout's thread method)."""
    state = config.stash.get(STATE, None)
    if state is None or state.is_worker or state.finished:
        return
    state.finished = True
    with guard(config, "writing the store"):
        close_committer(config)
    if state.recorded:
        # Records are decoded one at a time and freed by reference counting: a collection the
        # allocations set off would walk the whole heap for nothing (pytest collects after
        # the run).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            _finish_run(config, state, exitstatus)
        finally:
            if gc_was_enabled:
                gc.enable()
            # Kept beside the store while it lacks some test: the next run imports them.
            lagging = state.store_failed or bool(state.unstored or state.lost)
            for journal in (state.journal, *state.closed_journals):
                recoverable = isinstance(journal, RunJournal) and not journal.temporary
                if journal is not None and not (lagging and recoverable):
                    with guard(config, "removing the run's journal"):
                        journal.remove()
    with guard(config, "settling the outputs"):
        settle_outputs(state)


def _finish_run(config: pytest.Config, state: KariState, exitstatus: int | pytest.ExitCode) -> None:
    with guard(config, "writing the store"):
        if state.store is not None:
            settle(state, state.store)
    finished = time.time()
    with guard(config, "reading run metadata"):
        complete_run_meta(config, state)
    state.run.update(
        finished_at=finished,
        exit_status=int(exitstatus),
        status=run_status_of(exitstatus),
        duration_s=round(max(0.0, finished - state.run.get("started_at", finished)), 3),
        workers=len(state.workers),
        kari_overhead_ms=round(state.kari_overhead_ms, 3),
    )
    with guard(config, "reading the components' diagnostics"):
        component_diagnostics(state)
    tests = run_records(state)
    built = _built_sections(config, state, tests)
    with guard(config, "writing run outputs"):
        config.hook.pytest_kari_debug_run_finished(
            config=config, run=state.run, tests=tests, sections=state.sections, built=built
        )
    if state.store is not None and state.run_id is not None:
        with guard(config, "closing the run in the store"):
            state.store.finish_run(
                state.run_id,
                finished_at=finished,
                exit_status=int(exitstatus),
                data={
                    "pid": state.run.get("pid"),
                    "status": state.run["status"],
                    "diagnostics": list(state.diagnostics),
                    "sections": state.sections,
                },
            )
            state.outputs.setdefault("store", f"{store_label(state)} (run {state.run_id})")
    if state.settings.json_path is not None:
        with guard(config, "writing the JSON export"):
            summary = summary_of(state.recorded, state.outcomes, state.extensions, state.dropped)
            texts = (line_of(dumps(test)) for test in tests) if tests.transforms else tests.texts()
            try:
                path = stream_run_json(
                    state.settings.json_path,
                    state.run,
                    summary,
                    texts,
                    diagnostics=state.diagnostics,
                    sections=state.sections,
                )
                state.outputs["json"] = str(path)
            except Exception as exc:  # never leave an earlier run's JSON standing
                state.output_failed(
                    "json",
                    state.settings.json_path,
                    f"{type(exc).__name__}: {exc}",
                    shown="--kari-json",
                )


def _built_sections(
    config: pytest.Config, state: KariState, tests: Iterable[dict[str, Any]]
) -> RunSections:
    """The run's sections: as its tests were kept, else (a test the digest missed) from one
    pass over its records. A part that failed is a diagnostic naming it; the others stand."""
    built = None
    digest = state.digest
    if digest is not None and not digest.broken and digest.count == state.recorded:
        with guard(config, "summarising the run's tests"):
            built = digest.sections()
    if built is None:
        with guard(config, "summarising the run's tests"):
            trace = state.settings.trace
            slow_span_ms = state.settings.configuration.slow_span_ms if trace else None
            built = run_sections(tests, slow_span_ms)
    if built is None:
        state.sections_failed = True
        return run_sections(())
    for failure in built.failed:
        state.sections_failed = True  # the store recounts what the summary may lack
        state.diagnose(f"internal error in summarising the run's tests: {failure}")
    return built


#: Features whose summary shows by default (a headline and its first indented lines).
#: ("run 'ID'": the shared run a shard joined.)
HEADLINE_BLOCKS = (
    "alerts:", "alert notifications:", "errors:", "unowned:", "run '", "--kari-strict-exports:",
)  # fmt: skip
HEADLINE_DETAILS = 3
#: Outputs named by default; the others with -v.
HEADLINE_OUTPUTS = ("report",)


def summary_blocks(lines: list[str]) -> list[list[str]]:
    """A feature's summary lines as blocks: a headline and the indented lines under it."""
    blocks: list[list[str]] = []
    for line in lines:
        if line.startswith(" ") and blocks:
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def headline_lines(lines: list[str]) -> tuple[list[str], int]:
    """The lines shown without -v and how many were left for -v."""
    shown: list[str] = []
    for block in summary_blocks(lines):
        if block[0].startswith(HEADLINE_BLOCKS):
            shown.extend(block[: 1 + HEADLINE_DETAILS])
            if len(block) > 1 + HEADLINE_DETAILS:
                shown.append(f"  ... {len(block) - 1 - HEADLINE_DETAILS} more")
    return shown, len(lines) - sum(1 for line in shown if not line.startswith("  ... "))


def overhead_line(state: KariState) -> str:
    """The plugin's own cost in the run's test windows (``kari_overhead_ms``), one line."""
    total, count = state.kari_overhead_ms, state.overhead_tests
    return (
        f"kari overhead: {total:.1f} ms in {count} tests ({total / count:.2f} ms per test),"
        " kept out of every test's figures"
    )


def run_status_of(exitstatus: int | pytest.ExitCode) -> str:
    """The run's status word: ``interrupted`` after Ctrl-C (or a ``pytest.exit``), else
    ``finished`` (the exit status says whether tests failed)."""
    return "interrupted" if int(exitstatus) == pytest.ExitCode.INTERRUPTED else "finished"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Counts, alerts, error groups and where the report is; everything else with -v."""
    state = config.stash.get(STATE, None)
    if state is None or state.is_worker or not (state.recorded or state.diagnostics):
        return
    with guard(config, "writing the terminal summary"):
        verbose = config.get_verbosity() > 0
        write = terminalreporter.write_line
        terminalreporter.section("kari-debug")
        extensions = sorted(state.extensions)
        outcome_text = ", ".join(f"{n} {o}" for o, n in sorted(state.outcomes.items()))
        write(
            f"{state.recorded} tests recorded for {len(extensions)} extension(s)"
            f" ({', '.join(extensions)}): {outcome_text}"
        )
        if state.overhead_tests:
            write(overhead_line(state))
        if verbose:
            lines, hidden = state.summary_lines, 0
        else:
            lines, hidden = headline_lines(state.summary_lines)
        for line in lines:
            write(line)
        for label, path in state.outputs.items():
            if verbose or label in HEADLINE_OUTPUTS:
                write(f"{label}: {path}")
            else:
                hidden += 1
        if state.diagnostics:
            write(
                f"diagnostics: {len(state.diagnostics)} internal problem(s);"
                " test results unaffected"
            )
            for message in state.diagnostics[: 10 if verbose else 3]:
                write(f"  - {message}")
        if hidden and not verbose:
            write(f"({hidden} more line(s) with -v: metrics, logs, profiles, outputs)")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop every manager and close the store."""
    state = config.stash.get(STATE, None)
    if state is None:
        return
    with guard(config, "stopping managers"):
        for manager in state.managers.values():
            manager.stop()
            if "dashboard" not in state.outputs:  # --kari-serve answers until it stops
                # The run is over: its last sessions' records would only make pytest's
                # garbage collection passes at exit walk them.
                manager.sessions.clear()
    if config.stash.get(_TRACEMALLOC_HELD, False):
        config.stash[_TRACEMALLOC_HELD] = False
        memtrace.release()
    with guard(config, "closing the store"):
        close_committer(config)
        if state.store is not None:
            problem = state.store.checkpoint_problem
            if problem is not None:
                label = state.store.label
                state.diagnose(f"store {label}: a background checkpoint failed: {problem}")
            state.store.close()


# Fixtures ------------------------------------------------------------------------------
def fixture_manager(request: pytest.FixtureRequest) -> ExtensionDebugManager:
    """The manager behind the ``kari_*`` fixtures: the running test's session's, else its
    extension's."""
    test = _test_of(request.node)
    return test.manager if test is not None else manager_for(request.node)


def iter_records(
    tests: Iterable[dict[str, Any]], component: str
) -> Iterator[tuple[dict[str, Any], Mapping[str, Any]]]:
    """Yield ``(test, record)`` for every record of *component* in *tests*."""
    for test in tests:
        for record in records_of(test, component):
            yield test, record
