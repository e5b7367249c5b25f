"""Alert rules: a small syntax (``"peak_rss_mb > 200 for 3 tests"``), figures and evaluation.

A rule compares one *figure* of a test (or of a monitored extension) with a threshold:

    duration_ms > 500                 test duration (setup + call) in ms
    peak_rss_mb > 200                 peak RSS of the process during the test, in MiB
    errors > 0                        error records of the test
    log.error > 0                     log records at ERROR or above
    span:db_query.p95_ms > 50         95th percentile of the spans named db_query
    metric:queue_size > 100 for 10s   a recorded metric above 100 for 10 s of points
    cpu_percent > 80 for 5 samples    resource samples above 80 % five times in a row
    errors > 0 for 3 tests            fires on the third test in a row with errors

Rules are parsed once; a bad rule raises :class:`~pytest_kari_debug.exceptions.ConfigurationError`
naming what is wrong and what is accepted. Figures come from a :class:`Figures` source:
:class:`SessionFigures` reads a debug manager's live session, :class:`RecordFigures` a finished
test record, :class:`StaticFigures` a plain mapping.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import operator
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

from .exceptions import ConfigurationError
from .stats import quantile

MIB = 1024.0 * 1024.0


class AlertSeverity(enum.Enum):
    """How bad an alert is; severities are ordered LOW < MEDIUM < HIGH < CRITICAL."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, AlertSeverity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, AlertSeverity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, AlertSeverity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, AlertSeverity):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: str | AlertSeverity) -> AlertSeverity:
        """Return the severity named *value* (case-insensitive)."""
        if isinstance(value, AlertSeverity):
            return value
        if isinstance(value, str):
            found = cls.__members__.get(value.strip().upper())
            if found is not None:
                return found
        accepted = ", ".join(s.value for s in cls)
        msg = f"unknown alert severity {value!r}; accepted: {accepted}"
        raise ConfigurationError(msg)


_RANK = {
    AlertSeverity.LOW: 1,
    AlertSeverity.MEDIUM: 2,
    AlertSeverity.HIGH: 3,
    AlertSeverity.CRITICAL: 4,
}

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
SPAN_AGGREGATES = ("count", "total_ms", "max_ms", "min_ms", "mean_ms", "p50_ms", "p90_ms",
                   "p95_ms", "p99_ms")  # fmt: skip
METRIC_AGGREGATES = ("last", "max", "min", "mean", "sum", "count", "p50", "p90", "p95", "p99")


@dataclass(frozen=True)
class FigureSpec:
    """A figure a rule can test: its unit, whether it is a time series, and what it measures."""

    name: str
    unit: str
    description: str
    series: bool = False


#: The fixed figures; ``log.<level>``, ``errors:<type>``, ``span:<name>.<agg>`` and
#: ``metric:<name>[.<agg>]`` are families recognised by :func:`figure_spec`.
FIGURES: dict[str, FigureSpec] = {
    spec.name: spec
    for spec in (
        FigureSpec("duration_ms", "ms", "test duration, setup + call phases"),
        FigureSpec("setup_ms", "ms", "duration of the setup phase"),
        FigureSpec("call_ms", "ms", "duration of the call phase"),
        FigureSpec("teardown_ms", "ms", "duration of the teardown phase"),
        FigureSpec("cpu_ms", "ms", "CPU time (user + system) of the process during the test"),
        FigureSpec(
            "cpu_percent", "%", "CPU use of the process (sampled, or the test's mean)", series=True
        ),
        FigureSpec("rss_mb", "MiB", "resident memory of the process (sampled)", series=True),
        FigureSpec("peak_rss_mb", "MiB", "peak resident memory of the process during the test"),
        FigureSpec("rss_growth_mb", "MiB", "resident memory at the end minus at the start"),
        FigureSpec("allocated_mb", "MiB", "memory allocated and still held (tracemalloc)"),
        FigureSpec("peak_memory_mb", "MiB", "peak traced memory (tracemalloc)"),
        FigureSpec("allocated_blocks", "blocks", "memory blocks still held (tracemalloc)"),
        FigureSpec("errors", "errors", "error records"),
        FigureSpec("error_rate", "errors/s", "error records per second of the test"),
        FigureSpec("spans", "spans", "finished spans"),
    )
}
_FAMILIES = (
    "log.<debug|info|warning|error|critical>",
    "errors:<error type glob>",
    f"span:<name glob>.<{'|'.join(SPAN_AGGREGATES)}>",
    f"metric:<name>[.<{'|'.join(METRIC_AGGREGATES)}>]",
)


def known_figures() -> str:
    """The accepted figure names and families, for error messages and help."""
    return ", ".join([*FIGURES, *_FAMILIES])


def figure_spec(name: str) -> FigureSpec:
    """Return the spec of figure *name*; raise ConfigurationError for an unknown one."""
    spec = FIGURES.get(name)
    if spec is not None:
        return spec
    if name.startswith("log."):
        level = name[4:]
        if level in LOG_LEVELS:
            return FigureSpec(name, "records", f"log records at {level.upper()} or above")
        msg = f"unknown log level {level!r} in figure {name!r}; accepted: {', '.join(LOG_LEVELS)}"
        raise ConfigurationError(msg)
    if name.startswith("errors:") and len(name) > 7:
        return FigureSpec(name, "errors", f"error records of type {name[7:]!r}")
    if name.startswith("span:"):
        target, _, aggregate = name[5:].rpartition(".")
        if target and aggregate in SPAN_AGGREGATES:
            unit = "spans" if aggregate == "count" else "ms"
            return FigureSpec(name, unit, f"{aggregate} of the spans named {target!r}")
        msg = (
            f"figure {name!r} needs span:<name>.<aggregate>, aggregate one of "
            f"{', '.join(SPAN_AGGREGATES)}"
        )
        raise ConfigurationError(msg)
    if name.startswith("metric:"):
        target, dot, aggregate = name[7:].rpartition(".")
        if dot and aggregate in METRIC_AGGREGATES and target:
            return FigureSpec(name, "", f"{aggregate} of the metric {target!r}")
        if name[7:] and re.fullmatch(r"[A-Za-z_:*?\[\]][\w:*?\[\]]*", name[7:]):
            return FigureSpec(name, "", f"points of the metric {name[7:]!r}", series=True)
        msg = (
            f"figure {name!r} needs metric:<name> or metric:<name>.<aggregate>, aggregate one"
            f" of {', '.join(METRIC_AGGREGATES)}"
        )
        raise ConfigurationError(msg)
    msg = f"unknown figure {name!r}; known: {known_figures()}"
    raise ConfigurationError(msg)


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
        if name in ("cpu_ms", "peak_rss_mb", "rss_growth_mb"):
            return self._resource(name, spec)
        if name in ("cpu_percent", "rss_mb"):
            return self._sampled(name, spec)
        if name in ("allocated_mb", "peak_memory_mb", "allocated_blocks"):
            return self._memory(name, spec)
        if name == "errors" or name.startswith("errors:") or name == "error_rate":
            return self._errors(name, spec)
        if name.startswith("log."):
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
            values = [v for v in (_number(x) for x in phases.values()) if v is not None]
            shown = "+".join(p for p in ("setup", "call", "teardown") if p in phases)
            return Measurement(round(sum(values), 3), f"{source} ({shown})", spec.unit)
        value = _number(phases.get(name[: -len("_ms")]))
        if value is None:
            return self._missing(spec, "phases", f"no {name[:-3]} phase timing yet")
        return Measurement(value, source, spec.unit)

    def _resource(self, name: str, spec: FigureSpec) -> Measurement:
        resources = self._load("resources")
        if isinstance(resources, str):
            return self._missing(spec, "resources", resources)
        source = self.sources["resources"]
        if name == "cpu_ms":
            value = _number(resources.get("cpu_ms"))
            if value is None:
                return self._missing(spec, "resources", "no cpu_ms in the resource figures")
            return Measurement(value, f"{source}.cpu_ms", spec.unit)
        if name == "peak_rss_mb":
            value = _number(resources.get("peak_rss_bytes"))
            if value is None:
                return self._missing(spec, "resources", "no peak_rss_bytes in the resources")
            return Measurement(round(value / MIB, 3), f"{source}.peak_rss_bytes", spec.unit)
        start = _number(resources.get("rss_start_bytes"))
        end = _number(resources.get("rss_end_bytes"))
        if start is None or end is None:
            return self._missing(spec, "resources", "no rss_start/end_bytes in the resources")
        return Measurement(round((end - start) / MIB, 3), f"{source}.rss_*_bytes", spec.unit)

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
            return Measurement(
                round(value / MIB, 3), f"{self.sources['resources']}.rss_end_bytes", spec.unit
            )
        cpu_ms = _number(resources.get("cpu_ms"))
        phases = self._load("phases")
        wall = sum(v for v in phases.values() if _number(v)) if isinstance(phases, dict) else 0.0
        if cpu_ms is None or wall <= 0:
            return self._missing(spec, "resources", "no samples, and no cpu_ms and wall time")
        return Measurement(
            round(100.0 * cpu_ms / wall, 3),
            f"{self.sources['resources']}.cpu_ms / wall time of the test",
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
            value = round(value / MIB, 3)
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
        if name == "errors":
            return Measurement(float(len(errors)), source, spec.unit)
        phases = self._load("phases")
        wall_ms = sum(v for v in phases.values() if _number(v)) if isinstance(phases, dict) else 0
        if wall_ms <= 0:
            return self._missing(spec, "phases", "no wall time to divide the error count by")
        return Measurement(
            round(len(errors) / (wall_ms / 1000.0), 3), f"{source} / wall time", spec.unit
        )

    def _logs(self, name: str, spec: FigureSpec) -> Measurement:
        logs = self._load("logs")
        if isinstance(logs, str):
            return self._missing(spec, "logs", logs)
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
        source = self.sources["spans"]
        if name == "spans":
            return Measurement(float(len(spans)), source, spec.unit)
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
    }

    def __init__(
        self, manager: Any, session_id: str, phases: Mapping[str, float] | None = None
    ) -> None:
        super().__init__()
        self.manager = manager
        self.session_id = session_id
        self._phases = dict(phases) if phases is not None else None

    def phases(self) -> dict[str, float] | str:
        return self._phases if self._phases is not None else "no phase timings"

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
    """Figures of a finished test record (``record["collected_data"]``, ``record["phases"]``)."""

    sources: ClassVar[dict[str, str]] = {
        "phases": "record.phases",
        "resources": "metrics.resources",
        "memory": "metrics.memory",
        "samples": "metrics.samples",
        "metric_points": "metrics.records",
        "errors": "error_tracking.records",
        "logs": "logging.records",
        "spans": "tracing.records",
    }

    def __init__(self, record: Mapping[str, Any]) -> None:
        super().__init__()
        self.record = record
        self.collected = record.get("collected_data") or {}

    def _component(self, kind: str) -> Mapping[str, Any] | str:
        data = self.collected.get(kind)
        if not isinstance(data, Mapping):
            return f"no {kind} data in the record (component disabled)"
        return data

    def _list(self, kind: str, key: str) -> Sequence[Any] | str:
        data = self._component(kind)
        if isinstance(data, str):
            return data
        return list(data.get(key) or ())

    def phases(self) -> dict[str, float] | str:
        phases = self.record.get("phases")
        return dict(phases) if isinstance(phases, Mapping) and phases else "no phase timings"

    def resources(self) -> Mapping[str, Any] | str:
        data = self._component("metrics")
        if isinstance(data, str):
            return data
        return data.get("resources") or "no resource figures in the record"

    def memory(self) -> Mapping[str, Any] | str:
        data = self._component("metrics")
        if isinstance(data, str):
            return data
        return data.get("memory") or "memory tracking was off (use --kari-memory)"

    def samples(self) -> Sequence[Any] | str:
        return self._list("metrics", "samples")

    def metric_points(self) -> Sequence[Any] | str:
        return self._list("metrics", "records")

    def errors(self) -> Sequence[Any] | str:
        return self._list("error_tracking", "records")

    def logs(self) -> Sequence[Any] | str:
        return self._list("logging", "records")

    def spans(self) -> Sequence[Any] | str:
        return self._list("tracing", "records")


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


# Rules -------------------------------------------------------------------------------------
_EXPRESSION = re.compile(
    r"""^\s*(?P<figure>[^\s<>=!]+)\s*
    (?P<op>>=|<=|==|!=|>|<)\s*
    (?P<threshold>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
    (?:\s+for\s+(?P<count>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]+))?\s*$""",
    re.X,
)
_TIME_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_COUNT_UNITS = {
    "sample": "samples",
    "samples": "samples",
    "test": "tests",
    "tests": "tests",
    "evaluation": "tests",
    "evaluations": "tests",
    "times": "tests",
}
RULE_OPTIONS = ("severity", "inhibits", "name", "cooldown_minutes")


@dataclass(frozen=True)
class AlertRule:
    """A rule that raises an alert when a figure crosses a threshold (or a predicate holds).

    ``for_count`` with ``for_unit`` "tests" needs that many consecutive evaluations in a row;
    with "samples" (or ``for_seconds``) it needs a time series figure to hold that long.
    ``inhibits`` lists rule names or figures (globs) this rule silences on the same session.
    """

    figure: str
    operator: str
    threshold: float
    severity: AlertSeverity = AlertSeverity.HIGH
    name: str = ""
    for_count: int | None = None
    for_unit: str | None = None
    for_seconds: float | None = None
    inhibits: tuple[str, ...] = ()
    cooldown_minutes: float | None = None
    origin: str = "api"
    predicate: Callable[[FigureView], Any] | None = field(default=None, compare=False)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.expression)

    @property
    def expression(self) -> str:
        """The rule in the rule syntax (without options)."""
        if self.predicate is not None:
            return self.name or getattr(self.predicate, "__name__", "predicate")
        text = f"{self.figure} {self.operator} {_fmt(self.threshold)}"
        if self.for_seconds is not None:
            text += f" for {_fmt(self.for_seconds)}s"
        elif self.for_count is not None:
            text += f" for {self.for_count} {self.for_unit}"
        return text

    @property
    def unit(self) -> str:
        return "" if self.predicate is not None else figure_spec(self.figure).unit

    def text(self) -> str:
        """The rule with its options, as it could be written in ``kari_alert_rules``."""
        parts = [self.expression, f"severity={self.severity.value}"]
        if self.inhibits:
            parts.append("inhibits=" + ",".join(self.inhibits))
        return " ".join(parts)

    def with_options(self, **changes: Any) -> AlertRule:
        """Return a copy with *changes* (severity, name, inhibits, cooldown_minutes, origin)."""
        if "severity" in changes:
            changes["severity"] = AlertSeverity.parse(changes["severity"])
        if "inhibits" in changes:
            changes["inhibits"] = _names(changes["inhibits"], "inhibits")
        rule = replace(self, **changes)
        if "name" not in changes and self.name == self.expression:
            object.__setattr__(rule, "name", rule.expression)
        return rule

    def inhibits_alert(self, name: str, figure: str | None) -> bool:
        """Whether this rule silences an alert of rule *name* on *figure*."""
        return any(
            fnmatch.fnmatchcase(name, pattern)
            or (figure is not None and fnmatch.fnmatchcase(figure, pattern))
            for pattern in self.inhibits
        )

    @classmethod
    def custom(
        cls,
        name: str,
        predicate: Callable[[FigureView], Any],
        severity: AlertSeverity | str = AlertSeverity.HIGH,
        *,
        description: str = "",
        inhibits: Iterable[str] | str = (),
        origin: str = "api",
    ) -> AlertRule:
        """A rule that fires when ``predicate(figures)`` is true.

        The predicate gets a :class:`FigureView` (``figures["errors"]``) and returns a truth
        value, or a ``(fired, value)`` pair whose value is shown in the message.
        """
        if not callable(predicate):
            msg = f"a custom rule needs a callable predicate, got {predicate!r}"
            raise ConfigurationError(msg)
        if not isinstance(name, str) or not name.strip():
            msg = f"a custom rule needs a non-empty name, got {name!r}"
            raise ConfigurationError(msg)
        return cls(
            figure="",
            operator="",
            threshold=math.nan,
            severity=AlertSeverity.parse(severity),
            name=name.strip(),
            inhibits=_names(inhibits, "inhibits"),
            origin=origin,
            predicate=predicate,
            description=description,
        )


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _names(value: Iterable[str] | str, what: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    names = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            msg = f"{what} must be names (comma-separated or a list of strings), got {value!r}"
            raise ConfigurationError(msg)
        names.append(item.strip())
    return tuple(names)


_PARSED: dict[str, AlertRule] = {}
_PARSED_LOCK = threading.Lock()


def parse_rule(
    text: str,
    severity: AlertSeverity | str | None = None,
    *,
    origin: str = "api",
    **options: Any,
) -> AlertRule:
    """Parse ``"FIGURE OP THRESHOLD [for N UNIT] [severity=S] [inhibits=a,b] [name=N]"``.

    *severity* and *options* given here override the ones written in *text*. Parsing is
    cached: the same text gives the same rule object (so ``for N tests`` streaks are shared).
    """
    if not isinstance(text, str) or not text.strip():
        msg = f"an alert rule must be a non-empty string, got {text!r}"
        raise ConfigurationError(msg)
    key = repr((text, severity, origin, sorted(options.items())))
    with _PARSED_LOCK:
        cached = _PARSED.get(key)
    if cached is not None:
        return cached
    rule = _parse(text.strip(), severity, origin, options)
    with _PARSED_LOCK:
        if len(_PARSED) > 10_000:
            _PARSED.clear()
        return _PARSED.setdefault(key, rule)


def _parse(
    text: str, severity: AlertSeverity | str | None, origin: str, options: dict[str, Any]
) -> AlertRule:
    tokens = text.split()
    written: dict[str, str] = {}
    while tokens and re.fullmatch(r"[a-z_]+=\S+", tokens[-1]):
        key, _, value = tokens.pop().partition("=")
        if key not in RULE_OPTIONS:
            msg = f"unknown option {key!r} in rule {text!r}; accepted: {', '.join(RULE_OPTIONS)}"
            raise ConfigurationError(msg)
        written[key] = value
    expression = " ".join(tokens)
    match = _EXPRESSION.match(expression)
    if match is None:
        msg = (
            f"cannot parse alert rule {text!r}: expected 'FIGURE OP NUMBER [for N UNIT]"
            f" [severity=S]', e.g. 'peak_rss_mb > 200' or 'errors > 0 for 3 tests'"
            f" (OP one of {' '.join(OPERATORS)})"
        )
        raise ConfigurationError(msg)
    figure = match["figure"]
    try:
        spec = figure_spec(figure)
    except ConfigurationError as exc:
        msg = f"in alert rule {text!r}: {exc}"
        raise ConfigurationError(msg) from None
    threshold = float(match["threshold"])
    for_count = for_unit = for_seconds = None
    if match["count"] is not None:
        unit = match["unit"]
        amount = float(match["count"])
        if unit in _TIME_UNITS:
            for_seconds = amount * _TIME_UNITS[unit]
            if not spec.series:
                msg = (
                    f"in alert rule {text!r}: 'for {match['count']}{unit}' needs a time series"
                    f" figure (cpu_percent, rss_mb, metric:<name>); per-test figures take"
                    f" 'for N tests'"
                )
                raise ConfigurationError(msg)
        elif unit in _COUNT_UNITS:
            for_unit = _COUNT_UNITS[unit]
            if not amount.is_integer() or amount < 1:
                msg = f"in alert rule {text!r}: 'for' needs a whole count >= 1, got {amount!r}"
                raise ConfigurationError(msg)
            for_count = int(amount)
            if for_unit == "samples" and not spec.series:
                msg = (
                    f"in alert rule {text!r}: 'for N samples' needs a time series figure"
                    f" (cpu_percent, rss_mb, metric:<name>); per-test figures take 'for N tests'"
                )
                raise ConfigurationError(msg)
        else:
            accepted = ", ".join([*_TIME_UNITS, "samples", "tests"])
            msg = f"in alert rule {text!r}: unknown 'for' unit {unit!r}; accepted: {accepted}"
            raise ConfigurationError(msg)
    merged: dict[str, Any] = {**written, **options}
    if severity is not None:
        merged["severity"] = severity
    unknown = sorted(set(merged) - set(RULE_OPTIONS))
    if unknown:
        msg = f"unknown rule option(s) {unknown!r}; accepted: {', '.join(RULE_OPTIONS)}"
        raise ConfigurationError(msg)
    cooldown = merged.get("cooldown_minutes")
    if cooldown is not None:
        try:
            cooldown = float(cooldown)
        except (TypeError, ValueError):
            cooldown = -1.0
        if not math.isfinite(cooldown) or cooldown < 0:
            msg = f"cooldown_minutes must be a number >= 0, got {merged['cooldown_minutes']!r}"
            raise ConfigurationError(msg)
    return AlertRule(
        figure=figure,
        operator=match["op"],
        threshold=threshold,
        severity=AlertSeverity.parse(merged.get("severity", AlertSeverity.HIGH)),
        name=str(merged.get("name") or ""),
        for_count=for_count,
        for_unit=for_unit,
        for_seconds=for_seconds,
        inhibits=_names(merged.get("inhibits", ()), "inhibits"),
        cooldown_minutes=cooldown,
        origin=origin,
    )


def parse_rules(lines: Iterable[str], *, origin: str = "ini") -> list[AlertRule]:
    """Parse one rule per non-empty line (``#`` starts a comment)."""
    rules = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            rules.append(parse_rule(text, origin=origin))
        except ConfigurationError as exc:
            msg = f"line {number}: {exc}"
            raise ConfigurationError(msg) from None
    return rules


#: kari_budget keyword -> figure it bounds.
BUDGET_FIGURES = {
    "duration_ms": "duration_ms",
    "call_ms": "call_ms",
    "cpu_ms": "cpu_ms",
    "peak_rss_mb": "peak_rss_mb",
    "rss_growth_mb": "rss_growth_mb",
    "allocated_mb": "allocated_mb",
    "peak_memory_mb": "peak_memory_mb",
    "allocated_blocks": "allocated_blocks",
    "errors": "errors",
    "log_errors": "log.error",
    "log_warnings": "log.warning",
    "spans": "spans",
}


def budget_rules(
    budget: Mapping[str, Any], severity: AlertSeverity | str = AlertSeverity.HIGH
) -> list[AlertRule]:
    """One ``figure > limit`` rule per entry of a budget (``duration_ms=500, errors=0``)."""
    if not budget:
        msg = f"a budget needs at least one limit; accepted: {', '.join(BUDGET_FIGURES)}"
        raise ConfigurationError(msg)
    level = AlertSeverity.parse(severity)
    rules = []
    for key, limit in budget.items():
        figure = BUDGET_FIGURES.get(key)
        if figure is None:
            msg = f"unknown budget {key!r}; accepted: {', '.join(BUDGET_FIGURES)}"
            raise ConfigurationError(msg)
        number = _number(limit)
        if number is None or number < 0:
            msg = f"budget {key} must be a number >= 0, got {limit!r}"
            raise ConfigurationError(msg)
        rule = AlertRule(figure, ">", number, level, origin="kari_budget")
        rules.append(rule.with_options(name=f"kari_budget({key}={_fmt(number)})"))
    return rules


# Evaluation --------------------------------------------------------------------------------
class FigureView(Mapping[str, float]):
    """Read-only mapping view of a figure source for custom predicates (missing -> KeyError)."""

    def __init__(self, figures: Figures) -> None:
        self._figures = figures
        self.measured: dict[str, Measurement] = {}

    def __getitem__(self, name: str) -> float:
        measurement = self._figures.measure(name)
        self.measured[name] = measurement
        if measurement.value is None:
            raise KeyError(name)
        return measurement.value

    def __iter__(self) -> Any:
        return iter(FIGURES)

    def __len__(self) -> int:
        return len(FIGURES)


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one rule on one set of figures."""

    rule: AlertRule
    fired: bool
    value: float | None
    source: str
    missing: str | None = None
    detail: str = ""
    pending: bool = False
    inhibited_by: str | None = None

    @property
    def threshold(self) -> float | None:
        return None if self.rule.predicate is not None else self.rule.threshold

    @property
    def counts(self) -> bool:
        """Fired and not inhibited: this evaluation raises an alert that notifies."""
        return self.fired and self.inhibited_by is None

    def title(self) -> str:
        """One-line title of the alert this evaluation raises."""
        rule = self.rule
        if rule.origin == "kari_budget":
            return f"{rule.name} exceeded"
        return f"{rule.name} fired" if rule.name == rule.expression else f"{rule.name!r} fired"

    def message(self) -> str:
        """What was measured against what, pytest-assertion style."""
        rule = self.rule
        unit = f" {rule.unit}" if rule.unit in ("MiB", "%", "errors/s") else ""
        if self.missing is not None:
            return (
                f"{rule.figure or rule.name} was not measured: {self.missing}"
                f" (a rule on a missing figure fails rather than passing silently)"
            )
        if rule.predicate is not None:
            shown = "" if self.value is None else f" (value {_fmt(self.value)})"
            base = f"predicate {rule.name!r} is true{shown}"
            return base + (f"\n  where {self.detail}" if self.detail else "")
        value = _fmt(self.value)
        text = f"{rule.figure} = {value}{unit} {rule.operator} {_fmt(rule.threshold)}{unit}"
        if self.detail:
            text += f" {self.detail}"
        return f"{text}\n  where {rule.figure} = {value} is from {self.source}"

    def failure(self) -> str:
        """The verdict line of a test this evaluation fails."""
        rule = self.rule
        if rule.origin == "kari_budget":
            head, verb = rule.name, "exceeded"
        elif rule.origin in ("kari_alert", "kari_alert_rules"):
            head, verb = f"{rule.origin} {rule.name!r}", "fired"
        else:
            head, verb = f"alert rule {rule.name!r}", "fired"
        return f"{head} {verb} [{rule.severity.value}]: {self.message()}"


class RuleStates:
    """Consecutive-evaluation streaks of ``for N tests`` rules (thread-safe)."""

    def __init__(self) -> None:
        self._streaks: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def update(self, rule: AlertRule, key: str, holds: bool) -> int:
        """Count one more evaluation of *rule* for *key*; return the current streak."""
        with self._lock:
            ident = (id(rule), key)
            streak = self._streaks.get(ident, 0) + 1 if holds else 0
            self._streaks[ident] = streak
            if len(self._streaks) > 100_000:
                self._streaks.clear()
            return streak

    def reset(self) -> None:
        """Forget every streak."""
        with self._lock:
            self._streaks.clear()


def _longest_run(
    points: Sequence[tuple[float, float]],
    check: Callable[[float], bool],
    *,
    trailing: bool,
) -> tuple[int, float, float | None]:
    """(samples, seconds, last value) of the longest run of points satisfying *check*.

    With *trailing* only the run ending at the newest point counts (live monitoring).
    """
    best: tuple[int, float, float | None] = (0, 0.0, None)
    run_start: int | None = None
    for index, (ts, value) in enumerate(points):
        if check(value):
            if run_start is None:
                run_start = index
            length = index - run_start + 1
            seconds = ts - points[run_start][0]
            if (length, seconds) > best[:2]:
                best = (length, seconds, value)
        else:
            run_start = None
    if trailing:
        if run_start is None:
            return 0, 0.0, None
        return len(points) - run_start, points[-1][0] - points[run_start][0], points[-1][1]
    return best


def _extreme(points: Sequence[tuple[float, float]], op: str) -> float:
    values = [v for _, v in points]
    if op in (">", ">="):
        return max(values)
    if op in ("<", "<="):
        return min(values)
    return values[-1]


def evaluate_rule(
    rule: AlertRule,
    figures: Figures,
    states: RuleStates | None = None,
    *,
    key: str = "",
    trailing: bool = False,
) -> Evaluation:
    """Evaluate *rule* on *figures*.

    A series figure (samples, metric points) without ``for`` is judged by its most extreme
    point; with ``for N samples`` / ``for Ns`` by its longest run that satisfies the rule (the
    run ending now, with *trailing*). ``for N tests`` counts consecutive evaluations in
    *states* under *key*.
    """
    if rule.predicate is not None:
        return _evaluate_predicate(rule, figures, states, key)
    measurement = figures.measure(rule.figure)
    if measurement.missing is not None:
        return Evaluation(rule, True, None, measurement.source, missing=measurement.missing)
    check = OPERATORS[rule.operator]
    value = measurement.value
    detail = ""
    series = measurement.series
    if series is not None and (rule.for_unit == "samples" or rule.for_seconds is not None):
        count, seconds, last = _longest_run(
            series, lambda v: check(v, rule.threshold), trailing=trailing
        )
        if rule.for_seconds is not None:
            holds = count > 0 and seconds >= rule.for_seconds
            wanted = f"{_fmt(rule.for_seconds)} s"
        else:
            holds = count >= (rule.for_count or 1)
            wanted = f"{rule.for_count} samples"
        value = last if count else measurement.value
        detail = f"(held for {seconds:.1f} s over {count} samples; needs {wanted})"
        return Evaluation(
            rule, holds, value, measurement.source, detail=detail, pending=count > 0 and not holds
        )
    if series is not None:
        if not series:
            return Evaluation(rule, False, None, measurement.source, detail="(no points)")
        value = _extreme(series, rule.operator)
        detail = f"(most extreme of {len(series)} points)"
    if value is None:
        return Evaluation(rule, False, None, measurement.source, detail="(no observation)")
    holds = check(value, rule.threshold)
    if rule.for_unit == "tests" and rule.for_count:
        streak = (states or RuleStates()).update(rule, key, holds)
        fired = streak >= rule.for_count
        streak_text = f"(for {streak} consecutive evaluations; needs {rule.for_count})"
        detail = f"{detail} {streak_text}".strip()
        return Evaluation(
            rule, fired, value, measurement.source, detail=detail, pending=holds and not fired
        )
    return Evaluation(rule, holds, value, measurement.source, detail=detail)


def _evaluate_predicate(
    rule: AlertRule, figures: Figures, states: RuleStates | None, key: str
) -> Evaluation:
    view = FigureView(figures)
    assert rule.predicate is not None
    try:
        result = rule.predicate(view)
    except KeyError as exc:
        name = exc.args[0] if exc.args else "?"
        measured = view.measured.get(str(name))
        if measured is not None and measured.missing is not None:
            return Evaluation(rule, True, None, measured.source, missing=measured.missing)
        return Evaluation(rule, False, None, "custom predicate", detail=f"(no {name})")
    value = None
    if isinstance(result, tuple) and len(result) == 2:
        result, value = result
        value = _number(value)
    used = ", ".join(f"{n} = {_fmt(m.value)}" for n, m in view.measured.items())
    holds = bool(result)
    if rule.for_unit == "tests" and rule.for_count:
        holds = (states or RuleStates()).update(rule, key, holds) >= rule.for_count
    return Evaluation(rule, holds, value, "custom predicate", detail=used)


def evaluate_rules(
    rules: Iterable[AlertRule],
    figures: Figures,
    states: RuleStates | None = None,
    *,
    key: str = "",
    trailing: bool = False,
) -> list[Evaluation]:
    """Evaluate every rule, then mark alerts inhibited by another firing rule.

    Evaluations come back inhibitors first (in rule order otherwise), so an alert manager
    raising them in order sees the inhibiting alert before the one it silences.
    """
    evaluations = [
        evaluate_rule(rule, figures, states, key=key, trailing=trailing) for rule in rules
    ]
    firing = [e for e in evaluations if e.fired and e.rule.inhibits]
    result = []
    for evaluation in evaluations:
        if evaluation.fired:
            for source in firing:
                if source is evaluation:
                    continue
                if source.rule.inhibits_alert(evaluation.rule.name, evaluation.rule.figure or None):
                    evaluation = replace(evaluation, inhibited_by=source.rule.name)
                    break
        result.append(evaluation)
    result.sort(key=lambda e: 0 if e.fired and e.rule.inhibits and not e.inhibited_by else 1)
    return result
