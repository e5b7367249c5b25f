"""CSV exports: RFC 4180 quoting and a guard against spreadsheet formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..values import field_text

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Characters a spreadsheet may drop before it reads a formula ("\0=cmd" runs as "=cmd").
_IGNORED_LEAD = "\0\x0b\x0c\n \u00a0\ufeff"


def cell(value: Any) -> str:
    """Render *value* as CSV cell text (:func:`~pytest_kari_debug.values.field_text`); text a
    spreadsheet would run as a formula is quoted."""
    text = field_text(value)
    if isinstance(value, (int, float)):
        return text
    if text.startswith(_FORMULA_START) or (
        text[:1] in _IGNORED_LEAD and text.lstrip(_IGNORED_LEAD).startswith(_FORMULA_START)
    ):
        return "'" + text
    return text


def iso_time(ts: float | None) -> str | None:
    """*ts* (epoch seconds) as an ISO 8601 UTC time to the millisecond (JSON and CSV)."""
    if ts is None or isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return None
    return datetime.fromtimestamp(float(ts), tz=timezone.utc).isoformat(timespec="milliseconds")


def render_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV text with a header line; missing keys are empty cells."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """Write rows to *path* atomically (UTF-8, CRLF line ends as RFC 4180 says)."""
    return write_atomic(path, render_csv(rows, columns))
