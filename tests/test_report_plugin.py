"""``--kari-report``: the plugin writes one HTML report per run (pytester runs, real plugin)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

TESTS = """
import pytest

def test_logs_and_spans(kari_logger, kari_tracer, kari_metrics):
    kari_logger.info("fetching <b>forecast</b>", city="Oslo")
    kari_logger.warning("slow provider")
    with kari_tracer.start_span("handler"):
        with kari_tracer.start_span("provider.fetch", tags={"city": "Oslo"}):
            kari_metrics.record_metric("request_time", 12.5, "ms")
    kari_metrics.record_metric("request_time", 20.0, "ms")

def test_plain():
    assert 1 + 1 == 2

def test_fails():
    assert {"temp": 41} == {"temp": 40}
"""


def report_data(path: Path) -> dict[str, Any]:
    html = path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="kari-data">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_report_written_with_every_test(pytester: pytest.Pytester) -> None:
    """--kari-report writes one self-contained page naming every test, and says where."""
    pytester.makepyfile(test_ext=TESTS)
    result = pytester.runpytest("--kari-report=out/report.html", "--kari-store=none")
    result.assert_outcomes(passed=2, failed=1)
    path = pytester.path / "out" / "report.html"
    result.stdout.fnmatch_lines([f"report: {path}"])
    data = report_data(path)
    nodeids = [t["nodeid"] for t in data["tests"]]
    assert nodeids == [
        "test_ext.py::test_logs_and_spans",
        "test_ext.py::test_plain",
        "test_ext.py::test_fails",
    ]
    first = data["tests"][0]
    assert first["counts"]["logs"] == 2
    assert first["data"]["logging"]["records"]["message"][0] == "fetching <b>forecast</b>"
    assert first["data"]["metrics"]["records"]["value"] == [12.5, 20.0]
    html = path.read_text(encoding="utf-8")
    assert 'id="fail-2"' in html
    assert "AssertionError" in html
    assert "&lt;b&gt;forecast" not in html  # the log message lives only in the JSON block


def test_report_implies_debug_sessions(pytester: pytest.Pytester) -> None:
    """Asking for a report records tests that use no kari fixture, without --kari-debug."""
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass")
    pytester.runpytest("--kari-report=r.html", "--kari-store=none").assert_outcomes(passed=2)
    assert len(report_data(pytester.path / "r.html")["tests"]) == 2


def test_ini_key_is_relative_to_rootdir(pytester: pytest.Pytester) -> None:
    """The ini twin kari_report writes the report relative to the rootdir."""
    pytester.makeini("[pytest]\nkari_report = reports/kari.html\nkari_store = none\n")
    pytester.makepyfile(test_one="def test_a(): pass")
    sub = pytester.mkdir("elsewhere")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        result = pytester.runpytest(str(pytester.path / "test_one.py"))
    result.assert_outcomes(passed=1)
    assert (pytester.path / "reports" / "kari.html").is_file()


def test_directory_path_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A report path that is a directory stops the run at start-up with a clear message."""
    pytester.mkdir("reports")
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest("--kari-report=reports")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kari-report 'reports' is a directory*"])


def test_unwritable_report_warns_and_keeps_outcomes(pytester: pytest.Pytester) -> None:
    """A report that cannot be written becomes a warning and a diagnostic; outcomes stay."""
    pytester.makefile(".txt", blocker="not a folder")
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest("--kari-report=blocker.txt/r.html", "--kari-store=none")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*could not write --kari-report*blocker.txt*"])


def test_sections_of_other_features_are_in_the_report(pytester: pytest.Pytester) -> None:
    """The report renders after other run_finished hooks, so their sections and extras show."""
    pytester.makeconftest(
        """
        def pytest_kari_debug_test_record(item, record):
            record["extra"]["gates"] = {"verdict": "new"}

        def pytest_kari_debug_run_finished(config, run, tests, sections):
            sections["regressions"] = [
                {"nodeid": tests[0]["nodeid"], "metric": "duration", "change": "+40%"}
            ]
        """
    )
    pytester.makepyfile("def test_a(): pass")
    pytester.runpytest("--kari-report=r.html", "--kari-store=none").assert_outcomes(passed=1)
    path = pytester.path / "r.html"
    data = report_data(path)
    assert data["sections"]["regressions"][0]["change"] == "+40%"
    assert data["tests"][0]["extra"]["gates"] == {"verdict": "new"}
    assert "+40%" in path.read_text(encoding="utf-8").split('id="kari-data"')[0]


def test_xdist_run_writes_one_report(pytester: pytest.Pytester) -> None:
    """With -n 2 the controller writes one report holding the tests of both workers."""
    pytester.makepyfile(
        test_many="""
        import pytest

        @pytest.mark.parametrize("n", range(8))
        def test_n(n, kari_logger):
            kari_logger.info(f"n is {n}")
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--kari-report=r.html", "--kari-store=none")
    result.assert_outcomes(passed=8)
    data = report_data(pytester.path / "r.html")
    assert len(data["tests"]) == 8
    assert {t.get("worker") for t in data["tests"]} == {"gw0", "gw1"}


def test_report_from_the_json_export(pytester: pytest.Pytester) -> None:
    """write_report renders the same tests from a run's --kari-json document, outside pytest."""
    from pytest_kari_debug.report import write_report

    pytester.makepyfile(test_ext=TESTS)
    pytester.runpytest("--kari-debug", "--kari-json=run.json", "--kari-store=none")
    document = json.loads((pytester.path / "run.json").read_text(encoding="utf-8"))
    path = write_report(
        pytester.path / "again.html",
        document["run"],
        document["tests"],
        sections=document["sections"],
        diagnostics=document["diagnostics"],
    )
    data = report_data(path)
    assert [t["nodeid"] for t in data["tests"]] == [t["nodeid"] for t in document["tests"]]
    assert data["tests"][2]["outcome"] == "failed"


def test_gates_comparison_in_the_summary(pytester: pytest.Pytester) -> None:
    """A run compared with a saved baseline shows the comparison in the report's summary."""
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass")
    pytester.runpytest("--kari-debug", "--kari-save-baseline=b1").assert_outcomes(passed=2)
    result = pytester.runpytest("--kari-compare=b1", "--kari-report=r.html")
    result.assert_outcomes(passed=2)
    summary = (pytester.path / "r.html").read_text(encoding="utf-8").split('id="kari-data"')[0]
    assert "<h3>Regressions" in summary
    assert "comparison: " in summary
    assert report_data(pytester.path / "r.html")["sections"]["comparison"]["changes"]
