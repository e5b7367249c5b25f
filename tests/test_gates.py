"""Regression gates as a library: gate specs, figures, baselines and the comparison method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.gates import (
    BaselineError,
    Options,
    build_baseline,
    compare_runs,
    compare_test,
    figures_of,
    parse_gates,
    read_baseline_file,
    write_baseline_file,
)


def test_gate_specs_in_percent_and_units() -> None:
    """Percent and absolute gates are parsed with their units scaled."""
    gates = parse_gates(
        "duration:+25%, cpu:+20%,allocated:+10%,peak_rss:+50MB,call:3ms,blocks:+100"
    )
    assert [(g.metric, g.threshold, g.relative) for g in gates] == [
        ("call_ms", 25.0, True),
        ("cpu_ms", 20.0, True),
        ("allocated_bytes", 10.0, True),
        ("peak_rss_bytes", 50e6, False),
        ("call_ms", 3.0, False),
        ("allocated_blocks", 100.0, False),
    ]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("speed:+10%", "unknown metric 'speed'"),
        ("duration+10%", "cannot read gate"),
        ("duration:+10MB", "unit 'MB' does not fit metric 'duration'"),
        ("spans:+3ms", "unit 'ms' does not fit"),
        ("", "no gate"),
    ],
)
def test_bad_gate_specs_name_the_problem(spec: str, problem: str) -> None:
    """A bad spec raises ConfigurationError saying what is wrong and what is accepted."""
    with pytest.raises(ConfigurationError, match=problem.replace("(", r"\(")):
        parse_gates(spec)


def _record(nodeid: str, call: float, *, outcome: str = "passed", samples=None, allocated=None):
    metrics = {"resources": {"cpu_ms": call, "peak_rss_bytes": 50e6}}
    if allocated is not None:
        metrics["memory"] = {"allocated_bytes": allocated, "allocated_blocks": 10}
    extra = {"gates": {"samples": {"call_ms": samples, "cpu_ms": samples}}} if samples else {}
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "phases": {"call": call},
        "collected_data": {"metrics": metrics, "logging": {"records": [{}, {}], "dropped": 1}},
        "extra": extra,
    }


def test_figures_prefer_the_minimum_of_repeats() -> None:
    """A record's call and CPU figures are the minimum of its samples; counts include drops."""
    figures = figures_of(_record("t", 9.0, samples=[7.0, 5.0, 6.0], allocated=1000))
    assert figures["call_ms"] == 5.0
    assert figures["cpu_ms"] == 5.0
    assert figures["allocated_bytes"] == 1000
    assert figures["logs"] == 3


def test_baseline_round_trips_through_a_file(tmp_path: Path) -> None:
    """A saved baseline file reads back with machine info and only passed tests."""
    document = build_baseline("main", [_record("a", 5.0), _record("b", 5.0, outcome="failed")])
    write_baseline_file(tmp_path / "base.json", document)
    loaded = read_baseline_file(tmp_path / "base.json")
    assert list(loaded["tests"]) == ["a"]
    assert loaded["machine"]["cpu_count"] >= 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ('{"format": "something-else"}', "is not a pytest-kari-debug baseline"),
        ('{"format": "pytest-kari-debug/baseline", "version": 99}', "baseline version 99"),
        ('{"format": "pytest-kari-debug/baseline", "version": 1, "tests": []}', "'tests' must map"),
    ],
)
def test_corrupt_baseline_files_are_named(tmp_path: Path, content: str, problem: str) -> None:
    """A corrupt or incompatible baseline file raises BaselineError naming the file."""
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=r"broken\.json") as raised:
        read_baseline_file(path)
    assert problem in str(raised.value)


def test_missing_baseline_file_is_named(tmp_path: Path) -> None:
    """A baseline file that does not exist is a BaselineError naming it."""
    with pytest.raises(BaselineError, match=r"nowhere\.json"):
        read_baseline_file(tmp_path / "nowhere.json")


def test_timing_regression_needs_confirmation_then_fails() -> None:
    """A slower minimum on few samples is unconfirmed; on enough samples it is a regression."""
    gates = parse_gates("duration:+10%")
    entry = {"figures": {"call_ms": 5.0}, "samples": {}}
    few = compare_test("t", {"call_ms": 6.0}, {"call_ms": [6.0]}, entry, gates)
    assert few[0].verdict == "unconfirmed"
    many = compare_test("t", {"call_ms": 6.0}, {"call_ms": [6.0] * 5}, entry, gates)
    assert many[0].verdict == "regression"
    assert "call_ms 5.000ms -> 6.000ms (+20.0%)" in many[0].message()


def test_noise_floor_and_baseline_spread_prevent_false_alarms() -> None:
    """Tiny absolute changes and values inside the baseline's spread are not regressions."""
    gates = parse_gates("duration:+10%")
    tiny = compare_test("t", {"call_ms": 0.15}, {"call_ms": [0.15] * 5},
                        {"figures": {"call_ms": 0.1}}, gates)  # fmt: skip
    assert tiny[0].verdict == "ok"
    spread = {"figures": {"call_ms": 5.0}, "samples": {"call_ms": [5.0, 6.5, 7.0]}}
    inside = compare_test("t", {"call_ms": 6.0}, {"call_ms": [6.0] * 5}, spread, gates)
    assert inside[0].verdict == "ok"


def test_deterministic_figures_are_compared_exactly() -> None:
    """Allocated bytes over the gate are a regression at once, without repeats."""
    gates = parse_gates("allocated:+10%")
    changes = compare_test(
        "t", {"allocated_bytes": 1200.0}, {}, {"figures": {"allocated_bytes": 1000.0}}, gates
    )
    assert changes[0].verdict == "regression"
    same = compare_test(
        "t", {"allocated_bytes": 1050.0}, {}, {"figures": {"allocated_bytes": 1000.0}}, gates
    )
    assert same[0].verdict == "ok"


def test_new_tests_and_much_faster_tests_are_reported_not_failed() -> None:
    """A test missing from the baseline is new; one much faster is flagged as a stale baseline."""
    gates = parse_gates("duration:+10%")
    assert compare_test("t", {"call_ms": 5.0}, {}, None, gates)[0].verdict == "new"
    faster = compare_test("t", {"call_ms": 1.0}, {}, {"figures": {"call_ms": 5.0}}, gates)
    assert faster[0].verdict == "faster"


def test_compare_runs_over_records() -> None:
    """compare_runs compares stored test records with a baseline's tests, most severe first."""
    base = build_baseline("b", [_record("a", 5.0), _record("b", 5.0, allocated=100)])
    head = [_record("a", 5.0), _record("b", 5.0, allocated=200), _record("c", 1.0)]
    comparison = compare_runs(
        base["tests"],
        head,
        parse_gates("allocated:+10%,duration:+25%"),
        options=Options(confirm_runs=1),
    )
    assert [(c.nodeid, c.metric) for c in comparison.regressions()] == [("b", "allocated_bytes")]
    assert comparison.sorted()[0].verdict == "regression"
    assert json.dumps(comparison.to_dict())
