"""What storing each finished test costs the test run: batched writes vs a commit per test.

In one process, in rotated rounds (medians), N test records (each like a trivial
``--kari-debug`` test's, with a few log records) go to a store four ways, each followed by a
stand-in for the next test's setup (``--setup-us`` of pure-Python work holding the GIL, as
pytest's own per-test work does):

- ``none``: no store (the baseline of the CPU figure);
- ``batched``: the plugin before: records collected on pytest's thread and written in one
  transaction per 200 tests or per second (``FLUSH_EVERY_TESTS`` / ``FLUSH_EVERY_SECONDS``);
- ``inline``: a commit per test on pytest's thread (the naive way: its whole cost in line);
- ``committer``: the plugin now (:mod:`pytest_kari_debug.plugin.committer`), on pytest's
  thread: SQLite committed in groups (``GROUP_COMMIT_S`` / ``GROUP_COMMIT_TESTS``; the run's
  journal, which readers import meanwhile, is the plugin's with or without a store and is not
  written here); PostgreSQL sent without waiting (pipeline mode), committed by the server
  while the next setup runs, its result read before the next call.

Per test it prints the time on pytest's thread spent storing (writing, sending, waiting: what
the test run waits for) and that thread's CPU time in it (steadier on a busy machine), and the
process CPU beyond ``none`` (all threads), for SQLite and,
with ``--url`` / ``KARI_DEBUG_TEST_POSTGRES_URL``, PostgreSQL (a fresh database, dropped at
the end).

    python benchmarks/store_commit.py [--tests 2000] [--rounds 5] [--setup-us 300] [--logs 2]
                                      [--url ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.plugin.committer import StoreCommitter
from pytest_kari_debug.plugin.state import KariState, PluginSettings
from pytest_kari_debug.storage import Store, dumps_record

BATCH_TESTS = 200
BATCH_SECONDS = 1.0


def record(n: int, logs: int = 2) -> dict[str, Any]:
    """A trivial test's record: phases, figures and *logs* log records."""
    now = time.time()
    return {
        "record_version": 3, "nodeid": f"test_gen_{n // 100:03d}.py::test_{n}",
        "extension_id": "bench", "extension_name": "bench", "outcome": "passed",
        "phases": {"setup": 0.05, "call": 0.02, "teardown": 0.03}, "duration_ms": 0.07,
        "cpu_ms": 0.06, "kari_overhead_ms": 0.4, "started_at": now, "finished_at": now,
        "session_id": uuid.uuid4().hex, "worker": None, "longrepr": None, "failure": None,
        "captured": [],
        "collected_data": {
            "logging": {"records": [
                {"ts": now, "level": "INFO", "message": f"step {i} of test {n}", "name": "bench",
                 "session_id": "s", "fields": {"i": i}} for i in range(logs)
            ], "dropped": 0},
            "metrics": {"resources": {"rss_bytes": 1 << 26, "cpu_ms": 0.06}, "records": []},
        },
        "extra": {},
    }  # fmt: skip


def busy(seconds: float) -> None:
    """Pure-Python work for *seconds* (it holds the GIL, as pytest's own work does)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class Way:
    """One way of storing the tests of one round; ``stored`` is the time spent storing,
    ``stored_cpu`` the CPU time of this thread spent storing."""

    def __init__(self, store: Store | None, run_id: int) -> None:
        self.store = store
        self.run_id = run_id
        self.stored = 0.0
        self.stored_cpu = 0.0

    def keep(self, test: dict[str, Any], text: str) -> None:
        """A test finished."""

    def before_call(self) -> None:
        """The next test's call phase starts."""

    def finish(self) -> None:
        """The run ends."""


class Batched(Way):
    def __init__(self, store: Store | None, run_id: int) -> None:
        super().__init__(store, run_id)
        self.pending: list[tuple[dict[str, Any], str]] = []
        self.last = time.monotonic()

    def keep(self, test: dict[str, Any], text: str) -> None:
        began, began_cpu = time.perf_counter(), time.thread_time()
        self.pending.append((test, text))
        if len(self.pending) >= BATCH_TESTS or time.monotonic() - self.last >= BATCH_SECONDS:
            self.finish()
        self.stored += time.perf_counter() - began
        self.stored_cpu += time.thread_time() - began_cpu

    def finish(self) -> None:
        assert self.store is not None
        self.last = time.monotonic()
        batch, self.pending = self.pending, []
        if batch:
            self.store.write_tests(self.run_id, [t for t, _ in batch], [x for _, x in batch])


class Inline(Way):
    def keep(self, test: dict[str, Any], text: str) -> None:
        assert self.store is not None
        began, began_cpu = time.perf_counter(), time.thread_time()
        self.store.write_tests(self.run_id, [test], [text])
        self.stored += time.perf_counter() - began
        self.stored_cpu += time.thread_time() - began_cpu


class Committer(Way):
    def __init__(self, store: Store | None, run_id: int) -> None:
        super().__init__(store, run_id)
        assert store is not None
        # Where the store is decides how the committer writes it (committed, or sent).
        location = store.label if store.kind == "postgresql" else store.path
        settings = PluginSettings(True, DebugConfiguration(), location, None, None, None)
        self.state = KariState(settings=settings, is_worker=False, run_id=run_id, store=store)
        self.committer = StoreCommitter(None, self.state, lambda: store)  # type: ignore[arg-type]

    def keep(self, test: dict[str, Any], text: str) -> None:
        began, began_cpu = time.perf_counter(), time.thread_time()
        self.committer.add_test(test, text)
        self.stored += time.perf_counter() - began
        self.stored_cpu += time.thread_time() - began_cpu

    def before_call(self) -> None:
        began, began_cpu = time.perf_counter(), time.thread_time()
        if self.committer.in_flight:
            self.committer.settle()
        self.stored += time.perf_counter() - began
        self.stored_cpu += time.thread_time() - began_cpu

    def finish(self) -> None:
        self.committer.close()
        assert not self.state.unstored, self.state.store_problem


WAYS: dict[str, Callable[[Store | None, int], Way]] = {
    "none": Way, "batched": Batched, "inline": Inline, "committer": Committer,
}  # fmt: skip


def one_round(
    way: str, store: Store, tests: int, setup_s: float, logs: int = 2
) -> tuple[float, float, float]:
    """Store *tests* records one *way*; the time and the CPU time spent storing on this
    thread, and the process CPU, in seconds."""
    run_id = store.begin_run({"uuid": uuid.uuid4().hex, "started_at": time.time(), "pid": 1})
    records = [dumps_record(record(n, logs))[:2] for n in range(tests)]
    storing = WAYS[way](store if way != "none" else None, run_id)
    cpu = time.process_time()
    for test, text in records:
        storing.keep(test, text)
        busy(setup_s)  # the next test's setup
        storing.before_call()
    storing.finish()
    return storing.stored, storing.stored_cpu, time.process_time() - cpu


def wal_pages_per_commit(folder: Path, tests: int, logs: int) -> float:
    """WAL pages a test's commit writes to a fresh SQLite store (its own checkpoints off, the
    first 200 tests not counted), each test with *logs* log records: the store's page
    writes, what a checkpoint syncs later."""
    for old in folder.glob("pages.db*"):
        old.unlink()
    store = Store(str(folder / "pages.db"))
    run_id = store.begin_run({"uuid": uuid.uuid4().hex, "started_at": time.time(), "pid": 1})
    with store.transaction() as db:
        db.execute("PRAGMA wal_autocheckpoint = 0")
    records = [dumps_record(record(n, logs))[:2] for n in range(tests + 200)]
    wal = folder / "pages.db-wal"
    try:
        for test, text in records[:200]:
            store.write_tests(run_id, [test], [text])
        before = wal.stat().st_size
        for test, text in records[200:]:
            store.write_tests(run_id, [test], [text])
        frame = 24 + 4096  # a WAL frame: its header and one page
        return (wal.stat().st_size - before) / frame / tests
    finally:
        store.close()


def measure(location: str, args: argparse.Namespace) -> dict[str, tuple[float, float, float]]:
    """Per-test figures of every way on the store at *location*, in µs: time and CPU time
    spent storing on pytest's thread, and process CPU beyond ``none`` (medians over the
    rounds)."""
    store = Store(location)
    order = list(WAYS)
    found: dict[str, list[tuple[float, float, float]]] = {way: [] for way in order}
    try:
        one_round("committer", store, 50, args.setup_us / 1e6)  # warm-up
        for number in range(args.rounds):
            for way in order[number % len(order) :] + order[: number % len(order)]:
                found[way].append(one_round(way, store, args.tests, args.setup_us / 1e6, args.logs))
    finally:
        store.close()
    result = {}
    for way in order:
        stored = statistics.median(s for s, _, _ in found[way]) / args.tests * 1e6
        thread = statistics.median(t for _, t, _ in found[way]) / args.tests * 1e6
        cpu = statistics.median(
            c - base for (_, _, c), (_, _, base) in zip(found[way], found["none"], strict=True)
        )
        result[way] = (stored, thread, cpu / args.tests * 1e6)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--setup-us", type=float, default=300.0, help="next test's setup work")
    parser.add_argument("--logs", type=int, default=2, help="log records in each test's record")
    parser.add_argument("--url", default=os.environ.get("KARI_DEBUG_TEST_POSTGRES_URL", ""))
    args = parser.parse_args(argv)
    print(f"{args.tests} test records ({args.logs} log records each), {args.rounds} rotated"
          f" rounds (medians), {args.setup_us:.0f} µs of setup work between tests")  # fmt: skip
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(str(Path(tmp) / "kari.db"), args)
        pages = [wal_pages_per_commit(Path(tmp), args.tests, logs) for logs in (0, 2)]
    if args.url:
        import psycopg

        name = f"kari_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.url, autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        try:
            results["postgresql"] = measure(
                urlunsplit(urlsplit(args.url)._replace(path=f"/{name}")), args
            )
        finally:
            with psycopg.connect(args.url, autocommit=True) as db:
                db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"SQLite: WAL pages written per test's commit: {pages[0]:.2f} (no log records),"
          f" {pages[1]:.2f} (two log records)")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} at the end; per test, µs:")
    print(f"{'store':<12}{'way':<11}{'on pytest thread':>18}{'its CPU':>9}{'process CPU':>13}"
          f"{'thread vs batched':>19}{'CPU vs batched':>16}")  # fmt: skip
    for backend, ways in results.items():
        base, base_cpu = ways["batched"][:2]
        for way, (stored, thread, cpu) in ways.items():
            if way == "none":
                continue
            print(f"{backend:<12}{way:<11}{stored:>18.1f}{thread:>9.1f}{cpu:>13.1f}"
                  f"{stored / base if base else float('nan'):>18.2f}x"
                  f"{thread / base_cpu if base_cpu else float('nan'):>15.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
