"""A failing test's record and report: message, its own frame, captured output, verdicts."""

from __future__ import annotations

import json

import pytest

FAILING = """
import logging
import sys

import pytest

def helper(value):
    return value + 1

def test_total():
    print("computing the total")
    print("to stderr", file=sys.stderr)
    logging.getLogger("calc").error("bad total")
    total = helper(2)
    assert total == 4

@pytest.mark.kari_budget(duration_ms=0.001)
def test_over_budget():
    sum(range(10000))

def test_ok():
    print("quiet")
"""


def _run(pytester: pytest.Pytester) -> tuple[dict[str, dict], str]:
    pytester.makepyfile(test_calc=FAILING)
    result = pytester.runpytest(
        "--kari-debug", "--kari-json=run.json", "--kari-report=report.html", "--kari-store=none"
    )
    result.assert_outcomes(passed=1, failed=2)
    document = json.loads((pytester.path / "run.json").read_text(encoding="utf-8"))
    tests = {t["nodeid"].split("::")[-1]: t for t in document["tests"]}
    return tests, (pytester.path / "report.html").read_text(encoding="utf-8")


def test_failure_points_at_the_tests_own_frame(pytester: pytest.Pytester) -> None:
    """The record's failure has the message and source lines of the test's frame."""
    tests, _ = _run(pytester)
    failure = tests["test_total"]["failure"]
    assert failure["message"] == "AssertionError: assert 3 == 4"
    assert failure["location"] == "test_calc.py:14"
    assert ">   14  assert total == 4" in failure["excerpt"]
    assert "E       AssertionError: assert 3 == 4" in failure["excerpt"]
    assert tests["test_ok"].get("failure") is None


def test_captured_output_per_phase_is_recorded(pytester: pytest.Pytester) -> None:
    """stdout, stderr and the captured log of each phase are kept with the test."""
    tests, _ = _run(pytester)
    captured = {(c["phase"], c["stream"]): c["text"] for c in tests["test_total"]["captured"]}
    assert captured[("call", "stdout")] == "computing the total\n"
    assert captured[("call", "stderr")] == "to stderr\n"
    assert "bad total" in captured[("call", "log")]
    assert tests["test_ok"]["captured"] == [
        {"phase": "call", "stream": "stdout", "text": "quiet\n"}
    ]


def test_verdict_is_an_alert_not_an_error_group(pytester: pytest.Pytester) -> None:
    """A broken budget names rule, value and threshold at the test, and makes no error group."""
    tests, html = _run(pytester)
    failure = tests["test_over_budget"]["failure"]
    assert failure["verdict"] is True
    assert failure["location"] == "test_calc.py:16"
    assert failure["message"].startswith("kari_budget(duration_ms=0.001) exceeded")
    assert "core.py" not in tests["test_over_budget"]["longrepr"]
    errors = tests["test_over_budget"]["collected_data"].get("error_tracking") or {}
    assert not errors.get("records")
    assert "KariDebugAssertion" not in html
    article = html.split('id="fail-1"', 1)[1].split("</article>", 1)[0]
    assert '<table class="verdicts">' in article
    assert "<td>duration_ms</td>" in article
    assert "test_calc.py:16" in article


def test_report_lists_failures_before_everything_else(pytester: pytest.Pytester) -> None:
    """The failing tests come right after the header, with message, frame and output."""
    _, html = _run(pytester)
    main = html.split('<main id="main">', 1)[1]
    assert main.index('id="failures"') < main.index('id="summary"')
    article = html.split('id="fail-0"', 1)[1].split("</article>", 1)[0]
    assert "AssertionError: assert 3 == 4" in article
    assert "computing the total" in article
    assert "Captured stderr (call)" in article
    assert "bad total" in article  # the error-level log line
    assert "pytest_kari_debug.alerts" not in article
    counts = html.split('class="counts-line"', 1)[1].split("</p>", 1)[0]
    assert 'data-outcome="failed"' in counts
    assert "2 failed" in counts


def _kari_section(text: str) -> list[str]:
    section = text.split("= kari-debug =", 1)[1].split("short test summary info", 1)[0]
    return [line for line in section.splitlines()[1:-1] if line.strip()]


def test_terminal_summary_is_short_by_default(pytester: pytest.Pytester) -> None:
    """With every flag the kari-debug section stays within 12 lines; -v shows the rest."""
    pytester.makepyfile(test_calc=FAILING)
    flags = [
        "--kari-debug", "--kari-trace", "--kari-profile", "--kari-json=run.json",
        "--kari-report=report.html", "--kari-csv=csv", "--kari-prometheus=m.prom",
    ]  # fmt: skip
    short = _kari_section(pytester.runpytest(*flags).stdout.str())
    assert len(short) <= 12, short
    assert short[0].startswith("3 tests recorded")
    assert any(line.startswith("alerts: 1 fired") for line in short)
    assert any(line.startswith("report: ") for line in short)
    assert not any(line.startswith("alert notifications") for line in short)  # no channel
    assert "more line(s) with -v" in short[-1]
    verbose = _kari_section(pytester.runpytest("-v", *flags).stdout.str())
    assert len(verbose) > len(short)
    assert any(line.startswith("json: ") for line in verbose)
    assert any(line.startswith("metrics: ") for line in verbose)
    assert not any(line.startswith("alert notifications") for line in verbose)


SECRETS_IN_OUTPUT = """
import logging

import pytest

@pytest.fixture
def noted(request):
    yield
    request.node.add_report_section(
        "call", "notes password=hunter2", "token: abcdefgh12345678 and \\udcff end"
    )

def test_secrets(noted):
    print("connect with password=hunter2")
    logging.getLogger("db").warning("sent Bearer abcdefgh12345678")
    print("x" * 30_000)
"""

AUDIT_SECTION = """
import pytest

@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "teardown":
        report.sections.append(("audit api_key=abcdefgh12345678", "seen token=hunter2"))
    return report
"""


def test_captured_output_is_kept_scrubbed_cut_and_writable(pytester: pytest.Pytester) -> None:
    """Secrets in what a test printed or logged, and in another plugin's section (title and
    text), are scrubbed; a long stream is cut; text UTF-8 cannot hold is escaped."""
    pytester.makepyfile(test_secrets=SECRETS_IN_OUTPUT)
    pytester.makeconftest(AUDIT_SECTION)
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json", "--kari-store=none")
    result.assert_outcomes(passed=1)
    text = (pytester.path / "run.json").read_text(encoding="utf-8")
    assert "hunter2" not in text
    assert "abcdefgh12345678" not in text
    (test,) = json.loads(text)["tests"]
    captured = {(c["phase"], c["stream"]): c["text"] for c in test["captured"]}
    stdout = captured[("call", "stdout")]
    assert stdout.startswith("connect with password=[REDACTED]\n")
    assert stdout.endswith("more characters]")
    assert len(stdout) < 21_000
    assert "Bearer [REDACTED]" in captured[("call", "log")]
    assert captured[("call", "notes password=[REDACTED]")] == "token: [REDACTED] and \\udcff end"
    assert captured[("", "audit api_key=[REDACTED]")] == "seen token=[REDACTED]"
