"""Metrics costs, side by side: record_metric vs prometheus_client, session bounds, the sampler.

Run from the repository root::

    python benchmarks/metrics_bench.py            # full run (about 20 s)
    python benchmarks/metrics_bench.py --quick    # smaller counts

It prints a Markdown table. Figures are medians of several repeats measured in the same
process, so the ratios against prometheus_client's ``Gauge.set`` / ``Histogram.observe`` hold on
any machine even when the absolute numbers do not.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, Gauge, Histogram

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.context import SessionInfo
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.metrics import MetricsCollector


def per_call_ns(func: Callable[[], object], calls: int, repeats: int) -> float:
    """Median nanoseconds per call of *func* over *repeats* loops of *calls* calls."""
    results = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            func()
        results.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(results)


def bench_recording(calls: int, repeats: int) -> list[tuple[str, float]]:
    """ns per recorded value: ours (no session, in a session, labelled) vs prometheus_client."""
    registry = CollectorRegistry()
    gauge = Gauge("bench_gauge", "gauge", registry=registry)
    histogram = Histogram("bench_histogram", "histogram", registry=registry)
    labelled_gauge = Gauge("bench_labelled", "gauge", ["route"], registry=registry)
    # max_metrics as large as the loop so the ring's eviction is part of the cost
    configuration = DebugConfiguration(max_metrics=50_000)
    manager = ExtensionDebugManager("bench", configuration=configuration)
    collector = manager.get_metrics_collector()
    rows = [
        ("prometheus_client Gauge.set", per_call_ns(lambda: gauge.set(1.5), calls, repeats)),
        (
            "prometheus_client Histogram.observe",
            per_call_ns(lambda: histogram.observe(1.5), calls, repeats),
        ),
        (
            "prometheus_client Gauge.labels(route=...).set",
            per_call_ns(lambda: labelled_gauge.labels(route="/x").set(1.5), calls, repeats),
        ),
        (
            "record_metric (no session)",
            per_call_ns(lambda: collector.record_metric("bench", 1.5, "ms"), calls, repeats),
        ),
    ]
    session_id = manager.start_debug_session()
    rows.append(
        (
            "record_metric (in a debug session)",
            per_call_ns(lambda: collector.record_metric("bench", 1.5, "ms"), calls, repeats),
        )
    )
    rows.append(
        (
            "record_metric (in a session, one label)",
            per_call_ns(
                lambda: collector.record_metric("bench", 1.5, "ms", route="/x"), calls, repeats
            ),
        )
    )
    manager.stop_debug_session(session_id)
    return rows


def bench_session_bounds(sessions: int, repeats: int) -> list[tuple[str, float]]:
    """µs per begin+end of a metrics session (paid by every test), with and without tracemalloc."""
    rows = []
    for label, config in (
        ("metrics begin+end per session (default)", DebugConfiguration()),
        ("metrics begin+end per session (--kari-memory)", DebugConfiguration(memory_tracking=True)),
    ):
        collector = MetricsCollector("bench", config)
        infos = [SessionInfo(f"s{i}", "bench", "t", 0.0, {}) for i in range(sessions)]

        def one(collector: MetricsCollector = collector, infos: list[SessionInfo] = infos) -> None:
            for info in infos:
                collector.begin_session(info)
                collector.end_session(info)

        results = []
        for _ in range(repeats):
            start = time.perf_counter_ns()
            one()
            results.append((time.perf_counter_ns() - start) / sessions / 1000.0)
        collector.stop()
        rows.append((label, statistics.median(results)))
    return rows


def _thread_cpu(thread: threading.Thread) -> float:
    """CPU seconds consumed so far by *thread* (its POSIX per-thread CPU clock)."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def bench_sampler(seconds: float) -> list[tuple[str, float]]:
    """Cost of one sample and the sampler's share of one core at several intervals."""
    collector = MetricsCollector("bench", DebugConfiguration())
    collector.sample_now()
    per_sample_us = per_call_ns(collector.sample_now, 200, 5) / 1000.0
    rows = [("one sample (µs, psutil oneshot + getrusage + net)", per_sample_us)]
    default = DebugConfiguration().metrics_interval
    rows.append(
        (f"sampler CPU at default interval {default:g} s (% of one core, per-sample cost)",
         100.0 * per_sample_us / 1e6 / default)
    )  # fmt: skip
    if hasattr(time, "pthread_getcpuclockid"):
        for interval in (1.0, 0.1, 0.01):
            manager = ExtensionDebugManager(
                f"bench-{interval}", configuration=DebugConfiguration(metrics_interval=interval)
            )
            manager.start()
            thread = manager.get_metrics_collector()._thread
            assert thread is not None
            before_cpu, before_wall = _thread_cpu(thread), time.monotonic()
            time.sleep(seconds)
            used = _thread_cpu(thread) - before_cpu
            wall = time.monotonic() - before_wall
            manager.stop()
            rows.append(
                (f"sampler thread CPU at interval {interval:g} s (% of one core, measured)",
                 100.0 * used / wall)
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, rougher figures")
    args = parser.parse_args(argv)
    calls, repeats, sessions = (20_000, 3, 2_000) if args.quick else (200_000, 7, 20_000)
    seconds = 2.0 if args.quick else 5.0
    recording = bench_recording(calls, repeats)
    gauge_ns = recording[0][1]
    observe_ns = recording[1][1]
    print(f"Python {sys.version.split()[0]} on {sys.platform}; {calls} calls x {repeats} repeats")
    print()
    print("| operation | ns per call | vs Gauge.set | vs Histogram.observe |")
    print("|---|---:|---:|---:|")
    for label, ns in recording:
        print(f"| {label} | {ns:,.0f} | {ns / gauge_ns:.1f}x | {ns / observe_ns:.1f}x |")
    print()
    print("| per-test cost | µs |")
    print("|---|---:|")
    for label, us in bench_session_bounds(sessions, repeats):
        print(f"| {label} | {us:.1f} |")
    print()
    print("| sampler | figure |")
    print("|---|---:|")
    for label, value in bench_sampler(seconds):
        print(f"| {label} | {value:.4g} |")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\n(benchmark process peak RSS {usage.ru_maxrss / 1024:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
