"""``ExtensionDebugManager``: the components of one extension, its debug sessions and health."""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import Token
from dataclasses import field
from typing import TYPE_CHECKING, Any

from .alerting import AlertManager, AlertSeverity
from .atomic import write_atomic
from .component import Component
from .config import DebugConfiguration
from .context import CURRENT_SESSION, SESSION_OPTIONS, SessionInfo, session_info
from .diagnostics import Diagnostics
from .errors import ErrorGroup, ErrorTracker
from .exceptions import ConfigurationError, SessionError
from .logger import ExtensionLogger
from .metrics import MetricsCollector
from .profiler import PerformanceProfiler
from .resolutions import resolution_of, status_of
from .sharedmethods import dataclass
from .tracing import ExtensionTracer

if TYPE_CHECKING:
    from .exporters.bundle import ExportBundle

STATUS_ORDER = ("healthy", "degraded", "unhealthy")
#: Session time over which the debug overhead share is judged (seconds).
OVERHEAD_WINDOW_S = 1.0


class Completed:
    """The already-finished result of an operation that callers may also ``await``."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # makes this a generator function; never reached


@dataclass(slots=True)
class DebugSession:
    """A debug session: its time span and what every enabled component recorded in it."""

    session_id: str
    extension_id: str
    name: str
    started_at: float
    configuration: dict[str, Any] = field(default_factory=dict)
    ended_at: float | None = None
    duration_seconds: float = 0.0
    collected_data: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "running" if self.ended_at is None else "stopped"

    def to_dict(self) -> dict[str, Any]:
        """Return the session as JSON-able data."""
        return {
            "session_id": self.session_id,
            "extension_id": self.extension_id,
            "name": self.name,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_seconds": self.duration_seconds,
            "status": self.status,
            "configuration": self.configuration,
            "collected_data": self.collected_data,
        }


@dataclass(frozen=True)
class ComponentCheck:
    """Health of one component."""

    component: str
    status: str
    detail: str


@dataclass(frozen=True)
class DiagnosticsReport:
    """Result of :meth:`ExtensionDebugManager.run_diagnostics`."""

    overall_status: str
    checks: list[ComponentCheck]
    checked_at: float
    debug_overhead_ms: float

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-able data."""
        return {
            "overall_status": self.overall_status,
            "checked_at": self.checked_at,
            "debug_overhead_ms": self.debug_overhead_ms,
            "checks": [vars(check) for check in self.checks],
        }


#: A running session: its info, the context token that made it current, perf_counter at its
#: start (a tuple: one a session, made and read on every test).
_Running = tuple[SessionInfo, "Token[SessionInfo | None] | None", float]


_perf_counter = time.perf_counter
_time = time.time
_set_current = CURRENT_SESSION.set

#: Session ids: 128 random bits from a generator of the package's own (a user's
#: ``random.seed`` never touches it), seeded from the system's randomness at import and again
#: in a forked child. ``os.urandom`` is a system call at every session.
_ids = random.Random()
_random_bytes = _ids.randbytes
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)


def new_session_id() -> str:
    """A fresh session id: 32 hex digits."""
    return _random_bytes(16).hex()


_REGISTRY: dict[str, weakref.ref[ExtensionDebugManager]] = {}
_REGISTRY_LOCK = threading.Lock()


def get_manager(extension_id: str) -> ExtensionDebugManager | None:
    """Return the live manager of *extension_id*, or ``None``."""
    ref = _REGISTRY.get(extension_id)
    return None if ref is None else ref()


def list_managers() -> list[ExtensionDebugManager]:
    """Return every live manager, by extension id."""
    with _REGISTRY_LOCK:
        managers = [ref() for _, ref in sorted(_REGISTRY.items())]
    return [m for m in managers if m is not None]


class ExtensionDebugManager:
    """Owns the logger, metrics, errors, profiler, tracer and alerts of one extension.

    A component switched off in the configuration is still returned by its getter: it
    accepts every call and records nothing.
    """

    def __init__(
        self,
        extension_id: str,
        extension_name: str | None = None,
        configuration: DebugConfiguration | None = None,
    ) -> None:
        if not isinstance(extension_id, str) or not extension_id.strip():
            msg = f"extension_id must be a non-empty string, got {extension_id!r}"
            raise ConfigurationError(msg)
        if configuration is not None and not isinstance(configuration, DebugConfiguration):
            msg = f"configuration must be a DebugConfiguration, got {configuration!r}"
            raise ConfigurationError(msg)
        self.extension_id = extension_id
        self.extension_name = extension_name or extension_id
        self.configuration = configuration or DebugConfiguration()
        cfg = self.configuration
        self.metrics = MetricsCollector(extension_id, cfg, enabled=cfg.metrics_enabled)
        self.error_tracker = ErrorTracker(extension_id, cfg, enabled=cfg.error_tracking_enabled)
        # ERROR/CRITICAL log records that carry an exception are errors too.
        self.logger = ExtensionLogger(
            extension_id,
            cfg,
            enabled=cfg.logging_enabled,
            metrics=self.metrics,
            on_error=self.error_tracker.record_exception if cfg.error_tracking_enabled else None,
        )
        self.profiler = PerformanceProfiler(
            extension_id, cfg, enabled=cfg.profiling_enabled or cfg.memory_tracking
        )
        self.tracer = ExtensionTracer(extension_id, cfg, enabled=cfg.tracing_enabled)
        self.alert_manager = AlertManager(extension_id, cfg, enabled=cfg.alerting_enabled)
        self.metrics.set_alert_handler(self.alert_manager.raise_alert)
        self.components: dict[str, Component] = {
            c.kind: c
            for c in (
                self.logger,
                self.metrics,
                self.error_tracker,
                self.profiler,
                self.tracer,
                self.alert_manager,
            )
        }
        self._components = tuple(self.components.values())
        self._reversed = self._components[::-1]
        self.running = False
        self.started_at: float | None = None
        self.sessions: deque[DebugSession] = deque(maxlen=cfg.max_sessions)
        self.completed_sessions = 0  # every stopped session, also those no longer kept
        self.diagnostics = Diagnostics(100)
        self.effective_sampling_rate = cfg.sampling_rate
        self.adjustments: list[dict[str, Any]] = []
        self._active: dict[str, _Running] = {}
        self._overhead_s = 0.0
        self._session_wall_s = 0.0
        self._window_sessions = 0
        self._lock = threading.Lock()
        with _REGISTRY_LOCK:
            _REGISTRY[extension_id] = weakref.ref(self)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ExtensionDebugManager {self.extension_id!r} {state}>"

    # Components ------------------------------------------------------------------------
    def get_logger(self) -> ExtensionLogger:
        """Return the extension's structured logger."""
        return self.logger

    def get_metrics_collector(self) -> MetricsCollector:
        """Return the extension's metrics collector."""
        return self.metrics

    def get_error_tracker(self) -> ErrorTracker:
        """Return the extension's error tracker."""
        return self.error_tracker

    def get_profiler(self) -> PerformanceProfiler:
        """Return the extension's profiler."""
        return self.profiler

    def get_tracer(self) -> ExtensionTracer:
        """Return the extension's tracer."""
        return self.tracer

    def get_alert_manager(self) -> AlertManager:
        """Return the extension's alert manager."""
        return self.alert_manager

    def enabled_components(self) -> list[Component]:
        """The components switched on in the configuration."""
        return [c for c in self.components.values() if c.enabled]

    # Lifecycle -------------------------------------------------------------------------
    def start(self) -> Completed:
        """Start background work (resource sampling). Idempotent; ``await`` is optional."""
        with self._lock:
            if not self.running:
                for component in self.enabled_components():
                    self._guarded(component.kind, component.start)
                self.running = True
                self.started_at = time.time()
        return Completed(self)

    def stop(self) -> Completed:
        """Stop background work. Idempotent; ``await`` is optional."""
        with self._lock:
            if self.running:
                for component in self.enabled_components():
                    self._guarded(component.kind, component.stop)
                self.running = False
        return Completed(self)

    # Debug sessions --------------------------------------------------------------------
    def start_debug_session(
        self, configuration: dict[str, Any] | None = None, *, name: str | None = None
    ) -> str:
        """Start a debug session in the current context and return its id.

        Records made in this context from now on (and in tasks and threads started from it
        with its context) belong to the session until :meth:`stop_debug_session`.
        """
        began = _perf_counter()
        options = _check_session_options(configuration) if configuration else {}
        session_id = new_session_id()
        info = session_info(session_id, self.extension_id, name or session_id, _time(), options)
        for component in self._components:
            if component.enabled:
                try:
                    component.begin_session(info)
                except Exception as exc:
                    self._note(component.kind, exc)
        self._active[session_id] = (info, _set_current(info), began)
        self._overhead_s += _perf_counter() - began
        return session_id

    def stop_debug_session(self, session_id: str) -> DebugSession:
        """Stop the session *session_id* and return it with its collected data."""
        began = _perf_counter()
        running = self._active.pop(session_id, None)
        if running is None:
            msg = f"no running debug session {session_id!r} for extension {self.extension_id!r}"
            raise SessionError(msg)
        info = running[0]
        self._restore_context(running)
        if (
            self.error_tracker.enabled
            and self.logger.enabled
            and getattr(self.logger, "on_error", None) is None
        ):
            # Error-level log records carrying an exception are errors too (issue #5); a
            # logger that reports them live (on_error) needs no collection here.
            logs = self.logger.session_records(session_id)
            self._guarded("error_tracking", self.error_tracker.record_logs, logs)
        # The keys in the order of the components; each ends in the reverse order of
        # beginning, so a component that began on top of another (the profiler's tracemalloc
        # use on top of the metrics collector's) ends first.
        ended: list[tuple[str, Any]] = []
        for component in self._reversed:
            if component.enabled:
                try:
                    data = component.end_session(info)
                except Exception as exc:
                    self._note(component.kind, exc)
                    data = None
                ended.append(
                    (component.kind, {"error": "collection failed"} if data is None else data)
                )
        ended.reverse()
        collected = dict(ended)
        duration = _perf_counter() - running[2]
        if duration < 0.0:
            duration = 0.0
        session = DebugSession(
            session_id,
            self.extension_id,
            info.name,
            info.started_at,
            info.options,  # the session's own copy (made by _check_session_options)
            _time(),
            duration,
            collected,
        )
        self.sessions.append(session)
        self.completed_sessions += 1
        self._window_sessions += 1
        self._overhead_s += _perf_counter() - began
        self._session_wall_s += duration
        if self._session_wall_s >= OVERHEAD_WINDOW_S:
            self._adapt_sampling()
        return session

    @contextmanager
    def debug_session(
        self, configuration: dict[str, Any] | None = None, *, name: str | None = None
    ) -> Iterator[str]:
        """Run the block inside a debug session; yields the session id."""
        session_id = self.start_debug_session(configuration, name=name)
        try:
            yield session_id
        finally:
            self.stop_debug_session(session_id)

    @asynccontextmanager
    async def async_debug_session(
        self, configuration: dict[str, Any] | None = None, *, name: str | None = None
    ) -> AsyncIterator[str]:
        """``async with`` twin of :meth:`debug_session`."""
        with self.debug_session(configuration, name=name) as session_id:
            yield session_id

    def active_sessions(self) -> list[SessionInfo]:
        """The sessions started and not yet stopped."""
        return [running[0] for running in list(self._active.values())]

    def get_session(self, session_id: str) -> DebugSession | None:
        """Return a stopped session kept in memory, or ``None``."""
        return next((s for s in reversed(self.sessions) if s.session_id == session_id), None)

    def _restore_context(self, running: _Running) -> None:
        token = running[1]
        if token is not None and CURRENT_SESSION.get() is running[0]:
            try:
                CURRENT_SESSION.reset(token)
            except ValueError:  # stopped from another context than the one that started it
                CURRENT_SESSION.set(None)
            restored = CURRENT_SESSION.get()
            if restored is not None and restored.session_id not in self._active:
                CURRENT_SESSION.set(None)

    # Self-monitoring -------------------------------------------------------------------
    def add_overhead(self, seconds: float) -> None:
        """Count *seconds* of work done by the debugging machinery itself."""
        self._overhead_s += seconds

    @property
    def debug_overhead_ms(self) -> float:
        return self._overhead_s * 1000.0

    def _adapt_sampling(self) -> None:
        # Judge the overhead over windows of at least OVERHEAD_WINDOW_S of session time and
        # 10 sessions: a few microseconds of bookkeeping around a trivial test are a large
        # share of nothing, and checking after every session would itself cost.
        if self._session_wall_s < OVERHEAD_WINDOW_S or self._window_sessions < 10:
            return
        share = 100.0 * self._overhead_s / self._session_wall_s
        limit = self.configuration.profiling_overhead_limit
        self._overhead_s = 0.0
        self._session_wall_s = 0.0
        self._window_sessions = 0
        if share > limit:
            self._guarded("alerting", self._overhead_alert, share, limit)
        if share > limit and self.effective_sampling_rate > 0.01:
            self.effective_sampling_rate = max(0.01, self.effective_sampling_rate / 2)
            self.tracer.sampling_rate = min(self.tracer.sampling_rate, self.effective_sampling_rate)
            self.adjustments.append(
                {
                    "ts": time.time(),
                    "overhead_percent": share,
                    "sampling_rate": self.effective_sampling_rate,
                }
            )

    def _overhead_alert(self, share: float, limit: float) -> None:
        """Self-monitoring: the debugging machinery costs more than its limit (a LOW alert)."""
        self.alert_manager.raise_alert(
            "debug_overhead",
            AlertSeverity.LOW,
            "Debug overhead above its limit",
            f"debug overhead is {share:.1f}% of session time, above the {limit:g}% limit"
            " (profiling_overhead_limit)",
            "debug_overhead_percent",
            round(share, 3),
            limit,
            source="ExtensionDebugManager overhead accounting",
            labels={"extension_id": self.extension_id},
        )

    def _guarded(self, where: str, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except Exception as exc:
            self._note(where, exc)
            return None

    def _note(self, where: str, exc: Exception) -> None:
        message = f"{where}: {type(exc).__name__}: {exc}"
        self.diagnostics.add(message)

    # Export ------------------------------------------------------------------------------
    def export_bundle(self, *, with_tests: bool = False) -> ExportBundle:
        """Everything this manager keeps, as the plain data every export renders.

        *with_tests*: the stopped sessions as test records too (the Prometheus run families).
        """
        # The export formats are imported by the first export, not by every manager's start.
        from .exporters.bundle import ExportBundle, session_tests

        fields: dict[str, Any] = {"extension_id": self.extension_id}
        logs = self.logger.get_logs()
        errors = self.error_tracker.get_errors()
        alerts = self.alert_manager.get_alerts()
        summary = self.get_debug_summary()
        fields.update(
            logs=[record.to_dict() for record in reversed(logs)],
            logs_dropped=self.logger.records.dropped,
            metrics=self.metrics.export_data(),
            latest_metrics=self.metrics.latest_values(),
            errors=[record.to_dict() for record in reversed(errors)],
            error_groups=[_group_data(group) for group in self.error_tracker.get_groups()],
            alerts=[alert.to_dict() for alert in reversed(alerts)],
            alert_statistics=self.alert_manager.get_alert_statistics(),
            overview={
                "counts": summary["counts"],
                "dropped": summary["dropped"],
                "log_levels": self.logger.level_counts(),
            },
            sessions=[session.to_dict() for session in self.sessions],
            spans=self.tracer.get_spans(),
            tests=session_tests(self.sessions) if with_tests else [],
        )
        return ExportBundle(**fields)

    def export(
        self,
        kind: str = "all",
        format: str = "json",
        *,
        trace_id: str | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> str:
        """This manager's *kind* of data (logs, metrics, errors, alerts, traces, all) as
        *format* text -- the REST API's export of a live manager; with *path*, also written
        there atomically.

        Formats: json, csv, prometheus, openmetrics; traces: jaeger or otlp (``otlp-json``).
        """
        from .exporters.formats import check_format, exporter_for

        fmt = "otlp" if kind == "traces" and format == "otlp-json" else format
        check_format(kind, fmt)
        bundle = self.export_bundle(with_tests=fmt in ("prometheus", "openmetrics"))
        text = exporter_for(fmt).render(bundle, kind, trace_id=trace_id).decode("utf-8")
        if path is not None:
            write_atomic(path, text)
        return text

    def get_debug_summary(self) -> dict[str, Any]:
        """Enabled components, overhead, counts and drops of this manager."""
        stats = {kind: c.stats() for kind, c in self.components.items() if c.enabled}
        return {
            "extension_id": self.extension_id,
            "extension_name": self.extension_name,
            "running": self.running,
            "uptime_seconds": time.time() - self.started_at if self.started_at else 0.0,
            "enabled_components": [c.kind for c in self.enabled_components()],
            "debug_overhead_ms": round(self.debug_overhead_ms, 3),
            "sampling_rate": self.effective_sampling_rate,
            "sampling_adjustments": list(self.adjustments),
            "sessions": {
                "active": len(self._active),
                "completed": self.completed_sessions,
                "kept": len(self.sessions),
            },
            "counts": {kind: s["records"] for kind, s in stats.items()},
            "dropped": {kind: s["dropped"] for kind, s in stats.items()},
            "components": stats,
            "diagnostics": list(self.diagnostics),
        }

    def diagnose(self) -> DiagnosticsReport:
        """Check every component and this manager; the synchronous twin of run_diagnostics."""
        checks = []
        for kind, component in self.components.items():
            try:
                status, detail = component.check()
            except Exception as exc:
                status, detail = "unhealthy", f"check raised {type(exc).__name__}: {exc}"
            checks.append(ComponentCheck(kind, status, detail))
        manager_status = "degraded" if self.diagnostics else "healthy"
        checks.append(
            ComponentCheck(
                "manager",
                manager_status,
                self.diagnostics.latest() or ("running" if self.running else "not started"),
            )
        )
        overall = max((c.status for c in checks), key=STATUS_ORDER.index)
        return DiagnosticsReport(overall, checks, time.time(), round(self.debug_overhead_ms, 3))

    async def run_diagnostics(self) -> DiagnosticsReport:
        """Check every component and this manager."""
        return self.diagnose()


def _check_session_options(configuration: dict[str, Any] | None) -> dict[str, Any]:
    if configuration is None:
        return {}
    if not isinstance(configuration, dict):
        msg = f"session configuration must be a dict, got {configuration!r}"
        raise ConfigurationError(msg)
    for key, value in configuration.items():
        kind = SESSION_OPTIONS.get(key)
        if kind is None:
            msg = f"unknown debug session option {key!r}; accepted: {sorted(SESSION_OPTIONS)}"
            raise ConfigurationError(msg)
        if not isinstance(value, kind):
            msg = f"debug session option {key!r} must be {kind.__name__}, got {value!r}"
            raise ConfigurationError(msg)
    return dict(configuration)


def _group_data(group: ErrorGroup) -> dict[str, Any]:
    """A tracker's group as exports show it: its status in the words of every view."""
    data = group.to_dict()
    data["status"] = status_of(resolution_of(data), data["last_seen"])
    return data
