"""Metric records, thresholds and their breaches, and the sampler's fields."""

from __future__ import annotations

from typing import Any, NamedTuple

from ..model import OPERATORS
from ..sharedmethods import dataclass
from .readings import SAMPLE_FIELDS

__all__ = ["SAMPLE_FIELDS", "MetricAggregate", "MetricPoint", "Threshold", "ThresholdBreach"]


# Records ---------------------------------------------------------------------------------
class MetricPoint(NamedTuple):
    """One value of a metric, observed inside one debug session (or none).

    A NamedTuple rather than a frozen dataclass: equally immutable, and built about three
    times faster, which matters on ``record_metric``'s path (see benchmarks/metrics_bench.py).
    """

    name: str
    value: float
    unit: str
    ts: float
    session_id: str | None = None
    labels: dict[str, str] = {}  # shared default, never mutated; record_metric passes its own

    def to_dict(self) -> dict[str, Any]:
        """Return the point as JSON-able data."""
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "ts": self.ts,
            "session_id": self.session_id,
            "labels": dict(self.labels),
        }


@dataclass(frozen=True, slots=True)
class MetricAggregate:
    """Statistics of one metric over a window (last N seconds, a session or the whole run)."""

    name: str
    count: int
    sum: float
    min: float
    max: float
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    last: float
    rate_per_second: float
    window_seconds: float
    first_ts: float
    last_ts: float

    def to_dict(self) -> dict[str, Any]:
        """Return the aggregate as JSON-able data."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Threshold:
    """A limit on a metric: a value for which ``value <op> limit`` holds is a breach."""

    name: str
    op: str
    value: float
    severity: str

    def breached_by(self, value: float) -> bool:
        """Whether *value* breaks this threshold."""
        return OPERATORS[self.op](value, self.value)

    def to_dict(self) -> dict[str, Any]:
        """Return the threshold as JSON-able data."""
        return {"name": self.name, "op": self.op, "value": self.value, "severity": self.severity}


@dataclass(frozen=True, slots=True)
class ThresholdBreach:
    """A metric value that went across a threshold (recorded on the transition only)."""

    name: str
    op: str
    threshold: float
    value: float
    severity: str
    ts: float
    session_id: str | None

    @property
    def message(self) -> str:
        return f"{self.name} = {self.value:g} breaks threshold {self.op} {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        """Return the breach as JSON-able data."""
        return {
            "name": self.name,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "severity": self.severity,
            "level": self.severity,
            "ts": self.ts,
            "session_id": self.session_id,
            "message": self.message,
        }
