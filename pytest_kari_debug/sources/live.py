"""``LiveSource``: a live manager's records, read through its components' public methods."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .. import views
from ..exceptions import ConfigurationError
from ..exporters.bundle import session_tests
from ..logger import LogQuery, LogRecord
from ..manager import ExtensionDebugManager
from ..metrics import SAMPLE_FIELDS
from ..resolutions import ERROR_GROUP
from .base import (
    FRESH_SECONDS,
    KINDS,
    Group,
    LogBatch,
    LogWindow,
    _since,
    _Source,
    alert_statistics,
    cursor_position,
    session_summary,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


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
        self, cursor: str | None, filters: LogQuery, **window: Unpack[LogWindow]
    ) -> LogBatch:
        """Cursors are ``l<tag>:<seq>``: a record's place in this manager's logger."""
        backlog, limit, nodeid = window["backlog"], window["limit"], window.get("nodeid")

        def matches(record: LogRecord) -> bool:
            return filters.matches(record.get) and (nodeid is None or nodeid in (record.test or ""))

        logger = self.manager.logger
        tag = f"l{self._tag}:"
        after = cursor_position(cursor, tag)
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
