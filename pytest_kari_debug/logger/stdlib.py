"""Routing the standard library's log records to the logger of the current debug session."""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..context import CURRENT_SESSION, SessionInfo
from ..values import THREAD_FLAGS

if TYPE_CHECKING:
    from .core import ExtensionLogger


# Routing stdlib records ------------------------------------------------------------------
#: The logger of every open debug session, for records of stdlib loggers.
_SESSION_LOGGERS: dict[str, ExtensionLogger] = {}
_STDLIB_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName", "stack_info"}
)
#: How many attributes LogRecord.__init__ sets; extra fields come after them.
_STDLIB_BASE = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))


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
        flags = THREAD_FLAGS
        if flags.quiet:
            return  # a record made while filing one (a __repr__ that logs), or by a helper
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
        flags.quiet = True
        try:
            logger.ingest_stdlib(record, session)
        finally:
            flags.quiet = False

    def handleError(self, record: logging.LogRecord) -> None:
        """Never print to stderr from inside the user's logging: the logger keeps a diagnostic."""


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
