"""Building blocks of the CLI: time values, human units, tables and the gate comparison."""

from __future__ import annotations

from datetime import datetime

import click
import pytest

from pytest_kari_debug.cli.comparison import compare_runs, figures_of, parse_gate_spec
from pytest_kari_debug.cli.render import ago, clip, ms, number, parse_since, size, table
from pytest_kari_debug.exceptions import ConfigurationError

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds_back"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1w", 604800),
     ("250ms", 0.25), ("1.5h", 5400)],
)  # fmt: skip
def test_since_durations_count_back_from_now(text: str, seconds_back: float) -> None:
    """A duration --since is that long before now."""
    assert parse_since(text, now=NOW) == pytest.approx(NOW - seconds_back)


def test_since_accepts_iso_dates() -> None:
    """An ISO date or time --since is that moment (local time without an offset)."""
    assert parse_since("2024-05-01T10:00:00+00:00") == 1714557600.0
    assert parse_since("2024-05-01") == datetime(2024, 5, 1).timestamp()
    assert parse_since("2024-05-01T10:00:00Z") == 1714557600.0


@pytest.mark.parametrize("text", ["yesterday", "10", "5 parsecs", "", "2h ago"])
def test_since_rejects_other_text_naming_the_accepted_forms(text: str) -> None:
    """Anything else is a ConfigurationError that shows the accepted forms."""
    with pytest.raises(ConfigurationError, match=r"30s, 10m, 2h, 1d.*2024-05-01"):
        parse_since(text)


def test_human_units() -> None:
    """Durations, sizes and moments read the way people write them."""
    assert [ms(0), ms(0.25), ms(12.34), ms(1520), ms(90_000)] == [
        "0 ms", "250 µs", "12.3 ms", "1.52 s", "1.5 min",
    ]  # fmt: skip
    assert [size(512), size(2048), size(5 * 1024**3)] == ["512 B", "2.0 KiB", "5.0 GiB"]
    assert number(85.0, "%") == "85.0%"
    assert number(3, "count") == "3 count"
    assert [ago(NOW - 5, now=NOW), ago(NOW - 125, now=NOW), ago(NOW - 7300, now=NOW)] == [
        "5s ago", "2m ago", "2h ago",
    ]  # fmt: skip
    assert ago(NOW - 3 * 86400, now=NOW) == "3d ago"
    assert clip("a  long\nmessage here", 10) == "a long me…"


def test_table_aligns_columns_ignoring_colour() -> None:
    """Cells line up even when some carry ANSI colour codes."""
    text = click.unstyle(
        table(["name", "status", "note"], [["a", click.style("ok", fg="green"), "x"],
                                            ["longer", "failed", "y"]])
    )  # fmt: skip
    lines = text.splitlines()
    assert [
        line.index(word) for line, word in zip(lines, ("status", "ok", "failed"), strict=True)
    ] == [8, 8, 8]


# gates -------------------------------------------------------------------------------------
def _test(nodeid: str, duration: float, errors: int = 0, outcome: str = "passed") -> dict:
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "duration_ms": duration,
        "phases": {"call": duration},
        "collected_data": {"error_tracking": {"records": [{}] * errors, "dropped": 0}},
    }


def test_gate_spec_parses_relative_and_absolute_limits() -> None:
    """FIGURE:+N% is relative to the baseline, FIGURE:+N absolute in the figure's unit."""
    rules = parse_gate_spec("duration:+25%, allocated:+10% ,errors:+0,call_ms:+3")
    assert [(r.figure, r.limit, r.relative) for r in rules] == [
        ("duration_ms", 0.25, True), ("allocated_mb", 0.10, True), ("errors", 0.0, False),
        ("call_ms", 3.0, False),
    ]  # fmt: skip
    assert rules[0].threshold(100.0) == 125.0
    assert rules[3].threshold(100.0) == 103.0


@pytest.mark.parametrize(
    ("spec", "match"),
    [("speed:+5%", "unknown gate figure 'speed'"), ("duration", "not FIGURE"),
     ("duration:-5%", "not FIGURE"), ("", "no gate")],
)  # fmt: skip
def test_gate_spec_errors_name_the_fix(spec: str, match: str) -> None:
    """A malformed gate spec is a ConfigurationError saying what is accepted."""
    with pytest.raises(ConfigurationError, match=match):
        parse_gate_spec(spec)


def test_regression_needs_the_limit_and_the_noise_floor() -> None:
    """A growth beyond the percentage regresses only when it also clears the noise floor."""
    rules = parse_gate_spec("duration:+25%")
    base = [[_test("t::fast", 1.0), _test("t::slow", 100.0)]]
    head = [[_test("t::fast", 3.0), _test("t::slow", 140.0)]]
    comparison = compare_runs(base, head, rules)
    verdicts = {r.nodeid: r.regressed for r in comparison.results}
    assert verdicts == {"t::fast": False, "t::slow": True, "(total)": True}
    slow = next(r for r in comparison.results if r.nodeid == "t::slow")
    assert slow.threshold == 125.0
    assert slow.change == pytest.approx(0.4)
    assert "gate 'duration:+25%' allows 125.000ms" in slow.message()
    assert not comparison.ok


def test_noisy_baseline_widens_the_threshold() -> None:
    """Several baseline samples set a spread that an increase must exceed."""
    rules = parse_gate_spec("duration:+10%")
    steady = [[_test("t::a", 100.0)] for _ in range(5)]
    noisy = [[_test("t::a", value)] for value in (60.0, 100.0, 140.0, 80.0, 120.0)]
    head = [[_test("t::a", 125.0)]]
    assert not compare_runs(steady, head, rules).ok
    assert compare_runs(noisy, head, rules).ok


def test_failed_and_missing_tests_are_reported_not_compared() -> None:
    """Tests failing, skipped or present on one side only are listed apart."""
    base = [[_test("t::a", 10.0), _test("t::gone", 10.0), _test("t::broken", 10.0)]]
    head = [
        [_test("t::a", 10.0), _test("t::new", 10.0), _test("t::broken", 99.0, outcome="failed")]
    ]
    comparison = compare_runs(base, head, parse_gate_spec("duration:+10%,allocated:+10%"))
    assert comparison.compared_tests == 1
    assert comparison.only_in_base == ["t::gone"]
    assert comparison.only_in_head == ["t::new"]
    assert comparison.not_comparable == ["t::broken"]
    assert comparison.unmeasured == ["allocated_mb"]
    assert comparison.ok


def test_figures_of_a_test_record() -> None:
    """Per-test figures come from phases, resources, memory and record counts."""
    record = _test("t::a", 12.0, errors=2)
    record["collected_data"]["metrics"] = {
        "resources": {"cpu_ms": 7.5, "peak_rss_bytes": 64 * 1024 * 1024},
        "memory": {"allocated_bytes": 1024 * 1024, "allocated_blocks": 300},
    }
    record["collected_data"]["logging"] = {
        "records": [{"level": "ERROR"}, {"level": "WARNING"}, {"level": "INFO"}]
    }
    assert figures_of(record) == {
        "duration_ms": 12.0, "call_ms": 12.0, "cpu_ms": 7.5, "peak_rss_mb": 64.0,
        "allocated_mb": 1.0, "allocated_blocks": 300.0, "errors": 2.0, "log.error": 1.0,
        "log.warning": 2.0,
    }  # fmt: skip
    assert figures_of({"figures": {"duration": 5.0, "errors": 1}}) == {
        "duration_ms": 5.0, "errors": 1.0,
    }  # fmt: skip
