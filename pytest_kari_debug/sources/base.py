"""What every record source shares: the protocols, the shared computations and the base class."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

from .. import views
from ..alerting import ACTIVE, RESOLVED
from ..exceptions import ConfigurationError, KariDebugError
from ..logger import LogQuery
from ..manager import DebugSession, ExtensionDebugManager
from ..model import ALERT_SEVERITIES
from ..resolutions import ALERT, ERROR_GROUP
from ..sharedmethods import dataclass
from ..storage import RECORD_KINDS, Store

if TYPE_CHECKING:
    from typing_extensions import NotRequired, Unpack

#: Record kinds a source gives (the store's names), by the component that records them.
KINDS = RECORD_KINDS
#: A resource reading younger than this is "real time" enough; older ones are read again.
FRESH_SECONDS = 1.0
#: Most records :meth:`RecordSource.records` gives unless asked for fewer.
MAX_RECORDS = 100_000
ALERT_STATUSES = (ACTIVE, RESOLVED, "inhibited")


class LiveOnlyError(KariDebugError):
    """What was asked needs a live debug manager; the source holds recorded data only.

    ``pytest_kari_debug.dashboard.DashboardError`` is this class (the REST API answers 409).
    """


@dataclass(frozen=True)
class LogBatch:
    """New log records after a cursor, the cursor to ask from next, and records missed.

    *missed* counts records that went out of the bounded buffer before they could be read
    (whether or not they would have passed the filters).
    """

    records: list[dict[str, Any]]
    cursor: str
    missed: int = 0
    #: The cursor of each record (resuming from it starts right after that record).
    cursors: list[str] = field(default_factory=list)


#: Keeps a record (or an alert view) when it returns true.
RecordFilter = Callable[[dict[str, Any]], bool]


class RecordQuery(TypedDict, total=False):
    """Which records :meth:`RecordSource.records` gives, newest first."""

    #: At most this many (default :data:`MAX_RECORDS`).
    limit: int
    #: Only those at or after this time (epoch seconds).
    since: float | None
    #: Only those of tests whose node id holds this text.
    nodeid: str | None
    #: Only those it accepts.
    keep: RecordFilter | None


class LogWindow(TypedDict):
    """Which log records :meth:`ExtensionSource.logs_after` gives after its cursor."""

    #: Without a cursor: at most this many of the newest records that pass the filters.
    backlog: int
    #: After a cursor: at most this many (the older ones beyond are missed).
    limit: int
    #: Only those of tests whose node id holds this text.
    nodeid: NotRequired[str | None]


@runtime_checkable
class RecordSource(Protocol):
    """The records of one extension (or every extension) wherever they are kept."""

    @property
    def name(self) -> str:
        """``"live"``, ``"store"`` or ``"run"``."""
        ...

    @property
    def extension_id(self) -> str | None:
        """The extension read, or ``None`` for every extension the source holds."""
        ...

    def tests(self, *, since: float | None = None, slim: bool = False) -> list[dict[str, Any]]:
        """The test records in scope, in the order they finished (*slim*: figures only)."""
        ...

    def records(self, kind: str, **query: Unpack[RecordQuery]) -> list[dict[str, Any]]:
        """Records of *kind* (``log``, ``metric``, ``error``, ``span``, ``alert``), newest
        first, that the *query* (:class:`RecordQuery`) asks for."""
        ...

    def logs(
        self, filters: LogQuery, *, limit: int, nodeid: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest log records *filters* keeps (of tests whose node id holds *nodeid*)."""
        ...

    def error_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        """The error groups (of errors since *since*), most errors first."""
        ...

    def alerts(
        self, *, keep: RecordFilter | None = None, since: float | None = None, limit: int = ...
    ) -> list[dict[str, Any]]:
        """The alerts *keep* accepts, newest first, once each."""
        ...

    def alert_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        """One alert per rule and test (:func:`pytest_kari_debug.views.alert_groups`), newest
        first, with its occurrences (of alerts since *since*)."""
        ...

    def alert_statistics(self) -> dict[str, Any]:
        """The alert groups by severity, type and status; live, notification outcomes too."""
        ...

    def metric_rows(self, *, since: float | None = None) -> list[views.MetricRow]:
        """``(name, unit, ts, value)`` of every numeric metric point (since *since*)."""
        ...

    def counts(self) -> dict[str, int]:
        """How many records are kept of each component's kind (``logging``, ``metrics``...)."""
        ...

    def resolve(self, what: str, key: str, notes: str | None = None) -> dict[str, Any]:
        """Mark error group *key* (*what* ``error_group``) or alert *key* (``alert``: an alert
        id, or an alert group's id for every occurrence of it) resolved.

        Returns the error group or alert group as it is now; ``LookupError`` when none has
        *key*. An occurrence after the resolution makes it regressed (active) again.
        """
        ...

    def reopen(self, what: str, key: str) -> dict[str, Any]:
        """Mark error group *key*, or the alert group of alert *key*, open again."""
        ...


@runtime_checkable
class ExtensionSource(RecordSource, Protocol):
    """The records of one extension with what its dashboard shows besides them."""

    @property
    def extension_name(self) -> str:
        """The extension's display name."""
        ...

    def status(self) -> dict[str, Any]:
        """Running, uptime, components, record counts, drops, sessions, diagnostics."""
        ...

    def log_levels(self) -> dict[str, int]:
        """Log records per level."""
        ...

    def last_run(self) -> dict[str, Any] | None:
        """The stored run in scope (the newest without one): id, times, outcomes, tests."""
        ...

    def error_analysis(self, groups: list[dict[str, Any]]) -> dict[str, Any]:
        """Totals, categories and top groups of *groups* (live: rate and trend too)."""
        ...

    def health(self) -> dict[str, Any]:
        """A health check now: overall status and one entry per component checked."""
        ...

    def metric_state(self) -> dict[str, Any]:
        """What a metrics view adds to the aggregates (live: thresholds, breaches, drops)."""
        ...

    def latest(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """The newest value of each of *names*: ``{name: {value, unit, ts, source} | None}``."""
        ...

    def logs_after(
        self, cursor: str | None, filters: LogQuery, **window: Unpack[LogWindow]
    ) -> LogBatch:
        """Log records newer than *cursor*, oldest first (see the dashboard's logs_after)."""
        ...

    def sessions(self, *, limit: int) -> dict[str, Any]:
        """Running sessions and the newest completed ones."""
        ...

    def run_tests(self) -> list[dict[str, Any]]:
        """The tests of the run in scope (the newest without one; live: stopped sessions)."""
        ...

    def metric_document(self, *, limit: int) -> dict[str, Any]:
        """The newest *limit* metric records, oldest first, with what else the source keeps
        of metrics (live: resource samples, aggregates, thresholds, breaches, drops)."""
        ...

    def live_manager(self, what: str) -> ExtensionDebugManager:
        """The live manager, or :class:`LiveOnlyError` naming *what* needed it."""
        ...


# What every source computes the same way ---------------------------------------------------
def alert_statistics(alerts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts by severity, type and status of recorded alerts (as the live manager counts)."""
    alerts = list(alerts)
    by_type: dict[str, int] = {}
    by_status: dict[str, int] = dict.fromkeys(ALERT_STATUSES, 0)
    for alert in alerts:
        kind = str(alert.get("alert_type") or "unknown")
        by_type[kind] = by_type.get(kind, 0) + 1
        by_status[alert["status"]] = by_status.get(alert["status"], 0) + 1
    return {
        "total_alerts": len(alerts),
        "active_alerts": by_status[ACTIVE],
        "by_severity": known_severities(alerts),
        "by_type": dict(sorted(by_type.items())),
        "by_status": by_status,
        "occurrences": sum(int(a.get("occurrences") or 1) for a in alerts),
    }


def known_severities(alerts: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Alerts per known severity (as the live alert manager's statistics count them)."""
    return {k: n for k, n in views.severity_counts(alerts).items() if k in ALERT_SEVERITIES}


def error_analysis(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals, categories and the top ten of recorded error groups (most errors first)."""
    categories: dict[str, int] = {}
    for group in groups:
        kind = group["category"]
        categories[kind] = categories.get(kind, 0) + group["count"]
    return {
        "total_errors": sum(g["count"] for g in groups),
        "unique_errors": len(groups),
        "categories": categories,
        "top_groups": groups[:10],
    }


def _check_resolve(what: str, key: Any, notes: Any) -> None:
    if what not in (ERROR_GROUP, ALERT):
        msg = f"what must be {ERROR_GROUP!r} or {ALERT!r}, got {what!r}"
        raise ConfigurationError(msg)
    if not isinstance(key, str) or not isinstance(notes, (str, type(None))):
        name = "fingerprint" if what == ERROR_GROUP else "alert_id"
        msg = f"{name} and notes must be text, got {key!r} and {notes!r}"
        raise ConfigurationError(msg)


def _check_extension(extension_id: Any) -> None:
    if extension_id is not None and (not isinstance(extension_id, str) or not extension_id):
        msg = f"extension_id must be a non-empty text or None, got {extension_id!r}"
        raise ConfigurationError(msg)


def _check_kind(kind: str) -> None:
    if kind not in KINDS.values():
        msg = f"kind must be one of {', '.join(KINDS.values())}, got {kind!r}"
        raise ConfigurationError(msg)


def _since(found: list[dict[str, Any]], since: float | None, key: str) -> list[dict[str, Any]]:
    if since is None:
        return found
    return [item for item in found if float(item.get(key) or 0.0) >= since]


def cursor_position(cursor: str | None, prefix: str) -> int | None:
    """The place a log cursor ``<prefix><number>`` names, or None when it is not one of
    this source's (no cursor, another source's, garbled): then the source starts afresh."""
    if cursor and cursor.startswith(prefix) and cursor[len(prefix) :].isdigit():
        return int(cursor[len(prefix) :])
    return None


def _nodeid_has(record: Mapping[str, Any], nodeid: str | None) -> bool:
    return nodeid is None or nodeid in str(record.get("nodeid") or record.get("test") or "")


def _filtered(
    records: Iterable[dict[str, Any]],
    limit: int,
    since: float | None,
    nodeid: str | None,
    keep: RecordFilter | None,
) -> list[dict[str, Any]]:
    """The first *limit* of *records* (newest first) that pass the filters of ``records()``."""
    found: list[dict[str, Any]] = []
    for record in records:
        if len(found) >= limit:
            break
        if since is not None and float(record.get("ts") or record.get("start") or 0.0) < since:
            continue
        if _nodeid_has(record, nodeid) and (keep is None or keep(record)):
            found.append(record)
    return found


def session_summary(session: DebugSession) -> dict[str, Any]:
    """A stopped debug session as the dashboard lists it, with its record counts."""
    counts = {}
    for kind, data in session.collected_data.items():
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            counts[kind] = len(data["records"])
    return {
        "session_id": session.session_id,
        "name": session.name,
        "status": session.status,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "duration_seconds": session.duration_seconds,
        "configuration": dict(session.configuration),
        "records": counts,
    }


#: An error group or an alert group, as :func:`pytest_kari_debug.views.error_group` and
#: :func:`pytest_kari_debug.views.alert_groups` give them.
Group = dict[str, Any]


class _Source:
    """What every source does the same way once it says where its records are.

    A source gives its records newest first (:meth:`_newest`) and its alerts as views
    (:meth:`_alert_views`); filtering, limits, alert groups and the lookup of what to resolve
    are shared. :meth:`_mark` keeps a resolution where the source keeps them.
    """

    extension_id: str | None

    def records(self, kind: str, **query: Unpack[RecordQuery]) -> list[dict[str, Any]]:
        _check_kind(kind)
        unknown = query.keys() - RecordQuery.__optional_keys__
        if unknown:
            accepted = ", ".join(sorted(RecordQuery.__optional_keys__))
            msg = f"unknown record query {', '.join(sorted(unknown))}; accepted: {accepted}"
            raise TypeError(msg)
        limit, keep = query.get("limit", MAX_RECORDS), query.get("keep")
        since, nodeid = query.get("since"), query.get("nodeid")
        page = limit if keep is None else views.PAGE
        return _filtered(self._newest(kind, since, nodeid, page), limit, since, nodeid, keep)

    def alerts(
        self,
        *,
        keep: RecordFilter | None = None,
        since: float | None = None,
        limit: int = views.MAX_ALERTS,
    ) -> list[dict[str, Any]]:
        return _filtered(self._alert_views(since), limit, since, None, keep)

    def error_groups(self, *, since: float | None = None) -> list[Group]:
        raise NotImplementedError

    def alert_groups(self, *, since: float | None = None) -> list[Group]:
        raise NotImplementedError

    def _newest(
        self, kind: str, since: float | None, nodeid: str | None, page: int
    ) -> Iterator[dict[str, Any]]:
        """Records of *kind*, newest first (*since*, *nodeid*: filters it may apply early)."""
        raise NotImplementedError

    def _alert_views(self, since: float | None) -> Iterator[dict[str, Any]]:
        """Each alert once, as :func:`pytest_kari_debug.views.alert_view` shows it."""
        raise NotImplementedError

    def _mark(self, what: str, group: Group, key: str, notes: str | None, reopen: bool) -> None:
        raise NotImplementedError

    def resolve(self, what: str, key: str, notes: str | None = None) -> Group:
        _check_resolve(what, key, notes)
        self._mark(what, self._find(what, key), key, notes, False)
        return self._find(what, key)

    def reopen(self, what: str, key: str) -> Group:
        _check_resolve(what, key, None)
        self._mark(what, self._find(what, key), key, None, True)
        return self._find(what, key)

    def _groups(self, what: str) -> list[Group]:
        """Where :meth:`resolve` looks for *key*."""
        return self.error_groups() if what == ERROR_GROUP else self.alert_groups()

    def _find(self, what: str, key: str) -> Group:
        if what == ERROR_GROUP:
            found = [g for g in self._groups(what) if g["fingerprint"] == key]
        else:
            found = [g for g in self._groups(what) if key == g["group"] or key in g["alert_ids"]]
        label = "error group" if what == ERROR_GROUP else "alert"
        if not found:
            msg = f"no {label} {key!r} {self._where()}"
            raise LookupError(msg)
        extensions = sorted({str(item["extension_id"]) for item in found})
        if len(extensions) > 1:
            msg = f"{label} {key!r} is recorded for several extensions ({', '.join(extensions)})"
            raise LookupError(msg + "; name one")
        return found[0]

    def _where(self) -> str:
        return f"recorded for extension {self.extension_id!r}" if self.extension_id else (
            "recorded for any extension"
        )  # fmt: skip


def _mark_in_store(
    store: Store, mark: tuple[str, Group, str, str | None, bool], *, at: float
) -> None:
    """Keep a resolution in the store's one table; reopening an alert reopens its group."""
    what, group, key, notes, reopen = mark
    extension = str(group["extension_id"])
    if not reopen:
        store.resolve(what, extension, key, notes=notes, at=at)
        return
    keys = [key] if what == ERROR_GROUP else [group["group"], *group["alert_ids"]]
    for each in keys:
        store.reopen(what, extension, each)
