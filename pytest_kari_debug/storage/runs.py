"""Writing runs and their tests: join (shards), progress, end, status, test records."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..sharedmethods import dataclass
from .base import StoreBase
from .codec import RECORD_INSERT, dumps, param, real, record_row, record_rows

TEST_INSERT = (
    "INSERT INTO tests(run_id, nodeid, extension_id, outcome, started_at, finished_at,"
    " duration_ms, setup_ms, call_ms, teardown_ms, session_id, data)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)

#: A test's row as the how-manyth of the run's tests under one key (SQLite: ``twin``).
TWIN_INSERT = TEST_INSERT.replace("data)", "data, twin)").replace("?)", "?,?)")

#: A test's row unless the run holds that test already (SQLite: the unique key (run, node id,
#: end)): a reader importing a live run's journal and the run's writer may both insert it.
NEW_TEST_INSERT = TEST_INSERT + " ON CONFLICT DO NOTHING"
#: How far (bytes) a journal's tests are in the store: only ever moves on.
MARK_UPSERT = (
    "INSERT INTO journal_marks(name, run_id, position) VALUES (?,?,?) ON CONFLICT(name)"
    " DO UPDATE SET position = max(position, excluded.position)"
)

#: Inserts a record of the test inserted last in the same transaction (PostgreSQL).
RECORD_OF_LAST_TEST = RECORD_INSERT.format(parent="currval(pg_get_serial_sequence('tests', 'id'))")


class RunWriting(StoreBase):
    """Writing runs, their tests and records not tied to a test."""

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

        *texts*, when given, are the tests' records already serialized with :func:`dumps`. One
        test without records (a test's commit, most often) is one statement that commits by
        itself: on PostgreSQL one round trip to the server rather than three.
        """
        prepared = prepared_tests(run_id, tests, texts)
        if len(prepared) == 1 and not prepared[0][1]:
            return [self._backend.insert_alone(TEST_INSERT, prepared[0][0])]
        with self.transaction() as db:
            return self._insert_prepared(db, prepared)

    def submit_tests(
        self,
        run_id: int,
        tests: Sequence[dict[str, Any]],
        texts: Sequence[str] | None = None,
        journal: tuple[str, int] | None = None,
    ) -> None:
        """Write *tests* without waiting for a server: a SQLite store commits them now in one
        transaction, each unless the run holds it already (a reader imported it from the
        run's journal), with *journal* (its file name and the length of its lines these
        tests complete) noted as in the store; a PostgreSQL store sends each test in a
        transaction of its own and returns, and :meth:`settle_writes` reads whether they were
        committed (as does the store's next use of its connection)."""
        backend = self._backend
        if backend.kind == "sqlite":
            prepared = prepared_tests(run_id, tests, texts)
            with backend.transaction(len(prepared)) as db:  # type: ignore[call-arg]
                self._insert_new_prepared(db, prepared)
                if journal is not None:
                    self._note_mark(db, journal[0], run_id, journal[1])
            return
        transactions = [
            [(TEST_INSERT, row), *((RECORD_OF_LAST_TEST, record) for record in records)]
            for row, records in prepared_tests(run_id, tests, texts)
        ]
        backend.send(transactions)  # type: ignore[union-attr]

    def settle_writes(self, timeout: float | None = None) -> None:
        """Wait until the tests :meth:`submit_tests` sent are committed: *timeout* seconds at
        most (``None``: the store's bound). Raises
        :class:`~pytest_kari_debug.backends.RefusedWrites` naming the tests the database
        refused (the others are committed),
        :class:`~pytest_kari_debug.exceptions.StoreError` if a test's write failed otherwise
        (it was rolled back), a :class:`~pytest_kari_debug.exceptions.StoreTimeoutError` if
        the server did not answer in time."""
        backend = self._backend
        if backend.kind != "sqlite":
            backend.settle(timeout)  # type: ignore[union-attr]

    def _insert_tests(
        self, db: Any, run_id: int, tests: Sequence[dict[str, Any]], texts: Sequence[str] | None
    ) -> list[int]:
        return self._insert_prepared(db, prepared_tests(run_id, tests, texts))

    def _insert_twins(self, db: Any, run_id: int, tests: Sequence[dict[str, Any]]) -> None:
        """Insert *tests*, those that share node id and end numbered apart (SQLite's unique
        key holds ``twin``: each is stored, none refused)."""
        prepared = prepared_tests(run_id, tests, None)
        if self.kind != "sqlite":
            self._insert_prepared(db, prepared)
            return
        seen: dict[tuple[Any, Any], int] = {}
        for row, records in prepared:
            twin = seen[row[1], row[5]] = seen.get((row[1], row[5]), -1) + 1
            test_id = int(db.execute(TWIN_INSERT, (*row, twin)).lastrowid or 0)
            if records:
                db.executemany(RECORD_INSERT.format(parent="?"), [(test_id, *r) for r in records])

    def _insert_prepared(self, db: Any, prepared: list[tuple[Row, list[Row]]]) -> list[int]:
        """Insert each test's row and its records' rows; the tests' ids."""
        ids = []
        for row, records in prepared:
            test_id = self._backend.inserted_id(db, TEST_INSERT, row)
            ids.append(test_id)
            if records:
                rows = [(test_id, *record) for record in records]
                db.executemany(RECORD_INSERT.format(parent="?"), rows)
        return ids

    def _insert_new_prepared(self, db: Any, prepared: list[tuple[Row, list[Row]]]) -> None:
        """Insert each test the run does not hold yet, with its records (SQLite): the records
        of them all in one statement, after the tests."""
        alone: list[Row] = []  # tests without records, in order: one statement for a run
        rows: list[Row] = []
        for row, records in prepared:
            if not records:
                alone.append(row)
                continue
            if alone:
                db.executemany(NEW_TEST_INSERT, alone)
                alone = []
            cursor = db.execute(NEW_TEST_INSERT, row)
            if cursor.rowcount > 0:
                test_id = cursor.lastrowid
                rows += [(test_id, *record) for record in records]
        if alone:
            db.executemany(NEW_TEST_INSERT, alone)
        if rows:
            db.executemany(RECORD_INSERT.format(parent="?"), rows)

    def _note_mark(self, db: Any, name: str, run_id: int, position: int | None) -> None:
        """Note that journal *name*'s lines up to *position* are in the store (``None``: the
        journal is gone)."""
        if position is None:
            db.execute("DELETE FROM journal_marks WHERE name = ?", (name,))
        else:
            db.execute(MARK_UPSERT, (name, run_id, position))

    def write_records(
        self,
        kind: str,
        extension_id: str,
        records: Iterable[dict[str, Any]],
        run_id: int | None = None,
    ) -> int:
        """Write records not tied to a test (a live manager's samples, say)."""
        rows = [record_row(run_id, kind, extension_id, record) for record in records]
        with self.transaction() as db:
            db.executemany(RECORD_INSERT.format(parent="NULL"), rows)
        return len(rows)


Row = tuple[Any, ...]


def prepared_tests(
    run_id: int, tests: Sequence[dict[str, Any]], texts: Sequence[str] | None
) -> list[tuple[Row, list[Row]]]:
    """Each test's row for :data:`TEST_INSERT` (its JSON: ``texts[i]`` when given) and its
    records' rows."""
    prepared = []
    for index, test in enumerate(tests):
        # One odd record never costs its neighbours (or itself) a row: what cannot be written
        # as it is is stored in a safe form (its records' rows left out, or its plain fields).
        try:
            row = _test_row(run_id, test, None if texts is None else texts[index])
        except Exception as exc:
            test = safe_test(test, exc)
            row = _test_row(run_id, test, None)
        try:
            records = record_rows(run_id, test)
        except Exception:  # the test's JSON (its data) still holds them
            records = []
        prepared.append((row, records))
    return prepared


def _test_row(run_id: int, test: dict[str, Any], text: str | None) -> Row:
    phases = test.get("phases")
    if not isinstance(phases, dict):
        phases = {}
    return (
        run_id,
        param(test.get("nodeid"), ""),
        param(test.get("extension_id"), ""),
        param(test.get("outcome"), "unknown"),
        real(test.get("started_at")),
        real(test.get("finished_at")),
        real(test.get("duration_ms")),
        real(phases.get("setup")),
        real(phases.get("call")),
        real(phases.get("teardown")),
        param(test.get("session_id")),
        dumps(test) if text is None else text,
    )


def safe_test(test: Any, exc: BaseException) -> dict[str, Any]:
    """What a test record that cannot be stored as it is keeps: its identity, times and
    outcome (each as a plain value), its collected data replaced by a note of why."""
    source = test if isinstance(test, dict) else {}
    kept: dict[str, Any] = {}
    for key in ("nodeid", "extension_id", "outcome", "session_id"):
        kept[key] = param(source.get(key), "" if key != "session_id" else None)
    for key in ("started_at", "finished_at", "duration_ms"):
        kept[key] = real(source.get(key))
    reason = param(f"{type(exc).__name__}: {exc}", type(exc).__name__)
    kept["collected_data"] = {}
    kept["unstorable"] = f"<unrepresentable test record: {reason}>"
    return kept


@dataclass
class ImportResult:
    """What :meth:`Store.import_run` did with one document."""

    run_id: int
    uuid: str
    added: int
    skipped: int
    joined: bool


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


def run_dict(row: Any) -> dict[str, Any]:
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
