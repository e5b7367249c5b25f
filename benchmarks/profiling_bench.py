"""Overhead of ``--kari-profile`` against plain pyinstrument and cProfile, in one run.

Generates a suite of N CPU-bound tests (recursive calls plus arithmetic loops: the call-heavy
code where profilers cost most) and runs pytest on it in rotated rounds:

* no profiling (``-p no:kari_debug``): the baseline;
* ``--kari-debug``: the plugin's debug sessions without profiling (what profiling adds to);
* ``--kari-profile``: the plugin's per-test call-phase profile (pyinstrument sampler at the
  configured interval, compact tree, hot functions), store off;
* ``--kari-profile --kari-profile-dir``: the same plus pyinstrument's HTML and speedscope files;
* plain pyinstrument: a 10-line plugin that wraps each test's call phase in
  ``pyinstrument.Profiler(interval=0.001)`` and renders nothing;
* plain cProfile: the same with ``cProfile.Profile``.

Reports pytest's own session time (imports excluded; the median over the rounds), its ratio to
the baseline of the same run and the added milliseconds per test.

    python benchmarks/profiling_bench.py [--tests 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SESSION_TIME = re.compile(r" in ([0-9.]+)s")

HELPERS = """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def checksum(n):
    total = 0
    for i in range(n):
        total = (total * 31 + i) % 1_000_003
    return total

"""
TEST = "def test_cpu_{n}():\n    assert fib(18) == 2584\n    assert checksum(20_000) >= 0\n\n"

PLAIN_PYINSTRUMENT = """
import pytest
from pyinstrument import Profiler

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        return (yield)
    finally:
        item.session_profile = profiler.stop()
"""

PLAIN_CPROFILE = """
import cProfile
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    profile = cProfile.Profile()
    profile.enable()
    try:
        return (yield)
    finally:
        profile.disable()
        profile.create_stats()
"""


def make_suite(folder: Path, tests: int) -> None:
    """Write *tests* CPU-bound tests (files of 50) and the two plain-profiler plugins."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, tests, 50):
        body = "".join(TEST.format(n=n) for n in range(start, min(start + 50, tests)))
        (folder / f"test_cpu_{start // 50:03d}.py").write_text(HELPERS + body)
    (folder / "bench_pyinstrument.py").write_text(PLAIN_PYINSTRUMENT)
    (folder / "bench_cprofile.py").write_text(PLAIN_CPROFILE)


def run(folder: Path, args: list[str]) -> float:
    """Run pytest once; return pytest's session seconds."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    inherited = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(folder), inherited) if p)}
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"pytest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(SESSION_TIME.findall(done.stdout)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_suite(folder, options.tests)
        off = ["-p", "no:kari_debug"]
        configs = {
            "no profiling": off,
            "--kari-debug (no profiling)": ["--kari-debug", "--kari-store=none"],
            "--kari-profile": ["--kari-profile", "--kari-store=none"],
            "--kari-profile --kari-profile-dir": [
                "--kari-profile",
                "--kari-store=none",
                f"--kari-profile-dir={tmp}/profiles",
            ],
            "plain pyinstrument": [*off, "-p", "bench_pyinstrument"],
            "plain cProfile": [*off, "-p", "bench_cprofile"],
        }
        names = list(configs)
        times: dict[str, list[float]] = {name: [] for name in names}
        run(folder, configs[names[0]])  # warm the file cache and bytecode
        for round_no in range(options.rounds):
            rotation = names[round_no % len(names) :] + names[: round_no % len(names)]
            for name in rotation:
                times[name].append(run(folder, configs[name]))
    base = statistics.median(times["no profiling"])
    print(f"{options.tests} CPU-bound tests, {options.rounds} rotated rounds, medians")
    print(f"{'configuration':36} {'session s':>10} {'ratio':>7} {'ms/test':>9}")
    for name in names:
        median = statistics.median(times[name])
        per_test = (median - base) / options.tests * 1000.0
        print(f"{name:36} {median:10.2f} {median / base:7.2f} {per_test:+9.2f}")


if __name__ == "__main__":
    main()
