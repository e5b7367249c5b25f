"""How often the regression gates catch a real slowdown, and how often they cry wolf.

Saves a baseline of a suite of ~5 ms CPU-bound tests, then runs the suite R times unchanged
and R times with one test's work made 20% heavier, each compared with the baseline under
the default method and the gate ``duration:+10%``. Prints the detection rate and the false
alarms (every flagged test in the unchanged runs, and any other test flagged in the slowed
runs).

    python benchmarks/gates_detection.py [--runs 10] [--tests 20] [--slowdown 1.2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SUITE = """
import os, time, pytest

def work(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

@pytest.mark.parametrize("n", range({tests}))
def test_work(n):
    factor = float(os.environ.get("KARI_SLOWDOWN", "1")) if n == 0 else 1.0
    work(0.005 * factor)
"""


def run(folder: Path, *args: str, slowdown: float = 1.0) -> dict:
    env = {**os.environ, "KARI_SLOWDOWN": str(slowdown)}
    out = folder / "run.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kari-debug",
               f"--kari-json={out}", *args]  # fmt: skip
    subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    return json.loads(out.read_text())


def flagged(document: dict) -> list[str]:
    changes = document.get("sections", {}).get("comparison", {}).get("changes", [])
    return sorted({c["nodeid"] for c in changes if c["verdict"] == "regression"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tests", type=int, default=20)
    parser.add_argument("--slowdown", type=float, default=1.2)
    options = parser.parse_args()
    gate = ["--kari-compare=main", "--kari-fail-regression=duration:+10%"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "pytest.ini").write_text("[pytest]\n")
        (folder / "test_suite.py").write_text(SUITE.format(tests=options.tests))
        run(folder, "--kari-save-baseline=main")
        slowed_id = "test_suite.py::test_work[0]"
        false_unchanged = caught = false_slowed = 0
        for _ in range(options.runs):
            false_unchanged += len(flagged(run(folder, *gate)))
            found = flagged(run(folder, *gate, slowdown=options.slowdown))
            caught += slowed_id in found
            false_slowed += len([f for f in found if f != slowed_id])
    total = options.runs * options.tests
    print(f"{options.tests} tests of ~5 ms, gate duration:+10%, {options.runs} runs each")
    print(f"slowdown x{options.slowdown} of one test caught: {caught}/{options.runs}")
    print(f"false alarms, unchanged suite: {false_unchanged}/{total} test runs")
    print(f"false alarms, other tests of the slowed runs: {false_slowed}/{total - options.runs}")


if __name__ == "__main__":
    main()
