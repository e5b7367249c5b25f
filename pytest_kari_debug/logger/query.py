"""``LogQuery``: filtering log records by level, logger, time, fields and text."""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..exceptions import ConfigurationError
from ..sharedmethods import dataclass
from ..values import MAX_DEPTH
from ..values import field_text as field_text  # the logger's filters and the CSV cells share it
from .records import LEVELS, level_name, level_number

# Filtering ---------------------------------------------------------------------------------
_NO_FIELD = object()


@dataclass(frozen=True)
class LogQuery:
    """A filter over log records (:class:`LogRecord` objects or their dicts).

    ``level``: minimum level; ``exact_level``: only that level; ``since`` / ``until``: epoch
    seconds, ``datetime`` (naive means UTC) or ISO 8601 text, inclusive; ``query``:
    case-insensitive substring of the message, the logger name, the exception or any field
    value; ``regex``: searched in the same text; ``fields``: ``{name: value}`` equality, with
    ``a.b`` reaching into nested fields and text values also matching the field's text form
    (``"500"`` matches ``500``); ``correlation_id``, ``user_id``, ``tenant_id``,
    ``session_id``, ``test`` (session name, a test's node id), ``extension_id``, ``origin``
    (``kari`` or ``stdlib``): equality; ``logger_name``: that logger or its children;
    ``after_seq``: records with a larger ``seq`` (to follow a live logger).
    Results keep the input order (newest first from ExtensionLogger); then ``offset`` and
    ``limit`` apply.
    """

    level: str | int | None = None
    exact_level: str | int | None = None
    since: Any = None
    until: Any = None
    query: str | None = None
    regex: str | None = None
    fields: Mapping[str, Any] | None = None
    correlation_id: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    session_id: str | None = None
    test: str | None = None
    extension_id: str | None = None
    logger_name: str | None = None
    origin: str | None = None
    after_seq: int | None = None
    limit: int | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "_min", None if self.level is None else level_number(self.level))
        set_(
            self,
            "_exact",
            None if self.exact_level is None else level_name(level_number(self.exact_level)),
        )
        set_(self, "_since", None if self.since is None else to_epoch(self.since, "since"))
        set_(self, "_until", None if self.until is None else to_epoch(self.until, "until"))
        if self.query is not None and not isinstance(self.query, str):
            msg = f"query must be text, got {self.query!r}"
            raise ConfigurationError(msg)
        set_(self, "_needle", self.query.casefold() if self.query else None)
        pattern = None
        if self.regex is not None:
            try:
                pattern = re.compile(self.regex)
            except (re.error, TypeError) as exc:
                msg = f"regex {self.regex!r} is not a valid regular expression: {exc}"
                raise ConfigurationError(msg) from None
        set_(self, "_pattern", pattern)
        if self.fields is not None and not isinstance(self.fields, Mapping):
            msg = f"fields must be a mapping of field name to value, got {self.fields!r}"
            raise ConfigurationError(msg)
        for name in ("limit", "after_seq"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                msg = f"{name} must be a whole number >= 0 or None, got {value!r}"
                raise ConfigurationError(msg)
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            msg = f"offset must be a whole number >= 0, got {self.offset!r}"
            raise ConfigurationError(msg)

    def matches(self, get: Callable[[str], Any]) -> bool:
        """Whether the record read through *get(key)* passes every filter."""
        floor = self._min  # type: ignore[attr-defined]
        if floor is not None and LEVELS.get(get("level"), 0) < floor:
            return False
        exact = self._exact  # type: ignore[attr-defined]
        if exact is not None and get("level") != exact:
            return False
        since, until = self._since, self._until  # type: ignore[attr-defined]
        if since is not None or until is not None:
            ts = get("ts")
            if not isinstance(ts, (int, float)):
                return False
            if (since is not None and ts < since) or (until is not None and ts > until):
                return False
        for key in ("correlation_id", "user_id", "tenant_id", "session_id", "test",
                    "extension_id", "origin"):  # fmt: skip
            wanted = getattr(self, key)
            if wanted is not None and get(key) != wanted:
                return False
        if self.logger_name is not None:
            name = get("name") or ""
            if name != self.logger_name and not name.startswith(self.logger_name + "."):
                return False
        if self.after_seq is not None and (get("seq") or 0) <= self.after_seq:
            return False
        if self.fields:
            present = get("fields") or {}
            for key, wanted in self.fields.items():
                if not _field_equals(_field(present, key), wanted):
                    return False
        needle, pattern = self._needle, self._pattern  # type: ignore[attr-defined]
        if needle is not None or pattern is not None:
            text = _haystack(get)
            if needle is not None and needle not in text.casefold():
                return False
            if pattern is not None and pattern.search(text) is None:
                return False
        return True

    def apply(
        self, records: Iterable[Any], get: Callable[[Any, str], Any] | None = None
    ) -> list[Any]:
        """The records passing the filters, in input order, after *offset*, at most *limit*."""
        reader = get or _dict_get
        out: list[Any] = []
        skip = self.offset
        for record in records:
            if self.limit is not None and len(out) >= self.limit:
                break
            if self.matches(functools.partial(reader, record)):
                if skip:
                    skip -= 1
                    continue
                out.append(record)
        return out


def _dict_get(record: Any, key: str) -> Any:
    if key == "name":
        return record.get("name", record.get("logger"))
    return record.get(key)


def _field(fields: Any, key: str) -> Any:
    if isinstance(fields, Mapping) and key in fields:
        return fields[key]
    current = fields
    for part in key.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _NO_FIELD
        current = current[part]
    return current


def _field_equals(present: Any, wanted: Any) -> bool:
    if present is _NO_FIELD:
        return False
    if isinstance(present, bool) or isinstance(wanted, bool):
        if isinstance(present, bool) and isinstance(wanted, bool):
            return present is wanted
        return isinstance(wanted, str) and field_text(present) == wanted
    if present == wanted:
        return True
    return (
        isinstance(wanted, str) and not isinstance(present, str) and (field_text(present) == wanted)
    )


def _haystack(get: Callable[[str], Any]) -> str:
    parts = [str(get("message") or ""), str(get("name") or "")]
    exception = get("exception")
    if isinstance(exception, Mapping):
        parts.append(str(exception.get("type") or ""))
        parts.append(str(exception.get("message") or ""))
    fields = get("fields")
    if isinstance(fields, Mapping):
        _collect_text(fields, parts, 0)
    return "\n".join(parts)


def _collect_text(value: Any, parts: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        for item in value.values():
            _collect_text(item, parts, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _collect_text(item, parts, depth + 1)
    else:
        parts.append(field_text(value))


def to_epoch(value: Any, name: str = "time") -> float:
    """Epoch seconds from a number, a ``datetime`` (naive means UTC) or ISO 8601 text."""
    if isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)):
        if math.isfinite(value):
            return float(value)
    elif isinstance(value, _dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
        return moment.timestamp()
    elif isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc).timestamp()
    elif isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            return to_epoch(moment, name)
    msg = (
        f"{name} {value!r} is not a time; accepted: epoch seconds, a datetime"
        " (naive means UTC) or ISO 8601 text"
    )
    raise ConfigurationError(msg)
