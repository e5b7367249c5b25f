"""ExtensionDebugDashboard: the views of a live manager and of a store filled by a real run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from api_support import EXT, copy_store, live_manager, record_store

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.dashboard import DashboardError, ExtensionDebugDashboard
from pytest_kari_debug.exceptions import ConfigurationError, SessionError
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.storage import Store


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of one real ``pytest --kari-debug`` run of extension store-ext."""
    return record_store(tmp_path_factory.mktemp("recorded"))


@pytest.fixture
def store(recorded: Path, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the recorded store (tests may resolve alerts in it)."""
    opened = Store(copy_store(recorded, tmp_path), create=False)
    yield opened
    opened.close()


@pytest.fixture
def live() -> Iterator[ExtensionDebugManager]:
    """A started manager with logs, metrics, an error and an alert."""
    manager = live_manager()
    yield manager
    manager.stop()


def test_needs_a_manager_or_a_store() -> None:
    """A dashboard without a manager, or a store and an extension id, says what it needs."""
    with pytest.raises(ConfigurationError, match="needs a debug_manager, or a store"):
        ExtensionDebugDashboard()
    with pytest.raises(ConfigurationError, match="must be an ExtensionDebugManager"):
        ExtensionDebugDashboard("my-ext")  # type: ignore[arg-type]


def test_live_dashboard_data_has_every_view(live: ExtensionDebugManager) -> None:
    """get_dashboard_data() holds overview, health, metrics, logs, errors, alerts, sessions."""
    dashboard = ExtensionDebugDashboard(live)
    with live.debug_session(name="checkout"):
        live.get_logger().info("inside a session")
    data = dashboard.get_dashboard_data()
    assert data["source"] == "live"
    overview = data["overview"]
    assert overview["extension_name"] == "Live Extension"
    assert overview["running"] is True
    assert overview["log_levels"]["WARNING"] == 1
    assert overview["log_levels"]["ERROR"] == 1
    assert overview["errors"] == {"total": 1, "groups": 1, "unresolved": 1}
    assert overview["alerts"]["active"] == 1
    assert data["health"]["overall_status"] in ("healthy", "degraded")
    assert data["metrics"]["aggregates"]["queue_depth"]["mean"] == 5.0
    assert [r["message"] for r in data["logs"]][:2] == ["inside a session", "query failed"]
    [group] = data["errors"]["groups"]
    assert group["error_type"] == "ConnectionError"
    assert [a["alert_type"] for a in data["alerts"]] == ["high_cpu"]
    assert [s["name"] for s in data["sessions"]["completed"]] == ["checkout"]
    assert data["sessions"]["completed"][0]["records"]["logging"] == 1


def test_search_logs_as_the_seed_calls_it(live: ExtensionDebugManager) -> None:
    """search_logs(query, level, since) keeps matching records at that level or above."""
    dashboard = ExtensionDebugDashboard(live)
    live.get_logger().error("an error in the payment step")
    live.get_logger().info("no error here, only info")
    naive_utc = datetime.now(timezone.utc).replace(tzinfo=None)  # what utcnow() gives
    found = dashboard.search_logs(
        query="error", level="error", since=naive_utc - timedelta(hours=1)
    )
    # "query failed" carries a ConnectionError: the exception's text is searched too
    assert [r["message"] for r in found] == ["an error in the payment step", "query failed"]
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert dashboard.search_logs(since=later) == []
    assert len(dashboard.search_logs(limit=2)) == 2
    assert dashboard.search_logs(query="DISK", until=time.time())[0]["fields"] == {"percent": 91}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"level": "loud"}, "unknown log level 'loud'"),
        ({"limit": 0}, "limit must be a whole number from 1"),
        ({"since": "yesterday"}, "since 'yesterday' is not a time"),
        ({"query": 42}, "query must be text"),
    ],
)
def test_search_logs_rejects_bad_filters(
    live: ExtensionDebugManager, kwargs: dict[str, object], match: str
) -> None:
    """A bad filter is a ConfigurationError naming the value and what is accepted."""
    with pytest.raises(ConfigurationError, match=match):
        ExtensionDebugDashboard(live).search_logs(**kwargs)  # type: ignore[arg-type]


def test_real_time_metrics_read_resources_and_recorded_values(
    live: ExtensionDebugManager,
) -> None:
    """cpu_percent and memory_mb are read from the process; recorded metrics keep their unit."""
    found = ExtensionDebugDashboard(live).get_real_time_metrics(
        ["cpu_percent", "memory_mb", "queue_depth", "never_recorded"]
    )
    assert list(found) == ["cpu_percent", "memory_mb", "queue_depth", "never_recorded"]
    assert found["memory_mb"]["unit"] == "MiB"
    assert found["memory_mb"]["value"] > 1
    assert time.time() - found["cpu_percent"]["ts"] < 30
    assert found["queue_depth"]["value"] == 6.0
    assert found["never_recorded"] is None
    with pytest.raises(ConfigurationError, match="names must be a list"):
        ExtensionDebugDashboard(live).get_real_time_metrics("cpu_percent")
    with pytest.raises(ConfigurationError, match="non-empty list"):
        ExtensionDebugDashboard(live).get_real_time_metrics([])


def test_metrics_series_are_bounded_and_keep_the_newest(live: ExtensionDebugManager) -> None:
    """Series hold at most max_points points, the newest always among them."""
    metrics = live.get_metrics_collector()
    for index in range(500):
        metrics.record_metric("latency", float(index), "ms")
    view = ExtensionDebugDashboard(live).get_metrics(names=["latency"], max_points=50)
    assert list(view["series"]) == ["latency"]
    series = view["series"]["latency"]
    assert len(series) == 50
    assert series[-1][1] == 499.0
    assert [v for _, v in series] == sorted(v for _, v in series)
    assert view["aggregates"]["latency"]["count"] == 500
    assert {"queue_depth", "latency"} <= set(view["names"])
    with pytest.raises(ConfigurationError, match="window_seconds"):
        ExtensionDebugDashboard(live).get_metrics(window_seconds=0)


def test_logs_after_follows_the_log_and_counts_what_it_missed() -> None:
    """A cursor resumes after its record; records pushed out of the buffer are counted."""
    manager = ExtensionDebugManager("follow", configuration=DebugConfiguration(max_log_entries=5))
    dashboard = ExtensionDebugDashboard(manager)
    log = manager.get_logger()
    for index in range(3):
        log.info(f"old {index}")
    start = dashboard.logs_after(None, backlog=2)
    assert [r["message"] for r in start.records] == ["old 1", "old 2"]
    assert start.cursors[-1] == start.cursor
    log.info("new 0")
    log.warning("new 1")
    batch = dashboard.logs_after(start.cursor)
    assert [r["message"] for r in batch.records] == ["new 0", "new 1"]
    assert batch.missed == 0
    only_warnings = dashboard.logs_after(start.cursor, level="warning")
    assert [r["message"] for r in only_warnings.records] == ["new 1"]
    assert only_warnings.cursor == batch.cursor  # the filtered-out record was read too
    for index in range(8):
        log.info(f"burst {index}")
    burst = dashboard.logs_after(batch.cursor)
    assert [r["message"] for r in burst.records] == [f"burst {i}" for i in range(3, 8)]
    assert burst.missed == 3
    foreign = dashboard.logs_after("l0000:12", backlog=1)
    assert [r["message"] for r in foreign.records] == ["burst 7"]


def test_alerts_resolve_and_statistics(live: ExtensionDebugManager) -> None:
    """resolve_alert marks a live alert resolved; an unknown id is a LookupError."""
    dashboard = ExtensionDebugDashboard(live)
    [alert] = dashboard.get_alerts(status="active")
    resolved = dashboard.resolve_alert(alert["alert_id"], "restarted")
    assert (resolved["status"], resolved["resolution_notes"]) == ("resolved", "restarted")
    assert dashboard.get_alerts(status="active") == []
    assert dashboard.get_alert_statistics()["by_status"]["resolved"] == 1
    assert dashboard.get_alerts(severity="critical") == []
    with pytest.raises(LookupError, match="no alert 'nope'"):
        dashboard.resolve_alert("nope")
    with pytest.raises(ConfigurationError, match="unknown alert severity"):
        dashboard.get_alerts(severity="apocalyptic")


def test_error_groups_resolve_and_regress(live: ExtensionDebugManager, store: Store) -> None:
    """resolve_error_group resolves a live or a stored group; unknown groups are LookupErrors."""
    dashboard = ExtensionDebugDashboard(live)
    [group] = dashboard.get_errors()["groups"]
    assert (group["status"], group["regressed"], group["tests"]) == ("open", False, 0)
    done = dashboard.resolve_error_group(group["fingerprint"], "pool resized")
    assert (done["status"], done["resolution_notes"]) == ("resolved", "pool resized")
    assert dashboard.get_errors(status="unresolved")["groups"] == []
    with pytest.raises(LookupError, match="no error group 'ffff'"):
        dashboard.resolve_error_group("ffff")
    with pytest.raises(ConfigurationError, match="fingerprint and notes must be text"):
        dashboard.resolve_error_group(group["fingerprint"], notes=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="status must be one of"):
        dashboard.get_errors(status="closed")
    recorded = ExtensionDebugDashboard(store=store, extension_id=EXT)
    timeout = next(g for g in recorded.get_errors()["groups"] if g["error_type"] == "TimeoutError")
    recorded.resolve_error_group(timeout["fingerprint"])
    statuses = {g["error_type"]: g["status"] for g in recorded.get_errors()["groups"]}
    assert statuses == {"TimeoutError": "resolved", "ValueError": "open"}
    assert recorded.get_overview()["errors"] == {"total": 3, "groups": 2, "unresolved": 1}
    with pytest.raises(LookupError, match="no error group 'ffff' recorded"):
        recorded.resolve_error_group("ffff")


def test_sessions_start_and_stop(live: ExtensionDebugManager) -> None:
    """A session started through the dashboard runs until stopped; a second stop is an error."""
    dashboard = ExtensionDebugDashboard(live)
    started = dashboard.start_session({"enable_tracing": True}, name="via dashboard")
    assert started["status"] == "running"
    assert [s["session_id"] for s in dashboard.get_sessions()["active"]] == [started["session_id"]]
    stopped = dashboard.stop_session(started["session_id"])
    assert stopped["status"] == "stopped"
    assert set(stopped["collected_data"]) >= {"logging", "metrics"}
    with pytest.raises(SessionError, match="already stopped"):
        dashboard.stop_session(started["session_id"])
    with pytest.raises(ConfigurationError, match="unknown debug session option"):
        dashboard.start_session({"enable_magic": True})


def test_store_views_of_a_real_run(store: Store) -> None:
    """A store-backed dashboard shows the run's logs, metrics, error groups, alerts and tests."""
    dashboard = ExtensionDebugDashboard(store=store, extension_id=EXT)
    overview = dashboard.get_overview()
    assert overview["source"] == "store"
    # the second WARNING is the log channel's line about the medium alert (stdlib capture)
    assert overview["log_levels"] == {
        "DEBUG": 1, "INFO": 1, "WARNING": 2, "ERROR": 1, "CRITICAL": 1,
    }  # fmt: skip
    assert overview["last_run"]["outcomes"] == {"passed": 2}
    assert overview["alerts"]["active"] == 2
    logs = dashboard.search_logs(level="error")
    assert [r["level"] for r in logs] == ["CRITICAL", "ERROR"]
    assert dashboard.search_logs(query="DEPENDENCY")[0]["message"] == "slow dependency"
    metrics = dashboard.get_metrics(window_seconds=3600)
    assert metrics["aggregates"]["response_time"]["max"] == 300.0
    assert dashboard.get_real_time_metrics(["response_time"])["response_time"]["value"] == 300.0
    errors = dashboard.get_errors()
    assert errors["analysis"]["total_errors"] == 3
    assert {g["error_type"] for g in errors["groups"]} == {"ValueError", "TimeoutError"}
    sessions = dashboard.get_sessions()
    assert sorted(s["name"].split("::")[-1] for s in sessions["completed"]) == [
        "test_api", "test_slow",
    ]  # fmt: skip
    assert dashboard.get_health()["overall_status"] == "healthy"
    assert dashboard.get_status()["source"] == "store"


def test_store_alert_resolution_is_kept_in_the_store(store: Store) -> None:
    """Resolving a recorded alert writes the store's resolutions; a new dashboard sees it."""
    dashboard = ExtensionDebugDashboard(store=store, extension_id=EXT)
    alert = next(a for a in dashboard.get_alerts() if a["alert_type"] == "high_cpu")
    dashboard.resolve_alert(alert["alert_id"], "scaled up")
    again = ExtensionDebugDashboard(store=store, extension_id=EXT)
    statuses = {a["alert_type"]: a["status"] for a in again.get_alerts()}
    assert statuses == {"high_cpu": "resolved", "queue_depth": "active"}
    assert store.resolutions("alert", extension_id=EXT)[(EXT, alert["alert_id"])]["notes"] == (
        "scaled up"
    )
    with pytest.raises(LookupError, match="no alert 'missing'"):
        again.resolve_alert("missing")


def test_store_dashboard_cannot_start_sessions(store: Store) -> None:
    """Starting a session needs a live manager: a store-only dashboard says so."""
    dashboard = ExtensionDebugDashboard(store=store, extension_id=EXT)
    with pytest.raises(DashboardError, match="needs a live debug manager"):
        dashboard.start_session()


def test_store_logs_after_follows_new_records(store: Store) -> None:
    """Store cursors are record ids: records written later are read after the cursor."""
    dashboard = ExtensionDebugDashboard(store=store, extension_id=EXT)
    start = dashboard.logs_after(None, backlog=2)
    assert [r["level"] for r in start.records] == ["CRITICAL", "WARNING"]  # oldest first
    assert dashboard.logs_after(start.cursor).records == []
    store.write_records(
        "log", EXT, [{"ts": time.time(), "level": "INFO", "message": "a manager's record"}]
    )
    batch = dashboard.logs_after(start.cursor)
    assert [r["message"] for r in batch.records] == ["a manager's record"]
    assert batch.cursor.startswith("s:")
