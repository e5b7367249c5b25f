"""Sampling by trace id: the low 64 bits of the id against ``rate * 2**64``."""

from __future__ import annotations

_MASK64 = (1 << 64) - 1
_TWO64 = 1 << 64


def sampling_decision(trace_id: str | int, rate: float) -> bool:
    """Whether a trace is recorded at *rate*: a function of its trace id alone.

    Like OpenTelemetry's ``TraceIdRatioBased``: the low 64 bits of the id against
    ``rate * 2**64``, so every process with the same rate takes the same decision.
    """
    tid = int(trace_id, 16) if isinstance(trace_id, str) else trace_id
    return (tid & _MASK64) < _bound(rate)


def _bound(rate: float) -> int:
    if rate >= 1.0:
        return _TWO64
    return max(0, int(rate * _TWO64))
