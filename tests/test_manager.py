"""ExtensionDebugManager: lifecycle, components, debug sessions, attribution and health."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import os
import random
import re
import threading

import pytest

from pytest_kari_debug import manager as manager_module
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError, SessionError
from pytest_kari_debug.manager import (
    ExtensionDebugManager,
    get_manager,
    list_managers,
    new_session_id,
)


def test_start_and_stop_are_idempotent_with_or_without_await(manager) -> None:
    """start()/stop() work from sync code, can be awaited, and repeat harmlessly."""
    manager.start()
    manager.start()
    assert manager.running

    async def main() -> None:
        await manager.stop()
        await manager.stop()
        await manager.start()

    asyncio.run(main())
    assert manager.running
    manager.stop()
    assert not manager.running


def test_getters_return_the_components(manager) -> None:
    """Each getter returns the component of its kind."""
    assert manager.get_logger().kind == "logging"
    assert manager.get_metrics_collector().kind == "metrics"
    assert manager.get_error_tracker().kind == "error_tracking"
    assert manager.get_profiler().kind == "profiling"
    assert manager.get_tracer().kind == "tracing"
    assert manager.get_alert_manager().kind == "alerting"


def test_disabled_component_accepts_calls_and_records_nothing() -> None:
    """A component switched off still works as an object but keeps no records."""
    manager = ExtensionDebugManager(
        "quiet", configuration=DebugConfiguration(logging_enabled=False)
    )
    logger = manager.get_logger()
    logger.info("ignored", a=1)
    assert logger.get_logs() == []
    assert "logging" not in manager.get_debug_summary()["enabled_components"]
    session_id = manager.start_debug_session()
    session = manager.stop_debug_session(session_id)
    assert "logging" not in session.collected_data


def test_session_collects_each_enabled_components_records(manager) -> None:
    """collected_data holds one entry per enabled component with that session's records only."""
    manager.get_logger().info("before")
    session_id = manager.start_debug_session({"enable_profiling": True}, name="t1")
    manager.get_logger().info("inside", n=1)
    manager.get_metrics_collector().record_metric("hits", 3, "count")
    manager.get_error_tracker().record_error("ValueError", "bad 1")
    with manager.get_tracer().start_span("work"):
        pass
    session = manager.stop_debug_session(session_id)
    manager.get_logger().info("after")
    data = session.collected_data
    assert set(data) == {"logging", "metrics", "error_tracking", "profiling", "tracing", "alerting"}
    assert [r["message"] for r in data["logging"]["records"]] == ["inside"]
    assert [r["name"] for r in data["metrics"]["records"]] == ["hits"]
    assert len(data["error_tracking"]["records"]) == 1
    assert [s["name"] for s in data["tracing"]["records"]] == ["work"]
    assert session.duration_seconds >= 0
    assert session.configuration == {"enable_profiling": True}
    assert session.name == "t1"
    assert manager.get_session(session_id) is session


def test_unknown_or_mistyped_session_options_are_refused(manager) -> None:
    """Unknown keys and wrong types of session options are refused, naming key and accepted."""
    with pytest.raises(ConfigurationError, match=r"'enable_magic'.*accepted"):
        manager.start_debug_session({"enable_magic": True})
    with pytest.raises(ConfigurationError, match=r"profile_memory.*bool"):
        manager.start_debug_session({"profile_memory": "yes"})
    assert manager.active_sessions() == []


def test_session_ids_stay_unique_under_a_users_seed_and_across_a_fork(manager) -> None:
    """Session ids come from the package's own generator: a test's ``random.seed`` never
    repeats them, and a forked child (an xdist worker, a multiprocessing pool) draws other ids
    than its parent. The session's info stays frozen."""
    random.seed(1234)
    first = manager.start_debug_session(name="a")
    random.seed(1234)
    second = manager.start_debug_session(name="b")
    assert first != second
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert re.fullmatch(r"[0-9a-f]{32}", second)
    info = manager.active_sessions()[0]
    assert (info.session_id, info.name, info.options) == (first, "a", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "changed"  # type: ignore[misc]
    for session_id in (first, second):
        manager.stop_debug_session(session_id)
    if not hasattr(os, "fork"):
        return
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, written to the parent
        try:
            os.write(writer, " ".join(new_session_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [new_session_id() for _ in range(3)]
    assert len(child) == 3
    assert not set(child) & set(parent)


def test_stopping_an_unknown_session_is_an_error_naming_it(manager) -> None:
    """Stopping a session twice (or one never started) raises SessionError with its id."""
    session_id = manager.start_debug_session()
    manager.stop_debug_session(session_id)
    with pytest.raises(SessionError, match=session_id):
        manager.stop_debug_session(session_id)


def test_records_of_concurrent_thread_sessions_never_mix(manager) -> None:
    """Sessions running at once in threads each get exactly their own records."""
    results = {}

    def run(label: str) -> None:
        session_id = manager.start_debug_session(name=label)
        for n in range(200):
            manager.get_logger().info(label, n=n)
        results[label] = manager.stop_debug_session(session_id)

    threads = [threading.Thread(target=run, args=(f"t{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for label, session in results.items():
        messages = {r["message"] for r in session.collected_data["logging"]["records"]}
        assert messages == {label}
        assert len(session.collected_data["logging"]["records"]) == 200


def test_records_of_concurrent_asyncio_sessions_never_mix(manager) -> None:
    """Sessions in concurrent asyncio tasks each get exactly their own records."""

    async def task(label: str):
        session_id = manager.start_debug_session(name=label)
        for n in range(50):
            manager.get_logger().info(label, n=n)
            await asyncio.sleep(0)
        return manager.stop_debug_session(session_id)

    async def main():
        return await asyncio.gather(*(task(f"a{n}") for n in range(10)))

    sessions = asyncio.run(main())
    for session in sessions:
        records = session.collected_data["logging"]["records"]
        assert {r["message"] for r in records} == {session.name}
        assert len(records) == 50


def test_threads_with_a_copied_context_are_attributed(manager) -> None:
    """A thread started with the session's copied context records into that session."""
    session_id = manager.start_debug_session()
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(manager.get_logger().info, "from thread"))
    worker.start()
    worker.join()
    plain = threading.Thread(target=manager.get_logger().info, args=("unattributed",))
    plain.start()
    plain.join()
    session = manager.stop_debug_session(session_id)
    assert [r["message"] for r in session.collected_data["logging"]["records"]] == ["from thread"]


def test_tasks_created_inside_a_session_belong_to_it(manager) -> None:
    """asyncio tasks spawned inside a session inherit it."""

    async def child() -> None:
        manager.get_logger().info("child")

    async def main():
        with manager.debug_session(name="parent") as session_id:
            await asyncio.gather(child(), child())
        return manager.get_session(session_id)

    session = asyncio.run(main())
    assert [r["message"] for r in session.collected_data["logging"]["records"]] == ["child"] * 2


def test_summary_reports_components_overhead_counts_and_drops() -> None:
    """get_debug_summary names enabled components and counts records and drops."""
    manager = ExtensionDebugManager("small", configuration=DebugConfiguration(max_log_entries=5))
    for n in range(8):
        manager.get_logger().info("m", n=n)
    summary = manager.get_debug_summary()
    assert summary["enabled_components"] == ["logging", "metrics", "error_tracking", "alerting"]
    assert summary["counts"]["logging"] == 5
    assert summary["dropped"]["logging"] == 3
    assert summary["debug_overhead_ms"] >= 0


def test_diagnostics_report_health_per_component() -> None:
    """run_diagnostics checks every component; drops make the logger (and overall) degraded."""
    manager = ExtensionDebugManager("diag", configuration=DebugConfiguration(max_log_entries=1))
    report = asyncio.run(manager.run_diagnostics())
    assert report.overall_status == "healthy"
    assert {c.component for c in report.checks} >= {"logging", "metrics", "manager"}
    manager.get_logger().info("one")
    manager.get_logger().info("two")
    report = manager.diagnose()
    assert report.overall_status == "degraded"
    logging_check = next(c for c in report.checks if c.component == "logging")
    assert "1 records dropped" in logging_check.detail


def test_a_failing_component_degrades_but_never_breaks_a_session(manager, monkeypatch) -> None:
    """A component raising at session end is a diagnostic; the other components still report."""

    def broken(session):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(manager.get_metrics_collector(), "end_session", broken)
    session_id = manager.start_debug_session()
    manager.get_logger().info("kept")
    session = manager.stop_debug_session(session_id)
    assert session.collected_data["metrics"] == {"error": "collection failed"}
    assert session.collected_data["logging"]["records"][0]["message"] == "kept"
    assert manager.diagnose().overall_status == "degraded"
    assert any("disk on fire" in line for line in manager.get_debug_summary()["diagnostics"])


def test_registry_lists_live_managers() -> None:
    """Managers register by extension id and leave the registry when collected."""
    first = ExtensionDebugManager("reg-a")
    assert get_manager("reg-a") is first
    assert first in list_managers()
    del first
    import gc

    gc.collect()
    assert get_manager("reg-a") is None
    assert "reg-a" not in [m.extension_id for m in list_managers()]


def test_bad_constructor_arguments_are_refused() -> None:
    """An empty extension id or a configuration of the wrong type raises ConfigurationError."""
    with pytest.raises(ConfigurationError, match="extension_id"):
        ExtensionDebugManager("")
    with pytest.raises(ConfigurationError, match="DebugConfiguration"):
        ExtensionDebugManager("x", configuration={"sampling_rate": 1})  # type: ignore[arg-type]


def test_overhead_above_limit_lowers_sampling(monkeypatch) -> None:
    """When the debug overhead share exceeds profiling_overhead_limit, sampling is halved."""
    monkeypatch.setattr(manager_module, "OVERHEAD_WINDOW_S", 0.0)
    manager = ExtensionDebugManager(
        "busy", configuration=DebugConfiguration(profiling_overhead_limit=1.0)
    )
    for _ in range(10):
        session_id = manager.start_debug_session()
        manager.add_overhead(0.05)  # 50 ms of self-work for a near-instant session
        manager.stop_debug_session(session_id)
    summary = manager.get_debug_summary()
    assert summary["sampling_rate"] == 0.5
    assert summary["sampling_adjustments"][0]["overhead_percent"] > 1.0


def test_overhead_is_not_judged_on_a_short_window() -> None:
    """Below one second of session time the overhead share is not judged: no alert, no change."""
    manager = ExtensionDebugManager(
        "short", configuration=DebugConfiguration(profiling_overhead_limit=1.0)
    )
    for _ in range(20):
        session_id = manager.start_debug_session()
        manager.add_overhead(0.01)
        manager.stop_debug_session(session_id)
    summary = manager.get_debug_summary()
    assert summary["sampling_rate"] == 1.0
    assert summary["sampling_adjustments"] == []
    assert manager.get_alert_manager().get_active_alerts() == []


def test_completed_is_awaitable_once_done() -> None:
    """The value returned by start() is the manager itself when awaited."""
    manager = ExtensionDebugManager("await")

    async def main():
        return await manager.start()

    assert asyncio.run(main()) is manager
    assert isinstance(manager.stop(), manager_module.Completed)


def test_max_sessions_bounds_the_stopped_sessions_kept() -> None:
    """Only the newest max_sessions stopped sessions stay in memory; every one is counted."""
    manager = ExtensionDebugManager("bounded", configuration=DebugConfiguration(max_sessions=3))
    ids = []
    for n in range(5):
        session_id = manager.start_debug_session(name=f"s{n}")
        manager.stop_debug_session(session_id)
        ids.append(session_id)
    assert [s.name for s in manager.sessions] == ["s2", "s3", "s4"]
    assert manager.get_session(ids[0]) is None
    assert manager.get_session(ids[-1]) is not None
    assert manager.get_debug_summary()["sessions"] == {"active": 0, "completed": 5, "kept": 3}
    none_kept = ExtensionDebugManager("unkept", configuration=DebugConfiguration(max_sessions=0))
    session = none_kept.stop_debug_session(none_kept.start_debug_session())
    assert session.collected_data  # the caller still gets its session
    assert list(none_kept.sessions) == []
    with pytest.raises(ConfigurationError, match="max_sessions"):
        DebugConfiguration(max_sessions=-1)
