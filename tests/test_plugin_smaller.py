"""Issue 17's smaller items: rule lines, bad markers, sampler failures, CSV, baselines, Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import psutil
import pytest
from test_plugin_nolose import _json

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exporters.csv_export import cell, render_csv
from pytest_kari_debug.metrics import MetricsCollector


def test_every_bad_rule_line_is_reported_at_once(pytester: pytest.Pytester) -> None:
    """Three bad kari_alert_rules lines: one usage error naming all three lines."""
    pytester.makeini(
        "[pytest]\nkari_alert_rules =\n    errors > 0\n    latency > 3\n"
        "    spans >< 2\n    duration_ms > fast\n"
    )
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*kari_alert_rules: 3 bad rules:*", "*line 2: *", "*line 3: *", "*line 4: *"]
    )


BAD_MARKERS = """
import pytest

@pytest.mark.kari_alert(42)
def test_bad_alert():
    pass

@pytest.mark.kari_extension()
def test_bad_extension():
    pass

def test_fine():
    pass

@pytest.mark.kari_budget(duration_ms=10_000)
def test_good_budget():
    pass
"""


def test_a_bad_marker_fails_only_its_own_test(pytester: pytest.Pytester) -> None:
    """Without --kari-debug a bad kari marker fails its test (naming the problem); the other
    tests run."""
    pytester.makepyfile(BAD_MARKERS)
    result = pytester.runpytest("-rE")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_bad_alert*",
            "kari-debug: marker kari_alert on *::test_bad_alert: the rule must be a string*",
            "*ERROR at setup of test_bad_extension*",
            "kari-debug: marker kari_extension on *::test_bad_extension: takes one extension id*",
        ]
    )


def test_a_bad_marker_is_a_usage_error_under_kari_debug(pytester: pytest.Pytester) -> None:
    """With --kari-debug a bad marker stops the run at start-up, as before."""
    pytester.makepyfile(BAD_MARKERS)
    result = pytester.runpytest("--kari-debug")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: kari-debug: marker kari_* on *::test_bad_*"])


def test_the_sampler_reports_once_when_psutil_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """psutil raising on every reading: one diagnostic, a failure count, no silent zero."""
    collector = MetricsCollector("ext", DebugConfiguration(metrics_interval=0.01))

    def denied(*args: object, **kwargs: object) -> object:
        raise psutil.AccessDenied(pid=1)

    monkeypatch.setattr(collector._process, "oneshot", denied)
    collector.start()
    deadline = time.monotonic() + 10
    while collector.sampler_failures < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    collector.stop()
    assert collector.sampler_failures >= 5
    assert len(collector.diagnostics) == 1
    assert "AccessDenied" in collector.diagnostics[0]
    assert "resource sampler failed" in collector.diagnostics[0]
    assert collector.check()[0] == "degraded"


SAMPLER_CONFTEST = """
import psutil

def _denied(*args, **kwargs):
    raise psutil.AccessDenied(pid=1)

_saved = psutil.Process.oneshot

def pytest_configure(config):
    psutil.Process.oneshot = _denied

def pytest_unconfigure(config):
    psutil.Process.oneshot = _saved
"""


def test_a_failing_sampler_is_a_run_diagnostic(pytester: pytest.Pytester) -> None:
    """The sampler's failure reaches the run's diagnostics (terminal and JSON) once."""
    pytester.makeconftest(SAMPLER_CONFTEST)
    pytester.makepyfile("import time\ndef test_slow():\n    time.sleep(0.3)\n")
    result = pytester.runpytest(
        "--kari-debug", "--kari-metrics-interval=0.05", "--kari-json=r.json"
    )
    result.assert_outcomes(passed=1)
    document = _json(pytester.path / "r.json")
    found = [d for d in document["diagnostics"] if "resource sampler failed" in d]
    assert len(found) == 1
    assert "AccessDenied" in found[0]


@pytest.mark.parametrize("text", ["\x00=cmd|' /C calc'!A0", "\x00\x00+1", "\ufeff@SUM(A1)"])
def test_nul_prefixed_cells_are_formula_guarded(text: str) -> None:
    """A cell a spreadsheet reads as a formula after dropping NULs or a BOM is quoted."""
    assert cell(text) == "'" + text
    assert render_csv([{"m": text}], ["m"]).splitlines()[1].startswith("'")
    assert cell("\x00plain") == "\x00plain"


BASELINE_TEST = "def test_a(): pass\n"


def _baseline(path: Path, figures: dict[str, object]) -> None:
    path.write_text(
        json.dumps(
            {
                "format": "pytest-kari-debug/baseline",
                "version": 1,
                "name": "b",
                "tests": {"test_baseline_file.py::test_a": {"figures": figures}},
            }
        )
    )


@pytest.mark.parametrize("bad", ["fast", True, None])
def test_a_non_numeric_baseline_figure_is_a_clear_error(
    pytester: pytest.Pytester, bad: object
) -> None:
    """ "call_ms": "fast" in a baseline stops the run naming the test, figure and value,
    instead of silently skipping the gate (null is accepted: a figure not measured)."""
    pytester.makepyfile(test_baseline_file=BASELINE_TEST)
    _baseline(pytester.path / "base.json", {"call_ms": bad, "duration_ms": 1.0})
    result = pytester.runpytest(
        "--kari-debug", "--kari-compare=base.json", "--kari-fail-regression=duration:+25%"
    )
    if bad is None:
        assert result.ret == 0
        return
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*figures must be finite numbers*test 'test_baseline_file.py::test_a' figure"
         f" 'call_ms' is {bad!r}*"]
    )  # fmt: skip


INTERRUPTED = """
import os
import signal

def test_first():
    pass

def test_second():
    # A process started by an xdist worker inherits SIGINT ignored: Ctrl-C as in a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.kill(os.getpid(), signal.SIGINT)

def test_never():
    pass
"""


def test_an_interrupted_run_is_labelled_interrupted(pytester: pytest.Pytester) -> None:
    """A run stopped by SIGINT says so in its JSON and its report, with the finished tests."""
    pytester.makepyfile(INTERRUPTED)
    result = pytester.runpytest_subprocess(
        "--kari-debug", "--kari-json=r.json", "--kari-report=r.html"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    document = _json(pytester.path / "r.json")
    assert document["run"]["status"] == "interrupted"
    assert [t["nodeid"].split("::")[-1] for t in document["tests"]] == ["test_first"]
    html = (pytester.path / "r.html").read_text(encoding="utf-8")
    assert "interrupted: only the tests that finished before the interruption are here" in html


def test_a_finished_run_is_labelled_finished(pytester: pytest.Pytester) -> None:
    """A run that ran every test is 'finished', and its report does not say interrupted."""
    pytester.makepyfile("def test_ok(): pass")
    pytester.runpytest("--kari-debug", "--kari-json=r.json", "--kari-report=r.html")
    assert _json(pytester.path / "r.json")["run"]["status"] == "finished"
    assert "interrupted" not in (pytester.path / "r.html").read_text(encoding="utf-8")


def test_a_point_psutil_answered_nothing_for_is_a_failure_not_a_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each of psutil's readings refused (while the CPU percentage, read without psutil, is
    still there): the point counts as a failed reading with its diagnostic."""
    collector = MetricsCollector("ext", DebugConfiguration(metrics_interval=60))

    def denied(*args: object, **kwargs: object) -> object:
        raise psutil.AccessDenied(pid=1)

    for name in ("cpu_times", "memory_info"):
        monkeypatch.setattr(collector._process, name, denied)
    monkeypatch.setattr(collector._process, "oneshot", contextlib.nullcontext)
    point = collector.sample_now()
    assert "rss_bytes" not in point
    assert collector.sampler_failures == 1
    assert "psutil returned no CPU or memory reading" in collector.diagnostics[0]
