"""The package's own threads' CPU time (kept out of every test's CPU figure)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from pytest_kari_debug import selfcost
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_an_idle_threads_cpu_is_counted_without_reading_its_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread waiting inside ``idle()`` counts with the CPU it had when it started waiting,
    read from there (no clock call: cpu_seconds runs at every phase of every test); once it
    works again its clock is read, and what it burns then counts too."""
    waiting, resume, worked, finish = (threading.Event() for _ in range(4))

    def own() -> None:
        with selfcost.own_thread():
            _burn(0.03)
            with selfcost.idle():
                waiting.set()
                resume.wait(10)
            _burn(0.03)
            worked.set()
            finish.wait(10)

    before = selfcost.cpu_seconds()
    thread = threading.Thread(target=own)
    thread.start()
    try:
        assert waiting.wait(10)
        clock_calls: list[int] = []
        real = selfcost._clock_gettime

        def counted(clock: int) -> float:
            clock_calls.append(clock)
            return real(clock)

        monkeypatch.setattr(selfcost, "_clock_gettime", counted)
        idle_total = selfcost.cpu_seconds()
        assert clock_calls == []
        assert idle_total - before >= 0.03
        resume.set()
        assert worked.wait(10)
        busy_total = selfcost.cpu_seconds()
        assert len(clock_calls) == 1  # working: read from its clock
        assert busy_total - idle_total >= 0.03
    finally:
        resume.set()
        finish.set()
        thread.join(10)
    assert selfcost.cpu_seconds() >= busy_total  # an ended thread's CPU stays counted


def test_the_waiting_sampler_costs_no_clock_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resource sampler (on in every --kari-debug run) waits inside ``idle()``: reading the
    package's own CPU at a test's phase makes no clock call for it while it waits."""
    manager = ExtensionDebugManager("idle", configuration=DebugConfiguration(metrics_interval=60))
    manager.start()
    try:
        sampler = manager.get_metrics_collector()._thread
        assert sampler is not None
        deadline = time.monotonic() + 10
        while sampler.ident not in selfcost._threads or (
            selfcost._threads[sampler.ident].idle_cpu is None
        ):
            assert time.monotonic() < deadline, "the sampler never started waiting"
            time.sleep(0.01)
        clock = selfcost._threads[sampler.ident].clock
        calls: list[int] = []
        monkeypatch.setattr(selfcost, "_clock_gettime", lambda c: calls.append(c) or 0.0)
        selfcost.cpu_seconds()
        assert clock not in calls
    finally:
        manager.stop()


def test_a_reading_takes_no_lock_and_a_thread_gone_since_its_snapshot_is_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``cpu_seconds`` reads a snapshot made at each change of the threads, without the lock
    (it runs at every phase of every test); a working thread that ended since the snapshot (its
    clock refuses) sends the reading to the threads themselves, under the lock, where its CPU
    is counted as retired: never lost, which would put the package's CPU in a test's figure."""
    finish = threading.Event()
    working = threading.Event()

    def own() -> None:
        with selfcost.own_thread():
            _burn(0.02)
            working.set()
            finish.wait(10)

    thread = threading.Thread(target=own)
    thread.start()
    try:
        assert working.wait(10)
        fixed, clocks = selfcost._snapshot
        assert len(clocks) >= 1  # the working thread's clock is in the snapshot
        read: list[float] = []
        with selfcost._LOCK:  # held: a reading that needed the lock would wait here
            reader = threading.Thread(target=lambda: read.append(selfcost.cpu_seconds()))
            reader.start()
            reader.join(5)
            read_under_lock = list(read)
        reader.join(10)
        assert read_under_lock, "cpu_seconds waited for the lock"
        assert read_under_lock[0] >= fixed + 0.02
    finally:
        finish.set()
        thread.join(10)
    after = selfcost.cpu_seconds()
    stale = (0.0, (*selfcost._snapshot[1], -12345))  # a clock of a thread that is gone

    def refusing(clock: int) -> float:
        if clock == -12345:
            raise OSError("no such thread")
        return time.clock_gettime(clock)

    monkeypatch.setattr(selfcost, "_snapshot", stale)
    monkeypatch.setattr(selfcost, "_clock_gettime", refusing)
    assert selfcost.cpu_seconds() >= after  # read again from the threads: the ended one too


def test_a_first_uses_preparation_is_the_packages_own_time() -> None:
    """CPU and wall time inside ``first_use`` count as the package's; a nested block once;
    a block on one of the package's own threads only through that thread's clock."""
    cpu, wall = selfcost.cpu_seconds(), selfcost.own_wall_seconds()
    with selfcost.first_use():
        _burn(0.05)
        with selfcost.first_use():
            time.sleep(0.05)
        assert selfcost.own_wall_seconds() == wall  # the inner block is the outer's
    assert selfcost.cpu_seconds() - cpu >= 0.049
    assert selfcost.own_wall_seconds() - wall >= 0.099

    def own() -> None:
        with selfcost.own_thread(), selfcost.first_use():
            time.sleep(0.05)

    def users() -> None:  # a thread of the test's: its wall time ran beside the test's
        with selfcost.first_use():
            _burn(0.05)

    wall = selfcost.own_wall_seconds()
    for target in (own, users):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(10)
    assert selfcost.own_wall_seconds() == wall


def test_a_first_use_inside_a_test_is_not_its_time(pytester: pytest.Pytester) -> None:
    """The scrubber's patterns compiled by a test's first log line, a lazily imported name
    used by a test: neither counts in the test's phases, duration or CPU (both are made slow
    here: 1 s each, which the test's figures must not show)."""
    pytester.makepyfile(
        """
        import json, logging, time

        from pytest_kari_debug import lazy, scrub

        def _slow_compile(original):
            def compile_slowly(self):
                time.sleep(1.0)
                original(self)
            return compile_slowly

        def test_logs_first(monkeypatch):
            monkeypatch.setattr(scrub, "_compiled", None)
            monkeypatch.setattr(
                scrub._Compiled, "__init__", _slow_compile(scrub._Compiled.__init__)
            )
            logging.getLogger("x").warning("token=abc")
            assert scrub._compiled is not None

        def test_lazy_import(monkeypatch, tmp_path):
            (tmp_path / "kari_slowmod.py").write_text("import time\\ntime.sleep(1.0)\\nX = 1\\n")
            monkeypatch.syspath_prepend(str(tmp_path))
            late = lazy.LateImports(globals(), None, {"X": "kari_slowmod:X"})
            late.load()
            assert X == 1
        """
    )
    result = pytester.runpytest("--kari-debug", "--kari-store=none", "--kari-json=run.json")
    result.assert_outcomes(passed=2)
    tests = json.loads((pytester.path / "run.json").read_text())["tests"]
    assert len(tests) == 2
    for test in tests:
        assert test["phases"]["call"] < 1000.0, test
        assert test["duration_ms"] < 1000.0, test
