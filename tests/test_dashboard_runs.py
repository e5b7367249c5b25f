"""The dashboard across runs: one run's scope for every view, alerts once per rule and test
with their occurrences, Resolve with notes and Reopen (dashboard, API, CLI), from a store that
real ``pytest --kari-debug`` runs filled."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import (
    EXT,
    copy_store,
    framework_client,
    live_manager,
    record_store,
    record_two_runs,
)
from click.testing import CliRunner

from pytest_kari_debug.api import create_app
from pytest_kari_debug.api.app import PREFIX
from pytest_kari_debug.cli import cli
from pytest_kari_debug.dashboard import DashboardError, ExtensionDebugDashboard
from pytest_kari_debug.storage import Store


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store two real runs of the same tests filled (runs #1 and #2)."""
    return record_two_runs(tmp_path_factory.mktemp("two-runs"))


@pytest.fixture
def store_path(two_runs: Path, tmp_path: Path) -> Path:
    """A private copy of the two-run store (tests resolve and reopen in it)."""
    return copy_store(two_runs, tmp_path)


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    opened = Store(store_path, create=False)
    yield opened
    opened.close()


def test_a_run_scopes_every_view(store: Store) -> None:
    """for_run(N): counters, log levels, errors, alerts, sessions, metrics and health are run
    N's alone; without a run they cover both runs."""
    every = ExtensionDebugDashboard(store=store, extension_id=EXT)
    first, second = every.for_run(1), every.for_run(2)
    data = {run: d.get_dashboard_data(log_limit=100) for run, d in ((1, first), (2, second))}
    both = every.get_dashboard_data(log_limit=100)
    assert (data[1]["run_id"], data[2]["run_id"], both["run_id"]) == (1, 2, None)
    logs = {run: d["overview"]["counts"]["logging"] for run, d in data.items()}
    assert logs[2] == logs[1] + 1
    assert both["overview"]["counts"]["logging"] == logs[1] + logs[2]
    info = {run: d["overview"]["log_levels"]["INFO"] for run, d in data.items()}
    assert info[1] + 1 == info[2]
    messages = {run: [r["message"] for r in d["logs"]] for run, d in data.items()}
    assert "second run only" in messages[2]
    assert "second run only" not in messages[1]
    # errors: 3 per run, counted per run
    assert data[1]["overview"]["errors"]["total"] == 3 == data[2]["overview"]["errors"]["total"]
    assert both["overview"]["errors"]["total"] == 6
    counted = {g["fingerprint"]: g["count"] for g in both["errors"]["groups"]}
    assert {g["fingerprint"]: 2 * g["count"] for g in data[1]["errors"]["groups"]} == counted
    # alerts: one per rule and test; a run's own occurrence only
    assert {a["occurrences"] for a in data[1]["alerts"]} == {1}
    assert {tuple(a["runs"]) for a in data[1]["alerts"]} == {(1,)}
    # sessions: the run's tests, with that run's id
    assert {s["run_id"] for s in data[1]["sessions"]["completed"]} == {1}
    assert {s["run_id"] for s in data[2]["sessions"]["completed"]} == {2}
    assert data[1]["overview"]["last_run"]["id"] == 1
    assert data[1]["health"]["checks"][-1]["component"] == "run #1"
    # metrics: each run's three response times; both runs together have six
    assert data[1]["metrics"]["aggregates"]["response_time"]["count"] == 3
    assert both["metrics"]["aggregates"]["response_time"]["count"] == 6


def test_stored_resource_samples_are_charted_with_their_times(store: Store) -> None:
    """A store-backed dashboard's metrics carry the sampler's CPU and RSS readings of each
    run's tests, with their own timestamps (the second run's come after the first's)."""
    every = ExtensionDebugDashboard(store=store, extension_id=EXT)
    runs = {}
    for run in (1, 2):
        series = every.for_run(run).get_metrics(window_seconds=60)["series"]
        assert series["rss_bytes"], series.keys()
        assert all(value > 1_000_000 for _, value in series["rss_bytes"])
        assert all(value >= 0 for _, value in series["cpu_percent"])
        runs[run] = [ts for ts, _ in series["rss_bytes"]]
        assert runs[run] == sorted(runs[run])
    assert max(runs[1]) < min(runs[2])
    # what one chart reads is bounded: the newest tests' samples (here the two of run #2)
    every_test = store.resource_samples(("rss_bytes",), extension_id=EXT)
    newest = store.resource_samples(("rss_bytes",), extension_id=EXT, tests=2)
    assert 0 < len(newest) < len(every_test)
    assert newest == every_test[len(every_test) - len(newest) :]


def test_an_alert_is_shown_once_per_rule_and_test_across_runs(store: Store) -> None:
    """The same alert of the same test in two runs is one alert with two occurrences, first
    and last seen, and both alert ids."""
    alerts = ExtensionDebugDashboard(store=store, extension_id=EXT).get_alerts()
    assert sorted(a["alert_type"] for a in alerts) == ["high_cpu", "queue_depth"]
    for alert in alerts:
        assert alert["occurrences"] == 2
        assert sorted(alert["runs"]) == [1, 2]
        assert len(set(alert["alert_ids"])) == 2
        assert alert["first_seen"] < alert["last_seen"]
        assert alert["test"].endswith("test_slow")
        assert alert["group"].startswith("ag-")


def test_resolve_with_notes_then_reopen_a_stored_alert_group(store: Store) -> None:
    """Resolving a group id resolves the alert of every run with its notes; Reopen (by any of
    its alert ids) makes it active again; a per-occurrence resolution is undone too."""
    dashboard = ExtensionDebugDashboard(store=store, extension_id=EXT)
    [cpu] = [a for a in dashboard.get_alerts() if a["alert_type"] == "high_cpu"]
    resolved = dashboard.resolve_alert(cpu["group"], "raised the limit")
    assert (resolved["status"], resolved["resolution_notes"]) == ("resolved", "raised the limit")
    assert dashboard.get_alert_statistics()["active_alerts"] == 1
    # a run's scope sees the group resolved too, and reopening from it works
    reopened = dashboard.for_run(1).reopen_alert(cpu["alert_ids"][-1])
    assert (reopened["status"], reopened["resolution_notes"]) == ("active", None)
    # resolving the newest occurrence alone (as `alerts resolve ID` does) resolves the group
    dashboard.resolve_alert(cpu["alert_ids"][0], "newest only")
    [group] = [g for g in dashboard.get_alerts() if g["group"] == cpu["group"]]
    assert group["status"] == "resolved"
    assert dashboard.reopen_alert(cpu["group"])["status"] == "active"
    kept = store.resolutions("alert", extension_id=EXT)
    assert {r["state"] for r in kept.values()} == {"open"}  # reopened, notes kept
    with pytest.raises(LookupError, match="no alert 'nope' recorded"):
        dashboard.reopen_alert("nope")


def test_a_resolved_alert_group_fires_again_in_a_later_run(two_runs: Path, tmp_path: Path) -> None:
    """A group resolved after run #2 is active again when run #3 raises it once more."""
    folder = tmp_path / "again"
    shutil.copytree(two_runs.parent.parent, folder)
    path = folder / ".kari-debug" / "kari.db"
    store = Store(path, create=False)
    dashboard = ExtensionDebugDashboard(store=store, extension_id=EXT)
    for alert in dashboard.get_alerts():
        dashboard.resolve_alert(alert["group"], "fixed in run 2")
    assert {a["status"] for a in dashboard.get_alerts()} == {"resolved"}
    store.close()
    record_store(folder)
    store = Store(path, create=False)
    alerts = ExtensionDebugDashboard(store=store, extension_id=EXT).get_alerts()
    store.close()
    assert {(a["status"], a["occurrences"]) for a in alerts} == {("active", 3)}


def test_reopen_a_stored_and_a_live_error_group(store: Store) -> None:
    """Reopen undoes Resolve for a group the store tracks and for a live tracker's group."""
    dashboard = ExtensionDebugDashboard(store=store, extension_id=EXT)
    group = dashboard.get_errors()["groups"][0]
    fingerprint = group["fingerprint"]
    assert dashboard.resolve_error_group(fingerprint, "fixed")["status"] == "resolved"
    reopened = dashboard.reopen_error_group(fingerprint)
    assert reopened["status"] == "open"
    assert dashboard.for_run(2).get_errors(status="unresolved")["groups"]
    with pytest.raises(LookupError, match="no error group 'nope'"):
        dashboard.reopen_error_group("nope")
    manager = live_manager("reopen-live")
    try:
        live = ExtensionDebugDashboard(manager)
        [group] = live.get_errors()["groups"]
        live.resolve_error_group(group["fingerprint"], "pool resized")
        assert live.reopen_error_group(group["fingerprint"])["status"] == "open"
        [alert] = live.get_alerts()
        assert live.resolve_alert(alert["group"], "ok")["status"] == "resolved"
        assert manager.alert_manager.get_alerts()[0].resolution_notes == "ok"
        assert live.reopen_alert(alert["alert_id"])["status"] == "active"
        with pytest.raises(DashboardError, match="read from the store"):
            live.for_run(1)
    finally:
        manager.stop()


@pytest.fixture
def client(store_path: Path) -> Iterator[Any]:
    app = create_app(store_path=store_path, include_registry=False)
    with framework_client(app) as test_client:
        yield test_client


def test_api_scopes_by_run_and_reopens(client: Any) -> None:
    """GET dashboard?run_id=N is run N's; POST .../reopen undoes a resolution of an error group
    and of an alert; an unknown run is a 404 naming it."""
    base = f"{PREFIX}/dashboard/{EXT}"
    one = client.get(base, params={"run_id": 1}).json()
    both = client.get(base).json()
    assert one["run_id"] == 1
    assert both["run_id"] is None
    assert both["overview"]["errors"]["total"] == 2 * one["overview"]["errors"]["total"]
    missing = client.get(base, params={"run_id": 99})
    assert (missing.status_code, missing.json()) == (404, {"detail": "no run #99 in the store"})
    assert client.get(base, params={"run_id": 0}).status_code == 422
    # every endpoint of the extension takes the same scope
    scoped = {"run_id": 1}
    errors = client.get(f"{base}/errors", params=scoped).json()
    assert errors["analysis"]["total_errors"] == one["overview"]["errors"]["total"]
    overview = client.get(f"{base}/overview", params=scoped).json()
    assert overview["counts"] == one["overview"]["counts"]
    alerts = client.get(f"{PREFIX}/alerts/{EXT}", params=scoped).json()["alerts"]
    assert {a["occurrences"] for a in alerts} == {1}
    metrics = client.get(f"{base}/metrics", params=scoped).json()
    assert metrics["aggregates"]["response_time"]["count"] == 3
    logs = client.get(f"{base}/logs", params={**scoped, "limit": 1000}).json()
    assert logs["count"] == one["overview"]["counts"]["logging"]
    alert = both["alerts"][0]
    assert alert["occurrences"] == 2
    path = f"{PREFIX}/alerts/{EXT}/{alert['group']}"
    done = client.post(f"{path}/resolve", json={"notes": "known"}).json()
    assert (done["status"], done["resolution_notes"]) == ("resolved", "known")
    assert client.post(f"{path}/reopen").json()["status"] == "active"
    fingerprint = both["errors"]["groups"][0]["fingerprint"]
    errors = f"{base}/errors/{fingerprint}"
    assert client.post(f"{errors}/resolve", json={"notes": "n"}).json()["status"] == "resolved"
    assert client.post(f"{errors}/reopen").json()["status"] == "open"
    assert client.post(f"{base}/errors/unknown/reopen").status_code == 404


def _kari(store_path: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--store", str(store_path), "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_reopens_error_groups_and_alerts(store_path: Path) -> None:
    """`errors reopen GROUP` and `alerts reopen ID` undo `... resolve`; unknown ids exit 2."""
    group = _kari(store_path, "errors", "patterns")[0]["group"]
    _kari(store_path, "errors", "resolve", group[:10], "--notes", "fixed")
    assert _kari(store_path, "errors", "reopen", group[:10])["status"] == "open"
    statuses = {g["group"]: g["status"] for g in _kari(store_path, "errors", "patterns")}
    assert statuses[group] == "open"
    alert = _kari(store_path, "alerts", "show")[0]["alert_id"]
    _kari(store_path, "alerts", "resolve", alert, "--notes", "ok")
    assert _kari(store_path, "alerts", "show")[0]["status"] == "resolved"
    reopened = _kari(store_path, "alerts", "reopen", alert)
    assert (reopened["alert_id"], reopened["status"]) == (alert, "active")
    assert _kari(store_path, "alerts", "show")[0]["status"] == "active"
    unknown = CliRunner().invoke(cli, ["--store", str(store_path), "alerts", "reopen", "zzz"])
    assert unknown.exit_code == 2
    assert "no alert 'zzz'" in unknown.output
