"""What the REST API exports: an extension's data gathered from its dashboard.

The rendering (JSON, CSV, Prometheus/OpenMetrics, Jaeger, OTLP) is the package's
(:mod:`pytest_kari_debug.exporters.bundle`), shared with ``debug_manager.export()`` and the
components' ``export()``; this module only gathers the records, from a live manager or the
store. No export reads or writes a file, so no request can name a path.
"""

from __future__ import annotations

from .. import __version__
from ..dashboard import ExtensionDebugDashboard
from ..exporters.bundle import (
    KINDS,
    MEDIA_TYPES,
    TRACE_FORMATS,
    ExportBundle,
    filename,
    negotiate,
    render_export,
    render_traces,
    session_tests,
)

__all__ = [
    "KINDS", "MEDIA_TYPES", "TRACE_FORMATS", "bundle_of", "export", "filename", "negotiate",
]  # fmt: skip


def bundle_of(dashboard: ExtensionDebugDashboard, kind: str, *, limit: int) -> ExportBundle:
    """The records of *kind* the dashboard sees: a live manager's, or the store's."""
    ext = dashboard.extension_id
    manager, store = dashboard.manager, dashboard.store
    bundle = ExportBundle(extension_id=ext, source=dashboard.source, plugin_version=__version__)
    if kind in ("logs", "all"):
        bundle.logs = list(reversed(dashboard.search_logs(limit=limit)))
        bundle.logs_dropped = manager.logger.records.dropped if manager is not None else 0
    if kind in ("metrics", "all"):
        if manager is not None:
            bundle.metrics = manager.metrics.export_data()
            bundle.metrics["records"] = bundle.metrics["records"][-limit:]
            bundle.tests = session_tests(manager.sessions)
        else:
            assert store is not None
            rows = store.select_records("metric", extension_id=ext, limit=limit, newest_first=True)
            bundle.metrics = {"extension_id": ext, "records": list(reversed(rows)),
                              "samples": [], "dropped": 0}  # fmt: skip
            runs = store.run_summaries(extension_id=ext, limit=1)
            bundle.tests = store.tests(runs[0]["id"], extension_id=ext) if runs else []
        bundle.latest_metrics = dashboard.get_metrics(window_seconds=24 * 3600.0)["latest"]
    if kind in ("errors", "all"):
        if manager is not None:
            found = manager.error_tracker.get_errors(limit=limit)
            bundle.errors = [e.to_dict() for e in reversed(found)]
        else:
            assert store is not None
            rows = store.select_records("error", extension_id=ext, limit=limit)
            bundle.errors = list(reversed(rows))
        bundle.error_groups = dashboard.get_errors(limit=1000)["groups"]
    if kind in ("alerts", "all"):
        bundle.alerts = list(reversed(dashboard.get_alerts(limit=min(limit, 1000))))
        bundle.alert_statistics = dashboard.get_alert_statistics()
    if kind == "traces":
        if manager is not None:
            bundle.spans = manager.tracer.get_spans()[-limit:]
        else:
            assert store is not None
            rows = store.select_records("span", extension_id=ext, limit=limit, newest_first=True)
            bundle.spans = list(reversed(rows))
    bundle.overview = dashboard.get_overview()
    if kind == "all":
        bundle.sessions = dashboard.get_sessions()
    return bundle


def export(dashboard: ExtensionDebugDashboard, kind: str, fmt: str, *, limit: int) -> bytes:
    """The export of *kind* in *fmt* (traces: jaeger or otlp)."""
    bundle = bundle_of(dashboard, kind, limit=limit)
    if kind == "traces":
        return render_traces(bundle, fmt).encode("utf-8")
    return render_export(bundle, kind, fmt)
