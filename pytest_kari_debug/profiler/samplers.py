"""Stack samplers (pyinstrument, a sampling thread) and shared cProfile statistics."""

from __future__ import annotations

import cProfile
import sys
import threading
import time
import types
from typing import Any

from ..exceptions import SessionError
from .frames import _ours, frame_owner
from .limits import CPROFILE_ROWS, PY312


# Samplers --------------------------------------------------------------------------------
def _stack_of(frame: types.FrameType | None, thread: threading.Thread | None) -> list[str]:
    from pyinstrument.low_level.stat_profile import get_frame_info

    stack = []
    while frame is not None:
        stack.append(get_frame_info(frame))
        frame = frame.f_back
    if thread is not None:
        stack.append(f"{thread.name}\x00<thread>\x00{thread.ident}")
    stack.reverse()
    return stack


class _Sampler:
    """A statistical sampler of one thread, shared by every session on that thread."""

    kind = "none"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.users: set[str] = set()
        self.start_call_stack: list[str] = []
        self.cost_s = 0.0  # measured cost (thread sampler) or 0 (estimated later)

    @property
    def records(self) -> list[tuple[list[str], float]]:
        raise NotImplementedError

    def start(self, caller: types.FrameType | None) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class _PyinstrumentSampler(_Sampler):
    kind = "pyinstrument"

    def __init__(self, interval: float, async_mode: str) -> None:
        super().__init__(interval)
        from pyinstrument import Profiler

        self.async_mode = async_mode
        self.profiler = Profiler(interval=interval, async_mode=async_mode)  # type: ignore[arg-type]

    @property
    def records(self) -> list[tuple[list[str], float]]:
        # pyinstrument keeps the samples of a running profile here; sessions that share the
        # sampler slice this list by the index it had at their start.
        active = self.profiler._active_session
        return active.frame_records if active is not None else []

    def start(self, caller: types.FrameType | None) -> None:
        try:
            self.profiler.start(caller_frame=caller, target_description="kari-debug profile")
        except RuntimeError as exc:
            msg = (
                "another pyinstrument profiler is already running in this thread or async"
                f" context ({exc}); stop it, or start it with async_mode='disabled'"
            )
            raise SessionError(msg) from None
        active = self.profiler._active_session
        self.start_call_stack = list(active.start_call_stack) if active is not None else []

    def stop(self) -> None:
        if self.profiler.is_running:
            self.profiler.stop()


class _ThreadSampler(_Sampler):
    """Samples a thread from a daemon thread through ``sys._current_frames()``.

    Used where pyinstrument's profile hook is taken (cProfile on Python < 3.12, or another
    tool's ``sys.setprofile``). It cannot see inside awaits; its own cost is measured.
    """

    kind = "thread"

    def __init__(self, interval: float) -> None:
        super().__init__(interval)
        self._records: list[tuple[list[str], float]] = []
        self._target = threading.current_thread()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def records(self) -> list[tuple[list[str], float]]:
        return self._records

    def start(self, caller: types.FrameType | None) -> None:
        self.start_call_stack = _stack_of(caller, self._target)
        self._thread = threading.Thread(
            target=self._run, name=f"kari-debug-sampler-{self._target.ident}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        last = time.perf_counter()
        ident = self._target.ident
        while not self._stop.wait(self.interval):
            began = time.perf_counter()
            frame = sys._current_frames().get(ident)  # type: ignore[arg-type]
            if frame is None:
                return
            stack = _stack_of(frame, self._target)
            del frame
            now = time.perf_counter()
            self._records.append((stack, now - last))
            last = now
            self.cost_s += time.perf_counter() - began

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


_SAMPLERS: dict[int, _Sampler] = {}
_SAMPLERS_LOCK = threading.Lock()


class _CProfileShare:
    """One cProfile.Profile per thread (per process from 3.12), shared by sessions; a session's
    statistics are the difference between snapshots at its start and stop."""

    def __init__(self) -> None:
        self.profile = cProfile.Profile()
        self.users: set[str] = set()

    def snapshot(self) -> dict[Any, tuple[Any, ...]]:
        self.profile.disable()
        try:
            self.profile.create_stats()
            return dict(self.profile.stats)
        finally:
            if self.users:
                self.profile.enable()


_CPROFILES: dict[int, _CProfileShare] = {}


def _cprofile_key() -> int:
    return 0 if PY312 else threading.get_ident()


def _cprofile_rows(
    before: dict[Any, tuple[Any, ...]],
    after: dict[Any, tuple[Any, ...]],
    *,
    framework_frames: bool = False,
) -> list[dict[str, Any]]:
    rows = []
    for key, (cc, nc, tt, ct, _callers) in after.items():
        old = before.get(key)
        if old is not None:
            cc, nc, tt, ct = cc - old[0], nc - old[1], tt - old[2], ct - old[3]
        if nc <= 0:
            continue
        file, line, func = key
        if _ours(file) or func in ("<method 'disable' of '_lsprof.Profiler' objects>",):
            continue
        owner = frame_owner(file)
        if owner == "package" or (owner == "framework" and not framework_frames):
            continue
        rows.append(
            {
                "function": _func_std_string(key),
                "name": func,
                "file": file,
                "line": line,
                "calls": nc,
                "primitive_calls": cc,
                "total_time": round(tt, 6),
                "cumulative_time": round(ct, 6),
                "per_call_ms": round(1000.0 * tt / nc, 6),
            }
        )
    rows.sort(key=lambda r: (-r["total_time"], -r["calls"]))
    return rows[:CPROFILE_ROWS]


def _func_std_string(key: tuple[str, int, str]) -> str:
    """pstats' name of a cProfile entry (pstats is imported only when rows are made)."""
    import pstats

    return str(pstats.func_std_string(key))  # type: ignore[attr-defined]


_COST_PER_FRAME: list[float] = []


def _cost_per_frame() -> float:
    """Measured seconds pyinstrument spends per stack frame of one sample (calibrated once)."""
    if not _COST_PER_FRAME:
        from pyinstrument.stack_sampler import build_call_stack

        frame = sys._getframe()
        depth = len(build_call_stack(frame, "line", None))
        rounds = 50
        began = time.perf_counter()
        for _ in range(rounds):
            build_call_stack(frame, "line", None)
        _COST_PER_FRAME.append((time.perf_counter() - began) / (rounds * max(1, depth)))
    return _COST_PER_FRAME[0]


def _final_stats(share: _CProfileShare) -> dict[Any, tuple[Any, ...]]:
    share.users.clear()
    share.profile.disable()
    share.profile.create_stats()
    return dict(share.profile.stats)
