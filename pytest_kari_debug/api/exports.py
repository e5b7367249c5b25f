"""What the REST API exports: an extension's data gathered from its dashboard.

The rendering (JSON, CSV, Prometheus/OpenMetrics, Jaeger, OTLP) is the package's
(:mod:`pytest_kari_debug.exporters.bundle`), shared with ``debug_manager.export()`` and the
components' ``export()``; this module only gathers the records through the dashboard's record
source (a live manager's or the store's). No export reads or writes a file, so no request can
name a path.
"""

from __future__ import annotations

from ..dashboard import ExtensionDebugDashboard
from ..exporters.bundle import KINDS, ExportBundle, negotiate
from ..exporters.formats import MEDIA_TYPES, TRACE_FORMATS, exporter_for, filename
from ..version import plugin_version

__all__ = [
    "KINDS", "MEDIA_TYPES", "TRACE_FORMATS", "bundle_of", "export", "filename", "negotiate",
]  # fmt: skip


def bundle_of(dashboard: ExtensionDebugDashboard, kind: str, *, limit: int) -> ExportBundle:
    """The records of *kind* the dashboard's source holds (a live manager's, or the store's)."""
    source = dashboard.record_source
    bundle = ExportBundle(
        extension_id=dashboard.extension_id,
        source=dashboard.source,
        plugin_version=plugin_version(),
    )
    if kind in ("logs", "all"):
        bundle.logs = list(reversed(dashboard.search_logs(limit=limit)))
        bundle.logs_dropped = int(source.status()["dropped"].get("logging", 0))
    if kind in ("metrics", "all"):
        bundle.metrics = source.metric_document(limit=limit)
        bundle.tests = source.run_tests()
        bundle.latest_metrics = dashboard.get_metrics(window_seconds=24 * 3600.0)["latest"]
    if kind in ("errors", "all"):
        bundle.errors = list(reversed(source.records("error", limit=limit)))
        bundle.error_groups = dashboard.get_errors(limit=1000)["groups"]
    if kind in ("alerts", "all"):
        bundle.alerts = list(reversed(dashboard.get_alerts(limit=min(limit, 1000))))
        bundle.alert_statistics = dashboard.get_alert_statistics()
    if kind == "traces":
        bundle.spans = list(reversed(source.records("span", limit=limit)))
    bundle.overview = dashboard.get_overview()
    if kind == "all":
        bundle.sessions = dashboard.get_sessions()
    return bundle


def export(dashboard: ExtensionDebugDashboard, kind: str, fmt: str, *, limit: int) -> bytes:
    """The export of *kind* in *fmt* (traces: jaeger or otlp)."""
    return exporter_for(fmt).render(bundle_of(dashboard, kind, limit=limit), kind)
