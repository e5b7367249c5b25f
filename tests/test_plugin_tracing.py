"""The tracing part of the plugin: a trace per test, CI parent context, xdist, Jaeger and OTLP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import run_with_json
from test_jaeger import check_jaeger_shape
from test_otlp import Collector, _closed_port

from pytest_kari_debug import tracing
from pytest_kari_debug.exceptions import KariDebugWarning
from pytest_kari_debug.storage import Store

SCHEMA = (
    Path(__file__).resolve().parent.parent / "pytest_kari_debug" / "schemas" / "run.schema.json"
)
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

TESTS = """
import pytest

def test_ok(kari_tracer):
    with kari_tracer.start_span("outer") as span:
        span.set_tag("step", 1)
        with kari_tracer.start_span("inner"):
            pass

def test_fails():
    assert 1 == 2, "numbers differ"

@pytest.mark.kari_extension("weather")
def test_other_extension():
    pass
"""


@pytest.fixture(autouse=True)
def keep_global_otel_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs must not set OpenTelemetry's process-wide provider in this process (the
    plugin imports the function from the tracing package when a run traces)."""
    monkeypatch.setattr(tracing, "ensure_tracer_provider", lambda: False)
    monkeypatch.delenv("TRACEPARENT", raising=False)


def run_json(pytester: pytest.Pytester, *args: str, subprocess: bool = False) -> dict[str, Any]:
    result, document = run_with_json(
        pytester, "-p", "no:cacheprovider", *args, subprocess=subprocess
    )
    assert result.ret in (0, 1), result.stdout.str() + result.stderr.str()
    return document


def spans_of(test: dict[str, Any]) -> list[dict[str, Any]]:
    return test["collected_data"]["tracing"]["records"]  # type: ignore[no-any-return]


def root_of(test: dict[str, Any]) -> dict[str, Any]:
    data = test["collected_data"]["tracing"]
    return next(s for s in data["records"] if s["span_id"] == data["root_span_id"])


def named_tests(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["nodeid"].split("::")[-1]: t for t in document["tests"]}


def test_each_test_is_a_trace_whose_root_span_is_the_test(pytester: pytest.Pytester) -> None:
    """--kari-trace: one trace per test, root span named by nodeid with outcome and extension."""
    pytester.makepyfile(test_mod=TESTS)
    document = run_json(pytester, "--kari-trace")
    tests = named_tests(document)
    roots = {name: root_of(test) for name, test in tests.items()}
    assert roots["test_ok"]["name"] == "test_mod.py::test_ok"
    assert roots["test_ok"]["parent_id"] is None
    assert roots["test_ok"]["tags"]["test.outcome"] == "passed"
    assert roots["test_fails"]["tags"]["test.outcome"] == "failed"
    assert roots["test_fails"]["status"] == "error"
    assert "numbers differ" in roots["test_fails"]["status_message"]
    assert roots["test_other_extension"]["tags"]["kari.extension.id"] == "weather"
    assert len({r["trace_id"] for r in roots.values()}) == 3
    assert len({r["tags"]["kari.run.id"] for r in roots.values()}) == 1
    spans = {s["name"]: s for s in spans_of(tests["test_ok"])}
    assert spans["outer"]["parent_id"] == roots["test_ok"]["span_id"]
    assert spans["inner"]["parent_id"] == spans["outer"]["span_id"]
    assert spans["outer"]["tags"] == {"step": 1}
    assert tests["test_ok"]["extra"]["tracing"]["trace_id"] == roots["test_ok"]["trace_id"]
    schema = json.loads((SCHEMA).read_text())
    jsonschema.validate(document, schema)
    section = document["sections"]["tracing"]
    # the tests' own spans (the ``spans`` figure), and one root span per traced test
    assert (section["spans"], section["root_spans"]) == (2, 3)
    assert section["traces"] == 3


def test_spans_are_in_the_store(pytester: pytest.Pytester, pytester_store: Path) -> None:
    """Every span of the run lands in the store's records table as kind 'span'."""
    pytester.makepyfile(test_mod=TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--kari-trace")
    store = Store(pytester_store)
    try:
        names = sorted(r["name"] for r in store.records("span"))
    finally:
        store.close()
    assert names == sorted(
        ["test_mod.py::test_ok", "outer", "inner", "test_mod.py::test_fails",
         "test_mod.py::test_other_extension"]
    )  # fmt: skip


def test_without_trace_flag_no_root_spans(pytester: pytest.Pytester) -> None:
    """Without --kari-trace the tests get no trace of their own."""
    pytester.makepyfile(test_mod="def test_plain(kari_debug):\n    pass\n")
    document = run_json(pytester)
    assert "tracing" not in document["tests"][0]["collected_data"]


def test_jaeger_flag_writes_the_ui_shape_and_implies_tracing(pytester: pytest.Pytester) -> None:
    """--kari-jaeger alone turns tracing on and writes a Jaeger document of every test."""
    pytester.makepyfile(test_mod=TESTS)
    result = pytester.runpytest("-v", "-p", "no:cacheprovider", "--kari-jaeger=out/jaeger.json")
    result.assert_outcomes(passed=2, failed=1)
    document = json.loads((pytester.path / "out" / "jaeger.json").read_text())
    check_jaeger_shape(document)
    assert len(document["data"]) == 3
    services = {p["serviceName"] for t in document["data"] for p in t["processes"].values()}
    assert services == {"weather", pytester.path.name}
    result.stdout.fnmatch_lines(
        ["*tracing: 2 spans and 3 test root spans in 3 traces*", "*jaeger: out*jaeger.json*"]
    )


def test_otlp_json_flag_writes_one_document(pytester: pytest.Pytester) -> None:
    """--kari-otlp-json writes one resourceSpans document holding every span."""
    pytester.makepyfile(test_mod=TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--kari-otlp-json=otlp.json")
    document = json.loads((pytester.path / "otlp.json").read_text())
    names = [
        span["name"]
        for resource in document["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]
    assert sorted(names) == sorted(
        ["test_mod.py::test_ok", "outer", "inner", "test_mod.py::test_fails",
         "test_mod.py::test_other_extension"]
    )  # fmt: skip


def test_otlp_endpoint_sends_to_a_collector(pytester: pytest.Pytester) -> None:
    """--kari-otlp-endpoint sends the run's spans to an OTLP/HTTP receiver on 127.0.0.1."""
    collector = Collector()
    collector.thread.start()
    try:
        pytester.makepyfile(test_mod=TESTS)
        result = pytester.runpytest(
            "-v", "-p", "no:cacheprovider", f"--kari-otlp-endpoint={collector.url}"
        )
    finally:
        collector.server.shutdown()
        collector.server.server_close()
    result.assert_outcomes(passed=2, failed=1)
    assert sorted(s.name for s in collector.spans())[:2] == ["inner", "outer"]
    assert len(collector.spans()) == 5
    result.stdout.fnmatch_lines(["*otlp: 5 spans sent to http://127.0.0.1*"])


def test_dead_collector_is_a_diagnostic_not_a_failure(pytester: pytest.Pytester) -> None:
    """A collector that does not answer leaves outcomes alone and reports a diagnostic."""
    pytester.makepyfile(test_mod="def test_ok():\n    pass\n")
    result = pytester.runpytest(
        "-p", "no:cacheprovider",
        f"--kari-otlp-endpoint=http://127.0.0.1:{_closed_port()}", "--kari-otlp-timeout=1",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*diagnostics: 1 internal problem*", "*OTLP export to*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kari-trace-parent=nonsense"], "--kari-trace-parent: traceparent 'nonsense'"),
        (["--kari-otlp-endpoint=localhost:4318"], "is not an http:// or https:// URL"),
        (["--kari-otlp-endpoint=http://c", "--kari-otlp-timeout=0"], "--kari-otlp-timeout '0'"),
    ],
)
def test_bad_tracing_options_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    """A malformed tracing option stops the run at start with a message naming it."""
    pytester.makepyfile(test_mod="def test_ok():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_trace_parent_flag_parents_every_test(pytester: pytest.Pytester) -> None:
    """--kari-trace-parent makes every test's root span a child of the given span."""
    pytester.makepyfile(test_mod=TESTS)
    document = run_json(pytester, "--kari-trace", f"--kari-trace-parent={PARENT}")
    for test in document["tests"]:
        root = root_of(test)
        assert root["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
        assert root["parent_id"] == "b7ad6b7169203331"
    assert document["sections"]["tracing"]["parent"] == PARENT


def test_traceparent_environment_parents_every_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TRACEPARENT environment variable (a CI pipeline's span) parents every test."""
    monkeypatch.setenv("TRACEPARENT", PARENT)
    pytester.makepyfile(test_mod=TESTS)
    document = run_json(pytester, "--kari-trace")
    assert {root_of(t)["parent_id"] for t in document["tests"]} == {"b7ad6b7169203331"}


def test_invalid_traceparent_environment_is_a_diagnostic(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A malformed TRACEPARENT is reported and ignored; tests run as usual."""
    monkeypatch.setenv("TRACEPARENT", "garbage")
    pytester.makepyfile(test_mod="def test_ok():\n    pass\n")
    with pytest.warns(KariDebugWarning, match="TRACEPARENT 'garbage'"):
        document = run_json(pytester, "--kari-trace")
    assert root_of(document["tests"][0])["parent_id"] is None
    assert any("TRACEPARENT 'garbage'" in d for d in document["diagnostics"])


def test_xdist_workers_get_the_parent_and_run_id(pytester: pytest.Pytester) -> None:
    """With -n 2, every worker's tests share the CI parent and the run id."""
    pytester.makepyfile(
        test_mod="\n".join(f"def test_{n}():\n    pass\n" for n in range(8)),
    )
    document = run_json(pytester, "-n", "2", "--kari-trace", f"--kari-trace-parent={PARENT}")
    roots = [root_of(t) for t in document["tests"]]
    assert len(roots) == 8
    assert {r["parent_id"] for r in roots} == {"b7ad6b7169203331"}
    assert len({r["tags"]["kari.run.id"] for r in roots}) == 1
    assert roots[0]["tags"]["kari.run.id"] == document["sections"]["tracing"]["run_id"]
    assert {r["tags"]["kari.worker"] for r in roots} == {"gw0", "gw1"}


def test_async_test_spans_nest_under_the_test(pytester: pytest.Pytester) -> None:
    """Spans of an asyncio test, and of tasks it gathers, nest under the test's root span."""
    pytester.makepyfile(
        test_mod="""
import asyncio
import pytest

@pytest.mark.asyncio
async def test_async(kari_tracer):
    async def work(n):
        async with kari_tracer.start_span(f"task-{n}"):
            await asyncio.sleep(0)
    await asyncio.gather(*(work(n) for n in range(5)))
"""
    )
    document = run_json(pytester, "--kari-trace", "-p", "asyncio")
    (test,) = document["tests"]
    root = root_of(test)
    tasks = [s for s in spans_of(test) if s["name"].startswith("task-")]
    assert len(tasks) == 5
    assert {s["parent_id"] for s in tasks} == {root["span_id"]}


def test_sampling_rate_zero_keeps_no_spans(pytester: pytest.Pytester) -> None:
    """--kari-sampling-rate=0 leaves every test unsampled: no spans, tests unaffected."""
    pytester.makepyfile(test_mod=TESTS)
    document = run_json(pytester, "--kari-trace", "--kari-sampling-rate=0")
    assert all(spans_of(t) == [] for t in document["tests"])
    assert all(t["extra"]["tracing"]["sampled"] is False for t in document["tests"])
    assert document["sections"]["tracing"]["unsampled_tests"] == 3


def test_many_fast_tests_are_all_traced(pytester: pytest.Pytester) -> None:
    """Overhead-driven sampling of the manager does not drop the traces --kari-trace asked for."""
    pytester.makepyfile(test_mod="".join(f"def test_{n}():\n    pass\n" for n in range(40)))
    document = run_json(pytester, "--kari-trace")
    assert [t["extra"]["tracing"]["sampled"] for t in document["tests"]] == [True] * 40


OTEL_CONFTEST = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(PROVIDER)
"""

OTEL_TESTS = """
from opentelemetry import trace
import conftest

def test_instrumented():
    with trace.get_tracer("instrumented.lib").start_as_current_span("api-call") as span:
        span.set_attribute("http.method", "GET")

def test_user_pipeline_still_works():
    assert trace.get_tracer_provider() is conftest.PROVIDER
    assert [s.name for s in conftest.EXPORTER.get_finished_spans()] == ["api-call"]
"""


def test_otel_spans_of_code_under_test_join_the_test_trace(pytester: pytest.Pytester) -> None:
    """OpenTelemetry API spans nest under the test's root; the user's provider keeps working."""
    pytester.makeconftest(OTEL_CONFTEST)
    pytester.makepyfile(test_mod=OTEL_TESTS)
    document = run_json(pytester, "--kari-trace", "-p", "no:randomly", subprocess=True)
    tests = named_tests(document)
    assert tests["test_user_pipeline_still_works"]["outcome"] == "passed"
    test = tests["test_instrumented"]
    root = root_of(test)
    (api,) = [s for s in spans_of(test) if s["name"] == "api-call"]
    assert api["parent_id"] == root["span_id"]
    assert api["trace_id"] == root["trace_id"]
    assert api["tags"]["http.method"] == "GET"
    assert document["sections"]["tracing"]["opentelemetry_provider_set"] is False


def test_otel_spans_captured_without_a_user_provider(pytester: pytest.Pytester) -> None:
    """With no provider set by the user, one is set for the run and API spans are captured."""
    pytester.makepyfile(
        test_mod="""
from opentelemetry import trace

def test_instrumented():
    with trace.get_tracer("lib").start_as_current_span("api-call"):
        pass
"""
    )
    document = run_json(pytester, "--kari-trace", subprocess=True)
    (test,) = document["tests"]
    assert [s["name"] for s in spans_of(test) if s["source"] == "opentelemetry"] == ["api-call"]
    assert document["sections"]["tracing"]["opentelemetry_provider_set"] is True
