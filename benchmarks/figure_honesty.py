"""Are the figures the plugin reports the test's own? Each test's figures against a plain run.

A generated suite of four kinds of tests -- trivial (``assert``), sleeping (20 ms), CPU-bound
(about 30 ms of arithmetic) and allocation-heavy (200,000 small objects built and dropped) --
runs in fresh pytest processes, in rotated rounds, under:

- ``plain``: the plugin not loaded (``-p no:kari_debug``); pytest's own call-phase time per
  test (from JUnit XML, ``junit_duration_report=call``) is the reference;
- ``--kari-debug`` and the same with ``--kari-memory``, ``--kari-profile``, ``--kari-trace``
  and all three.

For each flag set and kind of test it prints the median over tests and rounds of the call
phase the plugin reports (``call_ms``) as a ratio to the plain run's call phase of the same
test in the same round, ``duration_ms`` (setup + call), ``cpu_ms`` and the plugin's own cost
``kari_overhead_ms``. Ratios near 1.0 mean the reported figure is the test's own; what a
diagnostic legitimately changes shows as a ratio above 1 where it slows the test's code itself
(tracemalloc traces every allocation of allocation-heavy code while it runs; the profiler's
sampling costs CPU-bound code a little). Timings on a shared machine are noisy: read the
ratios, which compare runs of the same round.

    .venv/bin/python benchmarks/figure_honesty.py [--per-kind 5] [--rounds 3]

It prints Markdown: the README's "Honest figures" table is its output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

SUITE = """
import time
import pytest

N = {per_kind}

@pytest.mark.parametrize("i", range(N))
def test_trivial(i):
    assert i + 1 == i + 1

@pytest.mark.parametrize("i", range(N))
def test_sleeping(i):
    time.sleep(0.02)

@pytest.mark.parametrize("i", range(N))
def test_cpu_bound(i):
    total = 0
    for k in range(300_000):
        total += k * k
    assert total > 0

@pytest.mark.parametrize("i", range(N))
def test_allocation_heavy(i):
    blocks = [(k, str(k)) for k in range(200_000)]
    assert len(blocks) == 200_000
"""
KINDS = ("trivial", "sleeping", "cpu_bound", "allocation_heavy")
FLAG_SETS: dict[str, tuple[str, ...]] = {
    "--kari-debug": (),
    "+ --kari-memory": ("--kari-memory",),
    "+ --kari-profile": ("--kari-profile",),
    "+ --kari-trace": ("--kari-trace",),
    "+ all three": ("--kari-memory", "--kari-profile", "--kari-trace"),
}


def _kind(nodeid: str) -> str:
    return nodeid.split("::")[-1].split("[")[0].removeprefix("test_")


def _plain(folder: Path) -> dict[str, float]:
    xml = folder / "plain.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:kari_debug", "-p", "no:cacheprovider",
         "-o", "junit_duration_report=call", f"--junitxml={xml}", "test_suite.py"],
        cwd=folder, check=True, capture_output=True,
    )  # fmt: skip
    found = {}
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        nodeid = f"test_suite.py::{case.get('name')}"
        found[nodeid] = float(case.get("time") or 0.0) * 1000.0
    return found


def _kari(folder: Path, flags: tuple[str, ...]) -> dict[str, dict[str, float]]:
    out = folder / "run.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kari-debug",
         "--kari-store=none", f"--kari-json={out}", *flags, "test_suite.py"],
        cwd=folder, check=True, capture_output=True,
    )  # fmt: skip
    document = json.loads(out.read_text())
    return {
        test["nodeid"]: {
            "call_ms": test["phases"].get("call", 0.0),
            "duration_ms": test["duration_ms"],
            "cpu_ms": test.get("cpu_ms") or 0.0,
            "kari_overhead_ms": test.get("kari_overhead_ms") or 0.0,
        }
        for test in document["tests"]
    }


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=5, help="tests of each kind")
    parser.add_argument("--rounds", type=int, default=3, help="rotated rounds")
    args = parser.parse_args(argv)
    ratios: dict[tuple[str, str], list[float]] = {}
    figures: dict[tuple[str, str, str], list[float]] = {}
    plain_ms: dict[str, list[float]] = {}
    names = list(FLAG_SETS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_suite.py").write_text(SUITE.format(per_kind=args.per_kind))
        for round_index in range(args.rounds):
            plain = _plain(folder)
            for nodeid, ms in plain.items():
                plain_ms.setdefault(_kind(nodeid), []).append(ms)
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                for nodeid, found in _kari(folder, FLAG_SETS[name]).items():
                    kind = _kind(nodeid)
                    base = plain.get(nodeid)
                    if base:
                        ratios.setdefault((name, kind), []).append(found["call_ms"] / base)
                    for key, value in found.items():
                        figures.setdefault((name, kind, key), []).append(value)
    print(f"figure_honesty: {args.per_kind} tests per kind, {args.rounds} rounds, medians\n")
    print("| flags | test kind | plain call ms | reported call ms (ratio to plain) |"
          " duration_ms | cpu_ms | kari_overhead_ms |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        for kind in KINDS:
            med = {
                key: statistics.median(figures[(name, kind, key)])
                for key in ("call_ms", "duration_ms", "cpu_ms", "kari_overhead_ms")
            }
            found = ratios.get((name, kind))
            # JUnit XML times have 1 ms steps: a trivial test's plain call reads 0 (no ratio)
            ratio = f" (x{statistics.median(found):.2f})" if found else ""
            print(
                f"| {name} | {kind} | {statistics.median(plain_ms[kind]):.2f} |"
                f" {med['call_ms']:.2f}{ratio} | {med['duration_ms']:.2f} |"
                f" {med['cpu_ms']:.2f} | {med['kari_overhead_ms']:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
