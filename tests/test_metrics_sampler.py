"""The resource sampler thread: interval, per-session samples, failures, shutdown."""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.metrics import SAMPLE_FIELDS, MetricsCollector
from pytest_kari_debug.metrics.readings import _Probe

FAST = DebugConfiguration(metrics_interval=0.01)


def wait_for(condition: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Wait until *condition* holds; fail naming *what* if it never does (a hang guard)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def fast() -> Iterator[ExtensionDebugManager]:
    """A started manager sampling every 10 ms, stopped after the test."""
    manager = ExtensionDebugManager("sampled", configuration=FAST)
    manager.start()
    yield manager
    manager.stop()


def _sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kari-metrics-sampler")]


def test_sampler_is_a_daemon_thread_that_stops_with_the_manager() -> None:
    """start() runs one daemon sampler thread; stop() ends it."""
    manager = ExtensionDebugManager("lifecycle", configuration=FAST)
    manager.start()
    collector = manager.get_metrics_collector()
    thread = collector._thread
    assert thread is not None
    assert thread.daemon
    assert thread.is_alive()
    assert thread.name == "kari-metrics-sampler[lifecycle]"
    manager.start()  # idempotent: still one thread
    assert collector._thread is thread
    manager.stop()
    assert not thread.is_alive()
    assert not collector.sampling


def test_sessions_receive_sampler_points(fast: ExtensionDebugManager) -> None:
    """Points taken while a session is open land in its samples with the resource fields."""
    collector = fast.get_metrics_collector()
    session_id = fast.start_debug_session()
    wait_for(lambda: len(collector.session_samples(session_id)) >= 3, "three samples")
    data = fast.stop_debug_session(session_id).collected_data["metrics"]
    assert len(data["samples"]) >= 3
    first = data["samples"][0]
    assert {"ts", "cpu_percent", "cpu_user_s", "rss_bytes", "memory_mb", "vms_bytes", "threads",
            "ctx_switches"} <= set(first)  # fmt: skip
    assert set(first) - {"ts", "custom"} <= set(SAMPLE_FIELDS)
    assert [s["ts"] for s in data["samples"]] == sorted(s["ts"] for s in data["samples"])
    assert data["resources"]["peak_rss_bytes"] >= max(s["rss_bytes"] for s in data["samples"])


def test_sampler_platform_fields_on_linux(fast: ExtensionDebugManager) -> None:
    """On Linux the sampler also reads USS, open fds, io bytes and (system-wide) network bytes."""
    if not sys.platform.startswith("linux"):
        pytest.skip("USS, fds and io counters are checked on Linux")
    point = fast.get_metrics_collector().sample_now()
    assert {"uss_bytes", "open_fds", "io_read_bytes", "io_write_bytes", "net_bytes_sent",
            "net_bytes_recv"} <= set(point)  # fmt: skip
    assert point["threads"] >= 2  # this thread and the sampler


def test_sampler_calls_custom_collectors(fast: ExtensionDebugManager) -> None:
    """The sampler thread calls custom collectors; values arrive as points and in samples."""
    collector = fast.get_metrics_collector()
    calls: list[int] = []
    collector.register_custom_collector("queue_size", lambda: len(calls) or calls.append(1) or 7)
    wait_for(lambda: len(collector.get_metrics("queue_size")) >= 2, "two collector values")
    assert all(p.session_id is None for p in collector.get_metrics("queue_size"))
    assert any("custom" in s for s in collector.get_resource_samples())


def test_sampler_survives_a_failing_reading(fast: ExtensionDebugManager) -> None:
    """A reading that raises becomes a diagnostic; the thread goes on sampling."""
    collector = fast.get_metrics_collector()
    original = collector.read_resources
    failures = []

    def flaky() -> dict[str, Any]:
        if not failures:
            failures.append(1)
            raise RuntimeError("proc vanished")
        return original()

    collector.read_resources = flaky  # type: ignore[method-assign]
    taken = collector.samples_total
    wait_for(lambda: collector.samples_total >= taken + 2, "samples after the failure")
    assert collector.sampling
    assert any("proc vanished" in d for d in collector.diagnostics)


class _LimitedProcess:
    """A psutil.Process stand-in for a platform without fds, io counters, USS or ctx switches."""

    def __init__(self) -> None:
        self._real = psutil.Process()

    def oneshot(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def cpu_percent(self, interval: float | None = None) -> float:
        return 1.0

    def cpu_times(self) -> Any:
        return self._real.cpu_times()

    def memory_info(self) -> Any:
        return self._real.memory_info()

    def num_threads(self) -> int:
        raise psutil.AccessDenied(pid=1)

    def memory_full_info(self) -> Any:
        return self._real.memory_info()  # no uss field, as on platforms without it


def test_missing_counters_are_absent_not_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A counter the platform lacks or refuses is left out of the point; nothing raises."""
    collector = MetricsCollector("limited")
    collector._process = _LimitedProcess()  # type: ignore[assignment]
    monkeypatch.setattr("pytest_kari_debug.metrics.core._resource", None)
    point = collector.read_resources()
    assert {"cpu_percent", "rss_bytes", "cpu_user_s"} <= set(point)
    assert not {"threads", "open_fds", "io_read_bytes", "uss_bytes", "ctx_switches"} & set(point)
    assert collector.read_resources().keys() == point.keys() - {"uss_bytes"} | {"ts"}


def test_probe_without_proc_files_falls_back_to_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    """Session boundary readings still have RSS when /proc cannot be read."""
    monkeypatch.setattr("pytest_kari_debug.metrics.readings._open_proc", lambda path: None)
    probe = _Probe()
    reading = probe.read()
    assert reading[5] is not None
    assert reading[5] > 0
    assert reading[0] >= 0  # cpu user seconds


def test_metrics_interval_accepts_down_to_ten_milliseconds() -> None:
    """metrics_interval 0.01 is accepted; below it is a configuration error naming the field."""
    assert DebugConfiguration(metrics_interval=0.01).metrics_interval == 0.01
    with pytest.raises(ConfigurationError, match=r"metrics_interval must be .*>= 0.01"):
        DebugConfiguration(metrics_interval=0.001)


def test_sampler_does_not_keep_the_collector_alive() -> None:
    """A manager dropped without stop() is collected and its sampler thread ends."""
    manager = ExtensionDebugManager("dropped", configuration=FAST)
    manager.start()
    thread = manager.get_metrics_collector()._thread
    assert thread is not None
    del manager
    gc.collect()
    wait_for(lambda: not thread.is_alive(), "the orphaned sampler to end")


def test_sampler_never_keeps_the_interpreter_alive() -> None:
    """A program that starts a manager and never stops it exits normally."""
    code = (
        "from pytest_kari_debug import ExtensionDebugManager, DebugConfiguration\n"
        "config = DebugConfiguration(metrics_interval=0.01)\n"
        "m = ExtensionDebugManager('exit', configuration=config)\n"
        "m.start()\n"
        "m.get_metrics_collector().sample_now()\n"
        "print('done')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


def test_no_sampler_threads_leak_from_this_module() -> None:
    """Every sampler started by the tests above has stopped (fixtures stop their managers)."""
    gc.collect()
    wait_for(
        lambda: not any(t.name.endswith(("[sampled]", "[lifecycle]")) for t in _sampler_threads()),
        "sampler threads to end",
    )


def test_the_first_point_counts_cpu_from_the_start() -> None:
    """``start()`` marks the process's CPU clock without psutil (imported at the first point):
    the first point's cpu_percent covers the busy time since the start, not a psutil baseline
    taken at that point (0.0), and a later idle interval reads lower."""
    collector = MetricsCollector("cpu", DebugConfiguration(metrics_interval=3600))
    began, cpu_began = time.monotonic(), time.process_time()
    collector.start()
    try:
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass
        # The process's own share of a CPU over a window a little wider than the point's:
        # on a loaded machine it is far below 100 %, and the point must show it all the same.
        share = (time.process_time() - cpu_began) / (time.monotonic() - began) * 100.0
        busy = collector.sample_now()["cpu_percent"]
        time.sleep(0.3)
        idle = collector.sample_now()["cpu_percent"]
    finally:
        collector.stop()
    assert busy > 0.5 * share > 0.0
    assert idle < busy


def test_a_probe_whose_proc_file_fails_later_reads_rss_from_psutil(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/proc/self/statm opened and then unreadable: the reading falls back to psutil's RSS."""
    probe = _Probe()
    assert probe.read()[5] is not None
    monkeypatch.setattr("pytest_kari_debug.metrics.readings.os.pread", _refused)
    reading = probe.read()
    assert reading[5] == pytest.approx(psutil.Process().memory_info().rss, rel=0.5)


def _refused(*args: object) -> bytes:
    raise OSError("refused")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_a_forked_child_reads_its_own_memory_not_its_parents() -> None:
    """The probe's /proc files, opened in the parent, are opened again in a forked child: the
    child's RSS reading is its own (200 MB more than its parent's), never the parent's."""
    probe = _Probe()
    parent_rss = probe.read()[5]
    assert parent_rss is not None
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: grow, read, report, leave at once
        try:
            ballast = b"x" * (200 * 1024 * 1024)
            os.write(writable, str(probe.read()[5]).encode())
            del ballast
        finally:
            os._exit(0)
    os.close(writable)
    try:
        child_rss = int(os.read(readable, 64).decode())
    finally:
        os.close(readable)
        os.waitpid(pid, 0)
    assert child_rss > parent_rss + 150 * 1024 * 1024
