"""Nanoseconds per log record: ExtensionLogger against stdlib logging and structlog.

All contenders run in the same process, in rotated rounds, each keeping its records in memory
(nothing is formatted to text or written out):

- ``kari (in a session)``: ``logger.info("msg", a=1, b="x")`` on an ExtensionLogger inside a
  debug session (record kept in the ring and in the session's slice: session, correlation /
  user / tenant context, thread, task, redaction check of the fields);
- ``kari (no session)``: the same call outside any debug session;
- ``stdlib logging``: ``logging.info("msg", extra={"a": 1, "b": "x"})`` on the root logger
  with one handler appending the LogRecord to a ``deque(maxlen=10_000)`` (the baseline);
- ``structlog``: ``log.info("msg", a=1, b="x")`` with merge_contextvars, add_log_level and
  TimeStamper, the event dict appended to a deque by an in-memory logger;
- ``stdlib captured by kari``: the stdlib call again with KariLogHandler also attached to the
  root logger inside a debug session (what the pytest plugin adds to a test's stdlib logging).

The figure is the best round's mean time per call; the ratio is against stdlib logging.

    python benchmarks/logging_bench.py [--records 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.logger import KariLogHandler
from pytest_kari_debug.manager import ExtensionDebugManager

LIMIT = 10_000


class DequeHandler(logging.Handler):
    """Keeps each stdlib LogRecord in a bounded deque."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sink: deque[logging.LogRecord] = deque(maxlen=LIMIT)

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)


class DequeLogger:
    """A structlog logger keeping each event dict in a bounded deque."""

    def __init__(self, sink: deque[dict[str, object]]) -> None:
        self.sink = sink

    def msg(self, **event: object) -> None:
        self.sink.append(event)

    debug = info = warning = error = critical = msg


def kari_contender(in_session: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    manager = ExtensionDebugManager(
        "bench", configuration=DebugConfiguration(max_log_entries=LIMIT)
    )
    logger = manager.get_logger()
    session_id = manager.start_debug_session() if in_session else None

    def loop(n: int) -> None:
        info = logger.info
        for _ in range(n):
            info("msg", a=1, b="x")

    def close() -> None:
        if session_id is not None:
            manager.stop_debug_session(session_id)

    return loop, close


def stdlib_contender(captured: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    handler = DequeHandler()
    root.addHandler(handler)
    extra = {"a": 1, "b": "x"}
    manager, session_id, kari = None, None, None
    if captured:
        manager = ExtensionDebugManager(
            "bench-capture", configuration=DebugConfiguration(max_log_entries=LIMIT)
        )
        session_id = manager.start_debug_session()
        kari = KariLogHandler()
        root.addHandler(kari)

    def loop(n: int) -> None:
        info = logging.info
        for _ in range(n):
            info("msg", extra=extra)

    def close() -> None:
        root.removeHandler(handler)
        if kari is not None:
            root.removeHandler(kari)
        if manager is not None and session_id is not None:
            manager.stop_debug_session(session_id)

    return loop, close


def structlog_contender() -> tuple[Callable[[int], None], Callable[[], None]] | None:
    try:
        import structlog
    except ImportError:
        return None
    sink: deque[dict[str, object]] = deque(maxlen=LIMIT)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt=None, utc=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=lambda *args: DequeLogger(sink),
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger()

    def loop(n: int) -> None:
        info = log.info
        for _ in range(n):
            info("msg", a=1, b="x")

    return loop, structlog.reset_defaults


def measure(
    make: Callable[[], tuple[Callable[[int], None], Callable[[], None]] | None], records: int
) -> float | None:
    made = make()
    if made is None:
        return None
    loop, close = made
    try:
        loop(min(records, 10_000))  # warm up: caches, buffers filled to their limit
        gc.collect()
        began = time.perf_counter_ns()
        loop(records)
        return (time.perf_counter_ns() - began) / records
    finally:
        close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    contenders: dict[str, Callable[[], tuple[Callable[[int], None], Callable[[], None]] | None]]
    contenders = {
        "kari (in a session)": lambda: kari_contender(True),
        "kari (no session)": lambda: kari_contender(False),
        "stdlib logging": lambda: stdlib_contender(False),
        "structlog": structlog_contender,
        "stdlib captured by kari": lambda: stdlib_contender(True),
    }
    best: dict[str, float] = {}
    names = list(contenders)
    for round_number in range(options.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            figure = measure(contenders[name], options.records)
            if figure is not None:
                best[name] = min(best.get(name, figure), figure)
    baseline = best["stdlib logging"]
    print(f"{options.records:,} records x {options.rounds} rounds, Python {sys.version.split()[0]}")
    print()
    print("| logger | ns per record | vs stdlib logging |")
    print("|---|---:|---:|")
    for name in names:
        if name in best:
            print(f"| {name} | {best[name]:,.0f} | {best[name] / baseline:.2f}x |")
        else:
            print(f"| {name} | not installed | |")


if __name__ == "__main__":
    main()
