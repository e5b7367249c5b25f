"""Never lose a test: hostile values, a lone surrogate, stale reports and strict exports."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from pytest_kari_debug.exporters.json_export import SCHEMA_PATH

HOSTILE_VALUES = """
import logging
import time

class BadRepr:
    def __repr__(self):
        raise RuntimeError("repr broke")

class NonStrRepr:
    def __repr__(self):
        return 42

class SlowRepr:
    def __repr__(self):
        time.sleep(1.0)
        return "slow"

def test_huge_log_field(kari_logger):
    kari_logger.info("huge", v=10**5000)

def test_huge_stdlib_extra():
    logging.getLogger("app").warning("extra", extra={"v": 10**5000, "obj": BadRepr()})

def test_span_tag_bad_repr(kari_tracer):
    with kari_tracer.start_span("work") as span:
        span.set_tag("k", BadRepr())
        span.set_tag("n", NonStrRepr())
        span.set_tag("nested", {"a": [10**5000]})

def test_error_context(kari_errors):
    kari_errors.record_exception(ValueError("boom"), context={"a": [10**5000], "b": BadRepr()})

def test_slow_repr(kari_logger):
    started = time.monotonic()
    kari_logger.info("slow", value=SlowRepr())
    assert time.monotonic() - started < 0.9
"""

SURROGATE_FAILURE = """
import os

def test_file_name():
    name = os.fsdecode(b"report-\\xff.csv")
    assert name.endswith(".txt"), f"unexpected file {name}"

def test_ok():
    pass
"""

FULL_DISK_CONFTEST = """
import errno
import os

import pytest_kari_debug.atomic as atomic

class _FullDisk:
    '''os, except that fsync reports a full disk: every atomic write fails.'''

    def __getattr__(self, name):
        return getattr(os, name)

    def fsync(self, fd):
        raise OSError(errno.ENOSPC, "No space left on device")

atomic.os = _FullDisk()

def pytest_unconfigure(config):
    atomic.os = os  # in-process pytester runs share the module
"""


def _json(path: Path) -> dict:
    document = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    return document


def _records(document: dict, nodeid_end: str, component: str) -> list[dict]:
    [test] = [t for t in document["tests"] if t["nodeid"].endswith(nodeid_end)]
    return test["collected_data"][component]["records"]


def _stored_nodeids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return sorted(row[0] for row in db.execute("SELECT nodeid FROM tests"))


def test_hostile_values_never_drop_a_test(pytester: pytest.Pytester) -> None:
    """Huge ints, raising/non-str/slow reprs in logs, extra, tags and context: every test is
    recorded and passes; each bad value is a placeholder (case A)."""
    pytester.makepyfile(test_hostile=HOSTILE_VALUES)
    result = pytester.runpytest(
        "--kari-trace", "--kari-json=run.json", "--kari-report=r.html", "--kari-store=k.db"
    )
    result.assert_outcomes(passed=5)
    result.stdout.no_fnmatch_line("*internal error*")
    result.stdout.fnmatch_lines(["5 tests recorded for 1 extension(s)*: 5 passed"])
    document = _json(pytester.path / "run.json")
    assert document["diagnostics"] == []
    assert len(document["tests"]) == 5
    [huge] = _records(document, "test_huge_log_field", "logging")
    assert huge["fields"]["v"] == (
        "<unrepresentable int: integer of 16610 bits exceeds the int-to-str limit>"
    )
    extra = _records(document, "test_huge_stdlib_extra", "logging")[0]["fields"]
    assert extra["v"].startswith("<unrepresentable int")
    assert extra["obj"] == "<unrepresentable BadRepr: repr raised RuntimeError: repr broke>"
    spans = _records(document, "test_span_tag_bad_repr", "tracing")
    [work] = [s for s in spans if s["name"] == "work"]
    assert work["tags"]["k"].startswith("<unrepresentable BadRepr")
    assert work["tags"]["n"].startswith("<unrepresentable NonStrRepr: repr raised TypeError")
    assert work["tags"]["nested"]["a"][0].startswith("<unrepresentable int")
    [error] = _records(document, "test_error_context", "error_tracking")
    assert error["context"]["a"][0].startswith("<unrepresentable int")
    assert error["context"]["b"].startswith("<unrepresentable BadRepr")
    [slow] = _records(document, "test_slow_repr", "logging")
    assert slow["fields"]["value"] == "<unrepresentable SlowRepr: repr took longer than 0.2 s>"
    assert len(_stored_nodeids(pytester.path / "k.db")) == 5
    assert "test_span_tag_bad_repr" in (pytester.path / "r.html").read_text(encoding="utf-8")


def _assert_surrogate_run_written(pytester: pytest.Pytester) -> None:
    document = _json(pytester.path / "run.json")
    outcomes = {t["nodeid"].split("::")[-1]: t["outcome"] for t in document["tests"]}
    assert outcomes == {"test_file_name": "failed", "test_ok": "passed"}
    assert document["diagnostics"] == []
    [failed] = [t for t in document["tests"] if t["outcome"] == "failed"]
    assert "unexpected file report-\\udcff.csv" in failed["longrepr"]
    html = (pytester.path / "r.html").read_text(encoding="utf-8")
    assert "test_file_name" in html
    errors_csv = (pytester.path / "csv" / "errors.csv").read_text(encoding="utf-8")
    assert "report-\\udcff.csv" in errors_csv
    assert len(_stored_nodeids(pytester.path / "k.db")) == 2


def test_a_lone_surrogate_in_failure_text_keeps_every_output(pytester: pytest.Pytester) -> None:
    """A non-UTF-8 file name in an assertion message: report, JSON, CSV, store all written,
    the surrogate escaped as \\udcff (case B)."""
    pytester.makepyfile(SURROGATE_FAILURE)
    result = pytester.runpytest(
        "--kari-debug", "--kari-json=run.json", "--kari-report=r.html", "--kari-store=k.db",
        "--kari-csv=csv",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.no_fnmatch_line("*internal error*")
    _assert_surrogate_run_written(pytester)


@pytest.mark.parametrize("env", [{"LANG": "C", "LC_ALL": "C"}, {"PYTHONIOENCODING": "ascii"}])
def test_a_lone_surrogate_under_an_ascii_locale(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    """The same run in a subprocess with LANG=C or PYTHONIOENCODING=ascii writes everything."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(SURROGATE_FAILURE)
    # pytest itself prints the raw byte under LANG=C: read the output as bytes.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kari-debug",
         "--kari-json=run.json", "--kari-report=r.html", "--kari-store=k.db", "--kari-csv=csv"],
        cwd=pytester.path, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "1 failed, 1 passed" in output
    assert "internal error" not in output
    assert "Traceback" not in output
    _assert_surrogate_run_written(pytester)


def _old_outputs(pytester: pytest.Pytester) -> tuple[Path, Path]:
    report, document = pytester.path / "r.html", pytester.path / "run.json"
    report.write_text("<html>OLD RUN REPORT</html>", encoding="utf-8")
    document.write_text('{"old": true}', encoding="utf-8")
    return report, document


def test_a_report_that_cannot_be_written_leaves_no_stale_file(pytester: pytest.Pytester) -> None:
    """On a full disk the earlier run's report and JSON are removed, never left as if current;
    the run's outcome is unchanged and a diagnostic says why."""
    pytester.makeconftest(FULL_DISK_CONFTEST)
    pytester.makepyfile("def test_ok(): pass")
    report, document = _old_outputs(pytester)
    result = pytester.runpytest("--kari-json=run.json", "--kari-report=r.html")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*could not write --kari-report *r.html*No space left on device*",
            "*could not write --kari-json 'run.json'*No space left on device*",
        ]
    )
    assert not report.exists()
    assert not document.exists()


def test_a_failed_report_is_replaced_by_a_page_saying_why(pytester: pytest.Pytester) -> None:
    """When rendering fails but the disk works, a page naming the failure replaces the old
    report."""
    pytester.makeconftest(
        """
        import pytest_kari_debug.report as feature  # the report feature imports it when it writes

        def broken(*args, **kwargs):
            raise RuntimeError("template exploded")

        original, feature.write_report = feature.write_report, broken

        def pytest_unconfigure(config):
            feature.write_report = original  # in-process pytester runs share the module
        """
    )
    pytester.makepyfile("def test_ok(): pass")
    report, _ = _old_outputs(pytester)
    result = pytester.runpytest("--kari-report=r.html")
    assert result.ret == 0
    page = report.read_text(encoding="utf-8")
    assert "OLD RUN" not in page
    assert "could not be written" in page
    assert "RuntimeError: template exploded" in page


def test_a_run_that_records_no_test_leaves_no_stale_report(pytester: pytest.Pytester) -> None:
    """A run with every test deselected does not leave the previous run's report and JSON."""
    pytester.makepyfile("def test_ok(): pass")
    report, document = _old_outputs(pytester)
    result = pytester.runpytest("--kari-json=run.json", "--kari-report=r.html", "-k", "nothing")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "no test was recorded in this run" in report.read_text(encoding="utf-8")
    assert not document.exists()


@pytest.mark.parametrize("how", ["flag", "ini"])
def test_strict_exports_fail_the_run(pytester: pytest.Pytester, how: str) -> None:
    """--kari-strict-exports (or ini kari_strict_exports) turns an export failure into a
    failed run; without it the run passes."""
    pytester.makeconftest(FULL_DISK_CONFTEST)
    pytester.makepyfile("def test_ok(): pass")
    assert pytester.runpytest("--kari-debug", "--kari-json=run.json").ret == 0
    if how == "ini":
        pytester.makeini("[pytest]\nkari_strict_exports = true\n")
        result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    else:
        result = pytester.runpytest("--kari-debug", "--kari-json=run.json", "--kari-strict-exports")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*--kari-strict-exports: the run fails because json could not*"])


def test_strict_exports_pass_when_everything_is_written(pytester: pytest.Pytester) -> None:
    """A run whose outputs are all written passes under --kari-strict-exports."""
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest(
        "--kari-strict-exports", "--kari-json=run.json", "--kari-report=r.html", "--kari-csv=csv"
    )
    assert result.ret == 0


def test_a_failing_record_hook_loses_a_part_never_the_test(pytester: pytest.Pytester) -> None:
    """A pytest_kari_debug_test_record hook that raises: the test is still recorded, and a
    diagnostic names the test and what went missing."""
    pytester.makeconftest(
        """
        def pytest_kari_debug_test_record(item, record):
            raise RuntimeError("feature broke")
        """
    )
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(passed=1)
    document = _json(pytester.path / "run.json")
    assert [t["nodeid"] for t in document["tests"]] == [
        "test_a_failing_record_hook_loses_a_part_never_the_test.py::test_ok"
    ]
    [diagnostic] = document["diagnostics"]
    assert "could not be built and is missing: RuntimeError: feature broke" in diagnostic
