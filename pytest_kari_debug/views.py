"""The views every surface shows: metric aggregates, error groups, alerts and log searches.

:class:`~pytest_kari_debug.dashboard.ExtensionDebugDashboard` (and through it the REST API and
the live page), the ``kari-debug`` CLI and the HTML report compute them here, from a live
manager's components, the store's rows or a run's test records, so a figure means one thing
wherever it is shown:

* a metric's ``p50`` and ``p95`` interpolate linearly between the closest ranks
  (:func:`~pytest_kari_debug.stats.quantile`, as alert rules and the Prometheus export do),
  and ``last`` is the newest point's value;
* an error group is ``open``, ``resolved`` or ``regressed`` (seen again after it was resolved),
  by :class:`ErrorStates`; its message is the newest error's;
* an alert is listed once per alert id, and is ``resolved`` when its manager resolved it or
  the store keeps a resolution for it;
* a log search keeps what :class:`~pytest_kari_debug.logger.LogQuery` keeps.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .alerting import ACTIVE, AlertSeverity
from .errors.grouping import (
    Occurrence,
    OccurrenceGroup,
    earliest,
    error_key,
    group_errors,
    latest,
    occurrences_of_test,
)
from .exceptions import ConfigurationError, KariDebugError
from .logger import level_name, level_number
from .model import ALERT_SEVERITIES_WORST_FIRST, AnyTest, Kind, records_of
from .resolutions import (
    ALERT,
    ERROR_GROUP,
    ERROR_STATUSES,
    OPEN,
    REGRESSED,
    RESOLVED,
    resolution_of,
    status_of,
)
from .stats import quantile
from .storage import Store

if TYPE_CHECKING:
    from .errors import ErrorTracker

__all__ = [
    "ERROR_STATUSES",
    "OPEN",
    "REGRESSED",
    "RESOLVED",
    "STATUS_FILTERS",
    "ErrorStates",
    "alert_group_key",
    "alert_groups",
    "alert_view",
    "error_groups_of_tests",
    "error_key",
    "error_occurrences",
    "group_points",
    "group_view",
    "level_floor",
    "live_error_groups",
    "metric_aggregates",
    "metric_rows_of_tests",
    "metric_stats",
    "reopen_alert",
    "resolve_alert",
    "run_error_groups",
    "severity_counts",
    "severity_rank",
    "short_text",
    "status_matches",
    "store_error_groups",
    "unique_alerts",
]

#: Rows read from the store per query while a filter SQLite cannot apply drops some.
PAGE = 500
#: Most alerts a store-backed view reads (statistics count these).
MAX_ALERTS = 5000

# Metrics ---------------------------------------------------------------------------------
Point = tuple[float, float]
#: ``(name, unit, ts, value)``: one numeric metric point, as ``Store.metric_points`` gives it.
MetricRow = tuple[str, str, float, float]


def metric_stats(
    name: str, unit: str, points: Sequence[Point], *, window: float | None = None
) -> dict[str, Any]:
    """``count, min, mean, p50, p95, max, last, last_ts`` of one metric's ``(ts, value)`` points.

    ``last`` is the newest point's value (of equal times, the one given last). With *window*
    (seconds) the points per second over it come too, as ``rate_per_second``.
    """
    if not points:
        msg = f"metric {name!r} has no points to aggregate"
        raise ValueError(msg)
    ordered = sorted(points, key=lambda point: point[0])
    values = sorted(value for _, value in ordered)
    stats: dict[str, Any] = {
        "name": name,
        "unit": unit,
        "count": len(values),
        "min": values[0],
        "mean": math.fsum(values) / len(values),
        "p50": quantile(values, 0.5),
        "p95": quantile(values, 0.95),
        "max": values[-1],
        "last": ordered[-1][1],
        "last_ts": ordered[-1][0],
    }
    if window is not None:
        stats["rate_per_second"] = len(values) / window if window > 0 else 0.0
    return stats


def group_points(rows: Iterable[MetricRow]) -> tuple[dict[str, list[Point]], dict[str, str]]:
    """The ``(ts, value)`` points of each metric name, and each name's unit (its newest)."""
    points: dict[str, list[Point]] = {}
    units: dict[str, tuple[float, str]] = {}
    for name, unit, ts, value in rows:
        points.setdefault(name, []).append((ts, value))
        seen = units.get(name)
        if seen is None or ts >= seen[0]:
            units[name] = (ts, unit)
    return points, {name: unit for name, (_, unit) in units.items()}


def metric_aggregates(
    rows: Iterable[MetricRow], *, window: float | None = None
) -> dict[str, dict[str, Any]]:
    """:func:`metric_stats` of every metric name among *rows*, by name."""
    points, units = group_points(rows)
    return {
        name: metric_stats(name, units[name], points[name], window=window)
        for name in sorted(points)
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def metric_rows_of_tests(tests: Iterable[AnyTest]) -> list[MetricRow]:
    """The numeric metric points recorded in test records (what the store keeps of them)."""
    rows: list[MetricRow] = []
    for test in tests:
        for record in records_of(test, Kind.METRICS):
            value = _number(record.get("value"))
            if value is not None and record.get("name") is not None:
                ts = _number(record.get("ts")) or 0.0
                rows.append((str(record["name"]), str(record.get("unit") or ""), ts, value))
    return rows


# Error groups ----------------------------------------------------------------------------
#: What an error-group filter may ask for: a status, or ``unresolved`` (open or regressed).
STATUS_FILTERS = (*ERROR_STATUSES, "unresolved")


def status_matches(status: str, wanted: str | None) -> bool:
    """Whether a group of *status* passes the filter *wanted* (see :data:`STATUS_FILTERS`)."""
    if wanted is None:
        return True
    if wanted not in STATUS_FILTERS:
        msg = f"status must be one of {', '.join(STATUS_FILTERS)}, got {wanted!r}"
        raise ConfigurationError(msg)
    if wanted == "unresolved":
        return status != RESOLVED
    return status == wanted


class ErrorStates:
    """Whether each error group is open, resolved or regressed: one resolution per group.

    *resolutions* map ``(extension_id, fingerprint)`` to a resolution (the store's one
    ``resolutions`` table, or what a live tracker's groups and a run's errors section imply:
    :func:`~pytest_kari_debug.resolutions.resolution_of`); :func:`status_of` decides.
    *details* are groups whose own fields (category, culprit, new...) a view may fall back on.
    """

    def __init__(
        self,
        resolutions: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
        *,
        store: Store | None = None,
        details: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self.store = store
        self.resolutions = dict(resolutions or {})
        self._details: dict[tuple[str, str], Mapping[str, Any]] = {
            (str(group.get("extension_id") or ""), str(group["fingerprint"])): group
            for group in details
            if isinstance(group, Mapping) and group.get("fingerprint")
        }

    @classmethod
    def of_store(cls, store: Store, extension_id: str | None = None) -> ErrorStates:
        """The resolutions the store keeps for *extension_id* (every extension when ``None``)."""
        return cls(store.resolutions(ERROR_GROUP, extension_id=extension_id), store=store)

    @classmethod
    def of_groups(cls, groups: Iterable[Mapping[str, Any]]) -> ErrorStates:
        """The states groups carry themselves (a live tracker's, a run's errors section)."""
        kept = [g for g in groups if isinstance(g, Mapping) and g.get("fingerprint")]
        resolutions = {}
        for group in kept:
            resolution = resolution_of(group)
            if resolution is not None:
                key = (str(group.get("extension_id") or ""), str(group["fingerprint"]))
                resolutions[key] = resolution
        return cls(resolutions, details=kept)

    def state(
        self, extension: str, fingerprint: str, last_seen: float | None
    ) -> tuple[str, float | None, str | None]:
        """``(status, resolved_at, notes)`` of a group whose newest error is at *last_seen*."""
        found = self.resolutions.get((extension, fingerprint))
        status = status_of(found, last_seen)
        return status, (found or {}).get("resolved_at"), (found or {}).get("notes")

    def details(self, extension: str, fingerprint: str) -> Mapping[str, Any]:
        """The group's own fields (category, culprit, new...), when it came with them."""
        return self._details.get((extension, fingerprint)) or {}

    def resolve(self, extension: str, fingerprint: str, notes: str | None, *, at: float) -> None:
        """Mark the group resolved in the store."""
        if self.store is None:
            msg = f"error group {fingerprint!r} has no store to keep its resolution in"
            raise KariDebugError(msg)
        self.store.resolve(ERROR_GROUP, extension, fingerprint, notes=notes, at=at)

    def reopen(self, extension: str, fingerprint: str) -> None:
        """Mark the group open again in the store (its notes and history stay)."""
        if self.store is None:
            msg = f"error group {fingerprint!r} has no store to reopen it in"
            raise KariDebugError(msg)
        self.store.reopen(ERROR_GROUP, extension, fingerprint)


def group_view(group: OccurrenceGroup, states: ErrorStates) -> dict[str, Any]:
    """One error group as every surface shows it (its newest error's words).

    ``group`` repeats ``fingerprint`` (the CLI's name for it); ``tests`` counts the tests the
    group's errors occurred in; ``regressed`` is ``status == "regressed"``.
    """
    extension_id, fingerprint, last = group.extension_id, group.fingerprint, group.newest
    details = states.details(extension_id, fingerprint)
    status, resolved_at, notes = states.state(extension_id, fingerprint, group.last_seen)
    return {
        "fingerprint": fingerprint,
        "group": fingerprint,
        "extension_id": extension_id,
        "error_type": last.get("error_type") or details.get("error_type") or "Error",
        "message": last.get("error_message") or details.get("message"),
        "category": last.get("category") or details.get("category") or "unknown",
        "suggestion": last.get("suggestion") or details.get("suggestion") or None,
        "culprit": last.get("culprit") or details.get("culprit"),
        "count": group.count,
        "tests": group.tests,
        "first_seen": group.first_seen,
        "last_seen": group.last_seen,
        "last_test": group.last_test,
        "status": status,
        "regressed": status == REGRESSED,
        "resolved_at": resolved_at,
        "resolution_notes": notes,
    }


def live_error_groups(tracker: ErrorTracker) -> list[dict[str, Any]]:
    """The groups of a live error tracker, most errors first."""
    extension = str(tracker.extension_id)
    tracked = tracker.get_groups()
    states = ErrorStates.of_groups({**g.to_dict(), "extension_id": extension} for g in tracked)
    occurrences = (
        Occurrence(
            extension,
            group.fingerprint,
            group.last_record.to_dict() if group.last_record is not None else group.to_dict(),
            group.count,
            group.first_seen,
            group.last_seen,
            tests=len(group.nodeids),
        )
        for group in tracked
    )
    return [group_view(group, states) for group in group_errors(occurrences)]


def store_error_groups(
    store: Store,
    *,
    extension_id: str | None = None,
    run_id: int | None = None,
    since: float | None = None,
    states: ErrorStates | None = None,
) -> list[dict[str, Any]]:
    """The groups of the errors the store recorded (of a run, since a time), most first.

    The store counts its records per fingerprint (one SQL query); :func:`group_errors` sums
    and orders those counts as every other view's.
    """
    states = states or ErrorStates.of_store(store, extension_id)
    counted = store.group_records(
        "error", "fingerprint", extension_id=extension_id, run_id=run_id, since=since
    )
    occurrences = (
        Occurrence(
            str(row["extension_id"]),
            str(row["key"]),
            row["last"],
            int(row["count"]),
            row["first_ts"],
            row["last_ts"],
            tests=int(row["tests"]),
        )
        for row in counted
    )
    return [group_view(group, states) for group in group_errors(occurrences)]


def error_occurrences(
    test: AnyTest,
) -> Iterator[tuple[Mapping[str, Any], int, float | None, float | None]]:
    """``(error, count, first_ts, last_ts)`` per occurrence of one test record's errors
    (:func:`~pytest_kari_debug.errors.grouping.occurrences_of_test`)."""
    for found in occurrences_of_test(test):
        yield found.error, found.count, found.first_ts, found.last_ts


def error_groups_of_tests(tests: Iterable[AnyTest], states: ErrorStates) -> list[dict[str, Any]]:
    """The groups of the errors in a run's test records, most errors first.

    Each also lists ``test_indexes``: the positions in *tests* of the tests it occurred in.
    """
    occurrences = (
        found
        for index, test in enumerate(tests)
        for found in occurrences_of_test(test, test_key=index)
    )
    return error_group_views(group_errors(occurrences), states)


def error_group_views(
    groups: Iterable[OccurrenceGroup], states: ErrorStates
) -> list[dict[str, Any]]:
    """Each group as :func:`group_view` shows it, with ``test_indexes``: its tests' keys
    (their positions in the run, when grouped so)."""
    views = []
    for group in groups:
        view = group_view(group, states)
        view["test_indexes"] = group.test_keys
        views.append(view)
    return views


# Alerts ----------------------------------------------------------------------------------
#: Alert severities, worst first.


def severity_rank(value: Any) -> int:
    """The rank of a severity name (low 1 ... critical 4); 0 for an unknown one."""
    try:
        return AlertSeverity.parse(value).rank
    except ConfigurationError:
        return 0


def severity_counts(alerts: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Alerts per severity: every known one, worst first, then others alphabetically."""
    counts = dict.fromkeys(ALERT_SEVERITIES_WORST_FIRST, 0)
    other: dict[str, int] = {}
    for alert in alerts:
        severity = str(alert.get("severity") or "unknown").lower()
        if severity in counts:
            counts[severity] += 1
        else:
            other[severity] = other.get(severity, 0) + 1
    return counts | dict(sorted(other.items()))


def alert_view(
    record: Mapping[str, Any],
    resolutions: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    *,
    extension_id: str | None = None,
) -> dict[str, Any]:
    """One alert as every surface shows it: its record's fields (without deliveries), with
    ``alert_id``, ``severity``, ``alert_type``, ``status``, ``resolved_at``,
    ``resolution_notes`` and ``test``; a resolution the store keeps makes it resolved.
    """
    alert = {key: value for key, value in record.items() if key != "deliveries"}
    alert_id = str(record.get("alert_id") or f"record-{record.get('record_id')}")
    extension = extension_id or str(record.get("extension_id") or "")
    alert.update(
        alert_id=alert_id,
        extension_id=extension,
        severity=str(record.get("severity") or record.get("level") or ""),
        alert_type=record.get("alert_type") or record.get("name"),
        status=str(record.get("status") or ACTIVE),
        resolved_at=record.get("resolved_at"),
        resolution_notes=record.get("resolution_notes"),
        test=record.get("nodeid"),
    )
    resolution = (resolutions or {}).get((extension, alert_id))
    if resolution is not None and status_of(resolution) == RESOLVED:
        alert.update(status=RESOLVED, resolved_at=resolution["resolved_at"],
                     resolution_notes=resolution["notes"])  # fmt: skip
    return alert


def unique_alerts(
    records: Iterable[Mapping[str, Any]],
    resolutions: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    *,
    extension_id: str | None = None,
    seen: set[tuple[str, str]] | None = None,
) -> Iterator[dict[str, Any]]:
    """:func:`alert_view` of each alert once: the first record of an alert id wins.

    Give records newest first, so an alert shows as it was last recorded.
    """
    seen = set() if seen is None else seen
    for record in records:
        alert = alert_view(record, resolutions, extension_id=extension_id)
        key = (alert["extension_id"], alert["alert_id"])
        if key not in seen:
            seen.add(key)
            yield alert


def resolve_alert(
    store: Store, extension_id: str, alert_id: str, notes: str | None, *, at: float
) -> None:
    """Keep in the store that alert *alert_id* was resolved (:func:`alert_view` reads it)."""
    store.resolve(ALERT, extension_id, alert_id, notes=notes, at=at)


def reopen_alert(store: Store, extension_id: str, keys: Iterable[str]) -> None:
    """Reopen the alerts or alert groups *keys*: they are active again."""
    for key in keys:
        store.reopen(ALERT, extension_id, key)


def alert_group_key(alert: Mapping[str, Any]) -> str:
    """The id of the alert's group: one per extension, rule (or alert type) and test.

    The same budget broken by the same test in ten runs is one group with ten occurrences.
    """
    rule = alert.get("rule") or ""
    kind = alert.get("alert_type") or alert.get("name") or ""
    parts = (alert.get("extension_id") or "", kind, rule, alert.get("test") or "")
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8", "replace"))
    return f"ag-{digest.hexdigest()[:16]}"


def _seen(alert: Mapping[str, Any]) -> tuple[float | None, float | None]:
    first = _number(alert.get("created_at")) or _number(alert.get("ts"))
    last = _number(alert.get("last_seen")) or first
    return first, latest(first, last)


def alert_groups(
    alerts: Iterable[Mapping[str, Any]],
    resolutions: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One alert per rule and test (:func:`alert_group_key`), newest first, from *alerts*
    (:func:`alert_view` dicts of every run, newest first).

    Each is its newest occurrence's view with ``group``, ``occurrences`` (summed over the
    alerts of the group), ``alert_ids``, ``runs`` (distinct run ids), ``first_seen`` and
    ``last_seen``. It is resolved when its newest occurrence is, or when the group was
    resolved (*resolutions*, by group id) after its last occurrence; an occurrence after
    that makes it active again.
    """
    groups: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        key = alert_group_key(alert)
        first, last = _seen(alert)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {**alert, "group": key, "occurrences": 0, "alert_ids": [],
                                   "runs": [], "first_seen": first, "last_seen": last}  # fmt: skip
        group["occurrences"] += int(_number(alert.get("occurrences")) or 1)
        group["alert_ids"].append(alert["alert_id"])
        run = alert.get("run_id")
        if run is not None and run not in group["runs"]:
            group["runs"].append(run)
        group["first_seen"] = earliest(group["first_seen"], first)
        group["last_seen"] = latest(group["last_seen"], last)
    for key, group in groups.items():
        found = (resolutions or {}).get((str(group["extension_id"]), key))
        if found is not None and status_of(found, group["last_seen"]) == RESOLVED:
            group.update(status=RESOLVED, resolved_at=found["resolved_at"],
                         resolution_notes=found["notes"])  # fmt: skip
    return sorted(groups.values(), key=lambda g: -(g["last_seen"] or 0.0))


# Logs ------------------------------------------------------------------------------------
def level_floor(level: Any) -> str | None:
    """The canonical name of *level* (``"error"`` -> ``"ERROR"``), or ``None`` for none."""
    if level is None or level == "":
        return None
    return level_name(level_number(level))


# Run-level error groups (the plugin at the end of a run, `kari-debug import`) ------------
def run_error_groups(tests: Iterable[AnyTest]) -> list[dict[str, Any]]:
    """The run's error groups from the test records, in the one order of groups.

    A test's errors are counted as every view counts them (the session's exact per-group
    counters, which go past ``max_errors``, else one per record); each group keeps what the
    store's error groups need (template, culprit, an example record). Its words are its
    newest error's, as in every view.
    """
    occurrences = (found for test in tests for found in occurrences_of_test(test))
    return error_group_rows(group_errors(occurrences))


def error_group_rows(groups: Iterable[OccurrenceGroup]) -> list[dict[str, Any]]:
    """Each group of a run as :func:`run_error_groups` gives it (what the store keeps)."""
    return [
        {
            "extension_id": group.extension_id,
            "fingerprint": group.fingerprint,
            "error_type": str(group.newest.get("error_type") or "Error"),
            "message": short_text(group.newest.get("error_message") or group.newest.get("message")),
            "template": short_text(group.newest.get("template")),
            "category": group.newest.get("category") or "unknown",
            "grouping": group.newest.get("grouping"),
            "culprit": group.newest.get("culprit"),
            "suggestion": (group.sample or group.newest).get("suggestion"),
            "count": group.count,
            "tests": group.tests,
            "nodeids": group.nodeids,
            "first_ts": group.first_seen,
            "last_ts": group.last_seen,
            "sample": _sample(group.sample),
        }
        for group in groups
    ]


def short_text(value: Any, limit: int = 500) -> str | None:
    """*value* as text of at most *limit* characters (``...`` marks a cut)."""
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _sample(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An example record of a group, without frame locals (they stay in the test record)."""
    if record is None:
        return None
    sample = {key: value for key, value in record.items() if key not in ("frames", "chain")}
    sample["frames"] = [
        {k: v for k, v in frame.items() if k != "locals"}
        for frame in record.get("frames") or ()
        if isinstance(frame, dict)
    ]
    return sample
