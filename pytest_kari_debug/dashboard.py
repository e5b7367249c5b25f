"""``ExtensionDebugDashboard``: the views of one extension (overview, health, metrics, logs...).

A dashboard reads a live :class:`~pytest_kari_debug.manager.ExtensionDebugManager` through its
components' public methods, or, without one, what the SQLite store recorded for the extension.
Every view is JSON-able data, computed by :mod:`pytest_kari_debug.views` (as the CLI's and the
HTML report's are); the REST API and the live page show them.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import views
from .alerting import ACTIVE, RESOLVED, AlertSeverity
from .config import DebugConfiguration
from .exceptions import ConfigurationError, KariDebugError, SessionError
from .logger import LEVELS, LogQuery
from .manager import STATUS_ORDER, DebugSession, ExtensionDebugManager
from .metrics import SAMPLE_FIELDS
from .storage import RECORD_KINDS, Store

#: Names the live charts follow by default: the process's CPU and resident memory.
DEFAULT_REALTIME = ("cpu_percent", "memory_mb")
#: A resource reading younger than this is "real time" enough; older ones are read again.
FRESH_SECONDS = 1.0
MAX_SERIES_POINTS = 240
MAX_SERIES_NAMES = 24
MAX_LIMIT = 1000
#: Exports may ask for more records than a view shows.
MAX_EXPORT = 100_000


class DashboardError(KariDebugError):
    """A view cannot do what was asked of it with the data it has (no live manager, say)."""


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


def _limit(value: Any, name: str = "limit", upper: int = MAX_LIMIT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        msg = f"{name} must be a whole number from 1 to {upper}, got {value!r}"
        raise ConfigurationError(msg)
    return value


def _window(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < float(value) < math.inf
    ):
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


def _known_severities(alerts: list[dict[str, Any]]) -> dict[str, int]:
    """Alerts per known severity (as the live alert manager's statistics count them)."""
    return {k: n for k, n in views.severity_counts(alerts).items() if k in views.SEVERITIES}


def _session_summary(session: DebugSession) -> dict[str, Any]:
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


class ExtensionDebugDashboard:
    """The views of one extension, from its live manager or, without one, from the store.

    ``ExtensionDebugDashboard(debug_manager)`` reads the manager's components;
    ``ExtensionDebugDashboard(store=Store(path), extension_id="my-ext")`` reads the store.
    """

    def __init__(
        self,
        debug_manager: ExtensionDebugManager | None = None,
        *,
        store: Store | None = None,
        extension_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if debug_manager is not None and not isinstance(debug_manager, ExtensionDebugManager):
            msg = f"debug_manager must be an ExtensionDebugManager, got {debug_manager!r}"
            raise ConfigurationError(msg)
        if debug_manager is None and (store is None or not extension_id):
            msg = "a dashboard needs a debug_manager, or a store and an extension_id"
            raise ConfigurationError(msg)
        self.manager = debug_manager
        self.store = store
        self.extension_id: str = (
            debug_manager.extension_id if debug_manager is not None else str(extension_id)
        )
        self.clock = clock
        self._tag = uuid.uuid4().hex[:8]
        self._health: dict[str, Any] | None = None
        self._fresh: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ExtensionDebugDashboard {self.extension_id!r} {self.source}>"

    @property
    def source(self) -> str:
        """``"live"`` (a manager in this process) or ``"store"`` (recorded data)."""
        return "live" if self.manager is not None else "store"

    def _store(self) -> Store:
        assert self.store is not None
        return self.store

    def _live(self, what: str) -> ExtensionDebugManager:
        if self.manager is None:
            msg = (
                f"{what} needs a live debug manager; extension {self.extension_id!r} only has"
                " recorded data (start its manager first)"
            )
            raise DashboardError(msg)
        return self.manager

    # Everything at once ------------------------------------------------------------------
    def get_dashboard_data(
        self, *, window_seconds: float = 3600.0, log_limit: int = 50
    ) -> dict[str, Any]:
        """Overview, health, metrics summary, recent logs, error groups, alerts and sessions."""
        return {
            "extension_id": self.extension_id,
            "source": self.source,
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
        if self.manager is None:
            return self._store_overview()
        manager = self.manager
        summary = manager.get_debug_summary()
        groups = self._error_groups()
        stats = manager.alert_manager.get_alert_statistics()
        health = self._health
        return {
            "extension_id": self.extension_id,
            "extension_name": manager.extension_name,
            "source": "live",
            "running": manager.running,
            "uptime_seconds": summary["uptime_seconds"],
            "enabled_components": summary["enabled_components"],
            "counts": summary["counts"],
            "dropped": summary["dropped"],
            "sessions": summary["sessions"],
            "debug_overhead_ms": summary["debug_overhead_ms"],
            "sampling_rate": summary["sampling_rate"],
            "log_levels": manager.logger.level_counts(),
            "errors": {
                "total": manager.error_tracker.stats().get("recorded", 0),
                **_group_counts(groups),
            },
            "alerts": {
                "total": stats["total_alerts"],
                "active": stats["active_alerts"],
                "by_severity": stats["by_severity"],
            },
            "health_status": health["overall_status"] if health else None,
            "diagnostics": summary["diagnostics"],
            "generated_at": self.clock(),
        }

    def _store_overview(self) -> dict[str, Any]:
        store = self._store()
        counts = store.record_counts(extension_id=self.extension_id)
        kinds = {kind: counts.get(record_kind, 0) for kind, record_kind in RECORD_KINDS.items()}
        levels = dict.fromkeys(LEVELS, 0)
        for group in store.group_records("log", "level", extension_id=self.extension_id):
            key = str(group["key"] or "").upper()
            if key in levels:
                levels[key] += int(group["count"])
        runs = store.run_summaries(extension_id=self.extension_id, limit=1)
        last = runs[0] if runs else None
        groups = self._error_groups()
        alerts = self._store_alerts()
        active = [a for a in alerts if a["status"] == ACTIVE]
        health = self._health
        return {
            "extension_id": self.extension_id,
            "extension_name": self.extension_id,
            "source": "store",
            "running": False,
            "uptime_seconds": 0.0,
            "enabled_components": [k for k, n in kinds.items() if n],
            "counts": kinds,
            "dropped": {},
            "sessions": {"active": 0, "completed": int(last["tests_count"]) if last else 0},
            "debug_overhead_ms": 0.0,
            "sampling_rate": 1.0,
            "log_levels": levels,
            "errors": {"total": sum(g["count"] for g in groups), **_group_counts(groups)},
            "alerts": {
                "total": len(alerts),
                "active": len(active),
                "by_severity": _known_severities(alerts),
            },
            "health_status": health["overall_status"] if health else None,
            "diagnostics": list(((last or {}).get("data") or {}).get("diagnostics") or []),
            "last_run": None
            if last is None
            else {
                "id": last["id"],
                "started_at": last["started_at"],
                "finished_at": last.get("finished_at"),
                "outcomes": last["outcomes"],
                "tests_count": last["tests_count"],
            },
            "generated_at": self.clock(),
        }

    # Health ------------------------------------------------------------------------------
    def get_health(self) -> dict[str, Any]:
        """The last health check's report (one is run when none was yet)."""
        return self._health if self._health is not None else self.run_health_check()

    def run_health_check(self) -> dict[str, Any]:
        """Check every component (or the store) now; the report is kept for get_health()."""
        if self.manager is not None:
            report = self.manager.diagnose().to_dict()
        else:
            report = self._store_health()
        report["extension_id"] = self.extension_id
        report["source"] = self.source
        with self._lock:
            self._health = report
        return report

    def _store_health(self) -> dict[str, Any]:
        store = self._store()
        integrity = store.integrity()
        checks = [
            {
                "component": "store",
                "status": "healthy" if integrity == "ok" else "unhealthy",
                "detail": f"schema {store.schema_version}, integrity {integrity}",
            }
        ]
        runs = store.run_summaries(extension_id=self.extension_id, limit=1)
        if runs:
            run = runs[0]
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
        since = self.clock() - window
        rows: list[views.MetricRow] = []
        extra: dict[str, Any] = {}
        if self.manager is not None:
            metrics = self.manager.metrics
            for point in metrics.get_metrics():
                value = point.value
                if point.ts >= since and isinstance(value, (int, float)) and math.isfinite(value):
                    rows.append((point.name, point.unit, point.ts, float(value)))
            for sample in metrics.get_resource_samples(since):
                for key, unit in SAMPLE_FIELDS.items():
                    sampled = sample.get(key)
                    if isinstance(sampled, (int, float)) and not isinstance(sampled, bool):
                        rows.append((key, unit, sample["ts"], float(sampled)))
            extra = {
                "thresholds": [t.to_dict() for t in list(metrics.thresholds.values())],
                "breaches": [b.to_dict() for b in list(metrics.breaches)][-50:],
                "dropped": metrics.records.dropped,
                "samples_dropped": metrics.samples_dropped,
            }
        else:
            rows = self._store().metric_points(extension_id=self.extension_id, since=since)
        points, units = views.group_points(rows)
        every = sorted(points)
        if wanted is not None:
            points = {k: v for k, v in points.items() if k in wanted}
        aggregates, series, latest = {}, {}, {}
        for index, name in enumerate(sorted(points)):
            stats = views.metric_stats(name, units[name], points[name], window=window)
            aggregates[name] = stats
            latest[name] = {"value": stats["last"], "unit": stats["unit"], "ts": stats["last_ts"]}
            if index < MAX_SERIES_NAMES or wanted is not None:
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
            **extra,
        }

    def get_real_time_metrics(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """The newest value of each of *names*: ``{name: {value, unit, ts, source} | None}``.

        Resource fields (``cpu_percent``, ``memory_mb``, ``rss_bytes``...) of a live manager
        are read from the process when its newest sample is older than a second.
        """
        wanted = _names(names)
        if self.manager is None:
            return self._store_latest(wanted)
        metrics = self.manager.metrics
        found = metrics.get_real_time_metrics(wanted)
        now = self.clock()
        if metrics.enabled and any(
            name in SAMPLE_FIELDS
            and ((entry := found.get(name)) is None or now - entry["ts"] > 1.0)
            for name in wanted
        ):
            reading = self._fresh_reading(now)
            for name in wanted:
                if name in SAMPLE_FIELDS and name in reading:
                    current = found.get(name)
                    if current is None or current["ts"] < reading["ts"]:
                        found[name] = {
                            "value": reading[name],
                            "unit": SAMPLE_FIELDS[name],
                            "ts": reading["ts"],
                            "source": "read",
                        }
        return {name: found.get(name) for name in wanted}

    def _fresh_reading(self, now: float) -> dict[str, Any]:
        with self._lock:
            if self._fresh is None or now - self._fresh["ts"] > FRESH_SECONDS:
                assert self.manager is not None
                self._fresh = self.manager.metrics.read_resources()
            return self._fresh

    def _store_latest(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        out: dict[str, dict[str, Any] | None] = {}
        for name in names:
            rows = self._store().select_records(
                "metric", extension_id=self.extension_id, equals={"name": name}, limit=1
            )
            out[name] = None
            if rows and isinstance(rows[0].get("value"), (int, float)):
                row = rows[0]
                out[name] = {"value": row["value"], "unit": row.get("unit") or "",
                             "ts": row.get("ts"), "source": "store"}  # fmt: skip
        return out

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
        floor = views.level_floor(level)
        # Built first: it checks every filter, for both sources.
        filters = LogQuery(
            level=floor, since=since, until=until, query=query or None, regex=regex,
            session_id=session_id,
        )  # fmt: skip
        if self.manager is not None:
            records = self.manager.logger.search_logs(
                query or None, level=floor, since=since, until=until, regex=regex,
                session_id=session_id, limit=limit,
            )  # fmt: skip
            return [record.to_dict() for record in records]
        return views.store_logs(self._store(), filters, extension_id=self.extension_id, limit=limit)

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
        if self.manager is not None:
            return self._live_after(cursor, filters, backlog, limit)
        return self._store_after(cursor, filters, backlog, limit)

    def _live_after(
        self, cursor: str | None, filters: LogQuery, backlog: int, limit: int
    ) -> LogBatch:
        logger = self._live("following the log").logger
        tag = f"l{self._tag}:"
        after: int | None = None
        if cursor and cursor.startswith(tag) and cursor[len(tag) :].isdigit():
            after = int(cursor[len(tag) :])
        kept = logger.records.snapshot()
        if after is None:
            newest = kept[-1].seq if kept else 0
            recent = [r for r in reversed(kept) if filters.matches(r.get)][:backlog]
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
        passed = [r for r in fresh if filters.matches(r.get)]
        return LogBatch(
            [r.to_dict() for r in passed], f"{tag}{last}", missed, [f"{tag}{r.seq}" for r in passed]
        )

    def _store_after(
        self, cursor: str | None, filters: LogQuery, backlog: int, limit: int
    ) -> LogBatch:
        store = self._store()
        after: int | None = None
        if cursor and cursor.startswith("s:") and cursor[2:].isdigit():
            after = int(cursor[2:])
        if after is None:
            newest = store.select_records("log", extension_id=self.extension_id, limit=1)
            start = newest[0]["record_id"] if newest else 0
            recent: list[dict[str, Any]] = []
            if backlog:
                found = views.store_logs(
                    store, filters, extension_id=self.extension_id, limit=backlog
                )
                recent = [r for r in reversed(found) if r["record_id"] <= start]
            return LogBatch(recent, f"s:{start}", 0, [f"s:{r['record_id']}" for r in recent])
        rows = store.select_records(
            "log", extension_id=self.extension_id, after_id=after, newest_first=False, limit=limit
        )
        last = rows[-1]["record_id"] if rows else after
        passed = [r for r in rows if filters.matches(r.get)]
        return LogBatch(passed, f"s:{last}", 0, [f"s:{r['record_id']}" for r in passed])

    # Errors ------------------------------------------------------------------------------
    def get_errors(self, *, status: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Error analysis (totals, categories; live: rate and trend) and the error groups.

        *status* keeps the groups that are ``open``, ``regressed``, ``resolved`` or
        ``unresolved`` (open or regressed); each group's status follows one rule, see
        :mod:`pytest_kari_debug.views`.
        """
        views.status_matches(views.OPEN, status)  # checks the filter
        _limit(limit)
        groups = self._error_groups()
        if self.manager is not None:
            analysis = self.manager.error_tracker.get_error_analysis().to_dict()
            by_fingerprint = {g["fingerprint"]: g for g in groups}
            analysis["top_groups"] = [
                by_fingerprint.get(g["fingerprint"], g) for g in analysis["top_groups"]
            ]
        else:
            categories: dict[str, int] = {}
            for group in groups:
                kind = group["category"]
                categories[kind] = categories.get(kind, 0) + group["count"]
            analysis = {
                "total_errors": sum(g["count"] for g in groups),
                "unique_errors": len(groups),
                "categories": categories,
                "top_groups": groups[:10],
            }
        kept = [g for g in groups if views.status_matches(g["status"], status)]
        return {"extension_id": self.extension_id, "source": self.source, "analysis": analysis,
                "groups": kept[:limit]}  # fmt: skip

    def _error_groups(self) -> list[dict[str, Any]]:
        """Every error group of the extension, most errors first."""
        if self.manager is not None:
            return views.live_error_groups(self.manager.error_tracker)
        return views.store_error_groups(self._store(), extension_id=self.extension_id)

    def resolve_error_group(self, fingerprint: str, notes: str | None = None) -> dict[str, Any]:
        """Mark error group *fingerprint* resolved; return the group as it is now.

        A live manager's tracker keeps it (an error of the group later makes it regressed);
        for recorded data the store keeps it, where ``kari-debug errors resolve`` writes.
        """
        if not isinstance(fingerprint, str) or not isinstance(notes, (str, type(None))):
            msg = f"fingerprint and notes must be text, got {fingerprint!r} and {notes!r}"
            raise ConfigurationError(msg)
        if self.manager is not None:
            tracker = self.manager.error_tracker
            if fingerprint not in {g.fingerprint for g in tracker.get_groups()}:
                msg = f"no error group {fingerprint!r} for extension {self.extension_id!r}"
                raise LookupError(msg)
            tracker.resolve(fingerprint, notes)
        else:
            store = self._store()
            states = views.ErrorStates.of_store(store, self.extension_id)
            known = views.store_error_groups(store, extension_id=self.extension_id, states=states)
            if not any(g["fingerprint"] == fingerprint for g in known):
                msg = f"no error group {fingerprint!r} recorded for extension {self.extension_id!r}"
                raise LookupError(msg)
            states.resolve(self.extension_id, fingerprint, notes, at=self.clock())
        return next(g for g in self._error_groups() if g["fingerprint"] == fingerprint)

    # Alerts ------------------------------------------------------------------------------
    def get_alerts(
        self, *, status: str | None = None, severity: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Alerts, newest first (*status*: active, resolved or inhibited; *severity*: least)."""
        if status not in (None, ACTIVE, RESOLVED, "inhibited"):
            msg = f"status must be 'active', 'resolved' or 'inhibited', got {status!r}"
            raise ConfigurationError(msg)
        least = None if severity is None else AlertSeverity.parse(severity)
        _limit(limit)
        if self.manager is not None:
            alerts = self.manager.alert_manager.get_alerts(status=status, severity=least)
            return [views.alert_view(a.to_dict()) for a in alerts[:limit]]

        def keep(alert: dict[str, Any]) -> bool:
            if status is not None and alert["status"] != status:
                return False
            return least is None or views.severity_rank(alert["severity"]) >= least.rank

        return views.store_alerts(
            self._store(), extension_id=self.extension_id, keep=keep, limit=limit
        )

    def _store_alerts(self) -> list[dict[str, Any]]:
        return views.store_alerts(self._store(), extension_id=self.extension_id)

    def get_alert_statistics(self) -> dict[str, Any]:
        """Counts by severity, type and status (and, live, notification outcomes)."""
        if self.manager is not None:
            return self.manager.alert_manager.get_alert_statistics()
        alerts = self._store_alerts()
        by_type: dict[str, int] = {}
        by_status: dict[str, int] = {ACTIVE: 0, RESOLVED: 0, "inhibited": 0}
        for alert in alerts:
            kind = str(alert.get("alert_type") or "unknown")
            by_type[kind] = by_type.get(kind, 0) + 1
            by_status[alert["status"]] = by_status.get(alert["status"], 0) + 1
        return {
            "total_alerts": len(alerts),
            "active_alerts": by_status[ACTIVE],
            "by_severity": _known_severities(alerts),
            "by_type": dict(sorted(by_type.items())),
            "by_status": by_status,
            "occurrences": sum(int(a.get("occurrences") or 1) for a in alerts),
        }

    def resolve_alert(self, alert_id: str, notes: str | None = None) -> dict[str, Any]:
        """Mark alert *alert_id* resolved (kept in the store for recorded alerts)."""
        if self.manager is not None:
            try:
                return views.alert_view(
                    self.manager.alert_manager.resolve_alert(alert_id, notes).to_dict()
                )
            except KeyError:
                msg = f"no alert {alert_id!r} for extension {self.extension_id!r}"
                raise LookupError(msg) from None
        store = self._store()
        found = views.store_alerts(
            store, extension_id=self.extension_id,
            keep=lambda alert: alert["alert_id"] == alert_id, limit=1,
        )  # fmt: skip
        if not found:
            msg = f"no alert {alert_id!r} recorded for extension {self.extension_id!r}"
            raise LookupError(msg)
        views.resolve_alert(store, self.extension_id, alert_id, notes, at=self.clock())
        return views.store_alerts(
            store, extension_id=self.extension_id,
            keep=lambda alert: alert["alert_id"] == alert_id, limit=1,
        )[0]  # fmt: skip

    # Sessions ----------------------------------------------------------------------------
    def get_sessions(self, *, limit: int = 100) -> dict[str, Any]:
        """Running sessions and the newest completed ones (a run's tests, from the store)."""
        _limit(limit)
        if self.manager is not None:
            active = [
                {"session_id": info.session_id, "name": info.name, "status": "running",
                 "started_at": info.started_at, "configuration": dict(info.options)}
                for info in self.manager.active_sessions()
            ]  # fmt: skip
            completed = [_session_summary(s) for s in list(self.manager.sessions)[-limit:]]
            return {"active": active, "completed": list(reversed(completed))}
        store = self._store()
        runs = store.run_summaries(extension_id=self.extension_id, limit=1)
        completed = []
        if runs:
            tests = store.slim_tests(None, extension_id=self.extension_id, run_id=runs[0]["id"])
            for test in reversed(tests[-limit:]):
                duration = float(test.get("duration_ms") or 0.0) / 1000.0
                completed.append(
                    {"session_id": None, "name": test["nodeid"], "status": test["outcome"],
                     "started_at": None, "ended_at": test.get("finished_at"),
                     "duration_seconds": duration, "configuration": {}, "records": {},
                     "run_id": runs[0]["id"]}
                )  # fmt: skip
        return {"active": [], "completed": completed}

    def start_session(
        self, configuration: dict[str, Any] | None = None, *, name: str | None = None
    ) -> dict[str, Any]:
        """Start a debug session on the live manager; return it (running)."""
        manager = self._live("starting a debug session")
        session_id = manager.start_debug_session(configuration, name=name)
        info = next(i for i in manager.active_sessions() if i.session_id == session_id)
        return {"session_id": session_id, "name": info.name, "status": "running",
                "started_at": info.started_at, "configuration": dict(info.options)}  # fmt: skip

    def stop_session(self, session_id: str) -> dict[str, Any]:
        """Stop the running session *session_id*; return it with its collected data."""
        manager = self._live("stopping a debug session")
        if not any(i.session_id == session_id for i in manager.active_sessions()):
            stopped = manager.get_session(session_id)
            where = " (already stopped)" if stopped is not None else ""
            msg = f"no running debug session {session_id!r}{where} for {self.extension_id!r}"
            raise SessionError(msg)
        session = manager.stop_debug_session(session_id)
        return {**_session_summary(session), "collected_data": session.collected_data}

    # Manager -----------------------------------------------------------------------------
    def get_status(self) -> dict[str, Any]:
        """The manager's status: running, uptime, components, counts, drops, sessions."""
        if self.manager is None:
            overview = self._store_overview()
            return {key: overview[key] for key in (
                "extension_id", "extension_name", "source", "running", "uptime_seconds",
                "enabled_components", "counts", "dropped", "sessions", "debug_overhead_ms",
                "sampling_rate", "diagnostics")}  # fmt: skip
        summary = self.manager.get_debug_summary()
        return {"source": "live", **{k: v for k, v in summary.items() if k != "components"},
                "configuration": self.manager.configuration.to_dict()}  # fmt: skip


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
