"""Alert rules: the syntax, figures from sessions and records, evaluation, 'for' and inhibition."""

from __future__ import annotations

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.rules import (
    MIB,
    AlertRule,
    AlertSeverity,
    RecordFigures,
    RuleStates,
    SessionFigures,
    StaticFigures,
    budget_rules,
    evaluate_rule,
    evaluate_rules,
    figure_spec,
    parse_rule,
    parse_rules,
)


def test_severities_are_ordered_and_parsed() -> None:
    """LOW < MEDIUM < HIGH < CRITICAL; names parse case-insensitively; others are refused."""
    assert AlertSeverity.LOW < AlertSeverity.MEDIUM < AlertSeverity.HIGH < AlertSeverity.CRITICAL
    assert AlertSeverity.CRITICAL >= AlertSeverity.HIGH
    assert max(AlertSeverity) is AlertSeverity.CRITICAL
    assert AlertSeverity.parse(" High ") is AlertSeverity.HIGH
    with pytest.raises(ConfigurationError, match="accepted: low, medium, high, critical"):
        AlertSeverity.parse("urgent")


@pytest.mark.parametrize(
    ("text", "figure", "op", "threshold"),
    [
        ("peak_rss_mb > 200", "peak_rss_mb", ">", 200.0),
        ("errors>0", "errors", ">", 0.0),
        ("log.error >= 1", "log.error", ">=", 1.0),
        ("duration_ms > 500", "duration_ms", ">", 500.0),
        ("span:db_query.p95_ms > 50", "span:db_query.p95_ms", ">", 50.0),
        ("span:db.query.max_ms < 1e3", "span:db.query.max_ms", "<", 1000.0),
        ("metric:cache_hit_rate.mean < 0.5", "metric:cache_hit_rate.mean", "<", 0.5),
        ("errors:Validation* != 0", "errors:Validation*", "!=", 0.0),
    ],
)
def test_rule_syntax(text: str, figure: str, op: str, threshold: float) -> None:
    """A rule names a figure, an operator and a number."""
    rule = parse_rule(text)
    assert (rule.figure, rule.operator, rule.threshold) == (figure, op, threshold)
    assert rule.severity is AlertSeverity.HIGH
    assert parse_rule(rule.text()) == rule


def test_rule_options_and_for_clauses() -> None:
    """Trailing options set severity and inhibition; 'for' takes tests, samples or a duration."""
    rule = parse_rule("peak_rss_mb > 200 for 3 tests severity=critical inhibits=duration_ms,call*")
    assert (rule.for_count, rule.for_unit) == (3, "tests")
    assert rule.severity is AlertSeverity.CRITICAL
    assert rule.inhibits == ("duration_ms", "call*")
    assert parse_rule("cpu_percent > 80 for 10s").for_seconds == 10.0
    assert parse_rule("metric:queue_size > 100 for 2m").for_seconds == 120.0
    assert parse_rule("rss_mb > 1 for 5 samples").for_count == 5
    assert parse_rule("errors > 0", "low").severity is AlertSeverity.LOW
    assert parse_rule("errors > 0 severity=low", "critical").severity is AlertSeverity.CRITICAL


def test_parsing_is_cached() -> None:
    """The same text parses to the same object (so 'for N tests' streaks are shared)."""
    assert parse_rule("errors > 0 for 2 tests") is parse_rule("errors > 0 for 2 tests")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("peak_rss > 200", "unknown figure 'peak_rss'; known: duration_ms"),
        ("errors >> 0", "cannot parse alert rule 'errors >> 0'"),
        ("errors > lots", "cannot parse"),
        ("log.fatal > 0", "unknown log level 'fatal'"),
        ("span:db.p42_ms > 1", "aggregate one of count"),
        ("errors > 0 for 10s", "needs a time series figure"),
        ("errors > 0 for 3 samples", "needs a time series figure"),
        ("errors > 0 for 3 weeks", "unknown 'for' unit 'weeks'"),
        ("errors > 0 for 1.5 tests", "whole count"),
        ("errors > 0 colour=red", "unknown option 'colour'"),
        ("errors > 0 severity=urgent", "unknown alert severity 'urgent'"),
        ("", "non-empty string"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(text: str, expected: str) -> None:
    """A rule that cannot be parsed names the problem and what is accepted."""
    with pytest.raises(ConfigurationError) as info:
        parse_rule(text)
    assert expected in str(info.value)


def test_parse_rules_skips_comments_and_names_the_line() -> None:
    """One rule per line; '#' comments and blank lines are skipped; errors name the line."""
    rules = parse_rules(["errors > 0  # none allowed", "", "# comment", "spans < 100"])
    assert [r.figure for r in rules] == ["errors", "spans"]
    with pytest.raises(ConfigurationError, match="line 2: "):
        parse_rules(["errors > 0", "what > 1"])


def test_budget_rules() -> None:
    """A budget is one 'figure > limit' rule per entry; unknown keys and bad limits are refused."""
    rules = budget_rules({"duration_ms": 500, "log_errors": 0}, "medium")
    assert [(r.figure, r.threshold, r.severity) for r in rules] == [
        ("duration_ms", 500.0, AlertSeverity.MEDIUM),
        ("log.error", 0.0, AlertSeverity.MEDIUM),
    ]
    assert rules[0].name == "kari_budget(duration_ms=500)"
    with pytest.raises(ConfigurationError, match="unknown budget 'latency'"):
        budget_rules({"latency": 3})
    with pytest.raises(ConfigurationError, match="must be a number >= 0"):
        budget_rules({"errors": "none"})
    with pytest.raises(ConfigurationError, match="at least one"):
        budget_rules({})


def test_threshold_evaluation_and_message() -> None:
    """A crossed threshold fires with a message naming figure, value, threshold and source."""
    figures = StaticFigures({"peak_rss_mb": 312.5}, source="the test")
    fired = evaluate_rule(parse_rule("peak_rss_mb > 200"), figures)
    assert fired.fired
    assert fired.value == 312.5
    assert fired.message() == (
        "peak_rss_mb = 312.5 MiB > 200 MiB\n  where peak_rss_mb = 312.5 is from the test"
    )
    assert fired.failure().startswith("alert rule 'peak_rss_mb > 200' fired [high]: ")
    assert not evaluate_rule(parse_rule("peak_rss_mb > 400"), figures).fired
    assert evaluate_rule(parse_rule("peak_rss_mb == 312.5"), figures).fired


def test_missing_figure_fires_but_no_observation_does_not() -> None:
    """Not measured at all fires (broken instrumentation); measured-but-empty does not."""
    missing = evaluate_rule(parse_rule("allocated_mb > 1"), StaticFigures({}))
    assert missing.fired
    assert "allocated_mb was not measured" in missing.message()
    empty = evaluate_rule(parse_rule("span:db.p95_ms > 1"), StaticFigures({"span:db.p95_ms": None}))
    assert not empty.fired


def test_series_without_for_uses_the_most_extreme_point() -> None:
    """A time series without 'for' fires when any point crosses the threshold."""
    points = [(0.0, 10.0), (1.0, 95.0), (2.0, 20.0)]
    evaluation = evaluate_rule(
        parse_rule("cpu_percent > 80"), StaticFigures({"cpu_percent": points})
    )
    assert evaluation.fired
    assert evaluation.value == 95.0
    low = evaluate_rule(parse_rule("cpu_percent < 15"), StaticFigures({"cpu_percent": points}))
    assert low.fired
    assert low.value == 10.0


def test_for_samples_and_for_seconds_need_a_run_that_holds() -> None:
    """'for N samples' and 'for Ns' fire only when consecutive points hold that long."""
    points = [(0.0, 90.0), (1.0, 90.0), (2.0, 10.0), (3.0, 90.0), (4.0, 91.0), (5.0, 92.0)]
    figures = StaticFigures({"cpu_percent": points})
    assert evaluate_rule(parse_rule("cpu_percent > 80 for 3 samples"), figures).fired
    four = evaluate_rule(parse_rule("cpu_percent > 80 for 4 samples"), figures)
    assert not four.fired
    assert four.pending
    assert evaluate_rule(parse_rule("cpu_percent > 80 for 2s"), figures).fired
    assert not evaluate_rule(parse_rule("cpu_percent > 80 for 3s"), figures).fired
    held = evaluate_rule(parse_rule("cpu_percent > 80 for 2s"), figures)
    assert "held for 2.0 s over 3 samples" in held.message()


def test_trailing_runs_for_live_monitoring() -> None:
    """With trailing=True only the run ending at the newest point counts."""
    points = [(0.0, 90.0), (1.0, 90.0), (2.0, 90.0), (3.0, 10.0)]
    rule = parse_rule("metric:load > 80 for 3 samples")
    figures = StaticFigures({"metric:load": points})
    assert evaluate_rule(rule, figures).fired
    assert not evaluate_rule(rule, figures, trailing=True).fired


def test_for_tests_counts_consecutive_evaluations() -> None:
    """'for 2 tests' fires on the second evaluation in a row; a pass resets the streak."""
    rule = parse_rule("errors > 0 for 2 tests")
    states = RuleStates()
    bad, good = StaticFigures({"errors": 1}), StaticFigures({"errors": 0})
    first = evaluate_rule(rule, bad, states)
    assert not first.fired
    assert first.pending
    assert evaluate_rule(rule, bad, states).fired
    assert not evaluate_rule(rule, good, states).fired
    assert not evaluate_rule(rule, bad, states).fired
    assert evaluate_rule(rule, bad, states).fired


def test_custom_predicate_rules() -> None:
    """A custom rule fires when its predicate holds; a missing figure it reads fires too."""
    rule = AlertRule.custom("noisy", lambda f: f["log.warning"] > 2 and f["errors"] == 0)
    figures = StaticFigures({"log.warning": 5, "errors": 0})
    evaluation = evaluate_rule(rule, figures)
    assert evaluation.fired
    assert "log.warning = 5" in evaluation.message()
    assert not evaluate_rule(rule, StaticFigures({"log.warning": 1, "errors": 0})).fired
    assert evaluate_rule(rule, StaticFigures({"errors": 0})).missing is not None
    valued = AlertRule.custom("ratio", lambda f: (f["errors"] / 4 > 0.5, f["errors"] / 4))
    assert evaluate_rule(valued, StaticFigures({"errors": 3})).value == 0.75
    with pytest.raises(ConfigurationError, match="callable"):
        AlertRule.custom("x", "errors > 0")  # type: ignore[arg-type]


def test_inhibition_marks_the_silenced_evaluation_and_orders_inhibitors_first() -> None:
    """A firing rule with inhibits= silences matching rules (by name or figure)."""
    latency = parse_rule("duration_ms > 100")
    memory = parse_rule("peak_rss_mb > 200 inhibits=duration_ms")
    figures = StaticFigures({"duration_ms": 500, "peak_rss_mb": 300})
    evaluations = evaluate_rules([latency, memory], figures)
    assert [e.rule for e in evaluations] == [memory, latency]
    assert evaluations[1].inhibited_by == memory.name
    assert not evaluations[1].counts
    assert evaluations[0].counts
    calm = evaluate_rules([latency, memory], StaticFigures({"duration_ms": 500, "peak_rss_mb": 1}))
    assert all(e.inhibited_by is None for e in calm)


def test_session_figures_read_the_components(manager: ExtensionDebugManager) -> None:
    """SessionFigures count a live session's errors, logs by level, spans and metric points."""
    manager.start()
    session_id = manager.start_debug_session()
    manager.get_error_tracker().record_error("ValueError", "bad")
    manager.get_error_tracker().record_error("KeyError", "worse")
    manager.get_logger().warning("w")
    manager.get_logger().error("e")
    manager.get_logger().critical("c")
    with manager.get_tracer().start_span("db_query"):
        pass
    with manager.get_tracer().start_span("db_query"):
        pass
    manager.get_metrics_collector().record_metric("queue_size", 5)
    manager.get_metrics_collector().record_metric("queue_size", 7)
    figures = SessionFigures(manager, session_id, {"setup": 2.0, "call": 8.0})
    values = {
        name: figures.measure(name).value
        for name in ("errors", "errors:Value*", "log.warning", "log.error", "log.critical",
                     "spans", "span:db_query.count", "metric:queue_size.max",
                     "metric:queue_size.count", "duration_ms", "call_ms", "error_rate")
    }  # fmt: skip
    manager.stop_debug_session(session_id)
    manager.stop()
    assert values == {
        "errors": 2.0,
        "errors:Value*": 1.0,
        "log.warning": 3.0,
        "log.error": 2.0,
        "log.critical": 1.0,
        "spans": 2.0,
        "span:db_query.count": 2.0,
        "metric:queue_size.max": 7.0,
        "metric:queue_size.count": 2.0,
        "duration_ms": 10.0,
        "call_ms": 8.0,
        "error_rate": 200.0,
    }


def test_session_figures_resources(manager: ExtensionDebugManager) -> None:
    """cpu_ms and peak_rss_mb come from the metrics collector's session resources."""
    session_id = manager.start_debug_session()
    sum(i * i for i in range(50_000))
    figures = SessionFigures(manager, session_id, {"call": 5.0})
    cpu = figures.measure("cpu_ms")
    rss = figures.measure("peak_rss_mb")
    manager.stop_debug_session(session_id)
    assert cpu.value is not None
    assert cpu.value >= 0
    assert cpu.source.endswith("cpu_ms")
    assert rss.value is not None
    assert rss.value > 1.0
    assert "session_resources" in rss.source


def test_session_figures_of_disabled_components_are_missing() -> None:
    """A switched-off component makes its figures missing, with the reason and the fix."""
    configuration = DebugConfiguration(
        tracing_enabled=False, metrics_enabled=False, error_tracking_enabled=False
    )
    manager = ExtensionDebugManager("off-ext", configuration=configuration)
    session_id = manager.start_debug_session()
    figures = SessionFigures(manager, session_id)
    spans, cpu, errors = (
        figures.measure("spans"),
        figures.measure("cpu_ms"),
        figures.measure("errors"),
    )
    memory, duration = figures.measure("allocated_mb"), figures.measure("duration_ms")
    manager.stop_debug_session(session_id)
    assert "tracing is disabled (use --kari-trace" in (spans.missing or "")
    assert "metrics are disabled" in (cpu.missing or "")
    assert "error tracking is disabled" in (errors.missing or "")
    assert memory.missing is not None
    assert duration.missing == "no phase timings"


def test_record_figures_read_a_finished_test_record() -> None:
    """RecordFigures compute the same figures from a stored test record."""
    record = {
        "phases": {"setup": 1.0, "call": 30.0, "teardown": 1.0},
        "collected_data": {
            "metrics": {
                "records": [{"name": "hits", "value": 3, "ts": 1.0}],
                "resources": {"cpu_ms": 12.5, "peak_rss_bytes": 300 * MIB,
                              "rss_start_bytes": 100 * MIB, "rss_end_bytes": 150 * MIB},
                "samples": [{"ts": 1.0, "cpu_percent": 50.0, "rss_bytes": 200 * MIB},
                            {"ts": 2.0, "cpu_percent": 95.0, "rss_bytes": 210 * MIB}],
                "memory": {"allocated_bytes": 2 * MIB, "peak_bytes": 3 * MIB,
                           "allocated_blocks": 10},
            },
            "error_tracking": {"records": [{"error_type": "E"}]},
            "logging": {"records": [{"level": "ERROR"}, {"level": "INFO"}]},
            "tracing": {"records": [{"name": "q", "duration_ms": d} for d in (10, 20, 30, 40)]},
        },
    }  # fmt: skip
    figures = RecordFigures(record)
    got = {
        name: figures.measure(name).value
        for name in ("duration_ms", "cpu_ms", "peak_rss_mb", "rss_growth_mb", "allocated_mb",
                     "peak_memory_mb", "allocated_blocks", "errors", "log.error", "log.info",
                     "spans", "span:q.max_ms", "span:q.p50_ms", "span:q.total_ms",
                     "metric:hits.last", "cpu_percent", "rss_mb")
    }  # fmt: skip
    assert got == {
        "duration_ms": 31.0,  # setup + call: teardown is teardown_ms (pytest_kari_debug.figures)
        "cpu_ms": 12.5,
        "peak_rss_mb": 300.0,
        "rss_growth_mb": 50.0,
        "allocated_mb": 2.0,
        "peak_memory_mb": 3.0,
        "allocated_blocks": 10.0,
        "errors": 1.0,
        "log.error": 1.0,
        "log.info": 2.0,
        "spans": 4.0,
        "span:q.max_ms": 40.0,
        "span:q.p50_ms": 25.0,
        "span:q.total_ms": 100.0,
        "metric:hits.last": 3.0,
        "cpu_percent": 95.0,
        "rss_mb": 210.0,
    }
    assert figures.measure("cpu_percent").series == ((1.0, 50.0), (2.0, 95.0))
    assert RecordFigures({"collected_data": {}}).measure("errors").missing is not None


def test_cpu_percent_falls_back_to_the_test_mean() -> None:
    """Without samples, cpu_percent is the test's CPU time over its wall time."""
    record = {
        "phases": {"call": 200.0},
        "collected_data": {"metrics": {"resources": {"cpu_ms": 50}}},
    }
    measurement = RecordFigures(record).measure("cpu_percent")
    assert measurement.value == 25.0
    assert "wall time" in measurement.source


def test_figure_spec_families() -> None:
    """Families of figures have units and descriptions; unknown ones list what is known."""
    assert figure_spec("span:x.p99_ms").unit == "ms"
    assert figure_spec("metric:queue").series
    assert not figure_spec("metric:queue.max").series
    with pytest.raises(ConfigurationError, match=r"metric:<name>\[.<last"):
        figure_spec("nope")
