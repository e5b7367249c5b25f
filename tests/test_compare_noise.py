"""``kari-debug compare`` judges timings with the gates' noise model, not single samples."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pytest_kari_debug.cli import cli

SUITE = """
import time
import pytest

def test_quick():
    assert sum(range(100)) == 4950

def test_sleeps():
    time.sleep(0.002)

@pytest.mark.parametrize("n", range(3))
def test_logs(kari_logger, n):
    kari_logger.info("hello", n=n)
"""


def _runs(pytester: pytest.Pytester, count: int, *flags: str) -> list[Path]:
    pytester.makepyfile(SUITE)
    paths = []
    for index in range(count):
        path = pytester.path / f"run{index}.json"
        result = pytester.runpytest_inprocess(
            "--kari-debug", "--kari-store=none", f"--kari-json={path}", *flags
        )
        result.assert_outcomes(passed=5)
        paths.append(path)
    return paths


def _compare(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["compare", *args])
    return result.exit_code, result.stdout, result.stderr


def test_twenty_compares_of_unchanged_code_find_no_regression(pytester: pytest.Pytester) -> None:
    """Every ordered pair of 5 runs of the same code (20 compares) exits 0 without regression."""
    runs = _runs(pytester, 5)
    pairs = list(itertools.permutations(runs, 2))
    assert len(pairs) == 20
    for base, head in pairs:
        code, out, err = _compare(str(base), str(head))
        assert code == 0, out
        assert "no regression" in out
        assert err == ""
        verdict = json.loads(
            CliRunner().invoke(cli, ["--format", "json", "compare", str(base), str(head)]).stdout
        )
        assert verdict["regressions"] == 0


def test_single_samples_are_not_enough_for_a_timing_verdict(pytester: pytest.Pytester) -> None:
    """A much slower single sample is "not enough samples" (exit 0) unless --fail is given."""
    base, head = _runs(pytester, 2)
    document = json.loads(head.read_text())
    for test in document["tests"]:
        test["phases"]["call"] = test["phases"]["call"] * 50 + 20.0
    head.write_text(json.dumps(document))
    code, out, err = _compare(str(base), str(head), "--all")
    assert code == 0, out
    assert "not enough samples" in out
    assert "no regression" in out
    assert err == ""
    code, out, err = _compare(str(base), str(head), "--fail", "duration:+25%")
    assert code == 1, out
    assert "REGRESSED" in out
    assert err == ""  # the table says it; stderr does not repeat it


def test_repeated_samples_decide_a_timing_verdict(pytester: pytest.Pytester) -> None:
    """With --kari-repeat=5 on both sides a real slowdown regresses without --fail."""
    base, head = _runs(pytester, 2, "--kari-repeat=5")
    document = json.loads(head.read_text())
    for test in document["tests"]:
        samples = test["extra"]["gates"]["samples"]
        samples["call_ms"] = [value * 50 + 20.0 for value in samples["call_ms"]]
        test["extra"]["gates"]["figures"]["call_ms"] = min(samples["call_ms"])
    head.write_text(json.dumps(document))
    code, out, _ = _compare(str(base), str(head))
    assert code == 1, out
    assert "REGRESSED" in out
    assert "not enough samples" not in out


def test_deterministic_figures_compare_exactly(pytester: pytest.Pytester) -> None:
    """One more log record is a regression of a logs:+0 gate, whatever the samples."""
    base, head = _runs(pytester, 2)
    document = json.loads(head.read_text())
    logging = document["tests"][-1]["collected_data"]["logging"]
    logging["records"].append(dict(logging["records"][0]))
    head.write_text(json.dumps(document))
    code, out, _ = _compare(str(base), str(head), "--fail", "logs:+0")
    assert code == 1, out
    assert "REGRESSED" in out
    assert "logs" in out
