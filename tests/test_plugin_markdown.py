"""The Markdown run summary: ``--kari-markdown=FILE`` and ``GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import os

import pytest
from markdown_support import body, parse

from pytest_kari_debug.markdown import inline
from pytest_kari_debug.summaries import SummaryLimits, run_summary

HOSTILE = [
    "a|b",
    "x`y`",
    "<script>alert(1)</script>",
    "*bold* _it_ [l](u) ~~s~~ $m$ @you #1",
    "c\\",
]

TESTS = f"""
import pytest

@pytest.mark.parametrize("value", {HOSTILE!r}, ids={HOSTILE!r})
def test_hostile(value):
    assert value == "nope|`<b>`", "first | line <i>x</i>\\nsecond line"

def test_ok():
    pass

def test_also_ok():
    pass

@pytest.mark.skip(reason="later")
def test_skipped():
    pass
"""


def test_markdown_summary_counts_failures_and_escapes_hostile_ids(
    pytester: pytest.Pytester,
) -> None:
    """--kari-markdown writes counts and one table row per failing test, whose cells read back
    exactly as the test ids and messages however hostile, with no live HTML."""
    pytester.makepyfile(test_x=TESTS)
    result = pytester.runpytest("--kari-markdown=summary.md", "--kari-report=report.html")
    result.assert_outcomes(failed=5, passed=2, skipped=1)
    text = (pytester.path / "summary.md").read_text()
    parsed = parse(text)
    assert "html_inline" not in parsed.token_types
    assert "html_block" not in parsed.token_types
    assert parsed.headings[0] == "kari-debug: 8 tests"
    assert "5 failed · 2 passed · 1 skipped" in text.replace("**", "")
    rows = body(parsed, "Failing tests")
    ids = [h.replace("\\", "\\\\") for h in HOSTILE]  # pytest escapes a backslash in an id
    assert [row[0] for row in rows] == [f"test_x.py::test_hostile[{i}]" for i in ids]
    for row in rows:
        assert row[1] == "failed"
        assert row[2].startswith("AssertionError: first | line <i>x</i>")
        assert "second line" not in row[2]
        assert row[3].startswith("test_x.py:")
        assert row[3].split(":")[1].isdigit()
    slowest = body(parsed, "Slowest tests")
    assert len(slowest) == 8
    assert str(pytester.path / "report.html") in text.replace("\\", "")


def test_markdown_summary_is_capped_with_a_count_of_the_rest(pytester: pytest.Pytester) -> None:
    """Past the row limit the failing-tests table stops and says how many more failed."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(45))
        def test_many(n):
            assert n < 0
        """
    )
    pytester.runpytest("--kari-markdown=out/summary.md").assert_outcomes(failed=45)
    text = (pytester.path / "out" / "summary.md").read_text()
    assert len(body(parse(text), "Failing tests")) == SummaryLimits().rows
    assert f"and {45 - SummaryLimits().rows} more failing tests" in text


def test_step_summary_appended_and_switched_off_by_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With GITHUB_STEP_SUMMARY set, the summary is appended to what earlier steps wrote;
    ini kari_step_summary = false leaves the file alone."""
    step = pytester.path / "step.md"
    step.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    pytester.makepyfile("def test_fails():\n    assert 1 == 2\n")
    pytester.runpytest("--kari-debug").assert_outcomes(failed=1)
    text = step.read_text()
    assert text.startswith("# earlier step\n")
    assert [r[0] for r in body(parse(text), "Failing tests")] == [
        "test_step_summary_appended_and_switched_off_by_ini.py::test_fails"
    ]
    pytester.makeini("[pytest]\nkari_step_summary = false\n")
    pytester.runpytest("--kari-debug").assert_outcomes(failed=1)
    assert step.read_text() == text


def test_step_summary_not_written_when_the_plugin_records_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that does not use kari-debug adds nothing to the job summary."""
    step = pytester.path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    pytester.makepyfile("def test_ok():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)
    assert not step.exists()


def test_unwritable_step_summary_is_a_diagnostic_not_a_failure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step-summary path that cannot be written leaves the outcomes alone and warns."""
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "missing" / "dir" / "s.md"))
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("--kari-debug")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*could not append to $GITHUB_STEP_SUMMARY*"])


def test_markdown_directory_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """--kari-markdown naming a directory stops the run at start with a usage error."""
    pytester.mkdir("out")
    result = pytester.runpytest("--kari-markdown=out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kari-markdown 'out' is a directory*"])


def test_summary_lists_gate_regressions_and_fired_alerts() -> None:
    """Regressions from the gates and alerts fired appear as tables, escaped."""
    sections = {
        "comparison": {
            "baseline": "main",
            "changes": [
                {
                    "nodeid": "t.py::a|b",
                    "metric": "call_ms",
                    "baseline": 10.0,
                    "current": 20.0,
                    "verdict": "regression",
                    "gate": "duration:+25%",
                    "note": "",
                },
                {
                    "nodeid": "t.py::c",
                    "metric": "duration",
                    "baseline": 10.0,
                    "current": 10.0,
                    "verdict": "ok",
                    "gate": "duration:+25%",
                    "note": "",
                },
            ],
            "totals": [],
        },
        "alerts": {
            "alerts": [
                {
                    "severity": "critical",
                    "nodeid": "t.py::d",
                    "name": "errors > 0",
                    "message": "errors=2 > 0\nmore",
                    "failed_test": True,
                }
            ]
        },
    }
    parsed = parse(run_summary({}, [], sections))
    assert body(parsed, "Regressions against main") == [
        ["call_ms", "t.py::a|b", "10.000ms", "20.000ms", "+100.0%", ""]
    ]
    assert body(parsed, "Alerts fired") == [
        ["critical", "t.py::d", "errors > 0", "errors=2 > 0", "yes"]
    ]


def test_summary_size_cap_cuts_at_a_line_and_counts_the_rest() -> None:
    """The whole summary stays under max_chars, cut at a line boundary with a note."""
    tests = [
        {
            "nodeid": f"t.py::test_{'x' * 150}_{i}",
            "outcome": "failed",
            "duration_ms": i,
            "longrepr": "E   boom",
        }
        for i in range(500)
    ]
    limits = SummaryLimits(rows=500, slowest=0, max_chars=5000)
    text = run_summary({}, tests, {}, limits=limits)
    assert len(text) <= 5000
    assert "more lines (size cap)" in text.splitlines()[-1]


@pytest.mark.parametrize(
    "hostile", [*HOSTILE, "a\nb", "&amp;", "<!-- x -->", "\\|", "`` ` ``", "\x00\u202e"]
)
def test_inline_text_reads_back_as_itself(hostile: str) -> None:
    """inline() of any text parses back to that text (line breaks as spaces), in a table too."""
    expected = " ".join(hostile.split()).replace("\x00", "\ufffd")  # CommonMark's NUL rule
    parsed = parse(f"| h |\n|---|\n| {inline(hostile)} |\n")
    assert parsed.tables[""][1] == [expected]
    assert "html_inline" not in parsed.token_types


def test_summary_lists_new_and_flaky_tests_from_the_store_history(
    pytester: pytest.Pytester,
) -> None:
    """With earlier runs in the store the summary names the tests new in this run and the
    flaky ones (passed, failed, passed); a first run lists neither."""
    pytester.makepyfile(
        test_h="""
        import os

        def test_steady():
            pass

        def test_wobbly():
            assert os.environ.get("WOBBLE") != "1"
        """
    )
    pytester.runpytest("--kari-markdown=first.md").assert_outcomes(passed=2)
    first = parse((pytester.path / "first.md").read_text())
    assert not [h for h in first.headings if h.startswith(("New tests", "Flaky tests"))]
    os.environ["WOBBLE"] = "1"
    try:
        pytester.runpytest("--kari-debug").assert_outcomes(passed=1, failed=1)
    finally:
        del os.environ["WOBBLE"]
    pytester.makepyfile(test_new="def test_fresh():\n    pass\n")
    pytester.runpytest("--kari-markdown=third.md").assert_outcomes(passed=3)
    text = (pytester.path / "third.md").read_text()
    parsed = parse(text)
    assert "New tests (1)" in parsed.headings
    assert "- test\\_new.py::test\\_fresh" in text
    assert body(parsed, "Flaky tests") == [
        ["test_h.py::test_wobbly", "PFP: failed 1 of the last 3 runs"]
    ]


def test_summary_of_undecodable_text_is_written(pytester: pytest.Pytester) -> None:
    """A failure message holding bytes that were not UTF-8 (lone surrogates) still gives a
    summary."""
    pytester.makepyfile(
        """
        def test_bytes():
            text = b"caf\\xe9 ok".decode("utf-8", "surrogateescape")
            assert not text, text
        """
    )
    pytester.runpytest("--kari-markdown=summary.md").assert_outcomes(failed=1)
    rows = body(parse((pytester.path / "summary.md").read_text()), "Failing tests")
    assert rows[0][2].startswith("AssertionError: caf")
    assert rows[0][2].endswith(" ok")


def test_inline_replaces_lone_surrogates() -> None:
    """Text decoded with surrogateescape becomes writable UTF-8."""
    assert inline("caf\udce9 | x") == "caf? \\| x"
    assert inline("caf\udce9").encode("utf-8") == b"caf?"
