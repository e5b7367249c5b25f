"""OpenTelemetry interop: spans made through the OpenTelemetry API join the session's trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.tracing import (
    Span,
    install_opentelemetry_capture,
    uninstall_opentelemetry_capture,
)
from pytest_kari_debug.tracing.capture import _CAPTURE

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def user_provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """The user's own SDK provider with their own exporter; our capture added for the test."""
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert install_opentelemetry_capture(provider)
    yield provider, exporter
    uninstall_opentelemetry_capture(provider)


def make_manager(rate: float = 1.0) -> ExtensionDebugManager:
    configuration = DebugConfiguration(tracing_enabled=True, sampling_rate=rate)
    return ExtensionDebugManager("otel-ext", configuration=configuration)


def test_otel_span_in_session_joins_the_test_trace(
    user_provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """An OpenTelemetry span opened in a traced session nests under our span, in our trace."""
    provider, exporter = user_provider
    manager = make_manager()
    tracer = manager.get_tracer()
    otel = provider.get_tracer("instrumented.lib")
    session_id = manager.start_debug_session({"enable_tracing": True}, name="test::x")
    client = trace.SpanKind.CLIENT
    with (
        tracer.start_span("ours") as ours,
        otel.start_as_current_span("http GET", kind=client) as span,
    ):
        span.set_attribute("http.status_code", 503)
        span.add_event("retrying", {"attempt": 1})
        span.set_status(trace.Status(trace.StatusCode.ERROR, "unavailable"))
        with tracer.start_span("ours-under-otel"):
            pass
    data = manager.stop_debug_session(session_id).collected_data["tracing"]
    spans = {s["name"]: s for s in data["records"]}
    assert set(spans) == {"test::x", "ours", "http GET", "ours-under-otel"}
    assert {s["trace_id"] for s in spans.values()} == {data["trace_id"]}
    captured = spans["http GET"]
    assert captured["parent_id"] == ours.span_id
    assert captured["source"] == "opentelemetry"
    assert captured["kind"] == "client"
    assert captured["status"] == "error"
    assert captured["status_message"] == "unavailable"
    assert captured["tags"]["http.status_code"] == 503
    assert captured["tags"]["otel.scope.name"] == "instrumented.lib"
    assert captured["events"][0]["name"] == "retrying"
    assert spans["ours-under-otel"]["parent_id"] == captured["span_id"]
    assert captured["session_id"] == session_id
    # The user's own pipeline still got its span: nothing was replaced.
    assert [s.name for s in exporter.get_finished_spans()] == ["http GET"]


def test_otel_attributes_are_copied_as_they_are_and_never_shared_with_the_sdk(
    user_provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """A captured span's tags and event attributes hold the SDK's attribute values (sequences
    as lists) in dicts of our own: the tag we add (the scope name) never reaches the user's
    exported span."""
    provider, exporter = user_provider
    manager = make_manager()
    otel = provider.get_tracer("lib")
    session_id = manager.start_debug_session({"enable_tracing": True}, name="test::attrs")
    with otel.start_as_current_span("op", kind=trace.SpanKind.SERVER) as span:
        span.set_attributes({"n": 3, "codes": (200, 503), "ok": True, "route": "/items"})
        span.add_event("e", {"ids": ("a", "b"), "ratio": 0.5})
    data = manager.stop_debug_session(session_id).collected_data["tracing"]
    [captured] = [s for s in data["records"] if s["name"] == "op"]
    assert captured["kind"] == "server"
    tags = captured["tags"]
    assert tags == {
        "n": 3, "codes": [200, 503], "ok": True, "route": "/items", "otel.scope.name": "lib"
    }
    assert captured["events"][0]["attributes"] == {"ids": ["a", "b"], "ratio": 0.5}
    [exported] = exporter.get_finished_spans()
    assert dict(exported.attributes) == {"n": 3, "codes": (200, 503), "ok": True, "route": "/items"}
    assert dict(exported.events[0].attributes) == {"ids": ("a", "b"), "ratio": 0.5}


def test_otel_span_outside_a_session_is_not_captured(
    user_provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Spans made when no debug session is current stay with the user's pipeline only."""
    provider, exporter = user_provider
    manager = make_manager()
    with provider.get_tracer("lib").start_as_current_span("background"):
        pass
    assert manager.get_tracer().get_spans() == []
    assert len(exporter.get_finished_spans()) == 1


def test_otel_root_span_in_a_session_starts_a_captured_trace(
    user_provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """In a session without a root span, an OpenTelemetry root span and its child are kept."""
    provider, _ = user_provider
    manager = make_manager()
    otel = provider.get_tracer("lib")
    session_id = manager.start_debug_session()
    with otel.start_as_current_span("otel-root"), otel.start_as_current_span("otel-child"):
        pass
    data = manager.stop_debug_session(session_id).collected_data["tracing"]
    spans = {s["name"]: s for s in data["records"]}
    assert spans["otel-child"]["parent_id"] == spans["otel-root"]["span_id"]
    assert len(manager.get_tracer().get_traces()) == 1


def test_unsampled_trace_captures_no_otel_spans(
    user_provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Under an unsampled test trace, OpenTelemetry spans are neither recorded nor captured."""
    provider, exporter = user_provider
    manager = make_manager(rate=0.0)
    session_id = manager.start_debug_session({"enable_tracing": True})
    with provider.get_tracer("lib").start_as_current_span("child"):
        pass
    data = manager.stop_debug_session(session_id).collected_data["tracing"]
    assert data["records"] == []
    assert data["sampled"] is False
    assert exporter.get_finished_spans() == ()  # ParentBased sampler followed our flag


def test_user_sampler_that_ignores_parents_is_not_captured_when_unsampled() -> None:
    """An always-on user sampler records the span, but our sampling decision still excludes it."""
    provider = TracerProvider(sampler=ALWAYS_ON)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install_opentelemetry_capture(provider)
    try:
        manager = make_manager(rate=0.0)
        session_id = manager.start_debug_session({"enable_tracing": True})
        with provider.get_tracer("lib").start_as_current_span("child"):
            pass
        data = manager.stop_debug_session(session_id).collected_data["tracing"]
    finally:
        uninstall_opentelemetry_capture(provider)
    assert data["records"] == []
    assert len(exporter.get_finished_spans()) == 1


def test_otel_api_sees_our_span_as_current() -> None:
    """Inside our span, OpenTelemetry's get_current_span() is that span and tags it."""
    manager = make_manager()
    tracer = manager.get_tracer()
    with tracer.start_span("ours") as ours:
        current = trace.get_current_span()
        current.set_attribute("set.through.otel", True)
        assert current is ours
        assert isinstance(current, Span)
        assert current.get_span_context().span_id == int(ours.span_id, 16)
    assert tracer.get_spans()[0]["tags"] == {"set.through.otel": True}


def test_uninstall_removes_the_processor_only_after_the_last_user() -> None:
    """Installs are counted per provider; the last uninstall takes the processor out."""
    provider = TracerProvider()
    install_opentelemetry_capture(provider)
    install_opentelemetry_capture(provider)
    processors = provider._active_span_processor._span_processors
    assert processors.count(_CAPTURE) == 1
    uninstall_opentelemetry_capture(provider)
    assert _CAPTURE.installed_on(provider)
    uninstall_opentelemetry_capture(provider)
    assert not _CAPTURE.installed_on(provider)
    assert _CAPTURE not in provider._active_span_processor._span_processors


def test_provider_without_processors_is_reported_not_supported() -> None:
    """A provider that takes no span processors cannot be captured from (returns False)."""
    assert install_opentelemetry_capture(trace.NoOpTracerProvider()) is False


def _run(script: str) -> dict[str, object]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("OTEL_PYTHON_TRACER_PROVIDER", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_without_a_provider_one_is_set_and_spans_are_captured() -> None:
    """With no global provider, an SDK one is set and OpenTelemetry API spans get captured."""
    result = _run(
        "import json\n"
        "from opentelemetry import trace\n"
        "from pytest_kari_debug.config import DebugConfiguration\n"
        "from pytest_kari_debug.manager import ExtensionDebugManager\n"
        "from pytest_kari_debug.tracing import ensure_tracer_provider\n"
        "assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)\n"
        "set_now = ensure_tracer_provider()\n"
        "m = ExtensionDebugManager('e', configuration=DebugConfiguration(tracing_enabled=True))\n"
        "m.start()\n"
        "sid = m.start_debug_session({'enable_tracing': True}, name='root')\n"
        "with trace.get_tracer('lib').start_as_current_span('api-span'): pass\n"
        "data = m.stop_debug_session(sid).collected_data['tracing']\n"
        "m.stop()\n"
        "print(json.dumps({'set': set_now, 'again': ensure_tracer_provider(),\n"
        "  'names': sorted(s['name'] for s in data['records'])}))\n"
    )
    assert result == {"set": True, "again": False, "names": ["api-span", "root"]}


def test_a_provider_the_user_set_is_kept_and_captured_from() -> None:
    """A global provider set by the user is not replaced; its spans are captured and exported."""
    result = _run(
        "import json\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from pytest_kari_debug.config import DebugConfiguration\n"
        "from pytest_kari_debug.manager import ExtensionDebugManager\n"
        "from pytest_kari_debug.tracing import ensure_tracer_provider\n"
        "mine = TracerProvider(); exp = InMemorySpanExporter()\n"
        "mine.add_span_processor(SimpleSpanProcessor(exp))\n"
        "trace.set_tracer_provider(mine)\n"
        "replaced = ensure_tracer_provider()\n"
        "m = ExtensionDebugManager('e', configuration=DebugConfiguration(tracing_enabled=True))\n"
        "m.start()\n"
        "sid = m.start_debug_session({'enable_tracing': True}, name='root')\n"
        "with trace.get_tracer('lib').start_as_current_span('api-span'): pass\n"
        "data = m.stop_debug_session(sid).collected_data['tracing']\n"
        "m.stop()\n"
        "procs = mine._active_span_processor._span_processors\n"
        "print(json.dumps({'replaced': replaced, 'same': trace.get_tracer_provider() is mine,\n"
        "  'names': sorted(s['name'] for s in data['records']),\n"
        "  'theirs': [s.name for s in exp.get_finished_spans()], 'processors': len(procs)}))\n"
    )
    assert result == {
        "replaced": False,
        "same": True,
        "names": ["api-span", "root"],
        "theirs": ["api-span"],
        "processors": 1,
    }
