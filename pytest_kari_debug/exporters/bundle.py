"""Exports of one extension's logs, metrics, errors, alerts and traces, from plain data.

The REST API (from its dashboard), ``debug_manager.export()`` (from its components) and each
component's ``export()`` (through :mod:`.registry`) gather an :class:`ExportBundle` and render
it here: one JSON document shape, one CSV layout per kind (and one, :data:`RECORD_COLUMNS`, for
the records of every kind), one Prometheus exposition, Jaeger and OTLP/JSON traces. ``kari-debug
export`` renders the store's bundle here too. Nothing here reads or writes a file; ``path=``
writing is the callers'.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError, ExportError
from ..model import Kind
from ..sharedmethods import dataclass
from ..values import repair, to_jsonable
from .csv_export import iso_time, render_csv
from .logs_export import logs_to_csv, with_drops

KINDS = ("logs", "metrics", "errors", "alerts", "traces", "all")
EXPORT_FORMAT = "pytest-kari-debug/export"
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
#: The one layout of records of every kind (``all``; ``kari-debug export --format csv``): a row
#: per record, the whole record (but its store keys) in ``data``.
RECORD_COLUMNS = ("record_id", "kind", "time", "ts", "extension_id", "run_id", "test",
                  "session_id", "name", "level", "value", "message", "data")  # fmt: skip
#: Where each column of :data:`RECORD_COLUMNS` is read from in a record, first found first.
_RECORD_FIELDS = {
    "ts": ("ts", "start"),
    "test": ("nodeid", "test"),
    "name": ("name", "error_type", "alert_type"),
    "level": ("level", "severity"),
    "value": ("value", "current_value"),
}
#: Keys of a stored record that only say where the store keeps it.
_STORE_KEYS = ("record_id", "run_id", "test_id", "nodeid")
if TYPE_CHECKING:
    from .prometheus import ExtensionState

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class ExportBundle:
    """What one extension has recorded, as plain records (oldest first)."""

    extension_id: str
    source: str = "live"
    plugin_version: str = ""
    logs: list[dict[str, Any]] = field(default_factory=list)
    logs_dropped: int = 0
    #: ``records`` (points), ``samples`` (resource samples), ``dropped``...
    metrics: dict[str, Any] = field(default_factory=dict)
    #: Newest value of each metric: name -> {"value", "unit"}.
    latest_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_groups: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alert_statistics: dict[str, Any] = field(default_factory=dict)
    #: ``counts``, ``dropped`` (per component) and ``log_levels``.
    overview: dict[str, Any] = field(default_factory=dict)
    sessions: Any = field(default_factory=list)  # the dashboard's sessions view, or a list
    #: Test records (stopped sessions, or a stored run's tests) for the run's families.
    tests: list[dict[str, Any]] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)
    process_tags: dict[str, Any] = field(default_factory=dict)
    #: Profile records (a store's records no test owns).
    profiles: list[dict[str, Any]] = field(default_factory=list)
    #: Run documents (``--kari-json`` shape) of a store's export.
    runs: list[dict[str, Any]] = field(default_factory=list)
    #: One bundle per extension when this one holds several (a store's export of every
    #: extension): each gives its own extension families of the Prometheus exposition.
    parts: list[ExportBundle] = field(default_factory=list)


def session_tests(sessions: Iterable[Any]) -> list[dict[str, Any]]:
    """Stopped debug sessions (``DebugSession``) as test records: each stands for one test."""
    return [
        {
            "nodeid": session.name,
            "extension_id": session.extension_id,
            "outcome": "completed",
            "duration_ms": session.duration_seconds * 1000.0,
            "collected_data": session.collected_data,
        }
        for session in sessions
    ]


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


def finite(value: Any) -> Any:
    """*value* with every non-finite float as its repr (JSON has no NaN or Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def to_json(document: Any) -> str:
    """One JSON text: non-finite floats as text, anything else (an over-long integer, an
    object) through the one serializer."""
    try:
        return json.dumps(finite(document), default=to_jsonable, ensure_ascii=False)
    except ValueError:  # an integer past the int-to-str limit
        return json.dumps(repair(document), default=to_jsonable, ensure_ascii=False)


# Prometheus -------------------------------------------------------------------------------
def extension_state(bundle: ExportBundle, kind: str) -> ExtensionState:
    """What the bundle's extension holds, for the extension families of *kind*."""
    from .prometheus import ExtensionState  # prometheus_client: only when exporting

    overview = bundle.overview

    def by_kind(counts: Mapping[str, Any] | None) -> dict[str, int]:
        found: dict[str, int] = {}
        for component, count in (counts or {}).items():
            try:
                name = Kind.parse(component).record
            except ConfigurationError:
                name = str(component)
            found[name] = found.get(name, 0) + int(count or 0)
        return found

    return ExtensionState(
        extension_id=bundle.extension_id,
        records=by_kind(overview.get("counts")),
        dropped=by_kind(overview.get("dropped")),
        log_levels=overview.get("log_levels") or {} if kind in ("logs", "all") else None,
        error_groups=bundle.error_groups if kind in ("errors", "all") else None,
        alerts=bundle.alerts if kind in ("alerts", "all") else None,
        latest_metrics=bundle.latest_metrics if kind in ("metrics", "all") else None,
    )


def render_prometheus(bundle: ExportBundle, kind: str, fmt: str) -> bytes:
    """The exposition of *kind*: the run's test families (metrics, all) and the extension's,
    in the one naming scheme of :mod:`.prometheus`."""
    from .prometheus import render

    tests = bundle.tests if kind in ("metrics", "all") else None
    text_format = "openmetrics" if fmt == "openmetrics" else "text"
    states = [extension_state(part, kind) for part in bundle.parts or [bundle]]
    return render(tests, text_format, extensions=states)


# Traces -----------------------------------------------------------------------------------
def render_traces(bundle: ExportBundle, fmt: str, trace_id: str | None = None) -> str:
    """The spans (of *trace_id*, or all) as a Jaeger JSON or an OTLP/JSON document."""
    from .jaeger import SpanBatch, build_jaeger_document
    from .otlp import build_otlp_json

    services: dict[str, list[dict[str, Any]]] = {bundle.extension_id: []}
    for span in bundle.spans:
        if trace_id is None or span.get("trace_id") == trace_id:
            service = str(span.get("extension_id") or bundle.extension_id)
            services.setdefault(service, []).append(span)
    if len(services) > 1 and not services[bundle.extension_id]:
        del services[bundle.extension_id]  # a store's spans name their own extensions
    batches = [SpanBatch(name, spans, bundle.process_tags) for name, spans in services.items()]
    if fmt == "jaeger":
        return to_json(build_jaeger_document(batches))
    if fmt == "otlp":
        return to_json(build_otlp_json(batches))
    msg = f"traces cannot be exported as {fmt!r}; accepted: jaeger, otlp"
    raise ExportError(msg)


# Documents --------------------------------------------------------------------------------
def document(bundle: ExportBundle, kind: str) -> dict[str, Any]:
    """The JSON document of *kind*: the one shape of every JSON export (REST API,
    ``debug_manager.export()``, components' ``export()``, ``kari-debug export``)."""
    found: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": 1,
        "kind": kind,
        "extension_id": bundle.extension_id or None,
        "source": bundle.source,
        "exported_at": time.time(),
        "plugin_version": bundle.plugin_version,
    }
    if kind in ("logs", "all"):
        found["logs"] = with_drops(
            bundle.logs, bundle.logs_dropped, extension_id=bundle.extension_id, limit=None
        )
        found["logs_dropped"] = bundle.logs_dropped
    if kind in ("metrics", "all"):
        found["metrics"] = bundle.metrics
    if kind in ("errors", "all"):
        found["errors"] = bundle.errors
        found["error_groups"] = bundle.error_groups
    if kind in ("alerts", "all"):
        found["alerts"] = bundle.alerts
        found["alert_statistics"] = bundle.alert_statistics
    if kind == "all":
        found["overview"] = bundle.overview
        found["sessions"] = bundle.sessions
        found["spans"] = bundle.spans
        found["profiles"] = bundle.profiles
        found["runs"] = bundle.runs
    return found


def metric_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Metric points and resource samples as CSV rows, oldest first."""
    rows = [{**p, "source": "recorded"} for p in metrics.get("records") or ()]
    for sample in metrics.get("samples") or ():
        for key, value in sample.items():
            if key != "ts" and isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"ts": sample.get("ts"), "name": key, "value": value,
                             "source": "sampler"})  # fmt: skip
    rows.sort(key=lambda r: r.get("ts") or 0.0)
    return rows


def render_bundle_csv(bundle: ExportBundle, kind: str) -> str:
    """*kind* as one CSV table (``all``: one row per record of every kind)."""
    if kind == "logs":
        return logs_to_csv(bundle.logs)
    if kind == "metrics":
        return render_csv(metric_rows(bundle.metrics), METRIC_COLUMNS)
    if kind == "errors":
        return render_csv(bundle.errors, ERROR_COLUMNS)
    if kind == "alerts":
        return render_csv(bundle.alerts, ALERT_COLUMNS)
    return render_csv(record_rows(bundle), RECORD_COLUMNS)


def record_rows(bundle: ExportBundle) -> list[dict[str, Any]]:
    """Every record of the bundle as a row of :data:`RECORD_COLUMNS`, oldest first."""
    kinds = (
        ("log", bundle.logs), ("metric", bundle.metrics.get("records") or ()),
        ("error", bundle.errors), ("alert", bundle.alerts), ("span", bundle.spans),
        ("profile", bundle.profiles),
    )  # fmt: skip
    rows = [
        record_row(kind, record, bundle.extension_id) for kind, found in kinds for record in found
    ]
    rows.sort(key=lambda row: (row["ts"] or 0.0, row["record_id"] or 0))
    return rows


def record_row(kind: str, record: Mapping[str, Any], extension_id: str = "") -> dict[str, Any]:
    """One record of *kind* as a row of :data:`RECORD_COLUMNS`."""

    def first(column: str) -> Any:
        return next((record[k] for k in _RECORD_FIELDS[column] if record.get(k) is not None), None)

    ts = first("ts")
    return {
        "record_id": record.get("record_id"),
        "kind": kind,
        "time": iso_time(ts),
        "ts": ts,
        "extension_id": record.get("extension_id") or extension_id or None,
        "run_id": record.get("run_id"),
        "test": first("test"),
        "session_id": record.get("session_id"),
        "name": first("name"),
        "level": first("level"),
        "value": first("value"),
        "message": next(
            (record[k] for k in ("message", "error_message", "title") if record.get(k)), None
        ),
        "data": {k: v for k, v in record.items() if k not in _STORE_KEYS},
    }


__all__: Sequence[str] = [
    "ACCEPTED", "ALERT_COLUMNS", "ERROR_COLUMNS", "EXPORT_FORMAT", "KINDS", "METRIC_COLUMNS",
    "RECORD_COLUMNS", "ExportBundle", "document", "extension_state", "negotiate", "record_row",
    "record_rows", "render_bundle_csv",
    "render_prometheus", "render_traces", "session_tests", "to_json",
]  # fmt: skip
