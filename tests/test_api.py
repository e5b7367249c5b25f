"""Every REST endpoint through the framework's test client, on live managers and a real store."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import EXT, copy_store, framework_client, live_manager, record_store
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from pytest_kari_debug.api import PREFIX, create_app
from pytest_kari_debug.cli import cli
from pytest_kari_debug.manager import ExtensionDebugManager, get_manager

LIVE = "live-ext"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of one real ``pytest --kari-debug`` run of extension store-ext."""
    return record_store(tmp_path_factory.mktemp("recorded"))


@pytest.fixture
def store_path(recorded: Path, tmp_path: Path) -> Path:
    """A private copy of the recorded store."""
    return copy_store(recorded, tmp_path)


@pytest.fixture
def live() -> Iterator[ExtensionDebugManager]:
    """A started manager with logs, metrics, an error and an alert."""
    manager = live_manager(LIVE)
    yield manager
    manager.stop()


@pytest.fixture
def client(live: ExtensionDebugManager, store_path: Path) -> Iterator[Any]:
    """A test client of the app serving *live* and the recorded store."""
    app = create_app(live, store_path=store_path, include_registry=False)
    with framework_client(app) as test_client:
        yield test_client


def _get(client: Any, path: str, **kwargs: Any) -> Any:
    response = client.get(PREFIX + path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def _post(client: Any, path: str, body: Any = None) -> Any:
    response = client.post(PREFIX + path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_managers_list_live_and_recorded_extensions(client: Any) -> None:
    """GET managers lists the live manager and the extension recorded in the store."""
    data = _get(client, "/managers")
    assert data["count"] == 2
    assert {(m["extension_id"], m["source"], m["running"]) for m in data["managers"]} == {
        (LIVE, "live", True),
        (EXT, "store", False),
    }


def test_manager_start_stop_status(client: Any) -> None:
    """POST start creates a live manager; stop stops it; status says so each time."""
    new = "api-started-ext"
    started = _post(
        client, f"/managers/{new}/start", {"extension_name": "Started", "configuration":
                                           {"max_log_entries": "50", "tracing_enabled": True}},
    )  # fmt: skip
    assert (started["created"], started["running"], started["extension_name"]) == (
        True, True, "Started",
    )  # fmt: skip
    manager = get_manager(new)
    assert manager is not None
    assert manager.configuration.max_log_entries == 50
    assert _post(client, f"/managers/{new}/start")["created"] is False
    assert _post(client, f"/managers/{new}/stop")["running"] is False
    status = _get(client, f"/managers/{new}/status")
    assert (status["running"], status["configuration"]["tracing_enabled"]) == (False, True)
    again = client.post(f"{PREFIX}/managers/{new}/start", json={"configuration": {"max_errors": 5}})
    assert again.status_code == 422
    assert "cannot change" in again.json()["detail"]
    manager.stop()


def test_dashboard_views_of_a_live_manager(client: Any) -> None:
    """The dashboard endpoints return the live manager's views."""
    data = _get(client, f"/dashboard/{LIVE}")
    assert set(data) >= {"overview", "health", "metrics", "logs", "errors", "alerts", "sessions"}
    assert _get(client, f"/dashboard/{LIVE}/overview")["log_levels"]["ERROR"] == 1
    metrics = _get(client, f"/dashboard/{LIVE}/metrics", params={"name": ["queue_depth"]})
    assert metrics["aggregates"]["queue_depth"]["last"] == 6.0
    assert list(metrics["series"]) == ["queue_depth"]
    logs = _get(client, f"/dashboard/{LIVE}/logs", params={"level": "warning", "limit": 5})
    assert [r["message"] for r in logs["records"]] == ["query failed", "disk almost full"]
    errors = _get(client, f"/dashboard/{LIVE}/errors")
    assert errors["groups"][0]["error_type"] == "ConnectionError"
    alerts = _get(client, f"/dashboard/{LIVE}/alerts", params={"severity": "high"})
    assert [a["alert_type"] for a in alerts["alerts"]] == ["high_cpu"]


def test_dashboard_views_of_the_store(client: Any) -> None:
    """The same endpoints read the store for an extension with no live manager."""
    data = _get(client, f"/dashboard/{EXT}")
    assert data["source"] == "store"
    assert data["overview"]["last_run"]["outcomes"] == {"passed": 2}
    logs = _get(client, f"/dashboard/{EXT}/logs", params={"query": "formula"})
    assert logs["records"][0]["level"] == "CRITICAL"
    assert _get(client, f"/dashboard/{EXT}/errors")["analysis"]["total_errors"] == 3
    assert _get(client, f"/alerts/{EXT}/statistics")["by_severity"]["medium"] == 1
    sessions = _get(client, f"/sessions/{EXT}")
    assert len(sessions["completed"]) == 2
    assert _get(client, f"/health/{EXT}")["overall_status"] == "healthy"


def test_realtime_metrics_and_log_search(client: Any) -> None:
    """POST realtime returns the newest values; POST search finds text at a least level."""
    values = _post(
        client, f"/dashboard/{LIVE}/metrics/realtime", {"names": ["memory_mb", "queue_depth"]}
    )["metrics"]
    assert values["memory_mb"]["unit"] == "MiB"
    assert values["queue_depth"]["value"] == 6.0
    found = _post(client, f"/dashboard/{LIVE}/logs/search", {"query": "DISK", "level": "info"})
    assert [r["message"] for r in found["records"]] == ["disk almost full"]
    since = _post(
        client, f"/dashboard/{LIVE}/logs/search", {"since": "2999-01-01T00:00:00Z"}
    )  # fmt: skip
    assert since["count"] == 0


def test_sessions_start_list_stop(client: Any) -> None:
    """Sessions start, show as running, stop with their data, and cannot stop twice."""
    started = _post(client, f"/sessions/{LIVE}/start", {"name": "api session"})
    session_id = started["session_id"]
    listed = _get(client, f"/sessions/{LIVE}")
    assert [s["session_id"] for s in listed["active"]] == [session_id]
    stopped = _post(client, f"/sessions/{LIVE}/{session_id}/stop")
    assert stopped["status"] == "stopped"
    assert "logging" in stopped["collected_data"]
    assert _get(client, f"/sessions/{LIVE}")["completed"][0]["name"] == "api session"
    twice = client.post(f"{PREFIX}/sessions/{LIVE}/{session_id}/stop")
    assert twice.status_code == 404
    assert "already stopped" in twice.json()["detail"]


def test_health_check_and_alert_resolution(client: Any, live: ExtensionDebugManager) -> None:
    """POST check runs diagnostics; POST resolve resolves a live alert and a stored one."""
    report = _post(client, f"/health/{LIVE}/check")
    assert {c["component"] for c in report["checks"]} >= {"logging", "metrics", "manager"}
    assert _get(client, f"/health/{LIVE}")["checked_at"] == report["checked_at"]
    [alert] = _get(client, f"/alerts/{LIVE}", params={"status": "active"})["alerts"]
    resolved = _post(client, f"/alerts/{LIVE}/{alert['alert_id']}/resolve", {"notes": "fixed"})
    assert (resolved["status"], resolved["resolution_notes"]) == ("resolved", "fixed")
    assert live.get_alert_manager().get_active_alerts() == []
    stored = _get(client, f"/alerts/{EXT}", params={"status": "active"})["alerts"][0]
    _post(client, f"/alerts/{EXT}/{stored['alert_id']}/resolve")
    statuses = {a["alert_id"]: a["status"] for a in _get(client, f"/alerts/{EXT}")["alerts"]}
    assert statuses[stored["alert_id"]] == "resolved"


def test_error_group_resolution_live_and_stored(
    client: Any, live: ExtensionDebugManager, store_path: Path
) -> None:
    """POST errors/{fingerprint}/resolve resolves a live group and a stored one (the CLI's)."""
    [group] = _get(client, f"/dashboard/{LIVE}/errors", params={"status": "open"})["groups"]
    path = f"/dashboard/{LIVE}/errors/{group['fingerprint']}/resolve"
    resolved = _post(client, path, {"notes": "pool resized"})
    assert (resolved["status"], resolved["resolution_notes"]) == ("resolved", "pool resized")
    [tracked] = live.get_error_tracker().get_groups()
    assert (tracked.status, tracked.notes) == ("resolved", "pool resized")
    assert (
        _get(client, f"/dashboard/{LIVE}/errors", params={"status": "unresolved"})["groups"] == []
    )
    assert _get(client, f"/dashboard/{LIVE}/overview")["errors"]["unresolved"] == 0
    timeout = live.get_error_tracker().record_error("TimeoutError", "upstream timed out")
    assert timeout is not None
    _post(client, f"/dashboard/{LIVE}/errors/{timeout.fingerprint}/resolve")
    live.get_error_tracker().record_error("TimeoutError", "upstream timed out")
    again = _get(client, f"/dashboard/{LIVE}/errors", params={"status": "regressed"})["groups"]
    assert [g["fingerprint"] for g in again] == [timeout.fingerprint]

    stored = _get(client, f"/dashboard/{EXT}/errors")["groups"]
    assert {g["status"] for g in stored} == {"open"}
    first = stored[0]
    done = _post(client, f"/dashboard/{EXT}/errors/{first['fingerprint']}/resolve")
    assert (done["status"], done["count"]) == ("resolved", first["count"])
    listed = {
        g["fingerprint"]: g["status"] for g in _get(client, f"/dashboard/{EXT}/errors")["groups"]
    }
    assert listed[first["fingerprint"]] == "resolved"
    assert sorted(listed.values()) == ["open", "resolved"]
    # the store keeps it where `kari-debug errors resolve` does: the CLI shows it resolved
    result = CliRunner().invoke(
        cli, ["--store", str(store_path), "--format", "json", "errors", "patterns"]
    )
    assert result.exit_code == 0, result.output
    by_cli = {g["group"]: g["status"] for g in json.loads(result.stdout)}
    assert by_cli == listed


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        (f"/dashboard/{LIVE}/errors/ffff0000/resolve", {}, 404),
        (f"/dashboard/{EXT}/errors/ffff0000/resolve", {"json": {"notes": "x"}}, 404),
        ("/dashboard/nope/errors/ffff0000/resolve", {}, 404),
        (f"/dashboard/{LIVE}/errors/bad%20fingerprint/resolve", {}, 422),
        (f"/dashboard/{EXT}/errors/abc/resolve", {"json": {"notes": "x" * 2001}}, 422),
        (f"/dashboard/{EXT}/errors/abc/resolve", {"json": {"note": "typo"}}, 422),
        (f"/dashboard/{EXT}/errors/abc/resolve", {"json": {"notes": 7}}, 422),
    ],
)
def test_error_group_resolution_refuses_unknown_groups_and_bad_input(
    client: Any, path: str, kwargs: dict[str, Any], status: int
) -> None:
    """An unknown group (or extension) is a 404; a bad fingerprint or body is a 422."""
    response = client.post(PREFIX + path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/managers/nope/status"),
        ("post", "/managers/nope/stop"),
        ("get", "/dashboard/nope"),
        ("get", "/dashboard/nope/logs"),
        ("post", "/dashboard/nope/logs/search"),
        ("get", "/dashboard/nope/logs/stream"),
        ("get", "/sessions/nope"),
        ("post", f"/sessions/{LIVE}/{'0' * 32}/stop"),
        ("get", "/health/nope"),
        ("post", f"/alerts/{LIVE}/deadbeef/resolve"),
        ("get", "/export/nope/all"),
    ],
)
def test_unknown_extension_session_or_alert_is_404(client: Any, method: str, path: str) -> None:
    """An unknown extension, session or alert is a 404 naming it."""
    response = getattr(client, method)(PREFIX + path, **({"json": {}} if method == "post" else {}))
    assert response.status_code == 404, response.text
    assert "no " in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", f"/dashboard/{LIVE}/logs", {"params": {"limit": 0}}),
        ("get", f"/dashboard/{LIVE}/logs", {"params": {"level": "loud"}}),
        ("get", f"/dashboard/{LIVE}/logs", {"params": {"since": "yesterday"}}),
        ("get", f"/dashboard/{LIVE}/metrics", {"params": {"window_seconds": -1}}),
        ("get", f"/dashboard/{LIVE}/alerts", {"params": {"severity": "apocalyptic"}}),
        ("post", f"/dashboard/{LIVE}/metrics/realtime", {"json": {"names": []}}),
        ("post", f"/dashboard/{LIVE}/metrics/realtime", {"json": {"names": "cpu"}}),
        ("post", f"/dashboard/{LIVE}/logs/search", {"json": {"limit": 5000}}),
        ("post", f"/dashboard/{LIVE}/logs/search", {"json": {"regex": ".*"}}),
        ("post", f"/dashboard/{LIVE}/logs/search", {"content": b"{not json", "headers": JSON}),
        ("post", f"/sessions/{LIVE}/start", {"json": {"configuration": {"enable_magic": True}}}),
        ("post", f"/sessions/{LIVE}/not-a-session-id/stop", {}),
        ("post", "/managers/brand-new/start", {"json": {"configuration": {"max_errors": -1}}}),
        ("post", "/managers/brand-new/start", {"json": {"configuration": {"colour": "red"}}}),
        ("get", "/dashboard/%00bad", {}),
        ("get", f"/export/{LIVE}/logs", {"params": {"format": "xml"}}),
    ],
)  # fmt: skip
def test_bad_input_is_422(client: Any, method: str, path: str, kwargs: dict[str, Any]) -> None:
    """Bad parameters and bodies are 422 with a reason, never a server error."""
    response = getattr(client, method)(PREFIX + path, **kwargs)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert get_manager("brand-new") is None


def test_live_only_actions_on_a_recorded_extension_are_409(client: Any) -> None:
    """Sessions and manager stop need a live manager: a recorded extension gets a 409."""
    for path in (f"/sessions/{EXT}/start", f"/managers/{EXT}/stop"):
        response = client.post(PREFIX + path)
        assert response.status_code == 409
        assert "needs a live debug manager" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        f"/managers/{LIVE}/start",
        f"/managers/{LIVE}/stop",
        f"/sessions/{LIVE}/start",
        f"/health/{LIVE}/check",
        f"/dashboard/{LIVE}/logs/search",
        f"/alerts/{LIVE}/abc/resolve",
        f"/dashboard/{LIVE}/errors/abc/resolve",
    ],
)
def test_state_changes_are_post_only(client: Any, live: ExtensionDebugManager, path: str) -> None:
    """GET on an endpoint that changes state is 405 and changes nothing."""
    response = client.get(PREFIX + path)
    assert response.status_code == 405
    assert live.running is True


def test_export_json_of_each_kind(client: Any) -> None:
    """JSON exports hold the kind's records, with the buffer's drop count."""
    logs = _get(client, f"/export/{LIVE}/logs")
    assert [r["message"] for r in logs["logs"]][:2] == ["live started", "disk almost full"]
    assert logs["logs_dropped"] == 0
    metrics = _get(client, f"/export/{LIVE}/metrics", params={"format": "json"})
    assert [p["value"] for p in metrics["metrics"]["records"]] == [4.0, 6.0]
    errors = _get(client, f"/export/{LIVE}/errors")
    assert errors["errors"][0]["error_type"] == "ConnectionError"
    alerts = _get(client, f"/export/{LIVE}/alerts")
    assert alerts["alert_statistics"]["total_alerts"] == 1
    everything = _get(client, f"/export/{EXT}/all")
    assert everything["source"] == "store"
    assert {"logs", "metrics", "errors", "alerts", "overview", "sessions"} <= set(everything)
    assert len(everything["logs"]) == 6


def test_export_csv_is_rfc4180_with_the_formula_guard(client: Any) -> None:
    """CSV exports parse back, and text a spreadsheet would run as a formula is quoted."""
    response = client.get(f"{PREFIX}/export/{EXT}/logs", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="store-ext-logs.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    messages = [row["message"] for row in rows]
    assert "'=cmd|' /C calc'!A0 formula text" in messages
    everything = client.get(f"{PREFIX}/export/{LIVE}/all", headers={"accept": "text/csv"})
    kinds = [row["kind"] for row in csv.DictReader(io.StringIO(everything.text, newline=""))]
    assert set(kinds) == {"log", "metric", "error", "alert"}


@pytest.mark.parametrize("fmt", ["prometheus", "openmetrics"])
def test_export_prometheus_parses(client: Any, fmt: str) -> None:
    """Prometheus and OpenMetrics exports parse with the Prometheus parser."""
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as openmetrics_families,
    )

    response = client.get(f"{PREFIX}/export/{LIVE}/all", params={"format": fmt})
    parse = text_string_to_metric_families if fmt == "prometheus" else openmetrics_families
    families = {f.name: f for f in parse(response.text)}
    value = families["kari_latest_metric_value"]
    assert any(s.labels["metric"] == "queue_depth" and s.value == 6.0 for s in value.samples)
    levels = {s.labels["level"]: s.value for s in families["kari_log_records"].samples}
    assert levels["ERROR"] == 1
    assert any(s.labels["severity"] == "high" for s in families["kari_alerts"].samples)


def test_export_format_follows_accept(client: Any) -> None:
    """Without ?format the Accept header picks the format; an unservable one is 406."""
    cases = {
        "text/csv": "text/csv",
        "text/plain": "text/plain; version=0.0.4",
        "application/openmetrics-text; version=1.0.0": "application/openmetrics-text",
        "text/html, application/json;q=0.9": "application/json",
        "*/*": "application/json",
    }
    for accept, media in cases.items():
        response = client.get(f"{PREFIX}/export/{LIVE}/metrics", headers={"accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media), accept
    refused = client.get(f"{PREFIX}/export/{LIVE}/metrics", headers={"accept": "image/png"})
    assert refused.status_code == 406
    assert "text/csv" in refused.json()["detail"]


def test_exports_never_read_a_path_the_client_names(client: Any, tmp_path: Path) -> None:
    """No export parameter names a file; path-like parameters and ids are ignored or 404."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    spec = client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        if "/export/" in path:
            names = {p["name"] for p in item["get"]["parameters"]}
            # run_id: the stored run to export (a whole number, as every dashboard view takes)
            assert names == {"extension_id", "format", "limit", "run_id"}
    for params in ({"path": str(secret)}, {"output": str(secret)}, {"file": str(secret)}):
        response = client.get(f"{PREFIX}/export/{LIVE}/all", params=params)
        assert "TOP-SECRET-CONTENT" not in response.text
    traversal = client.get(f"{PREFIX}/export/..%2F..%2F{secret.name}/logs")
    assert traversal.status_code in (404, 422)
    assert "TOP-SECRET-CONTENT" not in traversal.text


def test_download_names_are_safe() -> None:
    """The attachment name is built from the extension id with unsafe characters replaced."""
    odd = 'we"ird\\ext;name'
    manager = ExtensionDebugManager(odd)
    try:
        with framework_client(create_app(manager, include_registry=False)) as client:
            response = client.get(f"{PREFIX}/export/{odd}/logs", params={"format": "csv"})
        assert response.status_code == 200
        assert response.headers["content-disposition"] == (
            'attachment; filename="we_ird_ext_name-logs.csv"'
        )
    finally:
        manager.stop()


def test_page_is_served_self_contained(client: Any) -> None:
    """GET / is the dashboard page: inline script and style under a nonce CSP, no CDN."""
    response = client.get("/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in response.text
    assert f'<style nonce="{nonce}">' in response.text
    assert "http://" not in response.text.replace('"http://www.w3.org/2000/svg"', "")
    assert "https://" not in response.text
    boot = response.text.split('id="kari-boot"')[1].split(">", 1)[1].split("</script>")[0]
    data = json.loads(boot)
    assert data["api"] == PREFIX
    assert {e["extension_id"] for e in data["extensions"]} == {LIVE, EXT}
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_page_boot_data_cannot_close_its_script(store_path: Path) -> None:
    """An extension id holding </script> stays inside the page's JSON (escaped <)."""
    hostile = "</script><script>alert(1)</script>"
    manager = ExtensionDebugManager(hostile)
    try:
        app = create_app(manager, store_path=store_path, include_registry=False)
        with framework_client(app) as test_client:
            text = test_client.get("/").text
        assert hostile not in text
        assert text.count("</script>") == 2
        assert "\\u003c/script\\u003e" in text
    finally:
        manager.stop()
