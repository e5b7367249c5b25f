"""Jaeger JSON export: the shape the Jaeger UI's JSON upload reads, parsed back and checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ExportError
from pytest_kari_debug.exporters.jaeger import SpanBatch, build_jaeger_document, write_jaeger
from pytest_kari_debug.tracing import ExtensionTracer, extract

TAG_TYPES = {"string": str, "bool": bool, "int64": int, "float64": float}


def recorded_spans() -> list[dict[str, Any]]:
    """Two traces: one nested with tags, logs and an error; one under a remote parent."""
    tracer = ExtensionTracer("ext", DebugConfiguration(tracing_enabled=True))
    context = tracer.start_trace("request")
    with tracer.start_span("db", {"rows": 3, "ratio": 0.5, "cached": False}) as span:
        span.log("query sent", sql="select 1")
    with pytest.raises(ValueError), tracer.start_span("render", kind="client"):
        raise ValueError("template missing")
    tracer.finish_trace(context.trace_id)
    remote = extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    with tracer.start_span("child-of-ci", parent=remote):
        pass
    return tracer.get_spans()


def check_jaeger_shape(document: dict[str, Any]) -> None:
    """Assert the keys and types the Jaeger UI reads, and that every reference resolves."""
    assert isinstance(document["data"], list)
    for trace in document["data"]:
        assert set(trace) >= {"traceID", "spans", "processes"}
        assert isinstance(trace["traceID"], str)
        assert len(trace["traceID"]) == 32
        span_ids = {span["spanID"] for span in trace["spans"]}
        assert len(span_ids) == len(trace["spans"])
        for span in trace["spans"]:
            assert set(span) >= {
                "traceID", "spanID", "operationName", "references", "startTime", "duration",
                "tags", "logs", "processID",
            }  # fmt: skip
            assert span["traceID"] == trace["traceID"]
            assert isinstance(span["spanID"], str)
            assert len(span["spanID"]) == 16
            assert isinstance(span["operationName"], str)
            assert isinstance(span["startTime"], int)
            assert span["startTime"] > 10**15
            assert isinstance(span["duration"], int)
            assert span["duration"] >= 0
            assert span["processID"] in trace["processes"]
            for reference in span["references"]:
                assert reference["refType"] in ("CHILD_OF", "FOLLOWS_FROM")
                assert reference["traceID"] == trace["traceID"]
                assert reference["spanID"] in span_ids
            for tag in span["tags"]:
                assert isinstance(tag["value"], TAG_TYPES[tag["type"]])
            for log in span["logs"]:
                assert isinstance(log["timestamp"], int)
                for field in log["fields"]:
                    assert isinstance(field["value"], TAG_TYPES[field["type"]])
        for process in trace["processes"].values():
            assert isinstance(process["serviceName"], str)
            assert isinstance(process["tags"], list)


def test_document_has_the_jaeger_ui_shape(tmp_path: Path) -> None:
    """The written file parses back into the Jaeger shape with resolvable references."""
    spans = recorded_spans()
    path = write_jaeger(tmp_path / "out" / "jaeger.json", [SpanBatch("ext", spans, {"w": "gw0"})])
    document = json.loads(path.read_text())
    check_jaeger_shape(document)
    assert len(document["data"]) == 2
    by_name = {s["operationName"]: s for t in document["data"] for s in t["spans"]}
    assert by_name["db"]["references"] == [
        {
            "refType": "CHILD_OF",
            "traceID": by_name["request"]["traceID"],
            "spanID": by_name["request"]["spanID"],
        }
    ]
    (process,) = document["data"][0]["processes"].values()
    assert process == {
        "serviceName": "ext",
        "tags": [{"key": "w", "type": "string", "value": "gw0"}],
    }


def test_tags_logs_and_errors_are_typed() -> None:
    """Tags keep their JSON types, logs carry the event name and fields, errors are flagged."""
    document = build_jaeger_document([SpanBatch("ext", recorded_spans())])
    by_name = {s["operationName"]: s for t in document["data"] for s in t["spans"]}
    tags = {t["key"]: (t["type"], t["value"]) for t in by_name["db"]["tags"]}
    assert tags["rows"] == ("int64", 3)
    assert tags["ratio"] == ("float64", 0.5)
    assert tags["cached"] == ("bool", False)
    (log,) = by_name["db"]["logs"]
    fields = {f["key"]: f["value"] for f in log["fields"]}
    assert fields == {"event": "query sent", "sql": "select 1"}
    render = {t["key"]: t["value"] for t in by_name["render"]["tags"]}
    assert render["error"] is True
    assert render["span.kind"] == "client"
    assert "template missing" in render["otel.status_description"]


def test_times_are_microseconds_of_the_span_records() -> None:
    """startTime and duration are the records' start and duration in whole microseconds."""
    spans = recorded_spans()
    document = build_jaeger_document([SpanBatch("ext", spans)])
    by_id = {s["spanID"]: s for t in document["data"] for s in t["spans"]}
    for span in spans:
        jaeger = by_id[span["span_id"]]
        assert jaeger["startTime"] == round(span["start"] * 1_000_000)
        assert jaeger["duration"] == round(span["duration_ms"] * 1000)


def test_parent_missing_from_the_file_is_not_referenced() -> None:
    """A span whose parent is remote keeps it as a tag and a warning, not a dangling reference."""
    document = build_jaeger_document([SpanBatch("ext", recorded_spans())])
    (span,) = [
        s for t in document["data"] for s in t["spans"] if s["operationName"] == "child-of-ci"
    ]
    assert span["references"] == []
    assert {"key": "kari.parent_id", "type": "string", "value": "b7ad6b7169203331"} in span["tags"]
    assert "b7ad6b7169203331" in span["warnings"][0]


def test_processes_per_service_and_duplicates_dropped() -> None:
    """Two services get two processes; a span given twice appears once."""
    spans = recorded_spans()
    document = build_jaeger_document([SpanBatch("a", spans), SpanBatch("b", spans[:1])])
    assert sum(len(t["spans"]) for t in document["data"]) == len(spans)
    processes = {p["serviceName"] for t in document["data"] for p in t["processes"].values()}
    assert processes == {"a"}


def test_unfinished_spans_are_left_out() -> None:
    """A record without an end time is not exported."""
    span = dict(recorded_spans()[0], end=None)
    assert build_jaeger_document([SpanBatch("ext", [span])])["data"] == []


def test_unwritable_path_is_an_export_error(tmp_path: Path) -> None:
    """Writing into a path whose parent is a file raises ExportError naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="file"):
        write_jaeger(blocker / "jaeger.json", [SpanBatch("ext", recorded_spans())])
