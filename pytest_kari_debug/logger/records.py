"""Log records, log levels and timestamps."""

from __future__ import annotations

import datetime as _dt
import math
from operator import itemgetter
from typing import Any

from ..context import SessionInfo
from ..exceptions import ConfigurationError
from ..model import DROP_MARKER_ORIGIN, LOG_LEVEL_ALIASES, LOG_LEVEL_NAMES, LOG_LEVELS
from .correlation import LogContext

LEVELS = {name: LOG_LEVELS[name.lower()] for name in LOG_LEVEL_NAMES}
LEVEL_NAMES = {number: name for name, number in LEVELS.items()}
#: Accepted spellings of level names beyond the canonical five.
_LEVEL_ALIASES = LOG_LEVEL_ALIASES


#: Origin of the records logged through a Kari logger (stdlib records are ORIGIN_STDLIB).
ORIGIN_KARI = "kari"
ORIGIN_STDLIB = "stdlib"


# Records ---------------------------------------------------------------------------------
_R_TS, _R_LEVEL, _R_MESSAGE, _R_NAME, _R_EXT, _R_SESSION, _R_CONTEXT = range(7)
_R_THREAD, _R_TASK, _R_FIELDS, _R_EXCEPTION, _R_ORIGIN, _R_SEQ = range(7, 13)


class LogRecord(tuple):  # type: ignore[type-arg]
    """One structured log record (immutable).

    A tuple underneath so that making one costs a single allocation; read it through its
    attributes or :meth:`to_dict`.
    """

    __slots__ = ()

    ts: float = property(itemgetter(_R_TS))  # type: ignore[assignment]
    level: str = property(itemgetter(_R_LEVEL))  # type: ignore[assignment]
    message: str = property(itemgetter(_R_MESSAGE))  # type: ignore[assignment]
    name: str = property(itemgetter(_R_NAME))  # type: ignore[assignment]
    extension_id: str = property(itemgetter(_R_EXT))  # type: ignore[assignment]
    session: SessionInfo | None = property(itemgetter(_R_SESSION))  # type: ignore[assignment]
    context: LogContext = property(itemgetter(_R_CONTEXT))  # type: ignore[assignment]
    thread: str = property(itemgetter(_R_THREAD))  # type: ignore[assignment]
    task: str | None = property(itemgetter(_R_TASK))  # type: ignore[assignment]
    fields: dict[str, Any] = property(itemgetter(_R_FIELDS))  # type: ignore[assignment]
    exception: dict[str, str] | None = property(itemgetter(_R_EXCEPTION))  # type: ignore[assignment]
    origin: str = property(itemgetter(_R_ORIGIN))  # type: ignore[assignment]
    seq: int = property(itemgetter(_R_SEQ))  # type: ignore[assignment]

    @property
    def logger(self) -> str:
        """The logger name (same as :attr:`name`)."""
        return self[_R_NAME]  # type: ignore[no-any-return]

    @property
    def levelno(self) -> int:
        return LEVELS[self[_R_LEVEL]]

    @property
    def session_id(self) -> str | None:
        session = self[_R_SESSION]
        return None if session is None else session.session_id

    @property
    def test(self) -> str | None:
        """The name of the debug session (a test's node id under pytest)."""
        session = self[_R_SESSION]
        return None if session is None else session.name

    @property
    def correlation_id(self) -> str | None:
        return self[_R_CONTEXT].correlation_id  # type: ignore[no-any-return]

    @property
    def user_id(self) -> str | None:
        return self[_R_CONTEXT].user_id  # type: ignore[no-any-return]

    @property
    def tenant_id(self) -> str | None:
        return self[_R_CONTEXT].tenant_id  # type: ignore[no-any-return]

    @property
    def timestamp(self) -> str:
        """The record's time as ISO 8601 in UTC."""
        return iso_utc(self[_R_TS])

    def get(self, key: str, default: Any = None) -> Any:
        """Read a key of :meth:`to_dict` without building the whole dict."""
        if key in _RECORD_KEYS:
            return getattr(self, key)
        return default

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-able data (the ``logging`` data contract)."""
        # One unpacking: every record of every test passes here at its session's end.
        ts, level, message, name, ext, session, context, thread, task, fields, exc, origin, seq = (
            self
        )
        return {
            "ts": ts,
            "timestamp": iso_utc(ts),
            "level": level,
            "message": message,
            "name": name,
            "extension_id": ext,
            "session_id": None if session is None else session.session_id,
            "test": None if session is None else session.name,
            "correlation_id": context.correlation_id,
            "user_id": context.user_id,
            "tenant_id": context.tenant_id,
            "thread": thread,
            "task": task,
            "fields": fields,
            "exception": exc,
            "origin": origin,
            "seq": seq,
        }

    def __repr__(self) -> str:
        return f"<LogRecord {self[_R_LEVEL]} {self[_R_NAME]!r} {self[_R_MESSAGE][:80]!r}>"


_RECORD_KEYS = frozenset(
    {"ts", "timestamp", "level", "message", "name", "logger", "extension_id", "session_id",
     "test", "correlation_id", "user_id", "tenant_id", "thread", "task", "fields", "exception",
     "origin", "seq"}
)  # fmt: skip
_new_record = tuple.__new__
#: Logger name of the records the plugin itself writes into a test's logs.
DROP_LOGGER_NAME = "kari.debug"
_NO_CONTEXT = LogContext()


def drop_marker_record(
    ts: float, extension_id: str, session: SessionInfo, dropped: int, message: str
) -> LogRecord:
    """The WARNING record standing where *dropped* of *session*'s records were not kept."""
    fields = {"event": "log_records_dropped", "dropped": dropped}
    return _new_record(
        LogRecord,
        (ts, "WARNING", message, DROP_LOGGER_NAME, extension_id, session, _NO_CONTEXT, None,
         None, fields, None, DROP_MARKER_ORIGIN, None),
    )  # fmt: skip


#: The last whole second :func:`iso_utc` wrote and its text up to the seconds: records come
#: in bursts within one second, and ``strftime`` costs more than the rest of a record's dict.
_LAST_SECOND: tuple[float, str] = (math.nan, "")


def iso_utc(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC text with microseconds and a ``Z``."""
    global _LAST_SECOND
    try:
        # Microseconds rounded half to even, as datetime.fromtimestamp rounds them.
        fraction, whole = math.modf(ts)
        micros = round(fraction * 1e6)
        if micros >= 1_000_000:
            whole, micros = whole + 1.0, micros - 1_000_000
        elif micros < 0:
            whole, micros = whole - 1.0, micros + 1_000_000
        last = _LAST_SECOND  # one read: another thread may replace it meanwhile
        if last[0] != whole:
            moment = _dt.datetime.fromtimestamp(whole, tz=_dt.timezone.utc)
            last = _LAST_SECOND = (whole, moment.strftime("%Y-%m-%dT%H:%M:%S."))
    except (OverflowError, OSError, ValueError, TypeError):
        return ""
    return f"{last[1]}{micros:06d}Z"


def level_number(level: str | int) -> int:
    """The number of a level name (any case, ``WARN``/``FATAL`` accepted) or level number."""
    if isinstance(level, bool):
        pass
    elif isinstance(level, int):
        return level
    elif isinstance(level, str):
        name = level.strip().upper()
        name = _LEVEL_ALIASES.get(name, name)
        if name in LEVELS:
            return LEVELS[name]
    msg = f"unknown log level {level!r}; accepted: {', '.join(LEVELS)} (any case) or a number"
    raise ConfigurationError(msg)


def level_name(levelno: int) -> str:
    """The canonical name of the highest standard level at or below *levelno*."""
    if levelno >= 50:
        return "CRITICAL"
    if levelno >= 40:
        return "ERROR"
    if levelno >= 30:
        return "WARNING"
    if levelno >= 20:
        return "INFO"
    return "DEBUG"
