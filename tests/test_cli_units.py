"""Building blocks of the CLI: time values, human units, tables and the gate comparison."""

from __future__ import annotations

from datetime import datetime

import click
import pytest

from pytest_kari_debug.cli.figures import figures_of, shown, shown_figure
from pytest_kari_debug.cli.render import ago, clip, ms, parse_since, size, table
from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.gates import (
    Options,
    build_baseline,
    compare_runs,
    merge_baselines,
    parse_gates,
)
from pytest_kari_debug.rules import RecordFigures, evaluate_rule, parse_rule

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
    assert [ago(NOW - 5, now=NOW), ago(NOW - 125, now=NOW), ago(NOW - 7300, now=NOW)] == [
        "5s ago", "2m ago", "2h ago",
    ]  # fmt: skip
    assert ago(NOW - 3 * 86400, now=NOW) == "3d ago"
    assert clip("a  long\nmessage here", 10) == "a long me…"


def test_figures_read_as_every_surface_shows_them() -> None:
    """The CLI shows a figure with the catalogue's one display rule (as the report and the
    dashboard): the largest readable unit, three significant digits; "-" when not measured."""
    assert [shown(v, u) for v, u in ((85.0, "%"), (3, "count"), (300.0, "ms"), (1520, "ms"))] == [
        "85 %", "3 count", "300 ms", "1.52 s",
    ]  # fmt: skip
    figures = {"peak_rss_mb": 175.25, "duration_ms": 0.001}
    assert shown_figure("peak_rss_mb", figures) == "175 MiB"
    assert shown_figure("duration_ms", figures) == "0.001 ms"
    assert shown_figure("cpu_ms", figures) == "-"


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


# compare: the regression gates' method over recorded runs ---------------------------------
#: What `kari-debug compare` decides with: nothing can be re-run outside pytest.
CLI = Options(confirm_runs=1)


def _test(nodeid: str, call: float, errors: int = 0, outcome: str = "passed") -> dict:
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "phases": {"setup": 0.5, "call": call},
        "collected_data": {"error_tracking": {"records": [{}] * errors, "dropped": 0}},
    }


def _baseline(*runs: list[dict]) -> dict:
    return merge_baselines("base", [build_baseline("base", tests) for tests in runs])


def test_cli_gate_names_are_the_gates_names_with_aliases() -> None:
    """compare reads --fail like --kari-fail-regression; memory and rss name peak RSS."""
    gates = parse_gates("duration:+25%, memory:+50MB ,rss:+1%,call:+3ms,errors:+0", source="--fail")
    assert [(g.metric, g.threshold, g.relative) for g in gates] == [
        ("call_ms", 25.0, True), ("peak_rss_bytes", 50e6, False), ("peak_rss_bytes", 1.0, True),
        ("call_ms", 3.0, False), ("errors", 0.0, False),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "match"),
    [("speed:+5%", r"--fail: unknown metric 'speed'; accepted: .*memory"),
     ("log.error:+0", "log.error has no gate: use gate 'logs'"),
     ("peak_rss_mb:+5", "use gate 'peak_rss' with a unit"),
     ("duration", "cannot read gate"), ("duration:-5%", "cannot read gate"), ("", "no gate")],
)  # fmt: skip
def test_gate_spec_errors_name_the_fix(spec: str, match: str) -> None:
    """A malformed gate spec is a ConfigurationError saying what is accepted."""
    with pytest.raises(ConfigurationError, match=match):
        parse_gates(spec, source="--fail")


def test_regression_needs_the_gate_and_the_noise_floor() -> None:
    """A growth beyond the percentage regresses only when it also clears the noise floor."""
    base = _baseline([_test("t::fast", 0.1), _test("t::slow", 10.0)])
    head = [_test("t::fast", 0.3), _test("t::slow", 14.0)]
    comparison = compare_runs(base["tests"], head, parse_gates("duration:+25%"), options=CLI)
    verdicts = {c.nodeid: (c.verdict, c.note) for c in comparison.changes}
    assert verdicts["t::fast"] == ("ok", "change below the 0.25 ms noise floor")
    assert verdicts["t::slow"][0] == "regression"
    slow = next(c for c in comparison.changes if c.nodeid == "t::slow")
    assert slow.percent == pytest.approx(40.0)
    assert "call_ms 10.000ms -> 14.000ms (+40.0%)" in slow.message()
    [total] = comparison.totals
    assert (total.nodeid, total.baseline, total.current, total.verdict) == (
        "(total)", 10.1, 14.3, "regression",
    )  # fmt: skip
    assert len(comparison.regressions()) == 2


def test_many_small_increases_fail_an_absolute_gate_on_the_total() -> None:
    """Ten tests each 1 ms slower pass a +3ms gate one by one, but not in total."""
    base = _baseline([_test(f"t::{n}", 10.0) for n in range(10)])
    head = [_test(f"t::{n}", 11.0) for n in range(10)]
    comparison = compare_runs(base["tests"], head, parse_gates("duration:+3ms"), options=CLI)
    assert {c.verdict for c in comparison.changes} == {"ok"}
    [total] = comparison.totals
    assert (total.baseline, total.current, total.verdict) == (100.0, 110.0, "regression")
    tiny = [_test(f"t::{n}", 10.2) for n in range(10)]  # +2 ms in total: under 10 x 0.25 ms
    quiet = compare_runs(base["tests"], tiny, parse_gates("duration:+1ms"), options=CLI)
    assert quiet.totals[0].verdict == "ok"
    assert "noise floor of 10 tests" in quiet.totals[0].note


def test_the_spread_between_baseline_runs_widens_the_threshold() -> None:
    """Merged runs are per-test samples: a head value within the runs' median is no regression."""
    gates = parse_gates("duration:+10%")
    steady = _baseline(*([_test("t::a", 60.0)] for _ in range(5)))
    noisy = _baseline(*([_test("t::a", v)] for v in (60.0, 100.0, 140.0, 80.0, 120.0)))
    assert noisy["tests"]["t::a"]["figures"]["call_ms"] == 60.0
    assert noisy["tests"]["t::a"]["samples"]["call_ms"] == [60.0, 100.0, 140.0, 80.0, 120.0]
    head = [_test("t::a", 90.0)]
    assert compare_runs(steady["tests"], head, gates, options=CLI).regressions()
    inside = compare_runs(noisy["tests"], head, gates, options=CLI)
    assert not inside.regressions()
    assert inside.changes[0].note == "within the baseline's own spread"


def test_without_confirmation_runs_a_timing_candidate_is_only_unconfirmed() -> None:
    """With the plugin's default confirm_runs, one recorded sample is no verdict."""
    base = _baseline([_test("t::a", 10.0)])
    comparison = compare_runs(base["tests"], [_test("t::a", 20.0)], parse_gates("duration:+10%"))
    assert comparison.changes[0].verdict == "unconfirmed"
    assert not comparison.regressions()


def test_deterministic_counts_are_compared_exactly() -> None:
    """One more error record is a regression under errors:+0, whatever the timings."""
    base = _baseline([_test("t::a", 10.0), _test("t::b", 10.0, errors=1)])
    head = [_test("t::a", 10.0, errors=1), _test("t::b", 10.0, errors=1)]
    comparison = compare_runs(base["tests"], head, parse_gates("errors:+0"), options=CLI)
    assert [(c.nodeid, c.verdict) for c in comparison.regressions()] == [
        ("t::a", "regression"), ("(total)", "regression"),
    ]  # fmt: skip


def test_failed_and_missing_tests_are_reported_not_compared() -> None:
    """Tests not passing on a side, or present on one side only, are listed apart."""
    base = _baseline(
        [_test("t::a", 10.0), _test("t::gone", 10.0), _test("t::broken", 10.0),
         _test("t::flaky", 10.0, outcome="failed")]
    )  # fmt: skip
    head = [
        _test("t::a", 10.0), _test("t::new", 10.0), _test("t::broken", 99.0, outcome="failed"),
        _test("t::flaky", 99.0),
    ]  # fmt: skip
    comparison = compare_runs(
        base["tests"], head, parse_gates("duration:+10%,allocated:+10%"),
        options=CLI, excluded=base["excluded"],
    )  # fmt: skip
    assert comparison.compared_tests == 1
    assert comparison.only_in_base == ["t::gone"]
    assert comparison.only_in_head == ["t::new"]
    assert comparison.not_comparable == ["t::broken", "t::flaky"]
    assert comparison.unmeasured() == ["allocated_bytes"]
    assert not comparison.regressions()
    assert comparison.totals == []  # one test compared: no total
    assert {c.nodeid for c in comparison.changes} == {"t::a", "t::new"}


def test_figures_of_a_test_record_are_what_rules_test() -> None:
    """Shown figures come from the alert rules' extraction; an instrument that was off is absent."""
    record = _test("t::a", 12.0, errors=2)
    record["collected_data"]["metrics"] = {
        "resources": {"cpu_ms": 7.5, "peak_rss_bytes": 64 * 1024 * 1024},
        "memory": {"allocated_bytes": 1024 * 1024, "allocated_blocks": 300},
    }
    record["collected_data"]["logging"] = {
        "records": [{"level": "ERROR"}, {"level": "WARNING"}, {"level": "INFO"}]
    }
    assert figures_of(record) == {
        "duration_ms": 12.5, "call_ms": 12.0, "cpu_ms": 7.5, "peak_rss_mb": 64.0,
        "allocated_mb": 1.0, "allocated_blocks": 300.0, "errors": 2.0, "log.error": 1.0,
        "log.warning": 2.0,
    }  # fmt: skip
    for name, value in figures_of(record).items():  # a rule at the shown value is the edge
        assert evaluate_rule(parse_rule(f"{name} >= {value}"), RecordFigures(record)).fired
        assert not evaluate_rule(parse_rule(f"{name} > {value}"), RecordFigures(record)).fired
    del record["collected_data"]["metrics"]["memory"]
    assert "allocated_mb" not in figures_of(record)
    assert "cpu_ms" in figures_of(record)


def test_tests_left_out_of_a_comparison_are_listed_by_reason() -> None:
    """Comparison.left_out names the tests not compared, by reason, for the terminal and the
    markdown alike; a reason without tests is not listed."""
    from pytest_kari_debug.gates import Comparison
    from pytest_kari_debug.summaries import comparison_markdown

    comparison = Comparison("base", only_in_base=["t::gone"], not_comparable=["t::failed"])
    assert comparison.left_out() == [
        ("only in the baseline", ["t::gone"]),
        ("not compared (not passed on a side)", ["t::failed"]),
    ]
    text = comparison_markdown(comparison, base_label="base", head_label="head", gates=[])
    assert "Only in the baseline: t::gone." in text
    assert "Not compared (not passed on a side): t::failed." in text
    assert "Only in head" not in text
