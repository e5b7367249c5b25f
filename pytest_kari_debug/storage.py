"""The store: runs, tests and every component's records, in SQLite or PostgreSQL.

An embedded SQLite file (WAL mode, busy timeout) by default, or a PostgreSQL database that a
team's CI machines share (:mod:`backends` holds the two dialects). The plugin writes it; the
CLI, REST API, history and regression gates read it. The plugin commits each finished test in
a transaction of its own (several in one when they arrive together).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .backends import Backend, StoreLocation, open_backend, redact
from .exceptions import StoreError
from .figures import ROOT_TAG
from .resolutions import ERROR_GROUP, OPEN, REGRESSED, RESOLVED, check_kind, status_of
from .values import repair, to_jsonable, writable_text

DEFAULT_STORE = Path(".kari-debug") / "kari.db"
#: Groups test records' errors (:func:`~pytest_kari_debug.views.run_error_groups`).
ErrorGrouper = Callable[[list[dict[str, Any]]], Iterable[Mapping[str, Any]]]

#: Schema migrations; the schema version is the number of migrations applied.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid TEXT NOT NULL UNIQUE,
        started_at REAL NOT NULL,
        finished_at REAL,
        exit_status INTEGER,
        rootdir TEXT,
        args TEXT,
        git_commit TEXT,
        git_branch TEXT,
        host TEXT,
        python_version TEXT,
        pytest_version TEXT,
        plugin_version TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE tests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        nodeid TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        started_at REAL,
        finished_at REAL,
        duration_ms REAL,
        setup_ms REAL,
        call_ms REAL,
        teardown_ms REAL,
        session_id TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX tests_run ON tests(run_id);
    CREATE INDEX tests_nodeid ON tests(nodeid);
    CREATE TABLE records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER REFERENCES runs(id),
        test_id INTEGER REFERENCES tests(id),
        kind TEXT NOT NULL,
        ts REAL,
        extension_id TEXT NOT NULL,
        session_id TEXT,
        name TEXT,
        level TEXT,
        value REAL,
        data TEXT NOT NULL
    );
    CREATE INDEX records_kind ON records(kind, extension_id, ts);
    CREATE INDEX records_test ON records(test_id);
    """,
    # Error groups across runs (issue #5): one row per (extension, fingerprint), with its
    # resolution status, and one row per run it occurred in.
    """
    CREATE TABLE error_groups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        extension_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        error_type TEXT NOT NULL,
        message TEXT,
        template TEXT,
        category TEXT,
        culprit TEXT,
        first_seen_run INTEGER REFERENCES runs(id),
        first_seen_ts REAL,
        last_seen_run INTEGER REFERENCES runs(id),
        last_seen_ts REAL,
        count INTEGER NOT NULL DEFAULT 0,
        runs_seen INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'unresolved',
        resolved_at REAL,
        resolved_run INTEGER,
        notes TEXT,
        regressed INTEGER NOT NULL DEFAULT 0,
        regressed_at REAL,
        regressed_run INTEGER,
        regressions INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL DEFAULT '{}',
        UNIQUE (extension_id, fingerprint)
    );
    CREATE INDEX error_groups_status ON error_groups(extension_id, status);
    CREATE TABLE error_group_runs (
        group_id INTEGER NOT NULL REFERENCES error_groups(id),
        run_id INTEGER NOT NULL REFERENCES runs(id),
        count INTEGER NOT NULL,
        tests INTEGER NOT NULL DEFAULT 0,
        first_ts REAL,
        last_ts REAL,
        PRIMARY KEY (group_id, run_id)
    );
    CREATE INDEX error_group_runs_run ON error_group_runs(run_id);
    """,
    # Regression baselines (issue #10): the figures of every test under a name.
    """
    CREATE TABLE baselines (
        name TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        run_id INTEGER REFERENCES runs(id),
        data TEXT NOT NULL
    );
    """,
    # Resolutions of error groups and alerts, set by `kari-debug ... resolve` (issue 11).
    """
    CREATE TABLE resolutions (
        kind TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        key TEXT NOT NULL,
        resolved_at REAL NOT NULL,
        notes TEXT,
        PRIMARY KEY (kind, extension_id, key)
    );
    -- newest-first listings of one kind and extension walk this index (rowid order)
    CREATE INDEX records_kind_extension ON records(kind, extension_id);
    """,
    # Retention (issue 20): pruning finds a run's rows and the oldest runs by index.
    """
    CREATE INDEX records_run ON records(run_id);
    CREATE INDEX runs_started ON runs(started_at);
    """,
    # One table of resolutions (issue 22): error groups' states move into `resolutions`,
    # which gains a state (resolved, regressed, open) and the regression history. Where
    # `error_groups` kept a state of its own, it wins: it is what every surface showed.
    """
    CREATE TABLE resolutions_v2 (
        kind TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        resolved_at REAL,
        resolved_run INTEGER,
        notes TEXT,
        regressed_at REAL,
        regressed_run INTEGER,
        regressions INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (kind, extension_id, key)
    );
    INSERT INTO resolutions_v2(kind, extension_id, key, state, resolved_at, notes)
        SELECT kind, extension_id, key, 'resolved', resolved_at, notes FROM resolutions;
    INSERT INTO resolutions_v2(kind, extension_id, key, state, resolved_at, resolved_run, notes,
            regressed_at, regressed_run, regressions)
        SELECT 'error_group', extension_id, fingerprint,
            CASE WHEN regressed <> 0 THEN 'regressed'
                 WHEN status = 'resolved' THEN 'resolved' ELSE 'open' END,
            resolved_at, resolved_run, notes, regressed_at, regressed_run, regressions
        FROM error_groups
        WHERE status = 'resolved' OR regressed <> 0 OR regressions > 0
            OR resolved_at IS NOT NULL OR notes IS NOT NULL
        ON CONFLICT (kind, extension_id, key) DO UPDATE SET state = excluded.state,
            resolved_at = excluded.resolved_at, resolved_run = excluded.resolved_run,
            notes = COALESCE(excluded.notes, resolutions_v2.notes),
            regressed_at = excluded.regressed_at, regressed_run = excluded.regressed_run,
            regressions = excluded.regressions;
    DROP TABLE resolutions;
    ALTER TABLE resolutions_v2 RENAME TO resolutions;
    DROP INDEX error_groups_status;
    ALTER TABLE error_groups DROP COLUMN status;
    ALTER TABLE error_groups DROP COLUMN resolved_at;
    ALTER TABLE error_groups DROP COLUMN resolved_run;
    ALTER TABLE error_groups DROP COLUMN notes;
    ALTER TABLE error_groups DROP COLUMN regressed;
    ALTER TABLE error_groups DROP COLUMN regressed_at;
    ALTER TABLE error_groups DROP COLUMN regressed_run;
    ALTER TABLE error_groups DROP COLUMN regressions;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

_TEST_COLUMNS = (
    "run_id, nodeid, extension_id, outcome, started_at, finished_at, duration_ms,"
    " setup_ms, call_ms, teardown_ms, session_id, data"
)


_ENCODER = json.JSONEncoder(default=repr, separators=(",", ":"))


def dumps(value: Any) -> str:
    """The store's compact JSON of *value*; never raises.

    orjson writes it (a test's record on every test: the hot path). What orjson refuses goes
    through the one serializer (:func:`~pytest_kari_debug.values.to_jsonable`: a lone
    surrogate escaped, an over-long integer or an object whose repr fails replaced by a
    placeholder) first. What orjson still refuses (an integer past 64 bits) is written by the
    standard library after a newline, which JSON allows and which tells :func:`loads_many` to
    read it back with the standard library too.
    """
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError
        value = repair(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return "\n" + _ENCODER.encode(value)


def _default(value: Any) -> Any:
    return to_jsonable(value)


def dumps_record(record: dict[str, Any]) -> tuple[dict[str, Any], str, list[str]]:
    """A test's record and its store JSON; never raises.

    A record orjson writes as it is (the common case) is kept as it is. Otherwise the record
    is repaired (:func:`~pytest_kari_debug.values.repair`) and the paths of the parts it had
    to replace are returned, for a diagnostic naming them.
    """
    try:
        return record, orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS).decode(), []
    except TypeError:  # orjson.JSONEncodeError: a surrogate, a huge int, an object
        replaced: list[str] = []
        try:
            fixed = repair(record, replaced)
        except RecursionError:
            fixed = to_jsonable(record)
            replaced.append("nested too deeply: cut by the serializer")
        return fixed, dumps(fixed), replaced


def loads_many(texts: Sequence[str]) -> list[Any]:
    """Decode many :func:`dumps` texts at once (one JSON array: faster than one by one)."""
    if not texts:
        return []
    if any(text[:1] == "\n" for text in texts):
        return [json.loads(t) if t[:1] == "\n" else orjson.loads(t) for t in texts]
    return orjson.loads("[" + ",".join(texts) + "]")  # type: ignore[no-any-return]


class Store:
    """A store (SQLite file or PostgreSQL database). Safe to share between threads."""

    def __init__(self, location: StoreLocation, *, create: bool = True) -> None:
        self._backend: Backend = open_backend(location, create=create)
        #: Where the store is, as it may be printed (a URL's password redacted).
        self.label = redact(location)
        self.kind = self._backend.kind
        self._migrate()

    @property
    def path(self) -> Path:
        """The SQLite file of an embedded store."""
        if self._backend.kind != "sqlite":
            msg = f"store {self.label!r} is a database server, not a file"
            raise StoreError(msg)
        return self._backend.path  # type: ignore[union-attr]

    # Schema ----------------------------------------------------------------------------
    def _migrate(self) -> None:
        try:
            self._backend.migrate(MIGRATIONS)
        except BaseException:
            self._backend.close()
            raise

    def size_bytes(self) -> int:
        """The space the store takes: the SQLite file and its WAL, or the server's database."""
        return self._backend.size_bytes()

    @property
    def schema_version(self) -> int:
        return self._backend.schema_version()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One write transaction (committed at the end of the block, rolled back on error)."""
        with self._backend.transaction() as db:
            yield db

    def close(self) -> None:
        """Close the database connection."""
        self._backend.close()

    # Writing ---------------------------------------------------------------------------
    def begin_run(self, meta: dict[str, Any]) -> int:
        """Insert a run row from *meta* (or join the run of the same uuid); return its id."""
        return self.join_run(meta)[0]

    def join_run(self, meta: dict[str, Any]) -> tuple[int, bool]:
        """The id of the run with *meta*'s uuid, and whether it existed already (joined).

        Shards of one run (``--kari-run-id``) each call this: the first inserts the run, the
        others join it, moving its start to the earliest start.
        """
        with self.transaction() as db:
            return self._join_run(db, meta)

    def _join_run(self, db: Any, meta: Mapping[str, Any]) -> tuple[int, bool]:
        columns = (
            "uuid", "started_at", "rootdir", "args", "git_commit", "git_branch", "host",
            "python_version", "pytest_version", "plugin_version",
        )  # fmt: skip
        values = [meta.get(c) for c in columns]
        values[3] = dumps(meta.get("args", []))
        # The process writing the run: a run without an end whose process is gone crashed.
        data = dumps({"pid": meta["pid"]} if meta.get("pid") is not None else {})
        inserted = db.execute(
            f"INSERT INTO runs({', '.join(columns)}, data)"
            f" VALUES ({', '.join('?' * len(columns))}, ?) ON CONFLICT(uuid) DO NOTHING",
            [*values, data],
        ).rowcount
        if not inserted and meta.get("started_at") is not None:
            earliest = self._backend.least("started_at", "?")
            db.execute(
                f"UPDATE runs SET started_at = {earliest} WHERE uuid = ?",
                (meta["started_at"], meta["uuid"]),
            )
        row = db.execute("SELECT id FROM runs WHERE uuid = ?", (meta["uuid"],)).fetchone()
        return int(row[0]), not inserted

    def set_run_progress(self, run_id: int, progress: Mapping[str, Any]) -> None:
        """Note how far run *run_id* is (``data["progress"]``: collected, running) while it runs."""
        with self.transaction() as db:
            # Write first: shards of one run update its row in turn (see _finish_run).
            db.execute("UPDATE runs SET data = data WHERE id = ?", (run_id,))
            row = db.execute("SELECT data FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return
            data = json.loads(row[0] or "{}")
            data["progress"] = dict(progress)
            db.execute("UPDATE runs SET data = ? WHERE id = ?", (dumps(data), run_id))

    def run_progress(self, *, limit: int = 10) -> list[dict[str, Any]]:
        """The newest runs with their progress: collected, done, outcomes, running tests."""
        found = []
        for run in self.run_summaries(limit=limit):
            data = run.get("data")
            progress = data.get("progress") if isinstance(data, dict) else None
            if not isinstance(progress, dict):
                progress = {}
            finished = run.get("finished_at") is not None
            done = int(run["tests_count"])
            found.append(
                {
                    "id": run["id"],
                    "uuid": run.get("uuid"),
                    "started_at": run.get("started_at"),
                    "finished_at": run.get("finished_at"),
                    "status": "finished" if finished else "running",
                    "collected": max(int(progress.get("collected") or 0), done),
                    "done": done,
                    "outcomes": run["outcomes"],
                    "running": [] if finished else list(progress.get("running") or []),
                    "progress_at": progress.get("ts"),
                }
            )
        return found

    def finish_run(
        self, run_id: int, *, finished_at: float, exit_status: int, data: dict[str, Any]
    ) -> None:
        """Record the end of (one shard of) run *run_id*.

        A run that several processes joined ends at the latest end, with the worst exit
        status, the diagnostics of all, and ``data["shards"]`` counting the ends recorded.
        """
        with self.transaction() as db:
            self._finish_run(db, run_id, finished_at, exit_status, data)

    def _finish_run(
        self, db: Any, run_id: int, finished_at: float, exit_status: int, data: dict[str, Any]
    ) -> None:
        # Write first: the row stays locked (PostgreSQL) / the file (SQLite) until commit.
        db.execute("UPDATE runs SET finished_at = finished_at WHERE id = ?", (run_id,))
        row = db.execute(
            "SELECT finished_at, exit_status, data FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return
        old = json.loads(row[2] or "{}")
        merged = merge_run_data(old if isinstance(old, dict) else {}, data, row[0] is not None)
        db.execute(
            "UPDATE runs SET finished_at = ?, exit_status = ?, data = ? WHERE id = ?",
            (
                max(float(row[0] or 0.0), finished_at),
                worst_exit_status(row[1], exit_status),
                dumps(merged),
                run_id,
            ),
        )

    def mark_run(self, run_id: int, *, status: str) -> None:
        """Set the status word of run *run_id* (kept in its data: ``crashed``...)."""
        with self.transaction() as db:
            row = db.execute("SELECT data FROM runs WHERE id=?", (run_id,)).fetchone()
            data = json.loads(row[0] or "{}") if row else {}
            data["status"] = status
            db.execute("UPDATE runs SET data=? WHERE id=?", (dumps(data), run_id))

    def test_keys(self, run_id: int) -> set[tuple[str, float | None]]:
        """The ``(nodeid, finished_at)`` of every test stored for run *run_id*."""
        rows = self._query("SELECT nodeid, finished_at FROM tests WHERE run_id=?", (run_id,))
        return {(row["nodeid"], row["finished_at"]) for row in rows}

    def write_tests(
        self, run_id: int, tests: Sequence[dict[str, Any]], texts: Sequence[str] | None = None
    ) -> list[int]:
        """Write *tests* (plugin test records) and their components' records in one transaction.

        *texts*, when given, are the tests' records already serialized with :func:`dumps`.
        """
        with self.transaction() as db:
            return self._insert_tests(db, run_id, tests, texts)

    def _insert_tests(
        self,
        db: Any,
        run_id: int,
        tests: Sequence[dict[str, Any]],
        texts: Sequence[str] | None,
    ) -> list[int]:
        ids = []
        for index, test in enumerate(tests):
            phases = test.get("phases", {})
            test_id = self._backend.inserted_id(
                db,
                f"INSERT INTO tests({_TEST_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    _param(test["nodeid"]),
                    _param(test.get("extension_id", "")),
                    _param(test.get("outcome", "unknown")),
                    test.get("started_at"),
                    test.get("finished_at"),
                    test.get("duration_ms"),
                    phases.get("setup"),
                    phases.get("call"),
                    phases.get("teardown"),
                    _param(test.get("session_id")),
                    dumps(test) if texts is None else texts[index],
                ),
            )
            ids.append(test_id)
            rows = _record_rows(run_id, test_id, test)
            if rows:
                db.executemany(
                    "INSERT INTO records(run_id, test_id, kind, ts, extension_id, session_id,"
                    " name, level, value, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
        return ids

    def write_records(
        self,
        kind: str,
        extension_id: str,
        records: Iterable[dict[str, Any]],
        run_id: int | None = None,
    ) -> int:
        """Write records not tied to a test (a live manager's samples, say)."""
        rows = [_record_row(run_id, None, kind, extension_id, record) for record in records]
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO records(run_id, test_id, kind, ts, extension_id, session_id,"
                " name, level, value, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        return len(rows)

    def import_run(
        self,
        document: Mapping[str, Any],
        *,
        error_groups: ErrorGrouper | None = None,
    ) -> ImportResult:
        """Add a run JSON document (``--kari-json``) to the store, in one transaction.

        Joined by run uuid: the tests of a shard's document join the run that other shards
        (or the live store) started. A test already stored for that run (same node id and
        end time) is skipped, so importing a document twice changes nothing. *error_groups*
        groups test records: the run's error groups are then counted again from all its
        stored tests (:meth:`resync_run_errors`).
        """
        run = document["run"]
        tests = [test for test in document["tests"] if isinstance(test, dict)]
        with self.transaction() as db:
            run_id, joined = self._join_run(db, run)
            rows = db.execute(
                "SELECT nodeid, finished_at FROM tests WHERE run_id = ?", (run_id,)
            ).fetchall()
            stored = {(row[0], row[1]) for row in rows}
            new = [t for t in tests if (t.get("nodeid"), t.get("finished_at")) not in stored]
            self._insert_tests(db, run_id, new, None)
            if new and error_groups is not None:
                self._resync_run_errors(db, run_id, error_groups, time.time())
            if new and run.get("finished_at") is not None:
                data = {
                    "diagnostics": list(document.get("diagnostics") or []),
                    "sections": dict(document.get("sections") or {}),
                }
                status = int(run.get("exit_status") or 0)
                self._finish_run(db, run_id, float(run["finished_at"]), status, data)
        return ImportResult(run_id, str(run["uuid"]), len(new), len(tests) - len(new), joined)

    # Retention -------------------------------------------------------------------------
    def prune(
        self,
        *,
        keep_runs: int = 0,
        older_than_days: float = 0.0,
        now: float | None = None,
        protect: Sequence[int] = (),
        baselines: bool = False,
        resolutions: bool = False,
        dry_run: bool = False,
        budget_s: float | None = None,
        batch: int = 20,
    ) -> PruneResult:
        """Delete runs beyond the newest *keep_runs* or older than *older_than_days*.

        A run goes with its tests, records and per-run error counts (0 turns a limit off);
        records of no run (a live manager's) older than the age limit go too. Baselines and
        resolutions stay unless *baselines* / *resolutions* ask for those older than the
        age limit. *protect* lists runs never pruned (the current one). With *budget_s*, it
        stops after that many seconds (between batches of *batch* runs); the rest goes next
        time (``complete`` False).
        """
        stamp = time.time() if now is None else now
        cutoff = stamp - older_than_days * 86400.0 if older_than_days > 0 else None
        clauses: list[str] = []
        params: list[Any] = []
        if keep_runs > 0:
            clauses.append(
                "id NOT IN (SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT ?)"
            )
            params.append(int(keep_runs))
        if cutoff is not None:
            clauses.append("started_at < ?")
            params.append(cutoff)
        run_ids: list[int] = []
        if clauses:
            rows = self._query(
                f"SELECT id FROM runs WHERE {' OR '.join(clauses)} ORDER BY id", params
            )
            run_ids = [int(row[0]) for row in rows if int(row[0]) not in set(protect)]
        result = PruneResult(runs=run_ids, dry_run=dry_run)
        if dry_run:
            result.tests, result.records = self._run_rows(run_ids)
            if cutoff is not None:
                result.records += int(
                    self._query(
                        "SELECT count(*) FROM records WHERE run_id IS NULL AND ts < ?", (cutoff,)
                    )[0][0]
                )
                result.baselines = self._count_old("baselines", "created_at", cutoff, baselines)
                result.resolutions = self._count_old(
                    "resolutions", "resolved_at", cutoff, resolutions
                )
            return result
        deadline = None if budget_s is None else time.monotonic() + budget_s
        for start in range(0, len(run_ids), batch):
            if deadline is not None and time.monotonic() > deadline:
                result.complete = False
                result.runs = run_ids[:start]
                break
            chunk = run_ids[start : start + batch]
            marks = ", ".join("?" * len(chunk))
            with self.transaction() as db:
                result.records += db.execute(
                    f"DELETE FROM records WHERE run_id IN ({marks})", chunk
                ).rowcount
                result.tests += db.execute(
                    f"DELETE FROM tests WHERE run_id IN ({marks})", chunk
                ).rowcount
                db.execute(f"DELETE FROM error_group_runs WHERE run_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
        if cutoff is not None and result.complete:
            with self.transaction() as db:
                result.records += db.execute(
                    "DELETE FROM records WHERE run_id IS NULL AND ts < ?", (cutoff,)
                ).rowcount
                if baselines:
                    result.baselines = db.execute(
                        "DELETE FROM baselines WHERE created_at < ?", (cutoff,)
                    ).rowcount
                if resolutions:
                    result.resolutions = db.execute(
                        "DELETE FROM resolutions WHERE resolved_at < ?", (cutoff,)
                    ).rowcount
        return result

    def _run_rows(self, run_ids: Sequence[int]) -> tuple[int, int]:
        tests = records = 0
        for start in range(0, len(run_ids), 500):
            chunk = list(run_ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            tests += int(
                self._query(f"SELECT count(*) FROM tests WHERE run_id IN ({marks})", chunk)[0][0]
            )
            records += int(
                self._query(f"SELECT count(*) FROM records WHERE run_id IN ({marks})", chunk)[0][0]
            )
        return tests, records

    def _count_old(self, table: str, column: str, cutoff: float, wanted: bool) -> int:
        if not wanted:
            return 0
        return int(self._query(f"SELECT count(*) FROM {table} WHERE {column} < ?", (cutoff,))[0][0])

    def reclaim_space(self, pages: int | None = None) -> None:
        """Give the space of deleted rows back (SQLite: the file shrinks; *pages* at most)."""
        self._backend.reclaim_space(pages)

    # Reading ---------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._backend.query(sql, params)

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest runs first."""
        rows = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [_run_dict(row) for row in rows]

    def get_run(self, run: int | str) -> dict[str, Any] | None:
        """The run with id (or uuid) *run*; ``"last"`` for the newest."""
        if run == "last":
            rows = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT 1")
        else:
            text = str(run).strip()
            number = int(text) if text.isdigit() and len(text) < 18 else None
            # A run id named by the user (--kari-run-id) wins over a row id of the same text.
            rows = self._query(
                "SELECT * FROM runs WHERE uuid = ? OR id = ? ORDER BY uuid = ? DESC LIMIT 1",
                (text, number, text),
            )
        return _run_dict(rows[0]) if rows else None

    def tests(self, run_id: int, *, extension_id: str | None = None) -> list[dict[str, Any]]:
        """Every test record of run *run_id*, in the order they finished."""
        where, params = _where(run_id=run_id, extension_id=extension_id or None)
        rows = self._query(f"SELECT id, data FROM tests WHERE {where} ORDER BY id", params)
        return [{"id": row["id"], **json.loads(row["data"])} for row in rows]

    def test(
        self, run_id: int, nodeid: str, *, extension_id: str | None = None
    ) -> dict[str, Any] | None:
        """The record of test *nodeid* in run *run_id* (its last one), or ``None``."""
        where, params = _where(
            run_id=run_id, extension_id=extension_id or None, equal={"nodeid": nodeid}
        )
        rows = self._query(
            f"SELECT id, data FROM tests WHERE {where} ORDER BY id DESC LIMIT 1", params
        )
        return {"id": rows[0]["id"], **json.loads(rows[0]["data"])} if rows else None

    def records(
        self,
        kind: str,
        *,
        extension_id: str | None = None,
        run_id: int | None = None,
        test_id: int | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Records of one *kind* (log, metric, error, span, alert, profile) matching filters."""
        where, params = _where(
            "r.kind = ?",
            params=[kind],
            alias="r.",
            extension_id=extension_id,
            run_id=run_id,
            test_id=test_id,
            since=since,
            until=until,
            after_id=after_id,
        )
        return self._select_records(
            where, params, with_test=False, limit=limit, newest_first=newest_first
        )

    def _select_records(
        self,
        where: str,
        params: list[Any],
        *,
        with_test: bool,
        limit: int | None,
        newest_first: bool,
    ) -> list[dict[str, Any]]:
        """Decoded rows of ``records r`` matching *where* (with the owning test's node id and
        the extension id when *with_test*), by record id."""
        sql = "SELECT r.id, r.run_id, r.test_id, r.extension_id"
        if with_test:
            sql += ", t.nodeid, r.data FROM records r LEFT JOIN tests t ON t.id = r.test_id"
        else:
            sql += ", r.data FROM records r"
        sql += f" WHERE {where} ORDER BY r.id {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += " LIMIT ?"
            params = [*params, limit]
        result = []
        for row in self._query(sql, params):
            item = {"record_id": row["id"], "run_id": row["run_id"], "test_id": row["test_id"]}
            if with_test:
                item.update(extension_id=row["extension_id"], nodeid=row["nodeid"])
            item.update(json.loads(row["data"]))
            result.append(item)
        return result

    # Baselines -------------------------------------------------------------------------
    def save_baseline(self, name: str, document: dict[str, Any], run_id: int | None) -> None:
        """Store (or replace) the baseline *name*."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO baselines(name, created_at, run_id, data) VALUES (?,?,?,?)"
                " ON CONFLICT(name) DO UPDATE SET created_at = excluded.created_at,"
                " run_id = excluded.run_id, data = excluded.data",
                (name, document.get("created_at", 0.0), run_id, dumps(document)),
            )

    def load_baseline(self, name: str) -> dict[str, Any] | None:
        """The baseline document saved as *name*, or ``None``."""
        rows = self._query("SELECT data FROM baselines WHERE name=?", (name,))
        return json.loads(rows[0]["data"]) if rows else None

    def baselines(self) -> list[dict[str, Any]]:
        """Name, creation time and run of every saved baseline, newest first."""
        rows = self._query(
            "SELECT name, created_at, run_id FROM baselines ORDER BY created_at DESC"
        )
        return [dict(row) for row in rows]

    def previous_run(
        self, *, branch: str | None, exclude_uuid: str | None = None
    ) -> dict[str, Any] | None:
        """The newest finished run on *branch* (any branch when None), other than *exclude_uuid*."""
        where, params = _where(
            "finished_at IS NOT NULL",
            "uuid != ?",
            params=[exclude_uuid or ""],
            equal={"git_branch": branch or None},
        )
        rows = self._query(f"SELECT * FROM runs WHERE {where} ORDER BY id DESC LIMIT 1", params)
        return _run_dict(rows[0]) if rows else None

    def extensions(self) -> list[str]:
        """Every extension id that has tests or records in the store."""
        rows = self._query(
            "SELECT extension_id FROM tests UNION SELECT extension_id FROM records ORDER BY 1"
        )
        return [row[0] for row in rows]

    # Error groups (issue #5) -------------------------------------------------------------
    def sync_error_groups(
        self,
        run_id: int,
        groups: Iterable[Mapping[str, Any]],
        *,
        now: float | None = None,
        accumulate: bool = False,
    ) -> list[dict[str, Any]]:
        """Merge the error groups of run *run_id* into the store; return their stored state.

        Each group is a mapping with ``extension_id``, ``fingerprint``, ``error_type``,
        ``count`` (errors in this run) and optionally ``message``, ``template``, ``category``,
        ``culprit``, ``tests`` (tests affected), ``first_ts``, ``last_ts`` and ``sample`` (a
        JSON-able example record). A new fingerprint is inserted as first seen in this run.
        A resolved group that occurred after its resolution is reopened and flagged as a
        regression of this run. Syncing the same run again replaces that run's counts, or
        with *accumulate* (the shards of one run, each syncing its own errors) adds to them.

        Returns one dict per group (the columns of :meth:`error_groups`) plus ``run_count``,
        ``new`` (first seen in this run) and ``regressed_now`` (regressed in this run).
        """
        stamp = time.time() if now is None else now
        result = []
        with self.transaction() as db:
            for group in groups:
                result.append(self._sync_group(db, run_id, group, stamp, accumulate))
        return result

    def resync_run_errors(
        self, run_id: int, error_groups: ErrorGrouper, *, now: float | None = None
    ) -> list[dict[str, Any]]:
        """Count run *run_id*'s error groups again from every test the store holds for it.

        What every writer of a run calls once its tests are in: a shard writing live, a
        ``kari-debug import`` of another shard's document, the import of a killed run's
        journal. The counts then always agree with the run's stored tests, whichever mix of
        them added tests, in whichever order (never counted twice, never left out).
        *error_groups* groups test records (:func:`~pytest_kari_debug.views.run_error_groups`).
        Returns what :meth:`sync_error_groups` returns.
        """
        stamp = time.time() if now is None else now
        with self.transaction() as db:
            return self._resync_run_errors(db, run_id, error_groups, stamp)

    def _resync_run_errors(
        self, db: Any, run_id: int, error_groups: ErrorGrouper, now: float
    ) -> list[dict[str, Any]]:
        # Write first: writers of one run recount it in turn, each seeing the others' tests.
        db.execute("UPDATE runs SET data = data WHERE id = ?", (run_id,))
        errors = self._backend.json_value("data", "collected_data", "error_tracking")
        rows = db.execute(
            f"SELECT nodeid, extension_id, {errors} FROM tests WHERE run_id = ? ORDER BY id",
            (run_id,),
        ).fetchall()
        tests = [
            {"nodeid": row[0], "extension_id": row[1],
             "collected_data": {"error_tracking": json.loads(row[2])}}
            for row in rows
            if row[2] not in (None, "null")
        ]  # fmt: skip
        return [self._sync_group(db, run_id, group, now, False) for group in error_groups(tests)]

    def _sync_group(
        self, db: Any, run_id: int, group: Mapping[str, Any], now: float, accumulate: bool
    ) -> dict[str, Any]:
        extension_id = str(group.get("extension_id") or "")
        fingerprint = str(group["fingerprint"])
        count = int(group.get("count", 0) or 0)
        tests = int(group.get("tests", 0) or 0)
        first_ts = group.get("first_ts")
        last_ts = group.get("last_ts")
        # Insert-if-absent first: writers sharing a server may meet the same group at once.
        db.execute(
            "INSERT INTO error_groups(extension_id, fingerprint, error_type, message, template,"
            " category, culprit, first_seen_run, first_seen_ts, last_seen_run, last_seen_ts,"
            " count, runs_seen, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,0,?)"
            " ON CONFLICT(extension_id, fingerprint) DO NOTHING",
            (
                extension_id, fingerprint, str(group.get("error_type") or "Error"),
                group.get("message"), group.get("template"), group.get("category"),
                group.get("culprit"), run_id, first_ts, run_id, last_ts,
                dumps({"sample": group.get("sample")}),
            ),
        )  # fmt: skip
        row = db.execute(
            "SELECT id FROM error_groups WHERE extension_id=? AND fingerprint=?",
            (extension_id, fingerprint),
        ).fetchone()
        group_id = int(row[0])
        # Writers syncing this group at once take turns from here (a row lock on PostgreSQL).
        db.execute("UPDATE error_groups SET count = count WHERE id = ?", (group_id,))
        occurred = float(last_ts) if isinstance(last_ts, (int, float)) else now
        regressed_now = self._note_regression(db, extension_id, fingerprint, occurred, run_id, now)
        previous = db.execute(
            "SELECT count, tests, first_ts, last_ts FROM error_group_runs"
            " WHERE group_id=? AND run_id=?",
            (group_id, run_id),
        ).fetchone()
        added = count - (int(previous[0]) if previous else 0)
        if accumulate and previous is not None:
            added = count
            count, tests = count + int(previous[0]), tests + int(previous[1] or 0)
            first_ts = min((t for t in (first_ts, previous[2]) if t is not None), default=None)
            last_ts = max((t for t in (last_ts, previous[3]) if t is not None), default=None)
        db.execute(
            "INSERT INTO error_group_runs(group_id, run_id, count, tests, first_ts,"
            " last_ts) VALUES (?,?,?,?,?,?) ON CONFLICT(group_id, run_id) DO UPDATE SET"
            " count = excluded.count, tests = excluded.tests, first_ts = excluded.first_ts,"
            " last_ts = excluded.last_ts",
            (group_id, run_id, count, tests, first_ts, last_ts),
        )
        db.execute(
            "UPDATE error_groups SET count=count+?, runs_seen=runs_seen+?,"
            f" last_seen_run={self._backend.greatest('COALESCE(last_seen_run, 0)', '?')},"
            " last_seen_ts="
            f"{self._backend.greatest('COALESCE(last_seen_ts, 0)', 'COALESCE(?, 0)')},"
            " message=COALESCE(?, message), category=COALESCE(?, category),"
            " culprit=COALESCE(?, culprit), data=COALESCE(?, data)"
            " WHERE id=?",
            (
                added,
                0 if previous else 1,
                run_id,
                last_ts,
                group.get("message"),
                group.get("category"),
                group.get("culprit"),
                None if group.get("sample") is None else dumps({"sample": group["sample"]}),
                group_id,
            ),
        )
        stored = db.execute(f"{_GROUP_SELECT} WHERE g.id=?", (group_id,)).fetchone()
        data = _group_dict(dict(zip(_GROUP_SELECTED, stored, strict=True)))
        data.update(run_count=count, new=data["first_seen_run"] == run_id)
        data["regressed_now"] = regressed_now
        return data

    @staticmethod
    def _note_regression(
        db: Any, extension_id: str, key: str, occurred: float, run_id: int, now: float
    ) -> bool:
        """Mark the resolved group *key* regressed when it occurred after its resolution."""
        row = db.execute(
            "SELECT state, resolved_at FROM resolutions WHERE kind=? AND extension_id=? AND key=?",
            (ERROR_GROUP, extension_id, key),
        ).fetchone()
        if row is None or row[0] != RESOLVED or (row[1] is not None and occurred <= row[1]):
            return False
        db.execute(
            "UPDATE resolutions SET state=?, regressed_at=?, regressed_run=?,"
            " regressions=regressions+1 WHERE kind=? AND extension_id=? AND key=?",
            (REGRESSED, now, run_id, ERROR_GROUP, extension_id, key),
        )
        return True

    def error_groups(
        self,
        *,
        extension_id: str | None = None,
        status: str | None = None,
        regressed: bool | None = None,
        category: str | None = None,
        run_id: int | None = None,
        order: str = "count",
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Error groups matching the filters (``errors show --unresolved`` reads this).

        *status*: ``"resolved"`` or ``"unresolved"``; *run_id*: only groups that occurred in
        that run (with their ``run_count`` there); *order*: ``"count"`` (most errors first),
        ``"last_seen"`` (most recent first) or ``"first_seen"`` (newest groups first). Each
        dict: ``id``, ``extension_id``, ``fingerprint``, ``error_type``, ``message``,
        ``template``, ``category``, ``culprit``, ``first_seen_run``, ``first_seen_ts``,
        ``last_seen_run``, ``last_seen_ts``, ``count`` (all runs), ``runs_seen``, ``status``,
        ``resolved_at``, ``resolved_run``, ``notes``, ``regressed`` (bool), ``regressed_at``,
        ``regressed_run``, ``regressions``, ``sample`` (an example error record or None).
        """
        if status not in (None, "resolved", "unresolved"):
            msg = f"status must be 'resolved', 'unresolved' or None, got {status!r}"
            raise StoreError(msg)
        orders = {
            "count": "g.count DESC, g.last_seen_ts DESC",
            "last_seen": "g.last_seen_ts DESC",
            "first_seen": "g.first_seen_ts DESC",
        }
        if order not in orders:
            msg = f"order must be one of {sorted(orders)}, got {order!r}"
            raise StoreError(msg)
        sql = _GROUP_SELECT
        params: list[Any] = []
        if run_id is not None:
            sql = sql.replace(" FROM error_groups g", ", r.count AS run_count FROM error_groups g")
            sql += " JOIN error_group_runs r ON r.group_id = g.id AND r.run_id = ?"
            params.append(run_id)
        where, params = _where(
            params=params, alias="g.", extension_id=extension_id, equal={"category": category}
        )
        sql += f" WHERE {where} ORDER BY {orders[order]}, g.id"
        # The status is the resolution's rule (resolutions.status_of), applied once, here.
        filtered = status is not None or regressed is not None
        if limit is not None and not filtered:
            sql += " LIMIT ?"
            params.append(int(limit))
        groups = [_group_dict(dict(row)) for row in self._query(sql, params)]
        if filtered:
            groups = [
                g
                for g in groups
                if (status is None or g["status"] == status)
                and (regressed is None or g["regressed"] == regressed)
            ]
        return groups if limit is None else groups[: int(limit)]

    def get_error_group(
        self, group: int | str, *, extension_id: str | None = None
    ) -> dict[str, Any] | None:
        """The group with id *group*, fingerprint *group* or a unique fingerprint prefix.

        A prefix needs at least 4 characters; an ambiguous prefix raises :class:`StoreError`
        naming the candidates. ``None`` when nothing matches.
        """
        text = str(group).strip()
        where, params = "", []
        if extension_id is not None:
            where, params = " AND g.extension_id = ?", [extension_id]
        if text.isdigit():
            rows = self._query(f"{_GROUP_SELECT} WHERE g.id = ?{where}", [int(text), *params])
            if rows:
                return _group_dict(dict(rows[0]))
        rows = self._query(f"{_GROUP_SELECT} WHERE g.fingerprint = ?{where}", [text, *params])
        if not rows and len(text) >= 4:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._query(
                f"{_GROUP_SELECT} WHERE g.fingerprint LIKE ? ESCAPE '\\'{where}",
                [escaped + "%", *params],
            )
        if len(rows) > 1:
            found = ", ".join(
                f"{row['id']} ({row['extension_id']}:{row['fingerprint']})" for row in rows[:5]
            )
            msg = f"error group {text!r} is ambiguous: {found}; give the id or more characters"
            raise StoreError(msg)
        return _group_dict(dict(rows[0])) if rows else None

    def _require_group(self, group: int | str, extension_id: str | None) -> dict[str, Any]:
        found = self.get_error_group(group, extension_id=extension_id)
        if found is None:
            where = f" of extension {extension_id!r}" if extension_id else ""
            msg = f"no error group {str(group)!r}{where}: give a group id or fingerprint"
            raise StoreError(msg)
        return found

    def resolve_error_group(
        self,
        group: int | str,
        *,
        notes: str | None = None,
        extension_id: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Mark a group (id, fingerprint or unique prefix) resolved, with *notes*; return it.

        If it occurs again in a later run, :meth:`sync_error_groups` flags it regressed.
        """
        found = self._require_group(group, extension_id)
        self.resolve(
            ERROR_GROUP, found["extension_id"], found["fingerprint"], notes=notes,
            at=time.time() if now is None else now,
        )  # fmt: skip
        return self._require_group(found["id"], None)

    def unresolve_error_group(
        self, group: int | str, *, extension_id: str | None = None
    ) -> dict[str, Any]:
        """Reopen a resolved group (its notes stay). Returns the group."""
        found = self._require_group(group, extension_id)
        self.reopen(ERROR_GROUP, found["extension_id"], found["fingerprint"])
        return self._require_group(found["id"], None)

    def error_group_history(self, group_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
        """Occurrences of one group per run, oldest first: run_id, started_at, count, tests."""
        rows = self._query(
            "SELECT r.run_id, runs.uuid, runs.started_at, r.count, r.tests, r.first_ts, r.last_ts"
            " FROM error_group_runs r JOIN runs ON runs.id = r.run_id WHERE r.group_id = ?"
            " ORDER BY r.run_id DESC LIMIT ?",
            (group_id, limit),
        )
        return [dict(row) for row in reversed(rows)]

    def error_trend(
        self, *, extension_id: str | None = None, runs: int = 20, until_run: int | None = None
    ) -> list[dict[str, Any]]:
        """Errors per run over the last *runs* runs (up to *until_run*), oldest first.

        Only runs that recorded tests (of *extension_id*, when given) count; each dict:
        ``run_id``, ``uuid``, ``started_at``, ``count`` (errors) and ``groups`` (distinct).
        """
        test_filter = "SELECT DISTINCT run_id FROM tests"
        params: list[Any] = []
        if extension_id is not None:
            test_filter += " WHERE extension_id = ?"
            params.append(extension_id)
        sql = (
            "SELECT runs.id AS run_id, runs.uuid, runs.started_at,"
            " COALESCE(SUM(r.count), 0) AS count, COUNT(r.group_id) AS groups"
            " FROM runs LEFT JOIN error_group_runs r ON r.run_id = runs.id"
        )
        if extension_id is not None:
            sql += " AND r.group_id IN (SELECT id FROM error_groups WHERE extension_id = ?)"
            params.insert(0, extension_id)
        sql += f" WHERE runs.id IN ({test_filter})"
        if until_run is not None:
            sql += " AND runs.id <= ?"
            params.append(until_run)
        sql += " GROUP BY runs.id ORDER BY runs.id DESC LIMIT ?"
        params.append(int(runs))
        return [dict(row) for row in reversed(self._query(sql, params))]

    # Reading for the CLI (issue 11) ------------------------------------------------------
    def select_records(
        self,
        kind: str,
        *,
        extension_id: str | None = None,
        run_id: int | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int | None = None,
        before_id: int | None = None,
        levels: Sequence[str] | None = None,
        nodeid: str | None = None,
        equals: dict[str, str] | None = None,
        without_test: bool = False,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Records of one *kind* with their test's node id, filtered in SQL.

        *levels* matches the level column case-insensitively, *nodeid* is a substring of the
        test's node id, *equals* maps top-level record fields to the text they must equal,
        *without_test* keeps only records no test owns (a live manager's).
        """
        clauses, params = ["r.kind = ?"], list[Any]([kind])
        if levels is not None:
            clauses.append(f"upper(r.level) IN ({', '.join('?' * len(levels))})")
            params.extend(level.upper() for level in levels)
        if nodeid:
            clauses.append(self._backend.contains("t.nodeid"))
            params.append(nodeid)
        if without_test:
            clauses.append("r.test_id IS NULL")
        for field_name, text in (equals or {}).items():
            clauses.append(f"{self._backend.json_text('r.data')} = ?")
            params.extend((self._backend.json_path(field_name), text))
        where, params = _where(
            *clauses,
            params=params,
            alias="r.",
            extension_id=extension_id,
            run_id=run_id,
            since=since,
            until=until,
            after_id=after_id,
            before_id=before_id,
        )
        return self._select_records(
            where, params, with_test=True, limit=limit, newest_first=newest_first
        )

    def has_extension(self, extension_id: str) -> bool:
        """Whether the store holds any test or record of *extension_id* (index lookups only)."""
        kinds = tuple(RECORD_KINDS.values())
        rows = self._query(
            "SELECT EXISTS(SELECT 1 FROM tests WHERE extension_id = ?) OR EXISTS(SELECT 1 FROM"
            f" records WHERE kind IN ({', '.join('?' * len(kinds))}) AND extension_id = ?)",
            (extension_id, *kinds, extension_id),
        )
        return bool(rows[0][0])

    def metric_points(
        self,
        *,
        extension_id: str | None = None,
        run_id: int | None = None,
        since: float | None = None,
    ) -> list[tuple[str, str, float, float]]:
        """``(name, unit, ts, value)`` of every numeric metric point matching the filters."""
        where, params = _where(
            "kind = 'metric'",
            "value IS NOT NULL",
            extension_id=extension_id,
            run_id=run_id,
            since=since,
        )
        rows = self._query(
            f"SELECT name, coalesce({self._backend.json_text('data')}, ''), coalesce(ts, 0), value"
            f" FROM records WHERE {where}",
            [self._backend.json_path("unit"), *params],
        )
        return [(str(row[0]), str(row[1]), float(row[2]), float(row[3])) for row in rows]

    def resource_samples(
        self,
        fields: Sequence[str],
        *,
        extension_id: str | None = None,
        run_id: int | None = None,
        since: float | None = None,
    ) -> list[tuple[str, float, float]]:
        """``(field, ts, value)`` of the sampler's readings of *fields* kept in the tests."""
        where, params = _where(
            time_column="finished_at", since=since, extension_id=extension_id, run_id=run_id
        )
        path = self._backend.json_value("data", "collected_data", "metrics", "samples")
        rows = self._query(f"SELECT {path} FROM tests WHERE {where} ORDER BY id", params)
        found: list[tuple[str, float, float]] = []
        for (text,) in rows:
            samples = json.loads(text) if isinstance(text, str) and text else []
            for sample in samples if isinstance(samples, list) else ():
                ts = sample.get("ts") if isinstance(sample, dict) else None
                if not isinstance(ts, (int, float)) or (since is not None and ts < since):
                    continue
                for name in fields:
                    value = sample.get(name)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        found.append((name, float(ts), float(value)))
        return found

    def slim_tests(
        self, since: float | None, *, extension_id: str | None = None, run_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Test records cut down to what per-test figures need (cheap on big records).

        Each keeps nodeid, outcome, finished_at, duration_ms, phases, the metrics'
        ``resources`` and ``memory``, and stand-ins for the error, span and log records (one
        empty dict per error or span, one ``{"level": ...}`` per log record).
        """
        where, params = _where(
            time_column="finished_at", since=since, extension_id=extension_id, run_id=run_id
        )
        db, cd = self._backend, "collected_data"
        rows = self._query(
            f"SELECT nodeid, outcome, finished_at, duration_ms, {db.json_value('data', 'phases')},"
            f" {db.json_value('data', cd, 'metrics', 'resources')},"
            f" {db.json_value('data', cd, 'metrics', 'memory')},"
            f" {db.json_array_length('data', cd, 'error_tracking', 'records')},"
            f" {db.json_array_length('data', cd, 'tracing', 'records')},"
            f" {db.json_joined_field('tests.data', 'level', cd, 'logging', 'records')},"
            f" {db.json_value('data', 'record_version')}, {db.json_value('data', 'cpu_ms')},"
            f" {db.json_value('data', 'kari_overhead_ms')},"
            f" {db.json_value('data', cd, 'error_tracking', 'dropped')},"
            f" {db.json_value('data', cd, 'tracing', 'dropped')},"
            f" {db.json_value('data', cd, 'logging', 'dropped')},"
            f" {db.json_count_tagged('tests.data', ROOT_TAG, cd, 'tracing', 'records')}"
            f" FROM tests WHERE {where} ORDER BY id",
            params,
        )
        result = []
        for row in rows:
            collected: dict[str, Any] = {
                "metrics": {
                    "resources": json.loads(row[5]) if row[5] else {},
                    "memory": json.loads(row[6]) if row[6] else {},
                }
            }
            for kind, count, dropped in (
                ("error_tracking", row[7], row[13]),
                ("tracing", row[8], row[14]),
            ):
                if count is not None:
                    records: list[dict[str, Any]] = [{}] * int(count)
                    if kind == "tracing" and row[16]:  # the session's root spans stay marked
                        roots = int(row[16])
                        records = [{"tags": {ROOT_TAG: True}}] * roots + records[roots:]
                    collected[kind] = {"records": records}
                    collected[kind]["dropped"] = _scalar(dropped) or 0
            if row[9] is not None:
                levels = row[9].split(",") if row[9] else []
                collected["logging"] = {
                    "records": [{"level": level} for level in levels],
                    "dropped": _scalar(row[15]) or 0,
                }
            result.append(
                {
                    "nodeid": row[0],
                    "outcome": row[1],
                    "finished_at": row[2],
                    "duration_ms": row[3],
                    "phases": json.loads(row[4]) if row[4] else {},
                    "record_version": _scalar(row[10]),
                    "cpu_ms": _scalar(row[11]),
                    "kari_overhead_ms": _scalar(row[12]),
                    "collected_data": collected,
                }
            )
        return result

    def record_counts(
        self, *, extension_id: str | None = None, run_id: int | None = None
    ) -> dict[str, int]:
        """How many records of each kind the store holds (for an extension, a run)."""
        where, params = _where(extension_id=extension_id, run_id=run_id)
        rows = self._query(
            f"SELECT kind, count(*) FROM records WHERE {where} GROUP BY kind", params
        )
        return {row[0]: int(row[1]) for row in rows}

    def last_record_id(self) -> int:
        """The id of the newest record (0 when there is none)."""
        rows = self._query("SELECT max(id) FROM records")
        return int(rows[0][0] or 0)

    def group_records(
        self,
        kind: str,
        key_field: str,
        *,
        extension_id: str | None = None,
        run_id: int | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Records of *kind* grouped by the value of their field *key_field*, biggest first.

        Each group: key, extension_id, count, tests (distinct), first_ts, last_ts and
        ``last`` (the newest record of the group).
        """
        where, params = _where(
            "r.kind = ?",
            params=[kind],
            alias="r.",
            extension_id=extension_id,
            run_id=run_id,
            since=since,
        )
        key = self._backend.json_text("r.data")
        sql = (
            f"SELECT {key} AS key, r.extension_id, count(*) AS n,"
            " count(DISTINCT r.test_id) AS tests, min(r.ts) AS first_ts, max(r.ts) AS last_ts,"
            " max(r.id) AS last_id"
            f" FROM records r WHERE {where}"
            " GROUP BY key, r.extension_id ORDER BY n DESC, last_ts DESC"
        )
        groups = self._query(sql, [self._backend.json_path(key_field), *params])
        ids = [row["last_id"] for row in groups]
        latest: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._query(
                "SELECT r.id, r.run_id, t.nodeid, r.data FROM records r LEFT JOIN tests t"
                f" ON t.id = r.test_id WHERE r.id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                record = json.loads(row["data"])
                latest[row["id"]] = {
                    "record_id": row["id"],
                    "run_id": row["run_id"],
                    "nodeid": row["nodeid"],
                    **record,
                }
        return [
            {"key": row["key"], "extension_id": row["extension_id"], "count": int(row["n"]),
             "tests": int(row["tests"]), "first_ts": row["first_ts"], "last_ts": row["last_ts"],
             "last": latest.get(row["last_id"], {})}
            for row in groups
        ]  # fmt: skip

    def run_summaries(
        self, *, extension_id: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The newest runs (with tests of *extension_id*) with test counts per outcome."""
        if extension_id is None:
            runs = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        else:
            runs = self._query(
                "SELECT * FROM runs WHERE id IN (SELECT run_id FROM tests WHERE extension_id = ?)"
                " ORDER BY id DESC LIMIT ?",
                (extension_id, limit),
            )
        result = []
        for row in runs:
            run = _run_dict(row)
            where, params = _where(run_id=run["id"], extension_id=extension_id)
            counts = self._query(
                f"SELECT outcome, count(*), sum(duration_ms) FROM tests WHERE {where}"
                " GROUP BY outcome",
                params,
            )
            run["outcomes"] = {c[0]: int(c[1]) for c in counts}
            run["tests_count"] = sum(run["outcomes"].values())
            run["tests_duration_ms"] = sum(float(c[2] or 0.0) for c in counts)
            exts = self._query(
                "SELECT DISTINCT extension_id FROM tests WHERE run_id = ? ORDER BY 1", (run["id"],)
            )
            run["extensions"] = [e[0] for e in exts]
            result.append(run)
        return result

    def tests_since(
        self, since: float | None, *, extension_id: str | None = None, run_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Test records that finished at or after *since* (every one when ``None``)."""
        where, params = _where(
            time_column="finished_at", since=since, extension_id=extension_id, run_id=run_id
        )
        rows = self._query(f"SELECT id, run_id, data FROM tests WHERE {where} ORDER BY id", params)
        return [
            {"id": row["id"], "run_id": row["run_id"], **json.loads(row["data"])} for row in rows
        ]

    def test_outcomes(
        self,
        *,
        runs: int,
        until_run: int | None = None,
        nodeid: str | None = None,
        extension_id: str | None = None,
    ) -> tuple[list[int], list[tuple[int, str, str, float | None]]]:
        """The newest *runs* run ids up to *until_run* (oldest first) and the
        ``(run_id, nodeid, outcome, duration_ms)`` of their tests, read in one pass."""
        where, params = _where(equal={"nodeid": nodeid}, extension_id=extension_id)
        run_where = "id <= ?" if until_run is not None else "1 = 1"
        run_params: list[Any] = [until_run] if until_run is not None else []
        if nodeid is not None:
            # the runs this test ran in, so "history NODEID" reaches past runs without it
            run_where += " AND id IN (SELECT run_id FROM tests WHERE nodeid = ?)"
            run_params.append(nodeid)
        ids = [
            int(row[0])
            for row in self._query(
                f"SELECT id FROM runs WHERE {run_where} ORDER BY id DESC LIMIT ?",
                [*run_params, runs],
            )
        ]
        if not ids:
            return [], []
        rows = self._query(
            "SELECT run_id, nodeid, outcome, duration_ms FROM tests"
            f" WHERE {where} AND run_id IN ({', '.join('?' * len(ids))}) ORDER BY run_id, id",
            [*params, *ids],
        )
        found = [(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]
        return sorted(ids), found

    def integrity(self) -> str:
        """``"ok"`` when the database is sound (SQLite's quick check), else what was found."""
        return self._backend.integrity()

    def resolve(
        self,
        kind: str,
        extension_id: str,
        key: str,
        *,
        notes: str | None = None,
        at: float,
        run_id: int | None = None,
    ) -> None:
        """Mark the error group or alert *key* of *extension_id* resolved at *at*.

        *notes* replace earlier ones when given; *run_id* (default: the newest run) is the
        run it was resolved after.
        """
        check_kind(kind)
        with self.transaction() as db:
            if run_id is None:
                run_id = db.execute("SELECT MAX(id) FROM runs").fetchone()[0]
            db.execute(
                "INSERT INTO resolutions(kind, extension_id, key, state, resolved_at,"
                " resolved_run, notes) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT(kind, extension_id, key) DO UPDATE SET state = excluded.state,"
                " resolved_at = excluded.resolved_at, resolved_run = excluded.resolved_run,"
                " notes = COALESCE(excluded.notes, resolutions.notes)",
                (kind, extension_id, key, RESOLVED, at, run_id, notes),
            )

    def reopen(self, kind: str, extension_id: str, key: str) -> bool:
        """Reopen the error group or alert *key*: open again, notes and history kept.

        Returns whether it was resolved (or regressed) before.
        """
        check_kind(kind)
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE resolutions SET state=?, resolved_at=NULL, resolved_run=NULL"
                " WHERE kind=? AND extension_id=? AND key=? AND state <> ?",
                (OPEN, kind, extension_id, key, OPEN),
            ).rowcount
        return bool(changed)

    def resolutions(
        self, kind: str, *, extension_id: str | None = None
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Resolutions of *kind* (``error_group`` or ``alert``) by (extension_id, key).

        Each: ``state`` (resolved, regressed or open: see :mod:`resolutions`),
        ``resolved_at``, ``resolved_run``, ``notes``, ``regressed_at``, ``regressed_run``
        and ``regressions``.
        """
        check_kind(kind)
        where, params = _where("kind = ?", params=[kind], extension_id=extension_id)
        columns = ", ".join(_RESOLUTION_COLUMNS)
        sql = f"SELECT extension_id, key, {columns} FROM resolutions WHERE {where}"
        return {
            (row["extension_id"], row["key"]): {name: row[name] for name in _RESOLUTION_COLUMNS}
            for row in self._query(sql, params)
        }


@dataclass
class ImportResult:
    """What :meth:`Store.import_run` did with one document."""

    run_id: int
    uuid: str
    added: int
    skipped: int
    joined: bool


@dataclass
class PruneResult:
    """What :meth:`Store.prune` removed (or, in a dry run, would remove)."""

    runs: list[int] = field(default_factory=list)
    tests: int = 0
    records: int = 0
    baselines: int = 0
    resolutions: int = 0
    dry_run: bool = False
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": len(self.runs), "run_ids": self.runs, "tests": self.tests,
            "records": self.records, "baselines": self.baselines,
            "resolutions": self.resolutions, "dry_run": self.dry_run, "complete": self.complete,
        }  # fmt: skip


def merge_run_data(
    old: Mapping[str, Any], new: Mapping[str, Any], ended_before: bool
) -> dict[str, Any]:
    """The data of a run after one more shard ended: *new* over *old*, diagnostics of both,
    and ``shards`` counting the ends once a second one comes (*ended_before*)."""
    if not ended_before:
        return {**old, **new}
    merged = {**old, **new}
    diagnostics = [*(old.get("diagnostics") or ()), *(new.get("diagnostics") or ())]
    merged["diagnostics"] = list(dict.fromkeys(str(d) for d in diagnostics))
    sections = old.get("sections")
    if isinstance(sections, dict) and isinstance(new.get("sections"), dict):
        merged["sections"] = {**sections, **new["sections"]}
    merged["shards"] = int(old.get("shards") or 1) + 1
    if "interrupted" in (old.get("status"), new.get("status")):
        merged["status"] = "interrupted"  # one shard stopped short: so did the run
    return merged


def worst_exit_status(old: int | None, new: int) -> int:
    """The exit status of a run from two of its shards': a failure beats "no tests" (5),
    which beats success."""
    if old is None:
        return new
    rank = {0: 0, 5: 1}
    return max(int(old), int(new), key=lambda status: (rank.get(status, 2), status))


def _scalar(value: Any) -> Any:
    """A JSON scalar read from a row (PostgreSQL gives its text, SQLite the value)."""
    return json.loads(value) if isinstance(value, str) else value


#: collected_data key of each component -> record kind in the store.
RECORD_KINDS = {
    "logging": "log",
    "metrics": "metric",
    "error_tracking": "error",
    "tracing": "span",
    "alerting": "alert",
    "profiling": "profile",
}


def _record_row(
    run_id: int | None, test_id: int | None, kind: str, extension_id: str, record: dict[str, Any]
) -> tuple[Any, ...]:
    value = record.get("value")
    return (
        run_id,
        test_id,
        kind,
        record.get("ts"),
        _param(extension_id),
        _param(record.get("session_id")),
        _param(record.get("name")),
        _param(record.get("level")),
        value if isinstance(value, (int, float)) and not isinstance(value, bool) else None,
        dumps(record),
    )


def _param(value: Any) -> Any:
    """A query parameter the database takes: text UTF-8 cannot hold is escaped."""
    return writable_text(value) if type(value) is str else value


def _record_rows(run_id: int, test_id: int, test: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    extension_id = test.get("extension_id", "")
    for component, data in (test.get("collected_data") or {}).items():
        kind = RECORD_KINDS.get(component, component)
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            for record in data["records"]:
                if isinstance(record, dict):
                    rows.append(_record_row(run_id, test_id, kind, extension_id, record))
    return rows


_GROUP_COLUMN_NAMES = (
    "id", "extension_id", "fingerprint", "error_type", "message", "template", "category",
    "culprit", "first_seen_run", "first_seen_ts", "last_seen_run", "last_seen_ts", "count",
    "runs_seen", "data",
)  # fmt: skip
_RESOLUTION_COLUMNS = (
    "state", "resolved_at", "resolved_run", "notes", "regressed_at", "regressed_run",
    "regressions",
)  # fmt: skip
#: What a group row is read with: its columns and its resolution's (the one table of them).
_GROUP_SELECTED = (*_GROUP_COLUMN_NAMES, *_RESOLUTION_COLUMNS)
_GROUP_SELECT = (
    f"SELECT {', '.join('g.' + name for name in _GROUP_COLUMN_NAMES)},"
    f" {', '.join('res.' + name for name in _RESOLUTION_COLUMNS)} FROM error_groups g"
    " LEFT JOIN resolutions res ON res.kind = 'error_group'"
    " AND res.extension_id = g.extension_id AND res.key = g.fingerprint"
)


def _group_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A group row as :meth:`Store.error_groups` gives it: its status from its resolution."""
    data = json.loads(row.pop("data", None) or "{}")
    row["sample"] = data.get("sample")
    resolution = {"state": row.pop("state"), "resolved_at": row["resolved_at"]}
    status = status_of(resolution if resolution["state"] else None, row["last_seen_ts"])
    row["status"] = RESOLVED if status == RESOLVED else "unresolved"
    row["regressed"] = status == REGRESSED
    row["regressions"] = int(row["regressions"] or 0)
    return row


def _run_dict(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["args"] = json.loads(data["args"] or "[]")
    data["data"] = json.loads(data["data"] or "{}")
    data["status"] = run_status(data)
    return data


def run_status(run: Mapping[str, Any]) -> str:
    """How a stored run ended: ``finished``, ``interrupted`` (Ctrl-C), ``crashed`` (no end
    recorded and its process on this host is gone: killed), ``running``, or ``unfinished``
    (no end recorded by a process of another host)."""
    found = run.get("data")
    data: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if data.get("status"):
        return str(data["status"])
    if run.get("finished_at") is not None:
        return "finished"
    pid = data.get("pid")
    if isinstance(pid, int) and run.get("host") == socket.gethostname():
        return "running" if process_alive(pid) else "crashed"
    return "unfinished"


def process_alive(pid: int) -> bool:
    """Whether a process *pid* exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, owned by another user
        return True
    return True


def _where(
    *fixed: str,
    params: Iterable[Any] = (),
    alias: str = "",
    time_column: str = "ts",
    extension_id: str | None = None,
    run_id: int | None = None,
    test_id: int | None = None,
    since: float | None = None,
    until: float | None = None,
    after_id: int | None = None,
    before_id: int | None = None,
    equal: Mapping[str, Any] | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE condition and its parameters: the *fixed* clauses (taking *params*) ANDed
    with one clause per filter that is not ``None``.

    Columns are prefixed with *alias* (``"r."``); *since*/*until* bound *time_column*,
    *after_id*/*before_id* the row id; *equal* maps further columns to the value they equal.
    """
    clauses, values = list(fixed), list(params)
    filters: list[tuple[str, str, Any]] = [
        ("extension_id", "=", extension_id),
        ("run_id", "=", run_id),
        ("test_id", "=", test_id),
        (time_column, ">=", since),
        (time_column, "<=", until),
        ("id", ">", after_id),
        ("id", "<", before_id),
        *((column, "=", value) for column, value in (equal or {}).items()),
    ]
    for column, op, value in filters:
        if value is not None:
            clauses.append(f"{alias}{column} {op} ?")
            values.append(value)
    return " AND ".join(clauses) or "1 = 1", values


def open_store(path: StoreLocation | None) -> Store | None:
    """Open the store at *path* (a file or a URL); ``None`` or ``"none"`` means no store."""
    if path is None or str(path).lower() == "none":
        return None
    return Store(path)
