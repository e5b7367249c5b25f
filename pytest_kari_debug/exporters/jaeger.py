"""Jaeger JSON: span records in the ``{"data": [{traceID, spans, processes}]}`` shape of Jaeger.

This is the document the Jaeger UI's "JSON File" upload (and ``/api/traces``) reads: one entry
per trace, microsecond start times and durations, ``CHILD_OF`` references, typed tags and logs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ..atomic import write_atomic
from ..exceptions import ExportError


class SpanBatch(NamedTuple):
    """Span records of one service (an extension) and the tags of the process that made them."""

    service: str
    spans: Iterable[Mapping[str, Any]]
    tags: Mapping[str, Any] = {}


def _tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    return {"key": key, "type": "string", "value": json.dumps(value, default=repr)}


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _span_tags(span: Mapping[str, Any]) -> list[dict[str, Any]]:
    tags = [_tag(str(k), v) for k, v in (span.get("tags") or {}).items() if v is not None]
    keys = {t["key"] for t in tags}
    kind = span.get("kind") or "internal"
    if kind != "internal" and "span.kind" not in keys:
        tags.append(_tag("span.kind", kind))
    if span.get("status") == "error":
        if "error" not in keys:
            tags.append(_tag("error", True))
        tags.append(_tag("otel.status_code", "ERROR"))
        if span.get("status_message"):
            tags.append(_tag("otel.status_description", str(span["status_message"])))
    if span.get("session_id") and "kari.session.id" not in keys:
        tags.append(_tag("kari.session.id", str(span["session_id"])))
    if span.get("source") and span["source"] != "kari":
        tags.append(_tag("kari.source", str(span["source"])))
    return tags


def _logs(span: Mapping[str, Any]) -> list[dict[str, Any]]:
    logs = []
    for event in span.get("events") or ():
        fields = [_tag("event", str(event.get("name", "")))]
        fields.extend(
            _tag(str(k), v) for k, v in (event.get("attributes") or {}).items() if v is not None
        )
        logs.append({"timestamp": _micros(float(event.get("ts", span["start"]))), "fields": fields})
    return logs


def build_jaeger_document(batches: Iterable[SpanBatch]) -> dict[str, Any]:
    """The Jaeger JSON document of every finished span in *batches*, grouped by trace.

    A reference whose parent span is not in the document (a CI pipeline's span, or a span
    dropped by sampling or limits) is left out so every reference resolves; the missing
    parent is kept as tag ``kari.parent_id`` and a span warning.
    """
    traces: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    pending: list[tuple[dict[str, Any], str | None]] = []
    process_keys: dict[str, str] = {}
    processes: dict[str, dict[str, Any]] = {}
    for batch in batches:
        process = {
            "serviceName": batch.service,
            "tags": [_tag(str(k), v) for k, v in sorted(batch.tags.items()) if v is not None],
        }
        key = json.dumps(process, sort_keys=True)
        process_id = process_keys.get(key)
        if process_id is None:
            process_id = process_keys[key] = f"p{len(process_keys) + 1}"
            processes[process_id] = process
        for span in batch.spans:
            if span.get("end") is None:
                continue
            trace_id, span_id = str(span["trace_id"]), str(span["span_id"])
            if (trace_id, span_id) in seen:
                continue
            seen.add((trace_id, span_id))
            entry = traces.setdefault(trace_id, {"traceID": trace_id, "spans": [], "used": set()})
            entry["used"].add(process_id)
            jaeger_span: dict[str, Any] = {
                "traceID": trace_id,
                "spanID": span_id,
                "flags": 1,
                "operationName": str(span["name"]),
                "references": [],
                "startTime": _micros(float(span["start"])),
                "duration": max(0, round(float(span["duration_ms"]) * 1000)),
                "tags": _span_tags(span),
                "logs": _logs(span),
                "processID": process_id,
                "warnings": None,
            }
            entry["spans"].append(jaeger_span)
            pending.append((jaeger_span, span.get("parent_id")))
    for jaeger_span, parent_id in pending:
        if not parent_id:
            continue
        trace_id = jaeger_span["traceID"]
        if (trace_id, parent_id) in seen:
            jaeger_span["references"].append(
                {"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent_id}
            )
        else:
            jaeger_span["tags"].append(_tag("kari.parent_id", parent_id))
            jaeger_span["warnings"] = [f"parent span {parent_id} is not in this file"]
    data = []
    for entry in traces.values():
        entry["spans"].sort(key=lambda s: s["startTime"])
        used = sorted(entry.pop("used"), key=lambda p: int(p[1:]))
        data.append(
            {
                "traceID": entry["traceID"],
                "spans": entry["spans"],
                "processes": {pid: processes[pid] for pid in used},
                "warnings": None,
            }
        )
    data.sort(key=lambda t: t["spans"][0]["startTime"] if t["spans"] else 0)
    return {"data": data, "total": len(data), "limit": 0, "offset": 0, "errors": None}


def write_jaeger(path: str | os.PathLike[str], batches: Iterable[SpanBatch]) -> Path:
    """Write the Jaeger JSON of *batches* to *path* (atomically)."""
    return write_span_document(path, build_jaeger_document(batches), "the Jaeger JSON")


def write_span_document(path: str | os.PathLike[str], document: Any, what: str) -> Path:
    """Write a span *document* as compact JSON to *path* (atomically); a failure is an
    ``ExportError`` naming *what* was written and where."""
    try:
        return write_atomic(path, json.dumps(document, separators=(",", ":")))
    except OSError as exc:
        msg = f"could not write {what} to {str(path)!r}: {exc}"
        raise ExportError(msg) from exc


__all__ = ["SpanBatch", "build_jaeger_document", "write_jaeger", "write_span_document"]
