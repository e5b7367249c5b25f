"""What importing the plugin costs a run, in CPU time per module (``-X importtime`` in CPU).

``-X importtime`` reports wall time, which a busy machine inflates several times over. This
runs pytest on N trivial tests in fresh processes (bytecode caches on) with every module's
import timed by the importing thread's CPU clock (self and cumulative, like ``-X importtime``),
and prints the medians over the runs: the package's own modules in all, then the modules
that cost most, cumulative::

    python benchmarks/import_cpu.py [--tests 100] [--runs 5] [--top 30] [-- PYTEST ARGS]

The pytest arguments default to ``--kari-debug``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PACKAGE = "pytest_kari_debug"


def _child(out: str, args: list[str]) -> None:
    """Run pytest with the import machinery's module loading timed; write the times."""
    import importlib._bootstrap as bootstrap  # the loader every import goes through

    stack: list[float] = []
    times: dict[str, tuple[float, float]] = {}
    load = bootstrap._load_unlocked  # type: ignore[attr-defined]

    def timed_load(spec: Any) -> Any:
        started = time.thread_time()
        stack.append(0.0)
        try:
            return load(spec)
        finally:
            nested = stack.pop()
            total = time.thread_time() - started
            times[spec.name] = (total - nested, total)
            if stack:
                stack[-1] += total

    bootstrap._load_unlocked = timed_load  # type: ignore[attr-defined]
    import pytest

    try:
        pytest.main(args)
    finally:
        Path(out).write_text(json.dumps(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help="pytest arguments (default: --kari-debug)")
    options = parser.parse_args()
    if options.child:
        _child(options.child, options.args)
        return
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    runs: list[dict[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "pytest.ini").write_text("[pytest]\n")
        body = "".join(f"def test_{n}():\n    pass\n\n" for n in range(options.tests))
        (folder / "test_trivial.py").write_text(body)
        out = folder / "imports.json"
        args = options.args or ["--kari-debug"]
        for run in range(options.runs + 1):  # the first writes the bytecode caches
            command = [sys.executable, __file__, "--child", str(out), "--", "-q", "-p",
                       "no:cacheprovider", *args]  # fmt: skip
            subprocess.run(command, cwd=folder, env=env, capture_output=True, check=False)
            if run:
                runs.append(json.loads(out.read_text()))
    names = set().union(*runs)
    rows = []
    for name in names:
        own = statistics.median(r.get(name, (0.0, 0.0))[0] for r in runs)
        total = statistics.median(r.get(name, (0.0, 0.0))[1] for r in runs)
        rows.append((total, own, name))
    ours = sum(own for _, own, name in rows if name.split(".")[0] == PACKAGE)
    everything = sum(own for _, own, _ in rows)
    print(
        f"pytest {' '.join(args)} on {options.tests} trivial tests, {options.runs} runs, CPU"
        f" medians (load {os.getloadavg()[0]:.1f}): the package's own modules {ours * 1000:.1f}"
        f" ms, every import {everything * 1000:.1f} ms"
    )
    print("\n| module | cumulative ms | self ms |\n| --- | ---: | ---: |")
    for total, own, name in sorted(rows, reverse=True)[: options.top]:
        print(f"| {name} | {total * 1000:.1f} | {own * 1000:.1f} |")


if __name__ == "__main__":
    main()
