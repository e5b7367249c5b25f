"""An old store (schema 6, whose SQLite `tests` table had AUTOINCREMENT) keeps every test, id
and record; a new test's id follows the largest, and its commit leaves sqlite_sequence alone."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from conftest import store_at_schema

from pytest_kari_debug.storage import SCHEMA_VERSION, Store, dumps

#: The schema of the release before the tests table lost AUTOINCREMENT (issue 17).
OLD_VERSION = 6


def _old_store(location: str) -> None:
    """A store at schema 6 with a run of three tests (ids 1, 2, 4: test 3 was deleted) and a
    record of test 4."""
    with store_at_schema(location, OLD_VERSION) as db:
        db.execute("INSERT INTO runs(uuid, started_at) VALUES ('old', 1.0)")
        for test_id, name in ((1, "a"), (2, "b"), (3, "x"), (4, "c")):
            db.execute(
                "INSERT INTO tests(run_id, nodeid, extension_id, outcome, finished_at,"
                " call_ms, data) VALUES (1, ?, 'ext', 'passed', ?, ?, ?)",
                (f"t.py::test_{name}", float(test_id), test_id / 10,
                 dumps({"nodeid": f"t.py::test_{name}", "note": "é\u2603"})),
            )  # fmt: skip
        db.execute("DELETE FROM tests WHERE id = 3")
        db.execute(
            "INSERT INTO records(run_id, test_id, kind, ts, extension_id, name, level, data)"
            " VALUES (1, 4, 'log', 3.0, 'ext', 'l', 'INFO', ?)",
            (dumps({"message": "kept", "ts": 3.0}),),
        )


def test_the_tests_table_keeps_every_test_and_id(store_location: str) -> None:
    _old_store(store_location)
    with contextlib.closing(Store(store_location)) as store:
        assert store.schema_version == SCHEMA_VERSION
        tests = store.tests(1)
        assert [(t["id"], t["nodeid"], t["note"]) for t in tests] == [
            (1, "t.py::test_a", "é\u2603"), (2, "t.py::test_b", "é\u2603"),
            (4, "t.py::test_c", "é\u2603"),
        ]  # fmt: skip
        rows = store._query("SELECT id, outcome, finished_at, call_ms FROM tests ORDER BY id")
        assert [tuple(row) for row in rows] == [
            (1, "passed", 1.0, 0.1), (2, "passed", 2.0, 0.2), (4, "passed", 4.0, 0.4)
        ]  # fmt: skip
        assert [r["message"] for r in store.records("log", test_id=4)] == ["kept"]
        assert store.test_keys(1) == {("t.py::test_a", 1.0), ("t.py::test_b", 2.0),
                                      ("t.py::test_c", 4.0)}  # fmt: skip
        record = {"nodeid": "t.py::test_d", "extension_id": "ext", "outcome": "failed"}
        assert store.write_tests(1, [record]) == [5]
        assert [t["id"] for t in store.tests(1)] == [1, 2, 4, 5]
    if "://" in store_location:
        return
    with contextlib.closing(sqlite3.connect(store_location)) as db:
        (schema,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'tests'").fetchone()
        assert "AUTOINCREMENT" not in schema
        indexes = db.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'tests'").fetchall()
        assert sorted(name for (name,) in indexes) == ["tests", "tests_key"]
        assert db.execute("SELECT name FROM sqlite_sequence WHERE name = 'tests'").fetchall() == []


def test_a_new_store_commits_a_test_without_touching_sqlite_sequence(tmp_path: Path) -> None:
    """sqlite_sequence is one page more in every commit: a new store's tests never use it."""
    path = str(tmp_path / "kari.db")
    with contextlib.closing(Store(path)) as store:
        run_id = store.begin_run({"uuid": "u", "started_at": 1.0})
        ids = [store.write_tests(run_id, [{"nodeid": f"t::{n}"}])[0] for n in range(3)]
        assert ids == [1, 2, 3]
    with contextlib.closing(sqlite3.connect(path)) as db:
        sequences = dict(db.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    assert "tests" not in sequences
    assert sequences["runs"] == 1  # the other tables keep AUTOINCREMENT
