"""tracemalloc shared by the metrics collector, the profiler and the user (memtrace)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator

import pytest

from pytest_kari_debug import memtrace
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.profiler import PerformanceProfiler

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _no_tracing_left() -> Iterator[None]:
    """Each test starts and must end with tracemalloc off and no user or meter counted."""
    assert not tracemalloc.is_tracing(), "an earlier test left tracemalloc running"
    yield
    leaked = (tracemalloc.is_tracing(), memtrace.users(), memtrace.open_meters())
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    assert leaked == (False, 0, 0)


def _memory_manager(name: str = "mem") -> ExtensionDebugManager:
    return ExtensionDebugManager(name, configuration=DebugConfiguration(memory_tracking=True))


def _profiler() -> PerformanceProfiler:
    return ExtensionDebugManager(
        "prof", configuration=DebugConfiguration(profiling_enabled=True)
    ).get_profiler()


def test_profiler_ending_first_keeps_tracing_for_an_open_metrics_session() -> None:
    """A profiler session that started tracing does not stop it under a metrics session."""
    profiler = _profiler()
    profile = profiler.start_session(profile_memory=True, profile_cpu=False)
    assert tracemalloc.is_tracing()
    mem = _memory_manager()
    session_id = mem.start_debug_session()
    assert profiler.stop_session(profile).memory["tracemalloc_started_by_session"] is True
    assert tracemalloc.is_tracing()
    kept = [object() for _ in range(10_000)]
    memory = mem.stop_debug_session(session_id).collected_data["metrics"]["memory"]
    assert "error" not in memory
    assert memory["allocated_bytes"] >= 10_000 * 16
    assert not tracemalloc.is_tracing()
    del kept


def test_collector_stop_keeps_tracing_for_an_open_profiler_session() -> None:
    """Stopping a manager whose metrics started tracing leaves it on for a profiling session."""
    mem = _memory_manager()
    mem.start()
    mem.stop_debug_session(mem.start_debug_session())
    session_id = mem.start_debug_session()
    profiler = _profiler()
    profile = profiler.start_session(profile_memory=True, profile_cpu=False)
    mem.stop_debug_session(session_id)
    mem.stop()
    assert tracemalloc.is_tracing()
    blob = bytearray(4 * MIB)
    memory = profiler.stop_session(profile).memory
    assert "error" not in memory
    assert memory["net_allocated_bytes"] >= 3 * MIB
    assert not tracemalloc.is_tracing()
    del blob


def test_metrics_session_does_not_erase_a_profiler_peak() -> None:
    """A metrics session resetting tracemalloc's peak keeps the open profiler session's peak."""
    profiler = _profiler()
    profile = profiler.start_session(profile_memory=True, profile_cpu=False)
    transient = bytearray(6 * MIB)
    del transient
    mem = _memory_manager()
    mem.stop_debug_session(mem.start_debug_session())
    memory = profiler.stop_session(profile).memory
    assert memory["peak_increase_bytes"] >= 6 * MIB
    assert memory["peak_exact"] is True


def test_garbage_of_earlier_code_is_not_subtracted_from_a_session() -> None:
    """Cycles left unreachable before a session, collected during it, do not lower its figures."""
    mem = _memory_manager()
    gc.disable()
    try:
        for _ in range(30_000):
            first: dict[str, object] = {}
            first["self"] = [first]  # a cycle: only the garbage collector frees it
        del first
        session_id = mem.start_debug_session()
        kept = [object() for _ in range(10_000)]
        gc.collect()  # as an automatic collection during the test would
        memory = mem.stop_debug_session(session_id).collected_data["metrics"]["memory"]
    finally:
        gc.enable()
    assert memory["allocated_blocks"] >= 10_000
    assert memory["allocated_bytes"] >= 10_000 * 16
    del kept


def test_stopping_the_collector_ends_memory_tracking_of_open_sessions() -> None:
    """A memory session left open when the manager stops does not keep tracemalloc running."""
    mem = _memory_manager()
    mem.start()
    session_id = mem.start_debug_session()
    mem.stop()
    assert not tracemalloc.is_tracing()
    memory = mem.stop_debug_session(session_id).collected_data["metrics"]["memory"]
    assert memory == {"error": "the collector stopped before the session ended"}


def test_tracing_started_by_the_user_is_never_stopped() -> None:
    """With tracemalloc started by the user, both components use it and leave it on."""
    tracemalloc.start()
    try:
        mem = _memory_manager()
        session_id = mem.start_debug_session()
        profiler = _profiler()
        profile = profiler.start_session(profile_memory=True, profile_cpu=False)
        assert profiler.stop_session(profile).memory["tracemalloc_started_by_session"] is False
        mem.stop_debug_session(session_id)
        mem.stop()
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
