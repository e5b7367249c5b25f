"""Error groups: fingerprints, message templates and the one grouping of occurrences.

Grouping follows Sentry's idea: two errors are the same bug when they have the same exception
type and were raised through the same in-app code path (modules and functions, never line
numbers or addresses). An error without a stack is grouped by its type and its message with
the variable parts (numbers, ids, quoted values, paths, URLs) replaced by placeholders.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import field
from typing import Any

from ..model import AnyTest, Kind, RecordView, TestRecord, component_of
from ..sharedmethods import dataclass


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


# Grouping occurrences -------------------------------------------------------------------
#: Node ids a group of occurrences lists, in the order first seen (its ``tests`` counts all).
GROUP_NODEIDS = 20


@dataclass(frozen=True, slots=True)
class Occurrence:
    """Errors of one fingerprint seen in one place, counted there.

    One error record; a test's exact per-group counter (it goes past the record limit); a
    store's count of its records; a live tracker's group. *error* holds the newest error's
    fields. *test_key* names the test it occurred in (its position in a run's records or its
    node id): occurrences of one test count one test. Without one, *tests* is how many
    distinct tests the place already counted.
    """

    extension_id: str
    fingerprint: str
    error: Mapping[str, Any]
    count: int = 1
    first_ts: float | None = None
    last_ts: float | None = None
    nodeid: str | None = None
    test_key: object = None
    tests: int = 0


@dataclass(slots=True)
class OccurrenceGroup:
    """The occurrences of one (extension, fingerprint), summed by :func:`group_errors`."""

    extension_id: str
    fingerprint: str
    count: int = 0
    tests: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    #: The newest error's fields (of equal times, the one given last).
    newest: Mapping[str, Any] = field(default_factory=dict)
    #: Node id of the newest error's test.
    last_test: str | None = None
    #: The newest error that is a record (a counter whose records were dropped is none).
    sample: Mapping[str, Any] | None = None
    #: Node ids of its tests, first seen first, at most :data:`GROUP_NODEIDS`.
    nodeids: list[str] = field(default_factory=list)
    #: The test keys (positions in a run's records, when given so) of its tests.
    test_keys: list[object] = field(default_factory=list)
    _newest_ts: float | None = None
    _sample_ts: float | None = None

    def add(self, occurrence: Occurrence) -> None:
        """Count *occurrence* in."""
        self.count += occurrence.count
        key = occurrence.test_key
        if key is None:
            self.tests += occurrence.tests
        elif not self.test_keys or self.test_keys[-1] != key:
            self.tests += 1
            self.test_keys.append(key)
            if occurrence.nodeid and len(self.nodeids) < GROUP_NODEIDS:
                self.nodeids.append(occurrence.nodeid)
        self.first_seen = earliest(self.first_seen, occurrence.first_ts)
        self.last_seen = latest(self.last_seen, occurrence.last_ts)
        last = occurrence.last_ts
        if not self.newest or _not_older(last, self._newest_ts):
            self.newest, self._newest_ts = occurrence.error, last
            self.last_test = occurrence.error.get("nodeid") or occurrence.nodeid
        if "ts" in occurrence.error and (self.sample is None or _not_older(last, self._sample_ts)):
            self.sample, self._sample_ts = occurrence.error, last


def group_order(group: Any) -> tuple[int, float, str]:
    """The one order of error groups: most errors, then most recently seen, then fingerprint."""
    return (-group.count, -(group.last_seen or 0.0), group.fingerprint)


class OccurrenceGrouping:
    """Occurrences summed per (extension, fingerprint) as they come (a run's tests as each
    finishes); :meth:`ordered` gives what :func:`group_errors` gives for the same ones."""

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], OccurrenceGroup] = {}

    def add(self, occurrence: Occurrence) -> None:
        """Count *occurrence* in its group."""
        key = (occurrence.extension_id, occurrence.fingerprint)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = OccurrenceGroup(*key)
        group.add(occurrence)

    def ordered(self) -> list[OccurrenceGroup]:
        """The groups so far, in :func:`group_order`."""
        return sorted(self.groups.values(), key=group_order)


def group_errors(occurrences: Iterable[Occurrence]) -> list[OccurrenceGroup]:
    """The occurrences summed per (extension, fingerprint), in :func:`group_order`."""
    grouping = OccurrenceGrouping()
    for occurrence in occurrences:
        grouping.add(occurrence)
    return grouping.ordered()


def error_key(record: Mapping[str, Any]) -> str:
    """The group an error record belongs to: its fingerprint, else its type and message."""
    fingerprint = record.get("fingerprint")
    if fingerprint:
        return str(fingerprint)
    kind = record.get("error_type") or record.get("name") or "error"
    return f"{kind}: {record.get('error_message') or record.get('message') or ''}"


def occurrences_of_test(
    test: AnyTest | RecordView, test_key: object = None
) -> Iterator[Occurrence]:
    """The occurrences of one test record's errors (*test_key* names the test; default its
    node id).

    The tracker's exact per-group counters (``groups``, which go past its record limit) count
    where the test has them, each with its newest record's fields; otherwise every record
    counts once.
    """
    if isinstance(test, TestRecord):
        extension, nodeid = test.extension_id, test.nodeid or None
        data = test.component(Kind.ERROR_TRACKING)
    else:  # a dict, or a view of one: read as the dict
        raw = test.data if isinstance(test, RecordView) else test
        extension = str(raw.get("extension_id") or "")
        nodeid = str(raw.get("nodeid") or "") or None
        data = (
            test.component(Kind.ERROR_TRACKING)
            if isinstance(test, RecordView)
            else (component_of(test, Kind.ERROR_TRACKING))
        )
    key = nodeid if test_key is None else test_key
    if data is None:
        return
    records = data.records
    counted = data.details.get("groups")
    if not isinstance(counted, (list, tuple)) or not counted:
        for record in records:
            ts = _number(record.get("ts"))
            yield Occurrence(extension, error_key(record), record, 1, ts, ts, nodeid, key)
        return
    newest = {r.get("fingerprint"): r for r in records if r.get("fingerprint")}
    for entry in counted:
        if isinstance(entry, Mapping) and entry.get("fingerprint"):
            sample = newest.get(entry["fingerprint"], {})
            first = _number(entry.get("first_ts")) or _number(sample.get("ts"))
            last = _number(entry.get("last_ts")) or _number(sample.get("ts"))
            count = int(_number(entry.get("count")) or 1)
            error = {**entry, **sample}
            yield Occurrence(extension, error_key(error), error, count, first, last, nodeid, key)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _not_older(ts: float | None, than: float | None) -> bool:
    """Whether *ts* is as new as *than* (of equal times the later given wins)."""
    return ts is not None and (than is None or ts >= than)


def earliest(a: float | None, b: float | None) -> float | None:
    """The earlier of two times, either of which may be unknown."""
    return b if a is None else a if b is None else min(a, b)


def latest(a: float | None, b: float | None) -> float | None:
    """The later of two times, either of which may be unknown."""
    return b if a is None else a if b is None else max(a, b)


__all__ = [
    "GROUP_NODEIDS",
    "ErrorGroup",
    "ErrorRecord",
    "Occurrence",
    "OccurrenceGroup",
    "OccurrenceGrouping",
    "earliest",
    "error_key",
    "fingerprint_of",
    "group_errors",
    "group_order",
    "latest",
    "normalize_message",
    "occurrences_of_test",
    "trend_direction",
]
