"""Memory of a long run: RSS as tests finish, plain pytest vs ``--kari-debug``.

Runs pytest on a generated suite of N tests (default 1,500), each making 100 stdlib log records
and 10 spans, once per configuration: plain pytest (no plugin), and ``--kari-debug --kari-trace
--kari-json --kari-report`` (the store on and off). A conftest notes the process's RSS after
tests 300, 1,000 and the last, and its peak RSS (``ru_maxrss``) when pytest unconfigures, the
end-of-run outputs included. The plugin keeps memory flat when the growth from test 300 to the
last stays within 40 MiB and the peak within 2.5x the RSS at test 300 (issue 17, item 5).

    python benchmarks/memory_growth.py [--tests 1500] [--logs 100] [--spans 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MiB = 2**20
CONFTEST = """
import contextlib, json, logging, os, resource

import pytest

_MARKS = {marks}
_SEEN = {{"n": 0, "rss": {{}}}}


def _rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pytest_runtest_logfinish(nodeid, location):
    _SEEN["n"] += 1
    if _SEEN["n"] in _MARKS:
        _SEEN["rss"][_SEEN["n"]] = _rss()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open(os.environ["KARI_BENCH_MEMORY"], "w") as handle:
        json.dump({{"rss": _SEEN["rss"], "peak": peak, "end": _rss()}}, handle)


class _NoTracer:
    def start_span(self, name, tags=None):
        return contextlib.nullcontext()


@pytest.fixture
def tracer(request):
    if request.config.pluginmanager.has_plugin("kari_debug"):
        return request.getfixturevalue("kari_tracer")
    return _NoTracer()
"""
TEST = """
def test_{n}(tracer):
    for i in range({spans}):
        with tracer.start_span("step", {{"index": i}}):
            for j in range({per_span}):
                log.info("step %s of request %s done", j, i, extra={{"user": "u{n}", "size": j}})
"""


def make_suite(folder: Path, tests: int, logs: int, spans: int) -> list[int]:
    """Write the suite; return the test counts at which RSS is noted."""
    marks = sorted({min(300, tests), min(1000, tests), tests})
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(CONFTEST.format(marks=set(marks)))
    per_span = max(1, logs // max(1, spans))
    for start in range(0, tests, 100):
        body = "import logging\n\nlog = logging.getLogger('bench')\n" + "".join(
            TEST.format(n=n, spans=spans, per_span=per_span)
            for n in range(start, min(start + 100, tests))
        )
        (folder / f"test_gen_{start // 100:03d}.py").write_text(body)
    return marks


def run(folder: Path, args: list[str]) -> dict[str, object]:
    """Run pytest once; return the RSS the conftest noted."""
    out = folder / "memory.json"
    env = {**os.environ, "KARI_BENCH_MEMORY": str(out)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    subprocess.run(command, cwd=folder, env=env, capture_output=True, check=False)
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def main() -> None:
    """Run every configuration and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=1500)
    parser.add_argument("--logs", type=int, default=100)
    parser.add_argument("--spans", type=int, default=10)
    options = parser.parse_args()
    outputs = ["--kari-trace", "--kari-json=run.json", "--kari-report=report.html"]
    configs = {
        "plain pytest": ["-p", "no:kari_debug"],
        "--kari-debug (trace, json, report)": ["--kari-debug", *outputs],
        "--kari-debug ... --kari-store=none": ["--kari-debug", *outputs, "--kari-store=none"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        marks = make_suite(folder, options.tests, options.logs, options.spans)
        first, last = marks[0], marks[-1]
        print(
            f"{options.tests} tests x ({options.logs} logs + {options.spans} spans);"
            f" RSS in MiB after the test numbered"
        )
        head = " | ".join(f"test {m:,}" for m in marks)
        print(f"| configuration | {head} | growth {first}->{last} | peak | peak / RSS@{first} |")
        print("| --- |" + " ---: |" * (len(marks) + 3))
        for name, args in configs.items():
            result = run(folder, args)
            rss = {int(k): v / MiB for k, v in dict(result["rss"]).items()}  # type: ignore[call-overload]
            peak = float(result["peak"]) / MiB  # type: ignore[arg-type]
            cells = " | ".join(f"{rss.get(m, float('nan')):.0f}" for m in marks)
            growth = rss[last] - rss[first]
            print(f"| {name} | {cells} | {growth:+.0f} | {peak:.0f} | {peak / rss[first]:.2f}x |")


if __name__ == "__main__":
    main()
