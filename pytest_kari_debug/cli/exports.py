"""``kari-debug export``: the store's data as JSON, CSV, Prometheus text or Jaeger JSON.

What is in scope is read from the store here; the formats are the package's exporters'
(``exporters/prometheus.py``, ``exporters/jaeger.py``, ``exporters/otlp.py``), with the same
names and shapes as a live manager's exports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from .. import views
from ..errors.grouping import Occurrence, error_key, group_errors
from ..exporters import prometheus
from ..exporters.bundle import ExportBundle
from ..exporters.csv_export import render_csv
from ..exporters.formats import exporter_for
from ..exporters.jaeger import SpanBatch, build_jaeger_document
from ..exporters.json_export import build_run_document
from ..exporters.otlp import build_otlp_json
from ..model import Kind
from ..resolutions import ALERT
from ..storage import Store
from ..version import plugin_version
from .render import iso, to_json

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
    """The export document (the one shape of every JSON export, kind ``all``): the run
    documents in ``runs``, and the records no test owns in their kinds' lists."""
    standalone = {
        kind: [r for r in rows if r.get("test_id") is None]
        for kind, rows in data["records"].items()
    }
    bundle = ExportBundle(
        extension_id=extension_id or "",
        source="store",
        plugin_version=plugin_version(),
        logs=standalone.get("log", []),
        metrics={"records": standalone.get("metric", [])},
        errors=standalone.get("error", []),
        alerts=standalone.get("alert", []),
        spans=standalone.get("span", []),
        profiles=standalone.get("profile", []),
        runs=data["runs"],
    )
    return exporter_for("json").render(bundle, "all").decode("utf-8")


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


def render_prometheus(
    data: dict[str, Any], extension_id: str | None, *, store: Store | None = None
) -> str:
    """Prometheus text exposition of the newest run in scope and of the records in scope.

    The one naming scheme of :mod:`~pytest_kari_debug.exporters.prometheus`: the test
    families of the newest run's tests, and the extension families of each extension's
    records (error groups and alerts with their statuses from *store*'s resolutions), exactly
    as a live manager's export names them.
    """
    tests = data["runs"][0]["tests"] if data["runs"] else None
    states = extension_states(data, extension_id, store=store)
    return prometheus.render(tests, "text", extensions=states).decode("utf-8")


def extension_states(
    data: dict[str, Any], extension_id: str | None, *, store: Store | None = None
) -> list[prometheus.ExtensionState]:
    """What each extension in scope holds: its records by kind, drops, log levels, error
    groups, alerts and newest metric values."""
    extensions: dict[str, dict[str, Any]] = {}

    def part(record: dict[str, Any]) -> dict[str, Any]:
        name = str(record.get("extension_id") or extension_id or "")
        return extensions.setdefault(
            name, {"records": Counter(), "levels": Counter(), "errors": [], "alerts": [],
                   "latest": {}, "dropped": Counter()},
        )  # fmt: skip

    for kind, rows in data["records"].items():
        for record in rows:
            found = part(record)
            found["records"][kind] += 1
            if kind == "log":
                found["levels"][str(record.get("level") or "").upper()] += 1
            elif kind == "error":
                found["errors"].append(record)
            elif kind == "alert":
                found["alerts"].append(record)
            elif kind == "metric" and isinstance(record.get("value"), (int, float)):
                name, ts = str(record.get("name")), float(record.get("ts") or 0.0)
                newest = found["latest"].get(name)
                if newest is None or ts >= newest["ts"]:
                    found["latest"][name] = {"ts": ts, "value": record["value"],
                                             "unit": record.get("unit")}  # fmt: skip
    for test in data["runs"][0]["tests"] if data["runs"] else ():
        found = part(test)
        for component, collected in (test.get("collected_data") or {}).items():
            if isinstance(collected, dict) and isinstance(collected.get("dropped"), int):
                found["dropped"][Kind.parse(component).record] += collected["dropped"]
    resolutions = store.resolutions(ALERT) if store is not None else None
    states = []
    for name, found in sorted(extensions.items()):
        error_states = (
            views.ErrorStates.of_store(store, name) if store is not None else views.ErrorStates()
        )
        occurrences = (
            Occurrence(name, error_key(r), r, 1, r.get("ts"), r.get("ts"), r.get("nodeid"))
            for r in found["errors"]
        )
        groups = [views.group_view(g, error_states) for g in group_errors(occurrences)]
        alerts = list(views.unique_alerts(reversed(found["alerts"]), resolutions))
        states.append(
            prometheus.ExtensionState(
                extension_id=name,
                records=dict(found["records"]),
                dropped=dict(found["dropped"]),
                log_levels=dict(found["levels"]),
                error_groups=groups,
                alerts=alerts,
                latest_metrics=found["latest"],
            )
        )
    return states


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
