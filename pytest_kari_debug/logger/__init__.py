"""``ExtensionLogger``: structured, context-aware, redacted and bounded log records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from ..values import MAX_TEXT_LENGTH
    from .core import ExtensionLogger, OnError
    from .correlation import (
        LogContext,
        correlation_context,
        current_correlation_id,
        current_log_context,
        user_context,
    )
    from .query import LogQuery, field_text, to_epoch
    from .records import (
        DROP_LOGGER_NAME,
        LEVEL_NAMES,
        LEVELS,
        ORIGIN_KARI,
        ORIGIN_STDLIB,
        LogRecord,
        iso_utc,
        level_name,
        level_number,
    )
    from .redaction import REDACTED, Redactor, exception_info, normalise_field_name
    from .stdlib import KariLogHandler

#: Public name -> the module that defines it, imported on first use (a run that never queries
#: its logs imports no query).
_PUBLIC = {
    "MAX_TEXT_LENGTH": "pytest_kari_debug.values",
    "ExtensionLogger": "core",
    "OnError": "core",
    "LogContext": "correlation",
    "correlation_context": "correlation",
    "current_correlation_id": "correlation",
    "current_log_context": "correlation",
    "user_context": "correlation",
    "LogQuery": "query",
    "field_text": "query",
    "to_epoch": "query",
    "DROP_LOGGER_NAME": "records",
    "LEVEL_NAMES": "records",
    "LEVELS": "records",
    "ORIGIN_KARI": "records",
    "ORIGIN_STDLIB": "records",
    "LogRecord": "records",
    "iso_utc": "records",
    "level_name": "records",
    "level_number": "records",
    "REDACTED": "redaction",
    "Redactor": "redaction",
    "exception_info": "redaction",
    "normalise_field_name": "redaction",
    "KariLogHandler": "stdlib",
}

__all__ = [
    "DROP_LOGGER_NAME",
    "LEVELS",
    "LEVEL_NAMES",
    "MAX_TEXT_LENGTH",
    "ORIGIN_KARI",
    "ORIGIN_STDLIB",
    "REDACTED",
    "ExtensionLogger",
    "KariLogHandler",
    "LogContext",
    "LogQuery",
    "LogRecord",
    "OnError",
    "Redactor",
    "correlation_context",
    "current_correlation_id",
    "current_log_context",
    "exception_info",
    "field_text",
    "iso_utc",
    "level_name",
    "level_number",
    "normalise_field_name",
    "to_epoch",
    "user_context",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
