"""Span tags and event attributes are redacted by field name as log fields are (#17, item 7)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.logger import ExtensionLogger
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.redactor import REDACTED
from pytest_kari_debug.tracing import (
    ExtensionTracer,
    install_opentelemetry_capture,
    uninstall_opentelemetry_capture,
)

# Built at run time so that no source line holds the canary whole.
CANARY = "hunter2" + "-span-canary"


def traced(**options: object) -> ExtensionTracer:
    return ExtensionTracer("redact-ext", DebugConfiguration(tracing_enabled=True, **options))


def test_secret_named_tags_and_event_attributes_are_redacted_on_the_tracer() -> None:
    """Tags given at start, set one by one or at once, event attributes, log fields and a
    session's trace_tags: a secret-named key keeps [REDACTED], every other key its value."""
    tracer = traced()
    with tracer.start_span("login", {"password": CANARY, "user": "ada"}) as span:
        span.set_tag("api_key", CANARY)
        span.set_tag("apiKey", CANARY)
        span.set_attribute("http.request.header.authorization", "Bearer " + CANARY)
        span.set_tags(db_password=CANARY, max_tokens=5)
        span.set_attributes({"X-Auth-Token": CANARY, "route": "/login"})
        span.set_tag("request", {"headers": {"Cookie": CANARY, "accept": "json"}})
        span.add_event("sent", {"token": CANARY, "attempt": 1})
        span.log("retry", secret=CANARY, delay=0.5)
    [record] = [s for s in tracer.get_spans() if s["name"] == "login"]
    assert record["tags"] == {
        "password": REDACTED,
        "user": "ada",
        "api_key": REDACTED,
        "apiKey": REDACTED,
        "http.request.header.authorization": REDACTED,
        "db_password": REDACTED,
        "max_tokens": 5,
        "X-Auth-Token": REDACTED,
        "route": "/login",
        "request": {"headers": {"Cookie": REDACTED, "accept": "json"}},
    }
    assert [e["attributes"] for e in record["events"]] == [
        {"token": REDACTED, "attempt": 1},
        {"secret": REDACTED, "delay": 0.5},
    ]
    assert CANARY not in json.dumps(tracer.get_spans())


def test_the_tracer_redacts_the_names_the_logger_redacts() -> None:
    """One rule: with ``redact_fields`` configured, a name is redacted in a log field exactly
    when it is redacted in a span tag (the logger's redactor, not a copy of its rules)."""
    cfg = DebugConfiguration(tracing_enabled=True, redact_fields=("ssn", "pin"))
    tracer = ExtensionTracer("redact-ext", cfg)
    logger = ExtensionLogger("redact-ext", cfg)
    names = ["ssn", "user_ssn", "userPin", "card.pin", "password", "pinned", "name"]
    with tracer.start_span("op") as span:
        for name in names:
            span.set_tag(name, CANARY)
            logger.info("op", **{name: CANARY})
    [record] = tracer.get_spans()
    entries = logger.get_logs()[::-1]
    logged = {name: entry.fields[name] for name, entry in zip(names, entries, strict=True)}
    assert record["tags"] == logged
    redacted = [name for name in names if record["tags"][name] == REDACTED]
    assert redacted == ["ssn", "user_ssn", "userPin", "card.pin"]


def test_session_trace_tags_are_redacted() -> None:
    """A session's ``trace_tags`` reach its root span redacted too."""
    manager = ExtensionDebugManager(
        "redact-ext", configuration=DebugConfiguration(tracing_enabled=True)
    )
    session_id = manager.start_debug_session(
        {"enable_tracing": True, "trace_tags": {"token": CANARY, "team": "core"}}, name="s"
    )
    data = manager.stop_debug_session(session_id).collected_data["tracing"]
    [root] = [s for s in data["records"] if s["span_id"] == data["root_span_id"]]
    assert (root["tags"]["token"], root["tags"]["team"]) == (REDACTED, "core")


@pytest.fixture
def user_provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert install_opentelemetry_capture(provider)
    yield provider
    uninstall_opentelemetry_capture(provider)


def test_opentelemetry_attributes_captured_into_a_session_are_redacted(
    user_provider: TracerProvider,
) -> None:
    """An SDK span's attributes and event attributes are redacted by name when captured."""
    manager = ExtensionDebugManager(
        "redact-ext", configuration=DebugConfiguration(tracing_enabled=True)
    )
    session_id = manager.start_debug_session({"enable_tracing": True}, name="test::otel")
    otel = user_provider.get_tracer("lib")
    with otel.start_as_current_span("db query") as span:
        span.set_attributes({"db.password": CANARY, "db.system": "sqlite", "api_key": CANARY})
        span.add_event("auth", {"authorization": "Basic " + CANARY, "ok": True})
    data = manager.stop_debug_session(session_id).collected_data["tracing"]
    [captured] = [s for s in data["records"] if s["name"] == "db query"]
    assert captured["tags"] == {
        "db.password": REDACTED,
        "db.system": "sqlite",
        "api_key": REDACTED,
        "otel.scope.name": "lib",
    }
    assert captured["events"][0]["attributes"] == {"authorization": REDACTED, "ok": True}


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

SPAN_TESTS = f"""
from opentelemetry import trace

CANARY = {CANARY[:4]!r} + {CANARY[4:]!r}


def test_own_tracer(kari_tracer):
    with kari_tracer.start_span("login", {{"api_key": CANARY}}) as span:
        span.set_tag("password", CANARY)
        span.set_tag("user", "ada")
        span.add_event("sent", {{"token": CANARY}})


def test_opentelemetry_span():
    with trace.get_tracer("lib").start_as_current_span("db query") as span:
        span.set_attribute("password", CANARY)
        span.set_attribute("api_key", CANARY)
        span.set_attribute("db.system", "sqlite")
"""


def test_span_secrets_appear_in_no_output_of_a_run(pytester: pytest.Pytester) -> None:
    """A run with --kari-debug --kari-trace: password/api_key tags set on the test's own span
    and on an OpenTelemetry span are in none of the JSON, report, store, Jaeger and OTLP
    files; the non-secret tags are kept."""
    pytester.makeconftest(OTEL_CONFTEST)
    pytester.makepyfile(test_spans=SPAN_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--kari-debug", "--kari-trace",
        "--kari-json=out/run.json", "--kari-report=out/report.html",
        "--kari-store=out/kari.db", "--kari-jaeger=out/jaeger.json",
        "--kari-otlp-json=out/otlp.json",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    out = pytester.path / "out"
    assert {"run.json", "report.html", "kari.db", "jaeger.json", "otlp.json"} <= {
        p.name for p in out.iterdir()
    }
    hits = []
    for path in out.rglob("*"):
        if path.is_file() and CANARY.encode() in path.read_bytes():
            hits.append(path.name)
    with sqlite3.connect(out / "kari.db") as db:  # rows still in the WAL are read too
        dump = "\n".join(db.iterdump())
    assert hits == []
    assert CANARY not in dump
    document = json.loads((out / "run.json").read_text(encoding="utf-8"))
    spans = {
        s["name"]: s
        for test in document["tests"]
        for s in test["collected_data"]["tracing"]["records"]
    }
    assert spans["login"]["tags"] == {"api_key": REDACTED, "password": REDACTED, "user": "ada"}
    assert spans["login"]["events"][0]["attributes"] == {"token": REDACTED}
    assert spans["db query"]["source"] == "opentelemetry"
    tags = spans["db query"]["tags"]
    assert (tags["password"], tags["api_key"], tags["db.system"]) == (REDACTED, REDACTED, "sqlite")
    assert "db query" in dump  # the spans are in the store, redacted
    assert "sqlite" in dump


class _RaisingEq:
    """A tag key whose hash matches a known plain name and whose __eq__ raises."""

    def __hash__(self) -> int:
        return hash("http.method")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("user key __eq__")


class _EqualToAnything(str):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


def test_tag_keys_that_are_not_plain_text_never_raise_nor_skip_redaction() -> None:
    """A key that is not exactly a str never meets the redactor's known-name set (whose
    lookup would call its own __eq__): it is made text first, so a raising __eq__ costs
    nothing and a str subclass named like a secret is still redacted."""
    tracer = traced()
    with tracer.start_span("warm", {"http.method": "GET", "user": "ada"}):
        pass
    with tracer.start_span("odd", {_RaisingEq(): "GET"}) as span:
        pass
    assert all(type(key) is str for key in span.tags)
    with tracer.start_span("leak", {_EqualToAnything("password"): CANARY}) as span:
        pass
    assert span.tags == {"password": REDACTED}
    json.dumps([record["tags"] for record in tracer.get_spans()])


def test_a_long_tag_key_is_kept_bounded() -> None:
    """set_tag cuts a long key to bounded text, as start_span does: the redactor's name cache
    never holds a test's 100 KB key for the rest of the run."""
    tracer = traced()
    with tracer.start_span("long") as span:
        span.set_tag("k" * 100_000, 1)
    [key] = span.tags
    assert len(key) < 300
    assert max(map(len, tracer.values._secret_keys)) < 300
