"""Log records as JSON (array), JSON Lines and CSV with fields flattened to stable columns."""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..exceptions import ExportError
from ..model import DROP_MARKER_ORIGIN
from .csv_export import render_csv

#: Fixed leading columns of the logs CSV, in order.
LOG_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "ts",
    "level",
    "name",
    "message",
    "extension_id",
    "test",
    "session_id",
    "correlation_id",
    "user_id",
    "tenant_id",
    "thread",
    "task",
    "origin",
    "exception_type",
    "exception_message",
    "exception_traceback",
)
FIELD_PREFIX = "fields."
#: Field columns kept at most; further keys go, as JSON, into the ``fields_other`` column.
MAX_FIELD_COLUMNS = 200
OTHER_COLUMN = "fields_other"
DROP_LOGGER = "kari.debug"


def as_dict(record: Any) -> dict[str, Any]:
    """A record as a dict (a :class:`~pytest_kari_debug.logger.LogRecord` or a dict)."""
    if isinstance(record, Mapping):
        return dict(record)
    return record.to_dict()  # type: ignore[no-any-return]


def drop_marker(
    dropped: int,
    *,
    extension_id: str = "",
    session_id: str | None = None,
    test: str | None = None,
    limit: int | None = None,
    ts: float | None = None,
) -> dict[str, Any]:
    """A WARNING record saying *dropped* records were not kept, for exports to show drops."""
    where = f" (max_log_entries={limit})" if limit is not None else ""
    return {
        "ts": time.time() if ts is None else ts,
        "level": "WARNING",
        "message": f"{dropped} log record(s) dropped at the buffer limit{where}",
        "name": DROP_LOGGER,
        "extension_id": extension_id,
        "session_id": session_id,
        "test": test,
        "origin": DROP_MARKER_ORIGIN,
        "fields": {"event": "log_records_dropped", "dropped": dropped},
        "exception": None,
    }


def with_drops(records: Iterable[Any], dropped: int, **marker: Any) -> list[dict[str, Any]]:
    """*records* as dicts followed by a :func:`drop_marker` when *dropped* > 0."""
    rows = [as_dict(record) for record in records]
    if dropped > 0:
        rows.append(drop_marker(dropped, **marker))
    return rows


def logs_to_json(records: Iterable[Any], *, indent: int | None = None) -> str:
    """The records as one JSON array."""
    return json.dumps(
        [as_dict(r) for r in records], default=repr, ensure_ascii=False, indent=indent
    )


def logs_to_jsonl(records: Iterable[Any]) -> str:
    """The records as JSON Lines: one JSON object per line, no raw newline inside one."""
    return "".join(json.dumps(as_dict(r), default=repr, ensure_ascii=False) + "\n" for r in records)


def flatten_fields(fields: Any, prefix: str = "") -> dict[str, Any]:
    """Nested field dicts as ``a.b`` keys; lists and other values are kept whole."""
    flat: dict[str, Any] = {}
    if not isinstance(fields, Mapping):
        return flat
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_fields(value, name + "."))
        else:
            flat[name] = value
    return flat


def log_rows(records: Iterable[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """CSV rows of *records* and their columns: :data:`LOG_COLUMNS`, then sorted field columns.

    The field columns are the sorted union of the flattened field names (at most
    :data:`MAX_FIELD_COLUMNS`, the rest in ``fields_other``), so the same records always
    give the same columns.
    """
    rows: list[dict[str, Any]] = []
    flats: list[dict[str, Any]] = []
    names: set[str] = set()
    for record in records:
        data = as_dict(record)
        exception = data.get("exception") or {}
        row = {column: data.get(column) for column in LOG_COLUMNS}
        row["name"] = data.get("name", data.get("logger"))
        if not row.get("timestamp") and isinstance(data.get("ts"), (int, float)):
            row["timestamp"] = _iso_utc(data["ts"])
        if isinstance(exception, Mapping):
            row["exception_type"] = exception.get("type")
            row["exception_message"] = exception.get("message")
            row["exception_traceback"] = exception.get("traceback")
        flat = flatten_fields(data.get("fields"))
        names.update(flat)
        rows.append(row)
        flats.append(flat)
    kept = sorted(names)[:MAX_FIELD_COLUMNS]
    kept_set = set(kept)
    for row, flat in zip(rows, flats, strict=True):
        other = {}
        for key, value in flat.items():
            if key in kept_set:
                row[FIELD_PREFIX + key] = value
            else:
                other[key] = value
        row[OTHER_COLUMN] = other or None
    columns = [*LOG_COLUMNS, *(FIELD_PREFIX + name for name in kept), OTHER_COLUMN]
    return rows, columns


def logs_to_csv(records: Iterable[Any]) -> str:
    """The records as CSV text (RFC 4180, formula guard), fields flattened to columns."""
    rows, columns = log_rows(records)
    return render_csv(rows, columns)


def write_logs(path: str | Path, records: Iterable[Any], format: str = "json") -> Path:
    """Write *records* to *path* atomically as ``json``, ``jsonl`` or ``csv``."""
    renderers = {"json": logs_to_json, "jsonl": logs_to_jsonl, "csv": logs_to_csv}
    render = renderers.get(format)
    if render is None:
        msg = f"unknown log export format {format!r}; accepted: {', '.join(renderers)}"
        raise ExportError(msg)
    return write_atomic(path, render(records))


def export_logger(logger: Any, path: str | Path, format: str = "json", **filters: Any) -> Path:
    """Write an ExtensionLogger's kept records (oldest first, filtered) and its drops."""
    records = list(reversed(logger.get_logs(**filters)))
    rows = with_drops(
        records,
        logger.records.dropped,
        extension_id=logger.extension_id,
        limit=logger.records.limit,
    )
    return write_logs(path, rows, format)


def sorted_by_time(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records ordered by ``ts`` (stable)."""
    return sorted(records, key=lambda r: r.get("ts") or 0.0)


def _iso_utc(ts: float) -> str:
    try:
        moment = _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
