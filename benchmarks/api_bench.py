"""REST API and live dashboard: request times, log stream latency and the cost of watching.

Each figure is put beside a baseline measured in the same run:

* requests: the median time of each endpoint over real HTTP on 127.0.0.1 against a manager
  holding 10,000 log records, 20,000 metric points, 200 errors and 50 alerts, beside building
  the same full dashboard view in-process (``get_dashboard_data()``, no HTTP);
* log stream: the time from a log call to its server-sent event at a client (median and p95),
  beside the stream's poll interval; and how fast a burst of records reaches a client;
* watching: the wall time of many debug sessions (each logging and recording metrics) while
  the server runs, while a client polls like the page does, follows the log stream, or polls
  ten times faster, beside the same sessions with no server at all.

    python benchmarks/api_bench.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from pytest_kari_debug.api import PREFIX, ApiServer, StreamSettings
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.dashboard import ExtensionDebugDashboard
from pytest_kari_debug.manager import ExtensionDebugManager

EXT = "bench-ext"


def _manager(extension_id: str = EXT) -> ExtensionDebugManager:
    configuration = DebugConfiguration(max_log_entries=20_000, max_metrics=50_000)
    manager = ExtensionDebugManager(extension_id, configuration=configuration)
    return manager


def _fill(manager: ExtensionDebugManager) -> None:
    log, metrics = manager.get_logger(), manager.get_metrics_collector()
    errors, alerts = manager.get_error_tracker(), manager.get_alert_manager()
    for index in range(10_000):
        level = ("info", "debug", "warning", "error")[index % 4]
        getattr(log, level)(f"request {index} handled", route=f"/items/{index % 50}", ms=index % 97)
    for index in range(20_000):
        metrics.record_metric("response_time", float(index % 300), "ms", route=str(index % 5))
    for index in range(200):
        errors.record_error("ValueError", f"invalid input {index % 7}")
    for index in range(50):
        alerts.raise_alert(f"rule_{index}", "medium", f"alert {index}", "over", "x", 2.0, 1.0)


def _median_ms(func: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        func()
        times.append((time.perf_counter() - began) * 1000.0)
    return statistics.median(times)


def requests_table(rounds: int) -> list[tuple[str, float, float]]:
    """(what, ms, ratio to the in-process full view) for each endpoint."""
    manager = _manager()
    _fill(manager)
    dashboard = ExtensionDebugDashboard(manager)
    baseline = _median_ms(dashboard.get_dashboard_data, rounds)
    rows = [("in-process `get_dashboard_data()` (baseline)", baseline, 1.0)]
    with (
        ApiServer(manager=manager, include_registry=False) as server,
        httpx.Client(base_url=server.url + PREFIX, timeout=60) as client,
    ):
        cases: list[tuple[str, Callable[[], Any]]] = [
            ("GET /dashboard/{id} (every view)", lambda: client.get(f"/dashboard/{EXT}")),
            ("GET /dashboard/{id}/overview", lambda: client.get(f"/dashboard/{EXT}/overview")),
            ("GET /dashboard/{id}/logs?limit=100",
             lambda: client.get(f"/dashboard/{EXT}/logs", params={"limit": 100})),
            ("POST /dashboard/{id}/logs/search (text, level)",
             lambda: client.post(f"/dashboard/{EXT}/logs/search",
                                 json={"query": "request 99", "level": "warning"})),
            ("POST /dashboard/{id}/metrics/realtime (3 names)",
             lambda: client.post(f"/dashboard/{EXT}/metrics/realtime",
                                 json={"names": ["cpu_percent", "memory_mb", "response_time"]})),
            ("GET /dashboard/{id}/metrics (1 h)", lambda: client.get(f"/dashboard/{EXT}/metrics")),
            ("GET /alerts/{id}/statistics", lambda: client.get(f"/alerts/{EXT}/statistics")),
            ("GET /export/{id}/logs?format=csv (10,000 records)",
             lambda: client.get(f"/export/{EXT}/logs", params={"format": "csv"})),
            ("GET /export/{id}/all?format=prometheus",
             lambda: client.get(f"/export/{EXT}/all", params={"format": "prometheus"})),
            ("GET /export/{id}/all (JSON)", lambda: client.get(f"/export/{EXT}/all")),
        ]  # fmt: skip
        for what, call in cases:
            assert call().status_code == 200, what
            ms = _median_ms(call, rounds)
            rows.append((what, ms, ms / baseline))
    manager.stop()
    return rows


def stream_figures(samples: int) -> dict[str, float]:
    """Latency of one record (median, p95) and a burst's delivery rate, at the default poll."""
    manager = _manager("stream-bench")
    settings = StreamSettings(queue_size=100_000)
    latencies: list[float] = []
    with ApiServer(manager=manager, include_registry=False, stream=settings) as server:
        url = f"{server.url}{PREFIX}/dashboard/stream-bench/logs/stream"
        with httpx.Client(timeout=60) as client, client.stream("GET", url) as response:
            lines = response.iter_lines()
            for index in range(samples):
                sent = time.perf_counter()
                manager.get_logger().info(f"ping {index}")
                for line in lines:
                    if line.startswith("data: ") and f'"ping {index}"' in line:
                        latencies.append((time.perf_counter() - sent) * 1000.0)
                        break
                time.sleep((index * 0.037) % settings.poll_seconds)  # anywhere in a poll
            burst = 20_000
            began = time.perf_counter()
            for index in range(burst):
                manager.get_logger().info(f"burst {index}")
            for line in lines:
                if line.startswith("data: ") and f'"burst {burst - 1}"' in line:
                    break
            took = time.perf_counter() - began
    manager.stop()
    latencies.sort()
    return {
        "poll_ms": settings.poll_seconds * 1000.0,
        "median_ms": statistics.median(latencies),
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "burst_records_per_s": burst / took,
    }


def _sessions(manager: ExtensionDebugManager, count: int) -> float:
    log, metrics = manager.get_logger(), manager.get_metrics_collector()
    began = time.perf_counter()
    for index in range(count):
        with manager.debug_session(name=f"test_{index}"):
            for step in range(5):
                log.info("step done", step=step, test=index)
            metrics.record_metric("response_time", float(index % 100), "ms")
            metrics.record_metric("items", float(step), "count")
    return time.perf_counter() - began


def _watched(count: int, *, follow_stream: bool, polls: bool, every: float) -> float:
    """Wall time of *count* sessions while a server runs, optionally watched."""
    manager = _manager("watch-bench")
    stop = threading.Event()
    with ApiServer(manager=manager, include_registry=False) as server:

        def follow(url: str = server.url) -> None:
            path = f"{url}{PREFIX}/dashboard/watch-bench/logs/stream"
            with httpx.Client(timeout=60) as client, client.stream("GET", path) as response:
                for _ in response.iter_raw():
                    if stop.is_set():
                        return

        def poll(url: str = server.url) -> None:
            with httpx.Client(base_url=url + PREFIX, timeout=60) as client:
                tick = 0
                while not stop.wait(every):  # the page: realtime each 1 s, the views each 2.5 s
                    client.post("/dashboard/watch-bench/metrics/realtime",
                                json={"names": ["cpu_percent", "memory_mb"]})  # fmt: skip
                    if tick % 3 == 0:
                        client.get("/dashboard/watch-bench?log_limit=1")
                    tick += 1

        threads = []
        if follow_stream:
            threads.append(threading.Thread(target=follow))
        if polls:
            threads.append(threading.Thread(target=poll))
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        took = _sessions(manager, count)
        stop.set()
        manager.get_logger().info("wake the follower")
        for thread in threads:
            thread.join(10)
    manager.stop()
    return took


def watching_figures(count: int, rounds: int) -> list[tuple[str, float, float]]:
    """(what, s, ratio) for *count* sessions: no server (baseline), then served and watched."""
    quiet = []
    for _ in range(rounds):
        manager = _manager("watch-bench")
        quiet.append(_sessions(manager, count))
        manager.stop()
    base = statistics.median(quiet)
    rows = [("no server (baseline)", base, 1.0)]
    for what, options in (
        ("served, nobody watching", {"follow_stream": False, "polls": False, "every": 1.0}),
        ("the page's polling (no log stream)", {"follow_stream": False, "polls": True,
                                                "every": 1.0}),
        ("the page: polling and following every record", {"follow_stream": True, "polls": True,
                                                          "every": 1.0}),
        ("polling 10x faster than the page, and the stream", {"follow_stream": True,
                                                              "polls": True, "every": 0.1}),
    ):  # fmt: skip
        took = statistics.median(_watched(count, **options) for _ in range(rounds))  # type: ignore[arg-type]
        rows.append((what, took, took / base))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="Repetitions per figure (median)")
    parser.add_argument("--sessions", type=int, default=20_000, help="Sessions in the watch test")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON")
    args = parser.parse_args()
    rows = requests_table(args.rounds)
    stream = stream_figures(200)
    watching = watching_figures(args.sessions, max(1, args.rounds // 2))
    if args.json:
        print(json.dumps({"requests": rows, "stream": stream, "watching": watching}, indent=1))
        return
    print("| request | ms | vs in-process view |\n| --- | ---: | ---: |")
    for what, ms, ratio in rows:
        print(f"| {what} | {ms:.1f} | {ratio:.2f}x |")
    print(
        f"\nlog stream: a record reaches the client in {stream['median_ms']:.0f} ms median,"
        f" {stream['p95_ms']:.0f} ms p95 (poll interval {stream['poll_ms']:.0f} ms);"
        f" a burst arrives at {stream['burst_records_per_s']:,.0f} records/s"
    )
    print(
        f"\n| {args.sessions} sessions (5 log records, 2 metric points each) | s | vs no server |"
    )
    print("| --- | ---: | ---: |")
    for what, seconds, ratio in watching:
        print(f"| {what} | {seconds:.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
