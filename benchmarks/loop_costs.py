"""Where ``--kari-debug``'s in-loop cost goes, measured without a timer inside the plugin.

``hook_costs.py`` times each hook of the plugin with a CPU clock inside it. On a virtual
machine a CPU clock read is a system call of 2-4 µs, and the timers' own cost lands partly in
pytest's frames around the hooks, so the part of the loop's CPU that "no hook accounts for"
there mixes the timers' cost with real costs outside the hooks. This tool leaves the plugin's
hooks alone and measures three things per trivial test:

- **knock-outs**: the main thread's CPU in the test loop (``time.thread_time``, rotated rounds,
  minimum and median) of plain pytest, of ``--kari-debug``, and of ``--kari-debug`` with one
  part replaced by nothing: keeping the test (the recorder drops the record), the per-test
  sessions (none is started), the metrics probe (a constant reading), the own-work clock's CPU
  readings (constants); plus plain and ``--kari-debug`` with the garbage collector off in the
  loop. A knock-out's difference from ``--kari-debug`` is what that part costs a real run,
  including what it does to the rest (the collector, caches, pytest's own code);
- **system calls** on pytest's thread (``strace -c`` of N and N/2 tests, the difference): a
  count, which load from other processes does not change;
- **function calls** (Python and C) in the loop (``sys.setprofile``), the plugin's run over
  plain pytest's, by where the function lives: also a count.

``--instructions KNOCK,...`` measures instead the main thread's instructions per test of those
runs (``valgrind --tool=callgrind --separate-threads=yes``; N tests minus N/2, over N/2; a
warm-up run first, so that no module is compiled in a measured run; the resource sampler at
an hour's interval, so that no sampling lands in either): a count, the same from one repeat
to the next within ~0.05 %, whatever the machine's load (``--tests 600`` is plenty).

::

    .venv/bin/python benchmarks/loop_costs.py [--tests 2000] [--rounds 5] [--baseline-ref REF]
    .venv/bin/python benchmarks/loop_costs.py --tests 600 --instructions plain,kari \
        [--baseline-ref REF]

``--baseline-ref REF`` adds ``--kari-debug`` with the package at git commit *REF* (first on
``PYTHONPATH``) to the knock-outs and the counts (with ``--instructions``: a paired A/B
count). A knocked-out run's figures are wrong by design: the numbers it reports about its
tests are not the point, its CPU is.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from store_backends import extract

PLAIN = ["-p", "no:kari_debug"]
#: Knock-outs: name -> (what it replaces, whether the plugin runs).
KNOCKOUTS = {
    "plain": ("plain pytest", False),
    "kari": ("--kari-debug", True),
    "no-keep": ("--kari-debug, the test not kept (no record, journal, store, digest)", True),
    "no-sessions": ("--kari-debug, no per-test session (no core wrapper, no feature step)", True),
    "no-probe": ("--kari-debug, the metrics probe a constant (no getrusage, no statm read)", True),
    "no-clock": ("--kari-debug, the own-work clock's CPU readings constants", True),
    "plain-no-gc": ("plain pytest, garbage collector off in the loop", False),
    "kari-no-gc": ("--kari-debug, garbage collector off in the loop", True),
}


class Knockout:
    """The child's plugin: times the loop, counts its calls, and knocks out one part."""

    def __init__(self, knock: str, mode: str) -> None:
        self.knock = knock
        self.mode = mode
        self.result: dict[str, Any] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        """Replace the recorder by one that drops each record (no-keep)."""
        if self.knock != "no-keep":
            return
        recorder = config.pluginmanager.get_plugin("kari-debug-recorder")
        if recorder is not None:
            config.pluginmanager.unregister(recorder)
            config.pluginmanager.register(_DropRecords(), "kari-debug-recorder")

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """No per-test session (no-sessions): the core registers no per-test hook."""
        if self.knock == "no-sessions":
            from pytest_kari_debug.plugin.state import STATE

            state = session.config.stash.get(STATE, None)
            if state is not None:
                state.sessions_wanted = False

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Constant probe readings (no-probe) or clock readings (no-clock)."""
        if self.knock == "no-probe":
            from pytest_kari_debug.metrics import core

            core._PROBE = _ConstantProbe(core._PROBE.read())
        elif self.knock == "no-clock":
            from pytest_kari_debug.plugin import core as plugin_core

            plugin_core._process_time = plugin_core._own_cpu = _zero  # type: ignore[assignment]

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """Time (or count the calls of) the test loop."""
        if self.knock.endswith("no-gc"):
            gc.collect()
            gc.disable()
        counts: collections.Counter[str] = collections.Counter()
        if self.mode == "calls":
            sys.setprofile(_counter(counts))
        started = time.thread_time()
        try:
            return (yield)
        finally:
            cpu = time.thread_time() - started
            sys.setprofile(None)
            gc.enable()
            self.result = {"cpu": cpu, "tests": len(session.items), "calls": counts}


class _DropRecords:
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" and hasattr(report, "kari_debug"):
            del report.kari_debug


class _ConstantProbe:
    def __init__(self, reading: Any) -> None:
        self.reading = reading

    def read(self) -> Any:
        return self.reading


def _zero() -> float:
    return 0.0


def _where(filename: str) -> str:
    if "pytest_kari_debug" in filename:
        return "the plugin"
    if "_pytest" in filename or "pluggy" in filename:
        return "pytest and pluggy"
    return "the standard library and others"


def _counter(counts: collections.Counter[str]) -> Any:
    def count(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            counts[f"{_where(code.co_filename)}\t{code.co_qualname}"] += 1
        elif event == "c_call":
            counts[f"C functions\t{getattr(arg, '__qualname__', '?')}"] += 1

    return count


def _child(mode: str, knock: str, out: str, args: list[str]) -> None:
    plugin = Knockout(knock, mode)
    code = pytest.main(["-q", "-p", "no:cacheprovider", *args], plugins=[plugin])
    if code != 0:
        raise SystemExit(f"pytest {args} failed: {code}")
    Path(out).write_text(json.dumps(plugin.result))


def _suite(folder: Path, tests: int) -> None:
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, tests, 100):
        body = "".join(
            f"def test_{n}():\n    pass\n" for n in range(start, min(start + 100, tests))
        )
        (folder / f"test_gen_{start // 100:03d}.py").write_text(body)


def _args(folder: Path, plugin: bool) -> list[str]:
    if not plugin:
        return PLAIN
    return ["--kari-debug", f"--kari-store={folder / 'kari.db'}"]


def _run(
    folder: Path,
    mode: str,
    knock: str,
    pythonpath: str | None,
    *,
    strace: Path | None = None,
    callgrind: Path | None = None,
) -> dict[str, Any]:
    for stale in folder.glob("kari.db*"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    out = folder.parent / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS",)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    plugin = KNOCKOUTS[knock][1] if knock in KNOCKOUTS else True
    command = [sys.executable, __file__, "--child", mode, knock, str(out), "--"]
    command += [*_args(folder, plugin), "-p", "no:pytest_opentelemetry"]
    if strace is not None:
        command = ["strace", "-c", "-o", str(strace), *command]
    if callgrind is not None:
        command[command.index("--") + 1 : command.index("--") + 1] = [
            "-o", "kari_metrics_interval=3600", "-p", "no:randomly",
        ]  # fmt: skip
        env["PYTHONHASHSEED"] = "0"
        command = [
            "valgrind", "--tool=callgrind", "--separate-threads=yes",
            f"--callgrind-out-file={callgrind}", *command,
        ]  # fmt: skip
    subprocess.run(
        command, cwd=folder, env=env, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _instructions(knocks: list[str], n: int, baseline_ref: str | None = None) -> None:
    """Print the main thread's instructions per test of each knock-out (callgrind); with
    *baseline_ref*, also of ``--kari-debug`` with the package at that git commit."""
    print(f"{n} trivial tests; main-thread instructions per test, (Ir(N) - Ir(N/2)) / (N/2)\n")
    print("| run | Ir per test | over plain | against --kari-debug |")
    print("| --- | ---: | ---: | ---: |")
    found: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        full, half = root / "full", root / "half"
        _suite(full, n)
        _suite(half, n // 2)
        runs: list[tuple[str, str, str | None]] = [(knock, knock, None) for knock in knocks]
        if baseline_ref:
            tree = extract(baseline_ref, root / "base")
            runs.append((f"kari at {baseline_ref}", "kari", tree))
        for name, knock, pythonpath in runs:
            _run(half, "time", knock, pythonpath)  # warm-up: every module compiled and cached
            totals = []
            for folder in (full, half):
                out = root / f"callgrind-{knock}-{folder.name}"
                _run(folder, "time", knock, pythonpath, callgrind=out)
                main = Path(f"{out}-01").read_text()
                totals.append(int(re.search(r"^totals: (\d+)", main, re.M).group(1)))  # type: ignore[union-attr]
            found[name] = (totals[0] - totals[1]) / (n - n // 2)
            over = f"{found[name] - found['plain']:+,.0f}" if "plain" in found else ""
            against = f"{found[name] - found['kari']:+,.0f}" if "kari" in found else ""
            label = KNOCKOUTS.get(name, (f"--kari-debug with the package at {name[8:]}",))[0]
            print(f"| {label} | {found[name]:,.0f} | {over} | {against} |", flush=True)


def _syscalls(path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if match and match.group(2) != "total":
            found[match.group(2)] = int(match.group(1))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-ref", help="also --kari-debug with the package at this ref")
    parser.add_argument(
        "--instructions", help="comma-separated knock-outs: main-thread instructions per test"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _child(*options.child, options.args)
        return
    n = options.tests
    if options.instructions:
        _instructions(options.instructions.split(","), n, options.baseline_ref)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        full, half = root / "full", root / "half"
        _suite(full, n)
        _suite(half, n // 2)
        trees: dict[str, str | None] = {"kari": None}
        knocks = list(KNOCKOUTS)
        if options.baseline_ref:
            trees[f"kari at {options.baseline_ref}"] = extract(options.baseline_ref, root / "base")
            knocks.insert(2, f"kari at {options.baseline_ref}")
        paths = {knock: trees.get(knock) for knock in knocks}
        cpu: dict[str, list[float]] = {knock: [] for knock in knocks}
        for round_ in range(options.rounds):
            order = knocks[round_ % len(knocks) :] + knocks[: round_ % len(knocks)]
            for knock in order:
                mode_knock = "kari" if knock.startswith("kari at") else knock
                result = _run(full, "time", mode_knock, paths[knock])
                cpu[knock].append(result["cpu"] * 1e6 / n)
        counted = ["plain", *trees]
        calls = {}
        syscalls = {}
        for knock in counted:
            mode_knock = "kari" if knock.startswith("kari at") else knock
            calls[knock] = _run(full, "calls", mode_knock, paths.get(knock))["calls"]
            if shutil.which("strace"):
                per = []
                for folder in (full, half):
                    trace = root / f"strace-{folder.name}.txt"
                    _run(folder, "time", mode_knock, paths.get(knock), strace=trace)
                    per.append(_syscalls(trace))
                names = set(per[0]) | set(per[1])
                syscalls[knock] = {
                    name: (per[0].get(name, 0) - per[1].get(name, 0)) / (n - n // 2)
                    for name in names
                }
    _report(options, n, cpu, calls, syscalls)


def _report(
    options: argparse.Namespace,
    n: int,
    cpu: dict[str, list[float]],
    calls: dict[str, dict[str, int]],
    syscalls: dict[str, dict[str, float]],
) -> None:
    print(f"{n} trivial tests, {options.rounds} rotated rounds; load {os.getloadavg()[0]:.1f}")
    print("\n## Main-thread CPU in the test loop, µs per test (knock-outs)\n")
    print("| run | min | median | min over plain | min against --kari-debug |")
    print("| --- | ---: | ---: | ---: | ---: |")
    plain, kari = min(cpu["plain"]), min(cpu["kari"])
    for knock, values in cpu.items():
        label = KNOCKOUTS.get(knock, (f"--kari-debug with the package at {knock[8:]}",))[0]
        best = min(values)
        print(
            f"| {label} | {best:.1f} | {statistics.median(values):.1f} | {best - plain:+.1f} |"
            f" {best - kari:+.1f} |"
        )
    print("\n## Function calls per test in the loop, over plain pytest\n")
    base = calls["plain"]
    for knock in calls:
        if knock == "plain":
            continue
        groups: collections.Counter[str] = collections.Counter()
        diff: collections.Counter[str] = collections.Counter()
        for key in set(base) | set(calls[knock]):
            delta = (calls[knock].get(key, 0) - base.get(key, 0)) / n
            groups[key.split("\t")[0]] += delta  # type: ignore[assignment]
            diff[key] = delta  # type: ignore[assignment]
        total = sum(groups.values())
        parts = ", ".join(f"{where} {count:+.1f}" for where, count in groups.most_common())
        print(f"- {knock}: {total:+.1f} ({parts})")
        top = sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:12]
        print("  " + "; ".join(f"{key.split(chr(9))[1]} {count:+.1f}" for key, count in top))
    if not syscalls:
        print("\n(strace not found: no system call counts)")
        return
    print("\n## System calls per test on pytest's thread\n")
    for knock, counts in syscalls.items():
        shown = sorted(((v, k) for k, v in counts.items() if abs(v) >= 0.05), reverse=True)
        names = ", ".join(f"{name} {count:.1f}" for count, name in shown)
        print(f"- {knock}: {sum(counts.values()):.1f} ({names})")


if __name__ == "__main__":
    main()
