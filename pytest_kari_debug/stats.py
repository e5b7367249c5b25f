"""Order statistics shared by metrics, alert rules, the profiler and the exporters."""

from __future__ import annotations

from collections.abc import Sequence


def quantile(values: Sequence[float], q: float) -> float:
    """The *q* quantile (0..1) of sorted *values*, interpolated linearly between closest ranks.

    The definition of numpy's default ("linear") and of Prometheus summaries' reading: every
    p50/p95 this package prints is this one.
    """
    if not values:
        msg = "quantile of no values"
        raise ValueError(msg)
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)
