"""What the end of a run costs: from the last test's teardown to the process's exit.

Runs pytest on N generated trivial tests (default 2,000) in rotated rounds: plain pytest (the
plugin not loaded), ``--kari-debug`` (store on) and ``--kari-debug --kari-json --kari-report``.
A conftest notes the wall clock and the process's CPU time when the first test starts and when
the last one's teardown ends; this script notes when the process has exited and the CPU time
it used in all. It prints, as medians over the rounds, the in-loop time (first test to last
teardown), the end of run (last teardown to exit: the store's last batch, the features'
summaries, the outputs, the terminal summary, interpreter shutdown) and the end of run as a
share of the in-loop time, in wall time and in CPU time (what load from other processes
disturbs least; pytest's own, less the CPU of the processes it started, such as git's), and how
long pytest's thread slept from the last test to the process's last exit handler (waits on
threads, locks and the disk: its wall time less its time on a CPU and in the run queue, from
``/proc/self/task/TID/schedstat``; what a busy machine does not add). Issue 18 asks for at most
10 % with ``--kari-debug``; what plain pytest spends there is in the first row.

``--baseline-ref REF`` adds the two ``--kari-debug`` configurations with the package as it was
at git commit *REF* (``git archive`` into a temporary folder, first on ``PYTHONPATH``) to the
same rotated rounds: a before/after of a change on a busy machine. Each tree writes a store of
its own (an older package refuses a store a newer schema migrated), and the processes run with
bytecode caches on, as an installed package has them.

    python benchmarks/end_of_run.py [--tests 2000] [--rounds 5] [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from store_backends import extract

CONFTEST = """
import atexit, json, os, resource, threading, time

_T = {}
_MAIN = threading.get_native_id()


def _sched():
    # the main thread's time on a CPU and waiting for one (Linux), in seconds
    try:
        with open(f"/proc/self/task/{_MAIN}/schedstat") as handle:
            running, waiting, _ = handle.read().split()
    except OSError:
        return None, None
    return int(running) / 1e9, int(waiting) / 1e9


def pytest_runtest_logstart(nodeid, location):
    if "first" not in _T:
        _T["first"], _T["first_cpu"] = time.time(), time.process_time()


def pytest_runtest_logfinish(nodeid, location):
    _T["last"], _T["last_cpu"] = time.time(), time.process_time()
    _T["last_run"], _T["last_wait"] = _sched()


def _at_exit():
    # registered first, so run last of the exit handlers (after the plugin's)
    _T["exit"], _T["exit_run"], _T["exit_wait"] = time.time(), *_sched()
    # pytest's own child processes reaped by now (git, say): their CPU is spread
    # over the run, not the end's
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    _T["children_cpu"] = children.ru_utime + children.ru_stime
    with open(os.environ["KARI_BENCH_TIMES"], "w") as handle:
        json.dump(_T, handle)


atexit.register(_at_exit)
"""


def make_suite(folder: Path, tests: int) -> None:
    """Write *tests* trivial tests in files of 100."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(CONFTEST)
    for start in range(0, tests, 100):
        body = "".join(
            f"def test_{n}():\n    pass\n\n" for n in range(start, min(start + 100, tests))
        )
        (folder / f"test_gen_{start // 100:03d}.py").write_text(body)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    folder: Path, args: list[str], pythonpath: str | None = None
) -> tuple[float, float, float, float, float]:
    """Run pytest once (the package from *pythonpath* when given); return the in-loop and
    end-of-run seconds, wall and CPU, and the seconds the main thread slept (waited on a
    join, a lock, the disk) from the last test to the process's last exit handler."""
    out = folder / "times.json"
    out.unlink(missing_ok=True)
    # bytecode caches on, as an installed package has them (else every import compiles)
    env = {**os.environ, "KARI_BENCH_TIMES": str(out)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    cpu_before = _children_cpu()
    subprocess.run(command, cwd=folder, env=env, capture_output=True, check=False)
    exited, cpu = time.time(), _children_cpu() - cpu_before
    times = json.loads(out.read_text())
    asleep = float("nan")
    if times.get("exit_run") is not None and times.get("last_run") is not None:
        # wall time the main thread spent neither on a CPU nor waiting for one: its waits
        on_cpu = times["exit_run"] - times["last_run"]
        queued = times["exit_wait"] - times["last_wait"]
        asleep = times["exit"] - times["last"] - on_cpu - queued
    return (
        times["last"] - times["first"],
        exited - times["last"],
        times["last_cpu"] - times["first_cpu"],
        cpu - times["last_cpu"] - times.get("children_cpu", 0.0),
        asleep,
    )


def main() -> None:
    """Run the configurations in rotated rounds and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-ref", default="", help="also run the package at this commit")
    options = parser.parse_args()
    configs = {
        "plain pytest": ["-p", "no:kari_debug"],
        "--kari-debug": ["--kari-debug", "--kari-store=kari.db"],
        "--kari-debug --kari-json --kari-report": [
            "--kari-debug", "--kari-store=kari.db", "--kari-json=run.json",
            "--kari-report=report.html",
        ],
    }  # fmt: skip
    paths: dict[str, str | None] = dict.fromkeys(configs)
    results: dict[str, list[tuple[float, float, float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "suite"
        folder.mkdir()
        make_suite(folder, options.tests)
        if options.baseline_ref:
            before = extract(options.baseline_ref, Path(tmp) / "before")
            for name in list(configs)[1:]:
                # a store of its own: an older package refuses a store a newer schema migrated
                configs[f"{name} at {options.baseline_ref}"] = [
                    "--kari-store=kari-before.db" if arg == "--kari-store=kari.db" else arg
                    for arg in configs[name]
                ]
                paths[f"{name} at {options.baseline_ref}"] = before
        results = {name: [] for name in configs}
        names = list(configs)
        for round_ in range(options.rounds):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                results[name].append(run(folder, configs[name], paths[name]))
    print(f"{options.tests} trivial tests, {options.rounds} rotated rounds, medians")
    print(
        "| configuration | in-loop wall ms | end of run wall ms | end / in-loop (wall) |"
        " in-loop CPU ms | end of run CPU ms | end / in-loop (CPU) | main thread asleep ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, found in results.items():
        loop, end, loop_cpu, end_cpu, asleep = (
            statistics.median(r[i] for r in found) * 1000 for i in range(5)
        )
        print(
            f"| {name} | {loop:.0f} | {end:.0f} | {end / loop:.1%} | {loop_cpu:.0f} |"
            f" {end_cpu:.0f} | {end_cpu / loop_cpu:.1%} | {asleep:.1f} |"
        )


if __name__ == "__main__":
    main()
