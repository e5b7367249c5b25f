"""``ExtensionLogger``: the logging component of one extension."""

from __future__ import annotations

import itertools
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from itertools import islice
from typing import Any

from ..component import Component, export_text
from ..context import CURRENT_SESSION, SessionInfo
from ..exceptions import ConfigurationError
from ..scrub import scrubber_for
from ..values import (
    MAX_TEXT_LENGTH,
    clean_text,
    safe_repr,
    safe_str,
)
from .correlation import _LOG_CONTEXT, _ContextBinding, correlation_context, user_context
from .records import (
    _R_TS,
    LEVEL_NAMES,
    LEVELS,
    ORIGIN_KARI,
    ORIGIN_STDLIB,
    LogRecord,
    _new_record,
    drop_marker_record,
    level_name,
    level_number,
)
from .redaction import Redactor, _stdlib_message, exception_info
from .stdlib import (
    _SESSION_LOGGERS,
    _STDLIB_ATTRS,
    _STDLIB_BASE,
    _current_thread,
    _get_running_loop,
    _StdlibCapture,
    _task_name,
)

_STDLIB_RECORD = logging.LogRecord
_modules = sys.modules


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
            if not isinstance(message, str):
                message = safe_str(message)
            elif len(message) > MAX_TEXT_LENGTH or not message.isascii():
                message = clean_text(message)
            if "://" in message or message not in self._known_clean:
                message = self.redactor.scrub_text(message)
            attributes = record.__dict__
            fields: dict[str, Any] = {}
            beyond = len(attributes) - _STDLIB_BASE
            # ``extra`` keys are set after LogRecord.__init__: look past its attributes only.
            # One key past them is most often the ``message`` a formatter set: no dict for it.
            if beyond > 1 or (beyond == 1 and next(reversed(attributes)) not in _STDLIB_ATTRS):
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
            if type(record) is _STDLIB_RECORD:  # no class attribute: skip getattr's miss
                task = attributes.get("taskName")
            else:
                task = getattr(record, "taskName", None)
            if task is None:
                asyncio = _modules.get("asyncio")  # (no running loop before it is imported)
                loop = None if asyncio is None else asyncio._get_running_loop()
                task = None if loop is None else _task_name(loop)
            if session is None:
                session = CURRENT_SESSION.get()
            name = record.name
            if type(name) is not str or len(name) > 500 or not name.isascii():
                name = clean_text(str(name), 500)
            kept: LogRecord = _new_record(
                LogRecord,
                (
                    record.created,
                    LEVEL_NAMES.get(levelno) or level_name(levelno),
                    message,
                    name,
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
        if not head and not tail:  # no record (a limit of 1 keeps only the newest one)
            return {"records": [], "dropped": dropped}
        records = [record.to_dict() for record in head]
        if dropped:
            records.append(self._drop_marker(session, dropped, len(head), len(tail), tail))
        if tail:
            records.extend([record.to_dict() for record in tail])
        return {"records": records, "dropped": dropped}

    def _drop_marker(
        self, session: SessionInfo, dropped: int, first: int, newest: int, tail: list[LogRecord]
    ) -> dict[str, Any]:
        message = (
            f"{dropped} log record(s) dropped here: the test reached max_log_entries="
            f"{self.records.limit}; its first {first} and newest {newest} records are kept"
        )
        ts = tail[0][_R_TS] if tail else time.time()
        return drop_marker_record(ts, self.extension_id, session, dropped, message).to_dict()

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
        from .query import LogQuery

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
