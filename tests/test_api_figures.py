"""The API's per-test figures: a live manager's debug session and a test of a stored run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import EXT, framework_client, live_manager, record_store

from pytest_kari_debug.api import PREFIX, create_app
from pytest_kari_debug.figures import FIGURES, LOG_LEVELS, figure_rows
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.storage import Store

LIVE = "live-ext"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of one real ``pytest --kari-debug`` run of extension store-ext."""
    return record_store(tmp_path_factory.mktemp("recorded"))


@pytest.fixture
def live() -> Iterator[ExtensionDebugManager]:
    manager = live_manager(LIVE)
    yield manager
    manager.stop()


@pytest.fixture
def client(live: ExtensionDebugManager, store_path: Path) -> Iterator[Any]:
    app = create_app(live, store_path=store_path, include_registry=False)
    with framework_client(app) as test_client:
        yield test_client


def _figures(client: Any, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(PREFIX + path, params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _by_name(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in found["figures"]}


def test_a_live_sessions_figures_running_and_stopped(
    client: Any, live: ExtensionDebugManager
) -> None:
    """A running session's figures count what it recorded so far; once stopped, the API
    reads the session the manager keeps. Both are the catalogue's readers' values."""
    session_id = live.start_debug_session(name="checkout")
    try:
        logger = live.get_logger()
        logger.warning("slow payment provider")
        logger.error("payment declined")
        live.get_metrics_collector().record_metric("basket_items", 3.0, "count")
        live.get_error_tracker().record_error("ValueError", "bad card number 42")
        running = _figures(client, f"/sessions/{LIVE}/{session_id}/figures")
        assert (running["source"], running["status"], running["name"]) == (
            "live", "running", "checkout",
        )  # fmt: skip
        rows = _by_name(running)
        assert set(FIGURES) | {f"log.{level}" for level in LOG_LEVELS} <= set(rows)
        assert rows["log.error"]["value"] == 1.0
        assert rows["log.warning"]["value"] == 2.0  # warning and error records
        assert rows["errors"]["value"] >= 1.0
        assert rows["metric:basket_items"] == {
            "name": "metric:basket_items", "value": 3.0, "unit": "", "base": 3.0,
            "base_unit": "", "source": "metrics.session_records named 'basket_items' (1)",
            "missing": None,
        }  # fmt: skip
        # a library session has no pytest phases: said, not invented
        assert rows["duration_ms"]["value"] is None
        assert rows["duration_ms"]["missing"] == "no phase timings"
    finally:
        session = live.stop_debug_session(session_id)
    stopped = _figures(client, f"/sessions/{LIVE}/{session_id}/figures")
    assert stopped["status"] == "stopped"
    record = {"record_version": 2, "nodeid": "checkout", "extension_id": LIVE,
              "outcome": "stopped", "collected_data": session.collected_data}  # fmt: skip
    assert stopped["figures"] == figure_rows(record)
    assert _by_name(stopped)["log.error"]["value"] == 1.0
    asked = _figures(
        client, f"/sessions/{LIVE}/{session_id}/figures", figure=["logs", "errors:ValueError"]
    )
    assert [(r["name"], r["value"]) for r in asked["figures"]] == [
        ("logs", 2.0), ("errors:ValueError", 1.0),
    ]  # fmt: skip
    unknown = client.get(
        f"{PREFIX}/sessions/{LIVE}/{session_id}/figures", params={"figure": "speed"}
    )
    assert unknown.status_code == 422
    assert "unknown figure 'speed'; known: duration_ms" in unknown.json()["detail"]


def test_a_stored_tests_figures(client: Any, store_path: Path) -> None:
    """A stored run's test: every figure the catalogue reads from its record, by run id,
    uuid or ``last``."""
    store = Store(store_path, create=False)
    try:
        run = store.get_run("last")
        assert run is not None
        tests = store.tests(run["id"])
    finally:
        store.close()
    for test in tests:
        found = _figures(client, "/runs/last/figures", nodeid=test["nodeid"])
        assert (found["source"], found["run_id"], found["status"]) == (
            "store", run["id"], test["outcome"],
        )  # fmt: skip
        assert found["figures"] == figure_rows({k: v for k, v in test.items() if k != "id"})
        rows = _by_name(found)
        assert rows["duration_ms"]["value"] == pytest.approx(test["duration_ms"])
        assert rows["peak_rss_mb"]["base_unit"] == "bytes"
        for ref in (str(run["id"]), run["uuid"]):
            again = _figures(
                client, f"/runs/{ref}/figures", nodeid=test["nodeid"], extension_id=EXT
            )
            assert again["figures"] == found["figures"]


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        (f"/sessions/{LIVE}/{'0' * 32}/figures", {}, 404, "no debug session"),
        ("/runs/9999/figures", {"nodeid": "x"}, 404, "no stored run '9999'"),
        ("/runs/last/figures", {"nodeid": "test_run.py::nope"}, 404, "has no test"),
        ("/runs/last/figures", {}, 422, "nodeid"),
        ("/runs/last/figures", {"nodeid": "test_run.py::test_api", "figure": "speed"}, 422,
         "known: duration_ms"),
        ("/runs/last/figures", {"nodeid": "test_run.py::test_api", "figure": "log.loud"}, 422,
         "unknown log level"),
        (f"/sessions/{EXT}/{'0' * 32}/figures", {}, 409, "need the live manager"),
    ],
)  # fmt: skip
def test_figures_endpoints_refuse_what_they_cannot_read(
    client: Any, path: str, params: dict[str, Any], status: int, words: str
) -> None:
    """Unknown sessions, runs and tests are 404s, unknown figures 422s listing the catalogue,
    a recorded extension's session a 409: each naming what was wrong."""
    response = client.get(PREFIX + path, params=params)
    assert response.status_code == status, response.text
    assert words in str(response.json()["detail"])
