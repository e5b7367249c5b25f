"""``kari-debug export``: the store's data as JSON, CSV, Prometheus text or Jaeger JSON.

The package's own exporters (``exporters/prometheus.py``: ``render(tests)``,
``exporters/jaeger.py``: ``build_jaeger_document(batches)``) are used when installed; without
them the generic renderers of this module produce the same standard formats from the stored
records.
"""

from __future__ import annotations

import importlib
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..exporters.csv_export import render_csv
from ..exporters.jaeger import SpanBatch, build_jaeger_document
from ..exporters.json_export import build_run_document
from ..exporters.otlp import build_otlp_json
from ..figures import figure_spec, values
from ..storage import Store
from ..version import plugin_version
from .render import iso, to_json

EXPORT_FORMAT = "pytest-kari-debug/export"
RECORD_KINDS = ("log", "metric", "error", "span", "alert", "profile")
CSV_COLUMNS = (
    "record_id",
    "kind",
    "time",
    "ts",
    "extension_id",
    "run_id",
    "test",
    "session_id",
    "name",
    "level",
    "value",
    "message",
    "data",
)


def _exporter(name: str, *attributes: str) -> list[Any] | None:
    """The named attributes of ``exporters.<name>``, or ``None`` when any is missing."""
    try:
        module = importlib.import_module(f"pytest_kari_debug.exporters.{name}")
    except ImportError:
        return None
    found = [getattr(module, attribute, None) for attribute in attributes]
    return found if all(item is not None for item in found) else None


#: What each format reads: run documents ("all", "newest", "none"), record kinds, and
#: whether only the records no test owns are needed.
NEEDS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "json": ("all", RECORD_KINDS, True),
    "csv": ("none", RECORD_KINDS, False),
    "prometheus": ("newest", RECORD_KINDS, False),
    "jaeger": ("none", ("span",), False),
    "otlp": ("none", ("span",), False),
}


def collect(
    store: Store,
    extension_id: str | None,
    run_ids: Sequence[int] | None,
    *,
    documents: str = "all",
    kinds: Sequence[str] = RECORD_KINDS,
    standalone_only: bool = False,
) -> dict[str, Any]:
    """What is in scope: run documents (*documents*: all, newest or none) and records.

    *run_ids* ``None`` means every run plus the records no run owns (a manager's samples);
    *standalone_only* keeps only the records no test owns (the run documents hold the rest).
    """
    if documents == "none":
        runs_meta: list[dict[str, Any] | None] = []
    elif run_ids is not None:
        runs_meta = [store.get_run(run_id) for run_id in run_ids]
    else:
        limit = 1 if documents == "newest" else 1_000_000
        runs_meta = list(store.run_summaries(extension_id=extension_id, limit=limit))
    if documents == "newest":
        runs_meta = runs_meta[:1]
    run_documents = []
    for run in runs_meta:
        if run is None:
            continue
        tests = store.tests(run["id"], extension_id=extension_id)
        data = run.get("data") or {}
        meta = {k: v for k, v in run.items() if k not in ("data", "outcomes", "extensions")}
        meta = {k: v for k, v in meta.items() if not k.startswith("tests_")}
        run_documents.append(
            build_run_document(
                meta,
                tests,
                diagnostics=data.get("diagnostics") or [],
                sections=data.get("sections") or {},
            )
        )
    records: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        found: list[dict[str, Any]] = []
        for run_id in run_ids if run_ids is not None else [None]:
            found.extend(
                store.select_records(
                    kind,
                    extension_id=extension_id,
                    run_id=run_id,
                    newest_first=False,
                    without_test=standalone_only,
                )
            )
        records[kind] = found
    return {"runs": run_documents, "records": records}


def render_json(data: dict[str, Any], extension_id: str | None) -> str:
    """The export document: run documents, plus the records no test owns."""
    standalone = {
        kind: [r for r in rows if r.get("test_id") is None]
        for kind, rows in data["records"].items()
    }
    return to_json(
        {
            "format": EXPORT_FORMAT,
            "version": 1,
            "exported_at": time.time(),
            "plugin_version": plugin_version(),
            "extension_id": extension_id,
            "runs": data["runs"],
            "manager_records": {kind: rows for kind, rows in standalone.items() if rows},
        }
    )


def _message(record: dict[str, Any]) -> Any:
    for key in ("message", "error_message", "title"):
        if record.get(key):
            return record[key]
    return None


def render_csv_export(data: dict[str, Any], kinds: Sequence[str]) -> str:
    """Every record of *kinds* as one CSV table (the whole record in the ``data`` column)."""
    rows = []
    for kind in kinds:
        for record in data["records"].get(kind, []):
            rows.append(
                {
                    "record_id": record.get("record_id"),
                    "kind": kind,
                    "time": iso(record.get("ts")),
                    "ts": record.get("ts"),
                    "extension_id": record.get("extension_id"),
                    "run_id": record.get("run_id"),
                    "test": record.get("nodeid"),
                    "session_id": record.get("session_id"),
                    "name": record.get("name"),
                    "level": record.get("level"),
                    "value": record.get("value"),
                    "message": _message(record),
                    "data": {
                        k: v
                        for k, v in record.items()
                        if k not in ("record_id", "run_id", "test_id", "nodeid")
                    },
                }
            )
    rows.sort(key=lambda row: (row["ts"] or 0.0, row["record_id"] or 0))
    return render_csv(rows, CSV_COLUMNS)


def render_prometheus(data: dict[str, Any], extension_id: str | None) -> str:
    """Prometheus text exposition of the newest run in scope.

    With the package's Prometheus exporter, its families over that run's tests; otherwise
    (or when no run is in scope) gauges built here with prometheus_client.
    """
    own = _exporter("prometheus", "render")
    if own is not None and data["runs"] and data["runs"][0]["tests"]:
        rendered = own[0](data["runs"][0]["tests"])
        return rendered.decode("utf-8") if isinstance(rendered, bytes) else str(rendered)
    return render_prometheus_generic(data, extension_id)


def render_prometheus_generic(data: dict[str, Any], extension_id: str | None) -> str:
    """Gauges of the newest run's tests and of every record in scope, via prometheus_client."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    run = data["runs"][0] if data["runs"] else None
    outcomes = Gauge(
        "kari_tests", "Tests of the run by outcome", ["extension", "outcome"], registry=registry
    )
    # Base units (seconds, bytes) and the labels of the package's Prometheus exporter; each
    # value is the catalogue's figure in its base unit (ms -> s here), never a rounded MiB.
    figures = {
        figure: (
            Gauge(f"kari_test_{name}", figure_spec(figure).description, ["extension", "test"],
                  registry=registry),
            scale,
        )
        for figure, name, scale in (
            ("duration_ms", "duration_seconds", 0.001),
            ("cpu_ms", "cpu_seconds", 0.001),
            ("peak_rss_mb", "peak_rss_bytes", 1.0),
            ("allocated_mb", "allocated_bytes", 1.0),
        )
    }  # fmt: skip
    if run is not None:
        counts = Counter((t.get("extension_id", ""), t.get("outcome", "")) for t in run["tests"])
        for (extension, outcome), count in sorted(counts.items()):
            outcomes.labels(extension, outcome).set(count)
        for test in run["tests"]:
            measured = values(list(figures), test, base=True)
            for figure, (gauge, scale) in figures.items():
                if figure in measured:
                    labels = (test.get("extension_id", ""), test["nodeid"])
                    gauge.labels(*labels).set(measured[figure] * scale)
    records = Gauge(
        "kari_records", "Records in scope by kind", ["extension", "kind"], registry=registry
    )
    last = Gauge(
        "kari_metric_last",
        "Newest value of each recorded metric",
        ["extension", "metric", "unit"],
        registry=registry,
    )
    errors = Gauge(
        "kari_errors", "Errors in scope by type", ["extension", "error_type"], registry=registry
    )
    alerts = Gauge(
        "kari_alerts",
        "Alerts in scope by severity",
        ["extension", "severity"],
        registry=registry,
    )
    per_kind: Counter[tuple[str, str]] = Counter()
    newest: dict[tuple[str, str, str], tuple[float, float]] = {}
    error_types: Counter[tuple[str, str]] = Counter()
    severities: Counter[tuple[str, str]] = Counter()
    for kind, rows in data["records"].items():
        for record in rows:
            extension = str(record.get("extension_id") or extension_id or "")
            per_kind[(extension, kind)] += 1
            if kind == "metric" and isinstance(record.get("value"), (int, float)):
                key = (extension, str(record.get("name")), str(record.get("unit") or ""))
                ts = float(record.get("ts") or 0.0)
                if key not in newest or ts >= newest[key][0]:
                    newest[key] = (ts, float(record["value"]))
            elif kind == "error":
                error_types[(extension, str(record.get("error_type") or "unknown"))] += 1
            elif kind == "alert":
                severities[(extension, str(record.get("severity") or "unknown"))] += 1
    for labels, count in sorted(per_kind.items()):
        records.labels(*labels).set(count)
    for metric_labels, (_, value) in sorted(newest.items()):
        last.labels(*metric_labels).set(value)
    for labels, count in sorted(error_types.items()):
        errors.labels(*labels).set(count)
    for labels, count in sorted(severities.items()):
        alerts.labels(*labels).set(count)
    return generate_latest(registry).decode("utf-8")


def _span_batches(data: dict[str, Any], extension_id: str | None) -> list[SpanBatch]:
    services: dict[str, list[dict[str, Any]]] = {}
    for span in data["records"].get("span", []):
        service = str(span.get("extension_id") or extension_id or "kari")
        services.setdefault(service, []).append(span)
    return [SpanBatch(service, spans) for service, spans in services.items()]


def render_jaeger(data: dict[str, Any], extension_id: str | None) -> str:
    """Spans as the JSON the Jaeger UI loads (``{"data": [trace, ...]}``): the package's
    Jaeger exporter over one span batch per extension."""
    return to_json(build_jaeger_document(_span_batches(data, extension_id)))


def render_otlp(data: dict[str, Any], extension_id: str | None) -> str:
    """Spans as one OTLP/JSON document (``resourceSpans``): the package's OTLP exporter,
    one resource per extension."""
    return to_json(build_otlp_json(_span_batches(data, extension_id)))
