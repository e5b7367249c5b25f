"""CPU time of the package's own background threads, kept out of a test's CPU figure.

The process's CPU clock counts every thread: the resource sampler's readings would land in
the CPU time of whichever test was running. Each of the package's threads calls
:func:`own_thread` for as long as it runs; :func:`cpu_seconds` is their CPU time so far
(read through each thread's CPU clock, ``pthread_getcpuclockid``, where the platform has it).
A thread that waits inside :func:`idle` has its CPU time noted as it starts waiting: reading it
then costs no clock call (:func:`cpu_seconds` is read at every phase of every test). Each change
(a thread starts, ends, waits, works) makes a new snapshot of what is fixed and which clocks to
read, so a reading takes no lock.

A one-off preparation that runs on the test's own thread the first time something is used (a
lazy import, a regex table compiled) is the package's work too: inside :func:`first_use`, its
CPU time joins :func:`cpu_seconds` and its wall time :func:`own_wall_seconds`, and both leave the
running test's figures.
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
#: (CPU seconds of the ended and the waiting threads, the clocks of the working ones): made
#: under _LOCK at each change, replaced whole, read by cpu_seconds without the lock.
_snapshot: tuple[float, tuple[int, ...]] = (0.0, ())
#: Wall seconds of the preparations done inside first_use on the main thread (another
#: thread's runs beside the test's, which it does not hold up).
_first_use_wall = 0.0
_preparing = threading.local()


def _new_snapshot() -> None:
    """Note what the threads' CPU is made of now (with _LOCK held)."""
    global _snapshot
    fixed = _retired
    working = []
    for own in _threads.values():
        if own.idle_cpu is None:
            working.append(own.clock)
        else:
            fixed += own.idle_cpu
    _snapshot = (fixed, tuple(working))


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
            _new_snapshot()
    try:
        yield
    finally:
        if clock is not None:
            with _LOCK:
                _threads.pop(ident, None)
                _retired += time.thread_time()
                _new_snapshot()


@contextlib.contextmanager
def first_use() -> Iterator[None]:
    """Count the block (a first use's preparation on the calling thread) as the package's
    own work: its CPU time and wall time are kept out of the running test's figures. Nested
    blocks count once."""
    global _retired, _first_use_wall
    if getattr(_preparing, "active", False) or threading.get_ident() in _threads:
        yield  # counted by the outer block, or by the package's own thread's clock
        return
    _preparing.active = True
    wall = time.perf_counter()
    cpu = time.thread_time()
    try:
        yield
    finally:
        cpu = time.thread_time() - cpu
        wall = time.perf_counter() - wall
        _preparing.active = False
        with _LOCK:
            _retired += cpu  # the process's CPU, whichever thread
            if threading.current_thread() is threading.main_thread():
                _first_use_wall += wall  # a test's phases are timed on the main thread
            _new_snapshot()


def own_wall_seconds() -> float:
    """Wall seconds spent so far inside :func:`first_use` on the main thread."""
    return _first_use_wall


class idle:
    """Around a wait of one of the package's threads (inside :func:`own_thread`): its CPU
    time is noted once as it starts waiting and read from there until it works again."""

    __slots__ = ("_own",)

    def __enter__(self) -> None:
        own = self._own = _threads.get(threading.get_ident())
        if own is not None:
            with _LOCK:
                own.idle_cpu = time.thread_time()
                _new_snapshot()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        own = self._own
        if own is not None:
            with _LOCK:
                own.idle_cpu = None
                _new_snapshot()


def cpu_seconds() -> float:
    """CPU seconds used so far by the threads inside :func:`own_thread` (ended ones too) and
    by the blocks inside :func:`first_use`."""
    total, working = _snapshot  # read on every phase of every test: no lock
    for clock in working:
        try:
            total += _clock_gettime(clock)
        except OSError:  # the thread ended since the snapshot: read what it left
            return _cpu_seconds_now()
    return total


def _cpu_seconds_now() -> float:
    """:func:`cpu_seconds` from the threads themselves, under the lock."""
    with _LOCK:
        total = _retired
        for own in _threads.values():
            cpu = own.idle_cpu
            if cpu is None:
                try:
                    cpu = _clock_gettime(own.clock)
                except OSError:  # ended, not yet retired: its CPU is counted as it is
                    continue
            total += cpu
        return total


_clock_gettime = time.clock_gettime
