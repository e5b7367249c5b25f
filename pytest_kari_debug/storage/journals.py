"""Runs' journals brought into the store: every reader of a SQLite store sees every test that
finished, committed by its run or not yet.

A run appends each finished test to its journal (:mod:`pytest_kari_debug.journal`) before the
next test starts, and commits its tests to a SQLite store in groups, a second apart at most
(:mod:`pytest_kari_debug.plugin.committer`). Opening a SQLite ``Store`` first imports, for
each journal in the store's journal folder, the tests the store lacks
(:meth:`JournalImport.import_journals`): a live run's without marking it or deleting its
journal, a dead run's by the recovery (run ``crashed``, error groups counted, journal
deleted). Imports are idempotent and race-free between readers and the writer: a test is one
row whoever inserts it first (the unique key of ``tests``, ``INSERT ... ON CONFLICT DO
NOTHING``); a dead run's recovery (crash mark, error groups) is one transaction;
``journal_marks`` keeps how far each journal is in the store (it only moves on), so a reader
decodes only the lines past it. Lines are decoded outside any transaction and inserted in
short transactions of a batch each: a writer never waits for a reader's whole import.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .codec import dumps
from .errorgroups import ErrorGrouper, ErrorGroupStore
from .runs import RunWriting, prepared_tests, process_alive

SUFFIX = ".jsonl"
#: Test records inserted per statement batch of an import.
BATCH = 200


def journal_folder(path: Path) -> Path:
    """The journals of the runs writing the SQLite store at *path*: a folder beside it."""
    return path.with_name(path.name + "-runs")


def decode_line(line: bytes) -> Any:
    """One JSON text of :func:`~pytest_kari_debug.storage.dumps`, decoded (a journal line)."""
    if line[:1] == b" ":  # the standard library wrote it (an integer past 64 bits): it reads it
        return json.loads(line.decode("utf-8", "surrogatepass"))
    return orjson.loads(line)


def read_header(path: Path) -> tuple[dict[str, Any] | None, int]:
    """A journal's header and its length in bytes (``None``: no complete header)."""
    with open(path, "rb") as handle:
        head = handle.readline()
    if not head.endswith(b"\n"):
        return None, 0
    header = decode_line(head)
    return (header, len(head)) if isinstance(header, dict) and "uuid" in header else (None, 0)


def dead(header: dict[str, Any]) -> bool:
    """Whether the process that wrote a journal is gone (a process of this host only)."""
    pid = header.get("pid")
    if header.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False  # another machine's run: it may still be going
    return pid != os.getpid() and not process_alive(pid)


class JournalImport(RunWriting, ErrorGroupStore):
    """Bringing the journals of a store's runs into it (see the module's docstring)."""

    def import_journals(
        self,
        folder: Path,
        *,
        live: bool = True,
        error_groups: ErrorGrouper | None = None,
        remove_dead: bool = True,
    ) -> list[int]:
        """Import the tests of the journals in *folder* that the store lacks; the dead runs'
        ids.

        A dead run's journal is recovered: its run marked ``crashed`` (when no end is
        recorded), given *error_groups* its error groups counted again from its stored tests,
        and with *remove_dead* the journal deleted. With *live*, the journals of running runs
        (this process's too) are imported as well and left as they are. A journal that
        cannot be read is skipped.
        """
        recovered: list[int] = []
        try:
            paths = sorted(folder.glob(f"*{SUFFIX}"))
        except OSError:
            return recovered
        if self.kind == "sqlite":
            with contextlib.suppress(Exception):  # a store locked or read-only: next time
                self.drop_stale_marks({path.name for path in paths})
        for path in paths:
            try:
                header, start = read_header(path)
                if header is None:
                    continue
                gone = dead(header)
                if not (gone or live):
                    continue
                run_id = self._import_journal(
                    path, header, start, gone and remove_dead, gone, error_groups
                )
            except Exception:  # one journal never stops a store from opening
                continue
            if gone and run_id is not None:
                recovered.append(run_id)
                if remove_dead:
                    path.unlink(missing_ok=True)
        return recovered

    def drop_stale_marks(self, names: set[str]) -> int:
        """Forget the marks of journals not among *names* (gone: their run ended or was
        recovered); how many. A mark dropped while its journal appears costs a reader only
        decoding it again (imports are idempotent)."""
        stale = [row[0] for row in self._query("SELECT name FROM journal_marks")]
        stale = [name for name in stale if name not in names]
        if stale:
            with self.transaction() as db:
                db.executemany("DELETE FROM journal_marks WHERE name = ?", [(n,) for n in stale])
        return len(stale)

    def journal_mark(self, name: str) -> int:
        """How far (bytes) journal *name*'s tests are in the store (0: unknown)."""
        rows = self._query("SELECT position FROM journal_marks WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def _import_journal(
        self,
        path: Path,
        header: dict[str, Any],
        start: int,
        done: bool,
        gone: bool,
        error_groups: ErrorGrouper | None,
    ) -> int | None:
        """Import one journal; the run's id (``None``: nothing to do).

        Lines are decoded outside any transaction, then inserted in batches of
        :data:`BATCH`, each in one short transaction that moves the journal's mark past it: a
        writer never waits for more than a batch. A dead run's recovery (crash mark, error
        groups counted again from its stored tests, mark removed) is one last transaction.
        """
        sqlite = self.kind == "sqlite"
        if sqlite:
            start = max(start, self.journal_mark(path.name))
        run_id: int | None = None
        known: set[tuple[Any, Any]] | None = None
        for records, end in _batches(path, start):
            with self.transaction() as db:
                if run_id is None:
                    run_id = self._run_of(db, header)
                    known = None if sqlite else self._test_keys(db, run_id)
                new = [r for r in records if known is None or _key(r) not in known]
                if new:
                    self._insert_new(db, run_id, new)
                if sqlite:
                    self._note_mark(db, path.name, run_id, end)
        if not gone:
            return run_id
        with self.transaction() as db:
            if run_id is None:
                run_id = self._run_of(db, header)
            if sqlite and done:
                self._note_mark(db, path.name, run_id, None)
            self._mark_crashed(db, run_id)
            if error_groups is not None:
                self._resync_run_errors(db, run_id, error_groups, time.time())
        return run_id

    def _run_of(self, db: Any, header: dict[str, Any]) -> int:
        found = db.execute("SELECT id FROM runs WHERE uuid = ?", (str(header["uuid"]),)).fetchone()
        return int(found[0]) if found is not None else self._join_run(db, header)[0]

    def _test_keys(self, db: Any, run_id: int) -> set[tuple[Any, Any]]:
        rows = db.execute("SELECT nodeid, finished_at FROM tests WHERE run_id = ?", (run_id,))
        return {(row[0], row[1]) for row in rows.fetchall()}

    def _insert_new(self, db: Any, run_id: int, records: list[dict[str, Any]]) -> None:
        if self.kind == "sqlite":
            self._insert_new_prepared(db, prepared_tests(run_id, records, None))
        else:  # filtered by the run's stored keys (a server's journals are its writer's)
            self._insert_tests(db, run_id, records, None)

    def _mark_crashed(self, db: Any, run_id: int) -> None:
        row = db.execute("SELECT finished_at, data FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None or row[0] is not None:
            return
        data = json.loads(row[1] or "{}")
        if data.get("status") != "crashed":
            data["status"] = "crashed"
            db.execute("UPDATE runs SET data = ? WHERE id = ?", (dumps(data), run_id))


def _key(record: dict[str, Any]) -> tuple[Any, Any]:
    return record.get("nodeid"), record.get("finished_at")


def _batches(path: Path, start: int) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """The records of the journal's complete lines from byte *start* on, :data:`BATCH` lines
    at a time, each batch with the offset just past its last line."""
    batch: list[dict[str, Any]] = []
    count = 0
    end = start
    for record, end in _lines(path, start):
        count += 1
        if record is not None:
            batch.append(record)
        if count == BATCH:
            yield batch, end
            batch, count = [], 0
    if count:
        yield batch, end


def _lines(path: Path, start: int) -> Iterator[tuple[dict[str, Any] | None, int]]:
    """Each complete line from byte *start* on, decoded (``None``: not a record), with the
    offset just past it (a line cut short by a kill, the last one, is left out)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        offset = start
        for line in handle:
            if not line.endswith(b"\n"):
                return
            offset += len(line)
            try:
                record = decode_line(line)
            except ValueError:  # a line that is not JSON: skipped, never the lines after it
                record = None
            yield (record if isinstance(record, dict) else None), offset
