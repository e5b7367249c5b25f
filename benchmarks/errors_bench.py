"""Microseconds per recorded error: ErrorTracker against formatting the traceback alone.

The baseline is what any logger does with ``exc_info``: ``traceback.format_exception`` of the
same exception. The contenders, in the same process and rotated rounds:

- ``record_exception`` of an exception raised three in-app frames deep (frames, in-app
  detection, fingerprint, classification, rendering, group counters, buffer), outside a debug
  session (inside one, recording the same exception object again is a no-op by design);
- ``record_error`` without a stack (message normalization and grouping only);
- the same two on a ``RecursionError`` (about 1,000 frames; the tracker keeps 50).

The figure is the best round's mean time per call; the ratio is against the baseline of the
same exception.

    python benchmarks/errors_bench.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager


def _load(item_id: int) -> None:
    _fetch(item_id)


def _fetch(item_id: int) -> None:
    _check(item_id)


def _check(item_id: int) -> None:
    raise KeyError(f"item {item_id} missing")


def _recurse(n: int) -> int:
    return _recurse(n + 1)


def _caught(func: Callable[[int], object]) -> BaseException:
    try:
        func(0)
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def _time(call: Callable[[], object], calls: int) -> float:
    gc.collect()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    # max_errors far above the calls: the numbers include keeping every record.
    manager = ExtensionDebugManager("bench", configuration=DebugConfiguration(max_errors=10**6))
    tracker = manager.get_error_tracker()
    shallow = _caught(_load)
    deep = _caught(_recurse)
    deep_calls = max(1, args.calls // 10)
    contenders: dict[str, tuple[Callable[[], object], int, str]] = {
        "format_exception (3 frames)": (
            lambda: traceback.format_exception(type(shallow), shallow, shallow.__traceback__),
            args.calls,
            "format_exception (3 frames)",
        ),
        "record_exception (3 frames)": (
            lambda: tracker.record_exception(shallow),
            args.calls,
            "format_exception (3 frames)",
        ),
        "record_error (no stack)": (
            lambda: tracker.record_error("KeyError", "item 42 missing in /srv/db.sqlite"),
            args.calls,
            "format_exception (3 frames)",
        ),
        "format_exception (RecursionError)": (
            lambda: traceback.format_exception(type(deep), deep, deep.__traceback__),
            deep_calls,
            "format_exception (RecursionError)",
        ),
        "record_exception (RecursionError)": (
            lambda: tracker.record_exception(deep),
            deep_calls,
            "format_exception (RecursionError)",
        ),
    }
    best: dict[str, float] = {}
    for round_index in range(args.rounds):
        names = list(contenders)
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            call, calls, _ = contenders[name]
            figure = _time(call, calls)
            best[name] = min(best.get(name, figure), figure)
    print(f"| {'contender':<36} | {'us per call':>11} | {'ratio':>6} |")
    print(f"|{'-' * 38}|{'-' * 13}|{'-' * 8}|")
    for name, (_, _, baseline) in contenders.items():
        ratio = best[name] / best[baseline]
        print(f"| {name:<36} | {best[name]:>11.1f} | {ratio:>5.2f}x |")
    print(f"\nPython {sys.version.split()[0]}, {args.calls} calls ({deep_calls} deep), best of"
          f" {args.rounds} rounds; recorded {tracker.total_recorded} errors in"
          f" {len(tracker.groups)} groups")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
