"""Exports of one extension's logs, metrics, errors and alerts as JSON, CSV or Prometheus.

Everything is rendered in memory from the dashboard's sources with the package's exporters
(``exporters/logs_export.py``, ``csv_export.py``, ``prometheus.py``); no export reads or
writes a file, so no request can name a path.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from .. import __version__
from ..dashboard import ExtensionDebugDashboard
from ..exporters import prometheus
from ..exporters.csv_export import render_csv
from ..exporters.logs_export import logs_to_csv, with_drops
from ..logger import LEVELS

KINDS = ("logs", "metrics", "errors", "alerts", "all")
FORMATS = ("json", "csv", "prometheus", "openmetrics")
EXPORT_FORMAT = "pytest-kari-debug/export"
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "prometheus": "text/plain; version=0.0.4; charset=utf-8",
    "openmetrics": "application/openmetrics-text; version=1.0.0; charset=utf-8",
}
#: Accept media type -> format, in the order a tie is settled.
ACCEPTED = {
    "application/json": "json",
    "text/csv": "csv",
    "application/openmetrics-text": "openmetrics",
    "text/plain": "prometheus",
    "application/*": "json",
    "text/*": "csv",
    "*/*": "json",
}
METRIC_COLUMNS = ("ts", "name", "value", "unit", "session_id", "labels", "source")
ERROR_COLUMNS = ("ts", "error_type", "error_message", "fingerprint", "category", "culprit",
                 "level", "session_id", "nodeid", "suggestion")  # fmt: skip
ALERT_COLUMNS = ("ts", "alert_id", "severity", "status", "alert_type", "title", "message",
                 "metric_name", "current_value", "threshold_value", "occurrences",
                 "session_id", "resolved_at", "resolution_notes")  # fmt: skip
ALL_COLUMNS = ("kind", "ts", "name", "level", "value", "message", "session_id", "data")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def negotiate(fmt: str | None, accept: str | None) -> str | None:
    """The export format: *fmt* when given, else the best of the Accept header.

    ``None`` when the Accept header accepts none of the formats (a 406).
    """
    if fmt:
        return fmt
    if not accept or not accept.strip():
        return "json"
    best: tuple[float, int, str] | None = None
    order = list(ACCEPTED)
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media not in ACCEPTED or not 0 < quality <= 1 or not math.isfinite(quality):
            continue
        rank = (quality, -order.index(media), ACCEPTED[media])
        if best is None or rank[:2] > best[:2]:
            best = rank
    return None if best is None else best[2]


def filename(extension_id: str, kind: str, fmt: str) -> str:
    """A safe download name: ``<extension>-<kind>.<ext>``."""
    suffix = {"json": "json", "csv": "csv", "prometheus": "prom", "openmetrics": "om"}[fmt]
    return f"{_SAFE_NAME.sub('_', extension_id)[:80] or 'extension'}-{kind}.{suffix}"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# Data ------------------------------------------------------------------------------------
def _logs(dashboard: ExtensionDebugDashboard, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Log records oldest first, and how many the buffer dropped."""
    records = list(reversed(dashboard.search_logs(limit=limit)))
    dropped = dashboard.manager.logger.records.dropped if dashboard.manager is not None else 0
    return records, dropped


def _metrics(dashboard: ExtensionDebugDashboard, limit: int) -> dict[str, Any]:
    if dashboard.manager is not None:
        data = dashboard.manager.metrics.export_data()
        data["records"] = data["records"][-limit:]
        return data
    store = dashboard.store
    assert store is not None
    rows = store.select_records(
        "metric", extension_id=dashboard.extension_id, limit=limit, newest_first=True
    )
    return {"extension_id": dashboard.extension_id, "records": list(reversed(rows)),
            "samples": [], "dropped": 0}  # fmt: skip


def _errors(dashboard: ExtensionDebugDashboard, limit: int) -> list[dict[str, Any]]:
    if dashboard.manager is not None:
        errors = dashboard.manager.error_tracker.get_errors(limit=limit)
        return [e.to_dict() for e in reversed(errors)]
    store = dashboard.store
    assert store is not None
    rows = store.select_records("error", extension_id=dashboard.extension_id, limit=limit)
    return list(reversed(rows))


def _alerts(dashboard: ExtensionDebugDashboard, limit: int) -> list[dict[str, Any]]:
    return list(reversed(dashboard.get_alerts(limit=min(limit, 1000))))


def _tests(dashboard: ExtensionDebugDashboard) -> list[dict[str, Any]]:
    """Test records for the Prometheus exporter: stopped sessions, or the newest run's tests."""
    if dashboard.manager is not None:
        return prometheus.PrometheusExporter.from_sessions(list(dashboard.manager.sessions)).tests
    store = dashboard.store
    assert store is not None
    runs = store.run_summaries(extension_id=dashboard.extension_id, limit=1)
    return store.tests(runs[0]["id"], extension_id=dashboard.extension_id) if runs else []


# Prometheus -------------------------------------------------------------------------------
class _LiveCollector:
    """Families of what the dashboard shows now (``kari_live_*``), beside the run's families."""

    def __init__(self, dashboard: ExtensionDebugDashboard, kind: str) -> None:
        self.dashboard = dashboard
        self.kind = kind

    def collect(self) -> Iterator[Metric]:
        ext = self.dashboard.extension_id
        overview = self.dashboard.get_overview()
        kind = self.kind
        records = GaugeMetricFamily(
            "kari_live_records", "Records kept, by component", labels=["extension", "component"]
        )
        dropped = GaugeMetricFamily(
            "kari_live_records_dropped",
            "Records dropped at the buffer limit, by component",
            labels=["extension", "component"],
        )
        for component, count in sorted(overview["counts"].items()):
            records.add_metric([ext, component], float(count))
        for component, count in sorted(overview["dropped"].items()):
            dropped.add_metric([ext, component], float(count))
        yield records
        yield dropped
        if kind in ("logs", "all"):
            levels = GaugeMetricFamily(
                "kari_live_log_records", "Log records kept, by level", labels=["extension", "level"]
            )
            for level in LEVELS:
                levels.add_metric([ext, level], float(overview["log_levels"].get(level, 0)))
            yield levels
        if kind in ("errors", "all"):
            groups = GaugeMetricFamily(
                "kari_live_error_occurrences",
                "Errors per group",
                labels=["extension", "fingerprint", "error_type", "status"],
            )
            for group in self.dashboard.get_errors(limit=1000)["groups"]:
                groups.add_metric(
                    [ext, str(group["fingerprint"]), str(group.get("error_type") or ""),
                     str(group.get("status") or "")],
                    float(group["count"]),
                )  # fmt: skip
            yield groups
        if kind in ("alerts", "all"):
            alerts = GaugeMetricFamily(
                "kari_live_alerts", "Alerts by severity and status",
                labels=["extension", "severity", "status"],
            )  # fmt: skip
            counts: dict[tuple[str, str], int] = {}
            for alert in self.dashboard.get_alerts(limit=1000):
                key = (str(alert.get("severity") or ""), str(alert.get("status") or ""))
                counts[key] = counts.get(key, 0) + 1
            for (severity, status), count in sorted(counts.items()):
                alerts.add_metric([ext, severity, status], float(count))
            yield alerts
        if kind in ("metrics", "all"):
            latest = GaugeMetricFamily(
                "kari_live_metric_value",
                "Newest value of each metric and resource field",
                labels=["extension", "metric", "unit"],
            )
            data = self.dashboard.get_metrics(window_seconds=24 * 3600.0)
            for name, value in sorted(data["latest"].items()):
                latest.add_metric([ext, name, str(value.get("unit") or "")], float(value["value"]))
            yield latest


def render_prometheus(dashboard: ExtensionDebugDashboard, kind: str, fmt: str) -> bytes:
    """The exposition of *kind*: the exporter's run families (metrics, all) and live ones."""
    registry = CollectorRegistry(auto_describe=False)
    if kind in ("metrics", "all"):
        registry.register(prometheus.PrometheusExporter(_tests(dashboard)))
    registry.register(_LiveCollector(dashboard, kind))
    return generate_openmetrics(registry) if fmt == "openmetrics" else generate_latest(registry)


# Rendering -------------------------------------------------------------------------------
def render_export(
    dashboard: ExtensionDebugDashboard, kind: str, fmt: str, *, limit: int = 10_000
) -> bytes:
    """The export of *kind* (logs, metrics, errors, alerts, all) in *fmt*."""
    if fmt in ("prometheus", "openmetrics"):
        return render_prometheus(dashboard, kind, fmt)
    if fmt == "csv":
        return _csv(dashboard, kind, limit).encode("utf-8")
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": 1,
        "kind": kind,
        "extension_id": dashboard.extension_id,
        "source": dashboard.source,
        "exported_at": time.time(),
        "plugin_version": __version__,
    }
    if kind in ("logs", "all"):
        records, dropped = _logs(dashboard, limit)
        document["logs"] = with_drops(
            records, dropped, extension_id=dashboard.extension_id, limit=None
        )
        document["logs_dropped"] = dropped
    if kind in ("metrics", "all"):
        document["metrics"] = _metrics(dashboard, limit)
    if kind in ("errors", "all"):
        document["errors"] = _errors(dashboard, limit)
        document["error_groups"] = dashboard.get_errors(limit=1000)["groups"]
    if kind in ("alerts", "all"):
        document["alerts"] = _alerts(dashboard, limit)
        document["alert_statistics"] = dashboard.get_alert_statistics()
    if kind == "all":
        document["overview"] = dashboard.get_overview()
        document["sessions"] = dashboard.get_sessions()
    return json.dumps(_finite(document), default=repr, ensure_ascii=False).encode("utf-8")


def _csv(dashboard: ExtensionDebugDashboard, kind: str, limit: int) -> str:
    if kind == "logs":
        return logs_to_csv(_logs(dashboard, limit)[0])
    if kind == "metrics":
        data = _metrics(dashboard, limit)
        rows = [{**p, "source": "recorded"} for p in data["records"]]
        for sample in data.get("samples") or ():
            for key, value in sample.items():
                if key != "ts" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    rows.append({"ts": sample["ts"], "name": key, "value": value,
                                 "source": "sampler"})  # fmt: skip
        rows.sort(key=lambda r: r.get("ts") or 0.0)
        return render_csv(rows, METRIC_COLUMNS)
    if kind == "errors":
        return render_csv(_errors(dashboard, limit), ERROR_COLUMNS)
    if kind == "alerts":
        return render_csv(_alerts(dashboard, limit), ALERT_COLUMNS)
    rows = []
    for record in _logs(dashboard, limit)[0]:
        rows.append({"kind": "log", "ts": record.get("ts"), "name": record.get("name"),
                     "level": record.get("level"), "message": record.get("message"),
                     "session_id": record.get("session_id"), "data": record})  # fmt: skip
    for point in _metrics(dashboard, limit)["records"]:
        rows.append({"kind": "metric", "ts": point.get("ts"), "name": point.get("name"),
                     "value": point.get("value"), "session_id": point.get("session_id"),
                     "data": point})  # fmt: skip
    for error in _errors(dashboard, limit):
        rows.append({"kind": "error", "ts": error.get("ts"), "name": error.get("error_type"),
                     "level": error.get("level"), "message": error.get("error_message"),
                     "session_id": error.get("session_id"), "data": error})  # fmt: skip
    for alert in _alerts(dashboard, limit):
        rows.append({"kind": "alert", "ts": alert.get("ts"), "name": alert.get("alert_type"),
                     "level": alert.get("severity"), "value": alert.get("current_value"),
                     "message": alert.get("title"), "session_id": alert.get("session_id"),
                     "data": alert})  # fmt: skip
    rows.sort(key=lambda r: r.get("ts") or 0.0)
    return render_csv(rows, ALL_COLUMNS)
