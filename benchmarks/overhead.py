"""Per-test overhead of ``--kari-debug`` on a suite of trivial tests.

Runs pytest on a generated suite of N trivial tests (default 2,000) in paired, rotated rounds:
without any plugin, with ``--kari-debug`` (default configuration: logs, metrics, errors,
alerts and the SQLite store on), and with pytest-opentelemetry (spans only) when installed.
Reports pytest's own session time (imports excluded), the median over the rounds, and the
overhead per test in microseconds against the plugin-free baseline of the same run.

    python benchmarks/overhead.py [--tests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SESSION_TIME = re.compile(r" in ([0-9.]+)s")


def make_suite(folder: Path, tests: int) -> None:
    """Write *tests* trivial tests in files of 100."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, tests, 100):
        numbers = range(start, min(start + 100, tests))
        body = "".join(f"def test_{n}():\n    pass\n\n" for n in numbers)
        (folder / f"test_gen_{start // 100:03d}.py").write_text(body)


def run(folder: Path, args: list[str]) -> tuple[float, float]:
    """Run pytest once; return (pytest's session seconds, wall seconds)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"pytest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    found = SESSION_TIME.findall(done.stdout)
    return float(found[-1]), wall


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
            "--kari-debug (store on)": [*no_otel, "--kari-debug", f"--kari-store={tmp}/kari.db"],
            "--kari-debug --kari-store none": [*no_otel, "--kari-debug", "--kari-store=none"],
        }
        if has_otel:
            configs["pytest-opentelemetry"] = ["-p", "no:kari_debug"]
        times: dict[str, list[float]] = {name: [] for name in configs}
        walls: dict[str, list[float]] = {name: [] for name in configs}
        names = list(configs)
        run(folder, configs[names[0]])  # warm the file cache and bytecode
        for round_no in range(options.rounds):
            rotation = names[round_no % len(names) :] + names[: round_no % len(names)]
            for name in rotation:
                session, wall = run(folder, configs[name])
                times[name].append(session)
                walls[name].append(wall)
    base = statistics.median(times["no plugin"])
    print(f"{options.tests} trivial tests, {options.rounds} rotated rounds, medians")
    print(f"{'configuration':34} {'session s':>10} {'wall s':>8} {'ratio':>7} {'µs/test':>9}")
    for name in names:
        median = statistics.median(times[name])
        per_test = (median - base) / options.tests * 1e6
        wall = statistics.median(walls[name])
        print(f"{name:34} {median:10.3f} {wall:8.3f} {median / base:7.2f} {per_test:9.1f}")


if __name__ == "__main__":
    main()
