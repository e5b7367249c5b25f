"""tracemalloc shared by the components: one owner count for the process, peaks per meter.

tracemalloc is process-wide, and the metrics collector (per-test memory figures), the profiler
(memory sessions) and the user may all want it at once. Both components go through this
module, so that:

* tracemalloc is started by the first :func:`acquire` when nothing traces yet, and stopped
  by the :func:`release` that leaves no user, only if it was started here. Tracing that the
  user started is never stopped. (Each component keeping its own "I started it" flag let one
  stop tracing under the other, or leave it on for the rest of the process.)
* ``tracemalloc.reset_peak()`` is only called through :func:`open_meter`, which first folds
  the traced peak into every open :class:`Meter`: each open meter keeps the highest traced
  size since it opened, whichever component opened it. A ``reset_peak()`` made by other code
  between two readings loses the part of a meter's peak before it; tracemalloc's API cannot
  prevent that.
* While a meter is open the objects that existed before it are frozen (``gc.freeze()``): a
  collection during a test cannot free earlier code's garbage and subtract it from the test's
  figures. Freezing is O(1), where the full ``gc.collect()`` it replaces walked the whole heap
  before every test (tens of milliseconds each). The last meter to close unfreezes them.
  Nothing is frozen when other code already froze objects (``gc.get_freeze_count()``).
  Then one full collection, cheap with everything frozen, empties the free lists.
"""

from __future__ import annotations

import gc
import threading

try:  # the C module that tracemalloc re-exports: asking needs no tracemalloc (nor pickle) import
    from _tracemalloc import is_tracing as is_tracing
except ImportError:  # an interpreter without it
    from tracemalloc import is_tracing as is_tracing

_LOCK = threading.RLock()
_users = 0
_started_here = False
_open: dict[int, Meter] = {}
_froze = False


class Meter:
    """Traced size at its opening and the highest traced size seen since then."""

    __slots__ = ("peak", "start_bytes")

    def __init__(self, start_bytes: int) -> None:
        self.start_bytes = start_bytes
        self.peak = start_bytes


def acquire() -> bool:
    """Count one user of tracemalloc; start it if nothing traces. True if started now."""
    global _users, _started_here
    with _LOCK:
        _users += 1
        if is_tracing():
            return False
        import tracemalloc

        tracemalloc.start()
        _started_here = True
        return True


def release() -> None:
    """Uncount one user; stop tracemalloc if it was started here and no user is left."""
    global _users, _started_here
    with _LOCK:
        _users = max(0, _users - 1)
        if _users == 0 and _started_here:
            _started_here = False
            if is_tracing():
                import tracemalloc

                tracemalloc.stop()


def users() -> int:
    """How many acquisitions are not released yet."""
    return _users


def started_here() -> bool:
    """Whether the running tracemalloc was started by this module (and will be stopped)."""
    return _started_here and is_tracing()


def _fold() -> int:
    import tracemalloc

    current, peak = tracemalloc.get_traced_memory()
    for meter in _open.values():
        if peak > meter.peak:
            meter.peak = peak
    return current


def open_meter() -> Meter:
    """A meter from now on; resets tracemalloc's peak (after folding it into the open ones).

    Call between :func:`acquire` and :func:`release`.
    """
    global _froze
    with _LOCK:
        if not _open and not _froze and gc.get_freeze_count() == 0:
            gc.freeze()
            _froze = True
            # With everything frozen a full collection walks nothing; it empties the
            # interpreter's free lists, which a collection during the test would otherwise
            # empty and subtract from the test's allocated blocks.
            gc.collect()
        import tracemalloc

        _fold()
        tracemalloc.reset_peak()
        current, _ = tracemalloc.get_traced_memory()
        meter = Meter(current)
        _open[id(meter)] = meter
        return meter


def read(meter: Meter) -> tuple[int, int] | None:
    """``(current, peak)`` traced bytes for *meter*; None when tracemalloc no longer traces."""
    with _LOCK:
        if not is_tracing():
            return None
        current = _fold()
        return current, meter.peak


def close_meter(meter: Meter) -> tuple[int, int] | None:
    """Final :func:`read` of *meter*, which then stops following the peak."""
    global _froze
    with _LOCK:
        figures = read(meter)
        _open.pop(id(meter), None)
        if not _open and _froze:
            _froze = False
            gc.unfreeze()
        return figures


def open_meters() -> int:
    """How many meters are open."""
    return len(_open)
