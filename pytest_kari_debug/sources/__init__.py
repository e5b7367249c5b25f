"""Record sources: one view of an extension's records, live, stored or of one finished run.

Every surface reads records through a :class:`RecordSource`, so a view is computed once
whatever holds the records:

* :class:`LiveSource` reads a live :class:`~pytest_kari_debug.manager.ExtensionDebugManager`'s
  components (the dashboard of a running manager, the REST API);
* :class:`StoreSource` reads what the store recorded for an extension, or one run of it (the
  dashboard and API of a recorded extension, the ``kari-debug`` CLI);
* :class:`RunSource` reads a finished run's test records (the HTML report).

The three answer in the same shapes: records newest first, error groups most errors first
(:func:`pytest_kari_debug.views.error_group`), alerts newest first and once each
(:func:`pytest_kari_debug.views.alert_view`), metric rows ``(name, unit, ts, value)``.
:class:`ExtensionSource` adds what only the dashboard of one extension shows (status, health,
sessions, following the log); the live and store sources have it.
"""

from __future__ import annotations

from .base import ALERT_STATUSES as ALERT_STATUSES
from .base import KINDS as KINDS
from .base import MAX_RECORDS as MAX_RECORDS
from .base import (
    ExtensionSource,
    LiveOnlyError,
    LogBatch,
    LogWindow,
    RecordQuery,
    RecordSource,
    alert_statistics,
    error_analysis,
    session_summary,
)
from .base import RecordFilter as RecordFilter
from .live import LiveSource
from .run import RunSource
from .store import StoreSource

__all__ = [
    "ExtensionSource",
    "LiveOnlyError",
    "LiveSource",
    "LogBatch",
    "LogWindow",
    "RecordQuery",
    "RecordSource",
    "RunSource",
    "StoreSource",
    "alert_statistics",
    "error_analysis",
    "session_summary",
]
