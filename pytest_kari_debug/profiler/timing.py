"""Records of timed calls and their per-name aggregates."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..sharedmethods import dataclass
from ..stats import quantile
from .limits import RESERVOIR_SIZE

if TYPE_CHECKING:
    from .core import PerformanceProfiler


# Records ---------------------------------------------------------------------------------
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


def _p95(values: Sequence[float]) -> float:
    return quantile(sorted(values), 0.95) if values else 0.0


class FunctionStats:
    """Aggregated timings of one profiled name; p95 comes from a bounded random reservoir."""

    __slots__ = (
        "_cpu_reservoir",
        "_rng",
        "_wall_reservoir",
        "calls",
        "cpu_max",
        "cpu_min",
        "cpu_total",
        "failed",
        "name",
        "timed",
        "wall_max",
        "wall_min",
        "wall_total",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.timed = 0
        self.failed = 0
        self.wall_total = self.cpu_total = 0.0
        self.wall_min = self.cpu_min = math.inf
        self.wall_max = self.cpu_max = 0.0
        self._wall_reservoir: list[float] = []
        self._cpu_reservoir: list[float] = []
        self._rng = random.Random(name)

    def add(self, wall: float, cpu: float) -> None:
        """Add one timed call (seconds)."""
        self.timed += 1
        self.wall_total += wall
        self.cpu_total += cpu
        self.wall_min = min(self.wall_min, wall)
        self.wall_max = max(self.wall_max, wall)
        self.cpu_min = min(self.cpu_min, cpu)
        self.cpu_max = max(self.cpu_max, cpu)
        if len(self._wall_reservoir) < RESERVOIR_SIZE:
            self._wall_reservoir.append(wall)
            self._cpu_reservoir.append(cpu)
        else:  # Algorithm R: every timed call has the same chance to be kept
            slot = self._rng.randrange(self.timed)
            if slot < RESERVOIR_SIZE:
                self._wall_reservoir[slot] = wall
                self._cpu_reservoir[slot] = cpu

    def to_dict(self) -> dict[str, Any]:
        """Return the statistics in milliseconds, as JSON-able data."""
        timed = self.timed or 1
        mean_wall = self.wall_total / timed
        mean_cpu = self.cpu_total / timed
        return {
            "name": self.name,
            "calls": self.calls,
            "timed_calls": self.timed,
            "failed": self.failed,
            # With sampled timing (overhead limit) the total is the mean times the calls.
            "total_ms": round(mean_wall * self.calls * 1000.0, 6),
            "mean_ms": round(mean_wall * 1000.0, 6),
            "min_ms": round((self.wall_min if self.timed else 0.0) * 1000.0, 6),
            "max_ms": round(self.wall_max * 1000.0, 6),
            "p95_ms": round(quantile(sorted(self._wall_reservoir), 0.95) * 1000.0, 6)
            if self._wall_reservoir
            else 0.0,
            "cpu_total_ms": round(mean_cpu * self.calls * 1000.0, 6),
            "cpu_mean_ms": round(mean_cpu * 1000.0, 6),
            "cpu_min_ms": round((self.cpu_min if self.timed else 0.0) * 1000.0, 6),
            "cpu_max_ms": round(self.cpu_max * 1000.0, 6),
            "cpu_p95_ms": round(_p95(self._cpu_reservoir) * 1000.0, 6),
        }


def _session_functions(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-name timing figures of one debug session's records (timed calls only)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["name"], []).append(record)
    result = {}
    for name, rows in grouped.items():
        walls = [r["wall_ms"] for r in rows]
        cpus = [r["cpu_ms"] for r in rows]
        result[name] = {
            "timed_calls": len(rows),
            "failed": sum(1 for r in rows if r["failed"]),
            "total_ms": round(sum(walls), 6),
            "mean_ms": round(sum(walls) / len(walls), 6),
            "min_ms": round(min(walls), 6),
            "max_ms": round(max(walls), 6),
            "p95_ms": round(_p95(walls), 6),
            "cpu_total_ms": round(sum(cpus), 6),
            "cpu_p95_ms": round(_p95(cpus), 6),
        }
    return result


class _TimedBlock:
    """Context manager (sync and async) timing one execution of a named block."""

    __slots__ = ("_c0", "_name", "_profiler", "_t0", "_t1", "_timed")

    def __init__(self, profiler: PerformanceProfiler, name: str) -> None:
        self._profiler = profiler
        self._name = name
        self._timed = False

    def __enter__(self) -> _TimedBlock:
        t0 = time.perf_counter()
        profiler = self._profiler
        if profiler.enabled and next(profiler._ticks) % profiler.timing_every == 0:
            self._timed = True
            self._t0 = t0
            self._c0 = time.thread_time()
            self._t1 = time.perf_counter()
        else:
            self._timed = False
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        t2 = time.perf_counter()
        profiler = self._profiler
        if not profiler.enabled:
            return
        if not self._timed:
            profiler._count(self._name, exc_type is not None)
            return
        cpu = time.thread_time() - self._c0
        wall = t2 - self._t1
        profiler._finish(self._name, wall, cpu, exc_type is not None, (self._t1 - self._t0), t2)

    async def __aenter__(self) -> _TimedBlock:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)
