"""An old store (schema 7: two indexes on `tests`, by run and by node id) gets one index on
(run, node id) instead, which a test's commit writes one page fewer for; every lookup the two
served (a run's tests, a test in a run, the runs a test ran in) still finds the same rows, by
the new index."""

from __future__ import annotations

import contextlib
from typing import Any

from conftest import store_at_schema

from pytest_kari_debug.storage import SCHEMA_VERSION, Store, dumps

#: The schema of the release before the indexes of `tests` were one (issue 17).
OLD_VERSION = 7


def _old_store(location: str) -> None:
    """A store at schema 7: three runs; t.py::test_a ran in runs 1 and 3, test_b in all."""
    with store_at_schema(location, OLD_VERSION) as db:
        for run in (1, 2, 3):
            db.execute(
                "INSERT INTO runs(uuid, started_at) VALUES (?, ?)", (f"run-{run}", float(run))
            )
            names = ["a", "b"] if run != 2 else ["b"]
            for name in names:
                db.execute(
                    "INSERT INTO tests(run_id, nodeid, extension_id, outcome, duration_ms,"
                    " data) VALUES (?, ?, 'ext', ?, ?, ?)",
                    (run, f"t.py::test_{name}", "passed" if run < 3 else "failed",
                     float(run), dumps({"nodeid": f"t.py::test_{name}", "run": run})),
                )  # fmt: skip


def _indexes(store: Store) -> list[str]:
    if store.kind == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tests'"
    else:
        sql = (
            "SELECT indexname FROM pg_indexes WHERE tablename = 'tests'"
            " AND indexname <> 'tests_pkey'"
        )
    return sorted(str(row[0]) for row in store._query(sql))


def _plan(store: Store, sql: str, params: tuple[Any, ...]) -> str:
    """SQLite's query plan of *sql* (what it reads, by which index)."""
    rows = store._query(f"EXPLAIN QUERY PLAN {sql}", params)
    return " | ".join(str(row["detail"]) for row in rows)


def test_the_two_indexes_of_tests_become_one_and_every_lookup_finds_the_same(
    store_location: str,
) -> None:
    _old_store(store_location)
    with contextlib.closing(Store(store_location)) as store:
        assert store.schema_version == SCHEMA_VERSION
        # SQLite's is unique on (run, node id, end) since schema 9 (readers import journals).
        index = "tests_key" if store.kind == "sqlite" else "tests_run_nodeid"
        assert _indexes(store) == [index]
        assert [t["nodeid"] for t in store.tests(1)] == ["t.py::test_a", "t.py::test_b"]
        found = store.test(3, "t.py::test_a")
        assert found is not None
        assert found["run"] == 3
        assert store.test(2, "t.py::test_a") is None
        # "history t.py::test_a": the runs it ran in, newest first, skipping run 2
        runs, rows = store.test_outcomes(runs=5, nodeid="t.py::test_a")
        assert runs == [1, 3]
        assert rows == [(1, "t.py::test_a", "passed", 1.0), (3, "t.py::test_a", "failed", 3.0)]
        runs, _ = store.test_outcomes(runs=1, nodeid="t.py::test_a")
        assert runs == [3]
        runs, rows = store.test_outcomes(runs=5, nodeid="t.py::test_b", until_run=2)
        assert runs == [1, 2]
        assert [r[0] for r in rows] == [1, 2]
        record = {"nodeid": "t.py::test_c", "extension_id": "ext", "outcome": "passed"}
        store.write_tests(3, [record])
        assert [t["nodeid"] for t in store.tests(3)] == [
            "t.py::test_a", "t.py::test_b", "t.py::test_c"
        ]  # fmt: skip
        if store.kind != "sqlite":
            return
        for sql, params in (
            ("SELECT id FROM tests WHERE run_id = ? ORDER BY id", (1,)),
            ("SELECT id FROM tests WHERE run_id = ? AND nodeid = ?", (1, "t.py::test_a")),
            (
                "SELECT id FROM runs WHERE EXISTS (SELECT 1 FROM tests WHERE"
                " tests.run_id = runs.id AND tests.nodeid = ?) ORDER BY id DESC LIMIT 5",
                ("t.py::test_a",),
            ),
        ):
            assert f"USING COVERING INDEX {index}" in _plan(store, sql, params) or (
                f"USING INDEX {index}" in _plan(store, sql, params)
            ), _plan(store, sql, params)
