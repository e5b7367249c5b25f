"""The profiling part of the pytest plugin: per-test call trees, memory, files, summary."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import read_json, run_with_json

from pytest_kari_debug.storage import Store

TESTS = """
import time

def cpu_hog():
    total = 0
    for i in range(200_000):
        total += i * i % 7
    return total

def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        small = [cpu_hog_step(i) for i in range(200)]
    return small

def cpu_hog_step(i):
    return sum(j * j for j in range(i % 50))

def test_cpu():
    assert all(cpu_hog() > 0 for _ in range(3))

def test_fast():
    assert True
"""


def run_json(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run pytest in-process with --kari-json and return the result and the document."""
    return run_with_json(pytester, *args)


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Test records by test function name."""
    return {test["nodeid"].split("::")[-1]: test for test in document["tests"]}


def nodes(tree: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """Every node of a compact call tree."""
    stack = [tree] if tree else []
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node["children"])


def test_kari_profile_gives_every_test_a_call_tree(pytester: pytest.Pytester) -> None:
    """--kari-profile: each test's record holds a call tree rooted at the test function."""
    pytester.makepyfile(test_work=TESTS)
    result, document = run_json(pytester, "--kari-profile")
    result.assert_outcomes(passed=2)
    tests = by_name(document)
    data = tests["test_cpu"]["collected_data"]["profiling"]
    tree = data["call_tree"]
    assert tree["function"] == "test_cpu"
    assert tree["file"].endswith("test_work.py")
    functions = {node["function"] for node in nodes(tree)}
    assert "cpu_hog" in functions
    assert data["profile"]["samples"] > 0
    assert data["profile"]["sampler"] == "pyinstrument"
    # The fast test usually runs for less than one interval (no tree, and a note saying why),
    # but a loaded machine can stall it past one: then its tree is rooted at it too.
    fast = tests["test_fast"]["collected_data"]["profiling"]
    if fast["call_tree"] is None:
        assert any("sampling interval" in note for note in fast["profile"]["notes"])
    else:
        assert fast["call_tree"]["function"] == "test_fast"


def test_test_shorter_than_the_interval_has_no_tree_and_no_files(
    pytester: pytest.Pytester,
) -> None:
    """A test shorter than the sampling interval gets a note saying why, and no profile files."""
    pytester.makepyfile(test_work=TESTS)
    result, document = run_json(
        pytester, "-k", "test_fast", "--kari-profile", "--kari-profile-interval=60",
        "--kari-profile-dir=profiles",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    fast = by_name(document)["test_fast"]
    assert fast["collected_data"]["profiling"]["call_tree"] is None
    notes = fast["collected_data"]["profiling"]["profile"]["notes"]
    assert any("sampling interval (60 s)" in note for note in notes)
    assert "files" not in fast["extra"].get("profiling", {})
    assert not list((pytester.path / "profiles").glob("*"))
    result.stdout.no_fnmatch_line("profiles: *")


def test_only_the_call_phase_is_profiled(pytester: pytest.Pytester) -> None:
    """Work done in a fixture (setup) stays out of the test's profile."""
    pytester.makepyfile(
        TESTS
        + """
import pytest

def fixture_work():
    end = time.perf_counter() + 0.2
    while time.perf_counter() < end:
        cpu_hog_step(40)

@pytest.fixture
def prepared():
    fixture_work()
    yield
    fixture_work()

def test_with_fixture(prepared):
    spin(0.1)
"""
    )
    _, document = run_json(pytester, "--kari-profile")
    tree = by_name(document)["test_with_fixture"]["collected_data"]["profiling"]["call_tree"]
    functions = {node["function"] for node in nodes(tree)}
    assert "spin" in functions
    assert "fixture_work" not in functions


def test_failing_test_keeps_its_outcome_and_profile(pytester: pytest.Pytester) -> None:
    """A test that raises stays failed and still carries the profile of its call phase."""
    pytester.makepyfile(
        TESTS
        + """
def test_breaks():
    spin(0.1)
    raise RuntimeError("broken on purpose")
"""
    )
    result, document = run_json(pytester, "--kari-profile")
    result.assert_outcomes(passed=2, failed=1)
    test = by_name(document)["test_breaks"]
    assert test["outcome"] == "failed"
    tree = test["collected_data"]["profiling"]["call_tree"]
    assert tree["function"] == "test_breaks"
    assert any(node["function"] == "spin" for node in nodes(tree))


def test_kari_profile_marker_profiles_one_test(pytester: pytest.Pytester) -> None:
    """Without --kari-profile, only the test marked kari_profile gets a call tree."""
    pytester.makepyfile(
        TESTS
        + """
import pytest

@pytest.mark.kari_profile
def test_marked():
    spin(0.1)
"""
    )
    result, document = run_json(pytester, "--kari-debug")
    result.assert_outcomes(passed=3)
    tests = by_name(document)
    marked = tests["test_marked"]["collected_data"]["profiling"]
    assert any(node["function"] == "spin" for node in nodes(marked["call_tree"]))
    assert tests["test_cpu"]["collected_data"]["profiling"]["call_tree"] is None
    assert "profile" not in tests["test_cpu"]["collected_data"]["profiling"]


def test_profile_dir_writes_html_and_speedscope(pytester: pytest.Pytester) -> None:
    """--kari-profile-dir writes pyinstrument HTML and speedscope JSON per profiled test."""
    pytester.makepyfile(test_work=TESTS)
    result, document = run_json(pytester, "-v", "--kari-profile", "--kari-profile-dir=profiles")
    result.assert_outcomes(passed=2)
    folder = pytester.path / "profiles"
    html = sorted(folder.glob("*.html"))
    speedscope = sorted(folder.glob("*.speedscope.json"))
    # One pair per test with a call tree: test_cpu always; test_fast only if a loaded machine
    # stalled it for a sampling interval (whichever happened, files and trees must agree).
    sampled = [t for t in document["tests"] if t["collected_data"]["profiling"]["call_tree"]]
    assert len(html) == len(speedscope) == len(sampled) >= 1
    assert html[0].name.startswith("test_work.py_test_cpu-")
    assert "<html" in html[0].read_text().lower()
    parsed = json.loads(speedscope[0].read_text())
    assert {"$schema", "shared", "profiles"} <= set(parsed)
    assert parsed["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert {"frames"} <= set(parsed["shared"])
    assert parsed["profiles"][0]["type"] == "evented"
    names = {frame["name"] for frame in parsed["shared"]["frames"]}
    assert "cpu_hog" in names
    files = by_name(document)["test_cpu"]["extra"]["profiling"]["files"]
    assert Path(files["html"]) == html[0]
    assert Path(files["speedscope"]) == speedscope[0]
    result.stdout.fnmatch_lines([f"profiles: *profiles ({len(sampled)} test(s))"])


def test_terminal_summary_names_slowest_tests_and_bottlenecks(pytester: pytest.Pytester) -> None:
    """The summary lists the slowest tests and names the CPU-bound function as top bottleneck."""
    pytester.makepyfile(test_work=TESTS)
    result, document = run_json(pytester, "-v", "--kari-profile")
    result.stdout.fnmatch_lines(
        [
            "profiling: 2 test(s) profiled; slowest tests (call phase):",
            "* ms  test_work.py::test_cpu",
            "* ms  test_work.py::test_fast",
            "top bottlenecks (share of profiled time):",
            "*%  cpu_hog (*test_work.py:3): CPU-bound*",
        ]
    )
    section = document["sections"]["profiling"]
    assert section["slowest_tests"][0]["nodeid"] == "test_work.py::test_cpu"
    assert section["bottlenecks"][0]["function"] == "cpu_hog"


def test_memory_names_the_allocation_site_of_a_test(pytester: pytest.Pytester) -> None:
    """--kari-memory: an allocation-heavy test's own line leads its top allocations."""
    pytester.makepyfile(
        test_alloc="""
import time

def test_allocates():
    blocks = []
    for _ in range(25):
        blocks.append([bytearray(1024) for _ in range(320)])
        time.sleep(0.002)
    assert len(blocks) == 25
"""
    )
    result, document = run_json(pytester, "--kari-memory")
    result.assert_outcomes(passed=1)
    data = by_name(document)["test_allocates"]["collected_data"]["profiling"]
    top = data["top_allocations"][0]
    assert top["file"].endswith("test_alloc.py")
    assert top["line"] == 6  # blocks.append([...]) (makepyfile drops the first newline)
    assert top["size_bytes"] > 2 * 1024 * 1024
    assert data["memory"]["peak_increase_bytes"] >= top["size_bytes"]
    assert data["call_tree"] is None  # memory only: no --kari-profile


def test_memory_skips_the_peak_snapshot_of_a_huge_live_heap(pytester: pytest.Pytester) -> None:
    """--kari-memory: a test holding ~600,000 live blocks at its peak gets no peak snapshot
    (grouping one costs seconds); the note says why and the test's own site is still named."""
    pytester.makepyfile(
        test_huge="""
import time

def test_holds_many_blocks():
    keep = [object() for _ in range(10_000)]
    blocks = [object() for _ in range(600_000)]
    time.sleep(0.05)
    del blocks
    assert len(keep) == 10_000
"""
    )
    result, document = run_json(pytester, "--kari-memory")
    result.assert_outcomes(passed=1)
    data = by_name(document)["test_holds_many_blocks"]["collected_data"]["profiling"]
    notes = data["memory"]["notes"]
    assert any("no peak snapshot" in note and "MiB of traces" in note for note in notes), notes
    assert data["memory"]["peak_increase_bytes"] > 8 * 1024 * 1024
    assert data["top_allocations"][0]["file"].endswith("test_huge.py")


def test_async_test_attributes_the_awaited_sleep(pytester: pytest.Pytester) -> None:
    """An async test's await shows under the awaiting coroutine, not in the event loop."""
    pytester.makepyfile(
        """
import asyncio
import pytest

async def fetch():
    await asyncio.sleep(0.2)

@pytest.mark.asyncio
async def test_async():
    await fetch()
"""
    )
    result, document = run_json(pytester, "--kari-profile")
    result.assert_outcomes(passed=1)
    tree = by_name(document)["test_async"]["collected_data"]["profiling"]["call_tree"]
    assert tree["function"] == "test_async"
    fetch = next(node for node in nodes(tree) if node["function"] == "fetch")
    waited = sum(n["time_s"] for n in nodes(fetch) if n["function"] == "[await]")
    assert waited >= 0.15
    assert not any("select" in n["function"] or "poll" in n["function"] for n in nodes(tree))


def test_overhead_limit_one_percent_reports_an_adjusted_rate(pytester: pytest.Pytester) -> None:
    """With a 1% limit, a call-heavy test reports the adjusted timing rate everywhere."""
    pytester.makepyfile(
        """
def test_call_heavy(kari_profiler):
    @kari_profiler.profile_function("tiny")
    def tiny(x):
        return x + 1

    for i in range(20_000):
        tiny(i)
    assert kari_profiler.get_function_stats("tiny")["calls"] == 20_000
"""
    )
    result, document = run_json(
        pytester, "-v", "--kari-profile", "--kari-profiling-overhead-limit=1"
    )
    result.assert_outcomes(passed=1)
    data = by_name(document)["test_call_heavy"]["collected_data"]["profiling"]
    assert data["profile"]["overhead"]["function_timing_every"] > 1
    assert data["functions"]["tiny"]["timed_calls"] < 20_000
    assert document["sections"]["profiling"]["overhead"]["max_function_timing_every"] > 1
    result.stdout.fnmatch_lines(
        ["profiling overhead over the 1% limit: sampling interval now *, function timing 1 in *"]
    )


def test_kari_profiler_fixture_records_timings_without_flags(pytester: pytest.Pytester) -> None:
    """Requesting kari_profiler switches the profiler on: decorated calls are timed."""
    pytester.makepyfile(
        """
def test_timed(kari_profiler):
    @kari_profiler.profile_function("step")
    def step():
        return 1

    assert step() + step() == 2
    assert kari_profiler.get_function_stats("step")["calls"] == 2
"""
    )
    result, document = run_json(pytester)
    result.assert_outcomes(passed=1)
    data = by_name(document)["test_timed"]["collected_data"]["profiling"]
    assert data["functions"]["step"]["timed_calls"] == 2
    assert data["call_tree"] is None


def test_store_holds_call_tree_and_timing_records(
    pytester: pytest.Pytester, pytester_store: Path
) -> None:
    """The store keeps the compact call tree in the test row and timings as profile records."""
    pytester.makepyfile(
        TESTS
        + """
def test_timed(kari_profiler):
    with kari_profiler.profile_block("block"):
        spin(0.05)
"""
    )
    pytester.runpytest("--kari-profile").assert_outcomes(passed=3)
    store = Store(pytester_store)
    try:
        run = store.runs()[0]
        tests = {t["nodeid"].split("::")[-1]: t for t in store.tests(run["id"])}
        records = store.records("profile", run_id=run["id"])
    finally:
        store.close()
    data = tests["test_cpu"]["collected_data"]["profiling"]
    assert data["call_tree"]["function"] == "test_cpu"
    assert [r["name"] for r in records] == ["block"]
    assert records[0]["wall_ms"] >= 50
    assert run["data"]["sections"]["profiling"]["profiled_tests"] == 3


def test_profile_dir_failure_never_fails_the_test(pytester: pytest.Pytester) -> None:
    """An unwritable --kari-profile-dir becomes a warning and a diagnostic, not a failure."""
    pytester.makepyfile(test_work=TESTS)
    (pytester.path / "blocked").write_text("a file, not a folder")
    result = pytester.runpytest("--kari-profile", "--kari-profile-dir=blocked/inner")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*internal error in stopping the test's profile*"])


def test_test_running_its_own_pyinstrument_still_passes(pytester: pytest.Pytester) -> None:
    """A sync test that runs pyinstrument itself keeps working under --kari-profile."""
    pytester.makepyfile(
        """
from pyinstrument import Profiler

def test_own_profiler():
    with Profiler() as profiler:
        sum(range(10_000))
    assert profiler.last_session is not None
"""
    )
    pytester.runpytest("--kari-profile").assert_outcomes(passed=1)


def test_profiles_with_xdist(pytester: pytest.Pytester) -> None:
    """Under xdist the controller gets every call tree and writes every profile file."""
    pytester.makepyfile(test_work=TESTS)
    pytester.makeconftest(
        """
        from pytest_kari_debug.plugin import profiling

        _write = profiling.write_atomic
        ROLE = []

        def pytest_configure(config):
            ROLE.append("worker" if hasattr(config, "workerinput") else "controller")

        def _logged(path, data):
            with open("writers.log", "a") as log:
                log.write(ROLE[0] + "\\n")
            return _write(path, data)

        profiling.write_atomic = _logged
        """
    )
    result = pytester.runpytest_subprocess(
        "-v", "-n", "2", "--kari-profile", "--kari-profile-dir=profiles", "--kari-json=run.json"
    )
    result.assert_outcomes(passed=2)
    document = read_json(pytester)
    tree = by_name(document)["test_cpu"]["collected_data"]["profiling"]["call_tree"]
    assert tree["function"] == "test_cpu"
    written = sorted(p.name for p in (pytester.path / "profiles").glob("*.speedscope.json"))
    assert written[0].startswith("test_work.py_test_cpu-")
    result.stdout.fnmatch_lines(["top bottlenecks (share of profiled time):"])
    # The workers sent the rendered files with the records; the record keeps only the paths.
    files = by_name(document)["test_cpu"]["extra"]["profiling"]
    assert set(files) == {"files"}
    assert Path(files["files"]["html"]).is_file()
    assert Path(files["files"]["speedscope"]).name == written[0]
    stored = (
        sqlite3.connect(pytester.path / ".kari-debug" / "kari.db")
        .execute("SELECT max(length(data)) FROM tests")
        .fetchone()[0]
    )
    assert stored < 200_000  # no rendered HTML in the store
    writers = (pytester.path / "writers.log").read_text().split()
    assert writers == ["controller"] * len(writers)
    assert len(writers) == 2 * len(written)  # an HTML and a speedscope file per profiled test


def test_bad_profile_min_percent_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """--kari-profile-min-percent outside 0..100 stops the run with a message naming it."""
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--kari-profile", "--kari-profile-min-percent=150")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*profile_min_percent*percentage from 0 to 100*"])
