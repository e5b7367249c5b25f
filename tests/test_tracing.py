"""ExtensionTracer: spans, nesting, errors, decorators, sampling, bounds, sessions, analysis."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.context import CURRENT_SESSION, SessionInfo
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.tracing import (
    ExtensionTracer,
    Span,
    UnsampledSpan,
    analyze_spans,
    current_span,
    sampling_decision,
)


class FakeClock:
    """Epoch nanoseconds that only move when told to."""

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += int(ms * 1_000_000)


def make_tracer(clock: FakeClock | None = None, **config: Any) -> ExtensionTracer:
    configuration = DebugConfiguration(tracing_enabled=True, **config)
    return ExtensionTracer("ext", configuration, clock=clock)


@pytest.fixture
def tracer() -> ExtensionTracer:
    """A fresh, enabled tracer recording every trace."""
    return make_tracer()


def by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {span["name"]: span for span in spans}


def test_seed_flow_nests_spans_under_the_trace_root(tracer: ExtensionTracer) -> None:
    """start_trace opens a root; spans opened before finish_trace are its children."""
    context = tracer.start_trace("user_request")
    with tracer.start_span("validate_input") as span:
        span.set_tag("input_type", "json")
    with tracer.start_span("process_request") as span:
        span.set_tag("user_id", "u1")
    tracer.finish_trace(context.trace_id)
    spans = by_name(tracer.get_trace(context.trace_id))
    assert set(spans) == {"user_request", "validate_input", "process_request"}
    root = spans["user_request"]
    assert root["parent_id"] is None
    assert spans["validate_input"]["parent_id"] == root["span_id"]
    assert spans["process_request"]["parent_id"] == root["span_id"]
    assert spans["validate_input"]["tags"] == {"input_type": "json"}
    assert not isinstance(current_span(), Span)  # finish_trace restored the context


def test_finish_trace_of_unknown_id_names_it(tracer: ExtensionTracer) -> None:
    """finish_trace with an id no start_trace opened raises a ValueError naming the id."""
    with pytest.raises(ValueError, match="'abc'"):
        tracer.finish_trace("abc")


def test_span_record_matches_the_data_contract(tracer: ExtensionTracer) -> None:
    """A span record has hex ids, epoch times, duration as value and ts as start."""
    with tracer.start_span("op", {"k": "v"}) as span:
        span.log("cache miss", key="a")
        span.add_event("retry", {"attempt": 2})
    (record,) = tracer.get_spans()
    assert len(record["trace_id"]) == 32
    assert int(record["trace_id"], 16)
    assert len(record["span_id"]) == 16
    assert int(record["span_id"], 16)
    assert record["end"] >= record["start"] > 1e9
    assert record["value"] == record["duration_ms"]
    assert record["ts"] == record["start"]
    assert record["status"] == "ok"
    assert [e["name"] for e in record["events"]] == ["cache miss", "retry"]
    assert record["events"][0]["attributes"] == {"key": "a"}
    assert record["events"][1]["attributes"] == {"attempt": 2}


def test_exception_in_span_sets_error_status_and_reraises(tracer: ExtensionTracer) -> None:
    """An exception escaping a span marks it error with its type and message, and propagates."""
    with pytest.raises(KeyError), tracer.start_span("lookup"):
        raise KeyError("missing-key")
    (record,) = tracer.get_spans()
    assert record["status"] == "error"
    assert record["tags"]["error.type"] == "KeyError"
    assert "missing-key" in record["tags"]["error.message"]
    assert "missing-key" in record["status_message"]
    (event,) = record["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "KeyError"
    assert "raise KeyError" in event["attributes"]["exception.stacktrace"]


def test_tag_values_are_kept_json_able(tracer: ExtensionTracer) -> None:
    """Tags that are not JSON scalars are kept as repr; NaN becomes text; lists stay lists."""

    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    with tracer.start_span("op") as span:
        span.set_tag("obj", Thing())
        span.set_tag("nan", float("nan"))
        span.set_tag("list", (1, "a", Thing()))
        span.set_tag("long", "x" * 5000)
    tags = tracer.get_spans()[0]["tags"]
    assert tags["obj"] == "<thing>"
    assert tags["nan"] == "nan"
    assert tags["list"] == [1, "a", "<thing>"]
    assert len(tags["long"]) < 5000


def test_async_context_manager_nests() -> None:
    """start_span works with async with, and nesting follows awaits."""
    tracer = make_tracer()

    async def main() -> None:
        async with tracer.start_span("outer"):
            await asyncio.sleep(0)
            async with tracer.start_span("inner"):
                await asyncio.sleep(0)

    asyncio.run(main())
    spans = by_name(tracer.get_spans())
    assert spans["inner"]["parent_id"] == spans["outer"]["span_id"]


def test_hundred_concurrent_tasks_keep_their_own_trees() -> None:
    """100 asyncio tasks, interleaved, each build a tree; no span gets another task's parent."""
    tracer = make_tracer()

    async def work(n: int) -> None:
        async with tracer.start_span(f"task-{n}"):
            for level in range(3):
                await asyncio.sleep(0)
                async with tracer.start_span(f"task-{n}-child-{level}"):
                    await asyncio.sleep(0)
                    async with tracer.start_span(f"task-{n}-grandchild-{level}"):
                        await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(work(n) for n in range(100)))

    asyncio.run(main())
    spans = tracer.get_spans()
    assert len(spans) == 100 * 7
    ids = {span["span_id"]: span for span in spans}
    for span in spans:
        name = span["name"]
        task = name.split("-")[1]
        if "grandchild" in name:
            parent = ids[span["parent_id"]]
            assert parent["name"] == name.replace("grandchild", "child")
        elif "child" in name:
            assert ids[span["parent_id"]]["name"] == f"task-{task}"
        else:
            assert span["parent_id"] is None
        root = span
        while root["parent_id"] is not None:
            root = ids[root["parent_id"]]
        assert root["name"] == f"task-{task}"
        assert span["trace_id"] == root["trace_id"]
    assert len({s["trace_id"] for s in spans}) == 100


def test_threads_with_copied_context_nest_and_others_do_not(tracer: ExtensionTracer) -> None:
    """A thread run in a copied context nests under the current span; a bare thread does not."""

    def child(name: str) -> None:
        with tracer.start_span(name):
            pass

    with tracer.start_span("parent") as parent:
        copied = contextvars.copy_context()
        threads = [
            threading.Thread(target=copied.run, args=(child, "copied")),
            threading.Thread(target=child, args=("bare",)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    spans = by_name(tracer.get_spans())
    assert spans["copied"]["parent_id"] == parent.span_id
    assert spans["copied"]["trace_id"] == parent.trace_id
    assert spans["bare"]["parent_id"] is None
    assert spans["bare"]["trace_id"] != parent.trace_id


def test_trace_function_wraps_sync_and_async_functions(tracer: ExtensionTracer) -> None:
    """trace_function makes a span per call for plain and coroutine functions."""

    @tracer.trace_function("api_call")
    def call(x: int) -> int:
        return x * 2

    @tracer.trace_function
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "ok"

    assert call(21) == 42
    assert asyncio.run(fetch()) == "ok"
    names = [s["name"] for s in tracer.get_spans()]
    assert names == ["api_call", fetch.__qualname__]
    assert tracer.get_spans()[0]["tags"]["code.function"].endswith("call")


def test_trace_function_records_raised_errors(tracer: ExtensionTracer) -> None:
    """A decorated function that raises leaves an error span and the exception propagates."""

    @tracer.trace_function()
    def broken() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        broken()
    assert tracer.get_spans()[0]["status"] == "error"


def test_generator_span_covers_iteration_but_is_current_only_inside(
    tracer: ExtensionTracer,
) -> None:
    """A traced generator's span spans its iteration; the consumer's spans don't nest in it."""
    inside: list[str] = []

    @tracer.trace_function("produce")
    def produce() -> Iterator[int]:
        for n in range(3):
            with tracer.start_span(f"make-{n}"):
                inside.append(current_span().name)
            yield n
        return

    consumed = []
    with tracer.start_span("consumer") as consumer:
        for value in produce():
            with tracer.start_span(f"use-{value}"):
                consumed.append(value)
    spans = by_name(tracer.get_spans())
    assert consumed == [0, 1, 2]
    assert inside == ["make-0", "make-1", "make-2"]
    assert spans["make-1"]["parent_id"] == spans["produce"]["span_id"]
    assert spans["use-1"]["parent_id"] == consumer.span_id
    assert spans["produce"]["parent_id"] == consumer.span_id
    assert spans["produce"]["end"] >= spans["make-2"]["end"]


def test_generator_send_throw_and_errors_pass_through(tracer: ExtensionTracer) -> None:
    """send() values reach a traced generator, and an error inside marks its span."""

    @tracer.trace_function("echo")
    def echo() -> Iterator[Any]:
        received = yield "ready"
        while True:
            if received == "boom":
                raise RuntimeError("exploded")
            received = yield received

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("a") == "a"
    with pytest.raises(RuntimeError, match="exploded"):
        gen.send("boom")
    assert by_name(tracer.get_spans())["echo"]["status"] == "error"


def test_async_generator_is_traced(tracer: ExtensionTracer) -> None:
    """A traced async generator yields its items in one span with its inner spans nested."""

    @tracer.trace_function("stream")
    async def stream() -> Any:
        for n in range(2):
            with tracer.start_span(f"chunk-{n}"):
                await asyncio.sleep(0)
            yield n

    async def main() -> list[int]:
        return [item async for item in stream()]

    assert asyncio.run(main()) == [0, 1]
    spans = by_name(tracer.get_spans())
    assert spans["chunk-0"]["parent_id"] == spans["stream"]["span_id"]


def test_closing_a_traced_generator_early_ends_its_span(tracer: ExtensionTracer) -> None:
    """Abandoning a traced generator after one item still finishes its span as ok."""

    @tracer.trace_function("numbers")
    def numbers() -> Iterator[int]:
        yield from itertools.count()

    gen = numbers()
    next(gen)
    gen.close()
    (span,) = tracer.get_spans()
    assert span["name"] == "numbers"
    assert span["status"] == "ok"


# Sampling -------------------------------------------------------------------------------
def test_sampling_zero_records_nothing() -> None:
    """sampling_rate 0.0 records no span at all, nested ones included."""
    tracer = make_tracer(sampling_rate=0.0)
    for _ in range(200):
        with tracer.start_span("root") as root, tracer.start_span("child") as child:
            child.set_tag("k", 1)
        assert isinstance(root, UnsampledSpan)
        assert not root.is_recording()
    assert tracer.get_spans() == []
    assert tracer.stats()["unsampled_traces"] == 200


def test_sampling_one_records_everything() -> None:
    """sampling_rate 1.0 records every trace."""
    tracer = make_tracer(sampling_rate=1.0, max_traces=10_000)
    for _ in range(2000):
        with tracer.start_span("root"):
            pass
    assert len(tracer.get_spans()) == 2000


def test_sampling_half_keeps_about_half_of_ten_thousand_traces() -> None:
    """sampling_rate 0.5 keeps close to half of 10,000 traces (within 4 standard deviations)."""
    tracer = make_tracer(sampling_rate=0.5, max_traces=10_000)
    for _ in range(10_000):
        with tracer.start_span("root"), tracer.start_span("child"):
            pass
    kept = tracer.get_traces()
    assert 4800 <= len(kept) <= 5200
    assert all(trace["spans"] == 2 for trace in kept)  # the child shares its root's decision


def test_sampling_decision_is_a_function_of_the_trace_id() -> None:
    """Two tracers at the same rate agree on every trace id; the decision follows the low bits."""
    low = "0" * 16 + "0000000000000001"
    high = "0" * 16 + "ffffffffffffffff"
    assert sampling_decision(low, 0.5)
    assert not sampling_decision(high, 0.5)
    first, second = make_tracer(sampling_rate=0.3), make_tracer(sampling_rate=0.3)
    ids = [f"{n:032x}" for n in range(1, 200_000_000_000, 987_654_321)]
    assert [first.is_sampled(t) for t in ids] == [second.is_sampled(t) for t in ids]


def test_disabled_tracer_records_nothing_but_works() -> None:
    """A disabled tracer accepts every call, returns spans with trace ids and keeps nothing."""
    tracer = ExtensionTracer("ext", DebugConfiguration(), enabled=False)
    context = tracer.start_trace("request")
    with tracer.start_span("op") as span:
        span.set_tag("a", 1)
        span.log("hello")
    tracer.finish_trace(context.trace_id)
    assert len(context.trace_id) == 32
    assert tracer.get_spans() == []


def test_manager_lowering_its_rate_lowers_the_tracers() -> None:
    """When the manager halves its sampling rate for overhead, its tracer samples less too."""
    manager = ExtensionDebugManager("ext", configuration=DebugConfiguration(tracing_enabled=True))
    for _ in range(10):
        manager.stop_debug_session(manager.start_debug_session())
    manager._overhead_s, manager._session_wall_s = 1.0, 1.0  # 100% overhead
    manager._adapt_sampling()
    assert manager.effective_sampling_rate < 1.0
    assert manager.get_tracer().sampling_rate == manager.effective_sampling_rate


def test_lowered_rate_spares_traces_a_session_asked_for() -> None:
    """The manager's lowered rate thins self-started traces, not a session's requested trace."""
    tracer = make_tracer(sampling_rate=1.0)
    tracer.sampling_rate = 0.0  # as the manager does under overhead
    info = _session({"enable_tracing": True})
    tracer.begin_session(info)
    token = CURRENT_SESSION.set(info)
    with tracer.start_span("inside"):
        pass
    CURRENT_SESSION.reset(token)
    data = tracer.end_session(info)
    assert data["sampled"] is True
    assert {s["name"] for s in data["records"]} == {info.name, "inside"}
    with tracer.start_span("self-started") as span:
        pass
    assert isinstance(span, UnsampledSpan)


# Bounds ---------------------------------------------------------------------------------
def test_max_traces_drops_oldest_finished_traces_with_counters() -> None:
    """Beyond max_traces the oldest finished trace is dropped and counted."""
    tracer = make_tracer(max_traces=3)
    with tracer.start_span("running"):
        for n in range(5):
            with tracer.start_span(f"t{n}", parent=_no_parent()), tracer.start_span("c"):
                pass
        kept = [t["root"] for t in tracer.get_traces()]
        assert kept == ["t3", "t4"]  # "running" is kept: it has not finished
    stats = tracer.stats()
    assert stats["dropped_traces"] == 3
    assert stats["dropped_spans"] == 6
    assert tracer.check()[0] == "degraded"


def _no_parent() -> Any:
    from opentelemetry.trace import INVALID_SPAN

    return INVALID_SPAN


def test_spans_per_trace_are_capped() -> None:
    """A trace keeps at most max_spans_per_trace spans; the rest are counted as dropped."""
    tracer = make_tracer()
    tracer.max_spans_per_trace = 10
    with tracer.start_span("root"):
        for _ in range(20):
            with tracer.start_span("child"):
                pass
    assert len(tracer.get_spans()) == 10
    assert tracer.stats()["dropped_spans"] == 11


# Sessions -------------------------------------------------------------------------------
def _session(options: dict[str, Any], name: str = "tests/test_x.py::test_y") -> SessionInfo:
    return SessionInfo("s-" + name[-6:], "ext", name, 0.0, options)


def test_session_with_tracing_gets_a_root_span_and_its_spans() -> None:
    """A session asking for tracing opens a root span; its spans are handed over at the end."""
    tracer = make_tracer()
    info = _session({"enable_tracing": True, "trace_tags": {"test.nodeid": "n"}})
    tracer.begin_session(info)
    token = CURRENT_SESSION.set(info)
    with tracer.start_span("work"):
        pass
    CURRENT_SESSION.reset(token)
    data = tracer.end_session(info)
    spans = by_name(data["records"])
    root = spans[info.name]
    assert data["trace_id"] == root["trace_id"]
    assert data["root_span_id"] == root["span_id"]
    assert spans["work"]["parent_id"] == root["span_id"]
    assert root["tags"]["kari.extension.id"] == "ext"
    assert root["tags"]["test.nodeid"] == "n"
    assert all(s["session_id"] == info.session_id for s in data["records"])
    assert data["analysis"][root["trace_id"]]["root"]["name"] == info.name
    assert not isinstance(current_span(), Span)


def test_session_root_takes_the_trace_parent() -> None:
    """trace_parent makes the session's root span a child of that remote span."""
    tracer = make_tracer()
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    info = _session({"enable_tracing": True, "trace_parent": parent})
    tracer.begin_session(info)
    data = tracer.end_session(info)
    (root,) = data["records"]
    assert root["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert root["parent_id"] == "b7ad6b7169203331"


def test_bad_trace_parent_is_a_diagnostic_not_a_failure() -> None:
    """An invalid trace_parent starts a fresh trace and leaves a diagnostic."""
    tracer = make_tracer()
    info = _session({"enable_tracing": True, "trace_parent": "nonsense"})
    tracer.begin_session(info)
    data = tracer.end_session(info)
    assert data["records"][0]["parent_id"] is None
    assert "nonsense" in tracer.diagnostics[0]


def test_span_left_open_by_a_session_does_not_leak_into_the_next() -> None:
    """A start_trace never finished inside a session does not parent the next session's root."""
    tracer = make_tracer()
    first = _session({"enable_tracing": True}, "a::one")
    tracer.begin_session(first)
    token = CURRENT_SESSION.set(first)
    tracer.start_trace("forgotten")
    CURRENT_SESSION.reset(token)
    tracer.end_session(first)
    second = _session({"enable_tracing": True}, "a::two")
    tracer.begin_session(second)
    data = tracer.end_session(second)
    assert data["records"][0]["parent_id"] is None


def test_manager_session_collects_tracing_data() -> None:
    """A manager session with enable_tracing returns the tracing records under 'tracing'."""
    manager = ExtensionDebugManager("ext", configuration=DebugConfiguration(tracing_enabled=True))
    tracer = manager.get_tracer()
    session_id = manager.start_debug_session({"enable_tracing": True}, name="my-session")
    with tracer.start_span("step"):
        pass
    data = manager.stop_debug_session(session_id).collected_data["tracing"]
    assert {s["name"] for s in data["records"]} == {"my-session", "step"}
    assert data["dropped"] == 0


# Analysis -------------------------------------------------------------------------------
def test_analysis_finds_critical_path_self_time_and_bottlenecks() -> None:
    """Critical path follows the last-finishing child; self time excludes children (fake clock)."""
    clock = FakeClock()
    tracer = make_tracer(clock, slow_span_ms=50.0)
    with tracer.start_span("request") as root:
        clock.advance(10)
        a = tracer.start_span("db")  # 10 -> 70
        b = tracer.start_span("cache")  # 10 -> 30, concurrent with db
        clock.advance(20)
        b.end()
        clock.advance(40)
        a.end()
        clock.advance(5)
        with tracer.start_span("render"):  # 75 -> 95
            clock.advance(20)
        clock.advance(5)  # root ends at 100
    analysis = tracer.analyze_trace(root.trace_id)
    assert analysis["duration_ms"] == pytest.approx(100.0, abs=0.01)
    path = [(seg["name"], seg["ms"]) for seg in analysis["critical_path"]]
    assert path == [
        ("request", pytest.approx(10.0, abs=0.01)),
        ("db", pytest.approx(60.0, abs=0.01)),
        ("request", pytest.approx(5.0, abs=0.01)),
        ("render", pytest.approx(20.0, abs=0.01)),
        ("request", pytest.approx(5.0, abs=0.01)),
    ]
    assert sum(seg["ms"] for seg in analysis["critical_path"]) == pytest.approx(100.0, abs=0.01)
    assert analysis["self_ms"][root.span_id] == pytest.approx(20.0, abs=0.01)
    assert [s["name"] for s in analysis["slowest"][:2]] == ["request", "db"]
    assert [b["name"] for b in analysis["bottlenecks"]] == ["request", "db"]
    assert tracer.get_bottlenecks(slow_span_ms=90.0)[0]["name"] == "request"


def test_analysis_of_concurrent_children_does_not_double_count() -> None:
    """Overlapping children count once against the parent's self time."""
    spans = [
        {"trace_id": "t", "span_id": "r", "parent_id": None, "name": "r", "start": 0.0,
         "end": 1.0, "duration_ms": 1000.0},
        {"trace_id": "t", "span_id": "a", "parent_id": "r", "name": "a", "start": 0.1,
         "end": 0.6, "duration_ms": 500.0},
        {"trace_id": "t", "span_id": "b", "parent_id": "r", "name": "b", "start": 0.3,
         "end": 0.8, "duration_ms": 500.0},
    ]  # fmt: skip
    analysis = analyze_spans(spans, 100.0)
    assert analysis["self_ms"]["r"] == pytest.approx(300.0)
    assert [seg["name"] for seg in analysis["critical_path"]] == ["r", "a", "b", "r"]
