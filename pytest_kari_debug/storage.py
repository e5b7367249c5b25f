"""The embedded SQLite store: runs, tests and every component's records.

One file (WAL mode, busy timeout) that the plugin writes and the CLI, REST API, history and
regression gates read. Tests are written in batches, one transaction per batch.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .exceptions import StoreError

SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_STORE = Path(".kari-debug") / "kari.db"

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
    # 2: resolutions of error groups and alerts, set by `kari-debug ... resolve` (issue 11).
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
]
SCHEMA_VERSION = len(MIGRATIONS)

_TEST_COLUMNS = (
    "run_id, nodeid, extension_id, outcome, started_at, finished_at, duration_ms,"
    " setup_ms, call_ms, teardown_ms, session_id, data"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr, separators=(",", ":"))


class Store:
    """A SQLite store file. Safe to share between threads; one writer at a time."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        _refuse_foreign_file(self.path)
        if not create and not self.path.exists():
            msg = f"no store at {str(self.path)!r}"
            raise StoreError(msg)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open store {str(self.path)!r}: {exc}"
            raise StoreError(msg) from exc
        self._lock = threading.RLock()
        try:
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            msg = f"store {str(self.path)!r} is not a usable SQLite database: {exc}"
            raise StoreError(msg) from exc

    # Schema ----------------------------------------------------------------------------
    def _version(self) -> int:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        with self._lock:
            version = self._version()
            if version > SCHEMA_VERSION:
                msg = (
                    f"store {str(self.path)!r} has schema version {version}, newer than this"
                    f" pytest-kari-debug understands ({SCHEMA_VERSION}): upgrade pytest-kari-debug"
                    " or point --kari-store elsewhere"
                )
                raise StoreError(msg)
            for number in range(version, SCHEMA_VERSION):
                with self._db:
                    self._db.executescript(f"BEGIN; {MIGRATIONS[number]} ; COMMIT;")
                with self._db:
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                        (str(number + 1),),
                    )

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._version()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (committed at the end of the block, rolled back on error)."""
        with self._lock, self._db:
            yield self._db

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    # Writing ---------------------------------------------------------------------------
    def begin_run(self, meta: dict[str, Any]) -> int:
        """Insert a run row from *meta*; return its id."""
        columns = (
            "uuid", "started_at", "rootdir", "args", "git_commit", "git_branch", "host",
            "python_version", "pytest_version", "plugin_version",
        )  # fmt: skip
        values = [meta.get(c) for c in columns]
        values[3] = _dumps(meta.get("args", []))
        with self.transaction() as db:
            cursor = db.execute(
                f"INSERT INTO runs({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                values,
            )
            return int(cursor.lastrowid or 0)

    def finish_run(
        self, run_id: int, *, finished_at: float, exit_status: int, data: dict[str, Any]
    ) -> None:
        """Record the end of run *run_id*."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at=?, exit_status=?, data=? WHERE id=?",
                (finished_at, exit_status, _dumps(data), run_id),
            )

    def write_tests(self, run_id: int, tests: Sequence[dict[str, Any]]) -> list[int]:
        """Write *tests* (plugin test records) and their components' records in one transaction."""
        ids = []
        with self.transaction() as db:
            for test in tests:
                phases = test.get("phases", {})
                cursor = db.execute(
                    f"INSERT INTO tests({_TEST_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        run_id,
                        test["nodeid"],
                        test.get("extension_id", ""),
                        test.get("outcome", "unknown"),
                        test.get("started_at"),
                        test.get("finished_at"),
                        test.get("duration_ms"),
                        phases.get("setup"),
                        phases.get("call"),
                        phases.get("teardown"),
                        test.get("session_id"),
                        _dumps(test),
                    ),
                )
                test_id = int(cursor.lastrowid or 0)
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

    # Reading ---------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            try:
                return self._db.execute(sql, params).fetchall()
            finally:
                self._db.row_factory = None

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest runs first."""
        rows = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [_run_dict(row) for row in rows]

    def get_run(self, run: int | str) -> dict[str, Any] | None:
        """The run with id (or uuid) *run*; ``"last"`` for the newest."""
        if run == "last":
            rows = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT 1")
        else:
            rows = self._query("SELECT * FROM runs WHERE id=? OR uuid=?", (run, str(run)))
        return _run_dict(rows[0]) if rows else None

    def tests(self, run_id: int, *, extension_id: str | None = None) -> list[dict[str, Any]]:
        """Every test record of run *run_id*, in the order they finished."""
        sql = "SELECT id, data FROM tests WHERE run_id=?"
        params: list[Any] = [run_id]
        if extension_id:
            sql += " AND extension_id=?"
            params.append(extension_id)
        rows = self._query(sql + " ORDER BY id", params)
        return [{"id": row["id"], **json.loads(row["data"])} for row in rows]

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
        clauses, params = ["kind=?"], [kind]
        for column, value, op in (
            ("extension_id", extension_id, "="),
            ("run_id", run_id, "="),
            ("test_id", test_id, "="),
            ("ts", since, ">="),
            ("ts", until, "<="),
            ("id", after_id, ">"),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT id, run_id, test_id, data FROM records WHERE {' AND '.join(clauses)}"
        sql += f" ORDER BY id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            {"record_id": row["id"], "run_id": row["run_id"], "test_id": row["test_id"],
             **json.loads(row["data"])}
            for row in self._query(sql, params)
        ]  # fmt: skip

    def extensions(self) -> list[str]:
        """Every extension id that has tests or records in the store."""
        rows = self._query(
            "SELECT extension_id FROM tests UNION SELECT extension_id FROM records ORDER BY 1"
        )
        return [row[0] for row in rows]

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
        clauses, params = ["r.kind = ?"], [kind]
        for column, value, op in (
            ("r.extension_id", extension_id, "="),
            ("r.run_id", run_id, "="),
            ("r.ts", since, ">="),
            ("r.ts", until, "<="),
            ("r.id", after_id, ">"),
            ("r.id", before_id, "<"),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        if levels is not None:
            clauses.append(f"upper(r.level) IN ({', '.join('?' * len(levels))})")
            params.extend(level.upper() for level in levels)
        if nodeid:
            clauses.append("instr(t.nodeid, ?) > 0")
            params.append(nodeid)
        if without_test:
            clauses.append("r.test_id IS NULL")
        for field_name, text in (equals or {}).items():
            clauses.append("CAST(json_extract(r.data, ?) AS TEXT) = ?")
            params.extend((f"$.{field_name}", text))
        sql = (
            "SELECT r.id, r.run_id, r.test_id, r.extension_id, t.nodeid, r.data FROM records r"
            f" LEFT JOIN tests t ON t.id = r.test_id WHERE {' AND '.join(clauses)}"
            f" ORDER BY r.id {'DESC' if newest_first else 'ASC'}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            {"record_id": row["id"], "run_id": row["run_id"], "test_id": row["test_id"],
             "extension_id": row["extension_id"], "nodeid": row["nodeid"],
             **json.loads(row["data"])}
            for row in self._query(sql, params)
        ]  # fmt: skip

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
        clauses, params = ["kind = 'metric'", "value IS NOT NULL"], []
        for column, value, op in (
            ("extension_id", extension_id, "="),
            ("run_id", run_id, "="),
            ("ts", since, ">="),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        rows = self._query(
            "SELECT name, coalesce(json_extract(data, '$.unit'), ''), coalesce(ts, 0), value"
            f" FROM records WHERE {' AND '.join(clauses)}",
            params,
        )
        return [(str(row[0]), str(row[1]), float(row[2]), float(row[3])) for row in rows]

    def slim_tests(
        self, since: float | None, *, extension_id: str | None = None, run_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Test records cut down to what per-test figures need (cheap on big records).

        Each keeps nodeid, outcome, finished_at, duration_ms, phases, the metrics'
        ``resources`` and ``memory``, and stand-ins for the error, span and log records (one
        empty dict per error or span, one ``{"level": ...}`` per log record).
        """
        clauses, params = ["1 = 1"], []
        for column, value, op in (
            ("finished_at", since, ">="),
            ("extension_id", extension_id, "="),
            ("run_id", run_id, "="),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        cd = "$.collected_data"
        rows = self._query(
            "SELECT nodeid, outcome, finished_at, duration_ms, json_extract(data, '$.phases'),"
            f" json_extract(data, '{cd}.metrics.resources'),"
            f" json_extract(data, '{cd}.metrics.memory'),"
            f" json_array_length(data, '{cd}.error_tracking.records'),"
            f" json_array_length(data, '{cd}.tracing.records'),"
            f" CASE WHEN json_type(data, '{cd}.logging.records') = 'array' THEN coalesce(("
            "SELECT group_concat(coalesce(json_extract(value, '$.level'), ''), ',') FROM"
            f" json_each(tests.data, '{cd}.logging.records')), '') END"
            f" FROM tests WHERE {' AND '.join(clauses)} ORDER BY id",
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
            for kind, count in (("error_tracking", row[7]), ("tracing", row[8])):
                if count is not None:
                    collected[kind] = {"records": [{}] * int(count)}
            if row[9] is not None:
                levels = row[9].split(",") if row[9] else []
                collected["logging"] = {"records": [{"level": level} for level in levels]}
            result.append(
                {
                    "nodeid": row[0],
                    "outcome": row[1],
                    "finished_at": row[2],
                    "duration_ms": row[3],
                    "phases": json.loads(row[4]) if row[4] else {},
                    "collected_data": collected,
                }
            )
        return result

    def record_counts(
        self, *, extension_id: str | None = None, run_id: int | None = None
    ) -> dict[str, int]:
        """How many records of each kind the store holds (for an extension, a run)."""
        clauses, params = ["1 = 1"], []
        if extension_id is not None:
            clauses.append("extension_id = ?")
            params.append(extension_id)
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        rows = self._query(
            f"SELECT kind, count(*) FROM records WHERE {' AND '.join(clauses)} GROUP BY kind",
            params,
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
        clauses, params = ["r.kind = ?"], [kind]
        for column, value, op in (
            ("r.extension_id", extension_id, "="),
            ("r.run_id", run_id, "="),
            ("r.ts", since, ">="),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        key = "CAST(json_extract(r.data, ?) AS TEXT)"
        sql = (
            f"SELECT {key} AS key, r.extension_id, count(*) AS n,"
            " count(DISTINCT r.test_id) AS tests, min(r.ts) AS first_ts, max(r.ts) AS last_ts,"
            " max(r.id) AS last_id"
            f" FROM records r WHERE {' AND '.join(clauses)}"
            " GROUP BY key, r.extension_id ORDER BY n DESC, last_ts DESC"
        )
        groups = self._query(sql, [f"$.{key_field}", *params])
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
            params: list[Any] = [run["id"]]
            sql = "SELECT outcome, count(*), sum(duration_ms) FROM tests WHERE run_id = ?"
            if extension_id is not None:
                sql += " AND extension_id = ?"
                params.append(extension_id)
            counts = self._query(sql + " GROUP BY outcome", params)
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
        clauses, params = ["1 = 1"], []
        for column, value, op in (
            ("finished_at", since, ">="),
            ("extension_id", extension_id, "="),
            ("run_id", run_id, "="),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        rows = self._query(
            f"SELECT id, run_id, data FROM tests WHERE {' AND '.join(clauses)} ORDER BY id", params
        )
        return [
            {"id": row["id"], "run_id": row["run_id"], **json.loads(row["data"])} for row in rows
        ]

    def integrity(self) -> str:
        """``"ok"`` when SQLite's quick check finds the file sound, else what it found."""
        rows = self._query("PRAGMA quick_check")
        return "; ".join(str(row[0]) for row in rows[:5]) or "ok"

    def resolve(
        self, kind: str, extension_id: str, key: str, *, notes: str | None, at: float
    ) -> None:
        """Mark the error group or alert *key* of *extension_id* resolved at *at*."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO resolutions(kind, extension_id, key, resolved_at, notes)"
                " VALUES (?,?,?,?,?)",
                (kind, extension_id, key, at, notes),
            )

    def resolutions(
        self, kind: str, *, extension_id: str | None = None
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Resolutions of *kind* (``error_group`` or ``alert``) by (extension_id, key)."""
        sql = "SELECT extension_id, key, resolved_at, notes FROM resolutions WHERE kind = ?"
        params: list[Any] = [kind]
        if extension_id is not None:
            sql += " AND extension_id = ?"
            params.append(extension_id)
        return {
            (row["extension_id"], row["key"]): {"resolved_at": row["resolved_at"],
                                               "notes": row["notes"]}
            for row in self._query(sql, params)
        }  # fmt: skip


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
        extension_id,
        record.get("session_id"),
        record.get("name"),
        record.get("level"),
        value if isinstance(value, (int, float)) and not isinstance(value, bool) else None,
        _dumps(record),
    )


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


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["args"] = json.loads(data["args"] or "[]")
    data["data"] = json.loads(data["data"] or "{}")
    return data


def _refuse_foreign_file(path: Path) -> None:
    """Raise when *path* exists and is not a SQLite database (it is never overwritten)."""
    if path.is_dir():
        msg = f"store path {str(path)!r} is a directory, not a SQLite file"
        raise StoreError(msg)
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        msg = f"cannot read store {str(path)!r}: {exc}"
        raise StoreError(msg) from exc
    if head and head != SQLITE_MAGIC:
        msg = f"{str(path)!r} is not a SQLite store (left untouched); choose another --kari-store"
        raise StoreError(msg)


def open_store(path: str | Path | None) -> Store | None:
    """Open the store at *path*; ``None`` or ``"none"`` means no store."""
    if path is None or str(path).lower() == "none":
        return None
    return Store(path)
