"""W3C Trace Context: traceparent parsing, inject/extract, across HTTP and a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.tracing import (
    ExtensionTracer,
    TraceContext,
    extract,
    inject,
    parse_traceparent,
)

REPO = Path(__file__).resolve().parent.parent
VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def make_tracer() -> ExtensionTracer:
    return ExtensionTracer("ext", DebugConfiguration(tracing_enabled=True))


def test_parse_traceparent_reads_ids_and_flags() -> None:
    """A valid traceparent gives its trace id, span id and sampled flag."""
    context = parse_traceparent(VALID, "vendor=abc")
    assert context == TraceContext(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True, "vendor=abc"
    )
    assert context.traceparent == VALID
    assert not parse_traceparent(VALID[:-2] + "00").sampled


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "lowercase hex"),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "lowercase hex"),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "all-zero"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "all-zero"),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "forbidden version"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "extra fields"),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "lowercase hex"),
    ],
)
def test_bad_traceparent_is_rejected_with_the_reason(value: str, problem: str) -> None:
    """Each malformed traceparent raises a ValueError quoting it and naming the problem."""
    with pytest.raises(ValueError, match=problem):
        parse_traceparent(value)


def test_future_version_with_extra_fields_is_accepted() -> None:
    """A higher version may carry extra fields after the four known ones."""
    context = parse_traceparent(VALID.replace("00-", "01-", 1) + "-future")
    assert context.span_id == "00f067aa0ba902b7"


def test_extract_reads_any_letter_case_and_ignores_garbage() -> None:
    """extract finds traceparent in headers or TRACEPARENT in an environment; garbage is None."""
    assert extract({"Traceparent": VALID}).trace_id.startswith("4bf9")  # type: ignore[union-attr]
    assert extract({"TRACEPARENT": VALID, "TRACESTATE": "a=1"}).tracestate == "a=1"  # type: ignore[union-attr]
    assert extract({"traceparent": "garbage"}) is None
    assert extract({}) is None


def test_inject_writes_the_current_span_and_continues_from_extract() -> None:
    """inject writes the current traceparent; a span under the extracted context continues it."""
    tracer = make_tracer()
    with tracer.start_span("client") as client:
        headers = inject({})
        env = tracer.inject({}, env=True)
    assert headers["traceparent"] == f"00-{client.trace_id}-{client.span_id}-01"
    assert env["TRACEPARENT"] == headers["traceparent"]
    with tracer.start_span("server", parent=tracer.extract(headers)) as server:
        pass
    assert server.trace_id == client.trace_id
    assert server.parent_id == client.span_id


def test_inject_without_a_span_changes_nothing() -> None:
    """With no current span the carrier comes back unchanged."""
    assert inject({"x": "1"}) == {"x": "1"}


def test_tracestate_travels_with_the_trace() -> None:
    """A tracestate received with the parent is injected again by the spans under it."""
    tracer = make_tracer()
    parent = extract({"traceparent": VALID, "tracestate": "vendor=abc"})
    with tracer.start_span("handler", parent=parent):
        headers = inject({})
    assert headers["tracestate"] == "vendor=abc"
    assert headers["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_unsampled_trace_propagates_flag_zero() -> None:
    """An unsampled span still propagates its trace id, with the sampled flag off."""
    tracer = ExtensionTracer("ext", DebugConfiguration(tracing_enabled=True, sampling_rate=0.0))
    with tracer.start_span("root") as root, tracer.start_span("child"):
        headers = inject({})
    assert headers["traceparent"] == f"00-{root.trace_id}-{root.span_id}-00"


class _Handler(BaseHTTPRequestHandler):
    tracer: ExtensionTracer
    seen: list[dict[str, Any]]

    def do_GET(self) -> None:
        parent = self.tracer.extract(dict(self.headers.items()))
        with self.tracer.start_span("GET /items", parent=parent, kind="server") as span:
            self.seen.append({"trace_id": span.trace_id, "parent_id": span.parent_id})
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_trace_continues_across_a_real_http_call() -> None:
    """A client span's context, sent as a header to a server on 127.0.0.1, parents its span."""
    client_tracer, server_tracer = make_tracer(), make_tracer()
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (_Handler,), {"tracer": server_tracer, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with client_tracer.start_span("GET items", kind="client") as client:
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.server_address[1]}/items", headers=inject({})
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.read() == b"ok"
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [{"trace_id": client.trace_id, "parent_id": client.span_id}]
    (server_span,) = server_tracer.get_spans()
    assert server_span["kind"] == "server"


def test_trace_continues_in_a_subprocess_through_traceparent() -> None:
    """TRACEPARENT in a child process's environment makes its spans children of ours."""
    tracer = make_tracer()
    script = (
        "import json, os\n"
        "from pytest_kari_debug.config import DebugConfiguration\n"
        "from pytest_kari_debug.tracing import ExtensionTracer\n"
        "t = ExtensionTracer('child', DebugConfiguration(tracing_enabled=True))\n"
        "ctx = t.start_trace('child-work', parent=t.extract(os.environ))\n"
        "t.finish_trace(ctx.trace_id)\n"
        "print(json.dumps(t.get_spans()))\n"
    )
    with tracer.start_span("spawn") as spawn:
        env = tracer.inject(dict(os.environ), env=True)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    (child,) = json.loads(done.stdout)
    assert child["trace_id"] == spawn.trace_id
    assert child["parent_id"] == spawn.span_id


def test_kind_must_be_known() -> None:
    """An unknown span kind is refused with the accepted ones listed."""
    tracer = make_tracer()
    with pytest.raises(ValueError, match="internal, server, client"):
        tracer.start_span("x", kind="sideways")
