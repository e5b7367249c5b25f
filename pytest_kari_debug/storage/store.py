"""The store: one class over its jobs (writing runs, reading, error groups, retention)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from ..backends import StoreLocation
from ..exceptions import StoreError
from .codec import dumps
from .errorgroups import ErrorGrouper
from .journals import JournalImport, journal_folder
from .reading import StoreReading
from .retention import Retention
from .runs import ImportResult


class Store(JournalImport, Retention, StoreReading):
    """A store (SQLite file or PostgreSQL database). Safe to share between threads."""

    def __init__(
        self,
        location: StoreLocation,
        *,
        create: bool = True,
        bound_s: float | None = None,
        import_journals: bool = True,
        error_groups: ErrorGrouper | None = None,
    ) -> None:
        """Open (and migrate) the store at *location*; a server's every wait ends after
        *bound_s* seconds (a :class:`~pytest_kari_debug.exceptions.StoreTimeoutError`).

        A SQLite store first brings in the tests of its runs' journals it lacks (unless
        *import_journals* is false: a run's own writer): those of running runs not committed
        yet, and a killed run's (:meth:`import_journals`; given *error_groups* its errors are
        counted and its journal deleted, else the journal stays for the next run of the plugin
        to count them). A store this process cannot write is read as it is, quietly.
        """
        super().__init__(location, create=create, bound_s=bound_s)
        if import_journals and self.kind == "sqlite" and not self._backend.read_only:
            folder = journal_folder(self.path)
            if folder.is_dir():
                # Read-only (or locked past the busy timeout): read what is there.
                with contextlib.suppress(sqlite3.Error, StoreError, OSError):
                    self.import_journals(
                        folder, error_groups=error_groups, remove_dead=error_groups is not None
                    )

    def import_run(
        self,
        document: Mapping[str, Any],
        *,
        error_groups: ErrorGrouper | None = None,
    ) -> ImportResult:
        """Add a run JSON document (``--kari-json``) to the store, in one transaction.

        Joined by run uuid: the tests of a shard's document join the run that other shards
        (or the live store) started. A test already stored for that run (same node id and
        end time) is skipped, so importing a document twice changes nothing; tests of the
        document that share both are all added (each its own ``twin`` number, SQLite).
        *error_groups* groups test records: the run's error groups are then counted again
        from all its stored tests (:meth:`resync_run_errors`).
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
            self._insert_twins(db, run_id, new)
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

    def save_baseline(self, name: str, document: dict[str, Any], run_id: int | None) -> None:
        """Store (or replace) the baseline *name*."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO baselines(name, created_at, run_id, data) VALUES (?,?,?,?)"
                " ON CONFLICT(name) DO UPDATE SET created_at = excluded.created_at,"
                " run_id = excluded.run_id, data = excluded.data",
                (name, document.get("created_at", 0.0), run_id, dumps(document)),
            )


def open_store(path: StoreLocation | None) -> Store | None:
    """Open the store at *path* (a file or a URL); ``None`` or ``"none"`` means no store."""
    if path is None or str(path).lower() == "none":
        return None
    return Store(path)
