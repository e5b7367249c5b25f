"""``ExtensionDebugDashboard``: the views of one extension (overview, health, metrics, logs...).

A dashboard reads one :mod:`record source <pytest_kari_debug.sources>`: a live
:class:`~pytest_kari_debug.manager.ExtensionDebugManager`'s components, or what the store
recorded for the extension. Every view is JSON-able data, computed by
:mod:`pytest_kari_debug.views` (as the CLI's and the HTML report's are); the REST API and the
live page show them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import views
from .alerting import AlertSeverity
from .config import DebugConfiguration, is_positive_number
from .exceptions import ConfigurationError, SessionError
from .logger import LogQuery
from .manager import ExtensionDebugManager
from .metrics import SAMPLE_FIELDS
from .resolutions import ALERT, ERROR_GROUP
from .sources import (
    ALERT_STATUSES,
    ExtensionSource,
    LiveOnlyError,
    LiveSource,
    LogBatch,
    StoreSource,
    session_summary,
)
from .storage import Store

# DashboardError and LogBatch stay importable from here; the sources define them.
__all__ = ["ExtensionDebugDashboard", "configuration_from"]

#: Names the live charts follow by default: the process's CPU and resident memory.
DEFAULT_REALTIME = ("cpu_percent", "memory_mb")
#: The resource fields the page charts: their series always come with the metrics.
CHARTED = ("cpu_percent", "rss_bytes")
MAX_SERIES_POINTS = 240
MAX_SERIES_NAMES = 24
MAX_LIMIT = 1000
#: Exports may ask for more records than a view shows.
MAX_EXPORT = 100_000


#: What a dashboard raises when a view needs a live manager and it reads recorded data.
DashboardError = LiveOnlyError
#: The status fields the overview shows.
OVERVIEW_STATUS = (
    "extension_name", "running", "uptime_seconds", "enabled_components", "counts", "dropped",
    "sessions", "debug_overhead_ms", "sampling_rate",
)  # fmt: skip


def _limit(value: Any, name: str = "limit", upper: int = MAX_LIMIT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        msg = f"{name} must be a whole number from 1 to {upper}, got {value!r}"
        raise ConfigurationError(msg)
    return value


def _window(value: Any) -> float:
    if not is_positive_number(value):
        msg = f"window_seconds must be a finite number > 0, got {value!r}"
        raise ConfigurationError(msg)
    return float(value)


def _names(names: Any) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        msg = f"names must be a list of metric names, got {names!r}"
        raise ConfigurationError(msg)
    found = list(names)
    if not found or not all(isinstance(n, str) and n.strip() for n in found):
        msg = f"names must be a non-empty list of non-empty metric names, got {names!r}"
        raise ConfigurationError(msg)
    return list(dict.fromkeys(found))


def _downsample(points: list[tuple[float, float]], limit: int) -> list[list[float]]:
    """At most *limit* points, evenly spread and always keeping the newest."""
    if len(points) > limit:
        step = len(points) / limit
        picked = [points[int(i * step)] for i in range(limit - 1)]
        picked.append(points[-1])
        points = picked
    return [[ts, value] for ts, value in points]


def _group_counts(groups: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "groups": len(groups),
        "unresolved": sum(1 for g in groups if views.status_matches(g["status"], "unresolved")),
    }


class ExtensionDebugDashboard:
    """The views of one extension, read through one record source.

    ``ExtensionDebugDashboard(debug_manager)`` reads the manager's components (a
    :class:`~pytest_kari_debug.sources.LiveSource`);
    ``ExtensionDebugDashboard(store=Store(path), extension_id="my-ext")`` reads the store (a
    :class:`~pytest_kari_debug.sources.StoreSource`); ``source=`` takes any
    :class:`~pytest_kari_debug.sources.ExtensionSource` (one run of the store, say:
    :meth:`for_run`, where every view is that run's).
    """

    def __init__(
        self,
        debug_manager: ExtensionDebugManager | None = None,
        *,
        store: Store | None = None,
        extension_id: str | None = None,
        clock: Callable[[], float] = time.time,
        source: ExtensionSource | None = None,
    ) -> None:
        if debug_manager is not None and not isinstance(debug_manager, ExtensionDebugManager):
            msg = f"debug_manager must be an ExtensionDebugManager, got {debug_manager!r}"
            raise ConfigurationError(msg)
        if source is None:
            source = self._source_of(debug_manager, store, extension_id, clock)
        else:
            if debug_manager is not None or extension_id is not None:
                msg = "a dashboard reads a source, or a debug_manager, or a store: give one"
                raise ConfigurationError(msg)
            if not isinstance(source, ExtensionSource) or not source.extension_id:
                msg = (
                    f"source must be a LiveSource or a StoreSource of one extension, got {source!r}"
                )
                raise ConfigurationError(msg)
        #: Where every view reads its records.
        self.record_source: ExtensionSource = source
        self.manager: ExtensionDebugManager | None = getattr(source, "manager", None)
        self.store: Store | None = store if store is not None else getattr(source, "store", None)
        self.extension_id: str = str(source.extension_id)
        self.clock = clock
        self._health: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _source_of(
        manager: ExtensionDebugManager | None,
        store: Store | None,
        extension_id: str | None,
        clock: Callable[[], float],
    ) -> ExtensionSource:
        if manager is not None:
            return LiveSource(manager, clock=clock)
        if store is not None and extension_id:
            return StoreSource(store, extension_id, clock=clock)
        msg = "a dashboard needs a debug_manager, or a store and an extension_id"
        raise ConfigurationError(msg)

    def __repr__(self) -> str:
        return f"<ExtensionDebugDashboard {self.extension_id!r} {self.source}>"

    @property
    def source(self) -> str:
        """``"live"`` (a manager in this process) or ``"store"`` (recorded data)."""
        return self.record_source.name

    @property
    def run_id(self) -> int | None:
        """The stored run every view is scoped to (``None``: every run, or live data)."""
        run = getattr(self.record_source, "run", None)
        return run if isinstance(run, int) else None

    def for_run(self, run_id: int | None) -> ExtensionDebugDashboard:
        """This extension's dashboard with every view (counters, log levels, errors, alerts,
        logs, metrics, sessions, health) scoped to stored run *run_id*.

        ``None`` gives this dashboard; a run the store does not hold is a LookupError.
        """
        if run_id is None:
            return self
        if self.store is None:
            msg = f"run #{run_id} is read from the store, and this dashboard has none"
            raise DashboardError(msg)
        if StoreSource(self.store).find_run(str(run_id)) is None:
            msg = f"no run #{run_id} in the store"
            raise LookupError(msg)
        scoped = StoreSource(self.store, self.extension_id, run_id, clock=self.clock)
        return ExtensionDebugDashboard(source=scoped, clock=self.clock)

    # Everything at once ------------------------------------------------------------------
    def get_dashboard_data(
        self, *, window_seconds: float = 3600.0, log_limit: int = 50
    ) -> dict[str, Any]:
        """Overview, health, metrics summary, recent logs, error groups, alerts and sessions."""
        return {
            "extension_id": self.extension_id,
            "source": self.source,
            "run_id": self.run_id,
            "generated_at": self.clock(),
            "overview": self.get_overview(),
            "health": self.get_health(),
            "metrics": self.get_metrics(window_seconds=window_seconds),
            "logs": self.get_logs(limit=log_limit),
            "errors": self.get_errors(),
            "alerts": self.get_alerts(limit=100),
            "sessions": self.get_sessions(),
        }

    # Overview ----------------------------------------------------------------------------
    def get_overview(self) -> dict[str, Any]:
        """Who, whether it runs, record counts and drops, log levels, errors, alerts, health."""
        source = self.record_source
        status = source.status()
        groups = source.error_groups()
        stats = self.record_source.alert_statistics()
        health = self._health
        return {
            "extension_id": self.extension_id,
            "source": self.source,
            **{key: status[key] for key in OVERVIEW_STATUS},
            "log_levels": source.log_levels(),
            "errors": {
                "total": source.error_analysis(groups)["total_errors"],
                **_group_counts(groups),
            },
            "alerts": {
                "total": stats["total_alerts"],
                "active": stats["active_alerts"],
                "by_severity": stats["by_severity"],
            },
            "health_status": health["overall_status"] if health else None,
            "diagnostics": status["diagnostics"],
            "last_run": source.last_run(),
            "generated_at": self.clock(),
        }

    # Health ------------------------------------------------------------------------------
    def get_health(self) -> dict[str, Any]:
        """The last health check's report (one is run when none was yet)."""
        return self._health if self._health is not None else self.run_health_check()

    def run_health_check(self) -> dict[str, Any]:
        """Check every component (or the store) now; the report is kept for get_health()."""
        report = self.record_source.health()
        report["extension_id"] = self.extension_id
        report["source"] = self.source
        with self._lock:
            self._health = report
        return report

    # Metrics -----------------------------------------------------------------------------
    def get_metrics(
        self,
        *,
        window_seconds: float = 3600.0,
        names: Sequence[str] | None = None,
        max_points: int = MAX_SERIES_POINTS,
    ) -> dict[str, Any]:
        """Statistics and a time series per metric (recorded and resource) over the window.

        ``aggregates``: ``{name: {count, min, max, mean, p50, p95, last, ...}}``; ``series``:
        ``{name: [[ts, value], ...]}`` (at most *max_points* each); ``latest``: the newest
        value of each; ``names``: every name seen; ``recorded``: those recorded with
        ``record_metric`` (not resource fields), which a chart picker offers first.
        """
        window = _window(window_seconds)
        wanted = None if names is None else set(_names(names))
        _limit(max_points, "max_points", 5000)
        # a run's own points, however old it is
        since = None if self.run_id is not None else self.clock() - window
        rows = self.record_source.metric_rows(since=since)
        points, units = views.group_points(rows)
        every = sorted(points)
        if wanted is not None:
            points = {k: v for k, v in points.items() if k in wanted}
        aggregates, series, latest = {}, {}, {}
        for index, name in enumerate(sorted(points)):
            stats = views.metric_stats(name, units[name], points[name], window=window)
            aggregates[name] = stats
            latest[name] = {"value": stats["last"], "unit": stats["unit"], "ts": stats["last_ts"]}
            if index < MAX_SERIES_NAMES or wanted is not None or name in CHARTED:
                found = sorted(points[name], key=lambda point: point[0])
                series[name] = _downsample(found, max_points)
        return {
            "extension_id": self.extension_id,
            "source": self.source,
            "window_seconds": window,
            "names": every,
            "recorded": [name for name in every if name not in SAMPLE_FIELDS],
            "aggregates": aggregates,
            "series": series,
            "latest": latest,
            **self.record_source.metric_state(),
        }

    def get_real_time_metrics(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """The newest value of each of *names*: ``{name: {value, unit, ts, source} | None}``.

        Resource fields (``cpu_percent``, ``memory_mb``, ``rss_bytes``...) of a live manager
        are read from the process when its newest sample is older than a second.
        """
        return self.record_source.latest(_names(names))

    # Logs --------------------------------------------------------------------------------
    def get_logs(self, *, limit: int = 50, level: str | None = None) -> list[dict[str, Any]]:
        """The newest log records (at *level* or above), newest first."""
        return self.search_logs(level=level, limit=limit)

    def search_logs(
        self,
        query: str | None = None,
        level: str | None = None,
        since: Any = None,
        until: Any = None,
        limit: int = 100,
        *,
        regex: str | None = None,
        session_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Log records containing *query* (case-insensitive), newest first.

        *level* is the lowest level kept (``"error"`` keeps ERROR and CRITICAL); *since* and
        *until* are epoch seconds, ``datetime`` (naive means UTC) or ISO 8601 text.
        """
        _limit(limit, upper=MAX_EXPORT)
        filters = LogQuery(
            level=views.level_floor(level), since=since, until=until, query=query or None,
            regex=regex, session_id=session_id,
        )  # fmt: skip
        return self.record_source.logs(filters, limit=limit)

    def logs_after(
        self,
        cursor: str | None,
        *,
        level: str | None = None,
        query: str | None = None,
        backlog: int = 0,
        limit: int = 5000,
    ) -> LogBatch:
        """Log records newer than *cursor*, oldest first, for following the log live.

        A cursor comes from the previous batch; ``None`` (or one this dashboard did not give
        out) starts at the newest record, with up to *backlog* recent records first.
        """
        filters = LogQuery(level=views.level_floor(level), query=query or None)
        return self.record_source.logs_after(cursor, filters, backlog=backlog, limit=limit)

    # Errors ------------------------------------------------------------------------------
    def get_errors(self, *, status: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Error analysis (totals, categories; live: rate and trend) and the error groups.

        *status* keeps the groups that are ``open``, ``regressed``, ``resolved`` or
        ``unresolved`` (open or regressed); each group's status follows one rule, see
        :mod:`pytest_kari_debug.views`.
        """
        views.status_matches(views.OPEN, status)  # checks the filter
        _limit(limit)
        groups = self.record_source.error_groups()
        analysis = self.record_source.error_analysis(groups)
        kept = [g for g in groups if views.status_matches(g["status"], status)]
        return {"extension_id": self.extension_id, "source": self.source, "analysis": analysis,
                "groups": kept[:limit]}  # fmt: skip

    def resolve_error_group(self, fingerprint: str, notes: str | None = None) -> dict[str, Any]:
        """Mark error group *fingerprint* resolved; return the group as it is now.

        A live manager's tracker keeps it (an error of the group later makes it regressed);
        for recorded data the store keeps it, where ``kari-debug errors resolve`` writes.
        """
        return self.record_source.resolve(ERROR_GROUP, fingerprint, notes)

    def reopen_error_group(self, fingerprint: str) -> dict[str, Any]:
        """Mark error group *fingerprint* open again (undoes a resolution); return it."""
        return self.record_source.reopen(ERROR_GROUP, fingerprint)

    # Alerts ------------------------------------------------------------------------------
    def get_alerts(
        self, *, status: str | None = None, severity: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Alerts, one per rule and test across runs, the newest occurrence first.

        Each is :func:`pytest_kari_debug.views.alert_groups`' view: the newest occurrence with
        ``group``, ``occurrences``, ``alert_ids``, ``runs``, ``first_seen`` and ``last_seen``.
        *status*: active, resolved or inhibited; *severity*: the least severity kept.
        """
        if status not in (None, *ALERT_STATUSES):
            msg = f"status must be 'active', 'resolved' or 'inhibited', got {status!r}"
            raise ConfigurationError(msg)
        least = 0 if severity is None else AlertSeverity.parse(severity).rank
        _limit(limit)

        def keep(alert: dict[str, Any]) -> bool:
            if status is not None and alert["status"] != status:
                return False
            return views.severity_rank(alert["severity"]) >= least

        return [alert for alert in self.record_source.alert_groups() if keep(alert)][:limit]

    def get_alert_statistics(self) -> dict[str, Any]:
        """Counts by severity, type and status of the alerts shown (one per rule and test;
        ``occurrences`` sums theirs); live, the notification outcomes too."""
        return self.record_source.alert_statistics()

    def resolve_alert(self, alert_id: str, notes: str | None = None) -> dict[str, Any]:
        """Mark alert *alert_id* resolved with *notes* (given a group id: every occurrence of
        its rule and test). Return its group as it is now.

        Recorded alerts keep their resolution in the store; a later occurrence of the group
        makes it active again.
        """
        return self.record_source.resolve(ALERT, alert_id, notes)

    def reopen_alert(self, alert_id: str) -> dict[str, Any]:
        """Mark alert *alert_id* and its group active again; return the group."""
        return self.record_source.reopen(ALERT, alert_id)

    # Sessions ----------------------------------------------------------------------------
    def get_sessions(self, *, limit: int = 100) -> dict[str, Any]:
        """Running sessions and the newest completed ones (a run's tests, from the store)."""
        return self.record_source.sessions(limit=_limit(limit))

    def start_session(
        self, configuration: dict[str, Any] | None = None, *, name: str | None = None
    ) -> dict[str, Any]:
        """Start a debug session on the live manager; return it (running)."""
        manager = self.record_source.live_manager("starting a debug session")
        session_id = manager.start_debug_session(configuration, name=name)
        info = next(i for i in manager.active_sessions() if i.session_id == session_id)
        return {"session_id": session_id, "name": info.name, "status": "running",
                "started_at": info.started_at, "configuration": dict(info.options)}  # fmt: skip

    def stop_session(self, session_id: str) -> dict[str, Any]:
        """Stop the running session *session_id*; return it with its collected data."""
        manager = self.record_source.live_manager("stopping a debug session")
        if not any(i.session_id == session_id for i in manager.active_sessions()):
            stopped = manager.get_session(session_id)
            where = " (already stopped)" if stopped is not None else ""
            msg = f"no running debug session {session_id!r}{where} for {self.extension_id!r}"
            raise SessionError(msg)
        session = manager.stop_debug_session(session_id)
        return {**session_summary(session), "collected_data": session.collected_data}

    # Manager -----------------------------------------------------------------------------
    def get_status(self) -> dict[str, Any]:
        """The manager's status: running, uptime, components, counts, drops, sessions."""
        return self.record_source.status()

    def stop_manager(self) -> dict[str, Any]:
        """Stop the live manager's background work (its data stays); return its status."""
        self.record_source.live_manager("stopping a manager").stop()
        return self.get_status()


def configuration_from(values: dict[str, Any] | None) -> DebugConfiguration:
    """A :class:`DebugConfiguration` from JSON values (names checked, text converted)."""
    if not values:
        return DebugConfiguration()
    if not isinstance(values, dict):
        msg = f"configuration must be an object of DebugConfiguration fields, got {values!r}"
        raise ConfigurationError(msg)
    try:
        return DebugConfiguration.from_mapping(values, source="the request")
    except TypeError as exc:
        raise ConfigurationError(str(exc)) from None
