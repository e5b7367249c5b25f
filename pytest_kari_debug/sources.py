"""Record sources: one view of an extension's records, live, stored or of one finished run.

Every surface reads records through a :class:`RecordSource`, so a view is computed once
whatever holds the records:

* :class:`LiveSource` reads a live :class:`~pytest_kari_debug.manager.ExtensionDebugManager`'s
  components (the dashboard of a running manager, the REST API);
* :class:`StoreSource` reads what the store recorded for an extension, or one run of it (the
  dashboard and API of a recorded extension, the ``kari-debug`` CLI);
* :class:`RunSource` reads a finished run's test records (the HTML report).

The three answer in the same shapes: records newest first, error groups most errors first
(:func:`pytest_kari_debug.views.error_group`), alerts newest first and once each
(:func:`pytest_kari_debug.views.alert_view`), metric rows ``(name, unit, ts, value)``.
:class:`ExtensionSource` adds what only the dashboard of one extension shows (status, health,
sessions, following the log); the live and store sources have it.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from . import views
from .alerting import ACTIVE, RESOLVED
from .exceptions import ConfigurationError, KariDebugError
from .exporters.bundle import session_tests
from .figures import measure
from .logger import LEVELS, LogQuery, LogRecord, to_epoch
from .manager import STATUS_ORDER, DebugSession, ExtensionDebugManager
from .metrics import SAMPLE_FIELDS
from .model import ALERT_SEVERITIES
from .resolutions import ALERT, ERROR_GROUP
from .storage import RECORD_KINDS, Store

__all__ = [
    "ExtensionSource",
    "LiveOnlyError",
    "LiveSource",
    "LogBatch",
    "RecordSource",
    "RunSource",
    "StoreSource",
    "alert_statistics",
    "error_analysis",
]

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

    def records(
        self,
        kind: str,
        *,
        limit: int = MAX_RECORDS,
        since: float | None = None,
        nodeid: str | None = None,
        keep: RecordFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Records of *kind* (``log``, ``metric``, ``error``, ``span``, ``alert``), newest first.

        Only those since *since*, of tests whose node id holds *nodeid*, that *keep* accepts.
        """
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
        self,
        cursor: str | None,
        filters: LogQuery,
        *,
        backlog: int,
        limit: int,
        nodeid: str | None = None,
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

    def records(
        self,
        kind: str,
        *,
        limit: int = MAX_RECORDS,
        since: float | None = None,
        nodeid: str | None = None,
        keep: RecordFilter | None = None,
    ) -> list[dict[str, Any]]:
        _check_kind(kind)
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


# Live --------------------------------------------------------------------------------------
class LiveSource(_Source):
    """A live manager's records, read through its components' public methods."""

    name = "live"

    def __init__(
        self, manager: ExtensionDebugManager, *, clock: Callable[[], float] = time.time
    ) -> None:
        if not isinstance(manager, ExtensionDebugManager):
            msg = f"a live source needs an ExtensionDebugManager, got {manager!r}"
            raise ConfigurationError(msg)
        self.manager = manager
        self.extension_id: str = manager.extension_id
        self.clock = clock
        self._tag = uuid.uuid4().hex[:8]
        self._fresh: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<LiveSource {self.extension_id!r}>"

    @property
    def extension_name(self) -> str:
        return self.manager.extension_name

    def live_manager(self, what: str) -> ExtensionDebugManager:
        return self.manager

    # RecordSource ------------------------------------------------------------------------
    def tests(self, *, since: float | None = None, slim: bool = False) -> list[dict[str, Any]]:
        """The stopped debug sessions, each standing for one test."""
        sessions = [s for s in list(self.manager.sessions) if s.ended_at is not None]
        if since is not None:
            sessions = [s for s in sessions if float(s.ended_at or 0.0) >= since]
        return session_tests(sessions)

    def _newest(
        self, kind: str, since: float | None, nodeid: str | None, page: int
    ) -> Iterator[dict[str, Any]]:
        manager = self.manager
        if kind == "log":
            for record in reversed(manager.logger.records.snapshot()):
                yield record.to_dict()
        elif kind == "error":
            for error in manager.error_tracker.get_errors():
                yield error.to_dict()
        elif kind == "alert":
            tests = self._tests_by_session()
            for alert in manager.alert_manager.get_alerts():
                yield {"nodeid": tests.get(str(alert.session_id)), **alert.to_dict()}
        elif kind == "metric":
            for point in reversed(manager.metrics.get_metrics()):
                yield point.to_dict()
        elif kind == "span":
            yield from reversed(manager.tracer.get_spans())
        # profiles are kept per session only

    def logs(
        self, filters: LogQuery, *, limit: int, nodeid: str | None = None
    ) -> list[dict[str, Any]]:
        kept: Iterable[LogRecord] = reversed(self.manager.logger.records.snapshot())
        if nodeid is not None:
            kept = (r for r in kept if nodeid in str(r.test or ""))
        found = dataclasses.replace(filters, limit=limit).apply(kept, LogRecord.get)
        return [record.to_dict() for record in found]

    def error_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        return _since(views.live_error_groups(self.manager.error_tracker), since, "last_seen")

    def _alert_views(self, since: float | None) -> Iterator[dict[str, Any]]:
        for record in self._newest("alert", since, None, views.PAGE):
            yield views.alert_view(record)

    def _tests_by_session(self) -> dict[str, str]:
        """The test (name) of each session: what the store files a session's records under."""
        names = {s.session_id: s.name for s in list(self.manager.sessions)}
        names.update((i.session_id, i.name) for i in self.manager.active_sessions())
        return names

    def alert_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        return views.alert_groups(self.alerts(since=since))

    def alert_statistics(self) -> dict[str, Any]:
        live = self.manager.alert_manager.get_alert_statistics()
        return {**live, **alert_statistics(self.alert_groups())}

    def metric_rows(self, *, since: float | None = None) -> list[views.MetricRow]:
        metrics = self.manager.metrics
        start = -math.inf if since is None else since
        rows: list[views.MetricRow] = []
        for point in metrics.get_metrics():
            value = point.value
            if point.ts >= start and isinstance(value, (int, float)) and math.isfinite(value):
                rows.append((point.name, point.unit, point.ts, float(value)))
        for sample in metrics.get_resource_samples(since):
            for key, unit in SAMPLE_FIELDS.items():
                sampled = sample.get(key)
                if isinstance(sampled, (int, float)) and not isinstance(sampled, bool):
                    rows.append((key, unit, sample["ts"], float(sampled)))
        return rows

    def counts(self) -> dict[str, int]:
        kept = self.manager.get_debug_summary()["counts"]
        return {kind: int(kept.get(kind, 0)) for kind in KINDS}

    def _where(self) -> str:
        return f"for extension {self.extension_id!r}"

    def _mark(self, what: str, group: Group, key: str, notes: str | None, reopen: bool) -> None:
        """The tracker and the alert manager keep it (a group id: each of its alerts)."""
        tracker, alerts = self.manager.error_tracker, self.manager.alert_manager
        if what == ERROR_GROUP and reopen:
            tracker.unresolve(key)
        elif what == ERROR_GROUP:
            tracker.resolve(key, notes)
        elif reopen:
            for alert_id in group["alert_ids"]:
                alerts.reopen_alert(alert_id)
        else:
            for alert_id in group["alert_ids"] if key == group["group"] else [key]:
                alerts.resolve_alert(alert_id, notes)

    # ExtensionSource ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        summary = self.manager.get_debug_summary()
        return {"source": self.name, **{k: v for k, v in summary.items() if k != "components"},
                "configuration": self.manager.configuration.to_dict()}  # fmt: skip

    def log_levels(self) -> dict[str, int]:
        return self.manager.logger.level_counts()

    def last_run(self) -> dict[str, Any] | None:
        return None

    def error_analysis(self, groups: list[dict[str, Any]]) -> dict[str, Any]:
        analysis = self.manager.error_tracker.get_error_analysis().to_dict()
        by_fingerprint = {g["fingerprint"]: g for g in groups}
        analysis["top_groups"] = [
            by_fingerprint.get(g["fingerprint"], g) for g in analysis["top_groups"]
        ]
        return analysis

    def health(self) -> dict[str, Any]:
        return self.manager.diagnose().to_dict()

    def metric_state(self) -> dict[str, Any]:
        metrics = self.manager.metrics
        return {
            "thresholds": [t.to_dict() for t in list(metrics.thresholds.values())],
            "breaches": [b.to_dict() for b in list(metrics.breaches)][-50:],
            "dropped": metrics.records.dropped,
            "samples_dropped": metrics.samples_dropped,
        }

    def latest(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """Resource fields whose newest sample is older than a second are read anew."""
        metrics = self.manager.metrics
        found = metrics.get_real_time_metrics(names)
        now = self.clock()
        if metrics.enabled and any(
            name in SAMPLE_FIELDS
            and ((entry := found.get(name)) is None or now - entry["ts"] > 1.0)
            for name in names
        ):
            reading = self._fresh_reading(now)
            for name in names:
                if name in SAMPLE_FIELDS and name in reading:
                    current = found.get(name)
                    if current is None or current["ts"] < reading["ts"]:
                        found[name] = {
                            "value": reading[name],
                            "unit": SAMPLE_FIELDS[name],
                            "ts": reading["ts"],
                            "source": "read",
                        }
        return {name: found.get(name) for name in names}

    def _fresh_reading(self, now: float) -> dict[str, Any]:
        with self._lock:
            if self._fresh is None or now - self._fresh["ts"] > FRESH_SECONDS:
                self._fresh = self.manager.metrics.read_resources()
            return self._fresh

    def logs_after(
        self,
        cursor: str | None,
        filters: LogQuery,
        *,
        backlog: int,
        limit: int,
        nodeid: str | None = None,
    ) -> LogBatch:
        """Cursors are ``l<tag>:<seq>``: a record's place in this manager's logger."""

        def matches(record: LogRecord) -> bool:
            return filters.matches(record.get) and (nodeid is None or nodeid in (record.test or ""))

        logger = self.manager.logger
        tag = f"l{self._tag}:"
        after: int | None = None
        if cursor and cursor.startswith(tag) and cursor[len(tag) :].isdigit():
            after = int(cursor[len(tag) :])
        kept = logger.records.snapshot()
        if after is None:
            newest = kept[-1].seq if kept else 0
            recent = [r for r in reversed(kept) if matches(r)][:backlog]
            recent.reverse()
            return LogBatch(
                [r.to_dict() for r in recent],
                f"{tag}{newest}",
                0,
                [f"{tag}{r.seq}" for r in recent],
            )
        fresh = []
        for record in reversed(kept):
            if record.seq <= after:
                break
            fresh.append(record)
        fresh.reverse()
        missed = max(0, fresh[0].seq - after - 1) if fresh else 0
        if len(fresh) > limit:
            missed += len(fresh) - limit
            fresh = fresh[-limit:]
        last = fresh[-1].seq if fresh else after
        passed = [r for r in fresh if matches(r)]
        return LogBatch(
            [r.to_dict() for r in passed], f"{tag}{last}", missed, [f"{tag}{r.seq}" for r in passed]
        )

    def sessions(self, *, limit: int) -> dict[str, Any]:
        active = [
            {"session_id": info.session_id, "name": info.name, "status": "running",
             "started_at": info.started_at, "configuration": dict(info.options)}
            for info in self.manager.active_sessions()
        ]  # fmt: skip
        completed = [session_summary(s) for s in list(self.manager.sessions)[-limit:]]
        return {"active": active, "completed": list(reversed(completed))}

    def run_tests(self) -> list[dict[str, Any]]:
        return self.tests()

    def metric_document(self, *, limit: int) -> dict[str, Any]:
        document = self.manager.metrics.export_data()
        document["records"] = document["records"][-limit:]
        return document


# Store -------------------------------------------------------------------------------------
#: The sampler's readings a store source gives as metric rows (kept in the tests' records).
STORED_SAMPLES = ("cpu_percent", "rss_bytes")


class StoreSource(_Source):
    """What the store recorded for an extension (``None``: every one), or for one run of it."""

    name = "store"

    def __init__(
        self,
        store: Store,
        extension_id: str | None = None,
        run: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(store, Store):
            msg = f"a store source needs a Store, got {store!r}"
            raise ConfigurationError(msg)
        _check_extension(extension_id)
        if run is not None and (isinstance(run, bool) or not isinstance(run, int)):
            msg = f"run must be a run id (a whole number) or None, got {run!r}"
            raise ConfigurationError(msg)
        self.store = store
        self.extension_id = extension_id
        self.run = run
        self.clock = clock

    def __repr__(self) -> str:
        run = "" if self.run is None else f" run {self.run}"
        return f"<StoreSource {self.extension_id!r}{run}>"

    @property
    def extension_name(self) -> str:
        return self.extension_id or ""

    def live_manager(self, what: str) -> ExtensionDebugManager:
        msg = (
            f"{what} needs a live debug manager; extension {self.extension_id!r} only has"
            " recorded data (start its manager first)"
        )
        raise LiveOnlyError(msg)

    def _scope(self) -> dict[str, Any]:
        return {"extension_id": self.extension_id, "run_id": self.run}

    # RecordSource ------------------------------------------------------------------------
    def tests(self, *, since: float | None = None, slim: bool = False) -> list[dict[str, Any]]:
        if slim:
            return self.store.slim_tests(since, **self._scope())
        return self.store.tests_since(since, **self._scope())

    def _newest(
        self, kind: str, since: float | None, nodeid: str | None, page: int, **narrow: Any
    ) -> Iterator[dict[str, Any]]:
        """The store filters by time and test (and *narrow*: ``select_records``' filters).

        The first query asks for *page* rows (all a filter SQL answers alone needs), the next
        ones for at least :data:`~pytest_kari_debug.views.PAGE`.
        """
        before: int | None = None
        while True:
            rows = self.store.select_records(
                kind, since=since, nodeid=nodeid, before_id=before, limit=page, **narrow,
                **self._scope(),
            )  # fmt: skip
            yield from rows
            if len(rows) < page:
                return
            before, page = rows[-1]["record_id"], max(page, views.PAGE)

    def logs(
        self, filters: LogQuery, *, limit: int, nodeid: str | None = None
    ) -> list[dict[str, Any]]:
        """The store narrows by level, time, correlation id and test; :meth:`LogQuery.matches`
        decides the rest, exactly as for a live logger's records."""
        floor = views.level_floor(filters.level)
        least = -1 if floor is None else LEVELS[floor]
        narrow = {
            "levels": None if floor is None else [n for n, v in LEVELS.items() if v >= least],
            "until": None if filters.until is None else to_epoch(filters.until, "until"),
            "equals": {"correlation_id": filters.correlation_id} if filters.correlation_id
            else None,
        }  # fmt: skip
        since = None if filters.since is None else to_epoch(filters.since, "since")
        rows = self._newest("log", since, nodeid, limit, **narrow)
        return _filtered(rows, limit, None, None, lambda record: filters.matches(record.get))

    def error_groups(
        self, *, since: float | None = None, states: views.ErrorStates | None = None
    ) -> list[dict[str, Any]]:
        return views.store_error_groups(self.store, since=since, states=states, **self._scope())

    def error_states(self) -> views.ErrorStates:
        """Where each group's state is kept (the CLI reads a record's group status from it)."""
        return views.ErrorStates.of_store(self.store, self.extension_id)

    def _alert_views(self, since: float | None) -> Iterator[dict[str, Any]]:
        """Each alert id once, as it was last recorded, resolved by the store's resolutions."""
        resolutions = self.store.resolutions(ALERT, extension_id=self.extension_id)
        rows = self._newest("alert", since, None, views.PAGE)
        yield from views.unique_alerts(rows, resolutions, extension_id=self.extension_id)

    def alert_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        resolutions = self.store.resolutions(ALERT, extension_id=self.extension_id)
        return views.alert_groups(self.alerts(since=since), resolutions)

    def alert_statistics(self) -> dict[str, Any]:
        return alert_statistics(self.alert_groups())

    def metric_rows(self, *, since: float | None = None) -> list[views.MetricRow]:
        """Recorded points, and the sampler's CPU and RSS readings kept in the tests."""
        rows = self.store.metric_points(since=since, **self._scope())
        sampled = self.store.resource_samples(STORED_SAMPLES, since=since, **self._scope())
        return rows + [(name, SAMPLE_FIELDS[name], ts, value) for name, ts, value in sampled]

    def counts(self) -> dict[str, int]:
        counts = self.store.record_counts(**self._scope())
        return {kind: counts.get(record_kind, 0) for kind, record_kind in RECORD_KINDS.items()}

    def _groups(self, what: str) -> list[Group]:
        """Of every run: a resolution holds for the extension, whatever run is in scope."""
        every = self if self.run is None else StoreSource(self.store, self.extension_id)
        return every.error_groups() if what == ERROR_GROUP else every.alert_groups()

    def _mark(self, what: str, group: Group, key: str, notes: str | None, reopen: bool) -> None:
        _mark_in_store(self.store, (what, group, key, notes, reopen), at=self.clock())

    # ExtensionSource ---------------------------------------------------------------------
    def _run_summary(self) -> dict[str, Any] | None:
        runs = self.store.run_summaries(extension_id=self.extension_id, limit=50)
        if self.run is None:
            return runs[0] if runs else None
        return next((run for run in runs if run["id"] == self.run), None)

    def status(self) -> dict[str, Any]:
        kinds = self.counts()
        last = self._run_summary()
        return {
            "extension_id": self.extension_id,
            "extension_name": self.extension_name,
            "source": self.name,
            "running": False,
            "uptime_seconds": 0.0,
            "enabled_components": [k for k, n in kinds.items() if n],
            "counts": kinds,
            "dropped": {},
            "sessions": {"active": 0, "completed": int(last["tests_count"]) if last else 0},
            "debug_overhead_ms": 0.0,
            "sampling_rate": 1.0,
            "diagnostics": list(((last or {}).get("data") or {}).get("diagnostics") or []),
        }

    def last_run(self) -> dict[str, Any] | None:
        last = self._run_summary()
        if last is None:
            return None
        return {
            "id": last["id"],
            "started_at": last["started_at"],
            "finished_at": last.get("finished_at"),
            "outcomes": last["outcomes"],
            "tests_count": last["tests_count"],
        }

    def log_levels(self) -> dict[str, int]:
        levels = dict.fromkeys(LEVELS, 0)
        for group in self.store.group_records("log", "level", **self._scope()):
            key = str(group["key"] or "").upper()
            if key in levels:
                levels[key] += int(group["count"])
        return levels

    def error_analysis(self, groups: list[dict[str, Any]]) -> dict[str, Any]:
        return error_analysis(groups)

    def health(self) -> dict[str, Any]:
        integrity = self.store.integrity()
        checks = [
            {
                "component": "store",
                "status": "healthy" if integrity == "ok" else "unhealthy",
                "detail": f"schema {self.store.schema_version}, integrity {integrity}",
            }
        ]
        run = self._run_summary()
        if run is not None:
            diagnostics = (run.get("data") or {}).get("diagnostics") or []
            checks.append(
                {
                    "component": f"run #{run['id']}",
                    "status": "degraded" if diagnostics else "healthy",
                    "detail": f"{len(diagnostics)} internal problem(s)"
                    + (f": {diagnostics[0]}" if diagnostics else ""),
                }
            )
        overall = max((c["status"] for c in checks), key=STATUS_ORDER.index)
        return {
            "overall_status": overall,
            "checked_at": self.clock(),
            "debug_overhead_ms": 0.0,
            "checks": checks,
        }

    def metric_state(self) -> dict[str, Any]:
        return {}

    def latest(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        out: dict[str, dict[str, Any] | None] = {}
        for name in names:
            rows = self.store.select_records(
                "metric", equals={"name": name}, limit=1, **self._scope()
            )
            out[name] = None
            if rows and isinstance(rows[0].get("value"), (int, float)):
                row = rows[0]
                out[name] = {"value": row["value"], "unit": row.get("unit") or "",
                             "ts": row.get("ts"), "source": "store"}  # fmt: skip
        return out

    def logs_after(
        self,
        cursor: str | None,
        filters: LogQuery,
        *,
        backlog: int,
        limit: int,
        nodeid: str | None = None,
    ) -> LogBatch:
        """Cursors are ``s:<record id>``: a record's place in the store."""
        store = self.store
        after: int | None = None
        if cursor and cursor.startswith("s:") and cursor[2:].isdigit():
            after = int(cursor[2:])
        if after is None:
            newest = store.select_records("log", limit=1, **self._scope())
            start = newest[0]["record_id"] if newest else 0
            recent: list[dict[str, Any]] = []
            if backlog:
                found = self.logs(filters, limit=backlog, nodeid=nodeid)
                recent = [r for r in reversed(found) if r["record_id"] <= start]
            return LogBatch(recent, f"s:{start}", 0, [f"s:{r['record_id']}" for r in recent])
        rows = store.select_records(
            "log", after_id=after, nodeid=nodeid, newest_first=False, limit=limit, **self._scope()
        )
        last = rows[-1]["record_id"] if rows else after
        passed = [r for r in rows if filters.matches(r.get)]
        return LogBatch(passed, f"s:{last}", 0, [f"s:{r['record_id']}" for r in passed])

    def sessions(self, *, limit: int) -> dict[str, Any]:
        """The tests of the run in scope (the newest run without one) as completed sessions."""
        run = self._run_summary()
        completed = []
        if run is not None:
            tests = self.store.slim_tests(None, extension_id=self.extension_id, run_id=run["id"])
            for test in reversed(tests[-limit:]):
                duration = (measure("duration_ms", test).value or 0.0) / 1000.0
                completed.append(
                    {"session_id": None, "name": test["nodeid"], "status": test["outcome"],
                     "started_at": None, "ended_at": test.get("finished_at"),
                     "duration_seconds": duration, "configuration": {}, "records": {},
                     "run_id": run["id"]}
                )  # fmt: skip
        return {"active": [], "completed": completed}

    def run_tests(self) -> list[dict[str, Any]]:
        run = self._run_summary()
        return [] if run is None else self.store.tests(run["id"], extension_id=self.extension_id)

    def metric_document(self, *, limit: int) -> dict[str, Any]:
        rows = self.records("metric", limit=limit)
        return {"extension_id": self.extension_id, "records": list(reversed(rows)),
                "samples": [], "dropped": 0}  # fmt: skip


# A finished run's test records -------------------------------------------------------------
class RunSource(_Source):
    """The records inside a finished run's test records (the plugin's, or a run JSON's).

    *tests* is iterated once per question, never kept as a list (a run's journal reads it from
    disk each time). An error group's status comes from *error_states* (else the *store*'s,
    else open), an alert's from its record or *alert_resolutions* (else the *store*'s).
    Resolving writes to the *store*.
    """

    name = "run"

    def __init__(
        self,
        tests: Iterable[Mapping[str, Any]],
        *,
        extension_id: str | None = None,
        store: Store | None = None,
        error_states: views.ErrorStates | None = None,
        alert_resolutions: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(tests, (str, bytes, Mapping)) or not isinstance(tests, Iterable):
            msg = f"tests must be an iterable of test records (dicts), got {tests!r:.80}"
            raise ConfigurationError(msg)
        _check_extension(extension_id)
        self._tests = tests
        self.extension_id = extension_id
        self.store = store
        if error_states is None:
            error_states = (
                views.ErrorStates() if store is None
                else views.ErrorStates.of_store(store, extension_id)
            )  # fmt: skip
        if alert_resolutions is None and store is not None:
            alert_resolutions = store.resolutions("alert", extension_id=extension_id)
        self.error_states = error_states
        self.alert_resolutions = dict(alert_resolutions or {})
        self.clock = clock

    def __repr__(self) -> str:
        return f"<RunSource {self.extension_id!r}>"

    def _each(self) -> Iterable[Mapping[str, Any]]:
        for test in self._tests:
            if self.extension_id is None or test.get("extension_id") == self.extension_id:
                yield test

    def _records(self, component: str) -> Iterable[dict[str, Any]]:
        """Each record of *component* in the tests, with the test's node id and extension."""
        for test in self._each():
            data = (test.get("collected_data") or {}).get(component)
            records = data.get("records") if isinstance(data, Mapping) else None
            for record in records if isinstance(records, list) else ():
                if isinstance(record, Mapping):
                    found = dict(record)
                    for key in ("nodeid", "extension_id"):
                        if not found.get(key):
                            found[key] = test.get(key)
                    yield found

    # RecordSource ------------------------------------------------------------------------
    def tests(self, *, since: float | None = None, slim: bool = False) -> list[dict[str, Any]]:
        return _since([dict(t) for t in self._each()], since, "finished_at")

    def _newest(
        self, kind: str, since: float | None, nodeid: str | None, page: int
    ) -> Iterator[dict[str, Any]]:
        component = next(c for c, k in KINDS.items() if k == kind)
        found = list(self._records(component))
        found.sort(key=lambda r: -float(r.get("ts") or r.get("start") or 0.0))
        return iter(found)

    def logs(
        self, filters: LogQuery, *, limit: int, nodeid: str | None = None
    ) -> list[dict[str, Any]]:
        return self.records(
            "log", limit=limit, nodeid=nodeid, keep=lambda r: filters.matches(r.get)
        )

    def error_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        """Each group also lists ``test_indexes``: the positions of its tests in the run."""
        groups = views.error_groups_of_tests(self._each(), self.error_states)
        return _since(groups, since, "last_seen")

    def _alert_views(self, since: float | None) -> Iterator[dict[str, Any]]:
        rows = self._newest("alert", since, None, views.PAGE)
        yield from views.unique_alerts(rows, self.alert_resolutions)

    def alert_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        return views.alert_groups(self.alerts(since=since), self.alert_resolutions)

    def alert_statistics(self) -> dict[str, Any]:
        return alert_statistics(self.alert_groups())

    def metric_rows(self, *, since: float | None = None) -> list[views.MetricRow]:
        rows = views.metric_rows_of_tests(self._each())
        return rows if since is None else [row for row in rows if row[2] >= since]

    def counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for component in KINDS:
            counts[component] = sum(1 for _ in self._records(component))
        return dict(counts)

    def _where(self) -> str:
        return "in this run"

    def _mark(self, what: str, group: Group, key: str, notes: str | None, reopen: bool) -> None:
        """Kept in the store the source was given (a run's records keep no resolutions)."""
        if self.store is None:
            msg = f"{what} {key!r}: a run's records keep no resolutions; give RunSource a store"
            raise KariDebugError(msg)
        _mark_in_store(self.store, (what, group, key, notes, reopen), at=self.clock())
        self.error_states = views.ErrorStates.of_store(self.store, self.extension_id)
        self.alert_resolutions = self.store.resolutions(ALERT, extension_id=self.extension_id)
