"""``ExtensionLogger``: structured, context-aware, redacted and bounded log records."""

from __future__ import annotations

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
