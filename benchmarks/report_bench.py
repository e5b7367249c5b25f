"""Size, generation time and first paint of the HTML report of a 10,000-test synthetic run.

Builds a synthetic run that follows the per-test data contract (logs, metric samples, spans,
errors, alerts, some call trees: ``pytest_kari_debug.report.sample``), then measures:

- the page's size (and gzipped, as CI artifact stores keep it);
- the time to build and write the page, against writing the same run as the JSON export
  (``--kari-json``) in the same process: the baseline;
- in headless Chromium (``/usr/bin/chromium``, via playwright), opened from file://: first
  contentful paint, the moment the test table is ready, and opening one test's details,
  against the same page for a 100-test run.

Goals (issue 9): under 20 MB, generated in under 10 s, first paint under 3 s.

    python benchmarks/report_bench.py [--tests 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pytest_kari_debug.exporters.json_export import build_run_document, write_run_json  # noqa: E402
from pytest_kari_debug.history import build_history  # noqa: E402
from pytest_kari_debug.report import write_report  # noqa: E402
from pytest_kari_debug.report.sample import sample_run  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def timed(func, rounds: int) -> tuple[float, float]:
    """Median wall and CPU seconds of *rounds* calls of *func*.

    CPU time is given too because a shared machine's load stretches wall time.
    """
    walls, cpus = [], []
    for _ in range(rounds):
        began, began_cpu = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - began_cpu)
    return statistics.median(walls), statistics.median(cpus)


def browser_figures(path: Path, rounds: int) -> dict[str, float]:
    """Median first paint, table-ready and open-a-test times (ms) of *path* in Chromium."""
    from playwright.sync_api import sync_playwright

    paint, ready, expand = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(rounds):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_selector("html[data-ready=true]", timeout=120_000)
            paint.append(
                page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
            )
            ready.append(float(page.get_attribute("html", "data-ready-ms") or "nan"))
            middle = page.evaluate("Math.floor(window.kariReport.data.tests.length / 2)")
            began = time.perf_counter()
            page.evaluate("(i) => window.kariReport.open(i)", middle)
            page.wait_for_selector(f"#detail-{middle} .panel")
            expand.append((time.perf_counter() - began) * 1000.0)
            page.close()
        browser.close()
    return {
        "paint": statistics.median(paint),
        "ready": statistics.median(ready),
        "expand": statistics.median(expand),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true", help="Skip the Chromium figures")
    parser.add_argument(
        "--history", type=int, default=10, metavar="RUNS",
        help="Stored runs of history per test (sparkline, badges; 0: none)",
    )  # fmt: skip
    options = parser.parse_args()
    run, tests = sample_run(options.tests)
    history = None
    if options.history:
        # The worst case: every test ran in every stored run, every third one flaky; each
        # failing test printed a line on stdout and stderr.
        rows = [
            (r, str(t["nodeid"]), "failed" if (i % 3 == 0 and (r + i) % 2) else "passed", 10.0 + r)
            for r in range(1, options.history + 1)
            for i, t in enumerate(tests)
        ]
        history = build_history(range(1, options.history + 1), rows)
        for test in tests:
            if test.get("outcome") in ("failed", "error"):
                test["captured"] = [
                    {"phase": "call", "stream": "stdout", "text": "connecting to the provider\n"},
                    {"phase": "call", "stream": "stderr", "text": "warning: slow response\n"},
                ]
    small_run, small_tests = sample_run(100)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        page = folder / "report.html"
        small = folder / "small.html"
        json_s, json_cpu = timed(
            lambda: write_run_json(folder / "run.json", build_run_document(run, tests)),
            options.rounds,
        )
        html_s, html_cpu = timed(
            lambda: write_report(page, run, tests, history=history), options.rounds
        )
        write_report(small, small_run, small_tests)
        size = page.stat().st_size
        zipped = len(gzip.compress(page.read_bytes(), 6))
        json_size = (folder / "run.json").stat().st_size
        figures = small_figures = None
        if not options.no_browser:
            figures = browser_figures(page, options.rounds)
            small_figures = browser_figures(small, options.rounds)
    print(
        f"synthetic run of {options.tests} tests, medians of {options.rounds} rounds,"
        f" {options.history} runs of history per test"
    )
    print(f"{'figure':44} {'value':>12} {'baseline':>12} {'ratio':>7}")
    print(f"{'page size (MB)':44} {size / 1e6:12.2f} {json_size / 1e6:12.2f} "
          f"{size / json_size:7.2f}   baseline: the --kari-json file")  # fmt: skip
    print(f"{'page size gzipped (MB)':44} {zipped / 1e6:12.2f}")
    print(f"{'generate and write, wall (s)':44} {html_s:12.2f} {json_s:12.2f} "
          f"{html_s / json_s:7.2f}   baseline: writing the JSON export")  # fmt: skip
    print(f"{'generate and write, CPU (s)':44} {html_cpu:12.2f} {json_cpu:12.2f} "
          f"{html_cpu / json_cpu:7.2f}")  # fmt: skip
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if figures and small_figures:
        for key, label in (
            ("paint", "first contentful paint in Chromium (ms)"),
            ("ready", "test table ready (ms)"),
            ("expand", "open one test's details (ms)"),
        ):
            value, base = figures[key], small_figures[key]
            print(f"{label:44} {value:12.0f} {base:12.0f} {value / base:7.2f}"
                  "   baseline: the same page for 100 tests")  # fmt: skip


if __name__ == "__main__":
    main()
