"""What ``--kari-debug`` adds to a mixed test beyond a trivial one, stage by stage, in real runs.

The mixed test of ``benchmarks/overhead.py`` (three log calls, about 1 ms of CPU work, a
10,000-int list, an exception raised and caught) costs the plugin more than a trivial test.
This runs three generated suites in fresh pytest processes, in rotated rounds, with and without
the plugin:

- ``mixed``: overhead.py's mixed tests;
- ``mixed, no record``: the same without the one call that reaches a handler (the WARNING in
  the ``except`` block; the INFO calls are below the root logger's level);
- ``trivial``: ``pass``.

For each process it measures, in the test loop: the main thread's CPU time
(``time.thread_time``: what load from other processes disturbs least), the plugin's other
threads' CPU (``/proc/self/task``), the garbage collector's time, and the median CPU time of
one ``log.warning`` call (pytest's handlers and the plugin's). A third configuration,
``--kari-debug`` with timers, wraps each stage of the plugin that a test passes through (the
capture handler, the session's start and end, the record, the journal, the store...) with a
``thread_time`` timer: its stages say where the difference goes, its total is not used (the
timers cost too). The difference of the ``mixed`` and ``mixed, no record`` columns is what one
captured log record costs each stage of a real run, where the code runs cold between the
test's own work; the warm figures of ``benchmarks/log_record_path.py`` are several times
lower::

    python benchmarks/mixed_costs.py [--tests 500] [--rounds 3] [--baseline-ref REF]

``--baseline-ref REF`` adds ``--kari-debug`` with the package at commit *REF* (first on
``PYTHONPATH``) to the same rounds. CPU figures are the minimum over rounds (CPU time only grows
under load); run it from a venv without pytest-opentelemetry or with it (it is switched off).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from overhead import MIXED_HEAD, MIXED_TEST, _child_env, _work_per_ms, make_suite
from store_backends import extract

#: The suites: name -> test body (overhead.py's mixed test, without its WARNING, trivial).
SUITES = {
    "mixed": MIXED_TEST,
    "mixed, no record": MIXED_TEST.replace('log.warning("caught %s", len(data))', "pass"),
    "trivial": "def test_{n}():\n    pass\n\n",
}
#: (stage, module, class or "", attribute): wrapped where the plugin calls them from.
STAGES = [
    ("capture handler (KariLogHandler.emit)", "logger.stdlib", "KariLogHandler", "emit"),
    ("session start", "manager", "ExtensionDebugManager", "start_debug_session"),
    ("session end", "manager", "ExtensionDebugManager", "stop_debug_session"),
    ("  logger end", "logger.core", "ExtensionLogger", "end_session"),
    ("  metrics end", "metrics.core", "MetricsCollector", "end_session"),
    ("captured output (captured_sections)", "plugin.core", "", "captured_sections"),
    ("record build (_test_record)", "plugin.core", "", "_test_record"),
    ("  log counts", "plugin.logcapture", "", "_count_logs"),
    ("keeping it (keep)", "plugin.records", "", "keep"),
    ("  encoding (dumps_record)", "plugin.records", "", "dumps_record"),
    ("  journal", "journal", "RunJournal", "append"),
    ("  store (add_test)", "plugin.committer", "StoreCommitter", "add_test"),
    ("    records rows (record_rows)", "storage.runs", "", "record_rows"),
    ("  run digest", "summaries.sections", "RunDigest", "add"),
]

CONFTEST = """
import gc, json, os, statistics, threading, time, importlib, logging
import pytest

PACKAGE = "pytest_kari_debug"
_T = {"gc_ns": 0, "warning": []}
_GC = [0]
_STAGES = json.loads(os.environ.get("KARI_MIXED_STAGES") or "[]")
COSTS = {}


def _threads():
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    found = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        found[names.get(int(tid), tid)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _gc(phase, info):
    if "loop0" in _T and "loop1" not in _T:
        if phase == "start":
            _GC[0] = time.thread_time_ns()
        else:
            _T["gc_ns"] += time.thread_time_ns() - _GC[0]


_warning = logging.Logger.warning


def _timed_warning(self, *args, **kwargs):
    started = time.thread_time_ns()
    try:
        return _warning(self, *args, **kwargs)
    finally:
        _T["warning"].append(time.thread_time_ns() - started)


logging.Logger.warning = _timed_warning


def _timed(label, function):
    def timed(*args, **kwargs):
        started = time.thread_time_ns()
        try:
            return function(*args, **kwargs)
        finally:
            entry = COSTS.setdefault(label, [0, 0])
            entry[0] += 1
            entry[1] += time.thread_time_ns() - started
    return timed


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    missing = []
    for label, module, owner, name in _STAGES:
        try:
            where = importlib.import_module(f"{PACKAGE}.{module}")
            target = getattr(where, owner) if owner else where
            setattr(target, name, _timed(label, getattr(target, name)))
        except (ImportError, AttributeError):
            missing.append(label)
    _T["missing"] = missing


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    gc.callbacks.append(_gc)
    _T["threads0"] = _threads()
    _T["loop0"], _T["main0"] = time.time(), time.thread_time()
    try:
        return (yield)
    finally:
        _T["loop1"], _T["main1"] = time.time(), time.thread_time()
        _T["threads1"] = _threads()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "loop1" in _T:
        _T["costs"] = COSTS
        _T["warning"] = statistics.median(_T["warning"]) if _T["warning"] else None
        with open(os.environ["KARI_MIXED_OUT"], "w") as handle:
            json.dump(_T, handle)
"""


def run(folder: Path, args: list[str], stages: bool, pythonpath: str | None) -> dict[str, Any]:
    """One pytest process on *folder*: its loop's figures (and stage costs with *stages*)."""
    out = folder / "mixed_costs.json"
    out.unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{folder}/kari.db{suffix}").unlink(missing_ok=True)
    env = {**_child_env(), "KARI_MIXED_OUT": str(out)}
    env["KARI_MIXED_STAGES"] = json.dumps(STAGES if stages else [])
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pytest {args} failed ({done.returncode}):\n{done.stdout[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _loop_figures(sample: dict[str, Any], tests: int) -> dict[str, float]:
    per_test = 1e6 / tests
    before = sample["threads0"]
    others = sum(
        cpu - before.get(name, 0.0)
        for name, cpu in sample["threads1"].items()
        if name != "MainThread"
    )
    return {
        "main": (sample["main1"] - sample["main0"]) * per_test,
        "threads": others * per_test,
        "gc": sample["gc_ns"] / 1e3 / tests,
        "warning": (sample["warning"] or 0.0) / 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tests", type=int, default=500, help="tests per suite (default 500)")
    parser.add_argument("--rounds", type=int, default=3, help="rotated rounds (default 3)")
    parser.add_argument("--baseline-ref", default="", help="also run the package at this commit")
    options = parser.parse_args()
    no_otel = (
        ["-p", "no:pytest_opentelemetry"]
        if importlib.util.find_spec("pytest_opentelemetry")
        else []
    )
    configs: dict[str, tuple[list[str], bool, str | None]] = {
        "plain": (["-p", "no:kari_debug", *no_otel], False, None),
        "--kari-debug": ([*no_otel, "--kari-debug", "--kari-store=kari.db"], False, None),
        "timers": ([*no_otel, "--kari-debug", "--kari-store=kari.db"], True, None),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if options.baseline_ref:
            before = extract(options.baseline_ref, root / "before")
            configs[f"--kari-debug at {options.baseline_ref}"] = (
                configs["--kari-debug"][0], False, before
            )  # fmt: skip
        head = MIXED_HEAD.format(work=_work_per_ms())
        folders = {}
        for number, (name, body) in enumerate(SUITES.items()):
            folders[name] = root / f"suite{number}"
            make_suite(folders[name], options.tests, body, head)
            (folders[name] / "conftest.py").write_text(CONFTEST)
        plan = [(suite, config) for suite in SUITES for config in configs]
        samples: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in plan}
        for suite in SUITES:  # warm the bytecode caches
            run(folders[suite], configs["--kari-debug"][0], False, None)
        for round_no in range(options.rounds):
            shift = round_no % len(plan)
            for suite, config in plan[shift:] + plan[:shift]:
                args, stages, tree = configs[config]
                samples[suite, config].append(run(folders[suite], args, stages, tree))
    print(
        f"`python benchmarks/mixed_costs.py {' '.join(sys.argv[1:])}`: {options.tests} tests per"
        f" suite, {options.rounds} rotated rounds, load {os.getloadavg()[0]:.1f} at the end"
    )
    print("\nIn the test loop, µs per test (minimum over rounds); log.warning: median µs a call\n")
    print(
        "| suite | configuration | main-thread CPU | over plain | other threads | GC"
        " | log.warning |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for suite in SUITES:
        best = {}
        for config in configs:
            figures = [_loop_figures(s, options.tests) for s in samples[suite, config]]
            best[config] = {key: min(f[key] for f in figures) for key in figures[0]}
        for config in configs:
            if config == "timers":
                continue
            got = best[config]
            warning = f"{got['warning']:.1f}" if got["warning"] else ""
            over = got["main"] - best["plain"]["main"]
            print(
                f"| {suite} | {config} | {got['main']:.0f} | {over:+.0f}"
                f" | {got['threads']:.0f} | {got['gc']:.1f} | {warning} |"
            )
    print("\nStages of --kari-debug (timers around each; nested stages are indented and counted")
    print("in their parent too), µs per test, minimum over rounds\n")
    names = list(SUITES)
    print("| stage | " + " | ".join(names) + " | one record (mixed - no record) |")
    print("| --- |" + " ---: |" * (len(names) + 1))
    costs = {
        suite: {
            label: min(s["costs"].get(label, [0, 0])[1] for s in samples[suite, "timers"])
            / 1e3
            / options.tests
            for label, *_ in STAGES
        }
        for suite in SUITES
    }
    for label, *_ in STAGES:
        row = [costs[suite][label] for suite in names]
        print(
            f"| {label} | "
            + " | ".join(f"{value:.1f}" for value in row)
            + f" | {row[0] - row[1]:+.1f} |"
        )
    missing = samples[names[0], "timers"][0].get("missing")
    if missing:
        print(f"\nnot found (renamed?): {', '.join(missing)}")
    spread = [
        statistics.pstdev(_loop_figures(s, options.tests)["main"] for s in samples[suite, config])
        for suite, config in plan
    ]
    print(f"\nspread of main-thread CPU across rounds: up to {max(spread):.0f} µs per test")


if __name__ == "__main__":
    main()
