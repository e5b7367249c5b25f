"""The stacks of threads and asyncio tasks, and the watchdog that takes them."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pytest_kari_debug import hangdump
from pytest_kari_debug.hangdump import HangWatchdog, capture_stacks, format_dump


def _parked(release: threading.Event) -> None:
    release.wait(10)


def test_capture_names_each_thread_and_its_own_function() -> None:
    """A dump lists each thread by name with the innermost function outside the stdlib."""
    release = threading.Event()
    worker = threading.Thread(target=_parked, args=(release,), name="parked-worker")
    worker.start()
    try:
        dump = capture_stacks()
    finally:
        release.set()
        worker.join()
    threads = {t["name"]: t for t in dump["threads"]}
    assert threads["parked-worker"]["function"] == "_parked"
    assert threads["MainThread"]["main"] is True
    assert "in _parked" in format_dump(dump)


def test_capture_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the thread cap, threads are counted, not kept."""
    monkeypatch.setattr(hangdump, "MAX_THREADS", 1)
    release = threading.Event()
    workers = [threading.Thread(target=_parked, args=(release,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        dump = capture_stacks()
    finally:
        release.set()
        for worker in workers:
            worker.join()
    assert len(dump["threads"]) == 1
    assert dump["omitted"]["threads"] >= 3
    assert "more threads" in format_dump(dump)


def test_capture_lists_tasks_of_a_loop_running_in_another_thread() -> None:
    """Tasks of an event loop running in a thread appear with their coroutine's function."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def waits_for_ever() -> None:
        started.set()
        await asyncio.sleep(30)

    thread = threading.Thread(target=loop.run_forever, name="loop-thread")
    thread.start()
    future = asyncio.run_coroutine_threadsafe(waits_for_ever(), loop)
    try:
        assert started.wait(5)
        dump = capture_stacks()
    finally:
        future.cancel()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
    (task,) = [t for t in dump["tasks"] if t.get("function") == "waits_for_ever"]
    assert task["thread"] == "loop-thread"


def test_watchdog_calls_back_at_each_multiple_and_stops_on_unwatch() -> None:
    """The callback runs at 1x, 2x, 3x the seconds, never more, and not after unwatch."""
    calls: list[tuple[object, int]] = []
    watchdog = HangWatchdog(0.05, repeats=3)
    try:
        watchdog.watch("slow", lambda key, n: calls.append((key, n)))
        watchdog.watch("fast", lambda key, n: calls.append((key, n)))
        watchdog.unwatch("fast")
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
    finally:
        watchdog.close()
    assert calls == [("slow", 1), ("slow", 2), ("slow", 3)]


def test_watchdog_refuses_a_non_positive_time() -> None:
    """Seconds must be a positive number."""
    with pytest.raises(ValueError, match="must be > 0"):
        HangWatchdog(0)
