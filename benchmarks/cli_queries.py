"""How long ``kari-debug`` commands take on a large store.

Writes a store through the plugin's own write path (``Store.write_tests``) with T tests
(default 2,000) of 50 log records, 20 metric points and one error each (about 140,000
records), then times each command in-process (median of R rounds, default 5) and compares it
with a baseline measured in the same run: reading every log record of the store once (one
``SELECT`` and a ``json.loads`` per record), the least any full scan of the logs costs.

    python benchmarks/cli_queries.py [--tests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_kari_debug.cli import main
from pytest_kari_debug.storage import Store


def make_store(path: Path, tests: int) -> int:
    """Write *tests* synthetic test records of extension bench-ext; return the record count."""
    store = Store(path)
    run_id = store.begin_run({"uuid": "bench", "started_at": time.time()})
    now = time.time()
    batch = []
    for number in range(tests):
        session = f"s{number:06d}"
        logs = [
            {"ts": now + number + i / 100, "level": ("INFO", "WARNING", "ERROR")[i % 3],
             "message": f"request {i} of test {number} took {i * 3} ms", "name": "kari.bench",
             "session_id": session, "fields": {"attempt": i, "status": 200 + i % 5},
             "correlation_id": f"req-{number}"}
            for i in range(50)
        ]  # fmt: skip
        metrics = [
            {"ts": now + number + i / 100, "name": f"metric_{i % 4}", "value": float(i),
             "unit": "ms", "session_id": session}
            for i in range(20)
        ]  # fmt: skip
        errors = [
            {"ts": now + number, "error_type": "ValueError", "name": "ValueError",
             "error_message": f"bad value {number}", "fingerprint": f"fp{number % 25:04d}",
             "level": "error", "session_id": session}
        ]  # fmt: skip
        batch.append(
            {
                "nodeid": f"tests/test_bench.py::test_{number}",
                "extension_id": "bench-ext",
                "outcome": "passed",
                "phases": {"setup": 0.1, "call": 1.0 + number % 7, "teardown": 0.1},
                "duration_ms": 1.2 + number % 7,
                "started_at": now + number,
                "finished_at": now + number + 0.01,
                "session_id": session,
                "collected_data": {
                    "logging": {"records": logs, "dropped": 0},
                    "metrics": {"records": metrics, "dropped": 0, "resources": {"cpu_ms": 1.0}},
                    "error_tracking": {"records": errors, "dropped": 0},
                },
            }
        )
        if len(batch) == 200:
            store.write_tests(run_id, batch)
            batch = []
    if batch:
        store.write_tests(run_id, batch)
    store.finish_run(run_id, finished_at=time.time(), exit_status=0, data={})
    count = sum(store.record_counts().values())
    store.close()
    return count


def baseline(path: Path) -> None:
    """Read every log record once: the floor of any full scan."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        for (data,) in db.execute("SELECT data FROM records WHERE kind='log'"):
            json.loads(data)


def timed(action: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        action()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def command(path: Path, *args: str) -> Callable[[], object]:
    def run() -> None:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            code = main(["--store", str(path), "-e", "bench-ext", *args])
        if code != 0:
            raise SystemExit(f"kari-debug {' '.join(args)} exited {code}: {sink.getvalue()}")

    return run


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kari.db"
        records = make_store(path, options.tests)
        base = timed(lambda: baseline(path), options.rounds)
        commands = {
            "logs show --limit 50": ("logs", "show", "--limit", "50"),
            "logs show --level error --limit 50": ("logs", "show", "--level", "error"),
            "logs show --grep 'of test 7 took' (full scan)": (
                "logs",
                "show",
                "--grep",
                "of test 7 took",
            ),
            "logs show --correlation-id req-7": ("logs", "show", "--correlation-id", "req-7"),
            "metrics show --hours 24": ("metrics", "show", "--hours", "24"),
            "errors patterns": ("errors", "patterns"),
            "status": ("status",),
            "runs list": ("runs", "list"),
            "export --format csv --kind error": ("export", "--format", "csv", "--kind", "error"),
        }
        print(f"store: {records:,} records of {options.tests:,} tests; median of {options.rounds}")
        print(f"baseline (read every log record once): {base * 1000:.1f} ms")
        print("| command | ms | vs baseline |")
        print("| --- | ---: | ---: |")
        for label, args in commands.items():
            seconds = timed(command(path, *args), options.rounds)
            print(f"| `{label}` | {seconds * 1000:.1f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main_bench()
