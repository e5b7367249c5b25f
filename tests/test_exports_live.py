"""Live exports from Python (``logger.export()``...), read back with each format's own parser,
and traces as an export kind of the REST API and the CLI."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import framework_client
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus
from test_api import recorded, store_path
from test_cli import DEMO, QUIET, kari

from pytest_kari_debug.api import PREFIX, create_app
from pytest_kari_debug.component import EXPORTS, ExportRegistry, export_text
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ExportError
from pytest_kari_debug.manager import ExtensionDebugManager

__all__ = ["recorded", "store_path"]  # fixtures used here

FORMULA = '=HYPERLINK("http://evil")'


@pytest.fixture
def busy() -> Iterator[ExtensionDebugManager]:
    """A manager with logs, metrics, an error, an alert and a finished trace (hostile text)."""
    manager = ExtensionDebugManager(
        "busy-ext", configuration=DebugConfiguration(tracing_enabled=True)
    )
    manager.start()
    session = manager.start_debug_session(name="tests/test_x.py::test_a|<b>")
    log = manager.get_logger()
    log.info("started", version="1.0")
    log.error(f"line one\nline two {FORMULA}", code=500)
    metrics = manager.get_metrics_collector()
    for value in (100.0, 200.0, 300.0):
        metrics.record_metric("response_time", value, "ms")
    metrics.record_metric('queue.depth{a="b"}', 1e308, "")
    manager.get_error_tracker().record_error("ValueError", 'bad "input", 42')
    manager.get_alert_manager().raise_alert(
        "high_cpu", "high", "High CPU", "cpu 95%", "cpu_percent", 95.0, 80.0
    )
    tracer = manager.get_tracer()
    context = tracer.start_trace("user_request")
    with tracer.start_span("validate_input") as span:
        span.set_tag("input_type", "json")
    tracer.finish_trace(context.trace_id)
    manager.stop_debug_session(session)
    yield manager
    manager.stop()


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_logger_export_json_jsonl_csv_with_filters(
    busy: ExtensionDebugManager, tmp_path: Path
) -> None:
    """logger.export gives the records (filtered as get_logs) as JSON, JSON Lines or CSV, and
    path= writes the same text."""
    log = busy.get_logger()
    document = json.loads(log.export())
    assert [r["message"] for r in document["logs"]] == ["started", f"line one\nline two {FORMULA}"]
    assert document["kind"] == "logs"
    errors_only = json.loads(log.export(format="json", level="ERROR"))
    assert [r["level"] for r in errors_only["logs"]] == ["ERROR"]
    lines = log.export(format="jsonl").splitlines()
    assert [json.loads(line)["message"] for line in lines] == [
        "started",
        f"line one\nline two {FORMULA}",
    ]
    rows = _csv(log.export(format="csv", query="line two"))
    assert len(rows) == 1
    assert rows[0]["message"].startswith("line one\nline two")
    assert all(not v.startswith("=") for v in rows[0].values())
    target = tmp_path / "out" / "logs.jsonl"
    assert log.export(format="jsonl", path=target) == target.read_text()
    assert not list(target.parent.glob(".*.tmp"))


def test_metrics_export_parses_with_prometheus_and_openmetrics_parsers(
    busy: ExtensionDebugManager,
) -> None:
    """metrics.export: Prometheus text and OpenMetrics parse with prometheus_client's parsers and
    hold each metric's newest value; JSON and CSV hold every point."""
    metrics = busy.get_metrics_collector()
    families = {f.name: f for f in parse_prometheus(metrics.export(format="prometheus"))}
    latest = {s.labels["metric"]: s.value for s in families["kari_latest_metric_value"].samples}
    assert latest["response_time"] == 0.3  # 300 ms in the base unit, seconds
    assert latest['queue.depth{a="b"}'] == 1e308
    om = {f.name: f for f in parse_openmetrics(metrics.export(format="openmetrics"))}
    assert "kari_latest_metric_value" in om
    document = json.loads(metrics.export())
    assert [p["value"] for p in document["metrics"]["records"]][:3] == [100.0, 200.0, 300.0]
    rows = [r for r in _csv(metrics.export(format="csv")) if r["source"] == "recorded"]
    assert [r["name"] for r in rows] == ["response_time"] * 3 + ['queue.depth{a="b"}']


def test_tracer_export_jaeger_and_otlp_json(busy: ExtensionDebugManager) -> None:
    """tracer.export gives the Jaeger UI's document or OTLP/JSON (parsed into the OTLP protobuf
    message), of every trace or of one; an unknown trace or format is a clear error."""
    tracer = busy.get_tracer()
    jaeger = json.loads(tracer.export())
    (trace,) = jaeger["data"]
    names = {span["operationName"] for span in trace["spans"]}
    assert {"user_request", "validate_input"} <= names
    assert trace["processes"]["p1"]["serviceName"] == "busy-ext"
    otlp = tracer.export(format="otlp-json", trace_id=trace["traceID"])
    request = ExportTraceServiceRequest()
    Parse(otlp, request)
    spans = [s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
    assert {s.name for s in spans} == names
    with pytest.raises(ExportError, match="no finished span of trace 'nope'"):
        tracer.export(trace_id="nope")
    with pytest.raises(ExportError, match="accepted formats: jaeger, otlp, otlp-json"):
        tracer.export(format="zipkin")


def test_error_and_alert_exports(busy: ExtensionDebugManager) -> None:
    """error_tracker.export and alert_manager.export as JSON and CSV parse back."""
    errors = json.loads(busy.get_error_tracker().export())
    assert errors["errors"][0]["error_message"] == 'bad "input", 42'
    assert errors["error_groups"][0]["count"] == 1
    rows = _csv(busy.get_error_tracker().export(format="csv"))
    assert rows[0]["error_type"] == "ValueError"
    assert rows[0]["error_message"] == 'bad "input", 42'
    alerts = json.loads(busy.get_alert_manager().export())
    assert [a["title"] for a in alerts["alerts"]] == ["High CPU"]
    assert alerts["alert_statistics"]["total_alerts"] == 1
    assert _csv(busy.get_alert_manager().export(format="csv"))[0]["severity"] == "high"
    with pytest.raises(ExportError, match="accepted formats: json, csv"):
        busy.get_alert_manager().export(format="prometheus")


def test_manager_export_of_every_kind(busy: ExtensionDebugManager, tmp_path: Path) -> None:
    """debug_manager.export: all as one JSON document, metrics with the stopped sessions' run
    families in Prometheus text, traces as OTLP; path= writes the text atomically."""
    document = json.loads(busy.export(path=tmp_path / "all.json"))
    assert json.loads((tmp_path / "all.json").read_text()) == document
    assert document["kind"] == "all"
    assert len(document["logs"]) == 2
    assert {s["name"] for s in document["spans"]} >= {"user_request", "validate_input"}
    assert document["errors"][0]["error_type"] == "ValueError"
    assert document["alerts"][0]["title"] == "High CPU"
    families = {f.name: f for f in parse_prometheus(busy.export("metrics", "prometheus"))}
    tests = {s.labels.get("test") for f in families.values() for s in f.samples}
    assert "tests/test_x.py::test_a|<b>" in tests
    otlp = json.loads(busy.export("traces", "otlp"))
    assert otlp["resourceSpans"][0]["scopeSpans"]
    with pytest.raises(ExportError, match="traces cannot be exported as 'csv'"):
        busy.export("traces", "csv")
    with pytest.raises(ExportError, match="unknown export kind 'spans'"):
        busy.export("spans")


def test_registry_without_exporters_names_the_fix() -> None:
    """A registry nothing was installed in says how to load the exporters."""
    with pytest.raises(ExportError, match=r"import pytest_kari_debug\.exporters"):
        export_text("logs", "json", {}, registry=ExportRegistry())
    assert "jsonl" in EXPORTS.formats("logs")


def test_api_exports_traces_as_jaeger_and_otlp(
    busy: ExtensionDebugManager, store_path: Path
) -> None:
    """GET /export/{id}/traces?format=jaeger|otlp serves the live manager's spans."""
    app = create_app(busy, store_path=store_path, include_registry=False)
    with framework_client(app) as client:
        jaeger = client.get(f"{PREFIX}/export/busy-ext/traces")
        assert jaeger.status_code == 200, jaeger.text
        assert "busy-ext-traces.jaeger.json" in jaeger.headers["content-disposition"]
        names = {s["operationName"] for s in jaeger.json()["data"][0]["spans"]}
        assert names >= {"user_request", "validate_input"}
        otlp = client.get(f"{PREFIX}/export/busy-ext/traces", params={"format": "otlp"})
        request = ExportTraceServiceRequest()
        Parse(otlp.text, request)
        assert {
            s.name for r in request.resource_spans for ss in r.scope_spans for s in ss.spans
        } == names
        assert (
            client.get(f"{PREFIX}/export/busy-ext/traces", params={"format": "csv"}).status_code
            == 422
        )


@pytest.fixture
def traced_store(pytester: pytest.Pytester, pytester_store: Path) -> Path:
    """A store holding one traced run of the demo tests."""
    pytester.makepyfile(test_demo=DEMO)
    pytester.runpytest("--kari-debug", "--kari-trace", *QUIET).assert_outcomes(passed=2)
    return pytester_store


def test_cli_exports_traces_as_jaeger_and_otlp(traced_store: Path) -> None:
    """kari-debug export --kind traces --format jaeger|otlp; other kinds with a trace format,
    or traces as JSON, are usage errors."""
    jaeger = kari(traced_store, "export", "--kind", "traces")
    assert jaeger.exit_code == 0, jaeger.output
    spans = [s["operationName"] for t in json.loads(jaeger.stdout)["data"] for s in t["spans"]]
    assert "validate_input" in spans
    otlp = kari(traced_store, "export", "--kind", "traces", "--format", "otlp")
    assert otlp.exit_code == 0, otlp.output
    request = ExportTraceServiceRequest()
    Parse(otlp.stdout, request)
    names = [s.name for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
    assert sorted(names) == sorted(spans)
    bad = kari(traced_store, "export", "--kind", "log", "--format", "otlp")
    assert bad.exit_code == 2
    assert "exports traces only" in bad.stderr
    wrong = kari(traced_store, "export", "--kind", "traces", "--format", "json")
    assert wrong.exit_code == 2
    assert "jaeger, otlp or csv" in wrong.stderr
