"""The run's sections (``metrics``, ``errors``, ``profiling``, ``tracing``), built once.

Each section is made here from the run's test records, every per-test figure read through the
catalogue (:mod:`pytest_kari_debug.figures`), and the same section feeds the run's JSON, the
HTML report and the terminal summary (its ``*_lines`` function). Data in, data out: the plugin
adds what only it knows (the store's error states, output paths), the CLI rebuilds a section
for a run read back from the store.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from typing import Any, Protocol, TypeVar

from ..errors.grouping import OccurrenceGrouping, occurrences_of_test
from ..figures import ROOT_TAG, DirectFigures, RecordFigures
from ..model import DROP_MARKER_ORIGIN, Kind, RecordView, TestRecord
from ..sharedmethods import dataclass
from ..storage import dumps
from ..views import error_group_rows, metric_stats, short_text

#: Tests listed in each "top" list of the metrics section.
TOP = 5
#: Groups kept in the run's ``errors`` section (JSON export and store).
SECTION_GROUPS = 100
#: Groups listed in the terminal summary.
SUMMARY_GROUPS = 10
#: Slowest tests (call phase) and bottlenecks the ``profiling`` section and summary list.
SLOWEST_TESTS = 5
TOP_BOTTLENECKS = 5

_Entry = tuple[float, int, Any]
# (a module's name is read faster than an enum's member, read a few times a test)
_METRICS, _ERRORS, _LOGGING = Kind.METRICS, Kind.ERROR_TRACKING, Kind.LOGGING
_PROFILING, _TRACING = Kind.PROFILING, Kind.TRACING
_T = TypeVar("_T")


def _keep(heap: list[_Entry], size: int, value: float, order: int, item: Any) -> None:
    """Keep the *size* largest values in *heap* (ties: the first seen)."""
    entry = (value, -order, item)
    if len(heap) < size:
        heapq.heappush(heap, entry)
    elif entry > heap[0]:
        heapq.heapreplace(heap, entry)


def _largest(heap: list[_Entry]) -> list[Any]:
    return [item for _, _, item in sorted(heap, reverse=True)]


class _Figures(Protocol):
    def base(self, name: str) -> float | None: ...


class _Part(Protocol):
    def add(self, order: int, record: RecordView, figures: _Figures) -> None: ...


def _feed(tests: Iterable[Mapping[str, Any] | TestRecord], parts: tuple[_Part, ...]) -> None:
    """Read each test's record once and hand it (and its figures) to every part."""
    for order, test in enumerate(tests):
        record = RecordView(test.to_dict() if isinstance(test, TestRecord) else test)
        figures = RecordFigures(record)
        for part in parts:
            part.add(order, record, figures)


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class LogCounts:
    """The run's log records per level (drop markers aside) and the records dropped."""

    by_level: dict[str, int]
    dropped: int


@dataclass(frozen=True)
class AlertedTest:
    """A test whose rules fired: its node id and extension as written, its alert records
    and the ``fired`` entries of its ``extra["alerts"]``."""

    nodeid: Any
    extension_id: Any
    records: tuple[Mapping[str, Any], ...]
    fired: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class RunSections:
    """The sections of a run that read every test, built in one pass over its tests (or as
    each test finished: :class:`RunDigest`)."""

    metrics: dict[str, Any]
    #: None when no test was profiled.
    profiling: dict[str, Any] | None
    #: Tests that recorded at least one error (the ``errors`` section's ``affected_tests``).
    affected_tests: int
    #: The tracing figures (:func:`tracing_section`), when the run was traced.
    tracing: dict[str, Any] | None = None
    #: The run's error groups, as :func:`~pytest_kari_debug.views.run_error_groups` gives them.
    error_groups: list[dict[str, Any]] = field(default_factory=list)
    #: The log records per level.
    logs: LogCounts = field(default_factory=lambda: LogCounts({}, 0))
    #: Whether some test's alert rules were judged, and the tests whose rules fired.
    alerts_judged: bool = False
    alerted_tests: tuple[AlertedTest, ...] = ()
    #: The parts that raised (on a test's record or when made), each as ``"name: error"``;
    #: their sections are empty, the other sections are whole.
    failed: tuple[str, ...] = ()


class _Parts:
    """Every part of :class:`RunSections`, fed one test at a time.

    A part that raises (on a record, or making its section) is set aside with its error: its
    section is left empty and the other parts go on, so one odd record or one bug costs one
    section, never the run's summary.
    """

    def __init__(self, slow_span_ms: float | None) -> None:
        self.metrics, self.profiling = _MetricsPart(), _ProfilingPart()
        self.affected, self.errors = _AffectedPart(), _ErrorGroupsPart()
        self.logs, self.alerts = _LogsPart(), _AlertsPart()
        self.tracing = _TracingPart(slow_span_ms) if slow_span_ms is not None else None
        parts: tuple[_Part, ...] = (
            self.metrics, self.profiling, self.affected, self.errors, self.logs, self.alerts,
        )  # fmt: skip
        self.all = parts if self.tracing is None else (*parts, self.tracing)
        #: Part name -> its error, for the parts set aside.
        self.failed: dict[str, str] = {}

    def add(self, order: int, record: RecordView, figures: _Figures) -> None:
        """Hand one test's record to every part still working."""
        for part in self.all:
            try:
                part.add(order, record, figures)
            except Exception as exc:
                self._set_aside(part, _failure(exc))

    def _set_aside(self, part: _Part, failure: str) -> None:
        name = _PART_NAMES[type(part)]
        self.failed.setdefault(name, failure)
        self.all = tuple(p for p in self.all if p is not part)

    def _made(self, part: _Part, make: Callable[[], _T], empty: _T) -> _T:
        """``make()`` of a working *part*, else (set aside, or raising now) *empty*."""
        if _PART_NAMES[type(part)] in self.failed:
            return empty
        try:
            return make()
        except Exception as exc:
            self._set_aside(part, _failure(exc))
            return empty

    def result(self) -> RunSections:
        made = self._made
        tracing = self.tracing
        errors = self.errors
        built = RunSections(
            metrics=made(self.metrics, self.metrics.section, _MetricsPart().section()),
            profiling=made(self.profiling, self.profiling.section, None),
            affected_tests=made(self.affected, lambda: self.affected.count, 0),
            tracing=None if tracing is None else made(tracing, tracing.section, None),
            error_groups=made(errors, lambda: error_group_rows(errors.grouping.ordered()), []),
            logs=made(
                self.logs,
                lambda: LogCounts(dict(self.logs.counts), self.logs.dropped),
                LogCounts({}, 0),
            ),
            alerts_judged=made(self.alerts, lambda: self.alerts.judged, False),
            alerted_tests=made(self.alerts, lambda: tuple(self.alerts.tests), ()),
        )
        if not self.failed:
            return built
        failed = tuple(f"{name}: {failure}" for name, failure in self.failed.items())
        return dataclasses.replace(built, failed=failed)


def run_sections(
    tests: Iterable[Mapping[str, Any] | TestRecord], slow_span_ms: float | None = None
) -> RunSections:
    """The metrics and profiling sections, the tests with errors, the error groups, the log
    counts, the tests whose alert rules fired and, with *slow_span_ms* (a traced run), the
    tracing figures: each test's record read once for all."""
    parts = _Parts(slow_span_ms)
    _feed(tests, (parts,))
    return parts.result()


class RunDigest:
    """:func:`run_sections` built as the tests finish, from their records in memory: the end
    of the run then reads no test again.

    Each record is read as it is added and let go (none is held: a record kept for later
    would outlive collections of the young objects and cost them), its figures read directly
    (:class:`~pytest_kari_debug.figures.DirectFigures`). A record that could not be read (an
    internal error) leaves the digest :attr:`broken`: the caller then builds the sections from
    the run's records instead.
    """

    __slots__ = ("_parts", "broken", "count")

    def __init__(self, slow_span_ms: float | None = None) -> None:
        self._parts = _Parts(slow_span_ms)
        #: The tests added.
        self.count = 0
        self.broken = False

    def add(self, test: Mapping[str, Any]) -> None:
        """Add one finished test's record (read, never changed, not kept)."""
        order = self.count
        self.count += 1
        if self.broken:
            return
        self.broken = True  # until every part has the record
        record = RecordView(test)
        self._parts.add(order, record, DirectFigures(record))
        self.broken = False

    def sections(self) -> RunSections:
        """The sections of the tests added so far."""
        if self.broken:
            msg = "a test record could not be summarised"
            raise RuntimeError(msg)
        return self._parts.result()


# Metrics ---------------------------------------------------------------------------------
class _MetricsPart:
    """The ``metrics`` section, one test at a time."""

    def __init__(self) -> None:
        self.extensions: dict[str, dict[str, int]] = {}
        self.points: dict[str, list[tuple[float, float]]] = {}
        self.units: dict[str, tuple[float, str]] = {}
        self.tops: dict[str, list[_Entry]] = {
            "cpu_ms": [], "peak_rss_bytes": [], "allocated_bytes": [],
        }  # fmt: skip

    def add(self, order: int, record: RecordView, figures: _Figures) -> None:
        found = record.kept(_METRICS)
        if found is None:
            return
        records, dropped = found
        extension = record.extension_id
        entry = self.extensions.get(extension)
        if entry is None:
            entry = self.extensions[extension] = {"tests": 0, "points": 0, "dropped": 0}
        entry["tests"] += 1
        entry["points"] += len(records)
        entry["dropped"] += dropped
        points, units = self.points, self.units
        for point in records:
            name, value, ts = point.get("name"), _number(point.get("value")), point.get("ts")
            if name is None or value is None:
                continue
            when = _number(ts) or 0.0
            points.setdefault(str(name), []).append((when, value))
            seen = units.get(str(name))
            if seen is None or when >= seen[0]:
                units[str(name)] = (when, str(point.get("unit") or ""))
        tops = self.tops
        for key, figure in _TOP_FIGURES:
            base = figures.base(figure)
            if base is not None:
                value = base if key == "cpu_ms" else round(base)
                heap = tops[key]
                if len(heap) < TOP or value > heap[0][0]:  # else it would not be kept
                    _keep(heap, TOP, value, order, (record.nodeid, value))

    def section(self) -> dict[str, Any]:
        names = {}
        for name in sorted(self.points):
            stats = metric_stats(name, self.units[name][1], self.points[name])
            stats["sum"] = sum(value for _, value in self.points[name])
            names[name] = stats
        return {
            "extensions": self.extensions,
            "metrics": names,
            **{
                f"top_{key}": [{"nodeid": nodeid, key: value} for nodeid, value in _largest(heap)]
                for key, heap in self.tops.items()
            },
        }


_TOP_FIGURES = (("cpu_ms", "cpu_ms"), ("peak_rss_bytes", "peak_rss_mb"),
                ("allocated_bytes", "allocated_mb"))  # fmt: skip


def metrics_section(tests: Iterable[Mapping[str, Any] | TestRecord]) -> dict[str, Any]:
    """The ``metrics`` section: per extension and per metric name, and the tests that used
    the most CPU, resident memory and allocated memory (the catalogue's figures, in base
    units).

    Each metric's statistics are :func:`~pytest_kari_debug.views.metric_stats` (the report's
    table and the live dashboard show the same), plus ``sum``.
    """
    part = _MetricsPart()
    _feed(tests, (part,))
    return part.section()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def metrics_line(section: Mapping[str, Any]) -> str | None:
    """The terminal summary line of the ``metrics`` section (None without metrics)."""
    if not section.get("extensions"):
        return None
    points = sum(e["points"] for e in section["extensions"].values())
    dropped = sum(e["dropped"] for e in section["extensions"].values())
    tests = sum(e["tests"] for e in section["extensions"].values())
    line = f"metrics: {points} point(s) of {len(section['metrics'])} metric(s) in {tests} test(s)"
    if dropped:
        line += f", {dropped} dropped at max_metrics"
    if section["top_peak_rss_bytes"]:
        best = section["top_peak_rss_bytes"][0]
        line += f"; highest peak RSS {best['peak_rss_bytes'] / 2**20:.1f} MiB ({best['nodeid']})"
    if section["top_cpu_ms"]:
        best = section["top_cpu_ms"][0]
        line += f"; most CPU {best['cpu_ms']:.1f} ms ({best['nodeid']})"
    return line


# Errors ----------------------------------------------------------------------------------
class _AffectedPart:
    """How many tests recorded at least one error, one test at a time."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, order: int, record: RecordView, figures: _Figures) -> None:
        found = record.kept(_ERRORS)
        if found is not None and (found[0] or found[1]):  # else the figure is 0 or missing
            self.count += bool(figures.base("errors"))


class _ErrorGroupsPart:
    """The run's error groups (:func:`~pytest_kari_debug.views.run_error_groups`), one test
    at a time."""

    def __init__(self) -> None:
        self.grouping = OccurrenceGrouping()

    def add(self, order: int, record: RecordView, figures: _Figures) -> None:
        if record.records(_ERRORS) or record.value(_ERRORS, "groups"):
            for occurrence in occurrences_of_test(record):
                self.grouping.add(occurrence)


class _LogsPart:
    """The run's log records per level and the records dropped, one test at a time."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.dropped = 0

    def add(self, order: int, record: RecordView, figures: _Figures) -> None:
        found = record.kept(_LOGGING)
        if found is None:
            return
        records, dropped = found
        self.dropped += dropped
        counts = self.counts
        for entry in records:
            if entry.get("origin") != DROP_MARKER_ORIGIN:
                level = str(entry.get("level"))
                counts[level] = counts.get(level, 0) + 1


class _AlertsPart:
    """Whether some test's alert rules were judged, and the tests whose rules fired."""

    def __init__(self) -> None:
        self.judged = False
        self.tests: list[AlertedTest] = []

    def add(self, order: int, record: RecordView, figures: _Figures) -> None:
        result = record.extra.get("alerts")
        if not result:
            return
        self.judged = True
        fired = result.get("fired") if isinstance(result, Mapping) else None
        if not fired:
            return
        # As the run's documents hold them (a record in memory may hold a tuple, a NaN...).
        records, fired = json.loads(dumps([record.records(Kind.ALERTING), fired]))
        self.tests.append(
            AlertedTest(
                nodeid=record.data.get("nodeid"),
                extension_id=record.data.get("extension_id"),
                records=tuple(r for r in records if isinstance(r, Mapping)),
                fired=tuple(fired),
            )
        )


def affected_tests(tests: Iterable[Mapping[str, Any] | TestRecord]) -> int:
    """How many tests recorded at least one error (the ``errors`` figure)."""
    part = _AffectedPart()
    _feed(tests, (part,))
    return part.count


def errors_section(
    groups: list[dict[str, Any]],
    trend: list[dict[str, Any]],
    direction: str,
    affected: int,
    *,
    has_store: bool,
) -> dict[str, Any]:
    """The ``errors`` section: totals, categories, new and regressed groups, the trend.

    *groups* are the run's error groups (with the store's state merged in, when there is a
    store), most errors first; *trend* is the store's error count of the last runs and
    *direction* the way it goes.
    """
    categories: dict[str, int] = {}
    for group in groups:
        categories[group["category"]] = categories.get(group["category"], 0) + group["count"]
    return {
        "total_errors": sum(group["count"] for group in groups),
        "unique_errors": len(groups),
        "affected_tests": affected,
        "categories": dict(sorted(categories.items(), key=lambda item: -item[1])),
        "new_groups": [g["fingerprint"] for g in groups if g.get("new")],
        "regressed_groups": [g["fingerprint"] for g in groups if g.get("regressed_now")],
        "groups": groups[:SECTION_GROUPS],
        "groups_omitted": max(0, len(groups) - SECTION_GROUPS),
        "trend": {"runs": trend, "direction": direction},
        "store": has_store,
    }


def errors_lines(section: Mapping[str, Any]) -> list[str]:
    """Terminal summary lines of the ``errors`` section: totals, then the top groups."""
    total = section["total_errors"]
    if not total:
        return []
    groups = section["groups"]
    head = (
        f"errors: {total} in {section['unique_errors']} group(s),"
        f" {section['affected_tests']} test(s) affected"
    )
    if section["store"]:
        head += f"; {len(section['new_groups'])} new, {len(section['regressed_groups'])} regressed"
        runs = section["trend"]["runs"]
        if len(runs) >= 2:
            head += f"; trend over {len(runs)} runs: {section['trend']['direction']}"
    lines = [head]
    for group in groups[:SUMMARY_GROUPS]:
        ident = f"#{group['group_id']} " if group.get("group_id") is not None else ""
        # the first occurrence's own words; the template (with <num>) is for grouping
        text = group.get("message") or group.get("template") or ""
        line = (
            f"  [{ident}{group['fingerprint'][:8]}] {group['count']}x"
            f" {group['error_type']}: {short_text(text, 100)} ({group['category']};"
            f" {group['tests']} test(s))"
        )
        if group.get("culprit"):
            line += f" at {group['culprit']}"
        if group.get("regressed_now"):
            note = f": {group['notes']}" if group.get("notes") else ""
            line += f" REGRESSED after being resolved{note}"
        elif group.get("new"):
            line += " NEW"
        elif group.get("first_seen_run") is not None:
            line += f" first seen run {group['first_seen_run']}"
        lines.append(line)
    if len(groups) > SUMMARY_GROUPS or section["groups_omitted"]:
        more = len(groups) - SUMMARY_GROUPS + section["groups_omitted"]
        lines.append(f"  ... {more} more group(s) (see the JSON export or errors.csv)")
    return lines


# Profiling -------------------------------------------------------------------------------
def _profiling_overhead(overheads: list[Mapping[str, Any]]) -> dict[str, Any]:
    if not overheads:
        return {}
    return {
        "limit_percent": overheads[-1].get("limit_percent"),
        "max_percent": max(o.get("percent", 0.0) for o in overheads),
        "adjusted_sessions": sum(1 for o in overheads if o.get("adjusted")),
        "last_interval_s": overheads[-1].get("next_interval_s"),
        "max_function_timing_every": max(o.get("function_timing_every", 1) for o in overheads),
    }


class _ProfilingPart:
    """The ``profiling`` section, one test at a time."""

    def __init__(self) -> None:
        self.profiles: list[dict[str, Any]] = []
        self.overheads: list[Mapping[str, Any]] = []
        self.slowest: list[_Entry] = []
        self.files: list[Any] = []

    def add(self, order: int, record: RecordView, figures: _Figures) -> None:
        data = record.component(_PROFILING) if record.has(_PROFILING) else None
        if data is not None and (data.details.get("profile") or data.details.get("functions")):
            profile = data.to_dict()
            self.profiles.append(profile)
            overhead = (profile.get("profile") or {}).get("overhead")
            if overhead:
                self.overheads.append(overhead)
        value = figures.base("call_ms")
        if value is not None:
            heap = self.slowest
            if len(heap) < SLOWEST_TESTS or value > heap[0][0]:  # else it would not be kept
                entry = {"nodeid": record.nodeid, "call_ms": value, "outcome": record.outcome}
                _keep(heap, SLOWEST_TESTS, value, order, entry)
        found = record.extra.get("profiling")
        if found and isinstance(found, Mapping):  # (an empty one, every test's: no ABC check)
            files = found.get("files")
            if files is not None and isinstance(files, Mapping):
                self.files.append(dict(files))

    def section(self) -> dict[str, Any] | None:
        if not self.profiles:
            return None
        from ..profiler import bottlenecks_from_profiles  # (a run that profiled some test)

        return {
            "profiled_tests": len(self.profiles),
            "slowest_tests": _largest(self.slowest),
            "bottlenecks": bottlenecks_from_profiles(self.profiles, limit=10),
            "overhead": _profiling_overhead(self.overheads),
            "files": self.files,
        }


def profiling_section(tests: Iterable[Mapping[str, Any] | TestRecord]) -> dict[str, Any] | None:
    """The ``profiling`` section (None when no test was profiled): the slowest tests by their
    ``call_ms`` figure, the bottlenecks of every profile, the profiler's own overhead and the
    profile files."""
    part = _ProfilingPart()
    _feed(tests, (part,))
    return part.section()


def profiling_lines(section: Mapping[str, Any]) -> list[str]:
    """Terminal summary lines of the ``profiling`` section."""
    count = section["profiled_tests"]
    lines = [f"profiling: {count} test(s) profiled; slowest tests (call phase):"]
    lines += [f"  {t['call_ms']:10.1f} ms  {t['nodeid']}" for t in section["slowest_tests"]]
    bottlenecks = section["bottlenecks"]
    top = [b for b in bottlenecks if b["kind"] == "function"][:TOP_BOTTLENECKS]
    if not top:
        top = [b for b in bottlenecks if b["kind"] == "timed"][:TOP_BOTTLENECKS]
    if top:
        lines.append("top bottlenecks (share of profiled time):")
        for entry in top:
            advice = f": {entry['recommendation']}" if entry.get("recommendation") else ""
            lines.append(f"  {100 * entry['share']:5.1f}%  {entry['name']}{advice}")
    overhead = section["overhead"]
    if overhead.get("adjusted_sessions") or overhead.get("max_function_timing_every", 1) > 1:
        lines.append(
            f"profiling overhead over the {overhead['limit_percent']:g}% limit: sampling"
            f" interval now {overhead['last_interval_s'] * 1000:g} ms, function timing 1 in"
            f" {overhead['max_function_timing_every']} calls"
        )
    return lines


# Tracing ---------------------------------------------------------------------------------
#: Spans and bottlenecks the ``tracing`` section lists.
SLOWEST_SPANS = 10
BOTTLENECK_SPANS = 20


class _TracingPart:
    """The ``tracing`` section, one test at a time (the spans are never all kept)."""

    def __init__(self, slow_span_ms: float) -> None:
        self.slow_span_ms = slow_span_ms
        self.spans = self.roots = self.dropped = self.unsampled = 0
        self.traces: set[Any] = set()
        self.order = itertools.count()  # ties never compare the dicts
        self.slowest: list[_Entry] = []
        self.bottlenecks: list[_Entry] = []

    def add(self, order: int, record: RecordView, figures: _Figures) -> None:
        data = record.component(_TRACING)
        if data is None:
            return
        self.spans += int(figures.base("spans") or 0)
        self.dropped += data.dropped
        self.unsampled += data.details.get("sampled") is False
        by_trace: dict[Any, list[dict[str, Any]]] = {}
        for span in data.records:
            self.roots += bool((span.get("tags") or {}).get(ROOT_TAG))
            by_trace.setdefault(span.get("trace_id"), []).append(dict(span))
            duration = float(span.get("duration_ms") or 0)
            _keep(self.slowest, SLOWEST_SPANS, duration, next(self.order), span)
        self.traces.update(by_trace)
        from ..tracing import analyze_spans  # (a run that traced some test)

        for trace_spans in by_trace.values():
            for found in analyze_spans(trace_spans, self.slow_span_ms)["bottlenecks"]:
                order_ = next(self.order)
                _keep(self.bottlenecks, BOTTLENECK_SPANS, found["duration_ms"], order_, found)

    def section(self) -> dict[str, Any]:
        return {
            "spans": self.spans,
            "root_spans": self.roots,
            "traces": len(self.traces),
            "dropped_spans": self.dropped,
            "unsampled_tests": self.unsampled,
            "slow_span_ms": self.slow_span_ms,
            "slowest": [
                {k: s.get(k) for k in ("trace_id", "span_id", "name", "duration_ms")}
                for s in _largest(self.slowest)
            ],
            "bottlenecks": _largest(self.bottlenecks),
        }


def tracing_section(
    tests: Iterable[Mapping[str, Any] | TestRecord], slow_span_ms: float
) -> dict[str, Any]:
    """The ``tracing`` section's figures, one test at a time (the spans are never all kept):
    the tests' own spans (the ``spans`` figure: kept and dropped, root spans aside), the
    tests' root spans, traces,
    drops, unsampled tests, the slowest spans and the bottlenecks of each test's traces."""
    part = _TracingPart(slow_span_ms)
    _feed(tests, (part,))
    return part.section()


def tracing_line(section: Mapping[str, Any]) -> str:
    """The terminal summary line of the ``tracing`` section."""
    line = (
        f"tracing: {section['spans']} spans and {section['root_spans']} test root spans in"
        f" {section['traces']} traces"
    )
    if section["dropped_spans"] or section["unsampled_tests"]:
        line += (
            f" ({section['dropped_spans']} spans dropped,"
            f" {section['unsampled_tests']} tests unsampled)"
        )
    return line


#: How the diagnostics name each part of :class:`RunSections`.
_PART_NAMES: dict[type, str] = {
    _MetricsPart: "the metrics section",
    _ProfilingPart: "the profiling section",
    _AffectedPart: "the count of tests with errors",
    _ErrorGroupsPart: "the error groups",
    _LogsPart: "the log counts",
    _AlertsPart: "the fired alerts",
    _TracingPart: "the tracing section",
}
