"""tracemalloc watching of a profiling session: peaks, top sites, snapshot diffs."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import tracemalloc
from typing import Any

from .. import memtrace, selfcost
from .frames import _PACKAGE_DIR, _pyinstrument_dir, frame_owner
from .limits import (
    MAX_PEAK_SNAPSHOT_TRACE_BYTES,
    MAX_SNAPSHOTS_PER_SESSION,
    MEMORY_POLL_S,
    MIN_SNAPSHOT_BYTES,
)


# Memory ----------------------------------------------------------------------------------
def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot()


_EXCLUDED_FILES: dict[str, bool] = {}


def _excluded(filename: str, framework_frames: bool = False) -> bool:
    """Allocation sites that are the measuring machinery or the runner, not the measured code."""
    if not framework_frames and frame_owner(filename) == "framework":
        return True
    known = _EXCLUDED_FILES.get(filename)
    if known is None:
        path = os.path.abspath(filename) if filename.startswith(os.sep) else filename
        known = (
            filename in ("<unknown>", tracemalloc.__file__)
            or filename.startswith("<frozen importlib")
            or path.startswith(_PACKAGE_DIR + os.sep)
            or bool(_pyinstrument_dir() and path.startswith(_pyinstrument_dir() + os.sep))
        )
        if len(_EXCLUDED_FILES) < 10000:
            _EXCLUDED_FILES[filename] = known
    return known


_BASELINE: list[tracemalloc.Snapshot] = []  # the newest end-of-session snapshot, if any


class _MemoryWatch:
    """tracemalloc figures of one session: net, peak, top allocation sites, optional diff.

    A daemon poller reads ``get_traced_memory()`` every ``MEMORY_POLL_S`` and takes a snapshot
    when the traced size doubled since the last one: allocations freed before the session
    stops (a test's locals) still show up in the top sites, taken at that peak.

    Snapshots copy every trace, so their cost grows with the traced heap: when tracing ran
    before the session, the top sites are diffed against the newest end-of-session snapshot
    (between sessions only pytest and this package allocate, and their frames are left out)
    rather than a snapshot of the session's start, and a session whose traced size never grew
    by ``MIN_SNAPSHOT_BYTES`` takes no snapshot at all. A start snapshot is taken only for
    *diff*, which asks for one, and when there is no earlier snapshot yet. The poller snapshots
    a session's peak once it grew by ``MIN_SNAPSHOT_BYTES``, so the sites name what a test
    allocated even when it freed it before its end.
    """

    def __init__(self, top: int, diff: bool, framework_frames: bool = False) -> None:
        self.top = top
        self.diff = diff
        self.framework_frames = framework_frames
        self.started_tracing = memtrace.acquire()
        self.meter = memtrace.open_meter()
        self.start_current = self.meter.start_bytes
        self.max_seen = self.start_current
        self.cost_s = 0.0
        self.snapshots = 0
        began = time.perf_counter()
        needs_start = not self.started_tracing and (diff or not _BASELINE)
        self.start_snapshot = _snapshot() if needs_start else None
        self.cost_s += time.perf_counter() - began
        self.best_increase = 0
        self.best_snapshot: tracemalloc.Snapshot | None = None
        self._lock = threading.Lock()
        self.done = False
        self.notes: list[str] = []
        self.skipped_peak = False
        _MEMORY_POLLER.add(self)

    def poll(self) -> None:
        """Note the traced size; snapshot a new high (called by the poller thread)."""
        if self.done or not tracemalloc.is_tracing():
            return
        current, _ = tracemalloc.get_traced_memory()
        self.max_seen = max(self.max_seen, current)
        increase = current - self.start_current
        if (
            increase >= MIN_SNAPSHOT_BYTES
            and increase > self.best_increase * 2
            and self.snapshots < MAX_SNAPSHOTS_PER_SESSION
        ):
            trace_bytes = tracemalloc.get_tracemalloc_memory()
            if trace_bytes > MAX_PEAK_SNAPSHOT_TRACE_BYTES:
                self._skip_peak_snapshot(trace_bytes)
                return
            began = time.perf_counter()
            snapshot = _snapshot()
            with self._lock:
                if not self.done:
                    self.best_increase, self.best_snapshot = increase, snapshot
                    self.snapshots += 1
            self.cost_s += time.perf_counter() - began

    def _skip_peak_snapshot(self, trace_bytes: int) -> None:
        with self._lock:
            if self.done or self.skipped_peak:
                return
            self.skipped_peak = True
            self.notes.append(
                f"no peak snapshot: tracemalloc held {trace_bytes / 1048576:.0f} MiB of traces,"
                f" over the {MAX_PEAK_SNAPSHOT_TRACE_BYTES // 1048576} MiB a peak snapshot may"
                " cost; top_allocations show what was left at the end"
            )

    def finish(self) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]] | None]:
        """Stop watching; return ``(memory, top_allocations, snapshot_diff)``."""
        _MEMORY_POLLER.discard(self)
        try:
            if not tracemalloc.is_tracing():
                memory = {
                    "error": "tracemalloc was stopped by someone else during the session",
                    "tracemalloc_started_by_session": self.started_tracing,
                }
                return memory, [], None
            began = time.perf_counter()
            figures = memtrace.close_meter(self.meter)
            current, peak = figures or tracemalloc.get_traced_memory()
            with self._lock:
                self.done = True
                best, best_increase = self.best_snapshot, self.best_increase
            grew = max(current, peak, self.max_seen) - self.start_current >= MIN_SNAPSHOT_BYTES
            end_snapshot: tracemalloc.Snapshot | None = None
            if grew or self.diff or self.started_tracing:
                end_snapshot = _snapshot()
            # The meter kept the peak across every reset made by this package; only a
            # reset_peak() by other code could hide part of it (then the poller's highest).
            self.max_seen = max(self.max_seen, current)
            peak_bytes = max(peak, self.max_seen)
            exact = peak >= self.max_seen
            end_increase = current - self.start_current
            baseline = self.start_snapshot
            if baseline is None and not self.started_tracing and _BASELINE:
                baseline = _BASELINE[0]
            top: list[dict[str, Any]] = []
            chosen: tracemalloc.Snapshot | None = end_snapshot
            at = "end"
            if best is not None and best_increase > end_increase:
                chosen, at = best, "peak"
            if chosen is not None:
                top = _top_sites(chosen, baseline, self.top, self.framework_frames)
            elif self.top:
                self.notes.append(
                    f"the traced size grew by less than {MIN_SNAPSHOT_BYTES // 1024} KiB:"
                    " no snapshot, so no allocation sites"
                )
            for row in top:
                row["at"] = at
            diff = None
            if self.diff and end_snapshot is not None:
                diff = _diff_sites(
                    end_snapshot, self.start_snapshot, self.top, self.framework_frames
                )
            if end_snapshot is not None:
                _BASELINE[:] = [end_snapshot]
            self.cost_s += time.perf_counter() - began
            grew_past_poll = peak_bytes - self.start_current >= MIN_SNAPSHOT_BYTES * 4
            if best is None and not self.skipped_peak and grew_past_poll:
                self.notes.append(
                    f"the peak (+{(peak_bytes - self.start_current) / 1048576:.1f} MiB) lasted"
                    f" less than the {MEMORY_POLL_S * 1000:g} ms poll: its allocation sites are"
                    " not in top_allocations (which show what was left at the end)"
                )
            memory = {
                "start_bytes": self.start_current,
                "end_bytes": current,
                "net_allocated_bytes": current - self.start_current,
                "peak_bytes": peak_bytes,
                "peak_increase_bytes": max(0, peak_bytes - self.start_current),
                "peak_exact": exact,
                "tracemalloc_started_by_session": self.started_tracing,
                "snapshots": (
                    self.snapshots + (end_snapshot is not None) + (self.start_snapshot is not None)
                ),
                "snapshot_cost_ms": round(self.cost_s * 1000.0, 3),
                "notes": self.notes,
            }
            return memory, top, diff
        finally:
            self.done = True
            memtrace.close_meter(self.meter)
            memtrace.release()


def _site(trace_frame: tracemalloc.Frame) -> dict[str, Any]:
    return {
        "file": trace_frame.filename,
        "line": trace_frame.lineno,
        "site": f"{trace_frame.filename}:{trace_frame.lineno}",
    }


def _top_sites(
    snapshot: tracemalloc.Snapshot,
    baseline: tracemalloc.Snapshot | None,
    top: int,
    framework_frames: bool = False,
) -> list[dict[str, Any]]:
    # Grouping first (in C) and filtering the groups is far cheaper than filter_traces.
    rows: list[dict[str, Any]] = []
    if baseline is None:
        for stat in snapshot.statistics("lineno"):
            if _excluded(stat.traceback[0].filename, framework_frames):
                continue
            rows.append({**_site(stat.traceback[0]), "size_bytes": stat.size, "count": stat.count})
            if len(rows) >= top:
                break
        return rows
    for diff in snapshot.compare_to(baseline, "lineno"):
        if diff.size_diff <= 0 or _excluded(diff.traceback[0].filename, framework_frames):
            continue
        row = {**_site(diff.traceback[0]), "size_bytes": diff.size_diff, "count": diff.count_diff}
        rows.append(row)
    rows.sort(key=lambda r: -r["size_bytes"])
    return rows[:top]


def _diff_sites(
    end: tracemalloc.Snapshot,
    start: tracemalloc.Snapshot | None,
    top: int,
    framework_frames: bool = False,
) -> list[dict[str, Any]]:
    baseline = start
    if baseline is None:  # tracing began with the session: nothing was traced before it
        baseline = tracemalloc.Snapshot((), end.traceback_limit)
    return [
        {
            **_site(diff.traceback[0]),
            "size_diff_bytes": diff.size_diff,
            "count_diff": diff.count_diff,
            "size_bytes": diff.size,
            "count": diff.count,
        }
        for diff in end.compare_to(baseline, "lineno")
        if not _excluded(diff.traceback[0].filename, framework_frames)
    ][:top]


class _MemoryPoller:
    """One daemon thread polling every running memory session; exits when none is left."""

    def __init__(self) -> None:
        self._watches: set[_MemoryWatch] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, watch: _MemoryWatch) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="kari-debug-memory-poller", daemon=True
                )
                self._thread.start()

    def discard(self, watch: _MemoryWatch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        with selfcost.own_thread():  # its snapshots are not the running test's CPU time
            while True:
                with selfcost.idle():
                    time.sleep(MEMORY_POLL_S)
                with self._lock:
                    watches = list(self._watches)
                    if not watches:
                        self._thread = None
                        return
                for watch in watches:
                    with contextlib.suppress(Exception):  # a failed poll only loses a snapshot
                        watch.poll()


_MEMORY_POLLER = _MemoryPoller()
