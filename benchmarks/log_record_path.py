"""What one captured stdlib log record costs the plugin, stage by stage, per test.

A test that logs pays for each record it keeps at three places; this measures each one as the
difference between a debug session (or a stored test) with *K* stdlib records and the same
without any, in thread CPU time (what load from other processes disturbs least), best of
rotated rounds:

- ``capture``: ``logging.getLogger(...).warning("caught %s", n)`` with ``KariLogHandler``
  attached next to a handler that keeps the record (pytest's own capture does as much),
  against the same call without ``KariLogHandler``;
- ``session end``: ``stop_debug_session`` of the session that holds the records (each one
  becomes the dict of the ``logging`` data contract);
- ``store``: ``Store.write_tests`` of a test record holding that session's collected data, on
  a fresh SQLite store, against the same record without log records (one ``records`` row per
  log record, with its indexes, in the test's transaction).

Per stage it prints µs per record and per test for K records per test::

    python benchmarks/log_record_path.py [--tests 500] [--rounds 5] [--records 1 3 20]

``--instructions`` counts instead, with callgrind (valgrind installed; load-independent), what
one stdlib WARNING costs the capture and its session's end: sessions with one record each
against sessions without, the slope from 200 to 1,200 sessions, the garbage collector off and
string hashing fixed (what stays is a few hundred instructions of noise from the sessions'
random ids). ``--baseline-ref REF`` counts the package at commit *REF* the same way::

    python benchmarks/log_record_path.py --instructions [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(
    0, os.environ.get("KARI_PACKAGE_ROOT") or str(Path(__file__).resolve().parent.parent)
)

from pytest_kari_debug.logger import KariLogHandler
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.storage import Store

LOGGER = logging.getLogger("bench.mixed")


class KeepHandler(logging.Handler):
    """Keeps each record, as pytest's capture handler does."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.kept: deque[logging.LogRecord] = deque(maxlen=1000)

    def emit(self, record: logging.LogRecord) -> None:
        self.kept.append(record)


class FormatHandler(KeepHandler):
    """Formats each record before keeping it (sets ``record.message``), as pytest's do."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)
        super().emit(record)


def _sessions(
    manager: ExtensionDebugManager, tests: int, records: int, capture: KariLogHandler | None
) -> tuple[float, float, list[dict[str, Any]]]:
    """Thread CPU seconds of the tests' logging and of their sessions' ends; their data."""
    if capture is not None:
        logging.getLogger().addHandler(capture)
    logged = ended = 0.0
    collected = []
    try:
        for n in range(tests):
            session_id = manager.start_debug_session(name=f"test_{n}")
            started = time.thread_time()
            for _ in range(records):
                LOGGER.warning("caught %s", n)
            stopping = time.thread_time()
            session = manager.stop_debug_session(session_id)
            ended += time.thread_time() - stopping
            logged += stopping - started
            collected.append(session.collected_data)
    finally:
        if capture is not None:
            logging.getLogger().removeHandler(capture)
    return logged, ended, collected


def _stored(folder: Path, collected: list[dict[str, Any]]) -> float:
    """Thread CPU seconds of writing one test record per collected data, one by one."""
    store = Store(folder / f"kari-{os.urandom(4).hex()}.db")
    run_id = store.begin_run({"uuid": os.urandom(8).hex(), "started_at": time.time()})
    tests = []
    for n, data in enumerate(collected):
        now = time.time()
        tests.append(
            {
                "record_version": 2, "nodeid": f"test_gen.py::test_{n}", "extension_id": "bench",
                "outcome": "passed", "phases": {"setup": 0.1, "call": 1.0, "teardown": 0.1},
                "duration_ms": 1.1, "started_at": now, "finished_at": now,
                "session_id": f"s{n}", "collected_data": data, "extra": {},
            }
        )  # fmt: skip
    started = time.thread_time()
    for test in tests:
        store.write_tests(run_id, [test])
    spent = time.thread_time() - started
    store.close()
    return spent


def measure(tests: int, rounds: int, records: int, folder: Path) -> dict[str, float]:
    """µs per record of each stage, best of *rounds* rotated rounds."""
    manager = ExtensionDebugManager("bench")
    logging.getLogger().setLevel(logging.WARNING)
    keep = KeepHandler()
    logging.getLogger().addHandler(keep)
    LOGGER.propagate = True
    best: dict[str, float] = {}

    def with_kari() -> dict[str, float]:
        logged, ended, collected = _sessions(manager, tests, records, KariLogHandler())
        return {"capture+": logged, "end+": ended, "store+": _stored(folder, collected)}

    def without() -> dict[str, float]:
        logged, ended, collected = _sessions(manager, tests, records, None)
        return {"capture-": logged, "end-": ended, "store-": _stored(folder, collected)}

    steps: list[Callable[[], dict[str, float]]] = [with_kari, without]
    try:
        for round_ in range(rounds):
            for step in steps if round_ % 2 else reversed(steps):
                gc.collect()
                for key, value in step().items():
                    best[key] = min(best.get(key, float("inf")), value)
    finally:
        logging.getLogger().removeHandler(keep)
        manager.stop()
    per = 1e6 / (tests * records)
    stages = ("capture", "end", "store")
    return {stage: (best[f"{stage}+"] - best[f"{stage}-"]) * per for stage in stages}


def _one_record_sessions(capture: bool, sessions: int) -> None:
    """*sessions* debug sessions, each with one stdlib WARNING, as a test's (the measured
    process of ``--instructions``)."""
    from pytest_kari_debug.context import current_session

    gc.disable()
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    root.addHandler(FormatHandler())
    handler = KariLogHandler()
    if capture:
        root.addHandler(handler)
    manager = ExtensionDebugManager("bench")
    for n in range(sessions):
        session_id = manager.start_debug_session(name=f"test_gen.py::test_{n}")
        handler.fallback = current_session()
        try:
            raise ValueError(n)
        except ValueError:
            LOGGER.warning("caught %s", 10_000)
        manager.stop_debug_session(session_id)
    manager.stop()


def _instructions(package_root: str | None, capture: bool, sessions: int, folder: Path) -> int:
    out = folder / f"callgrind-{capture}-{sessions}.out"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if package_root is not None:
        env["KARI_PACKAGE_ROOT"] = package_root
    inner = [sys.executable, __file__, "--inner", "capture" if capture else "none", str(sessions)]
    subprocess.run(inner, env=env, check=True)  # (bytecode caches written before counting)
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *inner],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    for line in out.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no summary in {out}")


def count_instructions(baseline_ref: str) -> None:
    """Print the instructions of one captured record (capture and session end)."""
    from store_backends import extract

    with tempfile.TemporaryDirectory() as tmp:
        trees: dict[str, str | None] = {"this tree": None}
        if baseline_ref:
            trees[baseline_ref] = extract(baseline_ref, Path(tmp) / "before")
        print("| package | instructions a record (capture + session end) |\n|---|---:|")
        for label, root in trees.items():
            per = {
                capture: (
                    _instructions(root, capture, 1200, Path(tmp))
                    - _instructions(root, capture, 200, Path(tmp))
                )
                / 1000
                for capture in (True, False)
            }
            print(f"| {label} | {per[True] - per[False]:,.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--baseline-ref", default="", help="with --instructions: also at REF")
    parser.add_argument("--inner", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--tests", type=int, default=500, help="tests (sessions) per round")
    parser.add_argument("--rounds", type=int, default=5, help="rotated rounds (best is kept)")
    parser.add_argument("--records", type=int, nargs="+", default=[1, 3, 20])
    options = parser.parse_args(argv)
    if options.inner:
        _one_record_sessions(options.inner[0] == "capture", int(options.inner[1]))
        return 0
    if options.instructions:
        count_instructions(options.baseline_ref)
        return 0
    print(
        f"{options.tests} tests x {options.rounds} rounds, Python {sys.version.split()[0]};"
        f" load {os.getloadavg()[0]:.1f}\n"
    )
    print("| records per test | stage | µs per record | µs per test |")
    print("|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for records in options.records:
            figures = measure(options.tests, options.rounds, records, Path(tmp))
            for stage, label in (
                ("capture", "capture (KariLogHandler)"),
                ("end", "session end (record dicts)"),
                ("store", "store (records rows)"),
            ):
                each = figures[stage]
                print(f"| {records} | {label} | {each:.1f} | {each * records:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
