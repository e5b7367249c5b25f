"""The shared views: one definition of each figure, and the same figures on every surface."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pytest_kari_debug import views
from pytest_kari_debug.cli import cli
from pytest_kari_debug.dashboard import ExtensionDebugDashboard
from pytest_kari_debug.report import build_report_model
from pytest_kari_debug.resolutions import resolution_of, status_of
from pytest_kari_debug.storage import Store

EXT = "parity-ext"
QUIET = ("-p", "no:cacheprovider", "-p", "no:asyncio")

#: Two runs of these: the second with a file "fixed" present, so the TimeoutError is gone.
RUN = """
import os

import pytest

pytestmark = pytest.mark.kari_extension("parity-ext")


def test_queue(kari_metrics, kari_errors):
    for value in range(1, 21):
        kari_metrics.record_metric("queue_depth", float(value), "items")
    kari_errors.record_error("ValueError", "invalid input 42")


def test_upstream(kari_errors, kari_alerts):
    kari_errors.record_error("ValueError", "invalid input 7")
    if not os.path.exists("fixed"):
        kari_errors.record_error("TimeoutError", "upstream timed out after 30s")
    for alert in (
        ("high_cpu", "medium", "High CPU Usage", "CPU usage is 85%", "cpu_percent", 85.0, 80.0),
        ("queue_depth", "low", "Queue growing", "depth 12", "queue_size", 12.0),
    ):
        kari_alerts.raise_alert(*alert)
"""


def test_percentiles_interpolate_between_closest_ranks() -> None:
    """p50/p95 interpolate linearly; last is the newest point, whatever order points come in."""
    points = [(3.0, 300.0), (1.0, 100.0), (2.0, 200.0)]
    stats = views.metric_stats("latency", "ms", points, window=10.0)
    assert (stats["p50"], stats["p95"], stats["mean"]) == (200.0, 290.0, 200.0)
    assert (stats["last"], stats["last_ts"], stats["rate_per_second"]) == (300.0, 3.0, 0.3)
    rows = [("a", "ms", 1.0, 1.0), ("a", "s", 2.0, 2.0), ("b", "", 1.0, 5.0)]
    aggregates = views.metric_aggregates(rows)
    assert list(aggregates) == ["a", "b"]
    assert (aggregates["a"]["unit"], aggregates["a"]["count"]) == ("s", 2)  # the newest unit
    with pytest.raises(ValueError, match="no points"):
        views.metric_stats("empty", "", [])


def test_error_group_status_rule() -> None:
    """One rule over one resolution: regressed wins; a resolution regresses when seen later."""
    resolution = {"state": "resolved", "resolved_at": 100.0, "notes": None}
    assert status_of(None, 50.0) == "open"
    assert status_of(resolution, 50.0) == "resolved"
    assert status_of(resolution, 150.0) == "regressed"
    assert status_of({**resolution, "state": "regressed"}, 50.0) == "regressed"
    assert status_of({**resolution, "state": "open", "resolved_at": None}, 150.0) == "open"
    # A group that keeps its own state (a live tracker's, a run's section) implies its resolution.
    assert resolution_of({"status": "resolved", "regressed": False})["state"] == "resolved"
    assert resolution_of({"status": "unresolved", "regressed": True})["state"] == "regressed"
    assert resolution_of({"status": "unresolved", "regressed": False}) is None
    assert views.status_matches("regressed", "unresolved")
    assert not views.status_matches("resolved", "unresolved")
    tracked = views.ErrorStates.of_groups(
        [{"extension_id": "e", "fingerprint": "f1", "status": "resolved", "regressed": False}]
    )
    assert tracked.state("e", "f1", 999.0)[0] == "resolved"  # resolved with no time: stays
    states = views.ErrorStates({("e", "f2"): resolution})
    assert states.state("e", "f2", 150.0) == ("regressed", 100.0, None)
    assert states.state("e", "f3", 150.0) == ("open", None, None)


def test_alerts_are_listed_once_with_their_resolution() -> None:
    """The first (newest) record of an alert id wins; a kept resolution resolves it."""
    records = [
        {"alert_id": "a1", "severity": "high", "status": "active", "ts": 2.0, "deliveries": [1]},
        {"alert_id": "a1", "severity": "high", "status": "active", "ts": 1.0},
        {"alert_id": "a2", "level": "low", "ts": 1.5, "extension_id": "e"},
    ]
    resolutions = {("e", "a2"): {"state": "resolved", "resolved_at": 3.0, "notes": "done"}}
    found = list(views.unique_alerts(records, resolutions, extension_id="e"))
    assert [(a["alert_id"], a["ts"], a["status"]) for a in found] == [
        ("a1", 2.0, "active"),
        ("a2", 1.5, "resolved"),
    ]
    assert "deliveries" not in found[0]
    assert found[1]["severity"] == "low"
    counts = views.severity_counts([*found, {"severity": "info"}])
    assert list(counts) == ["critical", "high", "medium", "low", "info"]
    assert (counts["high"], counts["low"], counts["info"]) == (1, 1, 1)


def _cli(store: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--store", str(store), "-e", EXT, "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def two_runs(pytester: pytest.Pytester, pytester_store: Path) -> Path:
    """A store of two real runs: between them one group is resolved on the dashboard and one
    with the CLI; the second run brings the first back (regressed); then an alert of the
    second run is resolved with the CLI."""
    pytester.makepyfile(test_parity=RUN)
    pytester.runpytest("--kari-debug", *QUIET).assert_outcomes(passed=2)
    store = Store(pytester_store, create=False)
    try:
        dashboard = ExtensionDebugDashboard(store=store, extension_id=EXT)
        groups = {g["error_type"]: g for g in dashboard.get_errors()["groups"]}
        assert {k: g["status"] for k, g in groups.items()} == {
            "ValueError": "open",
            "TimeoutError": "open",
        }
        dashboard.resolve_error_group(groups["ValueError"]["fingerprint"], "validate first")
    finally:
        store.close()
    _cli(pytester_store, "errors", "resolve", groups["TimeoutError"]["fingerprint"][:8])
    (pytester.path / "fixed").write_text("")
    pytester.runpytest("--kari-debug", *QUIET).assert_outcomes(passed=2)
    [cpu] = _cli(pytester_store, "--run", "last", "alerts", "show", "--severity", "medium")
    _cli(pytester_store, "alerts", "resolve", cpu["alert_id"], "--notes", "scaled up")
    return pytester_store


def test_dashboard_cli_and_report_show_the_same_figures(two_runs: Path) -> None:
    """The same store gives the same error groups, metric p95 and alert statuses everywhere."""
    store = Store(two_runs, create=False)
    try:
        dashboard = ExtensionDebugDashboard(store=store, extension_id=EXT)
        run = store.get_run("last")
        assert run is not None
        tests = store.tests(run["id"])
        sections = run["data"]["sections"]
        report = build_report_model(
            run,
            tests,
            sections=sections,
            store=store,
        )
        at_run_end = build_report_model(run, tests, sections=sections)  # as the plugin builds it
        board_groups = dashboard.get_errors()["groups"]
        board_p95 = dashboard.get_metrics()["aggregates"]["queue_depth"]["p95"]
        board_alerts = {a["alert_id"]: a["status"] for a in dashboard.get_alerts()}
    finally:
        store.close()

    # Error groups over every run: the dashboard (and so the API) and the CLI.
    by_type = {g["error_type"]: g["fingerprint"] for g in board_groups}
    board = {g["fingerprint"]: (g["count"], g["tests"], g["status"]) for g in board_groups}
    cli_groups = _cli(two_runs, "errors", "patterns")
    assert {g["group"]: (g["count"], g["tests"], g["status"]) for g in cli_groups} == board
    assert board == {
        by_type["ValueError"]: (4, 4, "regressed"),
        by_type["TimeoutError"]: (1, 1, "resolved"),
    }
    # Error groups of the last run: the CLI scoped to it and the report.
    scoped = _cli(two_runs, "--run", "last", "errors", "patterns")
    last_run = {g["group"]: (g["count"], g["status"]) for g in scoped}
    assert last_run == {by_type["ValueError"]: (2, "regressed")}
    for model in (report, at_run_end):
        page = {g["key"]: (g["count"], g["status"]) for g in model.payload["errorGroups"]}
        assert page == last_run

    # Metric p95: one definition (interpolated) over the same points; 1..20 twice, then once.
    cli_p95 = {m["name"]: m["p95"] for m in _cli(two_runs, "metrics", "show")["metrics"]}
    assert board_p95 == cli_p95["queue_depth"] == pytest.approx(19.05)
    last_metrics = _cli(two_runs, "--run", "last", "metrics", "show")["metrics"]
    [queue] = [m for m in report.metrics if m["name"] == "queue_depth"]
    [cli_queue] = [m for m in last_metrics if m["name"] == "queue_depth"]
    assert (queue["count"], queue["p95"]) == (cli_queue["count"], cli_queue["p95"]) == (20, 19.05)

    # Alerts and their statuses: every run, then the last run.
    cli_alerts = {a["alert_id"]: a["status"] for a in _cli(two_runs, "alerts", "show")}
    assert cli_alerts == board_alerts
    # one alert per rule and test across the two runs; the CPU alert's newest occurrence
    # was resolved with the CLI
    assert sorted(board_alerts.values()) == ["active", "resolved"]
    last_alerts = _cli(two_runs, "--run", "last", "alerts", "show")
    assert {a["alert_id"]: a["status"] for a in report.alerts} == {
        a["alert_id"]: a["status"] for a in last_alerts
    }
    assert {a["title"]: a["status"] for a in report.alerts} == {
        "High CPU Usage": "resolved",
        "Queue growing": "active",
    }
