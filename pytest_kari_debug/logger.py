"""``ExtensionLogger``: structured, context-aware log records of one extension."""

from __future__ import annotations

import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from .component import Component
from .context import CURRENT_SESSION

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}

_CORRELATION: ContextVar[str | None] = ContextVar("kari_correlation_id", default=None)
_USER: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "kari_user_context", default=(None, None)
)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One structured log record."""

    ts: float
    level: str
    message: str
    logger: str
    extension_id: str
    session_id: str | None = None
    correlation_id: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    thread: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    exception: dict[str, str] | None = None

    @property
    def name(self) -> str:
        return self.logger

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-able data."""
        return {
            "ts": self.ts,
            "level": self.level,
            "message": self.message,
            "name": self.logger,
            "logger": self.logger,
            "extension_id": self.extension_id,
            "session_id": self.session_id,
            "correlation_id": self.correlation_id,
            "user_id": self.user_id,
            "tenant_id": self.tenant_id,
            "thread": self.thread,
            "fields": self.fields,
            "exception": self.exception,
        }


class ExtensionLogger(Component):
    """Structured logger of one extension; records land in a bounded buffer."""

    kind = "logging"
    limit_field = "max_log_entries"

    def __init__(self, *args: Any, metrics: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = f"kari.{self.extension_id}"
        self.metrics = metrics
        self._min_level = LEVELS[self.configuration.log_level.upper()]

    # Recording -------------------------------------------------------------------------
    def log(self, level: str, message: str, *, exc_info: Any = None, **fields: Any) -> None:
        """Record *message* at *level* with structured *fields*."""
        if not self.enabled or LEVELS[level] < self._min_level:
            return
        session = CURRENT_SESSION.get()
        user_id, tenant_id = _USER.get()
        self.records.append(
            LogRecord(
                ts=time.time(),
                level=level,
                message=str(message),
                logger=self.name,
                extension_id=self.extension_id,
                session_id=session.session_id if session else None,
                correlation_id=_CORRELATION.get(),
                user_id=user_id,
                tenant_id=tenant_id,
                thread=threading.current_thread().name,
                fields=fields,
                exception=_exception_info(exc_info),
            ),
            session.session_id if session else None,
        )

    def debug(self, message: str, **fields: Any) -> None:
        """Record at DEBUG."""
        self.log("DEBUG", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        """Record at INFO."""
        self.log("INFO", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        """Record at WARNING."""
        self.log("WARNING", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        """Record at ERROR."""
        self.log("ERROR", message, **fields)

    def critical(self, message: str, **fields: Any) -> None:
        """Record at CRITICAL."""
        self.log("CRITICAL", message, **fields)

    # Context ---------------------------------------------------------------------------
    @contextmanager
    def correlation_context(self, correlation_id: str | None = None) -> Iterator[str]:
        """Tag records made inside the block with *correlation_id* (a fresh one if None)."""
        value = correlation_id or uuid.uuid4().hex
        token = _CORRELATION.set(value)
        try:
            yield value
        finally:
            _CORRELATION.reset(token)

    @contextmanager
    def user_context(self, user_id: str, tenant_id: str | None = None) -> Iterator[None]:
        """Tag records made inside the block with *user_id* and *tenant_id*."""
        token = _USER.set((user_id, tenant_id))
        try:
            yield
        finally:
            _USER.reset(token)

    # Structured helpers ----------------------------------------------------------------
    def log_api_request(
        self, method: str, url: str, status_code: int, duration_ms: float, **fields: Any
    ) -> None:
        """Record an outgoing API request."""
        level = "ERROR" if status_code >= 500 else "WARNING" if status_code >= 400 else "INFO"
        self.log(
            level,
            f"{method} {url} -> {status_code} in {duration_ms:.1f}ms",
            event="api_request",
            method=method,
            url=url,
            status_code=int(status_code),
            duration_ms=float(duration_ms),
            **fields,
        )
        if self.metrics is not None:
            self.metrics.record_request_time(duration_ms)
            if status_code >= 500:
                self.metrics.record_error(f"http_{status_code}")

    def log_database_query(
        self, operation: str, table: str, duration_ms: float, rows: int = 0, **fields: Any
    ) -> None:
        """Record a database query."""
        self.log(
            "DEBUG",
            f"{operation} {table}: {rows} rows in {duration_ms:.1f}ms",
            event="database_query",
            operation=operation,
            table=table,
            duration_ms=float(duration_ms),
            rows=int(rows),
            **fields,
        )
        if self.metrics is not None:
            self.metrics.record_metric("db_query_time", float(duration_ms), "ms")

    def log_plugin_execution(
        self, plugin: str, action: str, success: bool, duration_ms: float, **fields: Any
    ) -> None:
        """Record one execution of a plugin action."""
        self.log(
            "INFO" if success else "ERROR",
            f"plugin {plugin}.{action} {'succeeded' if success else 'failed'}"
            f" in {duration_ms:.1f}ms",
            event="plugin_execution",
            plugin=plugin,
            action=action,
            success=bool(success),
            duration_ms=float(duration_ms),
            **fields,
        )
        if self.metrics is not None:
            self.metrics.record_metric("plugin_execution_time", float(duration_ms), "ms")
            if not success:
                self.metrics.record_error("plugin_failure")

    # Reading ---------------------------------------------------------------------------
    def get_logs(
        self, *, level: str | None = None, limit: int | None = None, session_id: str | None = None
    ) -> list[LogRecord]:
        """Return records at or above *level*, newest first."""
        floor = LEVELS[level.upper()] if level else 0
        found = [
            record
            for record in reversed(self.records.snapshot())
            if LEVELS[record.level] >= floor
            and (session_id is None or record.session_id == session_id)
        ]
        return found[:limit] if limit is not None else found


def _exception_info(exc_info: Any) -> dict[str, str] | None:
    if not exc_info:
        return None
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if exc_info[0] is None:
        return None
    return {
        "type": exc_info[0].__name__,
        "message": str(exc_info[1]),
        "traceback": "".join(traceback.format_exception(*exc_info)),
    }
