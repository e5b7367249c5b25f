"""Nanoseconds per span (start + one tag + end): ExtensionTracer against the OpenTelemetry SDK.

Both run in this process, on the same workload: traces of one root and ``--children`` child
spans, each child getting one tag. The OpenTelemetry SDK is measured as a test would use it
in memory: ``TracerProvider`` + ``SimpleSpanProcessor(InMemorySpanExporter)``.

Usage: ``python benchmarks/tracing_bench.py [--spans N] [--repeat R] [--json]``
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.context import SessionInfo
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.tracing import ExtensionTracer, install_opentelemetry_capture

Workload = Callable[[int, int], int]


def otel_sdk(children: int) -> tuple[Workload, Callable[[], None]]:
    """OpenTelemetry SDK spans exported to memory (the baseline)."""
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def run(traces: int, children: int) -> int:
        for _ in range(traces):
            with tracer.start_as_current_span("root"):
                for _ in range(children):
                    with tracer.start_as_current_span("op") as span:
                        span.set_attribute("k", 1)
        return traces * (children + 1)

    return run, exporter.clear


def kari(rate: float = 1.0) -> tuple[Workload, Callable[[], None]]:
    """ExtensionTracer spans kept in its bounded per-trace store."""
    configuration = DebugConfiguration(tracing_enabled=True, sampling_rate=rate, max_traces=1000)
    tracer = ExtensionTracer("bench", configuration)

    def run(traces: int, children: int) -> int:
        for _ in range(traces):
            with tracer.start_span("root"):
                for _ in range(children):
                    with tracer.start_span("op") as span:
                        span.set_tag("k", 1)
        return traces * (children + 1)

    return run, tracer.clear


def kari_per_session() -> tuple[Workload, Callable[[], None]]:
    """ExtensionTracer with a session per trace, as per test under the plugin.

    Includes the hand-over at session end: span records and the trace's analysis.
    """
    configuration = DebugConfiguration(tracing_enabled=True, max_traces=1000)
    tracer = ExtensionTracer("bench", configuration)
    sessions = itertools.count()

    def run(traces: int, children: int) -> int:
        for _ in range(traces):
            info = SessionInfo(f"s{next(sessions)}", "bench", "test", 0.0, {"enable_tracing": True})
            tracer.begin_session(info)
            for _ in range(children):
                with tracer.start_span("op") as span:
                    span.set_tag("k", 1)
            tracer.end_session(info)
        return traces * (children + 1)

    return run, tracer.clear


def otel_captured() -> tuple[Workload, Callable[[], None]]:
    """OpenTelemetry SDK spans under a kari session, copied into its trace by our processor."""
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install_opentelemetry_capture(provider)
    manager = ExtensionDebugManager(
        "bench", configuration=DebugConfiguration(tracing_enabled=True, max_traces=1000)
    )
    otel = provider.get_tracer("bench")

    def run(traces: int, children: int) -> int:
        session_id = manager.start_debug_session({"enable_tracing": True})
        for _ in range(traces):
            with otel.start_as_current_span("root"):
                for _ in range(children):
                    with otel.start_as_current_span("op") as span:
                        span.set_attribute("k", 1)
        manager.stop_debug_session(session_id)
        return traces * (children + 1)

    def reset() -> None:
        exporter.clear()
        manager.get_tracer().clear()

    return run, reset


def measure(
    setup: tuple[Workload, Callable[[], None]], spans: int, children: int, repeat: int
) -> dict[str, float]:
    """Median and best nanoseconds per span over *repeat* rounds of about *spans* spans."""
    run, reset = setup
    traces = max(1, spans // (children + 1))
    run(max(1, traces // 10), children)  # warm up
    reset()
    samples = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            began = time.perf_counter_ns()
            made = run(traces, children)
            elapsed = time.perf_counter_ns() - began
        finally:
            gc.enable()
        reset()
        samples.append(elapsed / made)
    return {"median_ns": statistics.median(samples), "best_ns": min(samples)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000, help="spans per round")
    parser.add_argument("--children", type=int, default=9, help="child spans per trace")
    parser.add_argument("--repeat", type=int, default=5, help="rounds per contender")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    contenders: list[tuple[str, Callable[[], tuple[Workload, Callable[[], None]]]]] = [
        ("OpenTelemetry SDK + InMemorySpanExporter (baseline)", lambda: otel_sdk(args.children)),
        ("ExtensionTracer", kari),
        ("ExtensionTracer, a session per trace (records + analysis)", kari_per_session),
        ("ExtensionTracer, trace unsampled (rate 0.0)", lambda: kari(0.0)),
        ("OpenTelemetry SDK spans captured into a session", otel_captured),
    ]
    results: dict[str, dict[str, float]] = {}
    for label, factory in contenders:
        results[label] = measure(factory(), args.spans, args.children, args.repeat)
    baseline = next(iter(results.values()))["median_ns"]
    if args.json:
        print(json.dumps({"python": platform.python_version(), "results": results}, indent=2))
        return 0
    print(f"Python {platform.python_version()}, {args.spans} spans x {args.repeat} rounds,")
    print(f"traces of 1 root + {args.children} children, one tag per span\n")
    print("| contender | ns/span (median) | ns/span (best) | vs SDK |")
    print("|---|---:|---:|---:|")
    for label, result in results.items():
        ratio = result["median_ns"] / baseline
        print(f"| {label} | {result['median_ns']:,.0f} | {result['best_ns']:,.0f} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
