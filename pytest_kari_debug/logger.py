"""``ExtensionLogger``: structured, context-aware, redacted and bounded log records."""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import json
import logging
import math
import os
import re
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from types import TracebackType
from typing import Any

from .component import Component, export_text
from .context import CURRENT_SESSION, SessionInfo
from .exceptions import ConfigurationError
from .model import DROP_MARKER_ORIGIN
from .scrub import DEFAULT_SCRUBBER, TextScrubber, scrubber_for
from .values import (
    MAX_DEPTH,
    MAX_TEXT_LENGTH,
    ValueSerializer,
    bounded_call,
    clean_text,
    in_bounded_call,
    plain,
    safe_repr,
    safe_str,
)

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
LEVEL_NAMES = {number: name for name, number in LEVELS.items()}
#: Accepted spellings of level names beyond the canonical five.
_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}

REDACTED = "[REDACTED]"
#: Name of the extra record made for drops in exports (see exporters/logs_export.py).
ORIGIN_KARI = "kari"
ORIGIN_STDLIB = "stdlib"


# Context ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogContext:
    """The correlation, user and tenant ids current in one thread or asyncio task."""

    correlation_id: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None


_EMPTY_CONTEXT = LogContext()
_LOG_CONTEXT: ContextVar[LogContext] = ContextVar("kari_log_context", default=_EMPTY_CONTEXT)


def current_log_context() -> LogContext:
    """The correlation/user/tenant context current in this thread or task."""
    return _LOG_CONTEXT.get()


def current_correlation_id() -> str | None:
    """The correlation id current in this thread or task, or ``None``."""
    return _LOG_CONTEXT.get().correlation_id


class _ContextBinding:
    """A ``with`` / ``async with`` block in which the log context is replaced."""

    __slots__ = ("_change", "_token", "value")

    def __init__(self, change: Callable[[LogContext], LogContext], yielded: Any) -> None:
        self._change = change
        self.value = yielded
        self._token: Token[LogContext] | None = None

    def __enter__(self) -> Any:
        self._token = _LOG_CONTEXT.set(self._change(_LOG_CONTEXT.get()))
        return self.value

    def __exit__(self, *exc: object) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            _LOG_CONTEXT.reset(token)
        except ValueError:  # left from another context than it was entered in
            old = token.old_value
            _LOG_CONTEXT.set(_EMPTY_CONTEXT if old is Token.MISSING else old)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


def correlation_context(correlation_id: str | None = None) -> _ContextBinding:
    """Tag records made inside the block with *correlation_id* (a fresh uuid4 hex if None).

    Usable as ``with`` and ``async with``; nestable; restored on exit; each thread and
    asyncio task sees only its own value.
    """
    if correlation_id is None:
        correlation_id = uuid.uuid4().hex
    elif not isinstance(correlation_id, str) or not correlation_id:
        msg = f"correlation_id must be a non-empty string or None, got {correlation_id!r}"
        raise ConfigurationError(msg)
    cid = correlation_id
    return _ContextBinding(lambda old: LogContext(cid, old.user_id, old.tenant_id), cid)


def user_context(user_id: str, tenant_id: str | None = None) -> _ContextBinding:
    """Tag records made inside the block with *user_id* and *tenant_id*."""
    if not isinstance(user_id, str) or not user_id:
        msg = f"user_id must be a non-empty string, got {user_id!r}"
        raise ConfigurationError(msg)
    if tenant_id is not None and not isinstance(tenant_id, str):
        msg = f"tenant_id must be a string or None, got {tenant_id!r}"
        raise ConfigurationError(msg)
    return _ContextBinding(lambda old: LogContext(old.correlation_id, user_id, tenant_id), None)


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
        session = self[_R_SESSION]
        context = self[_R_CONTEXT]
        return {
            "ts": self[_R_TS],
            "timestamp": iso_utc(self[_R_TS]),
            "level": self[_R_LEVEL],
            "message": self[_R_MESSAGE],
            "name": self[_R_NAME],
            "extension_id": self[_R_EXT],
            "session_id": None if session is None else session.session_id,
            "test": None if session is None else session.name,
            "correlation_id": context.correlation_id,
            "user_id": context.user_id,
            "tenant_id": context.tenant_id,
            "thread": self[_R_THREAD],
            "task": self[_R_TASK],
            "fields": self[_R_FIELDS],
            "exception": self[_R_EXCEPTION],
            "origin": self[_R_ORIGIN],
            "seq": self[_R_SEQ],
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


def iso_utc(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC text with microseconds and a ``Z``."""
    try:
        moment = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError, TypeError):
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


# Sanitising ------------------------------------------------------------------------------
_INT_MIN, _INT_MAX = -(2**63), 2**64
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")


def normalise_field_name(name: str) -> str:
    """``X-Api-Key`` / ``apiKey`` / ``API_KEY`` -> ``x_api_key`` / ``api_key`` / ``api_key``."""
    return _CAMEL.sub(r"\1_\2", name).lower().replace("-", "_").replace(" ", "_")


class Redactor(ValueSerializer):
    """The serializer of log fields: redacts secret-named fields (nested too), secrets in
    URLs and secrets in text; cuts what is unbounded.

    A field is secret when its normalised name (camelCase and dashes become ``_``, lower
    case) equals one of *names* or ends with ``_<name>``: ``password``, ``db_password``,
    ``X-Api-Key`` and ``accessToken`` match ``password``, ``api_key`` and ``token``;
    ``max_tokens`` does not.
    """

    def __init__(
        self,
        names: Iterable[str],
        *,
        max_repr_length: int = 2000,
        scrubber: TextScrubber | None = None,
    ) -> None:
        self.scrubber = scrubber or DEFAULT_SCRUBBER
        super().__init__(max_repr_length=max_repr_length, text_filter=self.scrub_text)
        self.names = frozenset(normalise_field_name(n) for n in names if n)
        self.suffixes = tuple("_" + n for n in self.names)
        self._secret_keys: dict[str, bool] = {}

    def is_secret(self, key: str) -> bool:
        """Whether field *key* holds a secret."""
        known = self._secret_keys.get(key)
        if known is None:
            name = normalise_field_name(key)
            known = name in self.names or name.endswith(self.suffixes)
            if len(self._secret_keys) < 10_000:
                self._secret_keys[key] = known
        return known

    def scrub_text(self, text: str) -> str:
        """*text* without URL userinfo, secret query values and secrets the scrubber finds."""
        if "://" in text:
            text = self.url_text(text)
        return self.scrubber.scrub(text)

    def kept_key(self, key: Any) -> bool:
        """Whether field *key* is kept as it is: a known name that is not secret."""
        return self._secret_keys.get(key) is False

    # The hot path (the base class's, inlined): a fresh kwargs dict of plain values is kept.
    def fields(self, fields: Mapping[Any, Any]) -> dict[str, Any]:
        """Return *fields* safe to store: redacted, JSON-able, bounded."""
        if type(fields) is not dict:
            return self.mapping(fields)
        secret = self._secret_keys
        scrubber = self.scrubber
        clean = scrubber.known_clean
        for key, value in fields.items():
            if secret.get(key) is not False:
                return self.mapping(fields)
            kind = type(value)
            if kind is str:
                if value not in clean and (
                    len(value) > MAX_TEXT_LENGTH
                    or "://" in value
                    or not value.isascii()
                    or scrubber.maybe_secret(value)
                ):
                    return self.mapping(fields)
            elif kind is int:
                if not _INT_MIN <= value < _INT_MAX:
                    return self.mapping(fields)
            elif kind is float:
                if not math.isfinite(value):
                    return self.mapping(fields)
            elif kind is not bool and value is not None:
                return self.mapping(fields)
        return fields

    def field(self, key: str, value: Any, depth: int, seen: set[int]) -> Any:
        """A secret-named field's value is :data:`REDACTED`; others are serialized."""
        return REDACTED if self.is_secret(key) else self.value(value, depth + 1, seen)

    def url_text(self, text: str) -> str:
        """*text* with every URL's userinfo removed and its secret query values redacted."""
        if "://" not in text:
            return text
        return _URL.sub(lambda match: self.url(match.group(0)), text)

    def url(self, url: str) -> str:
        """One URL without userinfo and with the values of secret query keys redacted."""
        scheme, sep, rest = url.partition("://")
        if not sep:
            return url
        end = len(rest)
        for stop in "/?#":
            found = rest.find(stop)
            if found != -1:
                end = min(end, found)
        authority, tail = rest[:end], rest[end:]
        if "@" in authority:
            authority = authority.rpartition("@")[2]
        path, qmark, query = tail.partition("?")
        fragment = ""
        if qmark:
            query, hashmark, frag = query.partition("#")
            fragment = hashmark + frag
            parts = []
            for pair in query.split("&"):
                key, eq, _value = pair.partition("=")
                if eq and self.is_secret(_unquote(key)):
                    parts.append(f"{key}={REDACTED}")
                else:
                    parts.append(pair)
            query = "&".join(parts)
        return f"{scheme}://{authority}{path}{qmark}{query}{fragment}"


def _unquote(text: str) -> str:
    from urllib.parse import unquote_plus

    try:
        return unquote_plus(text)
    except Exception:
        return text


def _stdlib_message(record: logging.LogRecord) -> Any:
    """``record.getMessage()``; bounded in time when its arguments are not plain values."""
    args = record.args
    if plain(record.msg) and (
        not args or (type(args) is tuple and all(plain(arg) for arg in args))
    ):
        return record.getMessage()
    return bounded_call(logging.LogRecord.getMessage, record)


def exception_info(
    exc_info: Any, *, limit: int | None = None, scrubber: TextScrubber = DEFAULT_SCRUBBER
) -> dict[str, str] | None:
    """``{type, message, traceback}`` of an exception, an ``exc_info`` tuple or ``True``;
    secrets in the message and traceback are scrubbed."""
    if exc_info is None or exc_info is False:
        return None
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[1] is None:
        return None
    kind, value, tb = exc_info
    try:
        name = kind.__qualname__
        module = getattr(kind, "__module__", "builtins")
        if module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
    except Exception:
        name = "Exception"
    try:
        job = (kind, value, tb, limit)
        chained = value.__cause__ is not None or value.__context__ is not None
        if plain(value) and not chained:
            text = "".join(_format_exception(job))
        else:
            text = "".join(bounded_call(_format_exception, job, 2.0))
    except Exception as exc:  # a broken or slow __str__ inside the chain, say
        text = f"<traceback unavailable: {type(exc).__name__}: {exc}>"
    return {
        "type": clean_text(name, 500),
        "message": scrubber.scrub(safe_str(value)),
        "traceback": scrubber.scrub(clean_text(text)),
    }


def _format_exception(args: tuple[Any, Any, Any, int | None]) -> list[str]:
    kind, value, tb, limit = args
    return traceback.format_exception(kind, value, tb, limit=limit)


# Routing stdlib records ------------------------------------------------------------------
#: The logger of every open debug session, for records of stdlib loggers.
_SESSION_LOGGERS: dict[str, ExtensionLogger] = {}
_STDLIB_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName", "stack_info"}
)
#: How many attributes LogRecord.__init__ sets; extra fields come after them.
_STDLIB_BASE = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_in_capture = threading.local()


class KariLogHandler(logging.Handler):
    """A stdlib handler that files each record with the logger of the current debug session.

    Records emitted outside any debug session are ignored, unless a fallback session is
    set (the plugin sets the running test's, so threads started without a copied context
    are attributed too) or the handler was made for one *target* logger.
    """

    def __init__(self, target: ExtensionLogger | None = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.target = target
        self.fallback: SessionInfo | None = None
        #: Threads that outlived the test they were started in, and where their records go
        #: (never to a later test): set by the plugin.
        self.strays: weakref.WeakKeyDictionary[threading.Thread, str] = weakref.WeakKeyDictionary()
        self.unowned: Callable[[logging.LogRecord, str], None] | None = None

    def handle(self, record: logging.LogRecord) -> bool:
        """Filter and emit without the handler lock: emit is thread-safe on its own."""
        if self.filters and not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(_in_capture, "active", False) or in_bounded_call():
            return  # a record made while converting one (a __repr__ that logs): skip it
        session = CURRENT_SESSION.get()
        if session is None:
            session = self.fallback
            if self.strays:
                born_in = self.strays.get(_current_thread())
                if born_in is not None:  # a thread outliving its test: not this test's record
                    if self.unowned is not None:
                        self.unowned(record, born_in)
                    return
        logger = self.target
        if logger is None:
            if session is None:
                return
            logger = _SESSION_LOGGERS.get(session.session_id)
            if logger is None:
                return
        _in_capture.active = True
        try:
            logger.ingest_stdlib(record, session)
        finally:
            _in_capture.active = False

    def handleError(self, record: logging.LogRecord) -> None:
        """Never print to stderr from inside the user's logging: the logger keeps a diagnostic."""


# The logger ------------------------------------------------------------------------------
OnError = Callable[[BaseException, dict[str, Any]], Any]


class ExtensionLogger(Component):
    """Structured logger of one extension; records land in a bounded, per-session buffer.

    ``debug/info/warning/error/critical(message, **fields)`` record the message with its
    fields, the current debug session, correlation/user/tenant context, thread and asyncio
    task. Secret fields are redacted before the record is kept; unusual values are reduced
    to bounded JSON-able data. A log call never raises because of its arguments.

    *metrics* (a :class:`~pytest_kari_debug.metrics.MetricsCollector`) receives the figures
    of the structured helpers; *on_error* is called with ``(exception, context)`` for every
    ERROR or CRITICAL record that carries an exception (the manager wires the error tracker).
    """

    kind = "logging"
    limit_field = "max_log_entries"

    def __init__(
        self,
        *args: Any,
        metrics: Any = None,
        on_error: OnError | None = None,
        **kwargs: Any,
    ) -> None:
        self._min_level = 100
        super().__init__(*args, **kwargs)
        self.name = f"kari.{self.extension_id}"
        self.metrics = metrics
        self.on_error = on_error
        cfg = self.configuration
        self.redactor = Redactor(
            cfg.redact_fields,
            max_repr_length=cfg.max_repr_length,
            scrubber=scrubber_for(cfg.redact_patterns),
        )
        self._scrub = self.redactor.scrub_text
        self._known_clean = self.redactor.scrubber.known_clean
        self._level = level_number(cfg.log_level)
        self._min_level = self._level if self.enabled else 100
        self._seq = itertools.count(1)
        self._append = self.records.append
        # A negative limit keeps the innermost frames, where the error happened.
        self._stack_limit = -cfg.max_stack_frames if cfg.max_stack_frames else None

    # Level and switch ------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = bool(value)
        self._min_level = getattr(self, "_level", 10) if value else 100

    @property
    def level(self) -> str:
        """The lowest level recorded."""
        return level_name(self._level)

    def set_level(self, level: str | int) -> None:
        """Record from *level* up (a name in any case, or a number)."""
        self._level = level_number(level)
        if self._enabled:
            self._min_level = self._level

    def is_enabled_for(self, level: str | int) -> bool:
        """Whether a record at *level* would be kept."""
        return level_number(level) >= self._min_level

    # Recording -------------------------------------------------------------------------
    def _emit(
        self, levelno: int, message: Any, fields: dict[str, Any], exc_info: Any
    ) -> LogRecord | None:
        try:
            if type(message) is not str:
                message = safe_str(message)
            elif len(message) > MAX_TEXT_LENGTH or not message.isascii():
                message = clean_text(message)
            if message not in self._known_clean:
                message = self._scrub(message)
            if fields:
                fields = self.redactor.fields(fields)
            exception = exc = None
            if exc_info is not None or levelno >= 40:
                exception, exc = self._exception(exc_info)
            session = CURRENT_SESSION.get()
            loop = _get_running_loop()
            record: LogRecord = _new_record(
                LogRecord,
                (
                    time.time(),
                    LEVEL_NAMES.get(levelno) or level_name(levelno),
                    message,
                    self.name,
                    self.extension_id,
                    session,
                    _LOG_CONTEXT.get(),
                    _current_thread().name,
                    None if loop is None else _task_name(loop),
                    fields,
                    exception,
                    ORIGIN_KARI,
                    next(self._seq),
                ),
            )
            self._append(record, None if session is None else session.session_id)
            if exception is not None and levelno >= 40 and self.on_error is not None:
                self._report_error(exc, record)
            return record
        except Exception as problem:  # a log call never raises into the extension
            self.add_diagnostic(f"log record dropped: {type(problem).__name__}: {problem}")
            return None

    def _exception(self, exc_info: Any) -> tuple[dict[str, str] | None, BaseException | None]:
        if exc_info is None:  # ERROR/CRITICAL inside an ``except`` block
            exc_info = sys.exc_info()
            if exc_info[1] is None:
                return None, None
        elif exc_info is True:
            exc_info = sys.exc_info()
        info = exception_info(exc_info, limit=self._stack_limit, scrubber=self.redactor.scrubber)
        if info is None:
            return None, None
        exc = exc_info if isinstance(exc_info, BaseException) else exc_info[1]
        return info, exc

    def _report_error(self, exc: BaseException | None, record: LogRecord) -> None:
        if exc is None or self.on_error is None:
            return
        context = {
            "source": "log",
            "logger": record.name,
            "message": record.message,
            "level": record.level,
            "origin": record.origin,
        }
        for key in ("correlation_id", "user_id", "tenant_id"):
            value = getattr(record, key)
            if value is not None:
                context[key] = value
        try:
            self.on_error(exc, context)
        except Exception as problem:
            self.add_diagnostic(f"on_error hook raised {type(problem).__name__}: {problem}")

    def log(self, level: str | int, message: Any, *, exc_info: Any = None, **fields: Any) -> None:
        """Record *message* at *level* (name or number) with structured *fields*."""
        levelno = level_number(level)
        if levelno >= self._min_level:
            self._emit(levelno, message, fields, exc_info)

    def debug(self, message: Any, /, *, exc_info: Any = None, **fields: Any) -> None:
        """Record at DEBUG."""
        if self._min_level <= 10:
            self._emit(10, message, fields, exc_info)

    def info(self, message: Any, /, *, exc_info: Any = None, **fields: Any) -> None:
        """Record at INFO."""
        if self._min_level <= 20:
            self._emit(20, message, fields, exc_info)

    def warning(self, message: Any, /, *, exc_info: Any = None, **fields: Any) -> None:
        """Record at WARNING."""
        if self._min_level <= 30:
            self._emit(30, message, fields, exc_info)

    warn = warning

    def error(self, message: Any, /, *, exc_info: Any = None, **fields: Any) -> None:
        """Record at ERROR; inside an ``except`` block the exception is attached."""
        if self._min_level <= 40:
            self._emit(40, message, fields, exc_info)

    def exception(self, message: Any, /, *, exc_info: Any = True, **fields: Any) -> None:
        """Record at ERROR with the exception being handled (as ``logging.exception``)."""
        if self._min_level <= 40:
            self._emit(40, message, fields, exc_info)

    def critical(self, message: Any, /, *, exc_info: Any = None, **fields: Any) -> None:
        """Record at CRITICAL; inside an ``except`` block the exception is attached."""
        if self._min_level <= 50:
            self._emit(50, message, fields, exc_info)

    # stdlib ------------------------------------------------------------------------------
    def ingest_stdlib(self, record: logging.LogRecord, session: SessionInfo | None = None) -> None:
        """File one stdlib ``logging`` record (with its ``extra`` fields) in this logger."""
        levelno = record.levelno
        if levelno < self._min_level:
            return
        try:
            try:
                message = _stdlib_message(record)
            except Exception as exc:
                message = (
                    f"{safe_repr(record.msg, self.redactor.max_repr_length)} % "
                    f"{safe_repr(record.args, self.redactor.max_repr_length)}"
                    f" [formatting failed: {type(exc).__name__}]"
                )
            message = clean_text(message) if isinstance(message, str) else safe_str(message)
            message = self.redactor.scrub_text(message)
            attributes = record.__dict__
            fields: dict[str, Any] = {}
            if len(attributes) > _STDLIB_BASE:
                # ``extra`` keys are set after LogRecord.__init__: look past its attributes only.
                extra = {
                    key: attributes[key]
                    for key in islice(attributes, _STDLIB_BASE, None)
                    if key not in _STDLIB_ATTRS
                }
                if extra:
                    fields = self.redactor.fields(extra)
            exception, exc_value = None, None
            if record.exc_info and record.exc_info[1] is not None:
                exception = exception_info(
                    record.exc_info, limit=self._stack_limit, scrubber=self.redactor.scrubber
                )
                exc_value = record.exc_info[1]
            elif record.exc_text:
                text = self.redactor.text(str(record.exc_text))
                exception = {"type": "", "message": "", "traceback": text}
            task = getattr(record, "taskName", None)
            if task is None:
                loop = _get_running_loop()
                task = None if loop is None else _task_name(loop)
            if session is None:
                session = CURRENT_SESSION.get()
            kept: LogRecord = _new_record(
                LogRecord,
                (
                    record.created,
                    level_name(levelno),
                    message,
                    clean_text(str(record.name), 500),
                    self.extension_id,
                    session,
                    _LOG_CONTEXT.get(),
                    record.threadName or "",
                    task,
                    fields,
                    exception,
                    ORIGIN_STDLIB,
                    next(self._seq),
                ),
            )
            self._append(kept, None if session is None else session.session_id)
            if exception is not None and levelno >= 40:
                self._report_error(exc_value, kept)
        except Exception as problem:
            self.add_diagnostic(f"stdlib record dropped: {type(problem).__name__}: {problem}")

    def capture_stdlib(self, logger: str | logging.Logger = "") -> _StdlibCapture:
        """Within the block, copy records of stdlib logger *logger* (root by default) here.

        Only what the stdlib logger emits is seen: its own level and filters still apply,
        and its handlers (pytest's ``caplog`` and live logging included) are not touched.
        """
        return _StdlibCapture(self, logger)

    # Context ---------------------------------------------------------------------------
    def correlation_context(self, correlation_id: str | None = None) -> _ContextBinding:
        """Tag records made inside the block with *correlation_id* (a fresh one if None).

        ``with logger.correlation_context() as cid:`` yields the id; ``async with`` works too.
        """
        return correlation_context(correlation_id)

    def user_context(self, user_id: str, tenant_id: str | None = None) -> _ContextBinding:
        """Tag records made inside the block with *user_id* and *tenant_id*."""
        return user_context(user_id, tenant_id)

    # Structured helpers ----------------------------------------------------------------
    def log_api_request(
        self, method: str, url: str, status_code: int, duration_ms: float, **fields: Any
    ) -> None:
        """Record an API request: event ``api_request``; ERROR from 500, WARNING from 400.

        The metrics collector receives the duration (``request_time``) and, from status
        400 up, an error ``http_<status>``.
        """
        status = _as_int("log_api_request", "status_code", status_code)
        duration = _as_float("log_api_request", "duration_ms", duration_ms)
        verb = safe_str(method, 32).upper()
        where = self.redactor.url_text(safe_str(url))
        level = 40 if status >= 500 else 30 if status >= 400 else 20
        if level >= self._min_level:
            fields.update(
                event="api_request",
                method=verb,
                url=where,
                status_code=status,
                duration_ms=duration,
                success=status < 400,
            )
            self._emit(level, f"{verb} {where} -> {status} in {duration:.1f}ms", fields, False)
        self._feed_metrics(
            "request_time", duration, "http_" + str(status) if status >= 400 else None
        )

    def log_database_query(
        self, operation: str, table: str, duration_ms: float, rows: int = 0, **fields: Any
    ) -> None:
        """Record a database query: event ``database_query`` at DEBUG.

        The metrics collector receives the duration as ``db_query_time``.
        """
        duration = _as_float("log_database_query", "duration_ms", duration_ms)
        count = _as_int("log_database_query", "rows", rows)
        op = safe_str(operation, 64).upper()
        name = safe_str(table, 256)
        if self._min_level <= 10:
            fields.update(
                event="database_query",
                operation=op,
                table=name,
                duration_ms=duration,
                rows=count,
            )
            self._emit(10, f"{op} {name}: {count} rows in {duration:.1f}ms", fields, False)
        self._feed_metrics("db_query_time", duration, None)

    def log_plugin_execution(
        self, plugin: str, action: str, success: bool, duration_ms: float, **fields: Any
    ) -> None:
        """Record one plugin action: event ``plugin_execution``; INFO, or ERROR on failure.

        The metrics collector receives ``plugin_execution_time`` and, on failure, an error
        ``plugin_failure``.
        """
        duration = _as_float("log_plugin_execution", "duration_ms", duration_ms)
        if not isinstance(success, bool):
            msg = f"log_plugin_execution: success must be True or False, got {success!r}"
            raise ConfigurationError(msg)
        name, act = safe_str(plugin, 256), safe_str(action, 256)
        level = 20 if success else 40
        if level >= self._min_level:
            fields.update(
                event="plugin_execution",
                plugin=name,
                action=act,
                success=success,
                duration_ms=duration,
            )
            outcome = "succeeded" if success else "failed"
            self._emit(level, f"plugin {name}.{act} {outcome} in {duration:.1f}ms", fields, False)
        self._feed_metrics("plugin_execution_time", duration, None if success else "plugin_failure")

    def _feed_metrics(self, name: str, duration_ms: float, error: str | None) -> None:
        metrics = self.metrics
        if metrics is None or not getattr(metrics, "enabled", True):
            return
        try:
            if name == "request_time":
                metrics.record_request_time(duration_ms)
            else:
                metrics.record_metric(name, duration_ms, "ms")
            if error is not None:
                metrics.record_error(error)
        except Exception as problem:
            self.add_diagnostic(f"metrics rejected {name}: {type(problem).__name__}: {problem}")

    # Sessions ----------------------------------------------------------------------------
    def begin_session(self, session: SessionInfo) -> None:
        super().begin_session(session)
        _SESSION_LOGGERS[session.session_id] = self

    def end_session(self, session: SessionInfo) -> dict[str, Any]:
        """The session's records; when it reached ``max_log_entries``, its first and newest
        records with a WARNING marker record where the middle ones were dropped."""
        _SESSION_LOGGERS.pop(session.session_id, None)
        head, tail, dropped = self.records.close_session_parts(session.session_id)
        records = [record.to_dict() for record in head]
        if dropped:
            records.append(self._drop_marker(session, dropped, len(head), len(tail), tail))
        records.extend(record.to_dict() for record in tail)
        return {"records": records, "dropped": dropped}

    def _drop_marker(
        self, session: SessionInfo, dropped: int, first: int, newest: int, tail: list[LogRecord]
    ) -> dict[str, Any]:
        ts = tail[0][_R_TS] if tail else time.time()
        return {
            "ts": ts,
            "timestamp": iso_utc(ts),
            "level": "WARNING",
            "message": (
                f"{dropped} log record(s) dropped here: the test reached max_log_entries="
                f"{self.records.limit}; its first {first} and newest {newest} records are kept"
            ),
            "name": DROP_LOGGER_NAME,
            "extension_id": self.extension_id,
            "session_id": session.session_id,
            "test": session.name,
            "correlation_id": None,
            "user_id": None,
            "tenant_id": None,
            "thread": None,
            "task": None,
            "fields": {"event": "log_records_dropped", "dropped": dropped},
            "exception": None,
            "origin": DROP_MARKER_ORIGIN,
            "seq": None,
        }

    # Reading ---------------------------------------------------------------------------
    def get_logs(
        self,
        *,
        level: str | int | None = None,
        limit: int | None = None,
        session_id: str | None = None,
        **filters: Any,
    ) -> list[LogRecord]:
        """Records matching every filter given, newest first.

        Filters (see :class:`LogQuery`): ``level`` (minimum), ``exact_level``, ``since``,
        ``until``, ``query`` (case-insensitive substring), ``regex``, ``fields`` (equality),
        ``correlation_id``, ``user_id``, ``tenant_id``, ``session_id``, ``test``,
        ``logger_name``, ``origin``, ``after_seq``; then ``offset`` and ``limit``.
        """
        query = LogQuery(level=level, limit=limit, session_id=session_id, **filters)
        return query.apply(reversed(self.records.snapshot()), LogRecord.get)

    def export(
        self, format: str = "json", *, path: str | os.PathLike[str] | None = None, **filters: Any
    ) -> str:
        """The records matching *filters* (those of :meth:`get_logs`), oldest first, as
        ``json`` (the REST API's logs document), ``jsonl`` or ``csv``; with *path*, also
        written there atomically."""
        fields = self.export_fields()
        fields["logs"] = [record.to_dict() for record in reversed(self.get_logs(**filters))]
        fields["logs_dropped"] = self.records.dropped
        fields["overview"]["log_levels"] = self.level_counts()
        return export_text("logs", format, fields, path)

    def search_logs(self, query: str | None = None, **filters: Any) -> list[LogRecord]:
        """Records whose text contains *query* (case-insensitive), newest first; see get_logs."""
        return self.get_logs(query=query, **filters)

    def level_counts(self, session_id: str | None = None) -> dict[str, int]:
        """How many kept records there are per level (of one session, or all)."""
        counts = dict.fromkeys(LEVELS, 0)
        for record in self.records.snapshot():
            if session_id is None or record.session_id == session_id:
                counts[record.level] += 1
        return counts

    def stats(self) -> dict[str, int]:
        data = super().stats()
        data["min_level"] = self._level
        return data


def _as_int(where: str, name: str, value: Any) -> int:
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        return value
    elif isinstance(value, (str, float)):
        try:
            number = float(value)
            if number.is_integer():
                return int(number)
        except (ValueError, OverflowError):
            pass
    msg = f"{where}: {name} must be a whole number, got {value!r}"
    raise ConfigurationError(msg)


def _as_float(where: str, name: str, value: Any) -> float:
    if not isinstance(value, bool):
        try:
            number = float(value)
            if math.isfinite(number):
                return number
        except (TypeError, ValueError, OverflowError):
            pass
    msg = f"{where}: {name} must be a finite number, got {value!r}"
    raise ConfigurationError(msg)


_current_thread = threading.current_thread


def _get_running_loop() -> Any:
    """This thread's running event loop, else ``None``; no loop runs before asyncio is
    imported, so this never imports it."""
    asyncio = sys.modules.get("asyncio")
    return None if asyncio is None else asyncio._get_running_loop()


def _task_name(loop: Any) -> str | None:
    task = sys.modules["asyncio"].current_task(loop)
    return None if task is None else task.get_name()


class _StdlibCapture:
    """Context manager of :meth:`ExtensionLogger.capture_stdlib`."""

    def __init__(self, target: ExtensionLogger, logger: str | logging.Logger) -> None:
        self.logger = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        self.handler = KariLogHandler(target)

    def __enter__(self) -> KariLogHandler:
        self.logger.addHandler(self.handler)
        return self.handler

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.logger.removeHandler(self.handler)


# Filtering ---------------------------------------------------------------------------------
_NO_FIELD = object()


@dataclass(frozen=True)
class LogQuery:
    """A filter over log records (:class:`LogRecord` objects or their dicts).

    ``level``: minimum level; ``exact_level``: only that level; ``since`` / ``until``: epoch
    seconds, ``datetime`` (naive means UTC) or ISO 8601 text, inclusive; ``query``:
    case-insensitive substring of the message, the logger name, the exception or any field
    value; ``regex``: searched in the same text; ``fields``: ``{name: value}`` equality, with
    ``a.b`` reaching into nested fields and text values also matching the field's text form
    (``"500"`` matches ``500``); ``correlation_id``, ``user_id``, ``tenant_id``,
    ``session_id``, ``test`` (session name, a test's node id), ``extension_id``, ``origin``
    (``kari`` or ``stdlib``): equality; ``logger_name``: that logger or its children;
    ``after_seq``: records with a larger ``seq`` (to follow a live logger).
    Results keep the input order (newest first from ExtensionLogger); then ``offset`` and
    ``limit`` apply.
    """

    level: str | int | None = None
    exact_level: str | int | None = None
    since: Any = None
    until: Any = None
    query: str | None = None
    regex: str | None = None
    fields: Mapping[str, Any] | None = None
    correlation_id: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    session_id: str | None = None
    test: str | None = None
    extension_id: str | None = None
    logger_name: str | None = None
    origin: str | None = None
    after_seq: int | None = None
    limit: int | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "_min", None if self.level is None else level_number(self.level))
        set_(
            self,
            "_exact",
            None if self.exact_level is None else level_name(level_number(self.exact_level)),
        )
        set_(self, "_since", None if self.since is None else to_epoch(self.since, "since"))
        set_(self, "_until", None if self.until is None else to_epoch(self.until, "until"))
        if self.query is not None and not isinstance(self.query, str):
            msg = f"query must be text, got {self.query!r}"
            raise ConfigurationError(msg)
        set_(self, "_needle", self.query.casefold() if self.query else None)
        pattern = None
        if self.regex is not None:
            try:
                pattern = re.compile(self.regex)
            except (re.error, TypeError) as exc:
                msg = f"regex {self.regex!r} is not a valid regular expression: {exc}"
                raise ConfigurationError(msg) from None
        set_(self, "_pattern", pattern)
        if self.fields is not None and not isinstance(self.fields, Mapping):
            msg = f"fields must be a mapping of field name to value, got {self.fields!r}"
            raise ConfigurationError(msg)
        for name in ("limit", "after_seq"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                msg = f"{name} must be a whole number >= 0 or None, got {value!r}"
                raise ConfigurationError(msg)
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            msg = f"offset must be a whole number >= 0, got {self.offset!r}"
            raise ConfigurationError(msg)

    def matches(self, get: Callable[[str], Any]) -> bool:
        """Whether the record read through *get(key)* passes every filter."""
        floor = self._min  # type: ignore[attr-defined]
        if floor is not None and LEVELS.get(get("level"), 0) < floor:
            return False
        exact = self._exact  # type: ignore[attr-defined]
        if exact is not None and get("level") != exact:
            return False
        since, until = self._since, self._until  # type: ignore[attr-defined]
        if since is not None or until is not None:
            ts = get("ts")
            if not isinstance(ts, (int, float)):
                return False
            if (since is not None and ts < since) or (until is not None and ts > until):
                return False
        for key in ("correlation_id", "user_id", "tenant_id", "session_id", "test",
                    "extension_id", "origin"):  # fmt: skip
            wanted = getattr(self, key)
            if wanted is not None and get(key) != wanted:
                return False
        if self.logger_name is not None:
            name = get("name") or ""
            if name != self.logger_name and not name.startswith(self.logger_name + "."):
                return False
        if self.after_seq is not None and (get("seq") or 0) <= self.after_seq:
            return False
        if self.fields:
            present = get("fields") or {}
            for key, wanted in self.fields.items():
                if not _field_equals(_field(present, key), wanted):
                    return False
        needle, pattern = self._needle, self._pattern  # type: ignore[attr-defined]
        if needle is not None or pattern is not None:
            text = _haystack(get)
            if needle is not None and needle not in text.casefold():
                return False
            if pattern is not None and pattern.search(text) is None:
                return False
        return True

    def apply(
        self, records: Iterable[Any], get: Callable[[Any, str], Any] | None = None
    ) -> list[Any]:
        """The records passing the filters, in input order, after *offset*, at most *limit*."""
        reader = get or _dict_get
        out: list[Any] = []
        skip = self.offset
        for record in records:
            if self.limit is not None and len(out) >= self.limit:
                break
            if self.matches(functools.partial(reader, record)):
                if skip:
                    skip -= 1
                    continue
                out.append(record)
        return out


def _dict_get(record: Any, key: str) -> Any:
    if key == "name":
        return record.get("name", record.get("logger"))
    return record.get(key)


def _field(fields: Any, key: str) -> Any:
    if isinstance(fields, Mapping) and key in fields:
        return fields[key]
    current = fields
    for part in key.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _NO_FIELD
        current = current[part]
    return current


def _field_equals(present: Any, wanted: Any) -> bool:
    if present is _NO_FIELD:
        return False
    if isinstance(present, bool) or isinstance(wanted, bool):
        if isinstance(present, bool) and isinstance(wanted, bool):
            return present is wanted
        return isinstance(wanted, str) and field_text(present) == wanted
    if present == wanted:
        return True
    return (
        isinstance(wanted, str) and not isinstance(present, str) and (field_text(present) == wanted)
    )


def field_text(value: Any) -> str:
    """The text form of a field value used by filters and CSV cells."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, default=repr, sort_keys=True, ensure_ascii=False)


def _haystack(get: Callable[[str], Any]) -> str:
    parts = [str(get("message") or ""), str(get("name") or "")]
    exception = get("exception")
    if isinstance(exception, Mapping):
        parts.append(str(exception.get("type") or ""))
        parts.append(str(exception.get("message") or ""))
    fields = get("fields")
    if isinstance(fields, Mapping):
        _collect_text(fields, parts, 0)
    return "\n".join(parts)


def _collect_text(value: Any, parts: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        for item in value.values():
            _collect_text(item, parts, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _collect_text(item, parts, depth + 1)
    else:
        parts.append(field_text(value))


def to_epoch(value: Any, name: str = "time") -> float:
    """Epoch seconds from a number, a ``datetime`` (naive means UTC) or ISO 8601 text."""
    if isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)):
        if math.isfinite(value):
            return float(value)
    elif isinstance(value, _dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
        return moment.timestamp()
    elif isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc).timestamp()
    elif isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            return to_epoch(moment, name)
    msg = (
        f"{name} {value!r} is not a time; accepted: epoch seconds, a datetime"
        " (naive means UTC) or ISO 8601 text"
    )
    raise ConfigurationError(msg)


__all__ = [
    "LEVELS",
    "MAX_TEXT_LENGTH",
    "REDACTED",
    "ExtensionLogger",
    "KariLogHandler",
    "LogContext",
    "LogQuery",
    "LogRecord",
    "Redactor",
    "correlation_context",
    "current_correlation_id",
    "current_log_context",
    "exception_info",
    "field_text",
    "iso_utc",
    "level_name",
    "level_number",
    "to_epoch",
    "user_context",
]
