"""PerformanceProfiler: function and block timing, sessions, memory, bottlenecks, overhead."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError, SessionError
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.profiler import PerformanceProfiler, ProfileSession


def make_profiler(**changes: Any) -> PerformanceProfiler:
    """A fresh, enabled profiler with *changes* applied to its configuration."""
    return PerformanceProfiler("ext", DebugConfiguration(profiling_enabled=True, **changes))


@pytest.fixture(autouse=True)
def _no_leftover_tracing() -> Iterator[None]:
    """Each test starts and ends without tracemalloc (sessions must clean up after them)."""
    was = tracemalloc.is_tracing()
    yield
    if not was and tracemalloc.is_tracing():
        tracemalloc.stop()
        pytest.fail("a profiling session left tracemalloc running")


def cpu_bound(n: int = 400_000) -> int:
    """Pure-Python arithmetic: the hot spot the sampler must find."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def spin(seconds: float) -> None:
    """Keep the CPU busy for *seconds* with many small calls (samples need call events)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        cpu_bound(2000)


def nodes(tree: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """Every node of a compact call tree."""
    if tree is None:
        return
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node["children"])


# Function and block timing ------------------------------------------------------------------
def test_profile_function_bare_counts_and_times_every_call() -> None:
    """A bare @profile_function records calls, total, mean, min, max and p95 of wall and CPU."""
    profiler = make_profiler()

    @profiler.profile_function
    def work(n: int) -> int:
        return cpu_bound(n)

    for n in (1000, 2000, 3000):
        assert work(n) == cpu_bound(n)
    stats = profiler.get_function_stats(f"{__name__}.{work.__qualname__}")
    assert stats["calls"] == stats["timed_calls"] == 3
    assert 0 < stats["min_ms"] <= stats["mean_ms"] <= stats["max_ms"]
    # p95 interpolates between the two slowest calls, as every p95 of this package does.
    middle = stats["total_ms"] - stats["min_ms"] - stats["max_ms"]
    expected = middle + 0.9 * (stats["max_ms"] - middle)
    assert stats["p95_ms"] == pytest.approx(expected, abs=1e-5)
    assert stats["total_ms"] == pytest.approx(3 * stats["mean_ms"], abs=1e-5)
    assert 0 < stats["cpu_min_ms"] <= stats["cpu_max_ms"]
    assert work.__name__ == "work"


def test_profile_function_with_name_positional_and_keyword() -> None:
    """@profile_function("x") and @profile_function(name="y") record under the given names."""
    profiler = make_profiler()

    @profiler.profile_function("first")
    def one() -> int:
        return 1

    @profiler.profile_function(name="second")
    def two() -> int:
        return 2

    @profiler.profile_function()
    def three() -> int:
        return 3

    assert (one(), two(), three()) == (1, 2, 3)
    names = set(profiler.get_function_stats())
    assert {"first", "second", f"{__name__}.{three.__qualname__}"} == names


def test_profile_function_counts_exceptions_and_reraises() -> None:
    """A call that raises is counted as failed and the exception reaches the caller."""
    profiler = make_profiler()

    @profiler.profile_function("flaky")
    def flaky(fail: bool) -> None:
        if fail:
            raise ValueError("boom")

    flaky(False)
    with pytest.raises(ValueError, match="boom"):
        flaky(True)
    stats = profiler.get_function_stats("flaky")
    assert (stats["calls"], stats["failed"]) == (2, 1)
    assert [r.failed for r in profiler.records.snapshot()] == [False, True]


def test_profile_function_async_times_the_awaited_call() -> None:
    """An async function's timing covers its awaits (wall) but not CPU spent elsewhere."""
    profiler = make_profiler()

    @profiler.profile_function("fetch")
    async def fetch() -> str:
        await asyncio.sleep(0.05)
        return "done"

    assert asyncio.run(fetch()) == "done"
    stats = profiler.get_function_stats("fetch")
    assert stats["calls"] == 1
    assert stats["mean_ms"] >= 45
    assert stats["cpu_mean_ms"] < stats["mean_ms"] / 2


def test_profile_block_sync_async_and_nested() -> None:
    """Blocks time sync and async code and nest: the outer block covers the inner one."""
    profiler = make_profiler()

    async def main() -> None:
        async with profiler.profile_block("outer"):
            with profiler.profile_block("inner"):
                time.sleep(0.02)
            await asyncio.sleep(0.01)

    asyncio.run(main())
    stats = profiler.get_function_stats()
    assert stats["outer"]["calls"] == stats["inner"]["calls"] == 1
    assert stats["outer"]["total_ms"] > stats["inner"]["total_ms"] >= 19


def test_profile_block_counts_a_raising_block() -> None:
    """An exception leaving a block marks its timing failed."""
    profiler = make_profiler()
    with pytest.raises(KeyError), profiler.profile_block("lookup"):
        raise KeyError("x")
    assert profiler.get_function_stats("lookup")["failed"] == 1


def test_bad_arguments_fail_at_the_point_of_entry() -> None:
    """Empty names, generator functions and bad session options raise clear errors."""
    profiler = make_profiler()
    with pytest.raises(ConfigurationError, match="non-empty name"):
        profiler.profile_block("")
    with pytest.raises(ConfigurationError, match="non-empty string"):
        profiler.profile_function(name=" ")(lambda: None)

    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        profiler.profile_function(gen)
    with pytest.raises(ConfigurationError, match="async_mode"):
        profiler.start_session(async_mode="sometimes")
    with pytest.raises(ConfigurationError, match="interval"):
        profiler.start_session(interval=0)
    with pytest.raises(ConfigurationError, match="profile_memory"):
        profiler.start_session(profile_memory="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="limit"):
        profiler.get_bottlenecks(limit=0)
    with pytest.raises(KeyError, match="nothing"):
        profiler.get_function_stats("nothing")
    assert profiler.active_sessions() == []


def test_disabled_profiler_runs_code_and_records_nothing() -> None:
    """A disabled profiler's decorators and blocks run the code and keep no timings."""
    profiler = PerformanceProfiler("ext", DebugConfiguration(), enabled=False)

    @profiler.profile_function
    def double(x: int) -> int:
        return 2 * x

    with profiler.profile_block("block"):
        assert double(4) == 8
    assert profiler.get_function_stats() == {}
    assert len(profiler.records) == 0


# Sessions ----------------------------------------------------------------------------------
def test_session_call_tree_finds_the_cpu_bound_function() -> None:
    """A CPU session's tree holds the hot function, and it is the top bottleneck."""
    profiler = make_profiler()
    session_id = profiler.start_session(profile_cpu=True)
    spin(0.3)
    time.sleep(0.01)
    session = profiler.stop_session(session_id)
    assert isinstance(session, ProfileSession)
    assert session.duration_seconds >= 0.3
    assert session.sample_count > 10
    assert session.sampler == "pyinstrument"
    hot = {node["function"]: node for node in nodes(session.call_tree)}
    assert hot["cpu_bound"]["self_s"] > 0.15
    top = profiler.get_bottlenecks(limit=3)
    assert top[0]["kind"] == "function"
    assert top[0]["function"] == "cpu_bound"
    assert top[0]["share"] > 0.5
    assert "CPU-bound" in top[0]["recommendation"]
    assert any(b["kind"] == "path" and b["path"][-1].startswith("cpu_bound") for b in top)
    json.dumps(session.to_dict())


def test_session_renders_html_and_speedscope() -> None:
    """A session renders pyinstrument's HTML page and a speedscope document."""
    profiler = make_profiler()
    session_id = profiler.start_session()
    spin(0.05)
    session = profiler.stop_session(session_id)
    assert "<html" in session.render_html().lower()
    document = json.loads(session.render_speedscope())
    assert {"$schema", "shared", "profiles"} <= set(document)
    assert "cpu_bound" in session.render_text()


def test_empty_session_has_no_tree_and_says_why() -> None:
    """A session shorter than one interval has no call tree, a note, and nothing to render."""
    profiler = make_profiler(profile_interval=5.0)
    session = profiler.stop_session(profiler.start_session())
    assert session.call_tree is None
    assert any("no samples" in note for note in session.notes)
    with pytest.raises(SessionError, match="no call-tree samples"):
        session.render_html()


def test_stop_unknown_or_twice_raises() -> None:
    """Stopping an unknown or already stopped session names the problem."""
    profiler = make_profiler()
    with pytest.raises(SessionError, match="unknown"):
        profiler.stop_session("nope")
    session_id = profiler.start_session(profile_cpu=False)
    profiler.stop_session(session_id)
    with pytest.raises(SessionError, match="already stopped"):
        profiler.stop_session(session_id)


def test_stop_from_another_thread_is_refused() -> None:
    """A sampling session must be stopped in its own thread; elsewhere a clear error."""
    profiler = make_profiler()
    session_id = profiler.start_session()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            profiler.stop_session(session_id)
        except SessionError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert errors
    assert "must be stopped there" in str(errors[0])
    profiler.stop_session(session_id)


def test_overlapping_sessions_share_the_thread_sampler() -> None:
    """A second session in the same thread shares the running sampler, in any stop order."""
    profiler = make_profiler()
    outer = profiler.start_session()
    spin(0.05)
    inner = profiler.start_session(interval=0.5)
    spin(0.1)
    inner_result = profiler.stop_session(inner)
    spin(0.1)
    outer_result = profiler.stop_session(outer)
    assert inner_result.shared
    assert not outer_result.shared
    assert inner_result.interval_s == outer_result.interval_s == 0.001
    assert 0 < inner_result.sample_count < outer_result.sample_count
    # Reverse order: the outer stops first, the inner keeps sampling.
    first = profiler.start_session()
    second = profiler.start_session()
    profiler.stop_session(first)
    spin(0.05)
    assert profiler.stop_session(second).sample_count > 0


def test_two_profilers_on_one_thread_share_too() -> None:
    """Profilers of two extensions share one sampler per thread."""
    one, two = make_profiler(), make_profiler()
    a = one.start_session()
    b = two.start_session()
    spin(0.05)
    assert two.stop_session(b).shared
    assert one.stop_session(a).sample_count > 0


def test_async_session_attributes_the_awaited_sleep() -> None:
    """Started inside a coroutine, the tree puts the awaited sleep under that coroutine."""
    profiler = make_profiler()

    async def handler() -> None:
        await asyncio.sleep(0.15)

    async def main() -> ProfileSession:
        session_id = profiler.start_session()
        await handler()
        return profiler.stop_session(session_id)

    session = asyncio.run(main())
    found = {node["function"]: node for node in nodes(session.call_tree)}
    assert "handler" in found
    waits = [n for n in nodes(found["handler"]) if n["function"] == "[await]"]
    assert sum(n["time_s"] for n in waits) >= 0.1
    hot = {h["function"]: h for h in session.hot_functions}
    assert hot["sleep"]["wait_s"] >= 0.1
    assert "waits" in profiler.get_bottlenecks()[0]["recommendation"]


def test_cprofile_session_reports_calls_and_times() -> None:
    """cProfile statistics list each function with its calls, total and cumulative time."""
    profiler = make_profiler()
    session_id = profiler.start_session(profile_cpu=False, enable_cprofile=True)
    for _ in range(7):
        cpu_bound(1000)
    session = profiler.stop_session(session_id)
    rows = {row["name"]: row for row in session.cprofile_stats}
    assert rows["cpu_bound"]["calls"] == 7
    assert rows["cpu_bound"]["cumulative_time"] >= rows["cpu_bound"]["total_time"] > 0
    assert session.call_tree is None


def test_nested_cprofile_sessions_count_only_their_own_calls() -> None:
    """An inner cProfile session shares the outer one's profiler and sees only its calls."""
    profiler = make_profiler()
    outer = profiler.start_session(profile_cpu=False, enable_cprofile=True)
    cpu_bound(100)
    inner = profiler.start_session(profile_cpu=False, enable_cprofile=True)
    for _ in range(3):
        cpu_bound(100)
    inner_rows = {r["name"]: r for r in profiler.stop_session(inner).cprofile_stats}
    cpu_bound(100)
    outer_rows = {r["name"]: r for r in profiler.stop_session(outer).cprofile_stats}
    assert inner_rows["cpu_bound"]["calls"] == 3
    assert outer_rows["cpu_bound"]["calls"] == 5
    assert sys.getprofile() is None


def test_cprofile_and_call_tree_together() -> None:
    """Asked for both, a session returns cProfile statistics and a call tree of the same code."""
    profiler = make_profiler()
    session_id = profiler.start_session(profile_cpu=True, enable_cprofile=True)
    spin(0.2)
    session = profiler.stop_session(session_id)
    assert any(row["name"] == "cpu_bound" and row["calls"] > 10 for row in session.cprofile_stats)
    assert any(node["function"] in ("cpu_bound", "spin") for node in nodes(session.call_tree))
    expected = "pyinstrument" if sys.version_info >= (3, 12) else "thread"
    assert session.sampler == expected
    assert sys.getprofile() is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="cProfile uses sys.monitoring from 3.12")
def test_cprofile_refused_while_pyinstrument_samples_the_thread() -> None:
    """On Python < 3.12 a cProfile request under a running pyinstrument sampler is noted."""
    profiler = make_profiler()
    outer = profiler.start_session()
    inner = profiler.start_session(enable_cprofile=True)
    spin(0.05)
    inner_result = profiler.stop_session(inner)
    spin(0.05)
    outer_result = profiler.stop_session(outer)
    assert any("cProfile not run" in note for note in inner_result.notes)
    assert inner_result.cprofile_stats == []
    assert outer_result.sample_count > inner_result.sample_count > 0


# Memory ------------------------------------------------------------------------------------
def allocate_and_free() -> int:
    """Allocate ~8 MiB over ~50 ms and free it before returning (a test's locals)."""
    blocks = []
    for _ in range(25):
        blocks.append([bytearray(1024) for _ in range(320)])  # the allocation site
        time.sleep(0.002)
    return len(blocks)


ALLOCATION_LINE = allocate_and_free.__code__.co_firstlineno + 4


def test_memory_session_names_the_allocation_site_even_when_freed() -> None:
    """An allocation burst freed before the stop still shows its file:line at the peak."""
    profiler = make_profiler()
    session_id = profiler.start_session(profile_memory=True, profile_cpu=False)
    allocate_and_free()
    session = profiler.stop_session(session_id)
    top = session.top_allocations[0]
    assert top["site"] == f"{__file__}:{ALLOCATION_LINE}"
    assert top["size_bytes"] > 2 * 1024 * 1024
    assert top["count"] > 1000
    assert top["at"] == "peak"
    memory = session.memory
    assert memory["peak_increase_bytes"] >= top["size_bytes"]
    assert memory["peak_exact"] is True
    assert memory["tracemalloc_started_by_session"] is True
    assert not tracemalloc.is_tracing()


def test_memory_session_keeps_tracing_started_by_someone_else() -> None:
    """If tracemalloc already ran (metrics, the user), a session uses it and never stops it."""
    profiler = make_profiler()
    tracemalloc.start()
    try:
        kept = []
        session_id = profiler.start_session(
            profile_memory=True, profile_cpu=False, memory_diff=True
        )
        kept.append([bytearray(2048) for _ in range(600)])
        session = profiler.stop_session(session_id)
        assert tracemalloc.is_tracing()
        assert session.memory["tracemalloc_started_by_session"] is False
        assert session.memory["net_allocated_bytes"] > 1024 * 1024
        sites = [row["site"] for row in session.top_allocations]
        assert any(site.startswith(__file__) for site in sites)
        assert session.snapshot_diff
        assert session.snapshot_diff[0]["size_diff_bytes"] > 1024 * 1024
    finally:
        tracemalloc.stop()


def test_overlapping_memory_sessions_stop_tracing_after_the_last() -> None:
    """tracemalloc started by the first session stays on until the last one stops."""
    profiler = make_profiler()
    first = profiler.start_session(profile_memory=True, profile_cpu=False)
    second = profiler.start_session(profile_memory=True, profile_cpu=False)
    profiler.stop_session(first)
    assert tracemalloc.is_tracing()
    assert "error" not in profiler.stop_session(second).memory
    assert not tracemalloc.is_tracing()


# Overhead limit ----------------------------------------------------------------------------
def test_overhead_limit_reduces_function_timing_on_call_heavy_code() -> None:
    """Over a 1% limit, only every n-th call is timed; calls stay exact; the summary says so."""
    configuration = DebugConfiguration(profiling_enabled=True, profiling_overhead_limit=1.0)
    manager = ExtensionDebugManager("heavy", configuration=configuration)
    profiler = manager.get_profiler()

    @profiler.profile_function("tiny")
    def tiny(x: int) -> int:
        return x + 1

    for i in range(20_000):
        tiny(i)
    stats = profiler.get_function_stats("tiny")
    assert stats["calls"] == 20_000
    assert stats["timed_calls"] < 20_000
    assert profiler.timing_every > 1
    overhead = manager.get_debug_summary()["components"]["profiling"]["overhead"]
    assert overhead["adjusted"] is True
    assert overhead["function_timing_every"] == profiler.timing_every
    adjustment = overhead["adjustments"][0]
    assert adjustment["kind"] == "function_timing"
    assert adjustment["overhead_percent"] > 1.0
    assert adjustment["limit_percent"] == 1.0


def test_overhead_limit_widens_the_sampling_interval() -> None:
    """When sampling costs more than the limit, later sessions sample less often."""
    profiler = make_profiler(profiling_overhead_limit=0.5, profile_interval=0.0001)
    session_id = profiler.start_session()
    spin(0.2)
    session = profiler.stop_session(session_id)
    assert session.overhead["sampling_percent"] > 0.5
    assert session.overhead["adjusted"] is True
    assert profiler.sampling_interval > 0.0001
    report = profiler.overhead_report()
    assert report["adjustments"][-1]["kind"] == "sampling_interval"
    assert report["sampling_interval_s"] == profiler.sampling_interval
    later = profiler.start_session()
    assert profiler.sessions[later].interval_s == profiler.sampling_interval
    profiler.stop_session(later)


# Debug sessions and bottlenecks ------------------------------------------------------------
def test_debug_session_collects_tree_memory_and_timings() -> None:
    """A debug session with profiling options carries the profiling data contract."""
    manager = ExtensionDebugManager("ext", configuration=DebugConfiguration(profiling_enabled=True))
    profiler = manager.get_profiler()
    session_id = manager.start_debug_session(
        {"enable_profiling": True, "profile_memory": True}, name="debug"
    )
    with profiler.profile_block("work"):
        spin(0.05)
    data = manager.stop_debug_session(session_id).collected_data["profiling"]
    assert data["records"][0]["name"] == "work"
    assert data["records"][0]["session_id"] == session_id
    assert data["functions"]["work"]["timed_calls"] == 1
    assert any(node["function"] == "cpu_bound" for node in nodes(data["call_tree"]))
    assert data["memory"]["peak_bytes"] > 0
    assert isinstance(data["top_allocations"], list)
    assert data["profile"]["debug_session_id"] == session_id
    json.dumps(data)


def test_deferred_debug_session_profiles_only_between_start_and_stop() -> None:
    """With profile_deferred the profile covers only start_debug_profile..stop_debug_profile."""
    manager = ExtensionDebugManager("ext", configuration=DebugConfiguration(profiling_enabled=True))
    profiler = manager.get_profiler()
    session_id = manager.start_debug_session({"enable_profiling": True, "profile_deferred": True})
    info = manager.active_sessions()[0]
    assert profiler.active_sessions() == []
    spin(0.05)  # not profiled
    profiler.start_debug_profile(info)
    time.sleep(0.05)
    profiler.stop_debug_profile(info)
    data = manager.stop_debug_session(session_id).collected_data["profiling"]
    found = {node["function"] for node in nodes(data["call_tree"])}
    assert "sleep" in found
    assert "cpu_bound" not in found


def test_session_without_profiling_options_has_no_profile() -> None:
    """A debug session that asked for nothing gets timings only, and a null call tree."""
    manager = ExtensionDebugManager("ext", configuration=DebugConfiguration(profiling_enabled=True))
    session_id = manager.start_debug_session()
    data = manager.stop_debug_session(session_id).collected_data["profiling"]
    assert data["call_tree"] is None
    assert data["memory"] == {}
    assert data["top_allocations"] == []


def test_min_share_prunes_the_compact_tree() -> None:
    """Nodes under profile_min_percent of the time are left out of the compact tree."""
    profiler = make_profiler(profile_min_percent=40.0)
    session_id = profiler.start_session()
    spin(0.2)
    cpu_bound(10)
    session = profiler.stop_session(session_id)
    root_time = session.call_tree["time_s"]
    assert all(node["time_s"] >= 0.4 * root_time for node in nodes(session.call_tree))


def test_timed_bottlenecks_recommend_by_shape() -> None:
    """Slow timed blocks come with advice: waiting blocks, and many tiny calls."""
    profiler = make_profiler()
    with profiler.profile_block("waiting"):
        time.sleep(0.05)
    for _ in range(200):
        with profiler.profile_block("tiny"):
            pass
    timed = {b["name"]: b for b in profiler.get_bottlenecks() if b["kind"] == "timed"}
    assert "waits on I/O" in timed["waiting"]["recommendation"]
    assert "called 200 times" in timed["tiny"]["recommendation"]
    assert timed["waiting"]["share"] > timed["tiny"]["share"]
