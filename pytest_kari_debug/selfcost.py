"""CPU time of the package's own background threads, kept out of a test's CPU figure.

The process's CPU clock counts every thread: the resource sampler's readings would land in
the CPU time of whichever test was running. Each of the package's threads calls
:func:`own_thread` for as long as it runs; :func:`cpu_seconds` is their CPU time so far
(read through each thread's CPU clock, ``pthread_getcpuclockid``, where the platform has it).
A thread that waits inside :func:`idle` has its CPU time noted as it starts waiting: reading it
then costs no clock call (:func:`cpu_seconds` is read at every phase of every test).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from types import TracebackType


class _OwnThread:
    """One of the package's threads: its CPU clock, and its CPU seconds while it is idle."""

    __slots__ = ("clock", "idle_cpu")

    def __init__(self, clock: int) -> None:
        self.clock = clock
        #: The thread's CPU seconds when it started waiting; None while it works.
        self.idle_cpu: float | None = None


_LOCK = threading.Lock()
_threads: dict[int, _OwnThread] = {}
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
            _threads[ident] = _OwnThread(clock)
    try:
        yield
    finally:
        if clock is not None:
            with _LOCK:
                _threads.pop(ident, None)
                _retired += time.thread_time()


class idle:
    """Around a wait of one of the package's threads (inside :func:`own_thread`): its CPU
    time is noted once as it starts waiting and read from there until it works again."""

    __slots__ = ("_own",)

    def __enter__(self) -> None:
        own = self._own = _threads.get(threading.get_ident())
        if own is not None:
            own.idle_cpu = time.thread_time()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._own is not None:
            self._own.idle_cpu = None


def cpu_seconds() -> float:
    """CPU seconds used so far by the threads inside :func:`own_thread` (ended ones too)."""
    with _LOCK:  # read on every phase of every test: no context manager per clock
        total = _retired
        for own in _threads.values():
            cpu = own.idle_cpu
            if cpu is None:
                try:
                    cpu = _clock_gettime(own.clock)
                except OSError:  # the thread ended meanwhile
                    continue
            total += cpu
        return total


_clock_gettime = time.clock_gettime
