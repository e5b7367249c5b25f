"""Alerts as test assertions in pytest runs: budgets, kari_alert, ini rules, --kari-fail-on."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from alert_servers import free_port, webhook_server
from conftest import read_json

from pytest_kari_debug.storage import Store

BUDGET_TEST = """
import time
import pytest

@pytest.mark.kari_budget(duration_ms=5)
def test_slow():
    time.sleep(0.05)

@pytest.mark.kari_budget(duration_ms=60_000)
def test_fast():
    pass
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process."""
    return pytester.runpytest(*args)


def test_breaking_a_budget_fails_with_rule_value_threshold_and_source(
    pytester: pytest.Pytester,
) -> None:
    """A test over its duration budget fails; the message names rule, value, threshold, source."""
    pytester.makepyfile(BUDGET_TEST)
    result = _run(pytester, "--kari-store=none")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines(
        [
            r"kari_budget\(duration_ms=5\) exceeded \[high\]: duration_ms = \d+(\.\d+)? > 5",
            r"\s+where duration_ms = \d+(\.\d+)? is from pytest phase timings \(setup\+call\)",
            r"kari-debug verdict of test_slow at test_breaking_a_budget\w*\.py:\d+",
        ]
    )
    failures = result.stdout.str().split("= FAILURES =")[1].split("= kari-debug =")[0]
    assert "core.py" not in failures
    assert "pytest_runtest_call" not in failures
    result.stdout.fnmatch_lines(["*FAILED*test_slow*"])


def test_fail_on_none_only_reports(pytester: pytest.Pytester) -> None:
    """With --kari-fail-on none the same test passes and the alert is still reported."""
    pytester.makepyfile(BUDGET_TEST)
    result = _run(pytester, "--kari-fail-on", "none", "--kari-json", "run.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "alerts: 1 fired in tests (1 high); 0 test(s) failed by alerts (--kari-fail-on none)",
            "  [[]high] test_fail_on_none_only_reports.py::test_slow: kari_budget(duration_ms=5):"
            " duration_ms = * > 5",
        ]
    )
    document = read_json(pytester)
    section = document["sections"]["alerts"]
    assert section["fail_on"] == "none"
    (row,) = section["alerts"]
    assert (row["name"], row["severity"], row["threshold"], row["failed_test"]) == (
        "kari_budget(duration_ms=5)",
        "high",
        5.0,
        False,
    )
    assert row["value"] > 5
    slow = next(t for t in document["tests"] if t["nodeid"].endswith("test_slow"))
    (record,) = slow["collected_data"]["alerting"]["records"]
    assert (record["metric_name"], record["threshold_value"]) == ("duration_ms", 5.0)
    store = Store(pytester.path / ".kari-debug" / "kari.db")
    try:
        (stored,) = store.records("alert")
    finally:
        store.close()
    assert stored["name"] == "kari_budget(duration_ms=5)"
    assert stored["level"] == "high"


def test_kari_alert_marker_rules_and_severity_threshold(pytester: pytest.Pytester) -> None:
    """kari_alert rules fire on errors and logs; only severities >= --kari-fail-on fail."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kari_alert("errors > 0")
        def test_errors(kari_errors):
            kari_errors.record_error("ValueError", "bad input")

        @pytest.mark.kari_alert("log.error > 0", severity="medium")
        def test_logs(kari_logger):
            kari_logger.error("boom")

        @pytest.mark.kari_alert("errors > 0")
        def test_clean(kari_errors):
            pass
        """
    )
    result = _run(pytester, "--kari-store=none")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*kari_alert 'errors > 0' fired [[]high]: errors = 1 > 0",
            "*where errors = 1 is from error_tracker.session_records",
        ]
    )
    stricter = _run(pytester, "--kari-store=none", "--kari-fail-on=medium")
    stricter.assert_outcomes(passed=1, failed=2)
    stricter.stdout.fnmatch_lines(
        ["*kari_alert 'log.error > 0' fired [[]medium]: log.error = 1 > 0"]
    )


def test_alert_raised_by_the_test_fails_it(pytester: pytest.Pytester) -> None:
    """An alert the test raises through kari_alerts at or above the threshold fails it."""
    pytester.makepyfile(
        """
        def test_raises(kari_alerts):
            kari_alerts.raise_alert(
                "high_cpu", "critical", "High CPU Usage", "CPU at 95%", "cpu_percent", 95.0, 80.0
            )

        def test_low(kari_alerts):
            kari_alerts.raise_alert("note", "low", "FYI", "just so you know")
        """
    )
    result = _run(pytester, "--kari-store=none")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*alert 'high_cpu' raised during the test [[]critical]: High CPU Usage: CPU at 95%",
            "*where cpu_percent = 95.0, threshold 80.0",
        ]
    )


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        (
            "kari_alert('peak_rss > 200')",
            "marker kari_alert on test_bad.py::test_it: in alert rule 'peak_rss > 200':"
            " unknown figure 'peak_rss'",
        ),
        (
            "kari_alert('errors >> 1')",
            "marker kari_alert on test_bad.py::test_it: cannot parse alert rule 'errors >> 1'",
        ),
        (
            "kari_alert('errors > 0', severity='urgent')",
            "marker kari_alert on test_bad.py::test_it: unknown alert severity 'urgent'",
        ),
        (
            "kari_alert('errors > 0', colour='red')",
            "marker kari_alert on test_bad.py::test_it: unknown argument(s) ['colour']",
        ),
        ("kari_alert()", "marker kari_alert on test_bad.py::test_it: takes one rule"),
        (
            "kari_budget(latency_ms=3)",
            "marker kari_budget on test_bad.py::test_it: unknown budget 'latency_ms'",
        ),
        (
            "kari_budget(errors=-1)",
            "marker kari_budget on test_bad.py::test_it: budget errors must be a number >= 0",
        ),
        ("kari_budget(100)", "marker kari_budget on test_bad.py::test_it: takes keyword"),
    ],
)
def test_bad_marker_is_a_usage_error(pytester: pytest.Pytester, marker: str, expected: str) -> None:
    """A bad rule or budget in a marker stops a run that asked for the plugin with a usage error
    naming marker and test (without --kari-debug only that test fails: test_plugin_smaller)."""
    pytester.makepyfile(test_bad=f"import pytest\n\n@pytest.mark.{marker}\ndef test_it(): pass\n")
    result = _run(pytester, "--kari-debug", "--kari-store=none")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"kari-debug: {expected}" in result.stderr.str()


def test_bad_ini_rule_and_fail_on_are_usage_errors(pytester: pytest.Pytester) -> None:
    """A bad kari_alert_rules line or --kari-fail-on value is refused at start-up."""
    pytester.makeini("[pytest]\nkari_alert_rules =\n    errors > 0\n    latency > 3\n")
    pytester.makepyfile("def test_ok(): pass")
    result = _run(
        pytester,
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini kari_alert_rules: line 2: in alert rule 'latency > 3': unknown figure" in (
        result.stderr.str()
    )
    pytester.makeini("[pytest]\n")
    result = _run(pytester, "--kari-fail-on=severe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "--kari-fail-on: unknown severity 'severe'; accepted: low, medium, high, critical, none"
        in (result.stderr.str())
    )


def test_ini_rules_apply_to_every_test(pytester: pytest.Pytester) -> None:
    """kari_alert_rules are checked on every test, even without --kari-debug or markers."""
    pytester.makeini(
        "[pytest]\nkari_alert_rules =\n    errors > 0 severity=critical\n    spans > 1000\n"
    )
    pytester.makepyfile(
        """
        from pytest_kari_debug.manager import get_manager

        def test_plain():
            pass

        def test_with_error(request):
            manager = get_manager(request.node.path.parent.name)
            manager.get_error_tracker().record_error("RuntimeError", "x")
        """
    )
    result = _run(pytester, "--kari-store=none", "--kari-trace")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*kari_alert_rules 'errors > 0' fired [[]critical]: errors = 1 > 0"]
    )


def test_missing_figure_fails_with_the_fix(pytester: pytest.Pytester) -> None:
    """A rule on something not measured fails and says how to measure it."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kari_alert("span:db.p95_ms > 50")
        def test_db():
            pass
        """
    )
    result = _run(pytester, "--kari-store=none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*span:db.p95_ms was not measured: tracing is disabled (use --kari-trace*"]
    )


def test_span_rule_with_tracing(pytester: pytest.Pytester) -> None:
    """A span percentile rule judges the spans the test made."""
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.kari_alert("span:db_query.max_ms > 5")
        def test_db(kari_tracer):
            with kari_tracer.start_span("db_query"):
                time.sleep(0.02)
            with kari_tracer.start_span("cache"):
                pass

        @pytest.mark.kari_alert("span:db_query.max_ms > 5")
        def test_no_db(kari_tracer):
            with kari_tracer.start_span("cache"):
                pass
        """
    )
    result = _run(pytester, "--kari-store=none", "--kari-trace")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*span:db_query.max_ms = * > 5",
            "*is from tracer.session_records named 'db_query' (1)",
        ]
    )


def test_inhibited_alert_does_not_fail_the_test(pytester: pytest.Pytester) -> None:
    """An alert silenced by another firing on the same test is reported as inhibited only."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kari_alert("errors > 0", inhibits="log.error")
        @pytest.mark.kari_alert("log.error > 0", severity="critical")
        def test_both(kari_errors, kari_logger):
            kari_errors.record_error("IOError", "disk gone")
            kari_logger.error("disk gone")
        """
    )
    result = _run(pytester, "--kari-store=none", "--kari-json=run.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*kari_alert 'errors > 0' fired*"])
    result.stdout.no_fnmatch_line("*kari_alert 'log.error > 0' fired*")
    rows = {r["name"]: r for r in read_json(pytester)["sections"]["alerts"]["alerts"]}
    assert rows["log.error > 0"]["status"] == "inhibited"
    assert rows["log.error > 0"]["inhibited_by"] == "errors > 0"
    assert rows["errors > 0"]["failed_test"] is True


def test_for_n_tests_needs_consecutive_tests(pytester: pytest.Pytester) -> None:
    """'errors > 0 for 2 tests' fails only the second test in a row with errors."""
    pytester.makeini("[pytest]\nkari_alert_rules = errors > 0 for 2 tests\n")
    pytester.makepyfile(
        """
        def test_a(kari_errors):
            kari_errors.record_error("E", "1")

        def test_b(kari_errors):
            kari_errors.record_error("E", "2")

        def test_c(kari_errors):
            pass
        """
    )
    result = _run(pytester, "--kari-store=none", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FAILED*test_b*"])


def test_custom_predicate_marker(pytester: pytest.Pytester) -> None:
    """kari_alert accepts a callable over the figures."""
    pytester.makepyfile(
        """
        import pytest

        def too_noisy(figures):
            return figures["log.warning"] > 1

        @pytest.mark.kari_alert(too_noisy, severity="high")
        def test_noisy(kari_logger):
            kari_logger.warning("a")
            kari_logger.warning("b")
        """
    )
    result = _run(pytester, "--kari-store=none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*kari_alert 'too_noisy' fired [[]high]: predicate 'too_noisy' is true"]
    )


def test_failing_test_still_reports_its_alerts(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A test failing on its own still has its alerts evaluated and exported (CSV too)."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kari_alert("errors > 0")
        def test_broken(kari_errors):
            kari_errors.record_error("KeyError", "k")
            assert 1 == 2
        """
    )
    result = _run(pytester, "--kari-store=none", "--kari-json=run.json", f"--kari-csv={tmp_path}")
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*KariDebugAssertion*")
    (row,) = read_json(pytester)["sections"]["alerts"]["alerts"]
    assert (row["name"], row["failed_test"]) == ("errors > 0", False)
    with (tmp_path / "alerts.csv").open(newline="") as handle:
        (csv_row,) = list(csv.DictReader(handle))
    assert (csv_row["name"], csv_row["severity"]) == ("errors > 0", "high")
    assert float(csv_row["value"]) >= 1  # the error tracker may count the failure itself too


def test_webhook_channel_from_a_conftest(pytester: pytest.Pytester) -> None:
    """A channel added in a conftest gets the alerts; the export shows delivery, not the URL."""
    with webhook_server() as server:
        pytester.makeconftest(
            f"""
            import pytest
            from pytest_kari_debug.alerting import WebhookNotificationChannel

            @pytest.fixture(autouse=True)
            def _hook(kari_alerts):
                kari_alerts.add_notification_channel(
                    WebhookNotificationChannel("ops", "Ops", {server.url!r},
                                               headers={{"X-Api-Key": "key-777"}})
                )
            """
        )
        pytester.makepyfile(BUDGET_TEST)
        result = _run(pytester, "--kari-store=none", "--kari-json=run.json")
        result.assert_outcomes(passed=1, failed=1)
        (body,) = [b for b in server.bodies() if b["event"] == "firing"]
    assert body["alert"]["name"] == "kari_budget(duration_ms=5)"
    assert body["alert"]["threshold_value"] == 5.0
    text = (pytester.path / "run.json").read_text()
    assert "SECRET-TOKEN" not in text
    assert "key-777" not in text
    assert "SECRET-TOKEN" not in result.stdout.str()
    (row,) = json.loads(text)["sections"]["alerts"]["alerts"]
    assert {d["channel_id"]: d["status"] for d in row["deliveries"]} == {
        "log": "sent",
        "ops": "sent",
    }
    result.stdout.fnmatch_lines(["alert notifications: 1 sent"])  # the log channel is not one


def test_failed_delivery_is_shown_and_never_fails_a_test(pytester: pytest.Pytester) -> None:
    """A dead webhook leaves the outcomes unchanged; the summary shows the failed delivery."""
    pytester.makeconftest(
        f"""
        import pytest
        from pytest_kari_debug.alerting import WebhookNotificationChannel

        @pytest.fixture(autouse=True)
        def _hook(kari_alerts):
            kari_alerts.add_notification_channel(WebhookNotificationChannel(
                "dead", "Dead", "http://127.0.0.1:{free_port()}/hook/SECRET-PATH", retries=0
            ))
        """
    )
    pytester.makepyfile(BUDGET_TEST)
    result = _run(pytester, "--kari-store=none", "--kari-fail-on=none")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["alert notifications: 1 failed", "  channel 'dead': connection failed: *"]
    )
    assert "SECRET-PATH" not in result.stdout.str()


def test_budgets_under_xdist(pytester: pytest.Pytester) -> None:
    """With -n 2 the worker fails the test and the controller reports the alert."""
    pytester.makepyfile(BUDGET_TEST)
    result = _run(pytester, "-n", "2", "--kari-store=none", "--kari-json=run.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*kari_budget(duration_ms=5) exceeded*"])
    section = read_json(pytester)["sections"]["alerts"]
    assert [r["name"] for r in section["alerts"]] == ["kari_budget(duration_ms=5)"]
    assert section["failed_tests"] == ["test_budgets_under_xdist.py::test_slow"]


def test_fail_on_ini_twin(pytester: pytest.Pytester) -> None:
    """The ini key kari_fail_on sets the default; the flag overrides it."""
    pytester.makeini("[pytest]\nkari_fail_on = low\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kari_alert("log.warning > 0", severity="low")
        def test_warns(kari_logger):
            kari_logger.warning("careful")
        """
    )
    _run(pytester, "--kari-store=none").assert_outcomes(failed=1)
    _run(pytester, "--kari-store=none", "--kari-fail-on=high").assert_outcomes(passed=1)
