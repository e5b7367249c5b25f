"""Error groups: fingerprints, message templates and the one grouping of occurrences.

Grouping follows Sentry's idea: two errors are the same bug when they have the same exception
type and were raised through the same in-app code path (modules and functions, never line
numbers or addresses). An error without a stack is grouped by its type and its message with
the variable parts (numbers, ids, quoted values, paths, URLs) replaced by placeholders.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


# Variable parts of messages, replaced in this order (URLs before paths, uuids before hex...).
@functools.cache
def _message_variables() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Variable parts of messages and their placeholders, compiled on first use."""
    return tuple(
        (re.compile(pattern, re.I), placeholder)
        for pattern, placeholder in (
            (r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", "<url>"),
            (r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", "<email>"),
            (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>"),
            (r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"", "<str>"),
            (r"\b[a-z]:\\[^\s'\"]+", "<path>"),
            (r"(?<![\w.<>])(?:~|\.{1,2})?/[\w.@+-]+(?:/[\w.@+-]*)*", "<path>"),
            (
                r"\b\d{4}-\d{2}-\d{2}"
                r"(?:[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?",
                "<datetime>",
            ),
            (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<ip>"),
            (r"\b0x[0-9a-f]+\b", "<hex>"),
            (r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", "<hex>"),
            (r"\d+(?:\.\d+)*", "<num>"),
        )
    )  # fmt: skip


_WHOLE_QUOTED = re.compile(r"(['\"])((?:(?!\1).)*)\1", re.S)
_WHOLE_QUOTED = re.compile(r"(['\"])((?:(?!\1).)*)\1", re.S)


def normalize_message(message: str) -> str:
    """*message* with its variable parts (ids, numbers, quoted values...) as placeholders.

    A message that is one quoted string as a whole (``KeyError('user 42 missing')`` prints
    ``'user 42 missing'``) is normalized inside its quotes.
    """
    whole = _WHOLE_QUOTED.fullmatch(message.strip())
    if whole is not None:
        return f"{whole[1]}{normalize_message(whole[2])}{whole[1]}"
    text = message
    for pattern, placeholder in _message_variables():
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())


def trend_direction(counts: Sequence[float]) -> str:
    """``rising``, ``falling`` or ``stable`` for a series of counts, oldest first.

    The series is rising when its least-squares line climbs, from first to last point, by
    more than half the mean (and by at least one error); falling for the mirror case.
    """
    values = [float(v) for v in counts]
    n = len(values)
    if n < 2:
        return "stable"
    mean = sum(values) / n
    if mean == 0:
        return "stable"
    x_mean = (n - 1) / 2
    denominator = sum((x - x_mean) ** 2 for x in range(n))
    slope = sum((x - x_mean) * (y - mean) for x, y in enumerate(values)) / denominator
    change = slope * (n - 1)
    if change > max(0.5 * mean, 1.0):
        return "rising"
    if -change > max(0.5 * mean, 1.0):
        return "falling"
    return "stable"


def fingerprint_of(parts: Iterable[str]) -> str:
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One recorded error: what happened, where, its group, category and suggestion."""

    error_type: str
    error_message: str
    fingerprint: str
    ts: float
    session_id: str | None = None
    stack_trace: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"
    category: str = "unknown"
    suggestion: str = ""
    grouping: str = "message"
    culprit: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    frames_omitted: int = 0
    chain: list[dict[str, Any]] = field(default_factory=list)
    exception_notes: list[str] = field(default_factory=list)
    nodeid: str | None = None
    extension_id: str | None = None
    source: str = "record"

    @property
    def level(self) -> str:
        return self.severity

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-able data (the ``error_tracking`` record contract)."""
        return {
            "ts": self.ts,
            "session_id": self.session_id,
            "extension_id": self.extension_id,
            "nodeid": self.nodeid,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "name": self.error_type,
            "fingerprint": self.fingerprint,
            "grouping": self.grouping,
            "category": self.category,
            "suggestion": self.suggestion,
            "culprit": self.culprit,
            "stack_trace": self.stack_trace,
            "frames": self.frames,
            "frames_omitted": self.frames_omitted,
            "chain": self.chain,
            "exception_notes": self.exception_notes,
            "context": self.context,
            "level": self.severity,
            "source": self.source,
        }


@dataclass
class ErrorGroup:
    """Every error of one fingerprint: counts, first and last seen, affected tests, status."""

    fingerprint: str
    error_type: str
    message: str
    template: str
    category: str
    suggestion: str
    grouping: str
    culprit: str | None
    first_seen: float
    last_seen: float
    count: int = 0
    sessions: set[str] = field(default_factory=set)
    nodeids: set[str] = field(default_factory=set)
    status: str = "unresolved"
    resolved_at: float | None = None
    notes: str | None = None
    regressed: bool = False
    last_record: ErrorRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the group as JSON-able data (without its sample record)."""
        return {
            "fingerprint": self.fingerprint,
            "error_type": self.error_type,
            "message": self.message,
            "template": self.template,
            "category": self.category,
            "suggestion": self.suggestion,
            "grouping": self.grouping,
            "culprit": self.culprit,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "affected_tests": sorted(self.nodeids),
            "affected_tests_count": len(self.nodeids),
            "affected_sessions_count": len(self.sessions),
            "status": self.status,
            "resolved_at": self.resolved_at,
            "notes": self.notes,
            "regressed": self.regressed,
        }


__all__ = [
    "ErrorGroup",
    "ErrorRecord",
    "fingerprint_of",
    "normalize_message",
    "trend_direction",
]
