"""Where ``--kari-debug``'s per-test cost goes: the CPU of each of the plugin's hooks.

Runs pytest in a fresh process on N generated trivial tests, with and without the plugin, and
times every hook implementation of the package with the main thread's CPU clock
(``time.thread_time_ns``): exclusive time (a hook that calls other hooks is charged without
them), each step of a wrapper separately. CPU time of one thread is what load from other
processes disturbs least, so the attribution holds on a busy machine where wall-clock ratios
do not.

Printed per hook: calls, total ms and µs per test, in the test loop and after it (end of run),
plus the in-loop main-thread CPU of the plain run and of the plugin's run, the plugin's
background threads' CPU, and the part of the difference no hook of the plugin accounts for
(pluggy's dispatch of the extra hook implementations, the garbage collector, pytest's own
work on what the plugin adds)::

    .venv/bin/python benchmarks/hook_costs.py [--tests 2000] [--rounds 3] [--top 25]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

PACKAGE = "pytest_kari_debug"


class HookTimer:
    """Wraps every hook implementation of the package once the test loop starts."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.costs: dict[str, dict[str, list[int]]] = {"loop": {}, "end": {}}
        self.stack: list[list[int]] = []
        self.loop_cpu = 0
        self.loop_process_cpu = 0.0
        self.end_cpu0 = 0
        self.wrapped: set[int] = set()
        self.wrap = True
        self.step_ns = 0.0
        self.collections: list[int] = []
        self.tests = 0
        self.config: pytest.Config | None = None
        self.gc_cpu = {"loop": 0, "end": 0}
        self.gc_started = 0

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.gc_started = time.thread_time_ns()
        elif self.phase in self.gc_cpu:
            self.gc_cpu[self.phase] += time.thread_time_ns() - self.gc_started

    def _charge(self, key: str, started: int) -> None:
        elapsed = time.thread_time_ns() - started
        _, children = self.stack.pop()
        if self.stack:
            self.stack[-1][1] += elapsed
        entry = self.costs[self.phase].setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += elapsed - children

    def _timed_call(self, key: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            self.stack.append([0, 0])
            started = time.thread_time_ns()
            try:
                result = function(*args)
            finally:
                self._charge(key, started)
            if isinstance(result, Generator):
                return self._timed_steps(key, result)
            return result

        return timed

    def _timed_steps(self, key: str, steps: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        method, argument = "send", None
        while True:
            self.stack.append([0, 0])
            started = time.thread_time_ns()
            try:
                value = steps.send(argument) if method == "send" else steps.throw(argument)
            except StopIteration as stop:
                return stop.value
            finally:
                self._charge(key, started)
            try:
                argument = yield value
                method = "send"
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # handed to the wrapper
                method, argument = "throw", exc

    def _calibrate(self) -> None:
        """The timing's own cost inside a timed step (subtracted from every step)."""
        self.phase = "calibrate"
        self.costs["calibrate"] = {}
        noop = self._timed_call("noop", lambda: None)
        for _ in range(20_000):
            noop()
        calls, cpu = self.costs.pop("calibrate")["noop"]
        self.step_ns = cpu / calls

    def _wrap_all(self, config: pytest.Config | None) -> None:
        if config is None:
            return
        for name, caller in vars(config.pluginmanager.hook).items():
            if not hasattr(caller, "get_hookimpls"):
                continue
            for impl in caller.get_hookimpls():
                module = getattr(impl.function, "__module__", "") or ""
                if module.startswith(PACKAGE) and id(impl) not in self.wrapped:
                    owner = getattr(impl.function, "__qualname__", name).rsplit(".", 1)[0]
                    label = f"{module.removeprefix(PACKAGE + '.')}:{owner}.{name}"
                    if owner == name:
                        label = f"{module.removeprefix(PACKAGE + '.')}:{name}"
                    impl.function = self._timed_call(label, impl.function)
                    self.wrapped.add(id(impl))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        """Wrap what the plugin registered while its first test ran (its writer thread's hooks)."""
        if self.wrap and self.phase == "loop" and self.tests < 2:
            self.tests += 1
            self._wrap_all(self.config)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """Wrap the plugin's hooks, then time the loop."""
        self.config = session.config
        if self.wrap:
            self._calibrate()
            self._wrap_all(session.config)
        gc.callbacks.append(self._gc)
        collections = [generation["collections"] for generation in gc.get_stats()]
        self.phase = "loop"
        started, process_started = time.thread_time_ns(), time.process_time()
        try:
            return (yield)
        finally:
            self.loop_cpu = time.thread_time_ns() - started
            self.loop_process_cpu = time.process_time() - process_started
            self.phase = "end"
            self.collections = [
                generation["collections"] - before
                for generation, before in zip(gc.get_stats(), collections, strict=True)
            ]
            self.end_cpu0 = time.thread_time_ns()


def _child(out: str, args: list[str]) -> None:
    timer = HookTimer()
    timer.wrap = os.environ.get("KARI_HOOK_COSTS_BARE") != "1"
    code = pytest.main(["-q", "-p", "no:cacheprovider", *args], plugins=[timer])
    if code != 0:
        raise SystemExit(f"pytest {args} failed: {code}")
    end_cpu = time.thread_time_ns() - timer.end_cpu0
    Path(out).write_text(
        json.dumps(
            {
                "costs": timer.costs,
                "loop_cpu": timer.loop_cpu,
                "loop_process_cpu": timer.loop_process_cpu,
                "end_cpu": end_cpu,
                "gc_cpu": timer.gc_cpu,
                "step_ns": timer.step_ns,
                "collections": timer.collections,
            }
        )
    )


def _suite(folder: Path, tests: int) -> None:
    (folder / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, tests, 100):
        body = "".join(
            f"def test_{n}():\n    pass\n" for n in range(start, min(start + 100, tests))
        )
        (folder / f"test_gen_{start // 100:03d}.py").write_text(body)


def _run(folder: Path, args: list[str], *, bare: bool = False) -> dict[str, Any]:
    out = folder / "costs.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS",)}
    env["KARI_HOOK_COSTS_BARE"] = "1" if bare else "0"
    subprocess.run(
        [sys.executable, __file__, "--child", str(out), "--", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help="extra pytest arguments of the plugin's run")
    options = parser.parse_args()
    if options.child:
        _child(options.child, options.args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _suite(folder, options.tests)
        plain_args = ["-p", "no:kari_debug", "-p", "no:pytest_opentelemetry"]
        kari_args = ["--kari-debug", f"--kari-store={folder}/kari.db", *options.args]
        plain: list[dict[str, Any]] = []
        kari: list[dict[str, Any]] = []
        bare: list[dict[str, Any]] = []
        for _ in range(options.rounds):
            plain.append(_run(folder, plain_args))
            for runs, unwrapped in ((kari, False), (bare, True)):
                (folder / "kari.db").unlink(missing_ok=True)
                runs.append(_run(folder, kari_args, bare=unwrapped))
    # CPU time only grows under load (cache misses, migrations): the minimum is the cleanest.
    best_plain = min(plain, key=lambda r: r["loop_cpu"])
    best = min(kari, key=lambda r: r["loop_cpu"])
    best_bare = min(bare, key=lambda r: r["loop_cpu"])
    n = options.tests
    print(f"{n} trivial tests, {options.rounds} rounds each (the round with the least CPU)")
    print(f"uptime: {os.getloadavg()[0]:.1f} load (1 min)")
    print(
        f"calls: steps (a wrapper's call and each resumption); each step's timing cost,"
        f" {best['step_ns']:.0f} ns, is subtracted"
    )
    for phase, title in (("loop", "in the test loop"), ("end", "after the last test")):
        print(f"\n## {title}\n")
        print("| hook | calls | ms | µs per test |")
        print("| --- | ---: | ---: | ---: |")
        step = best["step_ns"]
        rows = sorted(
            (
                (key, (calls, max(0.0, cpu - calls * step)))
                for key, (calls, cpu) in best["costs"][phase].items()
            ),
            key=lambda kv: -kv[1][1],
        )
        total = sum(cpu for _, (_, cpu) in rows)
        for key, (calls, cpu) in rows[: options.top]:
            print(f"| {key} | {calls} | {cpu / 1e6:.1f} | {cpu / 1e3 / n:.1f} |")
        print(f"| **all the plugin's hooks** | | {total / 1e6:.1f} | {total / 1e3 / n:.1f} |")
        if phase == "loop":
            delta = best_bare["loop_cpu"] - best_plain["loop_cpu"]
            timing = best["loop_cpu"] - best_bare["loop_cpu"]
            gc_delta = best_bare["gc_cpu"]["loop"] - best_plain["gc_cpu"]["loop"]
            print(
                f"\nmain-thread CPU in the loop: plain {best_plain['loop_cpu'] / 1e6:.0f} ms,"
                f" --kari-debug {best_bare['loop_cpu'] / 1e6:.0f} ms:"
                f" +{delta / 1e3 / n:.1f} µs per test. The hooks above include the timing's"
                f" own cost ({timing / 1e3 / n:.1f} µs per test in all). Garbage collection:"
                f" {gc_delta / 1e3 / n:+.1f} µs per test over plain (collections per"
                f" generation: plain {best_plain['collections']},"
                f" --kari-debug {best_bare['collections']})."
            )
            threads = best["loop_process_cpu"] - best["loop_cpu"] / 1e9
            plain_threads = best_plain["loop_process_cpu"] - best_plain["loop_cpu"] / 1e9
            print(
                f"other threads' CPU in the loop: {threads * 1e6 / n:.1f} µs per test"
                f" (plain {plain_threads * 1e6 / n:.1f})"
            )
        else:
            print(
                f"\nmain-thread CPU after the loop: plain {best_plain['end_cpu'] / 1e6:.0f} ms,"
                f" --kari-debug {best_bare['end_cpu'] / 1e6:.0f} ms"
                f" ({best_bare['end_cpu'] / max(1, best_bare['loop_cpu']):.0%} of its loop CPU);"
                f" garbage collection plain {best_plain['gc_cpu']['end'] / 1e6:.0f} ms,"
                f" --kari-debug {best_bare['gc_cpu']['end'] / 1e6:.0f} ms"
            )


if __name__ == "__main__":
    main()
