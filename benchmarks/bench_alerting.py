"""What alerting costs: rule evaluation per test, raising alerts with slow channels, a pytest run.

Every figure is a ratio against a baseline measured in the same run, on the same machine:

1. evaluating 6 rules on a live session vs starting + stopping that debug session;
2. ``raise_alert`` with a webhook channel that never answers vs with no channel at all
   (delivery runs on a background thread, so the caller should not notice);
3. ``pytest --kari-debug`` over 500 tests with 6 ``kari_alert_rules`` vs without rules.

Run: ``PYTHONPATH=. python benchmarks/bench_alerting.py`` (add ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pytest_kari_debug.alerting import AlertingConfiguration, WebhookNotificationChannel
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.rules import RuleStates, SessionFigures, evaluate_rules, parse_rules

RULES = [
    "duration_ms > 500",
    "cpu_ms > 1000",
    "peak_rss_mb > 4096",
    "errors > 0",
    "log.error > 0",
    "span:db_query.p95_ms > 50",
]


def _best(samples: list[float]) -> float:
    return statistics.median(samples)


def bench_rule_evaluation(repeat: int) -> tuple[float, float]:
    """(session start+stop, evaluation of RULES) in microseconds, median over *repeat*."""
    manager = ExtensionDebugManager(
        "bench-ext", configuration=DebugConfiguration(tracing_enabled=True)
    )
    rules = parse_rules(RULES)
    states = RuleStates()
    session_costs, rule_costs = [], []
    for _ in range(repeat):
        began = time.perf_counter()
        session_id = manager.start_debug_session()
        for n in range(20):
            manager.get_logger().info("work", n=n)
        with manager.get_tracer().start_span("db_query"):
            pass
        middle = time.perf_counter()
        figures = SessionFigures(manager, session_id, {"setup": 1.0, "call": 2.0})
        evaluate_rules(rules, figures, states)
        evaluated = time.perf_counter()
        manager.stop_debug_session(session_id)
        ended = time.perf_counter()
        session_costs.append((middle - began) + (ended - evaluated))
        rule_costs.append(evaluated - middle)
    return _best(session_costs) * 1e6, _best(rule_costs) * 1e6


class _Hang(BaseHTTPRequestHandler):
    release = threading.Event()

    def do_POST(self) -> None:
        self.release.wait(30)

    def log_message(self, format: str, *args: object) -> None:
        pass


def bench_raise_with_dead_channel(repeat: int) -> tuple[float, float]:
    """(raise_alert without channels, raise_alert with a hanging webhook) in microseconds."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hang)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    results = []
    try:
        for with_channel in (False, True):
            manager = ExtensionDebugManager(f"bench-{with_channel}")
            alerts = manager.get_alert_manager()
            alerts.configure(
                AlertingConfiguration(
                    default_cooldown_minutes=0,
                    max_alerts_per_hour=10**9,
                    notification_channels=["webhook"],
                    shutdown_timeout=0.1,
                )
            )
            if with_channel:
                alerts.add_notification_channel(
                    WebhookNotificationChannel("dead", "Dead", url, timeout=2.0, retries=0)
                )
            costs = []
            for n in range(repeat):
                began = time.perf_counter()
                alerts.raise_alert(f"bench_{n}", "high", "t", "m", "x", 1.0, 0.0)
                costs.append(time.perf_counter() - began)
            alerts.stop()
            results.append(_best(costs) * 1e6)
    finally:
        _Hang.release.set()
        server.shutdown()
        server.server_close()
    return results[0], results[1]


def bench_pytest_run(tests: int) -> tuple[float, float]:
    """(pytest --kari-debug without rules, with RULES): pytest's session seconds, best of 3."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        body = "".join(f"def test_{n}():\n    pass\n\n" for n in range(tests))
        (root / "test_many.py").write_text(body)
        timings = []
        for rules in ([], RULES):
            lines = "".join(f"    {rule}\n" for rule in rules)
            (root / "pytest.ini").write_text(
                "[pytest]\n" + (f"kari_alert_rules =\n{lines}" if rules else "")
            )
            command = [
                *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
                *("--kari-debug", "--kari-store=none", "--kari-fail-on=none", "--kari-trace"),
            ]
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            best = float("inf")
            for _ in range(3):
                done = subprocess.run(command, cwd=root, env=env, capture_output=True, check=True)
                # pytest's own session time: interpreter start-up is noise on a busy machine.
                found = re.search(rb"passed in ([0-9.]+)s", done.stdout)
                assert found is not None, done.stdout[-500:]
                best = min(best, float(found.group(1)))
            timings.append(best)
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer repetitions")
    quick = parser.parse_args().quick
    repeat = 200 if quick else 2000
    session_us, rules_us = bench_rule_evaluation(repeat)
    plain_us, dead_us = bench_raise_with_dead_channel(50 if quick else 500)
    run_plain, run_rules = bench_pytest_run(50 if quick else 500)
    rows = [
        ("6 rules evaluated on a live session (median)", f"{rules_us:.1f} us",
         "session start+stop", f"{session_us:.1f} us", rules_us / session_us),
        ("raise_alert with a webhook that never answers", f"{dead_us:.1f} us",
         "raise_alert, no channel", f"{plain_us:.1f} us", dead_us / plain_us),
        ("pytest --kari-debug, 6 kari_alert_rules", f"{run_rules:.2f} s",
         "pytest --kari-debug, no rules", f"{run_plain:.2f} s", run_rules / run_plain),
    ]  # fmt: skip
    print("| measured | value | baseline | value | ratio |")
    print("|---|---|---|---|---|")
    for what, value, base, base_value, ratio in rows:
        print(f"| {what} | {value} | {base} | {base_value} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
