"""Regression gates in pytest: baselines saved and compared, repeats, and failing tests."""

from __future__ import annotations

import functools
import time
from collections.abc import Generator
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..journal import RunRecords
from ..sharedmethods import dataclass

try:
    import resource

    _RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)
except ImportError:  # Windows
    _RUSAGE_THREAD = None

from .. import selfcost
from ..backends import location_exists, redact
from ..exceptions import ConfigurationError, StoreError
from ..figures import SessionFigures
from ..manager import ExtensionDebugManager
from ..optionspec import CONFIRM_RUNS, MIN_CHANGE_MS, REPEAT
from ..storage import Store
from .core import own_figures, session_of
from .options import option_text, option_value
from .state import STATE, checked_marker, guard, kari_markers, register_once

if TYPE_CHECKING:
    # The gates themselves are imported when a run uses them (a gate flag or marker): a run
    # that only records builds none of their classes.
    from ..gates import Change, Comparison, Gate, Options

#: Gates shown in the comparison table when --kari-fail-regression is not given (no failures).
REPORT_GATES = "duration:+25%,cpu:+25%,allocated:+10%,peak_rss:+50MB"


@dataclass
class GateSettings:
    """What the gate flags asked for, and the baseline loaded for comparison."""

    save: str | None
    baseline_file: Path | None
    compare: str | None
    gates: list[Gate] | None
    repeat: int | None
    min_change_ms: float
    confirm_runs: int
    baseline: dict[str, Any] | None = None
    baseline_label: str = ""
    changes: list[Change] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.save or self.compare or self.repeat)

    @functools.cached_property
    def options(self) -> Options:
        """The comparison's tuning (built when a test is first compared)."""
        from ..gates import Options

        return Options(min_change_ms=self.min_change_ms, confirm_runs=self.confirm_runs)

    def repeats_for(self, item: pytest.Item) -> int:
        """Call-phase runs for *item*: its marker, --kari-repeat, or enough for a baseline."""
        marked = _marker_repeat(item)
        if marked:
            return marked
        if self.repeat:
            return self.repeat
        return self.confirm_runs if self.save else 1


GATES = pytest.StashKey[GateSettings]()


@dataclass
class _Measure:
    """A compared test's timing samples, figures and the changes found against its baseline."""

    call_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    reference_ms: list[float] = field(default_factory=list)


_MEASURE = pytest.StashKey[_Measure]()
_REPEAT_MARKED = pytest.StashKey[int]()


def _parse_gates(spec: str, source: str = "--kari-fail-regression") -> list[Gate]:
    from ..gates import parse_gates

    return parse_gates(spec, source=source)


def _settings(config: pytest.Config) -> GateSettings:
    spec = option_text(config, "fail_regression")
    try:
        gates = _parse_gates(spec) if spec else None
    except ConfigurationError as exc:
        raise pytest.UsageError(f"kari-debug: {exc}") from None
    baseline_file = option_text(config, "baseline_file")
    return GateSettings(
        save=option_text(config, "save_baseline") or None,
        baseline_file=Path(baseline_file) if baseline_file else None,
        compare=option_text(config, "compare") or None,
        gates=gates,
        repeat=option_value(config, REPEAT),
        min_change_ms=option_value(config, MIN_CHANGE_MS),
        confirm_runs=option_value(config, CONFIRM_RUNS),
    )


def _load_baseline(config: pytest.Config, settings: GateSettings) -> None:
    target = settings.compare
    if not target:
        return
    from ..gates import BaselineError, build_baseline, check_baseline, read_baseline_file

    state = config.stash[STATE]
    path = Path(target)
    try:
        if target != "last" and (path.suffix == ".json" or path.exists()):
            settings.baseline = read_baseline_file(path)
            settings.baseline_label = f"file {target}"
            return
        if settings.baseline_file is not None and target != "last":
            settings.baseline = read_baseline_file(settings.baseline_file)
            settings.baseline_label = f"file {settings.baseline_file}"
            return
        store_path = state.settings.store_path
        if store_path is None or not location_exists(store_path):
            if target == "last":
                settings.baseline_label = "last (no earlier run: every test is new)"
                return
            msg = f"no baseline {target!r}: there is no store at {redact(store_path)!r}"
            raise BaselineError(msg)
        store = Store(store_path, create=False)
        try:
            if target == "last":
                branch = state.run.get("git_branch") if state.run else None
                run = store.previous_run(branch=branch) or store.previous_run(branch=None)
                if run is None:
                    settings.baseline_label = "last (no earlier run: every test is new)"
                    return
                settings.baseline = build_baseline("last", store.tests(run["id"]), run)
                settings.baseline_label = (
                    f"last run {run['id']} ({run.get('git_branch') or 'no branch'})"
                )
            else:
                document = store.load_baseline(target)
                if document is None:
                    msg = f"no baseline {target!r} in store {redact(store_path)!r}"
                    raise BaselineError(msg)
                settings.baseline = check_baseline(document, source=f"baseline {target!r}")
                settings.baseline_label = f"baseline {target}"
        finally:
            store.close()
    except (BaselineError, StoreError) as exc:
        raise pytest.UsageError(f"kari-debug: --kari-compare: {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    """Check gate options and load the baseline (each xdist worker reads it too)."""
    settings = _settings(config)
    config.stash[GATES] = settings
    if settings.compare:
        if not config.stash[STATE].run:
            config.stash[STATE].run = {}
        _load_baseline(config, settings)


def _marker_gates(item: pytest.Item) -> list[Gate] | None:
    marker = item.get_closest_marker("kari_gate") if "kari_gate" in kari_markers(item) else None
    if marker is None:
        return None
    if len(marker.args) != 1 or marker.kwargs or not isinstance(marker.args[0], str):
        msg = (
            f"kari-debug: marker kari_gate on {item.nodeid} takes one spec string"
            " like 'duration:+10%'"
        )
        raise pytest.UsageError(msg)
    try:
        return _parse_gates(marker.args[0], source=f"marker kari_gate on {item.nodeid}")
    except ConfigurationError as exc:
        raise pytest.UsageError(f"kari-debug: {exc}") from None


def _marker_repeat(item: pytest.Item) -> int | None:
    marker = item.get_closest_marker("kari_repeat") if "kari_repeat" in kari_markers(item) else None
    if marker is None:
        return None
    args = list(marker.args) + ([marker.kwargs["n"]] if "n" in marker.kwargs else [])
    if len(args) != 1 or set(marker.kwargs) - {"n"} or not isinstance(args[0], int) or args[0] < 1:
        msg = (
            f"kari-debug: marker kari_repeat on {item.nodeid} takes one whole number >= 1,"
            f" got {marker.args!r}"
        )
        raise pytest.UsageError(msg)
    return int(args[0])


@pytest.hookimpl(trylast=True)  # after every plugin and conftest added its markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check kari_gate and kari_repeat markers at collection."""
    repeated = False
    for item in items:
        if not kari_markers(item):
            continue
        checked_marker(item, _marker_gates, None)
        repeat = checked_marker(item, _marker_repeat, None)
        if repeat is not None:
            item.stash[_REPEAT_MARKED] = repeat
            repeated = True
    if config.stash[GATES].active or repeated:
        register_once(config, "kari-debug-measured-tests", MeasuredTests)


class _Clock:
    """Time one call of a test on the current thread: the time the test itself needed.

    * A call during which the thread never blocked (no voluntary context switch: no sleep, no
      I/O wait, no lock or GIL wait) spent its wall time either running or waiting for a CPU
      that other processes held: its time is its CPU time. Load from other processes then
      cannot inflate it at all, whatever the kernel's accounting of the wait (under heavy load
      wall time minus ``schedstat``'s run-queue wait was measured 2-3x the CPU time of such
      calls, several calls in a row).
    * A call that blocked keeps its wall time minus the time the thread waited for a CPU
      (Linux ``/proc/thread-self/schedstat``): a test that sleeps or waits on I/O longer still
      shows it. It never counts less than the thread's CPU time.

    Where the platform has no per-thread counters (``RUSAGE_THREAD``), or does not count a
    sleep as a voluntary switch (checked once with a 1 ms sleep), every call is judged as one
    that blocked.
    """

    def __init__(self) -> None:
        self.switches = _voluntary_switches()
        self.own_cpu = selfcost.cpu_seconds()
        self.wall, self.cpu, self.waited = time.perf_counter(), time.process_time(), _run_queue_ns()
        self.thread_cpu = time.thread_time()

    def stop(self) -> tuple[float, float]:
        """(call ms, process CPU ms without the package's own threads) since construction."""
        # The run-queue wait is read inside the wall-clock window (after its start, before
        # its end): a wait for a CPU at a reading is never taken off time it is not part of.
        waited = (_run_queue_ns() - self.waited) / 1e6
        thread_cpu = (time.thread_time() - self.thread_cpu) * 1000.0
        wall = (time.perf_counter() - self.wall) * 1000.0
        switches = _voluntary_switches()
        # The package's own threads (sampler, poller, store writer) ran meanwhile: not the test's.
        own = selfcost.cpu_seconds() - self.own_cpu
        cpu = max(time.process_time() - self.cpu - own, 0.0) * 1000.0
        if self.switches is not None and switches == self.switches:
            return thread_cpu, cpu
        kept = wall - waited if 0.0 <= waited < wall else wall  # clocks disagree: keep wall
        # The thread ran at least its own CPU time: a wait counted twice never goes below it.
        return max(kept, thread_cpu), cpu


def _read_switches() -> int | None:
    if _RUSAGE_THREAD is None:
        return None
    try:
        return int(resource.getrusage(_RUSAGE_THREAD).ru_nvcsw)
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=1)
def _switches_counted() -> bool:
    """Whether this kernel counts a thread's voluntary switches (a sandbox may report 0)."""
    before = _read_switches()
    if before is None:
        return False
    time.sleep(0.001)  # a sleep is a voluntary switch wherever they are counted
    after = _read_switches()
    return after is not None and after > before


def _voluntary_switches() -> int | None:
    """Voluntary context switches of the current thread so far (None where not counted)."""
    return _read_switches() if _switches_counted() else None


def _run_queue_ns() -> int:
    try:
        with open("/proc/thread-self/schedstat", "rb") as handle:
            return int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _timed_run(item: pytest.Item) -> tuple[float, float]:
    clock = _Clock()
    item.runtest()
    return clock.stop()


def reference_ms() -> float:
    """How long a fixed CPU-bound loop takes now: the machine's current speed for Python.

    Comparing it with the baseline's tells a slower machine (load on the sibling core, a
    throttled CPU) from slower code: timings measured on a machine slower than the baseline's
    are scaled back by that ratio before they are judged.
    """
    best = float("inf")
    for _ in range(3):
        clock = _Clock()  # the clock of the test calls: the same kind of time is compared
        total = 0
        for number in range(20_000):
            total += number * number
        best = min(best, clock.stop()[0])
    return best


def _live_figures(item: pytest.Item) -> dict[str, float]:
    """Deterministic and memory figures of the running test, after its first call."""
    found = session_of(item)
    if found is None:
        return {}
    from ..gates import live_figures

    manager, session_id = found
    phases, own = own_figures(item) or ({}, {})
    return live_figures(SessionFigures(manager, session_id, phases, own))


def _figures(measure: _Measure) -> dict[str, float]:
    figures = dict(measure.figures)
    figures["call_ms"] = min(measure.call_ms)
    figures["cpu_ms"] = min(measure.cpu_ms)
    return figures


class MeasuredTests:
    """The per-test hooks of a run that measures (registered at the end of collection)."""

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """Time the call phase, snapshot the deterministic figures, and run the asked repeats."""
        settings = item.config.stash[GATES]
        if not settings.active and item.stash.get(_REPEAT_MARKED, None) is None:
            return (yield)
        repeat = settings.repeats_for(item)
        clock = _Clock()
        result = yield  # a failing test raises here: no samples
        call_ms, cpu_ms = clock.stop()
        measure = _Measure([call_ms], [cpu_ms])
        item.stash[_MEASURE] = measure
        with guard(item.config, "measuring regression figures"):
            measure.figures = _live_figures(item)
        for _ in range(repeat - 1):
            call_ms, cpu_ms = _timed_run(item)
            measure.call_ms.append(call_ms)
            measure.cpu_ms.append(cpu_ms)
        if settings.save:
            measure.reference_ms.append(reference_ms())
        return result

    def pytest_kari_debug_verdicts(
        self, item: pytest.Item, manager: ExtensionDebugManager, session_id: str
    ) -> list[str] | None:
        """Compare the passed test with its baseline; confirm timing candidates by re-running."""
        settings = item.config.stash[GATES]
        measure = item.stash.get(_MEASURE, None)
        if measure is None or not settings.compare:
            return None
        from ..gates import compare_test, needs_confirmation, slowdown_of

        marker_gates = _marker_gates(item)
        failing = marker_gates or settings.gates
        gates = failing or _parse_gates(REPORT_GATES)
        entry = (settings.baseline or {}).get("tests", {}).get(item.nodeid)
        base_reference = (settings.baseline or {}).get("reference_ms")
        samples = {"call_ms": measure.call_ms, "cpu_ms": measure.cpu_ms}
        changes = compare_test(
            item.nodeid, _figures(measure), samples, entry, gates, settings.options
        )
        while needs_confirmation(changes) and len(measure.call_ms) < settings.options.confirm_runs:
            try:
                call_ms, cpu_ms = _timed_run(item)
            except Exception:
                break  # the re-run itself failed: keep what we have, undecided
            measure.call_ms.append(call_ms)
            measure.cpu_ms.append(cpu_ms)
            measure.reference_ms.append(reference_ms())
            samples = {"call_ms": measure.call_ms, "cpu_ms": measure.cpu_ms}
            changes = compare_test(
                item.nodeid,
                _figures(measure),
                samples,
                entry,
                gates,
                settings.options,
                slowdown=slowdown_of(measure.reference_ms, base_reference),
            )
        measure.changes = changes
        if not failing:
            return None
        return [change.message() for change in changes if change.verdict == "regression"]

    def pytest_kari_debug_test_record(self, item: pytest.Item, record: dict[str, Any]) -> None:
        """Put the test's samples, figures and changes in its record."""
        measure = item.stash.get(_MEASURE, None)
        if measure is None:
            return
        record["extra"]["gates"] = {
            "samples": {"call_ms": measure.call_ms, "cpu_ms": measure.cpu_ms},
            "reference_ms": measure.reference_ms,
            "figures": _figures(measure),
            "changes": [change.to_dict() for change in measure.changes],
        }


def pytest_kari_debug_run_finished(
    config: pytest.Config, run: dict[str, Any], tests: RunRecords, sections: dict[str, Any]
) -> None:
    """Save the baseline asked for; gather the comparison for the JSON, store and summary."""
    settings = config.stash[GATES]
    if not (settings.compare or settings.save):
        return
    from ..gates import Change, Comparison, build_baseline, write_baseline_file

    state = config.stash[STATE]
    if settings.compare:
        comparison = Comparison(settings.baseline_label or settings.compare)
        for test in tests:
            for change in (test.get("extra") or {}).get("gates", {}).get("changes", []):
                comparison.changes.append(
                    Change(**{k: v for k, v in change.items() if k != "percent"})
                )
        sections["comparison"] = comparison.to_dict()
        config.stash[_COMPARISON] = comparison
    if settings.save:
        with guard(config, f"saving baseline {settings.save!r}"):
            document = build_baseline(settings.save, tests, run)
            if state.store is not None:
                state.store.save_baseline(settings.save, document, state.run_id)
                state.outputs[f"baseline {settings.save}"] = state.store.label
            if settings.baseline_file is not None:
                path = write_baseline_file(settings.baseline_file, document)
                state.outputs[f"baseline {settings.save} (file)"] = str(path)


_COMPARISON: pytest.StashKey[Comparison] = pytest.StashKey()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """A comparison table in the manner of pytest-benchmark, most severe first."""
    comparison = config.stash.get(_COMPARISON, None)
    if comparison is None:
        return
    with guard(config, "writing the comparison table"):
        rows = [c for c in comparison.sorted() if c.verdict != "unmeasured"]
        regressions = comparison.regressions()
        title = f"kari-debug comparison with {comparison.baseline_name}"
        terminalreporter.section(f"{title}: {len(regressions)} regression(s)")
        width = min(60, max([len(c.nodeid) for c in rows] + [4]))
        terminalreporter.write_line(
            f"{'test':{width}} {'metric':16} {'baseline':>14} {'now':>14} {'change':>9}  verdict"
        )
        for change in rows[:40]:
            percent = f"{change.percent:+.1f}%" if change.percent is not None else "-"
            verdict = "REGRESSION" if change.verdict == "regression" else change.verdict
            base, now = _fmt(change.baseline, change.metric), _fmt(change.current, change.metric)
            terminalreporter.write_line(
                f"{change.nodeid[-width:]:{width}} {change.metric:16} {base:>14} {now:>14}"
                f" {percent:>9}  {verdict}"
            )
        if len(rows) > 40:
            terminalreporter.write_line(f"... {len(rows) - 40} more rows in the JSON export")
        for change in regressions:
            terminalreporter.write_line(change.message())


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    if metric.endswith("_ms"):
        return f"{value:.3f} ms"
    if metric.endswith("_bytes"):
        return f"{value / 1e6:.3f} MB"
    return f"{value:g}"
