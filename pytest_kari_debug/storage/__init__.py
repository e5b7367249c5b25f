"""The store: runs, tests and every component's records, in SQLite or PostgreSQL.

An embedded SQLite file (WAL mode, busy timeout) by default, or a PostgreSQL database that a
team's CI machines share (:mod:`backends` holds the two dialects). The plugin writes it; the
CLI, REST API, history and regression gates read it. The plugin commits a SQLite store's tests
in groups (a second apart at most) and a server's each in a transaction of its own; a reader
opening a SQLite store first imports the tests its runs' journals hold beyond that.

A package by job behind this facade: :mod:`.schema` (migrations), :mod:`.codec` (the rows'
JSON), :mod:`.base` (connection, transactions), :mod:`.runs` (writing runs and tests),
:mod:`.reading` (queries), :mod:`.errorgroups` (error groups and resolutions),
:mod:`.retention` (pruning), :mod:`.journals` (runs' journals brought in as a SQLite store is
opened: every reader sees every finished test) and :mod:`.store` (the one :class:`Store` over
them).
"""

from __future__ import annotations

from .base import OutcomeWindow, RowFilters
from .codec import RECORD_KINDS, dumps, dumps_record, loads_many
from .errorgroups import ErrorGrouper
from .retention import PruneResult
from .runs import ImportResult, merge_run_data, process_alive, run_status, worst_exit_status
from .schema import DEFAULT_STORE, MIGRATIONS, SCHEMA_VERSION
from .store import Store, open_store

__all__ = [
    "DEFAULT_STORE",
    "MIGRATIONS",
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "ErrorGrouper",
    "ImportResult",
    "OutcomeWindow",
    "PruneResult",
    "RowFilters",
    "Store",
    "dumps",
    "dumps_record",
    "loads_many",
    "merge_run_data",
    "open_store",
    "process_alive",
    "run_status",
    "worst_exit_status",
]
