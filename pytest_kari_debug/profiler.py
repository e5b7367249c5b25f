"""``PerformanceProfiler``: function and block timings, and profiling sessions."""

from __future__ import annotations

import cProfile
import functools
import inspect
import pstats
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .component import Component
from .context import CURRENT_SESSION
from .exceptions import SessionError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Timing:
    """One timed call of a profiled function or block."""

    name: str
    wall_ms: float
    cpu_ms: float
    ts: float
    session_id: str | None
    failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the timing as JSON-able data."""
        return {
            "name": self.name,
            "value": self.wall_ms,
            "wall_ms": self.wall_ms,
            "cpu_ms": self.cpu_ms,
            "ts": self.ts,
            "session_id": self.session_id,
            "failed": self.failed,
        }


@dataclass
class ProfileSession:
    """A profiling session and, once stopped, its results."""

    session_id: str
    started_at: float
    profile_cpu: bool
    profile_memory: bool
    enable_cprofile: bool
    duration_seconds: float = 0.0
    cprofile_stats: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    _profile: cProfile.Profile | None = None


class PerformanceProfiler(Component):
    """Times functions and blocks, and runs cProfile and tracemalloc sessions."""

    kind = "profiling"
    limit_field = "max_metrics"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: dict[str, ProfileSession] = {}

    def _record(self, name: str, wall: float, cpu: float, failed: bool) -> None:
        session = CURRENT_SESSION.get()
        session_id = session.session_id if session else None
        self.records.append(
            Timing(name, wall * 1000.0, cpu * 1000.0, time.time(), session_id, failed), session_id
        )

    def profile_function(self, func: F) -> F:
        """Decorate *func* (sync or async) so that every call is timed."""
        name = f"{func.__module__}.{func.__qualname__}"
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.profile_block(name):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.profile_block(name):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    @contextmanager
    def profile_block(self, name: str) -> Iterator[None]:
        """Time the block as *name*."""
        if not self.enabled:
            yield
            return
        wall, cpu = time.perf_counter(), time.process_time()
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            self._record(name, time.perf_counter() - wall, time.process_time() - cpu, failed)

    def start_session(
        self, profile_memory: bool = False, profile_cpu: bool = True, enable_cprofile: bool = False
    ) -> str:
        """Start a profiling session; return its id."""
        session = ProfileSession(
            uuid.uuid4().hex, time.perf_counter(), profile_cpu, profile_memory, enable_cprofile
        )
        if enable_cprofile:
            session._profile = cProfile.Profile()
            session._profile.enable()
        if profile_memory and not tracemalloc.is_tracing():
            tracemalloc.start()
            session.memory["started_tracemalloc"] = True
        if profile_memory:
            tracemalloc.reset_peak()
        self.sessions[session.session_id] = session
        return session.session_id

    def stop_session(self, session_id: str) -> ProfileSession:
        """Stop the session *session_id* and return it with its results."""
        session = self.sessions.get(session_id)
        if session is None or session.duration_seconds:
            msg = f"no running profiling session {session_id!r}"
            raise SessionError(msg)
        session.duration_seconds = time.perf_counter() - session.started_at
        if session._profile is not None:
            session._profile.disable()
            stats = pstats.Stats(session._profile)
            rows = [
                {
                    "function": f"{file}:{line}({func})",
                    "calls": calls,
                    "total_time": total,
                    "cumulative_time": cumulative,
                }
                for (file, line, func), (_, calls, total, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
            ]
            session.cprofile_stats = sorted(rows, key=lambda r: -r["total_time"])
            session._profile = None
        if session.profile_memory:
            current, peak = tracemalloc.get_traced_memory()
            session.memory.update({"current_bytes": current, "peak_bytes": peak})
            if session.memory.pop("started_tracemalloc", False):
                tracemalloc.stop()
        return session

    def get_bottlenecks(self, limit: int = 10) -> list[dict[str, Any]]:
        """Return the profiled names with the most total wall time, slowest first."""
        totals: dict[str, list[float]] = {}
        for timing in self.records.snapshot():
            entry = totals.setdefault(timing.name, [0.0, 0.0])
            entry[0] += timing.wall_ms
            entry[1] += 1
        grand = sum(total for total, _ in totals.values()) or 1.0
        ranked = sorted(totals.items(), key=lambda item: -item[1][0])[:limit]
        return [
            {
                "name": name,
                "total_ms": total,
                "calls": int(calls),
                "mean_ms": total / calls,
                "share": total / grand,
            }
            for name, (total, calls) in ranked
        ]
