"""The figures of a live debug session, a stored test record or given values; the rows of one
test's figures as the API and the CLI show them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..model import LOG_LEVELS, ComponentData, Kind, RecordView, TestRecord, finite
from .catalogue import FIGURES, ROOT_TAG, figure_spec
from .measure import DataFigures, Figures, Measurement, field_of


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


#: (a module's name is read faster than an enum's member: these are read a few times a test)
_METRICS, _PROFILING = Kind.METRICS, Kind.PROFILING


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

    def __init__(self, record: TestRecord | RecordView | Mapping[str, Any]) -> None:
        super().__init__()
        self.record = (
            record if isinstance(record, (TestRecord, RecordView)) else TestRecord.from_dict(record)
        )

    def _component(self, kind: Kind) -> ComponentData | str:
        data = self.record.component(kind)
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

    def phases(self) -> Mapping[str, float] | str:
        phases = self.record.phases  # read-only: not copied
        return phases if phases else "no phase timings"

    def own(self) -> Mapping[str, Any] | str:
        record = self.record
        if record.version < 2:
            return "a record of version 1 (written before the plugin timed its own work)"
        return {"cpu_ms": record.cpu_ms, "kari_overhead_ms": record.kari_overhead_ms}

    def dropped(self) -> Mapping[str, int]:
        return {kind.value: data.dropped for kind, data in self.record.collected.items()}

    def _has(self, kind: Kind) -> bool:
        record = self.record
        return record.has(kind) if isinstance(record, RecordView) else kind in record.collected

    def resources(self) -> Mapping[str, Any] | str:
        found = self.record.detail(_METRICS, "resources")
        if found:
            return found
        if not self._has(Kind.METRICS):
            return f"no {Kind.METRICS.value} data in the record (component disabled)"
        return "no resource figures in the record"

    def memory(self) -> Mapping[str, Any] | str:
        found = self.record.detail(_METRICS, "memory")
        if found:
            return found
        # A test that only a memory profile traced: its one peak is the profile's.
        profile = self.record.detail(_PROFILING, "memory")
        if profile and finite(profile.get("peak_increase_bytes")) is not None:
            return {
                "peak_bytes": profile["peak_increase_bytes"],
                "allocated_bytes": max(0, finite(profile.get("net_allocated_bytes")) or 0),
            }
        if not self._has(Kind.METRICS):
            return f"no {Kind.METRICS.value} data in the record (component disabled)"
        return "memory tracking was off (use --kari-memory)"

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
        number = finite(value)
        if number is None:
            return Measurement(None, self.source, spec.unit, missing=f"{value!r} is not a number")
        return Measurement(number, self.source, spec.unit)


def measure(name: str, source: Figures | TestRecord | Mapping[str, Any]) -> Measurement:
    """The measurement of figure *name* of a figure source, a test record or its dict.

    An unknown *name* raises :class:`UnknownFigure`, whose message lists the catalogue.
    """
    figures = source if is_figures(source) else RecordFigures(source)  # type: ignore[arg-type]
    return figures.measure(name)  # type: ignore[union-attr]


def values(
    names: Sequence[str], source: Figures | TestRecord | Mapping[str, Any], *, base: bool = False
) -> dict[str, float]:
    """The measured figures among *names* (left out: missing or with no observation).

    With *base*, each value is in its base unit (bytes for a MiB figure).
    """
    figures = source if is_figures(source) else RecordFigures(source)  # type: ignore[arg-type]
    found: dict[str, float] = {}
    for name in names:
        measured = figures.measure(name)  # type: ignore[union-attr]
        value = measured.base if base else measured.value
        if measured.missing is None and value is not None:
            found[name] = value
    return found


def is_figures(source: object) -> bool:
    """Whether *source* measures figures itself (else it is a test record or its dict)."""
    return callable(getattr(source, "measure", None))


def test_figure_names(source: Figures | TestRecord | Mapping[str, Any]) -> list[str]:
    """The figures a test has: every fixed figure of the catalogue, each log level, and
    ``metric:<name>`` / ``span:<name>.total_ms`` for each metric and span name it recorded."""
    names = [*FIGURES, *(f"log.{level}" for level in LOG_LEVELS)]
    figures = source if is_figures(source) else RecordFigures(source)  # type: ignore[arg-type]
    if isinstance(figures, DataFigures):
        points = figures._load("metric_points")
        spans = figures._load("spans")
        metric_names = {
            str(field_of(point, "name")) for point in (() if isinstance(points, str) else points)
        }
        span_names = {
            str(field_of(span, "name"))
            for span in (() if isinstance(spans, str) else spans)
            if not (field_of(span, "tags") or {}).get(ROOT_TAG)
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
    figures = source if is_figures(source) else RecordFigures(source)  # type: ignore[arg-type]
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
