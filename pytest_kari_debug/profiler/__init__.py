"""``PerformanceProfiler``: timed functions and blocks, sampling sessions, memory and bottlenecks.

What it measures, and with what:

* ``profile_function`` / ``profile_block``: wall time (``perf_counter``) and CPU time of the
  calling thread (``thread_time``) per call, aggregated per name (calls, total, mean, min, max,
  p95 from a bounded reservoir, failures).
* ``start_session`` / ``stop_session``: a statistical call tree from pyinstrument's sampler,
  cProfile statistics on request, and tracemalloc figures on request.

Rules that matter when several sessions overlap (documented in the README):

* **One sampler per thread, shared.** A session started while another one samples the same
  thread does not start a second sampler (pyinstrument refuses that, and two samplers would
  each distort the other): it shares the running one and keeps the samples taken between its
  own start and stop (``shared=True`` in its result; the interval is the running sampler's).
* **cProfile and pyinstrument on Python < 3.12** both need the thread's single profile hook
  (``sys.setprofile``). When a session asks for both, or cProfile already runs on the thread,
  the call tree comes from a sampling *thread* reading ``sys._current_frames()`` instead
  (``sampler="thread"``), so both run over the same code. cProfile cannot start on a thread
  whose pyinstrument sampler runs: the session says so in ``notes``. From 3.12 cProfile uses
  ``sys.monitoring`` and both coexist (cProfile is then process-wide and shared per process).
* **tracemalloc is shared** with the metrics component (``--kari-memory``) and with the user
  through :mod:`..memtrace`: one owner count for the whole package, so tracing is started
  when nothing traces yet and stopped when the last memory session of either component ends,
  only if it was started by this package. Each session's peak is a :class:`..memtrace.Meter`,
  kept across the ``reset_peak()`` calls made for other sessions. ``peak_exact`` is false
  only when the 5 ms poller saw more than tracemalloc's peak (a ``reset_peak()`` by other
  code); ``peak_bytes`` is then the poller's highest value.
* **Overhead limit** (``profiling_overhead_limit``, percent): the profiler measures its own
  cost (time inside the function/block wrappers; estimated stack-capture cost of each sample;
  tracemalloc snapshots) and, over the limit, widens the sampling interval of later sessions
  and times only every n-th call of profiled functions (calls are still all counted). Every
  adjustment is listed in ``stats()["overhead"]``, hence in ``get_debug_summary()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .bottlenecks import bottlenecks_from_profiles, rank_bottlenecks
    from .core import PerformanceProfiler
    from .session import ProfileSession
    from .timing import FunctionStats, Timing
    from .trees import compact_tree, function_label

#: Public name -> the module that defines it, imported on first use: the profiler that a run
#: creates switched off needs no sampler, cProfile or tracemalloc.
_PUBLIC = {
    "FunctionStats": "timing",
    "PerformanceProfiler": "core",
    "ProfileSession": "session",
    "Timing": "timing",
    "bottlenecks_from_profiles": "bottlenecks",
    "compact_tree": "trees",
    "function_label": "trees",
    "rank_bottlenecks": "bottlenecks",
}

__all__ = [
    "FunctionStats",
    "PerformanceProfiler",
    "ProfileSession",
    "Timing",
    "bottlenecks_from_profiles",
    "compact_tree",
    "function_label",
    "rank_bottlenecks",
]
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
