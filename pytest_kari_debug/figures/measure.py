"""Measuring figures from one test's data, wherever it lives: :class:`DataFigures`."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from ..model import DROP_MARKER_ORIGIN, LOG_LEVELS, MIB, Kind, Unit, finite
from ..sharedmethods import dataclass
from ..stats import quantile
from .catalogue import FIGURES, ROOT_TAG, FigureSpec, figure_spec, unit_of


@dataclass(frozen=True, slots=True)
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
        factor = _FACTORS.get(self.unit) if type(self.unit) is str else None
        return self.value * (factor if factor is not None else unit_of(self.unit).factor)


#: Each unit's factor to its base unit, by its spelling (read for every figure's base).
_FACTORS = {unit.value: unit.factor for unit in Unit}
#: The measurements of missing figures, shared (they are frozen), and how many are kept.
_MISSING: dict[tuple[str, str, str], Measurement] = {}
_MISSING_KEPT = 256
_UNLOADED = object()


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
        value = finite(phases.get(phase))
        if value is not None:
            total += value
    return round(total, 3)


def field_of(record: Any, name: str, default: Any = None) -> Any:
    """Field *name* of a record given as a mapping or as an object."""
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


class DataFigures:
    """Computes figures from the raw data of one test; subclasses say where the data lives.

    Each loader returns the data or a string saying why it is not available.
    """

    def phases(self) -> Mapping[str, float] | str:
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
        found = self._cache.get(what, _UNLOADED)
        if found is _UNLOADED:
            found = self._cache[what] = getattr(self, what)()
        return found

    def measure(self, name: str) -> Measurement:
        """Return the measurement of figure *name*."""
        spec = FIGURES.get(name) or figure_spec(name)  # (a catalogued figure: one lookup)
        try:
            fixed = _FIXED.get(name)  # (read a few times a test: one lookup, one call)
            return fixed(self, name, spec) if fixed is not None else self._family(name, spec)
        except Exception as exc:  # data of an unexpected shape must not break a test run
            return Measurement(None, "?", spec.unit, missing=f"{type(exc).__name__}: {exc}")

    def base(self, name: str) -> float | None:
        """The value of figure *name* in its base unit; None when it is missing or had no
        observation."""
        measured = self.measure(name)
        return measured.base if measured.missing is None else None

    def _missing(self, spec: FigureSpec, what: str, reason: str) -> Measurement:
        key = (self.sources[what], spec.unit, reason)
        found = _MISSING.get(key)
        if found is None:  # one object per reason: most tests miss a figure the same way
            found = Measurement(None, *key[:2], missing=reason)
            if len(_MISSING) < _MISSING_KEPT:
                _MISSING[key] = found
        return found

    def _family(self, name: str, spec: FigureSpec) -> Measurement:
        """A figure of a family (``errors:``, ``log.``, ``span:``, ``metric:``)."""
        if name.startswith("errors:"):
            return self._errors(name, spec)
        if name.startswith("log."):
            return self._logs(name, spec)
        if name.startswith("span:"):
            return self._spans(name, spec)
        return self._metric(name, spec)

    # The figures every kept test is read for (the run's sections) read their data with the
    # cache inline: one call less each.
    def _phase(self, name: str, spec: FigureSpec) -> Measurement:
        phases = self._cache.get("phases", _UNLOADED)
        if phases is _UNLOADED:
            phases = self._load("phases")
        if isinstance(phases, str):
            return self._missing(spec, "phases", phases)
        source = self.sources["phases"]
        if name == "duration_ms":
            return Measurement(_duration(phases), f"{source} (setup+call)", spec.unit)
        value = finite(phases.get(name[: -len("_ms")]))
        if value is None:
            return self._missing(spec, "phases", f"no {name[:-3]} phase timing yet")
        return Measurement(value, source, spec.unit)

    def _overhead(self, name: str, spec: FigureSpec) -> Measurement:
        own = self._load("own")
        value = None if isinstance(own, str) else finite(own.get("kari_overhead_ms"))
        if value is None:
            reason = own if isinstance(own, str) else "the plugin did not time this test"
            return self._missing(spec, "own", reason)
        return Measurement(value, f"{self.sources['own']}.kari_overhead_ms", spec.unit)

    def _resource(self, name: str, spec: FigureSpec) -> Measurement:
        resources = self._cache.get("resources", _UNLOADED)
        if resources is _UNLOADED:
            resources = self._load("resources")
        if isinstance(resources, str):
            return self._missing(spec, "resources", resources)
        source = self.sources["resources"]
        if name == "cpu_ms":
            own = self._cache.get("own", _UNLOADED)
            if own is _UNLOADED:
                own = self._load("own")
            value = None if isinstance(own, str) else finite(own.get("cpu_ms"))
            if value is not None:
                return Measurement(value, f"{self.sources['own']}.cpu_ms", spec.unit)
            value = finite(resources.get("cpu_ms"))
            if value is None:
                return self._missing(spec, "resources", "no cpu_ms in the resource figures")
            return Measurement(value, f"{source}.cpu_ms", spec.unit)
        if name == "peak_rss_mb":
            value = finite(resources.get("peak_rss_bytes"))
            if value is None:
                return self._missing(spec, "resources", "no peak_rss_bytes in the resources")
            return Measurement(value / MIB, f"{source}.peak_rss_bytes", spec.unit)
        start = finite(resources.get("rss_start_bytes"))
        end = finite(resources.get("rss_end_bytes"))
        if start is None or end is None:
            return self._missing(spec, "resources", "no rss_start/end_bytes in the resources")
        return Measurement((end - start) / MIB, f"{source}.rss_*_bytes", spec.unit)

    def _sampled(self, name: str, spec: FigureSpec) -> Measurement:
        samples = self._load("samples")
        key, scale = ("cpu_percent", 1.0) if name == "cpu_percent" else ("rss_bytes", 1.0 / MIB)
        points: list[tuple[float, float]] = []
        if not isinstance(samples, str):
            for sample in samples:
                ts, value = finite(field_of(sample, "ts")), finite(field_of(sample, key))
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
            value = finite(resources.get("rss_end_bytes"))
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
        memory = self._cache.get("memory", _UNLOADED)
        if memory is _UNLOADED:
            memory = self._load("memory")
        if isinstance(memory, str):
            return self._missing(spec, "memory", memory)
        key = {"allocated_mb": "allocated_bytes", "peak_memory_mb": "peak_bytes"}.get(
            name, "allocated_blocks"
        )
        value = finite(memory.get(key))
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
            types = (str(field_of(e, "error_type", "")) for e in errors)
            count = sum(1 for kind in types if fnmatch.fnmatchcase(kind, pattern))
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
        logs = [r for r in logs if field_of(r, "origin", None) != DROP_MARKER_ORIGIN]
        if name == "logs":
            count = len(logs) + self.dropped().get(Kind.LOGGING.value, 0)
            return Measurement(float(count), self.sources["logs"], spec.unit)
        floor = LOG_LEVELS[name[4:]]
        count = sum(
            1 for r in logs if LOG_LEVELS.get(str(field_of(r, "level", "")).lower(), 0) >= floor
        )
        return Measurement(
            float(count), f"{self.sources['logs']} at {name[4:].upper()} or above", spec.unit
        )

    def _spans(self, name: str, spec: FigureSpec) -> Measurement:
        spans = self._load("spans")
        if isinstance(spans, str):
            return self._missing(spec, "spans", spans)
        # The session's root span is the plugin's picture of the test, not a span it made.
        spans = [span for span in spans if not (field_of(span, "tags") or {}).get(ROOT_TAG)]
        source = self.sources["spans"]
        if name == "spans":
            count = len(spans) + self.dropped().get(Kind.TRACING.value, 0)
            return Measurement(float(count), source, spec.unit)
        target, _, aggregate = name[5:].rpartition(".")
        durations = []
        for span in spans:
            if fnmatch.fnmatchcase(str(field_of(span, "name", "")), target):
                value = finite(field_of(span, "duration_ms"))
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
            if fnmatch.fnmatchcase(str(field_of(point, "name", "")), target):
                ts, value = finite(field_of(point, "ts")), finite(field_of(point, "value"))
                if ts is not None and value is not None:
                    series.append((ts, value))
        where = f"{self.sources['metric_points']} named {target!r} ({len(series)})"
        if aggregate is None:
            last = series[-1][1] if series else None
            return Measurement(last, where, spec.unit, series=tuple(series))
        value = _aggregate([v for _, v in series], aggregate)
        return Measurement(None if value is None else round(value, 6), where, spec.unit)


#: The reader of each fixed figure of the catalogue (a family's is found by its prefix).
_FIXED: dict[str, Callable[[DataFigures, str, FigureSpec], Measurement]] = {
    **dict.fromkeys(("duration_ms", "setup_ms", "call_ms", "teardown_ms"), DataFigures._phase),
    "kari_overhead_ms": DataFigures._overhead,
    **dict.fromkeys(("cpu_ms", "peak_rss_mb", "rss_growth_mb"), DataFigures._resource),
    **dict.fromkeys(("cpu_percent", "rss_mb"), DataFigures._sampled),
    **dict.fromkeys(("allocated_mb", "peak_memory_mb", "allocated_blocks"), DataFigures._memory),
    **dict.fromkeys(("errors", "error_rate"), DataFigures._errors),
    "logs": DataFigures._logs,
    "spans": DataFigures._spans,
}
