"""OTLP export: the OTLP/JSON file, and OTLP/HTTP received by a collector on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ExportError
from pytest_kari_debug.exporters.jaeger import SpanBatch
from pytest_kari_debug.exporters.otlp import (
    build_otlp_json,
    check_endpoint,
    require_otlp_exporter,
    send_otlp,
    write_otlp_json,
)
from pytest_kari_debug.tracing import ExtensionTracer


def recorded_spans() -> list[dict[str, Any]]:
    """A small trace: a root, a child with tags and an event, and a failing client call."""
    tracer = ExtensionTracer("ext", DebugConfiguration(tracing_enabled=True))
    with tracer.start_span("root", {"count": 7, "ratio": 0.25, "ok": True, "names": ["a", "b"]}):
        with tracer.start_span("child") as child:
            child.log("step", n=1)
        with pytest.raises(RuntimeError), tracer.start_span("call", kind="client"):
            raise RuntimeError("upstream down")
    return tracer.get_spans()


def _hex_to_base64(document: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON ids are hex; protobuf's JSON mapping wants base64: convert for parsing."""
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return document


def test_otlp_json_parses_as_an_export_request(tmp_path: Path) -> None:
    """The OTLP/JSON file is one ExportTraceServiceRequest with hex ids and string nanoseconds."""
    spans = recorded_spans()
    path = write_otlp_json(
        tmp_path / "otlp.json", [SpanBatch("ext", spans, {"kari.worker": "gw1"})]
    )
    document = json.loads(path.read_text())
    (resource,) = document["resourceSpans"]
    (scope,) = resource["scopeSpans"]
    assert scope["scope"]["name"] == "pytest-kari-debug"
    raw = {s["name"]: s for s in scope["spans"]}
    assert raw["child"]["traceId"] == spans[0]["trace_id"]
    assert raw["child"]["parentSpanId"] == raw["root"]["spanId"]
    assert "parentSpanId" not in raw["root"]
    assert isinstance(raw["root"]["startTimeUnixNano"], str)
    assert int(raw["root"]["endTimeUnixNano"]) > int(raw["root"]["startTimeUnixNano"])
    request = json_format.ParseDict(_hex_to_base64(document), ExportTraceServiceRequest())
    attributes = {a.key: a.value for a in request.resource_spans[0].resource.attributes}
    assert attributes["service.name"].string_value == "ext"
    assert attributes["kari.worker"].string_value == "gw1"
    parsed = {s.name: s for s in request.resource_spans[0].scope_spans[0].spans}
    assert parsed["child"].trace_id.hex() == spans[0]["trace_id"]
    tags = {a.key: a.value for a in parsed["root"].attributes}
    assert tags["count"].int_value == 7
    assert tags["ratio"].double_value == 0.25
    assert tags["ok"].bool_value is True
    assert [v.string_value for v in tags["names"].array_value.values] == ["a", "b"]
    assert parsed["child"].events[0].name == "step"
    assert parsed["call"].status.code == 2  # STATUS_CODE_ERROR
    assert "upstream down" in parsed["call"].status.message
    assert parsed["call"].kind == 3  # SPAN_KIND_CLIENT


def test_unwritable_path_is_an_export_error_naming_document_and_path(tmp_path: Path) -> None:
    """A path under a file is an ExportError naming the OTLP/JSON document and the path."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    target = blocker / "otlp.json"
    with pytest.raises(ExportError, match="OTLP/JSON document") as caught:
        write_otlp_json(target, [SpanBatch("ext", recorded_spans())])
    assert repr(str(target)) in str(caught.value)
    assert blocker.read_text() == "x"


def test_times_are_the_records_in_nanoseconds() -> None:
    """start/end nanoseconds match the records' epoch seconds (to the microsecond)."""
    spans = recorded_spans()
    document = build_otlp_json([SpanBatch("ext", spans)])
    exported = {s["spanId"]: s for s in document["resourceSpans"][0]["scopeSpans"][0]["spans"]}
    for span in spans:
        start = int(exported[span["span_id"]]["startTimeUnixNano"])
        assert abs(start - span["start"] * 1e9) < 1000


class Collector:
    """An OTLP/HTTP receiver on 127.0.0.1 that decodes requests with opentelemetry-proto."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.paths.append(self.path)
                assert self.headers["Content-Type"] == "application/x-protobuf"
                outer.requests.append(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def spans(self) -> list[Any]:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A running OTLP/HTTP receiver."""
    receiver = Collector()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_send_otlp_reaches_a_collector(collector: Collector) -> None:
    """Spans sent over OTLP/HTTP arrive at /v1/traces and decode with their ids and parents."""
    spans = recorded_spans()
    sent = send_otlp(collector.url, [SpanBatch("ext", spans)], timeout=10)
    assert sent == len(spans)
    assert collector.paths == ["/v1/traces"]
    received = {s.name: s for s in collector.spans()}
    assert set(received) == {"root", "child", "call"}
    assert received["child"].parent_span_id == received["root"].span_id
    assert received["root"].trace_id.hex() == spans[0]["trace_id"]
    assert received["call"].status.code == 2
    resource = collector.requests[0].resource_spans[0].resource
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "ext"


def test_send_otlp_in_chunks(collector: Collector) -> None:
    """Many spans go out in several requests of at most *chunk* spans."""
    spans = recorded_spans()
    send_otlp(collector.url + "/v1/traces", [SpanBatch("ext", spans)], timeout=10, chunk=2)
    assert len(collector.requests) == 2
    assert len(collector.spans()) == 3


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dead_collector_raises_an_export_error_instead_of_hanging() -> None:
    """A collector that is not listening gives an ExportError within the timeout."""
    with pytest.raises(ExportError, match=r"OTLP export to http://127\.0\.0\.1"):
        send_otlp(
            f"http://127.0.0.1:{_closed_port()}", [SpanBatch("e", recorded_spans())], timeout=1
        )


def test_collector_refusing_is_an_export_error() -> None:
    """A collector answering 400 makes the export fail with the URL in the message."""
    receiver = Collector(status=400)
    receiver.thread.start()
    try:
        with pytest.raises(ExportError, match="did not accept"):
            send_otlp(receiver.url, [SpanBatch("e", recorded_spans())], timeout=5)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.mark.parametrize("url", ["localhost:4318", "ftp://host/v1/traces", "http://"])
def test_bad_endpoint_is_refused(url: str) -> None:
    """An endpoint that is not an http(s) URL with a host is refused, quoting it."""
    with pytest.raises(ExportError, match="not an http"):
        check_endpoint(url)


def test_endpoint_without_path_gets_the_traces_path() -> None:
    """A bare collector URL gets /v1/traces; an explicit path is kept."""
    assert check_endpoint("http://c:4318") == "http://c:4318/v1/traces"
    assert check_endpoint("https://c/custom") == "https://c/custom"


def test_nothing_to_send_sends_nothing() -> None:
    """No finished span: no request, zero sent."""
    assert send_otlp(f"http://127.0.0.1:{_closed_port()}", [SpanBatch("e", [])], timeout=1) == 0


def test_missing_otlp_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the OTLP/HTTP exporter installed, the error names the extra to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(ExportError, match=r"pytest-kari-debug\[otlp\]"):
        require_otlp_exporter()


def test_missing_otlp_extra_stops_the_run_at_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--kari-otlp-endpoint without the extra is a usage error naming it, before any test runs."""
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    pytester.makepyfile(test_mod="def test_ok():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--kari-otlp-endpoint=http://c:4318")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "pytest-kari-debug[otlp]" in result.stderr.str()
