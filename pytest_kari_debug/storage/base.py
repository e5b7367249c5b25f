"""The store's connection, schema and transactions, and the WHERE builder its queries share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ..backends import Backend, StoreLocation, open_backend, redact
from ..exceptions import StoreError
from .schema import MIGRATIONS

if TYPE_CHECKING:
    from typing_extensions import Unpack


class StoreBase:
    """A store's connection (SQLite file or PostgreSQL database); safe to share between threads."""

    def __init__(
        self, location: StoreLocation, *, create: bool = True, bound_s: float | None = None
    ) -> None:
        """Open (and migrate) the store at *location*; a server's every wait ends after
        *bound_s* seconds (a :class:`~pytest_kari_debug.exceptions.StoreTimeoutError`)."""
        self._backend: Backend = open_backend(location, create=create, bound_s=bound_s)
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

    def checkpoint_in_background(
        self,
        own_thread: Callable[[], AbstractContextManager[Any]] = nullcontext,
        idle: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        """For a writer that commits often (a test run): SQLite's checkpoints (copying the
        WAL into the file, syncing both to disk) run on a thread of their own until
        :meth:`close`, not on the committing thread; the thread's life runs inside
        *own_thread*, its waits inside *idle* (the caller's CPU accounting). A server store
        has nothing to do."""
        self._backend.checkpoint_in_background(own_thread, idle)

    @property
    def checkpoint_problem(self) -> str | None:
        """The first background checkpoint that failed (SQLite), else ``None``."""
        return self._backend.checkpoint_problem

    def close(self) -> None:
        """Close the database connection."""
        self._backend.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._backend.query(sql, params)

    def integrity(self) -> str:
        """``"ok"`` when the database is sound (SQLite's quick check), else what was found."""
        return self._backend.integrity()

    def reclaim_space(self, pages: int | None = None) -> None:
        """Give the space of deleted rows back (SQLite: the file shrinks; *pages* at most)."""
        self._backend.reclaim_space(pages)


class RowFilters(TypedDict, total=False):
    """The filters of a query of the store's rows (``None``: not filtered): the extension, run
    and test the rows belong to, their time (*since*/*until*, inclusive) and row id (exclusive)."""

    extension_id: str | None
    run_id: int | None
    test_id: int | None
    since: float | None
    until: float | None
    after_id: int | None
    before_id: int | None


class _NewestRuns(TypedDict):
    runs: int


class OutcomeWindow(_NewestRuns, total=False):
    """What a test history reads: the newest *runs* runs up to *until_run* (inclusive), of one
    test (*nodeid*) or one extension (``None``: every one)."""

    until_run: int | None
    nodeid: str | None
    extension_id: str | None


#: Each filter's column (``None``: the time column) and comparison.
_FILTER_SQL = {
    "extension_id": ("extension_id", "="),
    "run_id": ("run_id", "="),
    "test_id": ("test_id", "="),
    "since": (None, ">="),
    "until": (None, "<="),
    "after_id": ("id", ">"),
    "before_id": ("id", "<"),
}


def where_clause(
    *fixed: str,
    params: Iterable[Any] = (),
    alias: str = "",
    time_column: str = "ts",
    equal: Mapping[str, Any] | None = None,
    **filters: Unpack[RowFilters],
) -> tuple[str, list[Any]]:
    """A WHERE condition and its parameters: the *fixed* clauses (taking *params*) ANDed
    with one clause per filter that is not ``None``.

    Columns are prefixed with *alias* (``"r."``); *since*/*until* bound *time_column*;
    *equal* maps further columns to the value they equal.
    """
    clauses, values = list(fixed), list(params)
    found: dict[str, Any] = dict(filters)
    compared = [(*_FILTER_SQL[name], value) for name, value in found.items()]
    compared.extend((column, "=", value) for column, value in (equal or {}).items())
    for column, op, value in compared:
        if value is not None:
            clauses.append(f"{alias}{column or time_column} {op} ?")
            values.append(value)
    return " AND ".join(clauses) or "1 = 1", values
