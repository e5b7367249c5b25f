"""``MetricsCollector``: custom metrics, request figures and collectors of one extension."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from .component import Component
from .context import CURRENT_SESSION, SessionInfo
from .exceptions import ConfigurationError

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One value of a metric, observed inside one debug session (or none)."""

    name: str
    value: float
    unit: str
    ts: float
    session_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the point as JSON-able data."""
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "ts": self.ts,
            "session_id": self.session_id,
            "labels": self.labels,
        }


class MetricsCollector(Component):
    """Records metric points in a bounded buffer; custom collectors are polled on demand."""

    kind = "metrics"
    limit_field = "max_metrics"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.custom_collectors: dict[str, Callable[[], float]] = {}
        self._process = psutil.Process()
        self._session_start: dict[str, tuple[float, float, int]] = {}

    def begin_session(self, session: SessionInfo) -> None:
        super().begin_session(session)
        if self.enabled:
            cpu = self._process.cpu_times()
            rss = self._process.memory_info().rss
            self._session_start[session.session_id] = (cpu.user, cpu.system, rss)

    def end_session(self, session: SessionInfo) -> dict[str, Any]:
        data = super().end_session(session)
        data["resources"] = self.session_resources(session.session_id)
        self._session_start.pop(session.session_id, None)
        return data

    def session_resources(self, session_id: str) -> dict[str, float]:
        """Resource figures of the open session *session_id* from its start until now.

        Keys: ``cpu_user_s``, ``cpu_system_s``, ``cpu_ms``, ``rss_start_bytes``,
        ``rss_end_bytes``, ``peak_rss_bytes``. Empty when the session is unknown.
        """
        start = self._session_start.get(session_id)
        if start is None:
            return {}
        cpu = self._process.cpu_times()
        rss = self._process.memory_info().rss
        user, system = cpu.user - start[0], cpu.system - start[1]
        return {
            "cpu_user_s": round(user, 6),
            "cpu_system_s": round(system, 6),
            "cpu_ms": round((user + system) * 1000.0, 3),
            "rss_start_bytes": start[2],
            "rss_end_bytes": rss,
            "peak_rss_bytes": max(start[2], rss),
        }

    def record_metric(self, name: str, value: float, unit: str = "", **labels: Any) -> None:
        """Record *value* of metric *name* in *unit*."""
        if not isinstance(name, str) or not _NAME.match(name):
            msg = f"metric name {name!r} is not valid: use letters, digits, '_' and ':'"
            raise ConfigurationError(msg)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            msg = f"metric {name!r} value must be a number, got {value!r}"
            raise ConfigurationError(msg)
        if not math.isfinite(value):
            msg = f"metric {name!r} value must be finite, got {value!r}"
            raise ConfigurationError(msg)
        if not self.enabled:
            return
        session = CURRENT_SESSION.get()
        session_id = session.session_id if session else None
        point = MetricPoint(
            name,
            float(value),
            unit,
            time.time(),
            session_id,
            {k: str(v) for k, v in labels.items()},
        )
        self.records.append(point, session_id)

    def register_custom_collector(self, name: str, collector: Callable[[], float]) -> None:
        """Register *collector*, a callable returning the current value of metric *name*."""
        if not callable(collector):
            msg = f"collector for {name!r} must be callable, got {collector!r}"
            raise ConfigurationError(msg)
        self.custom_collectors[name] = collector

    def collect_custom(self) -> None:
        """Poll every custom collector once; one that raises is reported and then skipped."""
        for name, collector in list(self.custom_collectors.items()):
            try:
                self.record_metric(name, collector())
            except Exception as exc:  # a user collector must never stop sampling
                self.add_diagnostic(f"custom collector {name!r} raised {exc!r}; skipped from now")
                self.custom_collectors.pop(name, None)

    def record_request_time(self, duration_ms: float) -> None:
        """Record the duration of one handled request."""
        self.record_metric("request_time", duration_ms, "ms")

    def record_error(self, error_type: str) -> None:
        """Count one error of *error_type*."""
        self.record_metric("errors", 1, "count", error_type=error_type)

    def get_metrics(self, name: str | None = None) -> list[MetricPoint]:
        """Return the kept points, oldest first, of *name* or of every metric."""
        return [p for p in self.records.snapshot() if name is None or p.name == name]
