"""State of one pytest run, kept in ``config.stash``, and the guard around plugin code."""

from __future__ import annotations

import html
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..atomic import write_atomic
from ..backends import StoreLocation
from ..config import DebugConfiguration
from ..diagnostics import Diagnostics
from ..exceptions import KariDebugWarning
from ..journal import RunRecords
from ..manager import ExtensionDebugManager
from ..sharedmethods import dataclass
from ..storage import Store
from ..summaries import RunDigest


@dataclass
class PluginSettings:
    """What the command line and the ini file asked for."""

    enabled: bool
    configuration: DebugConfiguration
    store_path: StoreLocation | None
    json_path: Path | None
    csv_dir: Path | None
    extension_id: str | None
    profile: bool = False
    trace: bool = False
    memory: bool = False


ItemStep = Callable[[pytest.Item], None]
RecordStep = Callable[[pytest.Item, dict[str, Any]], None]
#: Failure messages of a test's verdicts (alerts, budgets) once its call phase passed.
VerdictStep = Callable[[pytest.Item, ExtensionDebugManager, str], list[str] | None]


@dataclass(slots=True)
class TestSteps:
    """The features' per-test steps, called by the core's per-test hook wrappers.

    A plain call each: a hook implementation of its own would cost every test pluggy's
    dispatch. The core turns a step's internal error into a diagnostic (never an outcome);
    a step whose failure must not skip the steps after it catches its own.
    """

    __test__ = False  # not a pytest test class

    #: The features that added steps.
    names: list[str] = field(default_factory=list)
    #: In every test's setup, its debug session (if it has one) just started.
    setting_up: list[ItemStep] = field(default_factory=list)
    #: Before every test's call phase, its fixtures set up.
    calling: list[ItemStep] = field(default_factory=list)
    #: The test's teardown raised, its debug session still open.
    teardown_failed: list[Callable[[pytest.Item, BaseException], None]] = field(
        default_factory=list
    )
    #: After every test's teardown, its debug session still open.
    torn_down: list[ItemStep] = field(default_factory=list)
    #: The test's record is built: each feature puts its part in (before the
    #: ``pytest_kari_debug_test_record`` hook, which then sees a whole record).
    recording: list[RecordStep] = field(default_factory=list)
    #: After the call phase: the feature's verdicts as failure messages (after those of the
    #: ``pytest_kari_debug_verdicts`` hook's implementations: gates, the user's).
    judging: list[VerdictStep] = field(default_factory=list)


@dataclass
class KariState:
    """Everything the plugin keeps for one run."""

    settings: PluginSettings
    is_worker: bool
    worker_id: str | None = None  # the xdist worker this process is (gw0, gw1...)
    sessions_wanted: bool = False  # some collected test runs in a debug session
    managers: dict[str, ExtensionDebugManager] = field(default_factory=dict)
    store: Store | None = None
    store_failed: bool = False
    #: Tests whose write failed, kept for a retry; tests given up on (their node ids).
    unstored: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    #: The first failure of the store in this run, failures in a row, when to try again.
    store_problem: str | None = None
    #: The run's sections could not be built (a summary then lacks what the store recounts).
    sections_failed: bool = False
    store_failures: int = 0
    retry_at: float = 0.0
    #: The store's server did not answer within its bound: not tried again in this run.
    store_hung: bool = False
    run_id: int | None = None
    run: dict[str, Any] = field(default_factory=dict)
    #: Every finished test's record, one JSON line each in the run's journal (on disk: memory
    #: stays flat however long the run), streamed from there into the outputs at the end.
    journal: RunRecords | None = None
    #: Journals given up on (a full disk): removed at the end unless the store lacks tests.
    closed_journals: list[RunRecords] = field(default_factory=list)
    #: The run's sections, built as each test is kept (the end of a run reads no test again).
    digest: RunDigest | None = None
    #: How many tests were recorded, and their dropped records per component (counted when
    #: the run writes its JSON, whose summary alone shows them).
    recorded: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, int] = field(default_factory=dict)
    #: The plugin's own time in the recorded tests' windows, and how many tests it timed.
    kari_overhead_ms: float = 0.0
    overhead_tests: int = 0
    extensions: set[str] = field(default_factory=set)
    workers: set[str] = field(default_factory=set)
    diagnostics: Diagnostics = field(default_factory=lambda: Diagnostics(200))
    #: pytest's thread, and the diagnostics of the plugin's own threads (the store's writer)
    #: not warned yet: a warning is given on pytest's thread only.
    thread: int = field(default_factory=threading.get_ident)
    unwarned: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    summary_lines: list[str] = field(default_factory=list)
    finished: bool = False  # the outputs are written (at most once a run)
    #: The features' per-test steps (in a run where some test has a debug session).
    steps: TestSteps = field(default_factory=TestSteps)
    #: Files this run must write (label -> path, whether a failure page stands in for it).
    expected_outputs: dict[str, tuple[Path, bool]] = field(default_factory=dict)
    #: Outputs that could not be written, with the reason (label -> reason).
    failed_outputs: dict[str, str] = field(default_factory=dict)

    def wrap_every_test(self) -> None:
        """Put every test in a debug session, as ``--kari-debug`` does: for a feature whose
        output would mislead with only some tests (a report, ini alert rules...)."""
        self.settings.enabled = True

    def diagnose(self, message: str) -> None:
        """Record an internal problem (once) and tell the user with a KariDebugWarning."""
        if not self.diagnostics.add(message):
            return
        if threading.get_ident() != self.thread:
            self.unwarned.append(message)
            return
        self.warn_unwarned()
        warn(message)

    def warn_unwarned(self) -> None:
        """Warn (on pytest's thread) the diagnostics the plugin's threads found meanwhile."""
        while self.unwarned:
            warn(self.unwarned.pop(0))

    def expect_output(self, label: str, path: Path, *, page: bool = False) -> None:
        """Note that this run writes *path*; if it does not, no earlier run's file may stay
        there (see :func:`settle_outputs`). *page*: an HTML file, replaced by a page saying
        why, rather than removed."""
        self.expected_outputs[label] = (path, page)

    def output_failed(
        self,
        label: str,
        path: Path | None,
        reason: str,
        *,
        page: bool = False,
        shown: str | None = None,
    ) -> None:
        """Output *label* (the file *path*, or a push when None) could not be written:
        diagnose it (naming it as *shown*, e.g. its flag), and make sure no stale file of an
        earlier run stays at *path*."""
        self.failed_outputs[label] = reason
        name = label if shown is None else shown
        if path is None:
            self.diagnose(f"could not send {name}: {reason}")
            return
        done = discard_stale(path, failure_page(label, reason, self.run) if page else None)
        where = f"{name} {str(path)!r}" if name else repr(str(path))
        self.diagnose(f"could not write {where}: {reason} ({done})")


def failure_page(label: str, reason: str, run: Mapping[str, Any]) -> str:
    """The HTML page that stands at an output's path when this run could not write it."""
    started = run.get("started_at")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
        if isinstance(started, (int, float))
        else "unknown"
    )
    args = " ".join(str(arg) for arg in run.get("args") or ())
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>kari-debug: {html.escape(label)} not written</title></head><body>"
        f"<h1>The kari-debug {html.escape(label)} of this run could not be written</h1>"
        f"<p>Reason: <code>{html.escape(reason)}</code></p>"
        f"<p>Run started {html.escape(when)}; pytest arguments: "
        f"<code>{html.escape(args)}</code></p>"
        "<p>No earlier run's report is shown here: it would not describe this run.</p>"
        "</body></html>\n"
    )


def discard_stale(path: Path, page: str | None) -> str:
    """Replace the file at *path* by *page*, or remove it (*page* None); say what was done."""
    if page is not None:
        try:
            write_atomic(path, page)
        except OSError:
            pass
        else:
            return "a page saying so stands at its path"
    try:
        path.unlink()
    except FileNotFoundError:
        return "no earlier file at its path"
    except OSError as exc:
        return f"the earlier file at its path could not be removed: {exc}"
    return "the earlier file at its path was removed"


def settle_outputs(state: KariState) -> None:
    """After the outputs were written: an expected output that was not written (an error
    swallowed by a guard, or no test recorded) leaves no earlier run's file behind."""
    for label, (path, page) in state.expected_outputs.items():
        if label in state.outputs or label in state.failed_outputs:
            continue
        if state.recorded:
            state.output_failed(label, path, "not written (see the diagnostics)", page=page)
        else:
            reason = "no test was recorded in this run"
            discard_stale(path, failure_page(label, reason, state.run) if page else None)


def write_run_csv(
    state: KariState,
    name: str,
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    output: str,
) -> None:
    """Write *rows* as the file *name* under ``--kari-csv`` and list it in the outputs as
    *output*; a file that cannot be written becomes a diagnostic."""
    csv_dir = state.settings.csv_dir
    if csv_dir is None:
        return
    from ..exporters.csv_export import write_csv  # only a run asked for CSV files

    path = csv_dir / name
    try:
        write_csv(path, rows, columns)
    except Exception as exc:
        state.output_failed(output, path, f"{type(exc).__name__}: {exc}", shown="")
        return
    state.outputs[output] = str(path)


STATE = pytest.StashKey[KariState]()


class HookObject:
    """Base of the plugin's hook objects: ``dir()`` lists only their hooks (``pytest_*``).

    pytest looks at every name a registered plugin's ``dir()`` lists for a fixture (a few µs a
    name, for an instance some thirty with ``object``'s methods), pluggy at each for a hook.
    """

    __slots__ = ()

    def __dir__(self) -> list[str]:
        return [name for name in dir(type(self)) if name.startswith("pytest_")]


def register_once(config: pytest.Config, name: str, hooks: Callable[[], object]) -> None:
    """Register the per-test hook object *hooks()* as plugin *name*, unless already there.

    Features call this only in a run that uses them: a run that does not pays for none of
    their per-test hooks.
    """
    if not config.pluginmanager.has_plugin(name):
        config.pluginmanager.register(hooks(), name)


def register_when_sessions(config: pytest.Config, name: str, hooks: Callable[[], object]) -> None:
    """:func:`register_once` when a collected test runs in a debug session."""
    state = config.stash.get(STATE, None)
    if state is not None and state.sessions_wanted:
        register_once(config, name, hooks)


def add_test_steps(
    config: pytest.Config,
    name: str,
    *,
    setting_up: ItemStep | None = None,
    calling: ItemStep | None = None,
    teardown_failed: Callable[[pytest.Item, BaseException], None] | None = None,
    torn_down: ItemStep | None = None,
    recording: RecordStep | None = None,
    judging: VerdictStep | None = None,
) -> None:
    """Add feature *name*'s per-test steps (see :class:`TestSteps`), once, when a collected
    test runs in a debug session: a run where none does pays for none of them."""
    state = config.stash.get(STATE, None)
    if state is None or not state.sessions_wanted or name in state.steps.names:
        return
    steps = state.steps
    steps.names.append(name)
    for added, where in (
        (setting_up, steps.setting_up),
        (calling, steps.calling),
        (torn_down, steps.torn_down),
    ):
        if added is not None:
            where.append(added)
    if teardown_failed is not None:
        steps.teardown_failed.append(teardown_failed)
    if recording is not None:
        steps.recording.append(recording)
    if judging is not None:
        steps.judging.append(judging)


_KARI_MARKERS = pytest.StashKey[frozenset[str]]()
_NO_MARKERS: frozenset[str] = frozenset()


def kari_markers(item: pytest.Item | pytest.Collector) -> frozenset[str]:
    """The names of the ``kari_*`` markers on *item* and its parents (``iter_markers``' names).

    Remembered on each node, so a parent's markers are read once for all its tests, not once
    a test (each feature asks for its own markers and most tests have none).
    """
    stash = item.stash
    if _KARI_MARKERS in stash:  # not stash.get: a miss raises and catches a KeyError
        return stash[_KARI_MARKERS]
    parent = item.parent
    found = _NO_MARKERS if parent is None else kari_markers(parent)
    own = [m.name for m in item.own_markers if m.name.startswith("kari_")]
    if own:
        found = found.union(own)
    stash[_KARI_MARKERS] = found  # one object, not one a test, when there are none
    return found


_MARKER_PROBLEM = pytest.StashKey[str]()
T = TypeVar("T")


def checked_marker(item: pytest.Item, check: Callable[[pytest.Item], T], fallback: T) -> T:
    """``check(item)`` of *item*'s kari markers; when it finds a bad one (a UsageError): a usage
    error at start-up in a run that asked for the plugin (``--kari-debug``, a report...),
    else only *item* fails, at its setup, with the same message, and *fallback* is used."""
    try:
        return check(item)
    except pytest.UsageError as exc:
        state = item.config.stash.get(STATE, None)
        if state is None or state.settings.enabled:
            raise
        item.stash.setdefault(_MARKER_PROBLEM, str(exc))
        register_once(item.config, "kari-debug-bad-markers", BadMarkers)
        return fallback


class BadMarkers(HookObject):
    """Fails each test whose kari marker is wrong (registered only when there is one)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Fail a test with a bad marker before anything else sets it up."""
        problem = item.stash.get(_MARKER_PROBLEM, None)
        if problem is not None:
            pytest.fail(problem, pytrace=False)


def after_teardown(step: Callable[[Any, pytest.Item], None], *, first: bool = False) -> Any:
    """A ``pytest_runtest_teardown`` hook wrapper (for a hooks class) that calls
    ``step(hooks, item)`` once the test's teardown ran, whether it raised or not. *first*: the
    outermost of the wrappers (after every other one), else the innermost."""

    @pytest.hookimpl(wrapper=True, tryfirst=first, trylast=not first)
    def pytest_runtest_teardown(
        self: Any, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            step(self, item)

    pytest_runtest_teardown.__doc__ = step.__doc__
    return pytest_runtest_teardown


def warn(message: str) -> None:
    """Emit a KariDebugWarning that no ``-W error`` filter can turn into a test failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", KariDebugWarning)
        warnings.warn(KariDebugWarning(f"kari-debug: {message}"), stacklevel=2)


class guard:
    """Turn an internal error inside the block into a diagnostic; never into a test outcome.

    A class rather than a generator-based context manager: it wraps every per-test hook, so
    its cost is paid thousands of times a run.
    """

    __slots__ = ("config", "where")

    def __init__(self, config: pytest.Config, where: str) -> None:
        self.config = config
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        internal_error(self.config, self.where, exc)
        return True


def internal_error(config: pytest.Config, where: str, exc: Exception) -> None:
    """What :class:`guard` does with an internal error: a diagnostic and a warning.

    The per-test hooks catch ``Exception`` themselves and call this (a ``try`` costs nothing
    until something raises; a ``with guard`` is three calls at every phase of every test).
    """
    state = config.stash.get(STATE, None)
    message = f"internal error in {where}: {type(exc).__name__}: {exc}"
    if state is None:
        warn(message)
    else:
        state.diagnose(message)
