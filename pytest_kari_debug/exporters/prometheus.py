"""Prometheus text format and OpenMetrics of a run's metrics, built with ``prometheus_client``.

:class:`PrometheusExporter` is a ``prometheus_client`` custom collector over the recorded test
records (the ``tests`` list of the run document): per-test gauges (duration, outcome, CPU,
RSS, io, context switches, tracemalloc figures) and one summary per recorded metric, all
labelled by extension and test. ``prometheus_client`` writes the exposition, escapes label
values and help texts; names are sanitized here (:mod:`pytest_kari_debug.naming`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, generate_latest, push_to_gateway
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from ..atomic import write_atomic
from ..exceptions import ExportError
from ..figures import values
from ..model import LOG_LEVEL_NAMES, Kind, TestRecord, dropped_of
from ..naming import prometheus_unit, sanitize_label_name, sanitize_metric_name
from ..sharedmethods import dataclass
from ..stats import quantile
from ..values import repair

FORMATS = ("text", "openmetrics")
JOB = "kari_debug"
QUANTILES = (0.5, 0.9, 0.95, 0.99)
#: Labels the exporter sets itself (and the Pushgateway adds): user labels are renamed away.
RESERVED_LABELS = frozenset(
    {"extension", "test", "outcome", "phase", "component", "quantile", "le", "job", "instance",
     "stat"}
)  # fmt: skip
#: resources key -> (family suffix, unit, factor, help)
RESOURCE_GAUGES: dict[str, tuple[str, str, float, str]] = {
    "cpu_ms": ("cpu_seconds", "seconds", 1e-3, "CPU time (user + system) of the process"),
    "cpu_user_s": ("cpu_user_seconds", "seconds", 1.0, "User CPU time of the process"),
    "cpu_system_s": ("cpu_system_seconds", "seconds", 1.0, "System CPU time of the process"),
    "peak_rss_bytes": ("peak_rss_bytes", "bytes", 1.0, "Peak resident set size"),
    "rss_start_bytes": ("rss_start_bytes", "bytes", 1.0, "Resident set size at the start"),
    "rss_end_bytes": ("rss_end_bytes", "bytes", 1.0, "Resident set size at the end"),
    "io_read_bytes": ("io_read_bytes", "bytes", 1.0, "Bytes the process read from storage"),
    "io_write_bytes": ("io_write_bytes", "bytes", 1.0, "Bytes the process wrote to storage"),
    "ctx_switches": ("context_switches", "", 1.0, "Context switches of the process"),
}
#: memory key -> (family suffix, unit, help)
MEMORY_GAUGES: dict[str, tuple[str, str, str]] = {
    "peak_bytes": ("tracemalloc_peak_bytes", "bytes", "tracemalloc peak above the start"),
    "allocated_bytes": ("allocated_bytes", "bytes", "Traced bytes allocated and not freed"),
    "allocated_blocks": ("allocated_blocks", "", "Allocator blocks allocated and not freed"),
}


#: Gauges read from the figures catalogue: figure -> (family, key of the table above).
FIGURE_GAUGES: dict[str, tuple[str, str]] = {
    "cpu_ms": ("resources", "cpu_ms"),
    "peak_rss_mb": ("resources", "peak_rss_bytes"),
    "peak_memory_mb": ("memory", "peak_bytes"),
    "allocated_mb": ("memory", "allocated_bytes"),
    "allocated_blocks": ("memory", "allocated_blocks"),
}
FROM_CATALOGUE = frozenset(key for _, key in FIGURE_GAUGES.values())
CATALOGUE_GAUGES = ("duration_ms", "kari_overhead_ms", *FIGURE_GAUGES)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class _Series:
    __slots__ = ("labels", "values")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.values: list[float] = []


class _Family:
    __slots__ = ("names", "series", "unit")

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.names: set[tuple[str, str]] = set()
        self.series: dict[tuple[tuple[str, str], ...], _Series] = {}


class PrometheusExporter:
    """A ``prometheus_client`` collector exposing the metrics of a run's test records.

    *tests* are test records (``nodeid``, ``extension_id``, ``outcome``, ``phases``,
    ``duration_ms``, ``collected_data``); *prefix* starts every metric name.
    """

    def __init__(self, tests: Iterable[dict[str, Any]], *, prefix: str = "kari") -> None:
        self.tests = list(tests)
        self.prefix = sanitize_metric_name(prefix)

    @classmethod
    def from_sessions(cls, sessions: Iterable[Any], *, prefix: str = "kari") -> PrometheusExporter:
        """An exporter over stopped debug sessions (``DebugSession`` objects) of live managers.

        Each session stands for one test: its name is the ``test`` label.
        """
        from .bundle import session_tests

        return cls(session_tests(sessions), prefix=prefix)

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family (prometheus_client's collector protocol)."""
        p = self.prefix
        base = ["extension", "test"]
        outcomes: dict[tuple[str, str], int] = {}
        duration = GaugeMetricFamily(
            f"{p}_test_duration_seconds",
            "The test's own setup + call time (duration_ms of the figures catalogue)",
            labels=base,
            unit="seconds",
        )
        overhead = GaugeMetricFamily(
            f"{p}_test_overhead_seconds",
            "The plugin's own time in the test's window (kari_overhead_ms), in no other figure",
            labels=base,
            unit="seconds",
        )
        phases = GaugeMetricFamily(
            f"{p}_test_phase_duration_seconds",
            "Duration of one phase of the test",
            labels=[*base, "phase"],
            unit="seconds",
        )
        outcome = GaugeMetricFamily(
            f"{p}_test_outcome", "1 for the outcome of the test", labels=[*base, "outcome"]
        )
        dropped = GaugeMetricFamily(
            f"{p}_test_records_dropped",
            "Records a component dropped at its limit during the test",
            labels=[*base, "component"],
        )
        resources = {
            key: GaugeMetricFamily(
                f"{p}_test_{suffix}", f"{text} during the test", labels=base, unit=unit
            )
            for key, (suffix, unit, _, text) in RESOURCE_GAUGES.items()
        }
        memory = {
            key: GaugeMetricFamily(
                f"{p}_test_{suffix}", f"{text} during the test", labels=base, unit=unit
            )
            for key, (suffix, unit, text) in MEMORY_GAUGES.items()
        }
        families: dict[str, _Family] = {}
        for test in self.tests:
            extension = str(test.get("extension_id") or "")
            nodeid = str(test.get("nodeid") or "")
            labels = [extension, nodeid]
            result = str(test.get("outcome") or "unknown")
            outcomes[(extension, result)] = outcomes.get((extension, result), 0) + 1
            outcome.add_metric([*labels, result], 1.0)
            record = TestRecord.from_dict(test)
            measured = values(CATALOGUE_GAUGES, record, base=True)
            if "duration_ms" in measured:
                duration.add_metric(labels, measured["duration_ms"] / 1000.0)
            if "kari_overhead_ms" in measured:
                overhead.add_metric(labels, measured["kari_overhead_ms"] / 1000.0)
            for phase, ms in sorted(record.phases.items()):
                phases.add_metric([*labels, phase], ms / 1000.0)
            for component, count in sorted(dropped_of(record).items()):
                if count:
                    dropped.add_metric([*labels, component], float(count))
            for figure, (where, key) in FIGURE_GAUGES.items():
                if figure in measured:
                    target = resources if where == "resources" else memory
                    scale = RESOURCE_GAUGES[key][2] if where == "resources" else 1.0
                    target[key].add_metric(labels, measured[figure] * scale)
            metrics = record.component(Kind.METRICS)
            if metrics is None:
                continue
            for key, value in (record.detail(Kind.METRICS, "resources") or {}).items():
                number = _number(value)
                if key in resources and key not in FROM_CATALOGUE and number is not None:
                    resources[key].add_metric(labels, number * RESOURCE_GAUGES[key][2])
            for point in metrics.records:
                self._add_point(families, extension, nodeid, point)
        tests = CounterMetricFamily(
            f"{p}_tests", "Tests recorded, by outcome", labels=["extension", "outcome"]
        )
        for (extension, result), count in sorted(outcomes.items()):
            tests.add_metric([extension, result], float(count))
        yield tests
        yield duration
        if overhead.samples:
            yield overhead
        yield phases
        yield outcome
        for gauge in (*resources.values(), *memory.values()):
            if gauge.samples:
                yield gauge
        if dropped.samples:
            yield dropped
        for name, family in sorted(families.items()):
            yield self._summary(name, family)

    def _add_point(
        self, families: dict[str, _Family], extension: str, nodeid: str, point: Any
    ) -> None:
        if not isinstance(point, Mapping):
            return
        raw = point.get("name")
        value = _number(point.get("value"))
        if not isinstance(raw, str) or value is None:
            return
        try:
            clean = sanitize_metric_name(raw)
        except ValueError:  # recorded by another tool: skip what cannot be exposed
            return
        unit_text = str(point.get("unit") or "")
        unit, factor = prometheus_unit(unit_text)
        name = f"{self.prefix}_metric_{clean}"
        if unit and not name.endswith("_" + unit):
            name = f"{name}_{unit}"
        family = families.get(name)
        if family is None:
            family = families[name] = _Family(unit)
        family.names.add((raw, unit_text))
        labels = {"extension": extension, "test": nodeid}
        for key, text in sorted((point.get("labels") or {}).items()):
            label = sanitize_label_name(key)
            if label in RESERVED_LABELS:
                label = f"label_{label}"
            while label in labels:
                label = f"{label}_"
            labels[label] = str(text)
        key = tuple(sorted(labels.items()))
        series = family.series.get(key)
        if series is None:
            series = family.series[key] = _Series(labels)
        series.values.append(value * factor)

    def _summary(self, name: str, family: _Family) -> Metric:
        recorded = ", ".join(
            f"{raw!r}" + (f" in {unit!r}" if unit else "") for raw, unit in sorted(family.names)
        )
        label_names = sorted({k for s in family.series.values() for k in s.labels})
        negative = any(v < 0 for s in family.series.values() for v in s.values)
        if negative:
            # OpenMetrics forbids a negative summary sum: such a metric is a gauge per statistic.
            help_text = f"Statistics (label stat) of the values recorded as {recorded}, per test"
            gauge = GaugeMetricFamily(
                name, help_text, labels=[*label_names, "stat"], unit=family.unit
            )
            for series in family.series.values():
                values = sorted(series.values)
                label_values = [series.labels.get(k, "") for k in label_names]
                stats = {"count": float(len(values)), "sum": math.fsum(values),
                         "min": values[0], "max": values[-1]}  # fmt: skip
                stats.update((f"p{round(q * 100)}", quantile(values, q)) for q in QUANTILES)
                for stat, value in stats.items():
                    gauge.add_metric([*label_values, stat], value)
            return gauge
        help_text = f"Values recorded with record_metric as {recorded}, per test"
        summary = SummaryMetricFamily(name, help_text, labels=label_names, unit=family.unit)
        for series in family.series.values():
            values = sorted(series.values)
            # Label sets differ between series of one family: absent labels are empty,
            # which Prometheus treats as the same thing.
            label_values = [series.labels.get(k, "") for k in label_names]
            summary.add_metric(label_values, len(values), math.fsum(values))
            for q in QUANTILES:
                labels = dict(zip(label_names, label_values, strict=False))
                labels["quantile"] = str(q)
                # SummaryMetricFamily.add_metric has no quantiles; add_sample is how
                # prometheus_client's own families add theirs.
                summary.add_sample(name, labels, quantile(values, q))
        return summary


# What an extension holds (live or stored alike) ------------------------------------------
@dataclass(frozen=True)
class ExtensionState:
    """What one extension holds, for the extension families: the same names whether it is a
    live manager's buffers or the store's records. A ``None`` part is not exported."""

    extension_id: str
    #: Records held, by record kind (``log``, ``metric``, ``error``, ``span``, ``alert``...).
    records: Mapping[str, int] = field(default_factory=dict)
    #: Records dropped at a buffer limit, by record kind.
    dropped: Mapping[str, int] = field(default_factory=dict)
    #: Log records by level.
    log_levels: Mapping[str, int] | None = None
    #: Error groups: ``fingerprint``, ``error_type``, ``status`` and ``count``.
    error_groups: Sequence[Mapping[str, Any]] | None = None
    #: Alerts: ``severity`` and ``status`` of each.
    alerts: Sequence[Mapping[str, Any]] | None = None
    #: Newest value of each metric: name -> ``{"value", "unit"}``.
    latest_metrics: Mapping[str, Mapping[str, Any]] | None = None


class ExtensionCollector:
    """A ``prometheus_client`` collector of the extension families of :class:`ExtensionState`.

    ``<prefix>_records``, ``<prefix>_records_dropped_total``, ``<prefix>_log_records``,
    ``<prefix>_errors_total``, ``<prefix>_error_groups``, ``<prefix>_alerts`` and
    ``<prefix>_latest_metric_value`` (in the metric's base unit), each labelled by extension.
    """

    def __init__(self, states: Iterable[ExtensionState], *, prefix: str = "kari") -> None:
        self.states = list(states)
        self.prefix = sanitize_metric_name(prefix)

    def collect(self) -> Iterator[Metric]:
        """Yield every extension family (prometheus_client's collector protocol)."""
        p, ext = self.prefix, ["extension"]
        records = GaugeMetricFamily(
            f"{p}_records", "Records held, by record kind", labels=[*ext, "kind"]
        )
        dropped = CounterMetricFamily(
            f"{p}_records_dropped", "Records dropped at a buffer limit, by record kind",
            labels=[*ext, "kind"],
        )  # fmt: skip
        levels = GaugeMetricFamily(
            f"{p}_log_records", "Log records held, by level", labels=[*ext, "level"]
        )
        errors = CounterMetricFamily(
            f"{p}_errors", "Errors recorded, by error group",
            labels=[*ext, "fingerprint", "error_type"],
        )  # fmt: skip
        groups = GaugeMetricFamily(
            f"{p}_error_groups", "Error groups, by status", labels=[*ext, "status"]
        )
        alerts = GaugeMetricFamily(
            f"{p}_alerts", "Alerts, by severity and status", labels=[*ext, "severity", "status"]
        )
        latest = GaugeMetricFamily(
            f"{p}_latest_metric_value",
            "Newest value of each recorded metric, in its base unit (label unit)",
            labels=[*ext, "metric", "unit"],
        )
        wanted = {"levels": False, "errors": False, "alerts": False, "latest": False}
        for state in self.states:
            name = state.extension_id
            for kind, count in sorted(state.records.items()):
                records.add_metric([name, kind], float(count))
            for kind, count in sorted(state.dropped.items()):
                dropped.add_metric([name, kind], float(count))
            if state.log_levels is not None:
                wanted["levels"] = True
                for level in LOG_LEVEL_NAMES:
                    levels.add_metric([name, level], float(state.log_levels.get(level, 0)))
            if state.error_groups is not None:
                wanted["errors"] = True
                by_status: dict[str, int] = {}
                for group in state.error_groups:
                    errors.add_metric(
                        [name, str(group.get("fingerprint")), str(group.get("error_type") or "")],
                        float(group.get("count") or 0),
                    )
                    status = str(group.get("status") or "open")
                    by_status[status] = by_status.get(status, 0) + 1
                for status, count in sorted(by_status.items()):
                    groups.add_metric([name, status], float(count))
            if state.alerts is not None:
                wanted["alerts"] = True
                by_key: dict[tuple[str, str], int] = {}
                for alert in state.alerts:
                    key = (str(alert.get("severity") or ""), str(alert.get("status") or ""))
                    by_key[key] = by_key.get(key, 0) + 1
                for (severity, status), count in sorted(by_key.items()):
                    alerts.add_metric([name, severity, status], float(count))
            if state.latest_metrics is not None:
                wanted["latest"] = True
                for metric, found in sorted(state.latest_metrics.items()):
                    number = _number(found.get("value"))
                    if number is not None:
                        unit, factor = prometheus_unit(str(found.get("unit") or ""))
                        latest.add_metric([name, metric, unit], number * factor)
        yield records
        yield dropped
        if wanted["levels"]:
            yield levels
        if wanted["errors"]:
            yield errors
            yield groups
        if wanted["alerts"]:
            yield alerts
        if wanted["latest"]:
            yield latest


def registry_for(
    tests: Iterable[dict[str, Any]] | None,
    *,
    prefix: str = "kari",
    extensions: Iterable[ExtensionState] = (),
) -> CollectorRegistry:
    """A fresh registry of a :class:`PrometheusExporter` over *tests* (``None``: no test
    families) and, with *extensions*, an :class:`ExtensionCollector` over them: one naming
    scheme for both."""
    registry = CollectorRegistry(auto_describe=False)
    if tests is not None:
        registry.register(PrometheusExporter(tests, prefix=prefix))
    states = list(extensions)
    if states:
        registry.register(ExtensionCollector(states, prefix=prefix))
    return registry


def render(
    tests: Iterable[dict[str, Any]] | None,
    fmt: str = "text",
    *,
    prefix: str = "kari",
    extensions: Iterable[ExtensionState] = (),
) -> bytes:
    """The exposition of *tests* (and *extensions*) in *fmt*: ``text`` (version 0.0.4) or
    ``openmetrics``.

    Any label text is written: one that UTF-8 cannot hold (a lone surrogate) is escaped.
    """
    if fmt not in FORMATS:
        msg = f"unknown Prometheus format {fmt!r}; accepted: {', '.join(FORMATS)}"
        raise ExportError(msg)
    tests = None if tests is None else list(tests)
    states = list(extensions)
    try:
        return _exposition(registry_for(tests, prefix=prefix, extensions=states), fmt)
    except UnicodeEncodeError:
        repaired = [_repaired(state) for state in states]
        registry = registry_for(
            None if tests is None else repair(tests), prefix=prefix, extensions=repaired
        )
        return _exposition(registry, fmt)


def _repaired(state: ExtensionState) -> ExtensionState:
    """*state* with every text made writable (a lone surrogate escaped)."""
    return replace(state, **{f.name: repair(getattr(state, f.name)) for f in fields(state)})


def _exposition(registry: CollectorRegistry, fmt: str) -> bytes:
    if fmt == "text":
        return generate_latest(registry)
    exposition: bytes = generate_openmetrics(registry)  # untyped in prometheus_client
    return exposition


def write_prometheus(
    path: str | Path, tests: Iterable[dict[str, Any]], fmt: str = "text", *, prefix: str = "kari"
) -> Path:
    """Write the exposition of *tests* to *path* atomically; return the path."""
    return write_atomic(path, render(tests, fmt, prefix=prefix).decode("utf-8"))


def gateway_address(url: str) -> str:
    """Check a Pushgateway *url* (``http(s)://host:port``, scheme optional) and return it."""
    text = url.strip() if isinstance(url, str) else ""
    full = text if "://" in text else f"http://{text}"
    parts = urlsplit(full)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"Pushgateway URL {url!r} is not valid: use http://HOST:PORT or https://HOST:PORT"
        raise ExportError(msg)
    try:
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        msg = f"Pushgateway URL {url!r} has a bad port"
        raise ExportError(msg) from None
    return full


def push(
    url: str,
    tests: Iterable[dict[str, Any]],
    *,
    job: str = JOB,
    timeout: float = 10.0,
    prefix: str = "kari",
) -> list[str]:
    """Push *tests* to the Pushgateway at *url*, one group per extension; return them.

    Uses ``prometheus_client.push_to_gateway`` (HTTP PUT: each push replaces its group) with
    job *job* and grouping key ``{"extension": <extension id>}``.
    """
    address = gateway_address(url)
    by_extension: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        by_extension.setdefault(str(test.get("extension_id") or ""), []).append(test)
    pushed = []
    for extension, group in sorted(by_extension.items()):
        try:
            push_to_gateway(
                address,
                job=job,
                registry=registry_for(group, prefix=prefix),
                grouping_key={"extension": extension},
                timeout=timeout,
            )
        except Exception as exc:
            where = urlsplit(address)
            shown = f"{where.scheme}://{where.hostname}" + (f":{where.port}" if where.port else "")
            msg = f"push of extension {extension!r} to {shown} failed: {type(exc).__name__}: {exc}"
            raise ExportError(msg) from exc
        pushed.append(extension)
    return pushed


__all__ = [
    "FORMATS",
    "JOB",
    "ExtensionCollector",
    "ExtensionState",
    "PrometheusExporter",
    "gateway_address",
    "push",
    "registry_for",
    "render",
    "write_prometheus",
]
