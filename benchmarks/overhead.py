"""Per-test overhead of ``--kari-debug`` on a suite of trivial tests.

Runs pytest on a generated suite of N trivial tests (default 2,000) in paired, rotated rounds:
without any plugin, with the plugin installed but not asked for, with ``--kari-debug``
(default configuration: logs, metrics, errors, alerts and the SQLite store on; and with the
store off), and with pytest-opentelemetry (spans only) when installed.
Reports, per configuration, the median over the rounds of the CPU time the pytest process
spent from session start to unconfigure (all threads; interpreter start-up and imports
excluded; CPU time is what load from other processes disturbs least) and of pytest's own wall
session time, and the overhead per test in microseconds against the plugin-free baseline.

    python benchmarks/overhead.py [--tests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SESSION_TIME = re.compile(r" in ([0-9.]+)s")
CONFTEST = """
import os, time

import pytest

_START = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _START["cpu"] = time.process_time()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "cpu" in _START:
        with open(os.environ["KARI_BENCH_CPU"], "w") as handle:
            handle.write(repr(time.process_time() - _START["cpu"]))
"""


def make_suite(folder: Path, tests: int) -> None:
    """Write *tests* trivial tests in files of 100."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(CONFTEST)
    for start in range(0, tests, 100):
        numbers = range(start, min(start + 100, tests))
        body = "".join(f"def test_{n}():\n    pass\n\n" for n in numbers)
        (folder / f"test_gen_{start // 100:03d}.py").write_text(body)


def run(folder: Path, args: list[str]) -> tuple[float, float]:
    """Run pytest once; return (session CPU seconds, pytest's wall session seconds)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    cpu_file = folder / "cpu.txt"
    env = {**os.environ, "KARI_BENCH_CPU": str(cpu_file)}
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"pytest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    found = SESSION_TIME.findall(done.stdout)
    return float(cpu_file.read_text()), float(found[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    has_otel = importlib.util.find_spec("pytest_opentelemetry") is not None
    no_otel = ["-p", "no:pytest_opentelemetry"] if has_otel else []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_suite(folder, options.tests)
        configs = {
            "no plugin": ["-p", "no:kari_debug", *no_otel],
            "installed, --kari-debug not given": [*no_otel, "--kari-store=none"],
            "--kari-debug (store on)": [*no_otel, "--kari-debug", f"--kari-store={tmp}/kari.db"],
            "--kari-debug --kari-store none": [*no_otel, "--kari-debug", "--kari-store=none"],
        }
        if has_otel:
            configs["pytest-opentelemetry"] = ["-p", "no:kari_debug"]
        cpus: dict[str, list[float]] = {name: [] for name in configs}
        walls: dict[str, list[float]] = {name: [] for name in configs}
        names = list(configs)
        run(folder, configs[names[0]])  # warm the file cache and bytecode
        for round_no in range(options.rounds):
            rotation = names[round_no % len(names) :] + names[: round_no % len(names)]
            for name in rotation:
                cpu, wall = run(folder, configs[name])
                cpus[name].append(cpu)
                walls[name].append(wall)
    base_cpu = statistics.median(cpus["no plugin"])
    base_wall = statistics.median(walls["no plugin"])
    print(f"{options.tests} trivial tests, {options.rounds} rotated rounds, medians")
    print(
        f"{'configuration':36} {'CPU s':>7} {'ratio':>6} {'CPU µs/test':>12}"
        f" {'wall s':>7} {'wall µs/test':>13}"
    )
    for name in names:
        cpu, wall = statistics.median(cpus[name]), statistics.median(walls[name])
        cpu_us = (cpu - base_cpu) / options.tests * 1e6
        wall_us = (wall - base_wall) / options.tests * 1e6
        ratio = cpu / base_cpu
        print(f"{name:36} {cpu:7.3f} {ratio:6.2f} {cpu_us:12.1f} {wall:7.3f} {wall_us:13.1f}")


if __name__ == "__main__":
    main()
