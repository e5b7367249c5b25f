"""What goes into the store's rows: compact JSON that never fails, and records' rows."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import orjson

from ..values import repair, to_jsonable, writable_text

_ENCODER = json.JSONEncoder(default=repr, separators=(",", ":"))


def dumps(value: Any) -> str:
    """The store's compact JSON of *value*; never raises.

    orjson writes it (a test's record on every test: the hot path). What orjson refuses goes
    through the one serializer (:func:`~pytest_kari_debug.values.to_jsonable`: a lone
    surrogate escaped, an over-long integer or an object whose repr fails replaced by a
    placeholder) first. What orjson still refuses (an integer past 64 bits) is written by the
    standard library after a newline, which JSON allows and which tells :func:`loads_many` to
    read it back with the standard library too.
    """
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError
        value = repair(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return "\n" + _ENCODER.encode(value)


def _default(value: Any) -> Any:
    return to_jsonable(value)


def dumps_record(record: dict[str, Any]) -> tuple[dict[str, Any], str, list[str]]:
    """A test's record and its store JSON; never raises.

    A record orjson writes as it is (the common case) is kept as it is. Otherwise the record
    is repaired (:func:`~pytest_kari_debug.values.repair`) and the paths of the parts it had
    to replace are returned, for a diagnostic naming them.
    """
    try:  # a record with text keys only (nearly all) costs orjson less without the option
        return record, orjson.dumps(record).decode(), []
    except TypeError:
        pass
    try:
        return record, orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS).decode(), []
    except TypeError:  # orjson.JSONEncodeError: a surrogate, a huge int, an object
        replaced: list[str] = []
        try:
            fixed = repair(record, replaced)
        except RecursionError:
            fixed = to_jsonable(record)
            replaced.append("nested too deeply: cut by the serializer")
        return fixed, dumps(fixed), replaced


def loads_many(texts: Sequence[str]) -> list[Any]:
    """Decode many :func:`dumps` texts at once (one JSON array: faster than one by one)."""
    if not texts:
        return []
    if any(text[:1] == "\n" for text in texts):
        return [json.loads(t) if t[:1] == "\n" else orjson.loads(t) for t in texts]
    return orjson.loads("[" + ",".join(texts) + "]")  # type: ignore[no-any-return]


def scalar(value: Any) -> Any:
    """A JSON scalar read from a row (PostgreSQL gives its text, SQLite the value: a string
    as itself)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def json_object(text: Any) -> dict[str, Any]:
    """A JSON object read from a row; ``{}`` when the record holds anything else there (a
    user's hook may have put a string where an object belongs)."""
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


#: collected_data key of each component -> record kind in the store.
RECORD_KINDS = {
    "logging": "log",
    "metrics": "metric",
    "error_tracking": "error",
    "tracing": "span",
    "alerting": "alert",
    "profiling": "profile",
}


#: Inserts a record; ``{parent}`` is its test's id (``NULL``: a record no test owns).
RECORD_INSERT = (
    "INSERT INTO records(test_id, run_id, kind, ts, extension_id, session_id, name, level,"
    " value, data) VALUES ({parent},?,?,?,?,?,?,?,?,?)"
)


def record_row(
    run_id: int | None, kind: str, extension_id: str, record: dict[str, Any]
) -> tuple[Any, ...]:
    """A record's row for :data:`RECORD_INSERT` (its test's id is not in it)."""
    try:  # what its test's record held, written by orjson already (nearly all): the same text
        data = orjson.dumps(record).decode()
    except TypeError:  # orjson.JSONEncodeError: the one serializer's way
        data = dumps(record)
    return (
        run_id,
        kind,
        real(record.get("ts")),
        param(extension_id, ""),
        param(record.get("session_id")),
        param(record.get("name")),
        param(record.get("level")),
        real(record.get("value")),
        data,
    )


def param(value: Any, default: str | None = None) -> str | None:
    """A text column's parameter: text UTF-8 cannot hold escaped, any other value as its text,
    ``None`` as *default* (a record a user's hook changed never fails a column's type)."""
    if type(value) is str:
        return writable_text(value)
    if value is None:
        return default
    try:
        return writable_text(str(value))
    except Exception:  # an int past the int-to-str limit, a raising __str__
        return default


def real(value: Any) -> float | None:
    """A REAL column's parameter: a finite number, else ``None``."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def record_rows(run_id: int, test: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of the records a test's components collected."""
    rows: list[tuple[Any, ...]] = []
    extension_id = test.get("extension_id", "")
    collected = test.get("collected_data")
    if not isinstance(collected, dict):  # a hook may have put anything there
        return rows
    for component, data in collected.items():
        kind = RECORD_KINDS.get(component) or component
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            for record in data["records"]:
                if isinstance(record, dict):
                    rows.append(record_row(run_id, kind, extension_id, record))
    return rows
