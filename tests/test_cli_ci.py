"""The command line in CI: ``compare --format markdown``, follow, resolve, daemon stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from markdown_support import body, parse
from test_cli import DEMO, QUIET, kari


@pytest.fixture
def store(pytester: pytest.Pytester, pytester_store: Path) -> Path:
    """A store holding one run of the demo tests of extension my-ext."""
    pytester.makepyfile(test_demo=DEMO)
    pytester.runpytest("--kari-debug", *QUIET).assert_outcomes(passed=2)
    return pytester_store


def _baseline(store: Path, tmp_path: Path, edits: dict[str, object]) -> Path:
    document = json.loads(kari(store, "--run", "last", "export", "--format", "json").stdout)
    run = document["runs"][0]
    for test in run["tests"]:
        edits[test["nodeid"]](test)  # type: ignore[operator]
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(run))
    return path


def test_compare_markdown_lists_regressions_then_improvements(store: Path, tmp_path: Path) -> None:
    """compare --format markdown: a regressions table, an improvements table, the count of
    unchanged comparisons, and the exit status of the table form."""

    def fewer_errors(test: dict) -> None:
        test["collected_data"]["error_tracking"]["records"] = []

    def much_slower(test: dict) -> None:
        test["phases"]["call"] = test["phases"]["call"] * 100 + 500

    baseline = _baseline(
        store,
        tmp_path,
        {"test_demo.py::test_api": fewer_errors, "test_demo.py::test_slow": much_slower},
    )
    result = kari(
        store, "compare", str(baseline), "--fail", "errors:+0,duration:+25%", "--format", "markdown"
    )
    assert result.exit_code == 1, result.output
    parsed = parse(result.stdout)
    assert parsed.headings[0] == "kari-debug compare: ❌ 2 regression(s)"
    assert parsed.headings[1:3] == ["Regressions (2)", "Improvements (2)"]
    regressions = body(parsed, "Regressions")
    assert [(r[0], r[1]) for r in regressions] == [
        ("errors", "test_demo.py::test_api"),
        ("errors", "(total)"),
    ]
    assert [(r[0], r[1]) for r in body(parsed, "Improvements")] == [
        ("call_ms", "test_demo.py::test_slow"),
        ("call_ms", "(total)"),
    ]
    assert "**2** comparisons unchanged." in result.stdout

    same = kari(store, "compare", "last", "last", "--format", "markdown")
    assert same.exit_code == 0
    assert parse(same.stdout).headings == ["kari-debug compare: ✅ no regression"]
    missing = kari(store, "compare", str(tmp_path / "nope.json"), "--format", "markdown")
    assert missing.exit_code == 2
