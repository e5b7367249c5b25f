"""The store's two databases: an embedded SQLite file and a PostgreSQL server (psycopg 3).

A backend owns one connection and speaks the store's SQL (``?`` parameters, the schema of
:data:`storage.MIGRATIONS`); the few constructs the two dialects spell differently are
methods here, so :mod:`storage` keeps one text of every query.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .exceptions import ConfigurationError, StoreError, StoreTimeoutError
from .text import writable_text

SQLITE_MAGIC = b"SQLite format 3\x00"
POSTGRES_SCHEMES = ("postgresql", "postgres")
#: Seconds to wait for a PostgreSQL server to accept a connection.
CONNECT_TIMEOUT_S = 5
#: A bounded connection's server-side statement and lock timeouts, as a share of its bound:
#: the server ends a blocked statement (an error, the connection usable) before the client
#: gives up on the connection.
SERVER_SHARE_OF_BOUND = 0.8
#: libpq's CONNECTION_OK.
_CONNECTION_OK = 0
#: Seconds a bounded connection waits at most for a schema migration to be applied.
MIGRATION_BOUND_S = 120.0
#: Key of the advisory lock that serialises schema migrations on a PostgreSQL server.
_MIGRATION_LOCK = 0x6B617269  # "kari"

StoreLocation = Path | str


def is_url(location: object) -> bool:
    """Whether *location* is a database URL (``scheme://...``) rather than a file path."""
    return (
        isinstance(location, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", location) is not None
    )


def parse_location(text: str, *, source: str = "--kari-store") -> StoreLocation:
    """A store location from user text: a ``postgresql://`` URL or a SQLite file path.

    Any other ``scheme://`` is refused here, at the point of entry.
    """
    if not is_url(text):
        return Path(text)
    scheme = text.split("://", 1)[0].lower()
    if scheme not in POSTGRES_SCHEMES:
        msg = (
            f"{source}: unknown store URL scheme {scheme + '://'!r} in {redact(text)!r};"
            " accepted: a SQLite file path or postgresql://user@host:port/dbname"
        )
        raise ConfigurationError(msg)
    return text


_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]*@")


def redact_urls(text: str) -> str:
    """*text* (a command-line argument, say) with the password of every URL in it hidden."""
    return _URL_PASSWORD.sub(r"\1***@", text) if "://" in text else text


def location_exists(location: StoreLocation) -> bool:
    """Whether a store may be at *location*: a SQLite file that exists, or any server URL."""
    return is_url(location) or Path(location).exists()


def as_location(location: str | Path) -> StoreLocation:
    """*location* as a store location: a URL stays text, anything else is a path."""
    return str(location) if is_url(location) else Path(location)


def redact(location: StoreLocation | None) -> str:
    """*location* as it may be printed: a URL's password replaced by ``***``."""
    text = str(location)
    if not is_url(text):
        return text
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
    except ValueError:
        return text.split("://", 1)[0] + "://***"
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _statements(script: str) -> list[str]:
    """The statements of a migration script (no ``;`` inside our DDL's literals)."""
    return [part.strip() for part in script.split(";") if part.strip()]


class RefusedWrites(StoreError):
    """The database refused some of the transactions sent together (a value it cannot hold,
    a constraint: writing them again would fail again); the others are committed.
    :attr:`refused` maps the index of each refused one (in the order sent) to the reason."""

    def __init__(self, message: str, refused: dict[int, str]) -> None:
        super().__init__(message)
        self.refused = refused


class SqlDialect:
    """The constructs SQLite and PostgreSQL spell differently, each built from a backend's
    :attr:`SPELLING`: templates of a JSON value at a path in a column (``{dotted}`` and
    ``{braced}`` spell the path), of a JSON array's elements ``e``, and function names."""

    SPELLING: dict[str, str]

    @classmethod
    def _spell(cls, name: str, column: str = "", path: Sequence[str] = (), **parts: str) -> str:
        dotted, braced = ".".join(path), "{" + ",".join(path) + "}"
        return cls.SPELLING[name].format(column=column, dotted=dotted, braced=braced, **parts)

    @classmethod
    def json_text(cls, column: str) -> str:
        """The text at a JSON path (a parameter: :meth:`json_path`) in *column*."""
        return cls._spell("json_text", column)

    @classmethod
    def json_value(cls, column: str, *path: str) -> str:
        return cls._spell("json_value", column, path)

    @classmethod
    def json_array_length(cls, column: str, *path: str) -> str:
        return cls._spell("json_array_length", column, path)

    @classmethod
    def greatest(cls, *expressions: str) -> str:
        return f"{cls.SPELLING['greatest']}({', '.join(expressions)})"

    @classmethod
    def least(cls, *expressions: str) -> str:
        return f"{cls.SPELLING['least']}({', '.join(expressions)})"

    @classmethod
    def contains(cls, haystack: str) -> str:
        return f"{cls.SPELLING['position']}({haystack}, ?) > 0"

    @classmethod
    def json_joined_field(cls, column: str, field: str, *path: str) -> str:
        """*field* of every element of the JSON array at *path*, joined by commas."""
        element = f"coalesce({cls._spell('element_text', field=field)}, '')"
        joined = f"coalesce({cls.SPELLING['join_text']}({element}, ','), '')"
        return cls._over_elements(column, path, joined)

    @classmethod
    def json_count_tagged(cls, column: str, tag: str, *path: str) -> str:
        """How many elements of the JSON array at *path* have the tag *tag* true."""
        return cls._over_elements(column, path, "count(*)", cls._spell("element_tagged", tag=tag))

    @classmethod
    def _over_elements(cls, column: str, path: Sequence[str], select: str, where: str = "") -> str:
        """*select* (an aggregate) over the elements ``e`` of the JSON array at *path* in
        *column* (those matching *where*); NULL when there is no array there."""
        matching = f" WHERE {where}" if where else ""
        return (
            f"CASE WHEN {cls._spell('is_array', column, path)} THEN (SELECT {select} FROM"
            f" {cls._spell('elements', column, path)}{matching}) END"
        )


#: Tests committed between two checkpoints in the background (about 4 WAL pages a test; a
#: commit of a group counts its tests).
CHECKPOINT_EVERY_COMMITS = 128
#: WAL pages after which a store that checkpoints in the background checkpoints on its
#: writing thread too (SQLite's automatic checkpoint): the WAL starts over only after a
#: checkpoint that no commit overtook, which the background one rarely is in a fast run.
WRITER_CHECKPOINT_PAGES = 8192
#: Seconds the store's closing waits at most for a background checkpoint under way.
CHECKPOINT_STOP_WAIT_S = 10.0


class BackgroundCheckpoints:
    """Copies a SQLite store's WAL into its file on a thread of its own (with a connection
    of its own), every :data:`CHECKPOINT_EVERY_COMMITS` commits.

    A checkpoint syncs the WAL and the file to disk: milliseconds for each few hundred tests,
    which the writing thread (pytest's) would otherwise wait for. SQLite runs it without
    Python's lock, and it never blocks a writer or a reader (``PASSIVE``). It changes nothing
    of what a commit guarantees: a committed test is in the WAL, which every reader reads.
    """

    def __init__(
        self,
        path: Path,
        own_thread: Callable[[], AbstractContextManager[Any]] = nullcontext,
        idle: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        self.path = path
        #: Around the thread's life and each of its waits (the caller's CPU accounting).
        self._own_thread, self._idle = own_thread, idle
        self.commits = 0
        #: The first checkpoint that failed (the writer's own checkpoint then does the work).
        self.problem: str | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="kari-debug-store-checkpoints", daemon=True
        )
        self._thread.start()

    def committed(self, tests: int = 1) -> None:
        """Count a commit of *tests* tests (the hot path: a few operations)."""
        self.commits += tests
        if self.commits >= CHECKPOINT_EVERY_COMMITS:
            self.commits = 0
            self._wake.set()

    def _run(self) -> None:
        with self._own_thread():
            try:
                db = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            except Exception as exc:  # the writer's own checkpoint does the work
                self.problem = f"{type(exc).__name__}: {exc}"
                return
            try:
                self._checkpoint(db)
            finally:
                db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        while True:
            with self._idle():
                self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception as exc:  # busy (another checkpoint), a full disk...
                self.problem = self.problem or f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        """End the thread (after the checkpoint under way, :data:`CHECKPOINT_STOP_WAIT_S` at
        most); its connection closes before the writer's, whose closing checkpoints last."""
        self._stopping = True
        self._wake.set()
        self._thread.join(CHECKPOINT_STOP_WAIT_S)


class SQLiteBackend(SqlDialect):
    """A SQLite file in WAL mode with a busy timeout; new files vacuum incrementally."""

    kind = "sqlite"
    #: Checkpoints in the background (:meth:`checkpoint_in_background`), else ``None``.
    checkpoints: BackgroundCheckpoints | None = None

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        self.label = str(path)
        _refuse_foreign_file(path)
        if not create and not path.exists():
            msg = f"no store at {str(path)!r}"
            raise StoreError(msg)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open store {str(path)!r}: {exc}"
            raise StoreError(msg) from exc
        self.lock = threading.RLock()
        #: This process may not write the store (file or folder read-only): it reads it.
        self.read_only = False
        #: An immutable read's file stamp (see :meth:`_open_read_only`); ``None``: live.
        self._unchanged_since: tuple[int, int, bool] | None = None
        try:
            self._set_up()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if not _readable_as_it_is(path, exc):
                raise StoreError(_unusable(path, exc)) from exc
            self._open_read_only()

    def _set_up(self) -> None:
        self._db.execute("PRAGMA busy_timeout = 10000")
        # Set once, on a new file (a store in WAL mode already is read by a process that may
        # not write it): new stores give pruned space back (only on a file without tables).
        if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")

    def _open_read_only(self) -> None:
        """Read a store this process may not write (its folder or files read-only), live.

        ``mode=ro`` reads a WAL store live given its shared-memory file (a writer's, running
        or left). Without one, and with no right to make it (a store its last writer
        closed, in a read-only folder), it is read ``immutable``, and opened again before a
        query once a writer has come (its WAL is there) or the file changed: a long-lived
        reader never serves stale data."""
        self.read_only = True
        self._unchanged_since = None
        base = self.path.resolve().as_uri()
        try:
            self._db = sqlite3.connect(f"{base}?mode=ro", uri=True, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return
        except sqlite3.Error:
            self._db.close()
        try:
            stamp = self._file_stamp()
            self._db = sqlite3.connect(f"{base}?immutable=1", uri=True, check_same_thread=False)
            self._unchanged_since = stamp
        except (sqlite3.Error, OSError) as exc:
            msg = f"cannot open store {self.label!r}: {exc}"
            raise StoreError(msg) from exc

    def _file_stamp(self) -> tuple[int, int, bool]:
        state = self.path.stat()
        return (
            state.st_mtime_ns,
            state.st_size,
            self.path.with_name(self.path.name + "-wal").exists(),
        )

    def _fresh(self) -> None:
        """Open an immutable read-only store again if it changed since (see
        :meth:`_open_read_only`)."""
        stamp = self._unchanged_since
        if stamp is not None:
            try:
                changed = self._file_stamp() != stamp
            except OSError:
                return
            if changed:
                self._db.close()
                self._open_read_only()

    def checkpoint_in_background(
        self,
        own_thread: Callable[[], AbstractContextManager[Any]] = nullcontext,
        idle: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        """Checkpoint on a thread of its own from now on (:class:`BackgroundCheckpoints`; its
        life runs inside *own_thread*, its waits inside *idle*), until :meth:`close`: for a
        writer that commits often (a test run)."""
        with self.lock:
            if self.checkpoints is None:
                try:  # the thread first: a system that refuses it leaves the writer as it was
                    self.checkpoints = BackgroundCheckpoints(self.path, own_thread, idle)
                except RuntimeError as exc:  # "can't start new thread"
                    msg = f"cannot checkpoint {self.label!r} in the background ({exc})"
                    raise StoreError(msg) from None
                self._db.execute(f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}")

    @property
    def checkpoint_problem(self) -> str | None:
        """The first background checkpoint that failed, if any (the writer's own checkpoint
        then did the work)."""
        checkpoints = self.checkpoints
        return checkpoints.problem if checkpoints is not None else None

    @contextmanager
    def transaction(self, tests: int = 1) -> Iterator[SQLiteCursor]:
        """One write transaction; it counts as the commit of *tests* tests towards the next
        background checkpoint (a group commit's WAL grows with its tests)."""
        with self.lock, self._db:
            yield SQLiteCursor(self._db)
        if self.checkpoints is not None:
            self.checkpoints.committed(tests)

    def insert_alone(self, sql: str, params: Sequence[Any]) -> int:
        """Insert one row by a statement that commits by itself (a test's commit: the hot
        path); *params* are writable already. The row's id."""
        with self.lock:
            db = self._db
            isolation, db.isolation_level = db.isolation_level, None
            try:
                inserted = int(db.execute(sql, params).lastrowid or 0)
            finally:
                db.isolation_level = isolation
            if self.checkpoints is not None:
                self.checkpoints.committed()
            return inserted

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            if self._unchanged_since is not None:
                self._fresh()
            self._db.row_factory = sqlite3.Row
            try:
                return self._db.execute(sql, _sqlite_params(params)).fetchall()
            finally:
                self._db.row_factory = None

    def insert(self, sql: str, params: Sequence[Any]) -> int:
        with self.transaction() as db:
            return int(db.execute(sql, params).lastrowid or 0)

    @staticmethod
    def inserted_id(db: SQLiteCursor, sql: str, params: Sequence[Any]) -> int:
        return int(db.execute(sql, params).lastrowid or 0)

    def schema_version(self) -> int:
        with self.lock:
            return self._version()

    def _version(self) -> int:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def migrate(self, migrations: Sequence[str]) -> None:
        """Apply the missing *migrations* in one transaction (a writer lock held throughout)."""
        with self.lock:
            try:
                if self._version() > len(migrations):
                    _refuse_newer(self.label, self._version(), len(migrations))
                if self._version() == len(migrations):
                    return
                isolation, self._db.isolation_level = self._db.isolation_level, None
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        _apply(self._db.execute, self._version(), migrations, _sqlite_ddl)
                        self._db.execute("COMMIT")
                    except BaseException:
                        self._db.execute("ROLLBACK")
                        raise
                finally:
                    self._db.isolation_level = isolation
            except sqlite3.DatabaseError as exc:
                self._db.close()
                raise StoreError(_unusable(self.path, exc)) from exc

    def size_bytes(self) -> int:
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(path.stat().st_size for path in (self.path, wal) if path.exists())

    def integrity(self) -> str:
        rows = self.query("PRAGMA quick_check")
        return "; ".join(str(row[0]) for row in rows[:5]) or "ok"

    def reclaim_space(self, pages: int | None) -> None:
        """Give free pages back to the file system (*pages* at most; ``None``: all)."""
        with self.lock:
            mode = self._db.execute("PRAGMA auto_vacuum").fetchone()[0]
            if mode == 2:  # incremental
                count = "" if pages is None else f"({int(pages)})"
                # execute() steps the pragma once (one page); a script runs it to the end.
                self._db.executescript(f"PRAGMA incremental_vacuum{count};")
            elif pages is None:
                # An older store: switching it to incremental takes one full VACUUM.
                self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self) -> None:
        with self.lock:
            if self.checkpoints is not None:
                self.checkpoints.stop()
                self.checkpoints = None
            self._db.close()

    # Dialect ----------------------------------------------------------------------------
    SPELLING = {
        "json_text": "CAST(json_extract({column}, ?) AS TEXT)",
        "json_value": "json_extract({column}, '$.{dotted}')",
        "json_array_length": "json_array_length({column}, '$.{dotted}')",
        "is_array": "json_type({column}, '$.{dotted}') = 'array'",
        "elements": "json_each({column}, '$.{dotted}') AS e",
        "element_text": "json_extract(e.value, '$.{field}')",
        "element_tagged": """json_extract(e.value, '$.tags."{tag}"')""",
        "greatest": "MAX", "least": "MIN", "position": "instr", "join_text": "group_concat",
    }  # fmt: skip

    @staticmethod
    def json_path(field: str) -> str:
        return f"$.{field}"


#: Bytes free under which a file system counts as full in a store's error message.
FULL_BELOW_BYTES = 1 << 20


def _readable_as_it_is(path: Path, exc: sqlite3.DatabaseError) -> bool:
    """Whether the store at *path* that could not be set up for writing is read-only to this
    process and has no WAL left to read (the WAL's content would be missed)."""
    if "readonly" not in str(exc) and "unable to open" not in str(exc):
        return False
    try:
        return path.with_name(path.name + "-wal").stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _unusable(path: Path, exc: sqlite3.DatabaseError) -> str:
    """Why the SQLite store at *path* cannot be used: not a database, or a file system error
    (a full disk: said so, with the bytes left)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return f"store {str(path)!r} is not a usable SQLite database: {exc}"
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    full = (
        f" (its file system is full: {free} bytes free)"
        if free is not None and free < FULL_BELOW_BYTES
        else ""
    )
    return f"cannot open store {str(path)!r}: {exc}{full}"


def _sqlite_params(params: Sequence[Any]) -> Sequence[Any]:
    """Parameters SQLite's driver takes: text UTF-8 cannot hold (a lone surrogate from a
    non-UTF-8 file name, say) backslash-escaped, as PostgreSQL's are (:func:`_pg_value`)."""
    for value in params:
        if type(value) is str and not value.isascii():
            return [writable_text(v) if type(v) is str else v for v in params]
    return params


class SQLiteCursor:
    """What :meth:`SQLiteBackend.transaction` hands out: the connection's execute calls, any
    text a parameter (run metadata, notes, names: text from outside a test record)."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, _sqlite_params(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        """Rows of records, their text already made writable (``storage.codec.record_row``)."""
        return self._db.executemany(sql, rows)


def _sqlite_ddl(statement: str) -> str:
    return statement


#: Marks a migration statement that only SQLite runs.
SQLITE_ONLY = "/* sqlite only */"


def _apply(execute: Any, version: int, migrations: Sequence[str], ddl: Any) -> None:
    for number in range(version, len(migrations)):
        for statement in _statements(migrations[number]):
            sql = ddl(statement)
            if sql:
                execute(sql)
    execute(
        "INSERT INTO meta(key, value) VALUES ('schema_version', ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(len(migrations)),),
    )


def _refuse_newer(label: str, version: int, known: int) -> None:
    msg = (
        f"store {label!r} has schema version {version}, newer than this"
        f" pytest-kari-debug understands ({known}): upgrade pytest-kari-debug"
        " or point --kari-store elsewhere"
    )
    raise StoreError(msg)


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


# PostgreSQL -------------------------------------------------------------------------------
_PG_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    # SQLite does not enforce foreign keys (the store never turns them on): baselines and
    # error groups outlive a pruned run on both backends.
    (re.compile(r"\s+REFERENCES \w+\(\w+\)"), ""),
)  # fmt: skip


def _postgres_ddl(statement: str) -> str:
    if statement.startswith(SQLITE_ONLY):
        return ""
    for pattern, replacement in _PG_TYPES:
        statement = pattern.sub(replacement, statement)
    return _pg_sql(statement)


@lru_cache(maxsize=64)
def _pg_numbered(sql: str) -> bytes:
    """The store's SQL with libpq's numbered parameters (``$1``...), as bytes."""
    parts = sql.split("?")
    numbered = [part + f"${index}" for index, part in enumerate(parts[:-1], 1)]
    return ("".join(numbered) + parts[-1]).encode()


def _keepalive_params(bound_s: float) -> dict[str, Any]:
    """TCP settings that end a connection to a server gone from the network within about
    *bound_s* seconds (unanswered data, unanswered keepalive probes)."""
    seconds = max(1, int(bound_s))
    return {
        "keepalives": 1, "keepalives_idle": seconds, "keepalives_interval": max(1, seconds // 3),
        "keepalives_count": 3, "tcp_user_timeout": seconds * 1000,
    }  # fmt: skip


@lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """The store's SQL with psycopg's ``%s`` parameters (``%`` literals doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


#: A JSON ``\u0000`` escape (not an escaped backslash followed by ``u0000``).
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _pg_value(value: Any) -> Any:
    r"""A parameter PostgreSQL accepts: text without NUL or lone surrogates, and JSON without
    ``\u0000`` (its JSON functions refuse it): NUL becomes the text ``\x00`` in both."""
    if not isinstance(value, str):
        return value
    if value[:1] == "\n":
        # The store's rare fallback JSON (the standard library's) may hold what PostgreSQL's
        # JSON refuses: a lone surrogate's \udcxx escape (kept as text) and NaN (null).
        value = "\n" + json.dumps(_postgres_json(json.loads(value)), separators=(",", ":"))
    if "\\u0000" in value:
        value = _JSON_NUL.sub(r"\1\\\\x00", value)
    if not value.isascii() or "\x00" in value:
        return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _postgres_json(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_postgres_json(k): _postgres_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_postgres_json(item) for item in value]
    return value


def _pg_params(params: Sequence[Any]) -> list[Any]:
    return [_pg_value(value) for value in params]


class PgRow:
    """A result row read by position or by column name, like :class:`sqlite3.Row`."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = [_plain_number(v) for v in values]

    def __getitem__(self, key: int | str) -> Any:
        return self._values[key if isinstance(key, int) else self._names[key]]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


def _plain_number(value: Any) -> Any:
    # sum() and avg() of integer columns come back as numeric (Decimal): not JSON-able.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _row_factory(cursor: Any) -> Any:
    names = {column.name: index for index, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(names, values)

    return make


class PgCursor:
    """What :meth:`PostgresBackend.transaction` hands out: sqlite3-style execute calls."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self._connection.cursor(row_factory=_row_factory)
        cursor.execute(_pg_sql(sql), _pg_params(params))
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(_pg_sql(sql), [_pg_params(row) for row in rows])


class PostgresBackend(SqlDialect):
    """A PostgreSQL database reached by URL; reconnects when the server comes back."""

    #: A server store is never opened read-only here (its grants decide).
    read_only = False
    kind = "postgresql"

    def __init__(self, url: str, *, bound_s: float | None = None) -> None:
        try:
            import psycopg  # an optional dependency, imported where used

            from . import pgwire
        except ImportError as exc:
            msg = (
                f"store {redact(url)!r} needs PostgreSQL support:"
                " pip install 'pytest-kari-debug[postgres]'"
            )
            raise StoreError(msg) from exc
        self._psycopg = psycopg
        self._pgwire = pgwire
        self.url = url
        self.label = redact(url)
        #: Seconds any wait for the server lasts at most (``None``: no bound).
        self.bound_s = bound_s
        self.lock = threading.RLock()
        self._connection: Any = None
        self._pending: Any = None  # the connection's PendingWrites
        self._connect()

    def _connect(self) -> Any:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        bound = self.bound_s
        keepalive = {} if bound is None else _keepalive_params(bound)
        try:
            connection = self._pgwire.BoundedConnection.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                application_name="pytest-kari-debug", **keepalive,
            )  # fmt: skip
            connection.bound_s = bound
            if bound is not None:
                # The server ends a statement (a lock held elsewhere, say) before the client
                # gives up on it: an error that leaves the connection usable.
                server_ms = str(int(bound * SERVER_SHARE_OF_BOUND * 1000))
                connection.execute(
                    "SELECT set_config('statement_timeout', %s, false),"
                    " set_config('lock_timeout', %s, false)",
                    (server_ms, server_ms),
                )
        except Exception as exc:
            if not (_is_driver_error(exc) or isinstance(exc, self._pgwire.WriteFailed)):
                raise
            raise self._error("cannot connect to", exc) from None
        self._connection = connection
        self._pending = self._pgwire.PendingWrites(connection)
        return connection

    def _error(self, doing: str, exc: BaseException) -> StoreError:
        text = " ".join(str(exc).split()) or type(exc).__name__
        kind = StoreTimeoutError if isinstance(exc, self._pgwire.NoAnswer) else StoreError
        return kind(f"{doing} store {self.label!r}: {redact_text(text, self.url)}")

    @contextmanager
    def _guarded(self, doing: str) -> Iterator[Any]:
        with self.lock:
            connection = self._connect()
            try:
                if self._pending.pending:
                    self._settle(None)
                yield connection
            except self._pgwire.WriteFailed as exc:
                if isinstance(exc, self._pgwire.NoAnswer) or self._lost():
                    connection.close()  # an answer may still come: the connection is unusable
                raise self._error(doing, exc) from None
            except Exception as exc:
                if not _is_driver_error(exc):
                    raise
                if type(exc).__name__ == "OperationalError" or self._lost():
                    connection.close()
                if getattr(exc, "sqlstate", None) in self._pgwire.SERVER_TIMEOUTS:
                    raise self._error(doing, self._pgwire.NoAnswer(str(exc))) from None
                raise self._error(doing, exc) from None

    def send(self, transactions: Sequence[Sequence[tuple[str, Sequence[Any]]]]) -> None:
        """Send *transactions* (each a list of the store's SQL and parameters), each committed
        or rolled back by itself, without waiting for the server; :meth:`settle` reads the
        results (any other use of the connection does first)."""
        encoded = self._pgwire.encoded
        with self.lock:
            self._connect()
            try:
                for statements in transactions:
                    self._pending.send(
                        (_pg_numbered(sql), [encoded(_pg_value(value)) for value in params])
                        for sql, params in statements
                    )
            except self._pgwire.WriteFailed as exc:
                self._connection.close()
                raise self._error("cannot write to", exc) from None

    def settle(self, timeout: float | None) -> None:
        """Wait for the result of every transaction sent (*timeout* seconds at most,
        ``None``: the connection's bound); raise :class:`RefusedWrites` if the server refused
        some (and nothing else failed), :class:`StoreError` if one failed (rolled back
        whole; the others are committed), :class:`StoreTimeoutError` if the server did not
        answer in time."""
        with self.lock:
            if self._pending is None or not self._pending.pending:
                return
            try:
                self._settle(timeout)
            except self._pgwire.WriteFailed as exc:
                if isinstance(exc, self._pgwire.NoAnswer) or self._lost():
                    self._connection.close()
                elif exc.refused and len(exc.refused) == exc.failed:
                    reasons = {i: redact_text(text, self.url) for i, text in exc.refused.items()}
                    raise RefusedWrites(str(self._error("cannot write to", exc)), reasons) from None
                raise self._error("cannot write to", exc) from None

    def _lost(self) -> bool:
        """Whether the connection is gone (rather than a statement on it failed)."""
        connection = self._connection
        return bool(connection.broken or connection.pgconn.status != _CONNECTION_OK)

    def _settle(self, timeout: float | None) -> None:
        wait = self.bound_s if timeout is None else timeout
        self._pending.settle(None if wait is None else time.monotonic() + wait)

    @contextmanager
    def transaction(self) -> Iterator[PgCursor]:
        with self._guarded("cannot write to") as connection, connection.transaction():
            yield PgCursor(connection)

    @contextmanager
    def statement(self) -> Iterator[PgCursor]:
        """The connection outside a transaction: a statement commits by itself, in one round
        trip to the server (a transaction adds two: BEGIN and COMMIT)."""
        with self._guarded("cannot write to") as connection:
            yield PgCursor(connection)

    def insert_alone(self, sql: str, params: Sequence[Any]) -> int:
        """Insert one row by a statement that commits by itself: one round trip. Its id."""
        with self.statement() as db:
            return self.inserted_id(db, sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[PgRow]:
        with (
            self._guarded("cannot read") as connection,
            connection.cursor(row_factory=_row_factory) as cursor,
        ):
            cursor.execute(_pg_sql(sql), _pg_params(params))
            return cursor.fetchall() if cursor.description else []

    def insert(self, sql: str, params: Sequence[Any]) -> int:
        with self.transaction() as db:
            return self.inserted_id(db, sql, params)

    @staticmethod
    def inserted_id(db: PgCursor, sql: str, params: Sequence[Any]) -> int:
        return int(db.execute(sql + " RETURNING id", params).fetchone()[0])

    def schema_version(self) -> int:
        rows = self.query("SELECT to_regclass('meta') IS NOT NULL")
        if not rows[0][0]:
            return 0
        rows = self.query("SELECT value FROM meta WHERE key='schema_version'")
        return int(rows[0][0]) if rows else 0

    def migrate(self, migrations: Sequence[str]) -> None:
        """Apply the missing *migrations* in one transaction, one migrating process at a time."""
        with self.transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            exists = db.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]
            row = (
                db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if exists
                else None
            )
            version = int(row[0]) if row else 0
            if version > len(migrations):
                _refuse_newer(self.label, version, len(migrations))
            if version < len(migrations):
                # A large store's migration may take long: bounded by its own, longer limit.
                db.execute("SET LOCAL statement_timeout = 0")
                connection, bound = self._connection, self.bound_s
                connection.bound_s = None if bound is None else max(bound, MIGRATION_BOUND_S)
                try:
                    _apply(db.execute, version, migrations, _postgres_ddl)
                finally:
                    connection.bound_s = bound

    def size_bytes(self) -> int:
        return int(self.query("SELECT pg_database_size(current_database())")[0][0])

    def integrity(self) -> str:
        self.query("SELECT 1")
        return "ok"

    def reclaim_space(self, pages: int | None) -> None:
        """PostgreSQL's autovacuum reuses the space of deleted rows; nothing to do here."""

    def checkpoint_in_background(self, *contexts: Any) -> None:
        """The server writes its files itself; nothing to do here."""

    checkpoint_problem: str | None = None

    def close(self) -> None:
        with self.lock:
            if self._connection is not None:
                self._connection.close()
                self._pending.pending = 0

    # Dialect ----------------------------------------------------------------------------
    SPELLING = {
        "json_text": "({column}::json #>> ?)",
        "json_value": "({column}::json #> '{braced}')::text",
        "json_array_length": (
            "CASE WHEN json_typeof({column}::json #> '{braced}') = 'array'"
            " THEN json_array_length({column}::json #> '{braced}') END"
        ),
        "is_array": "json_typeof({column}::json #> '{braced}') = 'array'",
        "elements": "json_array_elements({column}::json #> '{braced}') AS e",
        "element_text": "e ->> '{field}'",
        "element_tagged": "(e #>> '{{tags,{tag}}}') = 'true'",
        "greatest": "GREATEST", "least": "LEAST", "position": "strpos", "join_text": "string_agg",
    }  # fmt: skip

    @staticmethod
    def json_path(field: str) -> list[str]:
        return field.split(".")


def _is_driver_error(exc: BaseException) -> bool:
    # By module, not class: a psycopg imported again (as pytester's in-process runs do) has
    # new classes while its compiled part still raises the first import's.
    return type(exc).__module__.split(".")[0] == "psycopg"


def redact_text(text: str, url: str) -> str:
    """*text* (a driver's message) without the password of *url*."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text


def open_backend(
    location: StoreLocation, *, create: bool = True, bound_s: float | None = None
) -> SQLiteBackend | PostgresBackend:
    """The backend of *location*: a ``postgresql://`` URL or a SQLite file path. A server's
    every wait ends after *bound_s* seconds (SQLite waits for a lock 10 s at most)."""
    if is_url(location):
        return PostgresBackend(str(parse_location(str(location))), bound_s=bound_s)
    return SQLiteBackend(Path(location), create=create)


Backend = SQLiteBackend | PostgresBackend
