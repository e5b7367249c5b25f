"""The SQLite store: schema, refusal of foreign files, batched writes and queries."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import fresh_postgres_database

from pytest_kari_debug import selfcost
from pytest_kari_debug.backends import (
    CHECKPOINT_EVERY_COMMITS,
    WRITER_CHECKPOINT_PAGES,
    RefusedWrites,
)
from pytest_kari_debug.exceptions import StoreError
from pytest_kari_debug.storage import SCHEMA_VERSION, Store, dumps, loads_many


def _test_record(nodeid: str, message: str = "hi") -> dict:
    return {
        "nodeid": nodeid,
        "extension_id": "ext",
        "outcome": "passed",
        "phases": {"setup": 1.0, "call": 2.0, "teardown": 0.5},
        "duration_ms": 3.5,
        "session_id": "s-" + nodeid,
        "collected_data": {
            "logging": {"records": [{"ts": 1.0, "level": "INFO", "message": message, "name": "l"}]},
            "metrics": {"records": [{"ts": 2.0, "name": "hits", "value": 3.0}], "resources": {}},
        },
    }


def test_new_store_is_wal_with_schema_version(tmp_path: Path) -> None:
    """A new store is created in WAL mode and records its schema version."""
    store = Store(tmp_path / "sub" / "kari.db")
    assert store.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(tmp_path / "sub" / "kari.db").execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"
    store.close()


def test_tests_and_records_round_trip(store_location: str) -> None:
    """Tests written in one batch come back with their records queryable by kind."""
    store = Store(store_location)
    run_id = store.begin_run({"uuid": "u1", "started_at": 1.0, "args": ["-q"]})
    ids = store.write_tests(run_id, [_test_record("t::a", "first"), _test_record("t::b", "second")])
    assert len(ids) == 2
    tests = store.tests(run_id)
    assert [t["nodeid"] for t in tests] == ["t::a", "t::b"]
    logs = store.records("log", run_id=run_id)
    assert [r["message"] for r in logs] == ["second", "first"]
    assert store.records("metric", extension_id="ext", limit=1)[0]["value"] == 3.0
    store.finish_run(run_id, finished_at=2.0, exit_status=0, data={"k": 1})
    run = store.get_run("last")
    assert (run["uuid"], run["exit_status"], run["args"], run["data"]) == (
        "u1",
        0,
        ["-q"],
        {"k": 1},
    )
    assert store.extensions() == ["ext"]
    store.close()


def test_a_batch_is_one_transaction(store_location: str) -> None:
    """A test the database refuses inside a batch leaves none of the batch behind (every
    field is made storable first, so the database itself refuses it here: a constraint)."""
    store = Store(store_location)
    run_id = store.begin_run({"uuid": "u1", "started_at": 1.0})
    with store.transaction() as db:
        if store.kind == "sqlite":
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON tests WHEN NEW.nodeid = 't::bad'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            db.execute("ALTER TABLE tests ADD CONSTRAINT refuse CHECK (nodeid <> 't::bad')")
    with pytest.raises(Exception, match="refuse"):
        store.write_tests(run_id, [_test_record("t::a"), _test_record("t::bad")])
    assert store.tests(run_id) == []
    store.close()


REFUSALS = [
    pytest.param(
        "ALTER TABLE tests ADD CONSTRAINT refuse CHECK (nodeid <> 't::bad')",
        'violates check constraint "refuse" (SQLSTATE 23514)',
        id="constraint-23514",
    ),
    pytest.param(
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.nodeid = 't::bad' THEN"
        " RAISE EXCEPTION 'cannot hold %', NEW.nodeid USING ERRCODE = '22023'; END IF;"
        " RETURN NEW; END $$ LANGUAGE plpgsql;"
        " CREATE TRIGGER refuse BEFORE INSERT ON tests FOR EACH ROW EXECUTE FUNCTION refuse()",
        "cannot hold t::bad (SQLSTATE 22023)",
        id="data-exception-22023",
    ),
]


@pytest.mark.parametrize(("refusal", "reason"), REFUSALS)
def test_tests_sent_together_to_a_server_are_each_a_transaction(refusal: str, reason: str) -> None:
    """PostgreSQL: tests sent without waiting are each committed by themselves; the ones the
    server refuses (a constraint, class 23; a value it cannot hold, class 22) are named by
    their place with the server's short reason (not the row), and the others are stored."""
    with fresh_postgres_database() as url, contextlib.closing(Store(url)) as store:
        run_id = store.begin_run({"uuid": "u1", "started_at": 1.0})
        with store.transaction() as db:
            db.execute(refusal)
        tests = [_test_record(n) for n in ("t::a", "t::bad", "t::c", "t::bad")]
        store.submit_tests(run_id, tests)
        with pytest.raises(RefusedWrites) as raised:
            store.settle_writes()
        assert sorted(raised.value.refused) == [1, 3]
        assert raised.value.refused[1].endswith(reason)
        assert "t::a" not in raised.value.refused[1]  # the row is not in the reason
        assert [t["nodeid"] for t in store.tests(run_id)] == ["t::a", "t::c"]
        store.submit_tests(run_id, [_test_record("t::d")])  # the connection is usable
        store.settle_writes()
        assert [t["nodeid"] for t in store.tests(run_id)] == ["t::a", "t::c", "t::d"]


def _tests_in_file_alone(path: Path, copy: Path) -> int:
    """The tests a SQLite file holds without its WAL: what checkpoints copied into it (0
    before its first checkpoint, or in a copy taken while one was writing: ask again)."""
    for leftover in (copy, copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(path, copy)
    try:
        with contextlib.closing(sqlite3.connect(copy)) as db:
            return int(db.execute("SELECT count(*) FROM tests").fetchone()[0])
    except sqlite3.DatabaseError:  # no tests table yet, or a page copied mid-write
        return 0


def test_a_store_checkpoints_in_the_background_and_stops_at_its_close(tmp_path: Path) -> None:
    """A SQLite store told to checkpoint in the background copies its WAL into its file on a
    thread of its own, long before its writer's own checkpoint would (not below
    WRITER_CHECKPOINT_PAGES); every commit is readable all along; the thread ends when the
    store closes, which leaves the file whole."""
    path = tmp_path / "kari.db"
    store = Store(path)
    run_id = store.begin_run({"uuid": "u1", "started_at": 1.0})
    store.checkpoint_in_background(selfcost.own_thread, selfcost.idle)
    threads = [t for t in threading.enumerate() if t.name == "kari-debug-store-checkpoints"]
    assert len(threads) == 1
    deadline = time.monotonic() + 10
    while threads[0].ident not in selfcost._threads:  # its CPU is the package's, not a test's
        assert time.monotonic() < deadline
        time.sleep(0.01)
    commits = 3 * CHECKPOINT_EVERY_COMMITS
    for n in range(commits):
        store.write_tests(run_id, [{"nodeid": f"t::{n}", "outcome": "passed"}])
    assert len(store.tests(run_id)) == commits  # each commit readable at once (from the WAL)
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size < WRITER_CHECKPOINT_PAGES * 4096  # not the writer's checkpoint
    deadline = time.monotonic() + 30
    while _tests_in_file_alone(path, tmp_path / "copy.db") < 2 * CHECKPOINT_EVERY_COMMITS:
        assert time.monotonic() < deadline, "no checkpoint in the background"
        time.sleep(0.05)
    assert store._backend.checkpoints.problem is None  # type: ignore[union-attr]
    store.close()
    assert not threads[0].is_alive()
    assert threads[0].ident not in selfcost._threads
    assert not wal.exists() or wal.stat().st_size == 0
    assert _tests_in_file_alone(path, tmp_path / "copy.db") == commits


def test_a_group_commit_counts_its_tests_towards_the_next_background_checkpoint(
    tmp_path: Path,
) -> None:
    """A run commits its tests in groups (plugin/committer.py): a few commits of many tests
    each are checkpointed in the background as the same tests one commit each would be, not
    left in the WAL for the store's closing (pytest's thread) to copy."""
    path = tmp_path / "kari.db"
    store = Store(path)
    run_id = store.begin_run({"uuid": "u1", "started_at": 1.0})
    store.checkpoint_in_background(selfcost.own_thread, selfcost.idle)
    groups = 3
    for group in range(groups):
        tests = [
            {"nodeid": f"t::{group}-{n}", "outcome": "passed"}
            for n in range(CHECKPOINT_EVERY_COMMITS)
        ]
        store.submit_tests(run_id, tests)
    deadline = time.monotonic() + 30
    while _tests_in_file_alone(path, tmp_path / "copy.db") < CHECKPOINT_EVERY_COMMITS:
        assert time.monotonic() < deadline, "no checkpoint in the background"
        time.sleep(0.05)
    store.close()
    assert _tests_in_file_alone(path, tmp_path / "copy.db") == groups * CHECKPOINT_EVERY_COMMITS


def test_a_file_that_is_not_sqlite_is_refused_and_untouched(tmp_path: Path) -> None:
    """A non-SQLite file at the store path raises StoreError naming it and is not modified."""
    path = tmp_path / "notes.db"
    path.write_text("my precious notes\n")
    with pytest.raises(StoreError, match=r"notes\.db.*not a SQLite store"):
        Store(path)
    assert path.read_text() == "my precious notes\n"


def test_a_newer_schema_is_refused(store_location: str) -> None:
    """A store written by a newer version raises StoreError naming both versions."""
    store = Store(store_location)
    with store.transaction() as db:
        db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    store.close()
    with pytest.raises(StoreError, match=rf"schema version 999.*\({SCHEMA_VERSION}\)"):
        Store(store_location)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    """A directory at the store path is a StoreError."""
    with pytest.raises(StoreError, match="directory"):
        Store(tmp_path)


def test_opening_existing_store_keeps_data(store_location: str, tmp_path: Path) -> None:
    """Reopening a store keeps earlier runs; create=False refuses a missing file."""
    store = Store(store_location)
    store.begin_run({"uuid": "u1", "started_at": 1.0})
    store.close()
    with contextlib.closing(Store(store_location, create=False)) as again:
        assert again.get_run("u1")["uuid"] == "u1"
    with pytest.raises(StoreError, match="no store"):
        Store(tmp_path / "missing.db", create=False)


def test_dumps_and_loads_many_round_trip_what_json_can_hold() -> None:
    """Records written fast come back equal; a big integer orjson refuses round-trips exactly;
    what no JSON writer can hold (NaN) or an object comes back as the serializer's text."""
    plain = {"nodeid": "t::a", "phases": {"call": 0.25}, "n": 1, "ok": True, "none": None,
             "text": "quote \" newline \n unicode é", "nested": [{"a": [1, 2.5e-7]}]}  # fmt: skip
    huge = {"nodeid": "t::b", "big": 2**70, "nan": float("nan"), 3: "int key"}
    odd = {"nodeid": "t::c", "obj": Path("/x")}
    texts = [dumps(plain), dumps(huge), dumps(odd)]
    assert texts[1].startswith("\n")  # written by the standard library, read back by it
    back = loads_many(texts)
    assert back[0] == plain
    assert back[1]["big"] == 2**70
    assert isinstance(back[1]["big"], int)
    assert back[1]["3"] == "int key"
    assert back[1]["nan"] == "nan"
    assert back[2]["obj"] == "/x"
    assert loads_many([dumps(plain), dumps(plain)]) == [plain, plain]
    assert loads_many([]) == []
    assert json.loads(texts[0]) == plain  # plain JSON for every other reader (SQLite, jq)


class _RaisingStr:
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.mark.parametrize("value", [10**5000, _RaisingStr()], ids=["huge-int", "raising-str"])
def test_a_text_column_takes_a_value_without_text_as_its_default(value: object) -> None:
    """A value whose text cannot be made (past the int-to-str limit, a raising ``__str__``)
    becomes the column's default instead of failing the row."""
    from pytest_kari_debug.storage.codec import param

    assert param(value, "unknown") == "unknown"
    assert param(42, "unknown") == "42"
