"""Hang dumps: ``--kari-hang-dump`` and tests that pytest-timeout stops (signal and thread)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from markdown_support import body, parse

STUCK = """
import asyncio
import threading
import pytest

def wait_for_job(release):
    release.wait({wait})

def test_fast():
    pass

def test_stuck():
    release = threading.Event()
    worker = threading.Thread(target=wait_for_job, args=(release,), name="stuck-worker")
    worker.start()
    worker.join()

async def fetch_slowly():
    await asyncio.sleep({wait})

def test_async():
    async def main():
        task = asyncio.create_task(fetch_slowly(), name="slow-fetch")
        await task
    asyncio.run(main())
"""


def _tests(path: Path) -> dict[str, dict[str, Any]]:
    return {t["nodeid"].split("::")[1]: t for t in json.loads(path.read_text())["tests"]}


def _threads(dump: dict[str, Any]) -> dict[str, str]:
    return {thread["name"]: thread["function"] for thread in dump["threads"]}


#: The inner run's conftest: ``hang_dumps[n]`` is set once the test's (n+1)-th dump is taken
#: (the pytest_kari_debug_hang_dump hook), so a test waits for dumps, not for wall time.
DUMP_EVENTS = """
import threading
import pytest

_EVENTS = {}

@pytest.fixture
def hang_dumps(request):
    events = _EVENTS[request.node.nodeid] = [threading.Event() for _ in range(4)]
    yield events
    del _EVENTS[request.node.nodeid]

def pytest_kari_debug_hang_dump(item, number, dump):
    events = _EVENTS.get(item.nodeid)
    if events is not None and number <= len(events):
        events[number - 1].set()
"""

#: Stuck until the watchdog took its third dump, then as long again as a fourth would need.
STUCK_UNTIL_DUMPED = """
import asyncio
import threading
import time

THRESHOLD = {threshold}

def wait_for_job(release):
    release.wait(60)

def test_fast():
    pass

def test_stuck(hang_dumps):
    release = threading.Event()
    worker = threading.Thread(target=wait_for_job, args=(release,), name="stuck-worker")
    worker.start()
    third = hang_dumps[2].wait(60)
    time.sleep(2 * THRESHOLD)  # a fourth dump would come meanwhile: it must not
    release.set()
    worker.join()
    assert third

async def fetch_slowly(dumped):
    deadline = time.monotonic() + 60
    while not dumped.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)

def test_async(hang_dumps):
    async def main():
        task = asyncio.create_task(fetch_slowly(hang_dumps[0]), name="slow-fetch")
        await task
    asyncio.run(main())
    assert hang_dumps[0].is_set()
"""


def test_slow_test_is_dumped_without_changing_its_outcome(pytester: pytest.Pytester) -> None:
    """A test past --kari-hang-dump gets the stacks of its threads (a thread named stuck-worker
    in its own function) and asyncio tasks in its record, at 1x, 2x and 3x the threshold and
    never more, and still passes. The inner tests wait for the dumps (a hook tells them), not
    for wall time, so a loaded machine cannot change the count."""
    pytester.makeconftest(DUMP_EVENTS)
    pytester.makepyfile(test_h=STUCK_UNTIL_DUMPED.format(threshold=0.3))
    result = pytester.runpytest(
        "--kari-hang-dump=0.3", "--kari-json=run.json", "--kari-markdown=summary.md"
    )
    result.assert_outcomes(passed=3)
    tests = _tests(pytester.path / "run.json")
    assert "hang_dump" not in tests["test_fast"]["extra"]
    stuck = tests["test_stuck"]["extra"]["hang_dump"]
    assert stuck["reason"] == "slow"
    assert stuck["seconds"] == 0.3
    assert len(stuck["dumps"]) == 3
    assert [d["after_s"] >= 0.3 * n for n, d in enumerate(stuck["dumps"], 1)] == [True] * 3
    first = stuck["dumps"][0]
    assert _threads(first)["stuck-worker"] == "wait_for_job"
    assert _threads(first)["MainThread"] == "test_stuck"
    assert "kari-debug-hang-watchdog" not in _threads(first)
    assert "in wait_for_job\n    release.wait(60)" in first["text"]
    tasks = tests["test_async"]["extra"]["hang_dump"]["dumps"][0]["tasks"]
    slow = next(task for task in tasks if task["name"] == "slow-fetch")
    assert slow["function"] == "fetch_slowly"
    assert slow["thread"] == "MainThread"
    rows = body(parse((pytester.path / "summary.md").read_text()), "Hang dumps")
    assert [row[0] for row in rows] == ["test_h.py::test_stuck", "test_h.py::test_async"]
    assert "stuck-worker in wait_for_job" in rows[0][3]


def test_hang_dump_hook_sees_each_dump_as_it_is_taken(pytester: pytest.Pytester) -> None:
    """pytest_kari_debug_hang_dump gets each dump while the test runs; a hook that raises
    is a diagnostic, never a changed outcome or a lost dump."""
    pytester.makeconftest(DUMP_EVENTS)
    pytester.makepyfile(
        brokenhook="""
SEEN = []

def pytest_kari_debug_hang_dump(item, number, dump):
    SEEN.append((item.name, number, "stuck-worker" in dump["text"]))
    raise RuntimeError("a broken hook")

def pytest_sessionfinish(session):
    print("seen:", SEEN)
"""
    )
    pytester.syspathinsert()
    pytester.makepyfile(test_h=STUCK_UNTIL_DUMPED.format(threshold=0.3))
    result = pytester.runpytest(
        "-p", "brokenhook", "--kari-hang-dump=0.3", "--kari-json=run.json", "-s", "-k", "stuck"
    )
    result.assert_outcomes(passed=1)
    seen = "seen: [('test_stuck', 1, True), ('test_stuck', 2, True), ('test_stuck', 3, True)]"
    assert seen in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*calling pytest_kari_debug_hang_dump*RuntimeError: a broken hook*"]
    )
    assert len(_tests(pytester.path / "run.json")["test_stuck"]["extra"]["hang_dump"]["dumps"]) == 3


def test_hang_dump_value_is_checked(pytester: pytest.Pytester) -> None:
    """A hang-dump value that is not a positive number of seconds is a usage error."""
    pytester.makepyfile("def test_ok():\n    pass\n")
    for bad in ("soon", "0", "-1", "nan"):
        result = pytester.runpytest(f"--kari-hang-dump={bad}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*--kari-hang-dump {bad!r} is not a number of seconds > 0*"])


def test_signal_timeout_records_the_dump(pytester: pytest.Pytester) -> None:
    """A test pytest-timeout stops by signal fails as pytest-timeout says, and its record holds
    the dump taken when the timeout fired, stuck-worker included."""
    pytester.makepyfile(test_h=STUCK.format(wait=3.0))
    result = pytester.runpytest(
        "--kari-debug",
        "--kari-json=run.json",
        "--timeout=0.5",
        "--timeout-method=signal",
        "-k",
        "stuck or fast",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Failed: Timeout (>0.5s) from pytest-timeout*"])
    stuck = _tests(pytester.path / "run.json")["test_stuck"]
    hang = stuck["extra"]["hang_dump"]
    assert hang["reason"] == "timeout"
    assert _threads(hang["dumps"][-1])["stuck-worker"] == "wait_for_job"
    assert _threads(hang["dumps"][-1])["MainThread"] == "test_stuck"


def test_thread_timeout_keeps_finished_tests_store_json_and_report(
    pytester: pytest.Pytester,
) -> None:
    """pytest-timeout's thread method ends the process: the tests finished before, the timed-out
    test with its dump, the store, the JSON, the report and the summary are all written first."""
    pytester.makepyfile(test_h=STUCK.format(wait=30.0))
    result = pytester.runpytest_subprocess(
        "--kari-json=run.json",
        "--kari-report=report.html",
        "--kari-markdown=summary.md",
        "--timeout=1",
        "--timeout-method=thread",
        "-k",
        "fast or stuck",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*Timeout*"])
    tests = _tests(pytester.path / "run.json")
    assert tests["test_fast"]["outcome"] == "passed"
    stuck = tests["test_stuck"]
    assert stuck["outcome"] == "failed"
    assert "pytest-timeout (thread method) ended the process" in stuck["longrepr"]
    assert _threads(stuck["extra"]["hang_dump"]["dumps"][-1])["stuck-worker"] == "wait_for_job"
    report = (pytester.path / "report.html").read_text()
    assert "test_stuck" in report
    assert "wait_for_job" in report
    rows = body(parse((pytester.path / "summary.md").read_text()), "Failing tests")
    assert [row[0] for row in rows] == ["test_h.py::test_stuck"]
    with sqlite3.connect(pytester.path / ".kari-debug" / "kari.db") as db:
        stored = sorted(row[0] for row in db.execute("select nodeid from tests"))
        finished = db.execute("select finished_at from runs").fetchone()[0]
    assert stored == ["test_h.py::test_fast", "test_h.py::test_stuck"]
    assert finished is not None


def test_report_shows_the_hang_dump(pytester: pytest.Pytester) -> None:
    """The HTML report's entry of a hung test has a Hang dump panel with each thread's stack."""
    from conftest import require_tool
    from test_report_browser import CHROMIUM, CHROMIUM_ARGS, expand, expect, index_of

    require_tool(CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    pytester.makepyfile(test_h=STUCK.format(wait=0.5))
    pytester.runpytest(
        "--kari-hang-dump=0.3", "--kari-report=report.html", "--kari-store=none", "-k", "stuck"
    ).assert_outcomes(passed=1)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            page.goto((pytester.path / "report.html").as_uri())
            page.wait_for_selector("html[data-ready=true]")
            detail = expand(page, index_of(page, "test_stuck"))
            dump = detail.locator("section.panel", has_text="Hang dump").locator("pre.hang")
            expect(dump).to_have_count(1)
            expect(dump).to_contain_text("Thread 'stuck-worker'")
            expect(dump).to_contain_text("in wait_for_job")
        finally:
            chromium.close()
