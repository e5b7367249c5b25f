"""OTLP: span records as an OTLP/JSON file, or sent as OTLP/HTTP protobuf to a collector.

OTLP/JSON follows the OTLP specification's JSON mapping (hex trace and span ids, nanosecond
times as decimal strings, integer enums). Sending uses OpenTelemetry's own OTLP/HTTP
exporter (the ``otlp`` extra), on a daemon thread joined with a timeout, so a dead or slow
collector costs at most that timeout.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ExportError
from .jaeger import SpanBatch, write_span_document

SCOPE = "pytest-kari-debug"
KIND_NUMBERS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
EXTRA_HINT = "pip install 'pytest-kari-debug[otlp]'"


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(v) for v in value if v is not None]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _attributes(value)}}
    return {"stringValue": repr(value)}


def _attributes(values: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [
        {"key": str(k), "value": _any_value(v)} for k, v in (values or {}).items() if v is not None
    ]


def _nanos(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


def _scope_of(span: Mapping[str, Any]) -> str:
    tags = span.get("tags") or {}
    if span.get("source") == "opentelemetry" and tags.get("otel.scope.name"):
        return str(tags["otel.scope.name"])
    return SCOPE


def _otlp_span(span: Mapping[str, Any]) -> dict[str, Any]:
    tags = dict(span.get("tags") or {})
    if span.get("session_id"):
        tags.setdefault("kari.session.id", span["session_id"])
    tags.pop("otel.scope.name", None)
    record: dict[str, Any] = {
        "traceId": str(span["trace_id"]),
        "spanId": str(span["span_id"]),
        "name": str(span["name"]),
        "kind": KIND_NUMBERS.get(str(span.get("kind") or "internal"), 1),
        "startTimeUnixNano": str(_nanos(float(span["start"]))),
        "endTimeUnixNano": str(_nanos(float(span["end"]))),
        "attributes": _attributes(tags),
        "events": [
            {
                "timeUnixNano": str(_nanos(float(event.get("ts", span["start"])))),
                "name": str(event.get("name", "")),
                "attributes": _attributes(event.get("attributes")),
            }
            for event in span.get("events") or ()
        ],
        "status": (
            {"code": STATUS_ERROR, "message": str(span.get("status_message") or "")}
            if span.get("status") == "error"
            else {"code": STATUS_UNSET}
        ),
    }
    if span.get("parent_id"):
        record["parentSpanId"] = str(span["parent_id"])
    return record


def build_otlp_json(batches: Iterable[SpanBatch]) -> dict[str, Any]:
    """One OTLP/JSON ``ExportTraceServiceRequest`` document holding every finished span."""
    resources: dict[str, dict[str, Any]] = {}
    for batch in batches:
        attributes = {"service.name": batch.service, **dict(batch.tags)}
        key = json.dumps(attributes, sort_keys=True, default=repr)
        entry = resources.setdefault(
            key, {"resource": {"attributes": _attributes(attributes)}, "scopes": {}}
        )
        for span in batch.spans:
            if span.get("end") is None:
                continue
            scope = _scope_of(span)
            entry["scopes"].setdefault(scope, []).append(_otlp_span(span))
    return {
        "resourceSpans": [
            {
                "resource": entry["resource"],
                "scopeSpans": [
                    {"scope": {"name": scope}, "spans": spans}
                    for scope, spans in entry["scopes"].items()
                ],
            }
            for entry in resources.values()
        ]
    }


def write_otlp_json(path: str | os.PathLike[str], batches: Iterable[SpanBatch]) -> Path:
    """Write the OTLP/JSON document of *batches* to *path* (atomically)."""
    return write_span_document(path, build_otlp_json(batches), "the OTLP/JSON document")


def check_endpoint(url: str) -> str:
    """Return *url* if it is an http(s) URL with a host; raise ``ExportError`` otherwise.

    A URL without a path gets OTLP's traces path ``/v1/traces``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"OTLP endpoint {url!r} is not an http:// or https:// URL with a host"
        raise ExportError(msg)
    if parts.path in ("", "/"):
        return parts._replace(path="/v1/traces").geturl()
    return parts.geturl()


def require_otlp_exporter() -> type:
    """The OTLP/HTTP span exporter class; ``ExportError`` naming the extra when missing."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        msg = f"sending OTLP needs the otlp extra: {EXTRA_HINT} ({exc})"
        raise ExportError(msg) from exc
    return OTLPSpanExporter


def _attribute_value(value: Any) -> Any:
    """A value OpenTelemetry accepts as an attribute (homogeneous sequences of scalars)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [v for v in value if v is not None]
        kinds = {type(v) for v in items}
        if len(kinds) <= 1 and kinds <= {bool, int, float, str}:
            return tuple(items)
        return tuple(json.dumps(v, default=repr) if not isinstance(v, str) else v for v in items)
    return json.dumps(value, default=repr)


def to_readable_spans(batches: Iterable[SpanBatch]) -> list[Any]:
    """Span records as OpenTelemetry SDK ``ReadableSpan`` objects (what SDK exporters take)."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    kinds = {name: getattr(trace.SpanKind, name.upper()) for name in KIND_NUMBERS}
    sampled = trace.TraceFlags(trace.TraceFlags.SAMPLED)
    result = []
    for batch in batches:
        resource = Resource.create(
            {"service.name": batch.service}
            | {str(k): _attribute_value(v) for k, v in batch.tags.items() if v is not None}
        )
        for span in batch.spans:
            if span.get("end") is None:
                continue
            trace_id = int(str(span["trace_id"]), 16)
            tags = dict(span.get("tags") or {})
            if span.get("session_id"):
                tags.setdefault("kari.session.id", span["session_id"])
            scope = (
                tags.pop("otel.scope.name", None) if span.get("source") == "opentelemetry" else None
            )
            parent = span.get("parent_id")
            status = (
                trace.Status(trace.StatusCode.ERROR, str(span.get("status_message") or ""))
                if span.get("status") == "error"
                else trace.Status(trace.StatusCode.UNSET)
            )
            result.append(
                ReadableSpan(
                    name=str(span["name"]),
                    context=trace.SpanContext(
                        trace_id, int(str(span["span_id"]), 16), False, sampled
                    ),
                    parent=(
                        trace.SpanContext(trace_id, int(str(parent), 16), False, sampled)
                        if parent
                        else None
                    ),
                    resource=resource,
                    attributes={k: _attribute_value(v) for k, v in tags.items() if v is not None},
                    events=[
                        Event(
                            str(event.get("name", "")),
                            {
                                str(k): _attribute_value(v)
                                for k, v in (event.get("attributes") or {}).items()
                                if v is not None
                            },
                            _nanos(float(event.get("ts", span["start"]))),
                        )
                        for event in span.get("events") or ()
                    ],
                    kind=kinds.get(str(span.get("kind") or "internal"), trace.SpanKind.INTERNAL),
                    status=status,
                    start_time=_nanos(float(span["start"])),
                    end_time=_nanos(float(span["end"])),
                    instrumentation_scope=InstrumentationScope(scope or SCOPE),
                )
            )
    return result


def send_otlp(
    endpoint: str,
    batches: Iterable[SpanBatch],
    *,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
    chunk: int = 512,
) -> int:
    """Send every finished span to the OTLP/HTTP *endpoint*; return how many were sent.

    The whole send (retries included) is bounded by *timeout* seconds; a collector that is
    down, refuses or stalls raises ``ExportError`` after at most that long.
    """
    url = check_endpoint(endpoint)
    exporter_class = require_otlp_exporter()
    spans = to_readable_spans(batches)
    if not spans:
        return 0
    if timeout <= 0:
        msg = f"OTLP timeout must be > 0 seconds, got {timeout!r}"
        raise ExportError(msg)
    outcome: dict[str, Any] = {}

    def work() -> None:
        exporter = exporter_class(endpoint=url, timeout=timeout, headers=dict(headers or {}))
        try:
            for start in range(0, len(spans), chunk):
                result = exporter.export(spans[start : start + chunk])
                if result.name != "SUCCESS":
                    outcome["error"] = f"the collector at {url} did not accept the spans"
                    return
                outcome["sent"] = outcome.get("sent", 0) + len(spans[start : start + chunk])
        except Exception as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            exporter.shutdown()

    thread = threading.Thread(target=work, name="kari-debug-otlp", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        msg = f"OTLP export to {url} did not finish within {timeout:g}s; spans not sent"
        raise ExportError(msg)
    if "error" in outcome:
        sent = outcome.get("sent", 0)
        msg = f"OTLP export to {url} failed after {sent} of {len(spans)} spans: {outcome['error']}"
        raise ExportError(msg)
    return int(outcome.get("sent", 0))


__all__ = [
    "SCOPE",
    "build_otlp_json",
    "check_endpoint",
    "require_otlp_exporter",
    "send_otlp",
    "to_readable_spans",
    "write_otlp_json",
]
