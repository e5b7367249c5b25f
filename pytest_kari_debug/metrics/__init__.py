"""``MetricsCollector``: resource sampling, custom metrics and collectors, aggregation, thresholds.

Two ways of reading the process are used, on purpose:

* the **sampler** (a daemon thread at ``metrics_interval``) takes a full picture with psutil
  inside ``Process.oneshot()``: CPU percent and seconds, RSS, USS, VMS, threads, open file
  descriptors, context switches, disk io bytes and the *system-wide* network bytes;
* **session boundaries** (the start and end of every debug session, i.e. of every test) must
  cost microseconds, so they read only what is cheap: ``getrusage`` (CPU seconds, context
  switches, lifetime peak RSS) and, on Linux, ``/proc/self/statm`` and ``/proc/self/io`` through
  descriptors kept open. Elsewhere they fall back to psutil. A counter the platform lacks is
  simply absent.

Per-test memory with tracemalloc (``memory_tracking`` or a session's ``profile_memory``):
tracemalloc is shared with the profiler and the user through :mod:`..memtrace` (one owner count
for the process: tracing runs while a memory session is open and is stopped by the last one
to end, only if it was started by us; each session's peak survives the resets made for
others). Unreachable cycles left by earlier code could be freed by an automatic collection
during a session and be subtracted from its figures, which the regression gates compare
exactly: :mod:`..memtrace` freezes the objects of earlier code while a memory session is open
(``gc.freeze()``, O(1)), where a full ``gc.collect()`` before each session walked the heap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports
from ..model import MIB
from ..stats import quantile
from .core import (
    MAX_BREACHES,
    MAX_RUN_SAMPLES,
    MAX_SESSION_BREACHES,
    MAX_SESSION_SAMPLES,
    USS_EVERY_SECONDS,
    MetricsCollector,
)
from .readings import SAMPLE_FIELDS, Reading

if TYPE_CHECKING:
    from .records import MetricAggregate, MetricPoint, Threshold, ThresholdBreach

__all__ = [
    "MAX_BREACHES",
    "MAX_RUN_SAMPLES",
    "MAX_SESSION_BREACHES",
    "MAX_SESSION_SAMPLES",
    "MIB",
    "SAMPLE_FIELDS",
    "USS_EVERY_SECONDS",
    "MetricAggregate",
    "MetricPoint",
    "MetricsCollector",
    "Reading",
    "Threshold",
    "ThresholdBreach",
    "quantile",
]
#: The records and thresholds, imported on first use (a run without custom metrics has none).
_RECORDS = ("MetricAggregate", "MetricPoint", "Threshold", "ThresholdBreach")
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(_RECORDS, "records"))
