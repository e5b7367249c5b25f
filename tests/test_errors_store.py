"""Error groups in the store: sync per run, listing, resolution, regressions and trends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_kari_debug.exceptions import StoreError
from pytest_kari_debug.storage import SCHEMA_VERSION, Store


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    """A fresh store (a SQLite file, then a PostgreSQL database)."""
    store = Store(store_location)
    yield store
    store.close()


def new_run(store: Store, started_at: float, extension_id: str = "ext") -> int:
    """A run with one test of *extension_id* (runs without tests stay out of trends)."""
    run_id = store.begin_run({"uuid": f"run-{started_at}", "started_at": started_at})
    store.write_tests(run_id, [{"nodeid": "t.py::test", "extension_id": extension_id}])
    return run_id


def group(fingerprint: str, count: int, ts: float, **extra: Any) -> dict[str, Any]:
    """A run-level error group as the plugin hands it to the store."""
    return {
        "extension_id": "ext",
        "fingerprint": fingerprint,
        "error_type": "KeyError",
        "message": "'item 1 missing'",
        "template": "'item <num> missing'",
        "category": "programming",
        "culprit": "ext in _fetch",
        "count": count,
        "tests": count,
        "first_ts": ts,
        "last_ts": ts,
        "sample": {"stack_trace": "Traceback ..."},
        **extra,
    }


def test_migration_adds_error_group_tables(store: Store) -> None:
    """The store's schema holds error_groups and error_group_runs at the latest version."""
    assert store.schema_version == SCHEMA_VERSION
    for table in ("error_groups", "error_group_runs"):
        assert store._query(f"SELECT count(*) FROM {table}")[0][0] == 0


def test_sync_inserts_new_groups_and_accumulates_known_ones(store: Store) -> None:
    """A group first seen in run 1 is new there, and counts add up over runs."""
    run1 = new_run(store, 1000.0)
    [first] = store.sync_error_groups(run1, [group("aaaa1111", 14, 1001.0)])
    assert first["new"] is True
    assert (first["count"], first["runs_seen"], first["first_seen_run"]) == (14, 1, run1)
    assert first["sample"] == {"stack_trace": "Traceback ..."}
    run2 = new_run(store, 2000.0)
    [second] = store.sync_error_groups(run2, [group("aaaa1111", 3, 2001.0)])
    assert second["new"] is False
    assert (second["count"], second["runs_seen"], second["last_seen_run"]) == (17, 2, run2)
    assert second["first_seen_run"] == run1


def test_syncing_a_run_twice_replaces_its_counts(store: Store) -> None:
    """Syncing the same run again does not double its errors."""
    run1 = new_run(store, 1000.0)
    store.sync_error_groups(run1, [group("aaaa1111", 5, 1001.0)])
    [again] = store.sync_error_groups(run1, [group("aaaa1111", 6, 1001.0)])
    assert (again["count"], again["runs_seen"]) == (6, 1)


def test_resolved_group_seen_again_is_a_regression(store: Store) -> None:
    """A resolved group occurring in a later run is reopened and flagged, persistently."""
    run1 = new_run(store, 1000.0)
    [stored] = store.sync_error_groups(run1, [group("aaaa1111", 2, 1001.0)])
    resolved = store.resolve_error_group(stored["id"], notes="fixed in #42", now=1500.0)
    assert (resolved["status"], resolved["notes"], resolved["resolved_at"]) == (
        "resolved",
        "fixed in #42",
        1500.0,
    )
    assert resolved["resolved_run"] == run1
    assert store.error_groups(status="unresolved") == []
    run2 = new_run(store, 2000.0)
    [again] = store.sync_error_groups(run2, [group("aaaa1111", 1, 2001.0)])
    assert again["regressed_now"] is True
    assert (again["status"], again["regressed"], again["regressed_run"]) == (
        "unresolved",
        True,
        run2,
    )
    assert again["regressions"] == 1
    assert again["notes"] == "fixed in #42"
    assert [g["fingerprint"] for g in store.error_groups(regressed=True)] == ["aaaa1111"]
    run3 = new_run(store, 3000.0)
    [later] = store.sync_error_groups(run3, [group("aaaa1111", 1, 3001.0)])
    assert later["regressed_now"] is False
    assert later["regressions"] == 1


def test_errors_before_the_resolution_are_no_regression(store: Store) -> None:
    """Only an occurrence after the resolution time reopens a group."""
    run1 = new_run(store, 1000.0)
    store.sync_error_groups(run1, [group("aaaa1111", 2, 1001.0)])
    store.resolve_error_group("aaaa1111", now=5000.0)
    run2 = new_run(store, 2000.0)
    [again] = store.sync_error_groups(run2, [group("aaaa1111", 1, 4000.0)])
    assert (again["regressed_now"], again["status"]) == (False, "resolved")


def test_unresolve_reopens_a_group_keeping_notes(store: Store) -> None:
    """unresolve_error_group puts a group back to unresolved, notes kept."""
    run1 = new_run(store, 1000.0)
    store.sync_error_groups(run1, [group("aaaa1111", 2, 1001.0)])
    store.resolve_error_group("aaaa", notes="flaky upstream")
    reopened = store.unresolve_error_group("aaaa1111")
    assert (reopened["status"], reopened["resolved_at"], reopened["notes"]) == (
        "unresolved",
        None,
        "flaky upstream",
    )


def test_group_lookup_by_id_fingerprint_or_prefix(store: Store) -> None:
    """Groups are found by id, fingerprint or unique prefix; ambiguity and absence are errors."""
    run1 = new_run(store, 1000.0)
    a, b = store.sync_error_groups(
        run1, [group("abcd1111", 1, 1001.0), group("abcd2222", 1, 1001.0)]
    )
    assert store.get_error_group(a["id"])["fingerprint"] == "abcd1111"  # type: ignore[index]
    assert store.get_error_group(str(b["id"]))["fingerprint"] == "abcd2222"  # type: ignore[index]
    assert store.get_error_group("abcd2")["id"] == b["id"]  # type: ignore[index]
    assert store.get_error_group("zzzz") is None
    assert store.get_error_group("abcd1111", extension_id="other") is None
    with pytest.raises(StoreError, match="'abcd' is ambiguous"):
        store.get_error_group("abcd")
    with pytest.raises(StoreError, match="no error group 'zzzz'"):
        store.resolve_error_group("zzzz")


def test_error_groups_filters_and_orders(store: Store) -> None:
    """error_groups filters by extension, status, category and run, ordered by count."""
    run1 = new_run(store, 1000.0)
    store.sync_error_groups(
        run1,
        [
            group("aaaa1111", 5, 1001.0),
            group("bbbb2222", 9, 1002.0, category="network"),
            group("cccc3333", 1, 1003.0, extension_id="other"),
        ],
    )
    run2 = new_run(store, 2000.0)
    store.sync_error_groups(run2, [group("aaaa1111", 1, 2001.0)])
    ranked = [g["fingerprint"] for g in store.error_groups(extension_id="ext")]
    assert ranked == ["bbbb2222", "aaaa1111"]
    assert [g["fingerprint"] for g in store.error_groups(category="network")] == ["bbbb2222"]
    in_run2 = store.error_groups(run_id=run2)
    assert [(g["fingerprint"], g["run_count"]) for g in in_run2] == [("aaaa1111", 1)]
    latest = store.error_groups(order="last_seen", limit=1)
    assert latest[0]["fingerprint"] == "aaaa1111"
    with pytest.raises(StoreError, match="order must be one of"):
        store.error_groups(order="size")
    with pytest.raises(StoreError, match="status must be"):
        store.error_groups(status="open")


def test_error_trend_counts_errors_per_run(store: Store) -> None:
    """error_trend lists errors and groups per run, oldest first, runs without errors as 0."""
    runs = [new_run(store, 1000.0 * n) for n in range(1, 5)]
    store.sync_error_groups(runs[0], [group("aaaa1111", 1, 1001.0)])
    store.sync_error_groups(runs[2], [group("aaaa1111", 4, 3001.0), group("bbbb2222", 2, 3002.0)])
    store.sync_error_groups(runs[3], [])
    trend = store.error_trend()
    assert [(t["run_id"], t["count"], t["groups"]) for t in trend] == [
        (runs[0], 1, 1),
        (runs[1], 0, 0),
        (runs[2], 6, 2),
        (runs[3], 0, 0),
    ]
    assert [t["count"] for t in store.error_trend(runs=2, until_run=runs[2])] == [0, 6]
    assert store.error_trend(extension_id="ext") == trend
    assert store.error_trend(extension_id="missing") == []
    history = store.error_group_history(store.get_error_group("aaaa1111")["id"])  # type: ignore[index]
    assert [(h["run_id"], h["count"]) for h in history] == [(runs[0], 1), (runs[2], 4)]
