"""The one catalogue of figures: what can be measured about a test, defined once.

Each figure has a name, a meaning, a unit (and a base unit: MiB figures are bytes underneath),
where it comes from, and one reader: :func:`measure` on a :class:`Figures` source, which is a
live debug session (:class:`SessionFigures`), a stored test record (:class:`RecordFigures`) or a
plain mapping (:class:`StaticFigures`). Alert rules, budgets, regression gates, the report, the
CLI, the API, the Prometheus export and the JSON summaries all read figures here.

**What ``duration_ms`` means**: the test's own time from the start of its setup to the end of
its call phase (``setup_ms + call_ms``), without the plugin's own work. It is the time up to
the test's verdict: alert rules and budgets, judged at the end of the call phase, see the same
value as the record, the report and the exports. Teardown has its own figure, ``teardown_ms``.
The regression gate ``duration`` compares ``call_ms``, the part ``--kari-repeat`` re-runs.

The plugin's own cost is never in a test's figures; it is its own figure, ``kari_overhead_ms``.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Protocol

from .exceptions import ConfigurationError
from .model import DROP_MARKER_ORIGIN, LOG_LEVELS, MIB, ComponentData, Kind, TestRecord, Unit
from .stats import quantile

__all__ = [
    "FIGURES",
    "LOG_LEVELS",
    "METRIC_AGGREGATES",
    "MIB",
    "SPAN_AGGREGATES",
    "DataFigures",
    "FigureSpec",
    "Figures",
    "Measurement",
    "RecordFigures",
    "SessionFigures",
    "StaticFigures",
    "UnknownFigure",
    "catalogue",
    "display_rules",
    "figure_rows",
    "figure_spec",
    "format_figure",
    "format_value",
    "known_figures",
    "measure",
    "test_figure_names",
    "values",
]

#: Tag of a debug session's root span (a test under --kari-trace): not counted in its figures.
ROOT_TAG = "kari.session.root"
SPAN_AGGREGATES = ("count", "total_ms", "max_ms", "min_ms", "mean_ms", "p50_ms", "p90_ms",
                   "p95_ms", "p99_ms")  # fmt: skip
METRIC_AGGREGATES = ("last", "max", "min", "mean", "sum", "count", "p50", "p90", "p95", "p99")


class UnknownFigure(ConfigurationError):
    """A figure name that is not in the catalogue (the message lists the catalogue)."""


@dataclass(frozen=True)
class FigureSpec:
    """A figure: its name, unit, meaning, where it comes from, and whether it is a series."""

    name: str
    unit: str
    description: str
    series: bool = False
    source: str = ""

    @property
    def base_unit(self) -> str:
        """The unit of :attr:`Measurement.base` (bytes for a MiB figure)."""
        return _unit(self.unit).base.value

    @property
    def factor(self) -> float:
        """Multiply a value by this to get it in :attr:`base_unit`."""
        return _unit(self.unit).factor

    def to_dict(self) -> dict[str, Any]:
        """The catalogue entry, as ``kari-debug figures --format json`` and the API show it."""
        return {
            "name": self.name,
            "unit": self.unit,
            "base_unit": self.base_unit,
            "description": self.description,
            "source": self.source,
            "series": self.series,
        }


def _unit(text: str) -> Unit:
    try:
        return Unit(text)
    except ValueError:
        return Unit.NONE


_PHASES = "pytest phase timings of the test's own work (not the plugin's)"
_RESOURCES = "the metrics collector's session readings (getrusage, /proc/self/statm)"
_TRACEMALLOC = "tracemalloc, started once per run (--kari-memory or memory_tracking)"

#: The fixed figures; ``log.<level>``, ``errors:<type>``, ``span:<name>.<agg>`` and
#: ``metric:<name>[.<agg>]`` are families recognised by :func:`figure_spec`.
FIGURES: dict[str, FigureSpec] = {
    spec.name: spec
    for spec in (
        FigureSpec(
            "duration_ms", "ms", "the test's own time, setup + call phases (teardown apart)",
            source=_PHASES,
        ),
        FigureSpec("setup_ms", "ms", "the test's own setup phase (its fixtures)", source=_PHASES),
        FigureSpec("call_ms", "ms", "the test's own call phase", source=_PHASES),
        FigureSpec("teardown_ms", "ms", "the test's own teardown phase", source=_PHASES),
        FigureSpec(
            "cpu_ms", "ms",
            "CPU time (user + system) of the process over the test's setup + call, without the"
            " plugin's own threads",
            source="time.process_time around the test's own phases",
        ),
        FigureSpec(
            "kari_overhead_ms", "ms",
            "the plugin's own time inside the test's window (starting and stopping its debug"
            " session, verdicts, record); not part of any other figure",
            source="pytest phase timings minus the test's own work",
        ),
        FigureSpec(
            "cpu_percent", "%", "CPU use of the process (sampled, or the test's mean)",
            series=True, source="the metrics sampler thread (psutil)",
        ),
        FigureSpec(
            "rss_mb", "MiB", "resident memory of the process (sampled)", series=True,
            source="the metrics sampler thread (psutil)",
        ),
        FigureSpec(
            "peak_rss_mb", "MiB", "peak resident memory of the process during the test",
            source=_RESOURCES,
        ),
        FigureSpec(
            "rss_growth_mb", "MiB", "resident memory at the end minus at the start",
            source=_RESOURCES,
        ),
        FigureSpec(
            "allocated_mb", "MiB", "memory allocated by the test and still held",
            source=_TRACEMALLOC,
        ),
        FigureSpec(
            "peak_memory_mb", "MiB",
            "the test's one memory peak: highest traced memory above its start",
            source=_TRACEMALLOC,
        ),
        FigureSpec(
            "allocated_blocks", "blocks", "memory blocks allocated by the test and still held",
            source="sys.getallocatedblocks",
        ),
        FigureSpec(
            "errors", "errors", "error records of the test (kept and dropped at the cap)",
            source="the error tracker",
        ),
        FigureSpec(
            "error_rate", "errors/s", "error records per second of the test's duration_ms",
            source="the error tracker and the phase timings",
        ),
        FigureSpec(
            "logs", "records", "log records of the test (kept and dropped at the cap)",
            source="the logger",
        ),
        FigureSpec(
            "spans", "spans", "finished spans of the test (kept and dropped at the cap)",
            source="the tracer (the session's root span aside)",
        ),
    )
}  # fmt: skip
_FAMILIES = (
    "log.<debug|info|warning|error|critical>",
    "errors:<error type glob>",
    f"span:<name glob>.<{'|'.join(SPAN_AGGREGATES)}>",
    f"metric:<name>[.<{'|'.join(METRIC_AGGREGATES)}>]",
)


def known_figures() -> str:
    """The accepted figure names and families, for error messages and help."""
    return ", ".join([*FIGURES, *_FAMILIES])


def catalogue() -> list[FigureSpec]:
    """Every fixed figure, then one example spec per family."""
    return [
        *FIGURES.values(),
        FigureSpec("log.<level>", "records", "log records at <level> or above (kept ones)",
                   source="the logger"),
        FigureSpec("errors:<type>", "errors", "error records whose type matches the glob",
                   source="the error tracker"),
        FigureSpec("span:<name>.<aggregate>", "ms",
                   f"an aggregate ({', '.join(SPAN_AGGREGATES)}) of the spans named <name>",
                   source="the tracer"),
        FigureSpec("metric:<name>[.<aggregate>]", "",
                   f"a custom metric's points, or an aggregate"
                   f" ({', '.join(METRIC_AGGREGATES)}) of them", series=True,
                   source="the metrics collector (record_metric)"),
    ]  # fmt: skip


def figure_spec(name: str) -> FigureSpec:
    """Return the spec of figure *name*; raise :class:`UnknownFigure` for an unknown one."""
    spec = FIGURES.get(name)
    if spec is not None:
        return spec
    if name.startswith("log."):
        level = name[4:]
        if level in LOG_LEVELS:
            return FigureSpec(
                name, "records", f"log records at {level.upper()} or above", source="the logger"
            )
        msg = f"unknown log level {level!r} in figure {name!r}; accepted: {', '.join(LOG_LEVELS)}"
        raise UnknownFigure(msg)
    if name.startswith("errors:") and len(name) > 7:
        return FigureSpec(
            name, "errors", f"error records of type {name[7:]!r}", source="the error tracker"
        )
    if name.startswith("span:"):
        target, _, aggregate = name[5:].rpartition(".")
        if target and aggregate in SPAN_AGGREGATES:
            unit = "spans" if aggregate == "count" else "ms"
            return FigureSpec(
                name, unit, f"{aggregate} of the spans named {target!r}", source="the tracer"
            )
        msg = (
            f"figure {name!r} needs span:<name>.<aggregate>, aggregate one of "
            f"{', '.join(SPAN_AGGREGATES)}"
        )
        raise UnknownFigure(msg)
    if name.startswith("metric:"):
        target, dot, aggregate = name[7:].rpartition(".")
        source = "the metrics collector"
        if dot and aggregate in METRIC_AGGREGATES and target:
            return FigureSpec(name, "", f"{aggregate} of the metric {target!r}", source=source)
        if name[7:] and re.fullmatch(r"[A-Za-z_:*?\[\]][\w:*?\[\]]*", name[7:]):
            return FigureSpec(
                name, "", f"points of the metric {name[7:]!r}", series=True, source=source
            )
        msg = (
            f"figure {name!r} needs metric:<name> or metric:<name>.<aggregate>, aggregate one"
            f" of {', '.join(METRIC_AGGREGATES)}"
        )
        raise UnknownFigure(msg)
    msg = f"unknown figure {name!r}; known: {known_figures()}"
    raise UnknownFigure(msg)


# Measurements ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    """The value of one figure, where it came from, or why there is none.

    ``missing`` is set when the figure could not be measured at all (its instrument is off):
    a rule on it fires, since a silent pass would hide broken instrumentation. ``value`` is
    ``None`` without ``missing`` when the figure was measured but had no observation (no span
    of that name): a rule on it does not fire.
    """

    value: float | None
    source: str
    unit: str = ""
    missing: str | None = None
    series: tuple[tuple[float, float], ...] | None = None

    @property
    def base(self) -> float | None:
        """The value in the figure's base unit (bytes for a MiB figure)."""
        if self.value is None:
            return None
        return self.value * _unit(self.unit).factor


class Figures(Protocol):
    """Something that measures figures by name."""

    def measure(self, name: str) -> Measurement:
        """Return the measurement of figure *name* (a name accepted by figure_spec)."""


def _aggregate(values: Sequence[float], aggregate: str) -> float | None:
    name = aggregate.removesuffix("_ms")
    if name == "count":
        return float(len(values))
    if name in ("total", "sum"):
        return float(sum(values))
    if not values:
        return None
    if name == "last":
        return values[-1]
    if name == "max":
        return max(values)
    if name == "min":
        return min(values)
    if name == "mean":
        return sum(values) / len(values)
    return quantile(sorted(values), float(name[1:]) / 100.0)


def _duration(phases: Mapping[str, Any]) -> float:
    """``duration_ms`` from phase timings: setup + call (see the module docstring)."""
    total = 0.0
    for phase in ("setup", "call"):
        value = _number(phases.get(phase))
        if value is not None:
            total += value
    return round(total, 3)


def _field(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


class DataFigures:
    """Computes figures from the raw data of one test; subclasses say where the data lives.

    Each loader returns the data or a string saying why it is not available.
    """

    def phases(self) -> dict[str, float] | str:
        """Phase durations in ms (setup, call, teardown)."""
        return "no phase timings"

    def resources(self) -> Mapping[str, Any] | str:
        """The metrics collector's resource figures of the session."""
        return "no resource figures"

    def memory(self) -> Mapping[str, Any] | str:
        """tracemalloc figures of the session."""
        return "no tracemalloc figures"

    def samples(self) -> Sequence[Any] | str:
        """Resource samples taken during the session."""
        return "no resource samples"

    def metric_points(self) -> Sequence[Any] | str:
        """Metric points recorded during the session."""
        return "no metric points"

    def errors(self) -> Sequence[Any] | str:
        """Error records of the session."""
        return "no error records"

    def logs(self) -> Sequence[Any] | str:
        """Log records of the session."""
        return "no log records"

    def spans(self) -> Sequence[Any] | str:
        """Finished spans of the session."""
        return "no spans"

    def own(self) -> Mapping[str, Any] | str:
        """The test's own figures the plugin measured (``cpu_ms``, ``kari_overhead_ms``)."""
        return "no figures of the test's own work"

    def dropped(self) -> Mapping[str, int]:
        """Records each component dropped at its cap (by ``Kind`` value)."""
        return {}

    #: How each loader's data is named in a measurement's ``source``.
    sources: ClassVar[dict[str, str]] = {
        "phases": "pytest phase timings",
        "resources": "metrics resources",
        "memory": "metrics memory (tracemalloc)",
        "samples": "metrics samples",
        "metric_points": "metric points",
        "errors": "error records",
        "logs": "log records",
        "spans": "spans",
        "own": "the plugin's window timings",
    }

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def _load(self, what: str) -> Any:
        if what not in self._cache:
            self._cache[what] = getattr(self, what)()
        return self._cache[what]

    def measure(self, name: str) -> Measurement:
        """Return the measurement of figure *name*."""
        spec = figure_spec(name)
        try:
            return self._measure(name, spec)
        except Exception as exc:  # data of an unexpected shape must not break a test run
            return Measurement(None, "?", spec.unit, missing=f"{type(exc).__name__}: {exc}")

    def _missing(self, spec: FigureSpec, what: str, reason: str) -> Measurement:
        return Measurement(None, self.sources[what], spec.unit, missing=reason)

    def _measure(self, name: str, spec: FigureSpec) -> Measurement:
        if name in ("duration_ms", "setup_ms", "call_ms", "teardown_ms"):
            return self._phase(name, spec)
        if name == "kari_overhead_ms":
            return self._overhead(spec)
        if name in ("cpu_ms", "peak_rss_mb", "rss_growth_mb"):
            return self._resource(name, spec)
        if name in ("cpu_percent", "rss_mb"):
            return self._sampled(name, spec)
        if name in ("allocated_mb", "peak_memory_mb", "allocated_blocks"):
            return self._memory(name, spec)
        if name == "errors" or name.startswith("errors:") or name == "error_rate":
            return self._errors(name, spec)
        if name.startswith("log.") or name == "logs":
            return self._logs(name, spec)
        if name == "spans" or name.startswith("span:"):
            return self._spans(name, spec)
        return self._metric(name, spec)

    def _phase(self, name: str, spec: FigureSpec) -> Measurement:
        phases = self._load("phases")
        if isinstance(phases, str):
            return self._missing(spec, "phases", phases)
        source = self.sources["phases"]
        if name == "duration_ms":
            return Measurement(_duration(phases), f"{source} (setup+call)", spec.unit)
        value = _number(phases.get(name[: -len("_ms")]))
        if value is None:
            return self._missing(spec, "phases", f"no {name[:-3]} phase timing yet")
        return Measurement(value, source, spec.unit)

    def _overhead(self, spec: FigureSpec) -> Measurement:
        own = self._load("own")
        value = None if isinstance(own, str) else _number(own.get("kari_overhead_ms"))
        if value is None:
            reason = own if isinstance(own, str) else "the plugin did not time this test"
            return self._missing(spec, "own", reason)
        return Measurement(value, f"{self.sources['own']}.kari_overhead_ms", spec.unit)

    def _resource(self, name: str, spec: FigureSpec) -> Measurement:
        resources = self._load("resources")
        if isinstance(resources, str):
            return self._missing(spec, "resources", resources)
        source = self.sources["resources"]
        if name == "cpu_ms":
            own = self._load("own")
            value = None if isinstance(own, str) else _number(own.get("cpu_ms"))
            if value is not None:
                return Measurement(value, f"{self.sources['own']}.cpu_ms", spec.unit)
            value = _number(resources.get("cpu_ms"))
            if value is None:
                return self._missing(spec, "resources", "no cpu_ms in the resource figures")
            return Measurement(value, f"{source}.cpu_ms", spec.unit)
        if name == "peak_rss_mb":
            value = _number(resources.get("peak_rss_bytes"))
            if value is None:
                return self._missing(spec, "resources", "no peak_rss_bytes in the resources")
            return Measurement(value / MIB, f"{source}.peak_rss_bytes", spec.unit)
        start = _number(resources.get("rss_start_bytes"))
        end = _number(resources.get("rss_end_bytes"))
        if start is None or end is None:
            return self._missing(spec, "resources", "no rss_start/end_bytes in the resources")
        return Measurement((end - start) / MIB, f"{source}.rss_*_bytes", spec.unit)

    def _sampled(self, name: str, spec: FigureSpec) -> Measurement:
        samples = self._load("samples")
        key, scale = ("cpu_percent", 1.0) if name == "cpu_percent" else ("rss_bytes", 1.0 / MIB)
        points: list[tuple[float, float]] = []
        if not isinstance(samples, str):
            for sample in samples:
                ts, value = _number(_field(sample, "ts")), _number(_field(sample, key))
                if ts is not None and value is not None:
                    points.append((ts, round(value * scale, 3)))
        if points:
            return Measurement(
                points[-1][1], f"{self.sources['samples']}.{key}", spec.unit, series=tuple(points)
            )
        # No sampler points: fall back on the whole test's figure.
        resources = self._load("resources")
        if isinstance(resources, str):
            return self._missing(spec, "resources", resources)
        if name == "rss_mb":
            value = _number(resources.get("rss_end_bytes"))
            if value is None:
                return self._missing(spec, "resources", "no samples and no rss_end_bytes")
            return Measurement(value / MIB, f"{self.sources['resources']}.rss_end_bytes", spec.unit)
        cpu = self._resource("cpu_ms", FIGURES["cpu_ms"])
        phases = self._load("phases")
        wall = _duration(phases) if isinstance(phases, Mapping) else 0.0
        if cpu.value is None or wall <= 0:
            return self._missing(spec, "resources", "no samples, and no cpu_ms and wall time")
        return Measurement(
            round(100.0 * cpu.value / wall, 3),
            f"{cpu.source} / wall time of the test (duration_ms)",
            spec.unit,
        )

    def _memory(self, name: str, spec: FigureSpec) -> Measurement:
        memory = self._load("memory")
        if isinstance(memory, str):
            return self._missing(spec, "memory", memory)
        key = {"allocated_mb": "allocated_bytes", "peak_memory_mb": "peak_bytes"}.get(
            name, "allocated_blocks"
        )
        value = _number(memory.get(key))
        if value is None:
            return self._missing(
                spec, "memory", "memory tracking is off (use --kari-memory or memory_tracking)"
            )
        if name != "allocated_blocks":
            value = value / MIB
        return Measurement(value, f"{self.sources['memory']}.{key}", spec.unit)

    def _errors(self, name: str, spec: FigureSpec) -> Measurement:
        errors = self._load("errors")
        if isinstance(errors, str):
            return self._missing(spec, "errors", errors)
        source = self.sources["errors"]
        if name.startswith("errors:"):
            pattern = name[7:]
            count = sum(
                1 for e in errors if fnmatch.fnmatchcase(str(_field(e, "error_type", "")), pattern)
            )
            return Measurement(float(count), f"{source} of type {pattern!r}", spec.unit)
        count = len(errors) + self.dropped().get(Kind.ERROR_TRACKING.value, 0)
        if name == "errors":
            return Measurement(float(count), source, spec.unit)
        phases = self._load("phases")
        wall_ms = _duration(phases) if isinstance(phases, Mapping) else 0.0
        if wall_ms <= 0:
            return self._missing(spec, "phases", "no wall time to divide the error count by")
        return Measurement(
            round(count / (wall_ms / 1000.0), 3), f"{source} / duration_ms", spec.unit
        )

    def _logs(self, name: str, spec: FigureSpec) -> Measurement:
        logs = self._load("logs")
        if isinstance(logs, str):
            return self._missing(spec, "logs", logs)
        logs = [r for r in logs if _field(r, "origin", None) != DROP_MARKER_ORIGIN]
        if name == "logs":
            count = len(logs) + self.dropped().get(Kind.LOGGING.value, 0)
            return Measurement(float(count), self.sources["logs"], spec.unit)
        floor = LOG_LEVELS[name[4:]]
        count = sum(
            1 for r in logs if LOG_LEVELS.get(str(_field(r, "level", "")).lower(), 0) >= floor
        )
        return Measurement(
            float(count), f"{self.sources['logs']} at {name[4:].upper()} or above", spec.unit
        )

    def _spans(self, name: str, spec: FigureSpec) -> Measurement:
        spans = self._load("spans")
        if isinstance(spans, str):
            return self._missing(spec, "spans", spans)
        # The session's root span is the plugin's picture of the test, not a span it made.
        spans = [span for span in spans if not (_field(span, "tags") or {}).get(ROOT_TAG)]
        source = self.sources["spans"]
        if name == "spans":
            count = len(spans) + self.dropped().get(Kind.TRACING.value, 0)
            return Measurement(float(count), source, spec.unit)
        target, _, aggregate = name[5:].rpartition(".")
        durations = []
        for span in spans:
            if fnmatch.fnmatchcase(str(_field(span, "name", "")), target):
                value = _number(_field(span, "duration_ms"))
                if value is not None:
                    durations.append(value)
        value = _aggregate(durations, aggregate)
        where = f"{source} named {target!r} ({len(durations)})"
        return Measurement(None if value is None else round(value, 3), where, spec.unit)

    def _metric(self, name: str, spec: FigureSpec) -> Measurement:
        points = self._load("metric_points")
        if isinstance(points, str):
            return self._missing(spec, "metric_points", points)
        if spec.series:
            target, aggregate = name[7:], None
        else:
            target, _, aggregate = name[7:].rpartition(".")
        series = []
        for point in points:
            if fnmatch.fnmatchcase(str(_field(point, "name", "")), target):
                ts, value = _number(_field(point, "ts")), _number(_field(point, "value"))
                if ts is not None and value is not None:
                    series.append((ts, value))
        where = f"{self.sources['metric_points']} named {target!r} ({len(series)})"
        if aggregate is None:
            last = series[-1][1] if series else None
            return Measurement(last, where, spec.unit, series=tuple(series))
        value = _aggregate([v for _, v in series], aggregate)
        return Measurement(None if value is None else round(value, 6), where, spec.unit)


def _records(component: Any, session_id: str, off: str) -> list[Any] | str:
    if component is None or not getattr(component, "enabled", True):
        return off
    return list(component.session_records(session_id))


class SessionFigures(DataFigures):
    """Figures of a running debug session, read through a manager's public API.

    *phases* are the pytest phase timings known so far (ms); a manager is any object with
    the getters of :class:`~pytest_kari_debug.manager.ExtensionDebugManager`.
    """

    sources: ClassVar[dict[str, str]] = {
        "phases": "pytest phase timings",
        "resources": "metrics.session_resources",
        "memory": "metrics.session_memory",
        "samples": "metrics.session_samples",
        "metric_points": "metrics.session_records",
        "errors": "error_tracker.session_records",
        "logs": "logger.session_records",
        "spans": "tracer.session_records",
        "own": "the plugin's window timings",
    }

    def __init__(
        self,
        manager: Any,
        session_id: str,
        phases: Mapping[str, float] | None = None,
        own: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.manager = manager
        self.session_id = session_id
        self._phases = dict(phases) if phases is not None else None
        self._own = dict(own) if own is not None else None

    def phases(self) -> dict[str, float] | str:
        return self._phases if self._phases is not None else "no phase timings"

    def own(self) -> Mapping[str, Any] | str:
        return self._own if self._own is not None else "no figures of the test's own work"

    def _metrics(self) -> Any:
        metrics = self.manager.get_metrics_collector()
        return metrics if getattr(metrics, "enabled", True) else None

    def resources(self) -> Mapping[str, Any] | str:
        metrics = self._metrics()
        if metrics is None:
            return "metrics are disabled (metrics_enabled=false)"
        found = metrics.session_resources(self.session_id)
        return found or "no resource figures for this session"

    def memory(self) -> Mapping[str, Any] | str:
        metrics = self._metrics()
        if metrics is None:
            return "metrics are disabled (metrics_enabled=false)"
        reader = getattr(metrics, "session_memory", None)
        if reader is None:
            return "this metrics collector has no session_memory"
        found = reader(self.session_id)
        return found or "memory tracking is off (use --kari-memory or memory_tracking)"

    def samples(self) -> Sequence[Any] | str:
        metrics = self._metrics()
        reader = getattr(metrics, "session_samples", None)
        if reader is None:
            return "no resource samples"
        return list(reader(self.session_id) or ())

    def metric_points(self) -> Sequence[Any] | str:
        metrics = self._metrics()
        if metrics is None:
            return "metrics are disabled (metrics_enabled=false)"
        return list(metrics.session_records(self.session_id))

    def errors(self) -> Sequence[Any] | str:
        return _records(
            self.manager.get_error_tracker(),
            self.session_id,
            "error tracking is disabled (error_tracking_enabled=false)",
        )

    def logs(self) -> Sequence[Any] | str:
        return _records(
            self.manager.get_logger(),
            self.session_id,
            "logging is disabled (logging_enabled=false)",
        )

    def spans(self) -> Sequence[Any] | str:
        return _records(
            self.manager.get_tracer(),
            self.session_id,
            "tracing is disabled (use --kari-trace or tracing_enabled)",
        )


class RecordFigures(DataFigures):
    """Figures of a finished test: a :class:`~pytest_kari_debug.model.TestRecord` or its dict."""

    sources: ClassVar[dict[str, str]] = {
        "phases": "record.phases",
        "resources": "metrics.resources",
        "memory": "metrics.memory",
        "samples": "metrics.samples",
        "metric_points": "metrics.records",
        "errors": "error_tracking.records",
        "logs": "logging.records",
        "spans": "tracing.records",
        "own": "record",
    }

    def __init__(self, record: TestRecord | Mapping[str, Any]) -> None:
        super().__init__()
        self.record = record if isinstance(record, TestRecord) else TestRecord.from_dict(record)

    def _component(self, kind: Kind) -> ComponentData | str:
        data = self.record.collected.get(kind)
        if data is None:
            return f"no {kind.value} data in the record (component disabled)"
        return data

    def _list(self, kind: Kind, key: str = "records") -> Sequence[Any] | str:
        data = self._component(kind)
        if isinstance(data, str):
            return data
        if key == "records":
            return data.records
        found = data.details.get(key)
        return list(found) if isinstance(found, (list, tuple)) else []

    def phases(self) -> dict[str, float] | str:
        phases = self.record.phases
        return dict(phases) if phases else "no phase timings"

    def own(self) -> Mapping[str, Any] | str:
        if self.record.version < 2:
            return "a record of version 1 (written before the plugin timed its own work)"
        return {"cpu_ms": self.record.cpu_ms, "kari_overhead_ms": self.record.kari_overhead_ms}

    def dropped(self) -> Mapping[str, int]:
        return {kind.value: data.dropped for kind, data in self.record.collected.items()}

    def resources(self) -> Mapping[str, Any] | str:
        data = self._component(Kind.METRICS)
        if isinstance(data, str):
            return data
        return self.record.detail(Kind.METRICS, "resources") or "no resource figures in the record"

    def memory(self) -> Mapping[str, Any] | str:
        found = self.record.detail(Kind.METRICS, "memory")
        if found:
            return found
        # A test that only a memory profile traced: its one peak is the profile's.
        profile = self.record.detail(Kind.PROFILING, "memory")
        if profile and _number(profile.get("peak_increase_bytes")) is not None:
            return {
                "peak_bytes": profile["peak_increase_bytes"],
                "allocated_bytes": max(0, _number(profile.get("net_allocated_bytes")) or 0),
            }
        data = self._component(Kind.METRICS)
        return data if isinstance(data, str) else "memory tracking was off (use --kari-memory)"

    def samples(self) -> Sequence[Any] | str:
        return self._list(Kind.METRICS, "samples")

    def metric_points(self) -> Sequence[Any] | str:
        return self._list(Kind.METRICS)

    def errors(self) -> Sequence[Any] | str:
        return self._list(Kind.ERROR_TRACKING)

    def logs(self) -> Sequence[Any] | str:
        return self._list(Kind.LOGGING)

    def spans(self) -> Sequence[Any] | str:
        return self._list(Kind.TRACING)


class StaticFigures:
    """Figures given as a mapping: a number, a list of ``(ts, value)`` points, or ``None``.

    A figure absent from the mapping is missing (not measured).
    """

    def __init__(self, values: Mapping[str, Any], source: str = "given values") -> None:
        self.values = dict(values)
        self.source = source

    def measure(self, name: str) -> Measurement:
        """Return the measurement of figure *name*."""
        spec = figure_spec(name)
        if name not in self.values:
            return Measurement(None, self.source, spec.unit, missing=f"{name} was not given")
        value = self.values[name]
        if value is None:
            return Measurement(None, self.source, spec.unit)
        if isinstance(value, (list, tuple)):
            points = tuple((float(ts), float(v)) for ts, v in value)
            last = points[-1][1] if points else None
            return Measurement(last, self.source, spec.unit, series=points)
        number = _number(value)
        if number is None:
            return Measurement(None, self.source, spec.unit, missing=f"{value!r} is not a number")
        return Measurement(number, self.source, spec.unit)


def measure(name: str, source: Figures | TestRecord | Mapping[str, Any]) -> Measurement:
    """The measurement of figure *name* of a figure source, a test record or its dict.

    An unknown *name* raises :class:`UnknownFigure`, whose message lists the catalogue.
    """
    figures = source if _is_figures(source) else RecordFigures(source)  # type: ignore[arg-type]
    return figures.measure(name)  # type: ignore[union-attr]


def values(
    names: Sequence[str], source: Figures | TestRecord | Mapping[str, Any], *, base: bool = False
) -> dict[str, float]:
    """The measured figures among *names* (left out: missing or with no observation).

    With *base*, each value is in its base unit (bytes for a MiB figure).
    """
    figures = source if _is_figures(source) else RecordFigures(source)  # type: ignore[arg-type]
    found: dict[str, float] = {}
    for name in names:
        measured = figures.measure(name)  # type: ignore[union-attr]
        value = measured.base if base else measured.value
        if measured.missing is None and value is not None:
            found[name] = value
    return found


def _is_figures(source: object) -> bool:
    return callable(getattr(source, "measure", None))


# Display: one unit and rounding rule for every surface (the report's and dashboard's scripts
# read :func:`display_rules`; the templates and the CLI call :func:`format_value`) ----------
#: Larger units a value in a base unit is shown in: ``(factor, symbol)``, smallest first.
_STEPS: dict[str, tuple[tuple[float, str], ...]] = {
    "ms": ((1.0, "ms"), (1000.0, "s"), (60_000.0, "min")),
    "bytes": ((1.0, "B"), (1024.0, "KiB"), (MIB, "MiB"), (1024.0 * MIB, "GiB")),
}
#: Other spellings of units (the sampler's, record_metric's): their base unit and factor.
_ALIASES = {"percent": ("%", 1.0), "s": ("ms", 1000.0), "seconds": ("ms", 1000.0),
            "MB": ("bytes", MIB), "KiB": ("bytes", 1024.0), "B": ("bytes", 1.0)}  # fmt: skip


def display_rules() -> dict[str, Any]:
    """The rules :func:`format_value` follows, as JSON for the pages' scripts."""
    units = {unit.value: [unit.base.value, unit.factor] for unit in Unit}
    units.update({name: [base, factor] for name, (base, factor) in _ALIASES.items()})
    return {"units": units, "steps": {k: [list(s) for s in v] for k, v in _STEPS.items()}}


def _decimals(magnitude: float) -> int:
    """Three significant digits, at most three decimals (0.318, 4.25, 85.5, 942)."""
    return 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3


def _fixed(value: float, decimals: int) -> str:
    """*value* with *decimals* decimals, halves away from zero (as JavaScript's toFixed)."""
    text = str(Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
    return "0" + text[2:] if text.startswith("-0") and not text.strip("-0.") else text


def format_value(value: Any, unit: str) -> str:
    """*value* in *unit* as every surface shows it: in the largest readable unit (ms, s,
    min; B, KiB, MiB, GiB), to three significant digits; ``n/a`` for no number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    base, factor = _ALIASES.get(unit) or (_unit(unit).base.value, _unit(unit).factor)
    if base == "" and unit:  # a unit the catalogue does not know is shown as given
        base, factor = unit, 1.0
    amount, steps = float(value) * factor, _STEPS.get(base, ((1.0, base),))
    index = max([0, *(i for i, (f, _) in enumerate(steps) if abs(amount) >= f)])
    text = ""
    while not text:
        shown = amount / steps[index][0]
        text = str(int(shown)) if shown == int(shown) else _fixed(shown, _decimals(abs(shown)))
        if _decimals(abs(float(text))) < _decimals(abs(shown)):  # 9.996 -> 10.0, not 10.00
            text = _fixed(shown, _decimals(abs(float(text))))
        if index + 1 < len(steps) and abs(float(text)) * steps[index][0] >= steps[index + 1][0]:
            index, text = index + 1, ""  # 999.96 ms -> 1.00 s, not 1000 ms
    return f"{text} {steps[index][1]}".strip()


def format_figure(name: str, value: Any) -> str:
    """The value of figure *name* (in its catalogue unit) as every surface shows it."""
    return format_value(value, figure_spec(name).unit)


def test_figure_names(source: Figures | TestRecord | Mapping[str, Any]) -> list[str]:
    """The figures a test has: every fixed figure of the catalogue, each log level, and
    ``metric:<name>`` / ``span:<name>.total_ms`` for each metric and span name it recorded."""
    names = [*FIGURES, *(f"log.{level}" for level in LOG_LEVELS)]
    figures = source if _is_figures(source) else RecordFigures(source)  # type: ignore[arg-type]
    if isinstance(figures, DataFigures):
        points = figures._load("metric_points")
        spans = figures._load("spans")
        metric_names = {
            str(_field(point, "name")) for point in (() if isinstance(points, str) else points)
        }
        span_names = {
            str(_field(span, "name"))
            for span in (() if isinstance(spans, str) else spans)
            if not (_field(span, "tags") or {}).get(ROOT_TAG)
        }
        names += [f"metric:{name}" for name in sorted(metric_names) if _METRIC_NAME.fullmatch(name)]
        names += [f"span:{name}.total_ms" for name in sorted(span_names) if _plain_name(name)]
    return names


#: A metric name a ``metric:<name>`` figure names exactly (no glob characters, no ``.``).
_METRIC_NAME = re.compile(r"[A-Za-z_:][\w:]*")


def _plain_name(name: str) -> bool:
    """A span name a figure names exactly (no glob characters)."""
    return bool(name) and not any(c in name for c in "*?[]")


def figure_rows(
    source: Figures | TestRecord | Mapping[str, Any], names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One test's figures as rows: ``name``, ``value``, ``unit``, ``base`` (the value in the
    ``base_unit``), ``source`` and ``missing`` (why there is no value), as the API shows them.

    Without *names*, :func:`test_figure_names`. An unknown name raises :class:`UnknownFigure`.
    """
    figures = source if _is_figures(source) else RecordFigures(source)  # type: ignore[arg-type]
    rows = []
    for name in names if names is not None else test_figure_names(figures):
        spec = figure_spec(name)
        measured = figures.measure(name)  # type: ignore[union-attr]
        rows.append(
            {
                "name": name,
                "value": measured.value,
                "unit": measured.unit or spec.unit,
                "base": measured.base,
                "base_unit": spec.base_unit,
                "source": measured.source,
                "missing": measured.missing,
            }
        )
    return rows
