"""Sanitising log fields: secret names redacted (the package's :mod:`~pytest_kari_debug.redactor`),
URLs scrubbed, exceptions as text."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

from ..redactor import REDACTED, Redactor, normalise_field_name
from ..scrub import DEFAULT_SCRUBBER, TextScrubber
from ..values import bounded_call, clean_text, plain, safe_str

__all__ = ["REDACTED", "Redactor", "exception_info", "normalise_field_name"]


#: The commonest arguments of a log call, formatted by builtin code (checked before plain()).
_PLAIN_ARGS = frozenset((str, int, float))


def _stdlib_message(record: logging.LogRecord) -> Any:
    """``record.getMessage()``; bounded in time when its arguments are not plain values."""
    args = record.args
    if type(record.msg) is str or plain(record.msg):
        if not args:
            return record.getMessage()
        if type(args) is tuple:
            for arg in args:  # (a loop, not all(): this runs for every captured record)
                if type(arg) not in _PLAIN_ARGS and not plain(arg):
                    break
            else:
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
