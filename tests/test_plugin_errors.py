"""The plugin's error tracking: failing tests' exceptions grouped over the run and over runs."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import read_json

from pytest_kari_debug.storage import Store

EXTENSION = """
def load(item_id):
    return _fetch(item_id)

def _fetch(item_id):
    raise KeyError(f"item {item_id} missing (request {item_id * 7919:x})")

def parse(text):
    raise ValueError("invalid input")

def fetch(text):
    raise ValueError("invalid input")

def recurse(n):
    return recurse(n + 1)
"""


def _error_records(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        record
        for test in document["tests"]
        for record in test["collected_data"].get("error_tracking", {}).get("records", [])
    ]


def test_fifty_tests_hitting_one_bug_form_one_group(pytester: pytest.Pytester) -> None:
    """The same bug raised from 50 different tests with different ids is one group of 50."""
    pytester.makepyfile(kari_ext=EXTENSION)
    tests = "\n".join(f"def test_item_{i}():\n    kari_ext.load({i})\n" for i in range(50))
    pytester.makepyfile(test_items="import kari_ext\n\n" + tests)
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=50)
    document = read_json(pytester)
    records = _error_records(document)
    assert len(records) == 50
    assert len({record["fingerprint"] for record in records}) == 1
    assert len({record["error_message"] for record in records}) == 50
    section = document["sections"]["errors"]
    assert (section["total_errors"], section["unique_errors"]) == (50, 1)
    [group] = section["groups"]
    assert (group["count"], group["tests"], group["new"]) == (50, 50, True)
    assert group["culprit"] == "kari_ext in _fetch"
    result.stdout.fnmatch_lines(
        [
            "errors: 50 in 1 group(s), 50 test(s) affected; 1 new, 0 regressed",
            "  [[]#1 *[]] 50x KeyError: 'item * missing (request *)' (programming;"
            " 50 test(s)) at kari_ext in _fetch NEW",
        ]
    )


def test_two_bugs_with_the_same_message_form_two_groups(pytester: pytest.Pytester) -> None:
    """Two code paths raising the same message are listed as two groups."""
    pytester.makepyfile(kari_ext=EXTENSION)
    pytester.makepyfile(
        test_two="""
        import kari_ext

        def test_parse():
            kari_ext.parse("x")

        def test_fetch():
            kari_ext.fetch("x")
        """
    )
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(failed=2)
    section = read_json(pytester)["sections"]["errors"]
    assert section["unique_errors"] == 2
    assert sorted(g["culprit"] for g in section["groups"]) == [
        "kari_ext in fetch",
        "kari_ext in parse",
    ]


def test_failing_test_exception_is_recorded_with_its_nodeid(pytester: pytest.Pytester) -> None:
    """A failing test's exception becomes an error record of that test, in JSON and store."""
    pytester.makepyfile(
        test_one="""
        def test_fails():
            raise ConnectionRefusedError("upstream at 10.0.0.5:443 refused")

        def test_passes():
            pass
        """
    )
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(failed=1, passed=1)
    document = read_json(pytester)
    by_test = {t["nodeid"]: t["collected_data"]["error_tracking"] for t in document["tests"]}
    [record] = by_test["test_one.py::test_fails"]["records"]
    assert by_test["test_one.py::test_passes"]["records"] == []
    assert record["nodeid"] == "test_one.py::test_fails"
    assert record["source"] == "test"
    assert record["context"] == {"phase": "call"}
    assert record["category"] == "network"
    assert record["error_type"] == "ConnectionRefusedError"
    assert "_pytest" not in record["stack_trace"].split("omitted ...]")[-1]
    store = Store(pytester.path / ".kari-debug" / "kari.db")
    stored = store.records("error")
    assert [(r["nodeid"], r["error_type"]) for r in stored] == [
        ("test_one.py::test_fails", "ConnectionRefusedError")
    ]
    [group] = store.error_groups()
    assert (group["count"], group["status"], group["category"]) == (1, "unresolved", "network")


def test_errors_recorded_during_a_test_are_tagged_with_its_nodeid(
    pytester: pytest.Pytester,
) -> None:
    """Errors the test records itself (fixture kari_errors) carry the test's node id."""
    pytester.makepyfile(
        test_rec="""
        def test_records(kari_errors):
            kari_errors.record_error("ValidationError", "bad field 'age'", severity="warning")
        """
    )
    result = pytester.runpytest("--kari-json=run.json")
    result.assert_outcomes(passed=1)
    [record] = _error_records(read_json(pytester))
    assert (record["nodeid"], record["level"], record["source"]) == (
        "test_rec.py::test_records",
        "warning",
        "record",
    )


def test_failing_exception_whose_str_raises_is_recorded(pytester: pytest.Pytester) -> None:
    """A test failing with an exception whose __str__ raises still gets its error record."""
    pytester.makepyfile(
        test_bad="""
        class Broken(Exception):
            def __str__(self):
                raise RuntimeError("no text")

        def test_broken():
            raise Broken()
        """
    )
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(failed=1)
    [record] = _error_records(read_json(pytester))
    assert record["error_type"] == "test_bad.Broken"
    assert record["error_message"] == "<unrepresentable Broken: str raised RuntimeError: no text>"
    assert record["grouping"] == "stack"


def test_setup_and_teardown_errors_are_recorded(pytester: pytest.Pytester) -> None:
    """Exceptions of fixtures, in setup and in teardown, are recorded with their phase."""
    pytester.makepyfile(
        test_fix="""
        import pytest

        @pytest.fixture
        def broken_setup():
            raise PermissionError("token lacks scope")

        @pytest.fixture
        def broken_teardown():
            yield
            raise MemoryError()

        def test_setup(broken_setup):
            pass

        def test_teardown(broken_teardown):
            pass
        """
    )
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(passed=1, errors=2)
    phases = {
        (r["nodeid"], r["context"]["phase"], r["category"])
        for r in _error_records(read_json(pytester))
    }
    assert phases == {
        ("test_fix.py::test_setup", "setup", "permission"),
        ("test_fix.py::test_teardown", "teardown", "resource"),
    }


def test_skips_and_expected_failures_are_not_errors(pytester: pytest.Pytester) -> None:
    """Skipped and xfailed tests record no error."""
    pytester.makepyfile(
        test_skip="""
        import pytest

        def test_skip():
            pytest.skip("not here")

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            raise ValueError("known bug")

        def test_imperative_xfail():
            pytest.xfail("later")
        """
    )
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(skipped=1, xfailed=2)
    document = read_json(pytester)
    assert _error_records(document) == []
    assert document["sections"]["errors"]["total_errors"] == 0
    assert "errors:" not in result.stdout.str()


def test_logged_exception_is_recorded_once_when_the_test_fails(pytester: pytest.Pytester) -> None:
    """An exception logged with exc_info and then failing the test counts once."""
    pytester.makepyfile(
        test_log="""
        def test_logs_and_raises(kari_logger):
            try:
                raise TimeoutError("upstream took 31s")
            except TimeoutError as exc:
                kari_logger.log("ERROR", "fetch failed", exc_info=exc)
                raise

        def test_only_logs(kari_logger):
            try:
                raise TimeoutError("upstream took 12s")
            except TimeoutError as exc:
                kari_logger.log("ERROR", "fetch failed", exc_info=exc)
        """
    )
    result = pytester.runpytest("--kari-json=run.json")
    result.assert_outcomes(failed=1, passed=1)
    records = _error_records(read_json(pytester))
    # The logger reports the exception live (source "log"); the test's failure is the same one.
    assert sorted((r["nodeid"], r["source"]) for r in records) == [
        ("test_log.py::test_logs_and_raises", "log"),
        ("test_log.py::test_only_logs", "log"),
    ]
    assert {r["category"] for r in records} == {"timeout"}


def test_recursion_error_is_truncated_in_the_store(pytester: pytest.Pytester) -> None:
    """A RecursionError of a test is stored with max_stack_frames frames, not its whole stack."""
    pytester.makepyfile(kari_ext=EXTENSION)
    pytester.makepyfile(test_rec="import kari_ext\n\ndef test_deep():\n    kari_ext.recurse(0)\n")
    result = pytester.runpytest(
        "--kari-debug", "--kari-max-stack-frames=30", "-p", "no:faulthandler"
    )
    result.assert_outcomes(failed=1)
    store = Store(pytester.path / ".kari-debug" / "kari.db")
    [record] = store.records("error")
    assert record["error_type"] == "RecursionError"
    assert len(record["frames"]) == 30
    assert record["frames_omitted"] > 100
    assert record["stack_trace"].count('File "') <= 30
    assert len(json.dumps(record)) < 50_000


def test_errors_csv_written_with_the_run(pytester: pytest.Pytester) -> None:
    """--kari-csv writes errors.csv: one row per error, parsed back, formulas guarded."""
    pytester.makepyfile(
        test_csv="""
        def test_formula():
            raise ValueError("=HYPERLINK(1, 2), with \\"quotes\\"\\nand a newline")

        def test_ok():
            pass
        """
    )
    result = pytester.runpytest("-v", "--kari-debug", "--kari-csv=out")
    result.assert_outcomes(failed=1, passed=1)
    path = pytester.path / "out" / "errors.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    [row] = rows
    assert row["nodeid"] == "test_csv.py::test_formula"
    assert row["error_message"] == '\'=HYPERLINK(1, 2), with "quotes"\nand a newline'
    assert row["category"] == "validation"
    assert row["group_id"] == "1"
    assert row["group_status"] == "unresolved"
    assert row["fingerprint"]
    result.stdout.fnmatch_lines(["errors csv: *errors.csv"])


def test_errors_csv_has_a_header_even_without_errors(pytester: pytest.Pytester) -> None:
    """A run without errors still writes errors.csv, with the header only."""
    pytester.makepyfile("def test_ok():\n    pass\n")
    pytester.runpytest("--kari-debug", "--kari-csv=out").assert_outcomes(passed=1)
    lines = (pytester.path / "out" / "errors.csv").read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("run_id,ts,nodeid,extension_id")


def test_resolution_and_regression_across_two_runs(pytester: pytest.Pytester) -> None:
    """A group resolved after run 1 that fails again in run 2 is reported as a regression."""
    pytester.makepyfile(kari_ext=EXTENSION)
    pytester.makepyfile(
        test_bug="""
        import kari_ext

        def test_a():
            kari_ext.load(1)

        def test_b():
            kari_ext.load(2)
        """
    )
    first = pytester.runpytest("--kari-debug", "--kari-json=run1.json")
    first.assert_outcomes(failed=2)
    db = pytester.path / ".kari-debug" / "kari.db"
    store = Store(db)
    [group] = store.error_groups(status="unresolved")
    store.resolve_error_group(group["fingerprint"][:8], notes="fixed the cache lookup")
    store.close()
    second = pytester.runpytest("--kari-debug", "--kari-json=run2.json")
    second.assert_outcomes(failed=2)
    second.stdout.fnmatch_lines(
        [
            "errors: 2 in 1 group(s), 2 test(s) affected; 0 new, 1 regressed;"
            " trend over 2 runs: stable",
            "*2x KeyError*REGRESSED after being resolved: fixed the cache lookup",
        ]
    )
    section = read_json(pytester, "run2.json")["sections"]["errors"]
    assert section["regressed_groups"] == [group["fingerprint"]]
    assert section["new_groups"] == []
    [stored] = section["groups"]
    assert (stored["first_seen_run"], stored["runs_seen"], stored["total_count"]) == (1, 2, 4)
    persisted = (
        sqlite3.connect(db)
        .execute("SELECT kind, key, state, regressed_run, notes FROM resolutions")
        .fetchall()
    )
    assert persisted == [
        ("error_group", group["fingerprint"], "regressed", 2, "fixed the cache lookup")
    ]
    third = pytester.runpytest("--kari-debug")
    third.assert_outcomes(failed=2)
    assert "REGRESSED" not in third.stdout.str()
    third.stdout.fnmatch_lines(["*2x KeyError*first seen run 1"])


def test_trend_over_runs_in_the_summary(pytester: pytest.Pytester) -> None:
    """Error counts rising over runs read as a rising trend in the summary."""
    pytester.makepyfile(kari_ext=EXTENSION)
    for failing in (1, 3, 6):
        body = "\n".join(f"def test_{i}():\n    kari_ext.parse('x')\n" for i in range(failing))
        pytester.makepyfile(test_trend="import kari_ext\n\n" + body)
        result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
        result.assert_outcomes(failed=failing)
    result.stdout.fnmatch_lines(["errors: 6 in 1 group(s)*; trend over 3 runs: rising"])
    trend = read_json(pytester)["sections"]["errors"]["trend"]
    assert [run["count"] for run in trend["runs"]] == [1, 3, 6]


def test_errors_grouped_across_xdist_workers(pytester: pytest.Pytester) -> None:
    """With -n 2 the controller groups the errors of both workers into one group."""
    pytest.importorskip("xdist")
    pytester.makepyfile(kari_ext=EXTENSION)
    tests = "\n".join(f"def test_{i}():\n    kari_ext.load({i})\n" for i in range(8))
    pytester.makepyfile(test_x="import kari_ext\n\n" + tests)
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json", "-n", "2")
    result.assert_outcomes(failed=8)
    section = read_json(pytester)["sections"]["errors"]
    assert (section["total_errors"], section["unique_errors"]) == (8, 1)
    store = Store(pytester.path / ".kari-debug" / "kari.db")
    [group] = store.error_groups()
    assert group["count"] == 8


def test_no_store_still_groups_the_run(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """With --kari-store=none the run's groups are listed, without history."""
    pytester.makepyfile(kari_ext=EXTENSION)
    pytester.makepyfile(test_n="import kari_ext\n\ndef test_a():\n    kari_ext.parse('x')\n")
    result = pytester.runpytest("--kari-debug", "--kari-store=none", "--kari-json=run.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["errors: 1 in 1 group(s), 1 test(s) affected", "*1x ValueError*"])
    section = read_json(pytester)["sections"]["errors"]
    assert section["store"] is False
    assert section["groups"][0]["group_id"] is None


FAULTY_CONFTEST = """
from pytest_kari_debug.errors import ErrorTracker
from pytest_kari_debug.storage import Store

def explode(self, *args, **kwargs):
    raise RuntimeError("injected fault")

ErrorTracker.record_exception = explode
Store.resync_run_errors = explode
"""


def test_error_tracking_faults_never_change_outcomes(pytester: pytest.Pytester) -> None:
    """Faults in recording or syncing errors become diagnostics; outcomes and outputs stand."""
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makeconftest(FAULTY_CONFTEST)
    pytester.makepyfile(
        """
        def test_pass(kari_errors):
            kari_errors.record_error("KeyError", "an error to sync")

        def test_fail():
            raise ValueError("real failure")
        """
    )
    result = pytester.runpytest_subprocess("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(passed=1, failed=1, warnings=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*internal error in recording the failing test's exception: RuntimeError:"
            " injected fault*",
            "*internal error in syncing error groups with the store: RuntimeError: injected fault*",
        ],
        consecutive=False,
    )
    document = read_json(pytester)
    assert [t["outcome"] for t in document["tests"]] == ["passed", "failed"]
    assert document["sections"]["errors"]["total_errors"] == 1  # the failure's was not recorded
