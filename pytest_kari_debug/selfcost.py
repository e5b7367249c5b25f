"""CPU time of the package's own background threads, kept out of a test's CPU figure.

The process's CPU clock counts every thread: the resource sampler's readings would land in
the CPU time of whichever test was running. Each of the package's threads calls
:func:`own_thread` for as long as it runs; :func:`cpu_seconds` is their CPU time so far
(read through each thread's CPU clock, ``pthread_getcpuclockid``, where the platform has it).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

_LOCK = threading.Lock()
_clocks: dict[int, int] = {}
_retired = 0.0


@contextlib.contextmanager
def own_thread() -> Iterator[None]:
    """Count the calling thread's CPU time as the package's own while the block runs."""
    global _retired
    ident = threading.get_ident()
    clock: int | None = None
    getter = getattr(time, "pthread_getcpuclockid", None)
    if getter is not None:
        with contextlib.suppress(OSError):
            clock = getter(ident)
    if clock is not None:
        with _LOCK:
            _clocks[ident] = clock
    try:
        yield
    finally:
        if clock is not None:
            with _LOCK:
                _clocks.pop(ident, None)
                _retired += time.thread_time()


def cpu_seconds() -> float:
    """CPU seconds used so far by the threads inside :func:`own_thread` (ended ones too)."""
    with _LOCK:  # read on every phase of every test: no context manager per clock
        total = _retired
        for clock in _clocks.values():
            try:
                total += _clock_gettime(clock)
            except OSError:  # the thread ended meanwhile
                continue
        return total


_clock_gettime = time.clock_gettime
