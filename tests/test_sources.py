"""Record sources: one run recorded live, stored and as test records gives one answer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.dashboard import DashboardError, ExtensionDebugDashboard
from pytest_kari_debug.exceptions import ConfigurationError, KariDebugError
from pytest_kari_debug.exporters.bundle import session_tests
from pytest_kari_debug.logger import LogQuery
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.resolutions import ALERT, ERROR_GROUP
from pytest_kari_debug.sources import (
    ExtensionSource,
    LiveSource,
    RecordSource,
    RunSource,
    StoreSource,
)
from pytest_kari_debug.storage import Store
from pytest_kari_debug.views import run_error_groups

EXT = "sources-ext"
NODEIDS = ("test_shop.py::test_list", "test_shop.py::test_buy", "test_shop.py::test_pay")
#: The fields of an error group every source must agree on.
GROUP_FIELDS = (
    "fingerprint", "extension_id", "error_type", "message", "category", "count", "tests",
    "first_seen", "last_seen", "last_test", "status", "regressed", "resolution_notes",
)  # fmt: skip
ALERT_FIELDS = ("alert_id", "extension_id", "severity", "alert_type", "title", "status", "test")
STAT_FIELDS = ("total_alerts", "active_alerts", "by_severity", "by_type", "by_status")


def _run(manager: ExtensionDebugManager) -> None:
    """Three tests, each a debug session: logs, a metric, errors in two, an alert in each."""
    for index, nodeid in enumerate(NODEIDS):
        session_id = manager.start_debug_session(name=nodeid)
        logger = manager.get_logger()
        logger.info("listing items", page=index)
        logger.warning("slow backend", ms=100 * index)
        manager.get_metrics_collector().record_metric("queue_depth", float(index), "count")
        if index:
            try:
                raise ValueError(f"price {index} is negative")
            except ValueError:
                logger.exception("payment failed")
        manager.get_alert_manager().raise_alert(
            f"queue-{index}", "high" if index else "low", f"Queue {index}", "queue too deep",
            "queue_depth", float(index), 0.5, session_id=session_id,
        )  # fmt: skip
        manager.stop_debug_session(session_id)


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[ExtensionDebugManager, Store, int, list[Any]]]:
    """One run recorded three ways: the live manager, the store, and the test records."""
    manager = ExtensionDebugManager(EXT, "Sources", DebugConfiguration())
    _run(manager)
    tests = session_tests(manager.sessions)
    for test in tests:
        test["finished_at"] = time.time()
    store = Store(tmp_path / "kari.db")
    run = {"uuid": uuid.uuid4().hex, "started_at": time.time() - 1, "finished_at": time.time()}
    imported = store.import_run({"run": run, "tests": tests}, error_groups=run_error_groups)
    yield manager, store, imported.run_id, tests
    store.close()
    manager.stop()


def _three(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]],
) -> list[RecordSource]:
    manager, store, run_id, tests = recorded
    return [LiveSource(manager), StoreSource(store, EXT, run_id), RunSource(tests, store=store)]


def _answers(source: RecordSource) -> dict[str, Any]:
    """What a source says about the run, in the fields every source gives."""
    return {
        "counts": source.counts(),
        "groups": [{k: g[k] for k in GROUP_FIELDS} for g in source.error_groups()],
        "alerts": [{k: a[k] for k in ALERT_FIELDS} for a in source.alerts()],
        "alert_groups": [
            (g["group"], g["occurrences"], g["status"], g["alert_ids"])
            for g in source.alert_groups()
        ],
        "statistics": {k: source.alert_statistics()[k] for k in STAT_FIELDS},
        "metric_rows": sorted(source.metric_rows()),
        "warnings": [
            (r["level"], r["message"], r["test"])
            for r in source.logs(LogQuery(level="WARNING"), limit=100)
        ],
        "search": [r["message"] for r in source.logs(LogQuery(query="PAYMENT"), limit=1)],
        "of_test": [r["message"] for r in source.logs(LogQuery(), limit=100, nodeid="test_buy")],
        "records": {
            kind: [
                r.get("message") or r.get("error_message") or r.get("name")
                for r in source.records(kind)
            ]
            for kind in ("log", "metric", "error", "alert")
        },
        "tests": [t["nodeid"] for t in source.tests()],
        "filtered": [
            r["error_message"]
            for r in source.records(
                "error", since=0.0, nodeid="test_pay", keep=lambda r: "2" in r["error_message"]
            )
        ],
        "newest_two": [r["message"] for r in source.records("log", limit=2)],
    }


def test_live_stored_and_run_sources_answer_alike(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]],
) -> None:
    """Counts, error groups, alerts, metric rows, logs and records agree across the sources."""
    live, stored, run = (_answers(source) for source in _three(recorded))
    assert live["counts"]["logging"] == 8
    assert [g["tests"] for g in live["groups"]] == [2]
    assert live["groups"][0]["last_test"] == NODEIDS[2]
    assert [a["test"] for a in live["alerts"]] == list(reversed(NODEIDS))
    assert live["search"] == ["payment failed"]
    assert live["of_test"] == ["payment failed", "slow backend", "listing items"]
    assert len(live["metric_rows"]) == 3
    assert live["tests"] == list(NODEIDS)
    assert live["filtered"] == ["price 2 is negative"]
    assert live["newest_two"] == ["payment failed", "slow backend"]
    for name in live:
        assert stored[name] == live[name], name
        assert run[name] == live[name], name


def test_sources_keep_the_protocols(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]],
) -> None:
    """The live and store sources serve a dashboard; all three are record sources."""
    live, stored, run = _three(recorded)
    assert all(isinstance(source, RecordSource) for source in (live, stored, run))
    assert isinstance(live, ExtensionSource)
    assert isinstance(stored, ExtensionSource)
    assert not isinstance(run, ExtensionSource)
    assert [source.name for source in (live, stored, run)] == ["live", "store", "run"]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["live", "store", "run"])
def test_resolving_through_a_source_shows_in_its_answers(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]], index: int
) -> None:
    """An error group and an alert resolved (then reopened) through any source read back so."""
    source = _three(recorded)[index]
    [group] = source.error_groups()
    done = source.resolve(ERROR_GROUP, group["fingerprint"], "validated prices")
    assert (done["status"], done["resolution_notes"]) == ("resolved", "validated prices")
    assert [g["status"] for g in source.error_groups()] == ["resolved"]
    alert = source.alerts()[0]
    resolved = source.resolve(ALERT, alert["alert_id"], "queue drained")
    assert (resolved["status"], resolved["resolution_notes"]) == ("resolved", "queue drained")
    assert source.alert_statistics()["by_status"]["resolved"] == 1
    reopened = source.reopen(ERROR_GROUP, group["fingerprint"])
    assert (reopened["status"], [g["status"] for g in source.error_groups()]) == ("open", ["open"])
    again = source.reopen(ALERT, alert["alert_id"])
    assert (again["status"], again["resolution_notes"]) == ("active", None)
    assert source.alert_statistics()["by_status"]["resolved"] == 0
    with pytest.raises(LookupError, match="no error group 'ffff'"):
        source.resolve(ERROR_GROUP, "ffff")
    with pytest.raises(LookupError, match="no alert 'nope'"):
        source.resolve(ALERT, "nope")
    with pytest.raises(ConfigurationError, match="what must be 'error_group' or 'alert'"):
        source.resolve("group", group["fingerprint"])


def test_a_run_resolved_into_the_store_reads_back_from_the_store(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]],
) -> None:
    """A run's resolution goes to its store; without a store a run keeps none and says so."""
    _, store, run_id, tests = recorded
    [group] = RunSource(tests).error_groups()
    with pytest.raises(KariDebugError, match="give RunSource a store"):
        RunSource(tests).resolve(ERROR_GROUP, group["fingerprint"])
    RunSource(tests, store=store).resolve(ERROR_GROUP, group["fingerprint"], "fixed")
    [stored] = StoreSource(store, EXT, run_id).error_groups()
    assert (stored["status"], stored["resolution_notes"]) == ("resolved", "fixed")
    # a later view of the same records (the report rebuilt from the store) shows it too
    assert RunSource(tests, store=store).error_groups()[0]["status"] == "resolved"


def test_store_source_scopes_an_extension_and_a_run(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]],
) -> None:
    """A run id keeps that run's records; no extension id reads every extension."""
    _, store, first, tests = recorded
    other = [{**t, "extension_id": "other-ext", "finished_at": time.time() + 1} for t in tests]
    run = {"uuid": uuid.uuid4().hex, "started_at": time.time(), "finished_at": time.time() + 2}
    second = store.import_run({"run": run, "tests": other}, error_groups=run_error_groups).run_id
    assert StoreSource(store, EXT, first).counts()["logging"] == 8
    assert StoreSource(store, EXT, second).counts()["logging"] == 0
    everything = StoreSource(store)
    assert everything.counts()["logging"] == 16
    assert {g["extension_id"] for g in everything.error_groups()} == {EXT, "other-ext"}
    assert StoreSource(store, "other-ext").last_run()["id"] == second  # type: ignore[index]
    assert StoreSource(store, EXT, first).last_run()["id"] == first  # type: ignore[index]
    fingerprint = everything.error_groups()[0]["fingerprint"]
    with pytest.raises(LookupError, match="recorded for several extensions"):
        everything.resolve(ERROR_GROUP, fingerprint)


def test_bad_scope_and_kinds_are_named(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]],
) -> None:
    """A bad store, extension id, run id or record kind is a clear error at the source."""
    _, store, _, _ = recorded
    with pytest.raises(ConfigurationError, match="needs a Store"):
        StoreSource("kari.db", EXT)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="extension_id must be a non-empty text"):
        StoreSource(store, "")
    with pytest.raises(ConfigurationError, match="run must be a run id"):
        StoreSource(store, EXT, "last")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs an ExtensionDebugManager"):
        LiveSource(store)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="kind must be one of log, metric"):
        StoreSource(store, EXT).records("logs")
    with pytest.raises(ConfigurationError, match="tests must be an iterable of test records"):
        RunSource({"nodeid": "t.py::test_a"})
    with pytest.raises(ConfigurationError, match="tests must be an iterable of test records"):
        RunSource(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="extension_id must be a non-empty text"):
        RunSource([], extension_id=3)  # type: ignore[arg-type]


def test_dashboard_reads_one_run_of_the_store(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]],
) -> None:
    """A dashboard over a run's store source shows that run, and live-only actions say why."""
    _, store, run_id, _ = recorded
    dashboard = ExtensionDebugDashboard(source=StoreSource(store, EXT, run_id))
    overview = dashboard.get_overview()
    assert (overview["source"], overview["last_run"]["id"]) == ("store", run_id)
    assert overview["errors"] == {"total": 2, "groups": 1, "unresolved": 1}
    assert [s["name"] for s in dashboard.get_sessions()["completed"]] == list(reversed(NODEIDS))
    with pytest.raises(DashboardError, match="starting a debug session needs a live"):
        dashboard.start_session()
    with pytest.raises(ConfigurationError, match="give one"):
        ExtensionDebugDashboard(store=store, extension_id=EXT, source=StoreSource(store, EXT))
    with pytest.raises(ConfigurationError, match="of one extension"):
        ExtensionDebugDashboard(source=StoreSource(store))


SUITE = """
import logging
import pytest

pytestmark = pytest.mark.kari_extension("shop")

def test_list(kari_logger, kari_metrics):
    kari_logger.warning("slow backend")
    kari_metrics.record_metric("queue_depth", 3, "count")

def test_pay(kari_logger, kari_metrics):
    kari_metrics.record_metric("queue_depth", 5, "count")
    try:
        raise ValueError("price -1 is negative")
    except ValueError:
        kari_logger.exception("payment failed")

def test_fails():
    raise KeyError("missing sku")
"""


def test_a_pytest_run_stored_and_as_its_json_answer_alike(pytester: pytest.Pytester) -> None:
    """The store of a real ``pytest --kari-debug`` run and its run JSON give equal answers."""
    pytester.makepyfile(test_shop=SUITE)
    result = pytester.runpytest_subprocess(
        "--kari-debug", "--kari-store=kari.db", "--kari-json=run.json"
    )
    result.assert_outcomes(passed=2, failed=1)
    document = json.loads((pytester.path / "run.json").read_text())
    store = Store(pytester.path / "kari.db", create=False)
    try:
        [run] = store.runs()
        stored = StoreSource(store, "shop", run["id"])
        records = RunSource(document["tests"], extension_id="shop", store=store)
        fields = [k for k in GROUP_FIELDS if k not in ("first_seen", "last_seen")]
        assert sorted(g["error_type"] for g in stored.error_groups()) == ["KeyError", "ValueError"]
        for source in (stored, records):
            assert [g["tests"] for g in source.error_groups()] == [1, 1]
        assert [{k: g[k] for k in fields} for g in records.error_groups()] == [
            {k: g[k] for k in fields} for g in stored.error_groups()
        ]
        assert sorted(records.metric_rows()) == sorted(stored.metric_rows())
        assert len(stored.metric_rows()) == 2
        assert records.counts() == stored.counts()
        warnings = LogQuery(level="WARNING")
        assert [r["message"] for r in records.logs(warnings, limit=50)] == [
            r["message"] for r in stored.logs(warnings, limit=50)
        ]
        assert [t["nodeid"] for t in records.tests()] == [t["nodeid"] for t in stored.tests()]
    finally:
        store.close()


def test_store_source_pages_past_what_a_filter_drops(tmp_path: Path) -> None:
    """A filter that keeps only old records reads page after page, and the limit holds."""
    store = Store(tmp_path / "kari.db")
    try:
        now = time.time()
        records = [
            {"ts": now + i, "level": "INFO", "message": f"line {i}", "nodeid": "t.py::test_x"}
            for i in range(1300)
        ]
        store.write_records("log", EXT, records)
        source = StoreSource(store, EXT)
        found = source.records("log", limit=3, keep=lambda r: int(r["message"][5:]) < 4)
        assert [r["message"] for r in found] == ["line 3", "line 2", "line 1"]
        assert len(source.records("log", limit=1000)) == 1000
        recent = source.records("log", since=now + 1290)
        assert [r["message"] for r in recent][-1] == "line 1290"
        assert len(recent) == 10
        assert source.records("log", nodeid="other.py") == []
    finally:
        store.close()


def test_a_misspelt_record_query_is_refused_by_every_source(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]],
) -> None:
    """The three sources share one RecordQuery: an unknown keyword is an error naming the
    accepted ones, never a filter silently not applied."""
    for source in _three(recorded):
        with pytest.raises(TypeError, match="unknown record query nodid; accepted: keep, limit"):
            source.records("log", nodid="test_pay")  # type: ignore[call-arg]


@pytest.mark.parametrize("live", [True, False], ids=["live", "store"])
def test_a_log_cursor_of_another_source_starts_afresh(
    recorded: tuple[ExtensionDebugManager, Store, int, list[Any]], live: bool
) -> None:
    """A cursor one source gave out resumes there; another source's, or a garbled one,
    starts at the newest record with the backlog, as no cursor does."""
    manager, store, run_id, _ = recorded
    source: ExtensionSource = LiveSource(manager) if live else StoreSource(store, EXT, run_id)
    fresh = source.logs_after(None, LogQuery(), backlog=2, limit=10)
    assert len(fresh.records) == 2
    assert source.logs_after(fresh.cursor, LogQuery(), backlog=2, limit=10).records == []
    for foreign in ("s:x", "l999:1", "", "s:" if live else "l0:1"):
        again = source.logs_after(foreign, LogQuery(), backlog=2, limit=10)
        assert (again.records, again.cursor) == (fresh.records, fresh.cursor)
