"""Where the start-up of a ``--kari-debug`` run goes: process start to the first test, by stage.

Runs pytest on a small generated suite in fresh processes (bytecode caches on), in rotated
rounds, under ``plain`` (``-p no:kari_debug``), ``installed, not asked`` and ``--kari-debug``
(plus ``--kari-debug`` with the package at git commit *REF* with ``--baseline-ref REF``), and
reads the main thread's CPU clock at each stage of the start-up:

- ``import pytest``; ``plugins loaded`` (the entry points imported, options parsed);
- ``configured`` (``pytest_configure`` done: a run that asks for the plugin imports its
  features here); ``session started``; ``collected``;
- ``first test`` (its ``pytest_runtest_protocol`` begins) and ``first test done`` (the first
  test's protocol ends: the store is opened there, at the first progress write).

It prints, per stage, the median CPU milliseconds since process start and the median of each
round's difference to ``plain`` in the same round (rounds are paired, so load from other
processes hits both sides), then the wall time from process start to the first test. CPU
clocks are what a shared machine disturbs least::

    python benchmarks/startup.py [--tests 1] [--rounds 15] [--baseline-ref REF]

``--instructions`` counts instead, once per configuration, the main thread's instructions from
process start to the first test's ``pytest_runtest_protocol`` (``valgrind --tool=callgrind``,
the process ends there; PYTHONHASHSEED=0, bytecode caches warm): what load does not change.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from store_backends import extract

#: The measured process: pytest with a plugin that notes each stage's clocks.
CHILD = r"""
import json, os, sys, time
marks = {"interpreter": (time.thread_time(), time.process_time(), time.time())}
import pytest
marks["import pytest"] = (time.thread_time(), time.process_time(), time.time())

def mark(name):
    marks.setdefault(name, (time.thread_time(), time.process_time(), time.time()))

class Early:
    @pytest.hookimpl(tryfirst=True)
    def pytest_cmdline_main(self, config):
        mark("plugins loaded")

class Late:
    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        mark("configured")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session):
        mark("session started")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        mark("collected")

    @pytest.hookimpl(tryfirst=True, wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        mark("first test")
        if os.environ.get("KARI_STARTUP_EXIT_AT_FIRST_TEST"):
            sys.stdout.flush()
            os._exit(0)
        try:
            return (yield)
        finally:
            mark("first test done")

pytest.main(sys.argv[2:], plugins=[Early(), Late()])
package = sys.modules.get("pytest_kari_debug")
marks["package"] = None if package is None else package.__file__
with open(sys.argv[1], "w") as handle:
    json.dump(marks, handle)
"""
STAGES = (
    "import pytest", "plugins loaded", "configured", "session started", "collected",
    "first test", "first test done",
)  # fmt: skip
OTEL = "pytest_opentelemetry"


def _child_env(pythonpath: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    env.pop("PYTEST_ADDOPTS", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return env


def run(folder: Path, args: list[str], pythonpath: str | None) -> dict[str, list[float]]:
    """One pytest process; each stage's (thread CPU, process CPU, wall since start)."""
    out = folder / "marks.json"
    command = [sys.executable, "-c", CHILD, str(out), "-q", "-p", "no:cacheprovider", *args]
    started = time.time()
    done = subprocess.run(
        command, cwd=folder, env=_child_env(pythonpath), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"pytest {args} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    marks = json.loads(out.read_text())
    package = marks.pop("package")
    if pythonpath is not None and package is not None and not package.startswith(pythonpath):
        raise SystemExit(f"the baseline run imported {package}, not the package under {pythonpath}")
    return {name: [cpu, process, wall - started] for name, (cpu, process, wall) in marks.items()}


def instructions(folder: Path, args: list[str], pythonpath: str | None) -> int:
    """The main thread's instructions from process start to the first test (callgrind)."""
    run(folder, args, pythonpath)  # bytecode caches written, the store's schema made
    out = folder / "callgrind.out"
    env = _child_env(pythonpath)
    env.update(PYTHONHASHSEED="0", KARI_STARTUP_EXIT_AT_FIRST_TEST="1")
    command = [
        "valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}",
        sys.executable, "-c", CHILD, str(folder / "marks.json"), "-q", "-p", "no:cacheprovider",
        *args,
    ]  # fmt: skip
    subprocess.run(command, cwd=folder, env=env, capture_output=True, check=True)
    main_thread = Path(f"{out}-01").read_text()
    for stale in folder.glob("callgrind.out*"):
        stale.unlink()
    found = re.search(r"^totals: (\d+)", main_thread, re.M)
    if found is None:
        raise SystemExit(f"no instruction count in callgrind's output for {args}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tests", type=int, default=1, help="trivial tests (default 1)")
    parser.add_argument("--rounds", type=int, default=15, help="rotated rounds (default 15)")
    parser.add_argument("--baseline-ref", default="", help="also run the package at this commit")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (callgrind) instead"
    )
    options = parser.parse_args()
    no_otel = ["-p", f"no:{OTEL}"] if importlib.util.find_spec(OTEL) is not None else []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "suite"
        folder.mkdir()
        (folder / "pytest.ini").write_text("[pytest]\n")
        body = "".join(f"def test_{n}():\n    pass\n\n" for n in range(options.tests))
        (folder / "test_trivial.py").write_text(body)
        store = f"--kari-store={folder}/kari.db"
        plan: list[tuple[str, list[str], str | None]] = [
            ("plain", ["-p", "no:kari_debug", *no_otel], None),
            ("installed, not asked", no_otel, None),
            ("--kari-debug", [*no_otel, "--kari-debug", store], None),
        ]
        if options.baseline_ref:
            before = extract(options.baseline_ref, Path(tmp) / "before")
            base_store = f"--kari-store={folder}/kari-before.db"
            plan.append(
                (f"--kari-debug at {options.baseline_ref}", [*no_otel, "--kari-debug", base_store],
                 before)
            )  # fmt: skip
        if options.instructions:
            _print_instructions(options, [(n, instructions(folder, a, p)) for n, a, p in plan])
            return
        for _, args, path in plan:  # bytecode caches, file cache, the store's schema
            run(folder, args, path)
        samples: dict[str, list[dict[str, list[float]]]] = {name: [] for name, _, _ in plan}
        for round_no in range(options.rounds):
            shift = round_no % len(plan)
            for name, args, path in plan[shift:] + plan[:shift]:
                samples[name].append(run(folder, args, path))
    plain = samples["plain"]
    command = " ".join(["python", "benchmarks/startup.py", *sys.argv[1:]])
    print(
        f"`{command}`: {options.tests} trivial test(s), {options.rounds} rotated rounds, load"
        f" {load_before:.1f} to {os.getloadavg()[0]:.1f}; main-thread CPU ms since process start"
        " (median), and over plain (median of the paired differences)"
    )
    names = [name for name, _, _ in plan]
    print("\n| stage | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for stage in STAGES:
        cells = []
        for name in names:
            value = statistics.median(s[stage][0] for s in samples[name]) * 1000.0
            diff = statistics.median(
                (s[stage][0] - p[stage][0]) * 1000.0
                for s, p in zip(samples[name], plain, strict=True)
            )
            cells.append(f"{value:.1f}" if name == "plain" else f"{value:.1f} ({diff:+.1f})")
        print(f"| {stage} | " + " | ".join(cells) + " |")
    for label, index in (("process CPU to the first test", 1), ("wall to the first test", 2)):
        cells = []
        for name in names:
            value = statistics.median(s["first test"][index] for s in samples[name]) * 1000.0
            diff = statistics.median(
                (s["first test"][index] - p["first test"][index]) * 1000.0
                for s, p in zip(samples[name], plain, strict=True)
            )
            cells.append(f"{value:.1f}" if name == "plain" else f"{value:.1f} ({diff:+.1f})")
        print(f"| {label} | " + " | ".join(cells) + " |")


def _print_instructions(options: argparse.Namespace, counts: list[tuple[str, int]]) -> None:
    command = " ".join(["python", "benchmarks/startup.py", *sys.argv[1:]])
    print(
        f"`{command}`: {options.tests} trivial test(s); main-thread instructions from process"
        " start to the first test's pytest_runtest_protocol (callgrind, PYTHONHASHSEED=0)\n"
    )
    print("| configuration | instructions | over plain |")
    print("| --- | ---: | ---: |")
    plain = counts[0][1]
    for name, count in counts:
        over = "" if name == "plain" else f"{(count - plain) / 1e6:+,.1f}M"
        print(f"| {name} | {count / 1e6:,.1f}M | {over} |")


if __name__ == "__main__":
    main()
