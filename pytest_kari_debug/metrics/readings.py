"""Cheap readings of the process at session boundaries (getrusage, /proc)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from ..model import MIB

if TYPE_CHECKING:
    import psutil

try:
    import resource as _resource
except ImportError:  # Windows
    _resource = None  # type: ignore[assignment]
_getrusage = None if _resource is None else _resource.getrusage
_RUSAGE_SELF = 0 if _resource is None else _resource.RUSAGE_SELF


#: Fields of a sampler point (besides ``ts`` and ``custom``) and their units.
SAMPLE_FIELDS: dict[str, str] = {
    "cpu_percent": "percent",
    "cpu_user_s": "seconds",
    "cpu_system_s": "seconds",
    "rss_bytes": "bytes",
    "memory_mb": "MiB",
    "uss_bytes": "bytes",
    "vms_bytes": "bytes",
    "threads": "count",
    "open_fds": "count",
    "ctx_switches": "count",
    "io_read_bytes": "bytes",
    "io_write_bytes": "bytes",
    "net_bytes_sent": "bytes",
    "net_bytes_recv": "bytes",
}


# Cheap readings at session boundaries ----------------------------------------------------
#: (cpu_user_s, cpu_system_s, ctx_voluntary, ctx_involuntary, lifetime_peak_rss, rss,
#:  io_read_bytes, io_write_bytes); None where the platform has no such counter.
Reading = tuple[
    float, float, int | None, int | None, int | None, int | None, int | None, int | None
]


_TRACKS_FORKS = hasattr(os, "register_at_fork")


class _Probe:
    """Microsecond readings of this process: CPU, context switches, RSS, peak RSS, disk io."""

    def __init__(self) -> None:
        self._pid = -1
        self._statm: int | None = None
        self._io: int | None = None
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._process: psutil.Process | None = None
        self._lock = threading.Lock()
        # ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
        self._maxrss_factor = 1 if sys.platform == "darwin" else 1024
        self._linux = sys.platform.startswith("linux")
        #: Non-empty once opened in this process; emptied in a forked child, which opens its
        #: own (no getpid call per reading). The fork hook is the set's own ``clear``: the
        #: interpreter holds its fork hooks until its very last collection, and a Python
        #: function there would hold its module's globals, and through them the whole run,
        #: past the module teardown at exit (which then walks all of it twice more).
        self._opened: set[bool] = set()
        if _TRACKS_FORKS:
            os.register_at_fork(after_in_child=self._opened.clear)

    def _open(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            for fd in (self._statm, self._io):  # inherited over fork: they read the parent
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._statm = self._io = None
            if sys.platform.startswith("linux"):
                self._statm = _open_proc("/proc/self/statm")
                self._io = _open_proc("/proc/self/io")
            self._process = None  # psutil's, made when /proc cannot answer (see _fallback)
            self._pid = os.getpid()
            if _TRACKS_FORKS:
                self._opened.add(True)
            if self._statm is None:  # psutil reads the memory: imported now, not in a reading
                with contextlib.suppress(Exception):
                    self._fallback()

    def _fallback(self) -> psutil.Process:
        """psutil's view of this process, for what /proc cannot read here (imported then)."""
        process = self._process
        if process is None:
            import psutil

            process = self._process = psutil.Process()
        return process

    def read(self) -> Reading:
        """Return the current readings; a counter the platform lacks is ``None``."""
        if not self._opened and self._pid != os.getpid():
            self._open()
        ctx_voluntary = ctx_involuntary = maxrss = rss = io_read = io_write = None
        if _getrusage is not None:
            # One unpacking of the struct_rusage (its fields in order), not eight lookups.
            (user, system, maxrss, _, _, _, _, _, _, inblock, oublock, _, _, _,
             ctx_voluntary, ctx_involuntary) = _getrusage(_RUSAGE_SELF)  # fmt: skip
            maxrss *= self._maxrss_factor
            if self._linux:
                # Linux derives ru_inblock/ru_oublock from /proc/self/io's read_bytes and
                # write_bytes (>> 9): the same counters, without a second read.
                io_read, io_write = inblock * 512, oublock * 512
        else:
            times = os.times()
            user, system = times.user, times.system
        if self._statm is not None:
            try:
                rss = int(os.pread(self._statm, 128, 0).split()[1]) * self._page
            except (OSError, ValueError, IndexError):
                self._statm = None
        if rss is None:
            import psutil

            with contextlib.suppress(psutil.Error, OSError):
                rss = self._fallback().memory_info().rss
        if io_read is None and self._io is not None:
            try:
                # "rchar: N wchar: N syscr: N syscw: N read_bytes: N write_bytes: N ..."
                fields = os.pread(self._io, 512, 0).split()
                if fields[8] != b"read_bytes:" or fields[10] != b"write_bytes:":
                    raise ValueError(fields)
                io_read, io_write = int(fields[9]), int(fields[11])
            except (OSError, ValueError, IndexError):
                self._io = None
        elif io_read is None and hasattr(self._fallback(), "io_counters"):
            import psutil

            try:
                counters = self._fallback().io_counters()
                io_read, io_write = counters.read_bytes, counters.write_bytes
            except (psutil.Error, OSError, NotImplementedError):
                pass
        return (user, system, ctx_voluntary, ctx_involuntary, maxrss, rss, io_read, io_write)


def _open_proc(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        os.pread(fd, 1, 0)  # some containers let open() succeed and refuse the read
        return fd
    except OSError:
        return None


_PROBE = _Probe()


def _resources(start: Reading, now: Reading, peak_rss: float) -> dict[str, Any]:
    """Per-session figures from two readings and the sampler's highest RSS in between."""
    user = now[0] - start[0]
    system = now[1] - start[1]
    rss_start, rss_end = start[5], now[5]
    if rss_start is not None and rss_end is not None:
        peak = peak_rss if peak_rss > rss_start else rss_start
        if rss_end > peak:
            peak = rss_end
        # A lifetime peak that rose during the session was reached during the session.
        if start[4] is not None and now[4] is not None and now[4] > start[4] and now[4] > peak:
            peak = now[4]
        out: dict[str, Any] = {
            "cpu_user_s": round(user, 6),
            "cpu_system_s": round(system, 6),
            "cpu_ms": round((user + system) * 1000.0, 3),
            "rss_start_bytes": rss_start,
            "rss_end_bytes": rss_end,
            "peak_rss_bytes": int(peak),
            "peak_rss_mb": round(peak / MIB, 3),
        }
    else:
        out = {
            "cpu_user_s": round(user, 6),
            "cpu_system_s": round(system, 6),
            "cpu_ms": round((user + system) * 1000.0, 3),
        }
    if start[6] is not None and now[6] is not None:
        out["io_read_bytes"] = now[6] - start[6]
        out["io_write_bytes"] = now[7] - start[7]  # type: ignore[operator]
    if start[2] is not None and now[2] is not None:
        voluntary = now[2] - start[2]
        involuntary = now[3] - start[3]  # type: ignore[operator]
        out["ctx_switches"] = voluntary + involuntary
        out["ctx_switches_voluntary"] = voluntary
        out["ctx_switches_involuntary"] = involuntary
    return out
