"""What ``--kari-debug`` costs a user: the whole pytest process, start to exit.

Runs pytest in fresh processes on two generated suites -- N trivial tests (``pass``) and M
"mixed" tests (each: three log calls, about 1 ms of CPU work, a 10,000-int list, an exception
raised and caught) -- in one run of rotated rounds, under five configurations:

- ``plain``: the plugin not loaded (``-p no:kari_debug``);
- ``installed``: installed but not asked for (no kari flag, fixture or marker);
- ``--kari-debug``: the default configuration (logs, metrics, errors, alerts, SQLite store);
- ``--kari-debug --kari-json --kari-report``: the same plus the JSON and HTML outputs;
- ``pytest-opentelemetry``: one span per test, nothing else (when it is installed).

The headline is the whole-process wall time from ``subprocess`` start to exit, as a median
over the rounds and as the median of each round's difference to ``plain`` (per test, and as a
ratio): rounds are paired, so load from other processes hits both sides of a difference. Extra
columns: the whole process's CPU time (user + system, from ``wait4``: what load and a busy disk
disturb least), the start-up (from process start to the first test's
``pytest_runtest_protocol``: wall time, and the process's CPU time by then), the in-loop wall
time (``pytest_runtestloop``), the session CPU time (session start to unconfigure, all threads)
and the end of the run (from the last test to process exit).
The import time of the entry module and of the features comes from ``-X importtime``. The
measured processes run with bytecode caches on, as an installed package has them.

``--baseline-ref REF`` adds the two ``--kari-debug`` configurations with the package as it was
at git commit *REF* (``git archive`` into a temporary folder, first on ``PYTHONPATH``) to the
same rotated rounds: a before/after of a change on a busy machine.

Run it from a venv with the bench extra (pytest-opentelemetry is an auto-loaded plugin: keep it
out of the development venv)::

    python -m venv .benchvenv && .benchvenv/bin/pip install -e '.[bench]'
    .benchvenv/bin/python benchmarks/overhead.py [--tests 2000] [--mixed 500] [--rounds 7]
                                                 [--baseline-ref REF]

It prints Markdown: the README's overhead tables are its output.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from store_backends import extract

CONFTEST = """
import json, os, time

import pytest

_T = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _T["cpu0"] = time.process_time()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    if "first" not in _T:
        _T["first"], _T["first_cpu"] = time.time(), time.process_time()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    _T["loop0"] = time.time()
    try:
        return (yield)
    finally:
        _T["loop1"] = time.time()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "loop1" in _T:
        _T["cpu"] = time.process_time() - _T["cpu0"]
        with open(os.environ["KARI_BENCH_OUT"], "w") as handle:
            json.dump(_T, handle)
"""
MIXED_TEST = """
def test_{n}():
    log.info("start %s", {n})
    total = 0
    for i in range(WORK):
        total += i * i
    data = list(range(10_000))
    try:
        raise ValueError(total)
    except ValueError:
        log.warning("caught %s", len(data))
    log.info("done")
"""
MIXED_HEAD = "import logging\n\nlog = logging.getLogger(__name__)\nWORK = {work}\n"
OTEL = "pytest_opentelemetry"


@dataclass
class Sample:
    """One pytest process."""

    wall: float  # start to exit, seconds
    cpu_total: float  # start to exit, CPU seconds (user + system)
    startup: float  # start to the first test's protocol, seconds
    startup_cpu: float  # the same, CPU seconds of the process (all threads)
    loop: float  # pytest_runtestloop, seconds
    end: float  # last test to exit, seconds
    cpu: float  # session start to unconfigure, CPU seconds


@dataclass
class Suite:
    """A generated test suite and the samples of each configuration on it."""

    name: str
    folder: Path
    tests: int
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def _work_per_ms() -> int:
    """Loop iterations of the mixed tests' CPU work that take about 1 ms here."""
    best = float("inf")
    for _ in range(20):
        start = time.process_time()
        total = 0
        for i in range(20_000):
            total += i * i
        best = min(best, time.process_time() - start)
    return max(1000, int(20_000 / (best * 1000.0)))


def make_suite(folder: Path, tests: int, body: str, head: str = "") -> None:
    """Write *tests* tests (from *body*) in files of 100."""
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(CONFTEST)
    for start in range(0, tests, 100):
        numbers = range(start, min(start + 100, tests))
        text = head + "".join(body.format(n=n) for n in numbers)
        (folder / f"test_gen_{start // 100:03d}.py").write_text(text)


def _child_env() -> dict[str, str]:
    """The environment of the measured processes: bytecode caches on, as a user has them
    (``PYTHONDONTWRITEBYTECODE`` would make every import compile its source), no addopts."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTEST_ADDOPTS", None)
    return env


def run(folder: Path, args: list[str], pythonpath: str | None = None) -> Sample:
    """Run pytest once in a fresh process and time it (with *pythonpath* first on the path)."""
    out = folder / "times.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    env = {**_child_env(), "KARI_BENCH_OUT": str(out)}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryFile("w+") as output:
        started, started_at = time.perf_counter(), time.time()
        child = subprocess.Popen(command, cwd=folder, stdout=output, stderr=output, env=env)
        # wait4: the child's own CPU time (and that of the processes it waited for).
        _, status, usage = os.wait4(child.pid, 0)
        wall, ended_at = time.perf_counter() - started, time.time()
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            output.seek(0)
            raise SystemExit(f"pytest {args} failed ({child.returncode}):\n{output.read()}")
    times = json.loads(out.read_text())
    return Sample(
        wall=wall,
        cpu_total=usage.ru_utime + usage.ru_stime,
        startup=times["first"] - started_at,
        startup_cpu=times["first_cpu"],
        loop=times["loop1"] - times["loop0"],
        end=ended_at - times["loop1"],
        cpu=times["cpu"],
    )


def own_store(args: list[str], tree: str) -> list[str]:
    """*args* with a store of the tree's own: a package at an older commit refuses a store a
    newer schema migrated (its runs would then write no store at all)."""
    return [
        arg.replace("kari.db", f"kari-{tree}.db") if arg.startswith("--kari-store=") else arg
        for arg in args
    ]


def configurations(folder: Path, has_otel: bool) -> dict[str, list[str]]:
    """The command-line arguments of each configuration."""
    no_otel = ["-p", f"no:{OTEL}"] if has_otel else []
    store = f"--kari-store={folder}/kari.db"
    configs = {
        "plain": ["-p", "no:kari_debug", *no_otel],
        "installed, not asked": [*no_otel],
        "--kari-debug": [*no_otel, "--kari-debug", store],
        "--kari-debug --kari-json --kari-report": [
            *no_otel,
            "--kari-debug",
            store,
            f"--kari-json={folder}/run.json",
            f"--kari-report={folder}/report.html",
        ],
    }
    if has_otel:
        configs["pytest-opentelemetry"] = ["-p", "no:kari_debug"]
    return configs


IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


def import_times(code: str, after: str, rounds: int) -> float:
    """Median ``-X importtime`` milliseconds of what *code* imports from the import of the
    module *after* on (its own import included): top-level cumulative times summed."""
    found: list[float] = []
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=_child_env(),
        )
        total, counting = 0.0, False
        for match in IMPORT_LINE.finditer(done.stderr):
            if match.group(3):  # nested: counted in the cumulative time of its top level
                continue
            counting = counting or match.group(4) == after
            if counting:
                total += int(match.group(2)) / 1000.0
        found.append(total)
    return statistics.median(found)


def _paired(samples: list[Sample], base: list[Sample], pick: str) -> tuple[float, float]:
    """Median over rounds of (this - base) and of this / base, for the field *pick*."""
    diffs = [getattr(s, pick) - getattr(b, pick) for s, b in zip(samples, base, strict=True)]
    ratios = [getattr(s, pick) / getattr(b, pick) for s, b in zip(samples, base, strict=True)]
    return statistics.median(diffs), statistics.median(ratios)


def table(suite: Suite) -> list[str]:
    """The Markdown table of one suite."""
    base = suite.samples["plain"]
    lines = [
        "| configuration | whole process s | ratio | µs/test | CPU ratio | CPU µs/test"
        " | start-up ms | start-up CPU ms | in-loop µs/test | session CPU µs/test"
        " | end of run ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    per_test = 1e6 / suite.tests
    for name, samples in suite.samples.items():
        wall = statistics.median(s.wall for s in samples)
        wall_diff, wall_ratio = _paired(samples, base, "wall")
        total_diff, total_ratio = _paired(samples, base, "cpu_total")
        loop_diff, _ = _paired(samples, base, "loop")
        cpu_diff, _ = _paired(samples, base, "cpu")
        end = statistics.median(s.end for s in samples) * 1000.0
        startup = statistics.median(s.startup for s in samples) * 1000.0
        startup_cpu = statistics.median(s.startup_cpu for s in samples) * 1000.0
        lines.append(
            f"| {name} | {wall:.3f} | {wall_ratio:.2f}× | {wall_diff * per_test:+.0f}"
            f" | {total_ratio:.2f}× | {total_diff * per_test:+.0f}"
            f" | {startup:.0f} | {startup_cpu:.0f}"
            f" | {loop_diff * per_test:+.0f} | {cpu_diff * per_test:+.0f} | {end:.0f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000, help="trivial tests (default 2000)")
    parser.add_argument("--mixed", type=int, default=500, help="mixed tests (default 500)")
    parser.add_argument("--rounds", type=int, default=7, help="rotated rounds (default 7)")
    parser.add_argument("--baseline-ref", default="", help="also run the package at this commit")
    options = parser.parse_args()
    has_otel = importlib.util.find_spec(OTEL) is not None
    load_before = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work = _work_per_ms()
        suites = [
            Suite(f"{options.tests} trivial tests", root / "trivial", options.tests),
            Suite(f"{options.mixed} mixed tests", root / "mixed", options.mixed),
        ]
        make_suite(suites[0].folder, options.tests, "def test_{n}():\n    pass\n\n")
        make_suite(suites[1].folder, options.mixed, MIXED_TEST, MIXED_HEAD.format(work=work))
        before = extract(options.baseline_ref, root / "before") if options.baseline_ref else None
        plan = []
        for suite in suites:
            configs = configurations(suite.folder, has_otel)
            paths: dict[str, str | None] = dict.fromkeys(configs)
            if before is not None:
                for name in ("--kari-debug", "--kari-debug --kari-json --kari-report"):
                    label = f"{name} at {options.baseline_ref}"
                    configs[label] = own_store(configs[name], "before")
                    paths[label] = before
            suite.samples = {name: [] for name in configs}
            if suite is suites[0]:  # warm the file cache and write every bytecode cache
                for name, args in configs.items():
                    run(suite.folder, args, paths[name])
            plan.extend((suite, name, args, paths[name]) for name, args in configs.items())
        for round_no in range(options.rounds):
            shift = round_no % len(plan)
            for suite, name, args, path in plan[shift:] + plan[:shift]:
                suite.samples[name].append(run(suite.folder, args, path))
        pytest_ms = import_times("import pytest", "pytest", options.rounds)
        entry_ms = import_times(
            "import pytest; import pytest_kari_debug.plugin",
            "pytest_kari_debug.plugin",
            options.rounds,
        )
        features_ms = import_times(
            "import pytest, pytest_kari_debug.plugin as p, importlib\n"
            "for name in p.FEATURES: importlib.import_module(name)",
            "pytest_kari_debug.plugin",
            options.rounds,
        )
    load_after = os.getloadavg()
    minutes = (time.monotonic() - started) / 60.0
    command = " ".join(["python", "benchmarks/overhead.py", *sys.argv[1:]])
    print(f"`{command}`, {datetime.date.today().isoformat()}, {options.rounds} rotated rounds")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"
        f" {platform.release()}, Python {platform.python_version()};"
        f" load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at the end"
        f" ({minutes:.0f} min); mixed tests' CPU work: {work} iterations (~1 ms)"
    )
    print()
    for suite in suites:
        print(f"**{suite.name}** (medians; differences paired per round against plain)")
        print()
        print("\n".join(table(suite)))
        print()
    print(
        f"Import (-X importtime, medians): pytest {pytest_ms:.1f} ms; the entry module adds"
        f" {entry_ms:.1f} ms; a run that asks for the plugin then imports the features for"
        f" {features_ms - entry_ms:.1f} ms more."
    )


if __name__ == "__main__":
    main()
