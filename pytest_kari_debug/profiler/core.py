"""``PerformanceProfiler``: the component that times, samples and ranks."""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import math
import sys
import threading
import time
import types
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..component import Component
from ..config import is_positive_number
from ..context import CURRENT_SESSION, SessionInfo, register_session_option
from ..exceptions import ConfigurationError, SessionError
from ..lazy import LateImports
from .limits import (
    ASYNC_MODES,
    MAX_ADJUSTMENTS,
    MAX_AGG_FUNCTIONS,
    MAX_AGG_PATHS,
    MAX_INTERVAL_S,
    MAX_KEPT_SESSIONS,
    MAX_TIMING_EVERY,
    OVERHEAD_CHECK_CALLS,
    OVERHEAD_WINDOW_S,
    PY312,
)
from .timing import FunctionStats, Timing, _session_functions, _TimedBlock

if TYPE_CHECKING:
    from .memory import _MemoryWatch
    from .samplers import (
        _CPROFILES,
        _SAMPLERS,
        _SAMPLERS_LOCK,
        _cost_per_frame,
        _cprofile_key,
        _cprofile_rows,
        _CProfileShare,
        _final_stats,
        _PyinstrumentSampler,
        _Sampler,
        _ThreadSampler,
    )
    from .session import ProfileSession, _Running
    from .trees import _build_tree, _cut_at, _hot_functions, _trim, compact_tree, prune_tree

F = TypeVar("F", bound=Callable[..., Any])

#: Session option: the debug session's profile starts only when ``start_debug_profile`` is
#: called (the pytest plugin uses it to profile the call phase, not the fixtures).
register_session_option("profile_deferred", bool)
#: Session option: also keep a tracemalloc snapshot diff between the profile's start and stop.
register_session_option("memory_snapshot_diff", bool)

#: The sessions' machinery, imported at the first profiling session: the samplers (cProfile,
#: pyinstrument), tracemalloc's memory watch and the call trees. Timing functions and blocks
#: needs none of it, and a profiler that is off none at all.
_LATE = LateImports(
    globals(),
    __package__,
    {
        "_MemoryWatch": ".memory:_MemoryWatch",
        "_CPROFILES": ".samplers:_CPROFILES",
        "_SAMPLERS": ".samplers:_SAMPLERS",
        "_SAMPLERS_LOCK": ".samplers:_SAMPLERS_LOCK",
        "_cost_per_frame": ".samplers:_cost_per_frame",
        "_cprofile_key": ".samplers:_cprofile_key",
        "_cprofile_rows": ".samplers:_cprofile_rows",
        "_CProfileShare": ".samplers:_CProfileShare",
        "_final_stats": ".samplers:_final_stats",
        "_PyinstrumentSampler": ".samplers:_PyinstrumentSampler",
        "_Sampler": ".samplers:_Sampler",
        "_ThreadSampler": ".samplers:_ThreadSampler",
        "ProfileSession": ".session:ProfileSession",
        "_Running": ".session:_Running",
        "_build_tree": ".trees:_build_tree",
        "_cut_at": ".trees:_cut_at",
        "_hot_functions": ".trees:_hot_functions",
        "_trim": ".trees:_trim",
        "compact_tree": ".trees:compact_tree",
        "prune_tree": ".trees:prune_tree",
    },
)


# The component ---------------------------------------------------------------------------
class PerformanceProfiler(Component):
    """Times functions and blocks, runs sampling/cProfile/tracemalloc sessions, names
    bottlenecks, and keeps its own overhead under ``profiling_overhead_limit``."""

    kind = "profiling"
    limit_field = "max_metrics"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.configuration
        self.sessions: OrderedDict[str, ProfileSession] = OrderedDict()
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._stats: dict[str, FunctionStats] = {}
        self._ticks = itertools.count()
        #: Time every n-th call of profiled functions and blocks (1: every call).
        self.timing_every = 1
        #: Sampling interval of sessions started from now on (widened over the limit).
        self.sampling_interval = cfg.profile_interval
        self.overhead_limit = cfg.profiling_overhead_limit
        self.min_tree_share = cfg.profile_min_percent / 100.0
        self.adjustments: list[dict[str, Any]] = []
        self._own_window_s = 0.0
        self._window_started = time.perf_counter()
        self._window_calls = 0
        self._own_total_s = 0.0
        self._sampling_cost_s = 0.0
        self._window_cost_s = 0.0
        self._window_duration_s = 0.0
        self._profiled_s = 0.0
        self._agg_functions: dict[str, list[float]] = {}
        self._agg_paths: dict[tuple[str, ...], float] = {}
        self._agg_calls: dict[str, int] = {}
        self._agg_total_s = 0.0
        self._debug: dict[str, tuple[SessionInfo, str | None, ProfileSession | None]] = {}

    # Function and block timing ---------------------------------------------------------
    @overload
    def profile_function(self, func: F, /) -> F: ...

    @overload
    def profile_function(
        self, func: str | None = None, /, *, name: str | None = None
    ) -> Callable[[F], F]: ...

    def profile_function(
        self, func: Any = None, /, *, name: str | None = None
    ) -> Callable[[F], F] | F:
        """Decorate a sync or async function so that every call is timed.

        Usable bare (``@profiler.profile_function``) or with arguments
        (``@profiler.profile_function("name")``, ``@profiler.profile_function(name="x")``).
        The default name is ``module.qualname``.
        """
        if func is None or isinstance(func, str):
            chosen = name if name is not None else func

            def decorate(target: F) -> F:
                return self._wrap(target, chosen)

            return decorate
        wrapped: F = self._wrap(func, name)
        return wrapped

    def _wrap(self, func: F, name: str | None) -> F:
        if not callable(func):
            msg = f"profile_function decorates a function, got {func!r}"
            raise TypeError(msg)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            msg = f"profile_function name must be a non-empty string, got {name!r}"
            raise ConfigurationError(msg)
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            msg = (
                f"profile_function cannot time generator function {func.__qualname__!r}:"
                " wrap the code that consumes it in profile_block"
            )
            raise TypeError(msg)
        label = name or f"{func.__module__}.{func.__qualname__}"
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with _TimedBlock(self, label):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _TimedBlock(self, label):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def profile_block(self, name: str) -> _TimedBlock:
        """Time the ``with`` (or ``async with``) block as *name*; blocks may nest."""
        if not isinstance(name, str) or not name.strip():
            msg = f"profile_block needs a non-empty name, got {name!r}"
            raise ConfigurationError(msg)
        return _TimedBlock(self, name)

    def _stats_for(self, name: str) -> FunctionStats:
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats.setdefault(name, FunctionStats(name))
        return stats

    def _count(self, name: str, failed: bool) -> None:
        with self._lock:
            stats = self._stats_for(name)
            stats.calls += 1
            stats.failed += failed

    def _finish(
        self, name: str, wall: float, cpu: float, failed: bool, own_before: float, t2: float
    ) -> None:
        session = CURRENT_SESSION.get()
        session_id = session.session_id if session is not None else None
        with self._lock:
            stats = self._stats_for(name)
            stats.calls += 1
            stats.failed += failed
            stats.add(wall, cpu)
        self.records.append(
            Timing(name, wall * 1000.0, cpu * 1000.0, time.time(), session_id, failed), session_id
        )
        own = own_before + (time.perf_counter() - t2)
        self._own_window_s += own
        self._own_total_s += own
        self._window_calls += 1
        if self._window_calls >= OVERHEAD_CHECK_CALLS:
            self._check_function_overhead()

    def _check_function_overhead(self) -> None:
        now = time.perf_counter()
        elapsed = now - self._window_started
        own, calls = self._own_window_s, self._window_calls
        self._own_window_s, self._window_calls, self._window_started = 0.0, 0, now
        if elapsed <= 0:
            return
        percent = 100.0 * own / elapsed
        if percent > self.overhead_limit and self.timing_every < MAX_TIMING_EVERY:
            factor = 2 ** max(1, math.ceil(math.log2(percent / self.overhead_limit)))
            before = self.timing_every
            self.timing_every = min(MAX_TIMING_EVERY, before * factor)
            self._adjust(
                kind="function_timing",
                overhead_percent=round(percent, 3),
                measured_over_calls=calls,
                timing_every_before=before,
                timing_every=self.timing_every,
                message=(
                    f"function/block timing cost {percent:.2f}% > limit"
                    f" {self.overhead_limit:g}%: timing 1 in {self.timing_every} calls"
                ),
            )

    def _adjust(self, **entry: Any) -> None:
        entry["ts"] = time.time()
        entry["limit_percent"] = self.overhead_limit
        with self._lock:
            self.adjustments.append(entry)
            del self.adjustments[:-MAX_ADJUSTMENTS]

    def get_function_stats(self, name: str | None = None) -> dict[str, Any]:
        """Statistics of every profiled name (or of one *name*), in milliseconds."""
        with self._lock:
            if name is not None:
                stats = self._stats.get(name)
                if stats is None:
                    msg = f"no profiled function or block named {name!r}"
                    raise KeyError(msg)
                return stats.to_dict()
            return {key: stats.to_dict() for key, stats in sorted(self._stats.items())}

    # Sessions --------------------------------------------------------------------------
    def start_session(
        self,
        profile_memory: bool = False,
        profile_cpu: bool = True,
        enable_cprofile: bool = False,
        *,
        name: str | None = None,
        interval: float | None = None,
        async_mode: str = "enabled",
        top_allocations: int = 10,
        memory_diff: bool = False,
        focus: tuple[str, str] | None = None,
        debug_session_id: str | None = None,
        _caller: types.FrameType | None = None,
    ) -> str:
        """Start a profiling session in this thread; return its id.

        *profile_cpu*: statistical call tree (pyinstrument, every *interval* seconds, default
        the configured ``profile_interval``, widened over the overhead limit); *async_mode* as
        pyinstrument's (``enabled`` attributes awaits to the awaiting coroutine when the session
        starts inside it). *enable_cprofile*: cProfile statistics. *profile_memory*: tracemalloc
        figures and the *top_allocations* sites; *memory_diff*: also a snapshot diff.
        *focus* ``(file, function)`` roots the call tree at that function when sampled.
        """
        for label, flag in (
            ("profile_memory", profile_memory),
            ("profile_cpu", profile_cpu),
            ("enable_cprofile", enable_cprofile),
            ("memory_diff", memory_diff),
        ):
            if not isinstance(flag, bool):
                msg = f"start_session {label} must be True or False, got {flag!r}"
                raise ConfigurationError(msg)
        if async_mode not in ASYNC_MODES:
            msg = f"start_session async_mode must be one of {ASYNC_MODES}, got {async_mode!r}"
            raise ConfigurationError(msg)
        if interval is not None and not is_positive_number(interval):
            msg = f"start_session interval must be a number of seconds > 0, got {interval!r}"
            raise ConfigurationError(msg)
        if isinstance(top_allocations, bool) or not isinstance(top_allocations, int):
            msg = f"start_session top_allocations must be a whole number, got {top_allocations!r}"
            raise ConfigurationError(msg)
        if not _LATE.loaded:
            _LATE.load()
        session_id = uuid.uuid4().hex
        session = ProfileSession(
            session_id=session_id,
            name=name or session_id,
            started_at=time.time(),
            profile_cpu=profile_cpu,
            profile_memory=profile_memory,
            enable_cprofile=enable_cprofile,
            debug_session_id=debug_session_id,
        )
        running = _Running(
            threading.get_ident(), time.time(), time.perf_counter(), time.process_time()
        )
        running.focus = focus
        caller = _caller or sys._getframe(1)
        try:
            if enable_cprofile:
                self._start_cprofile(session, running)
            if profile_cpu:
                self._start_sampler(session, running, interval, async_mode, caller)
            if profile_memory:
                running.memory = _MemoryWatch(
                    max(0, top_allocations),
                    memory_diff,
                    self.configuration.profile_framework_frames,
                )
        except BaseException:
            self._release(session_id, running)
            raise
        session._state = running
        with self._lock:
            self.sessions[session_id] = session
            self._running[session_id] = running
            while len(self.sessions) > MAX_KEPT_SESSIONS:
                oldest = next(iter(self.sessions))
                if oldest in self._running:
                    break
                self.sessions.pop(oldest)
        running.perf_start = time.perf_counter()
        running.cpu_start = time.process_time()
        return session_id

    def _start_cprofile(self, session: ProfileSession, running: _Running) -> None:
        ident = threading.get_ident()
        sampler = _SAMPLERS.get(ident)
        if not PY312 and sampler is not None and sampler.kind == "pyinstrument":
            session.notes.append(
                "cProfile not run: pyinstrument already samples this thread and on Python"
                " < 3.12 both need its single profile hook; start the cProfile session first"
            )
            return
        key = _cprofile_key()
        share = _CPROFILES.get(key)
        if share is None:
            if not PY312 and sys.getprofile() is not None:
                holder = sys.getprofile()
                session.notes.append(f"cProfile not run: {holder!r} holds sys.setprofile")
                return
            share = _CPROFILES[key] = _CProfileShare()
            share.users.add(session.session_id)
            running.cprofile_before = {}
            try:
                share.profile.enable()
            except ValueError as exc:  # 3.12+: another sys.monitoring profiler is active
                _CPROFILES.pop(key, None)
                session.notes.append(f"cProfile not run: {exc}")
                return
        else:
            running.cprofile_before = share.snapshot()
            share.users.add(session.session_id)
        running.cprofile = share

    def _start_sampler(
        self,
        session: ProfileSession,
        running: _Running,
        interval: float | None,
        async_mode: str,
        caller: types.FrameType | None,
    ) -> None:
        ident = threading.get_ident()
        with _SAMPLERS_LOCK:
            sampler = _SAMPLERS.get(ident)
            if sampler is not None:
                session.shared = True
                session.notes.append(
                    f"shares the {sampler.kind} sampler already running in this thread"
                    f" (interval {sampler.interval:g} s)"
                )
            else:
                chosen = interval if interval is not None else self.sampling_interval
                hook_taken = not PY312 and (
                    _CPROFILES.get(ident) is not None or sys.getprofile() is not None
                )
                if hook_taken:
                    sampler = _ThreadSampler(chosen)
                    session.notes.append(
                        "call tree sampled from a thread: the profile hook is taken"
                        " (cProfile or another profiler, Python < 3.12)"
                    )
                else:
                    sampler = _PyinstrumentSampler(chosen, async_mode)
                sampler.start(caller)
                _SAMPLERS[ident] = sampler
            sampler.users.add(session.session_id)
            running.sampler = sampler
            running.sample_index = len(sampler.records)
        session.sampler = sampler.kind
        session.interval_s = sampler.interval

    def _release_sampler(self, session_id: str, running: _Running) -> None:
        sampler = running.sampler
        if sampler is not None:
            with _SAMPLERS_LOCK:
                sampler.users.discard(session_id)
                if not sampler.users:
                    if _SAMPLERS.get(running.thread_id) is sampler:
                        del _SAMPLERS[running.thread_id]
                    sampler.stop()
            running.sampler = None

    def _release(self, session_id: str, running: _Running) -> None:
        """Give back what a session holds (sampler, cProfile, tracemalloc), in any state."""
        self._release_sampler(session_id, running)
        share = running.cprofile
        if share is not None:
            share.users.discard(session_id)
            if not share.users:
                share.profile.disable()
                for key, value in list(_CPROFILES.items()):
                    if value is share:
                        del _CPROFILES[key]
            running.cprofile = None
        if running.memory is not None and not running.memory.done:
            with contextlib.suppress(Exception):
                running.memory.finish()
        running.memory = None

    def stop_session(self, session_id: str) -> ProfileSession:
        """Stop the session *session_id* and return it with its results.

        A session must be stopped in the thread that started it (the sampler is that thread's).
        """
        with self._lock:
            session = self.sessions.get(session_id)
            running = self._running.get(session_id)
            if session is None or running is None:
                state = "already stopped" if session is not None else "unknown"
                msg = f"no running profiling session {session_id!r} ({state})"
                raise SessionError(msg)
            if running.thread_id != threading.get_ident() and running.sampler is not None:
                msg = (
                    f"profiling session {session_id!r} was started in thread"
                    f" {running.thread_id} and must be stopped there (its sampler is"
                    " that thread's)"
                )
                raise SessionError(msg)
            del self._running[session_id]
        try:
            self._collect(session, running)
        finally:
            self._release(session_id, running)
            session.stopped = True
            session._state = None
        return session

    def _collect(self, session: ProfileSession, running: _Running) -> None:
        session.duration_seconds = max(0.0, time.perf_counter() - running.perf_start)
        session.cpu_seconds = max(0.0, time.process_time() - running.cpu_start)
        if running.cprofile is not None:  # first: keep the rest of the stop out of its stats
            share = running.cprofile
            after = share.snapshot() if len(share.users) > 1 else _final_stats(share)
            session.cprofile_stats = _cprofile_rows(
                running.cprofile_before or {},
                after,
                framework_frames=self.configuration.profile_framework_frames,
            )
            self._note_calls(session.cprofile_stats)
        sampling_cost = 0.0
        sampler = running.sampler
        if sampler is not None:
            records = list(sampler.records[running.sample_index :])
            start_stack = sampler.start_call_stack
            # Stop sampling (if no other session shares it) before the work below, so that
            # the digest is not sampled, and the thread sampler's measured cost is final.
            self._release_sampler(session.session_id, running)
            session.sample_count = len(records)
            sampling_cost = self._sampling_cost(sampler, records)
            self._digest(session, records, start_stack, running)
        memory_cost = 0.0
        if running.memory is not None:
            memory, top, diff = running.memory.finish()
            memory_cost = running.memory.cost_s
            session.memory, session.top_allocations, session.snapshot_diff = memory, top, diff
        self._account(session, sampling_cost, memory_cost)

    def _sampling_cost(self, sampler: _Sampler, records: list[tuple[list[str], float]]) -> float:
        if sampler.kind == "thread":
            total = len(sampler.records) or 1
            return sampler.cost_s * len(records) / total
        return _cost_per_frame() * sum(len(stack) for stack, _ in records)

    def _digest(
        self,
        session: ProfileSession,
        records: list[tuple[list[str], float]],
        start_stack: list[str],
        running: _Running,
    ) -> None:
        if not records:
            session.notes.append(
                "no samples: the session was shorter than the sampling interval"
                f" ({session.interval_s:g} s)"
            )
            return
        from pyinstrument.session import Session

        session.pyinstrument_session = Session(
            frame_records=records,
            start_time=running.wall_start,
            duration=session.duration_seconds,
            min_interval=session.interval_s or self.sampling_interval,
            max_interval=session.interval_s or self.sampling_interval,
            sample_count=len(records),
            start_call_stack=start_stack,
            target_description=f"kari-debug profile {session.name}",
            cpu_time=session.cpu_seconds,
            sys_path=list(sys.path),
            sys_prefixes=Session.current_sys_prefixes(),
        )
        if running.focus is not None:
            # Cut each stack at the focus frame first: far fewer nodes to build (a test's
            # stacks share ~50 pytest frames above the test function).
            records = _cut_at(records, running.focus)
        root = _trim(_build_tree(records), start_stack, running.focus)
        if root is not None:
            prune_tree(root, framework_frames=self.configuration.profile_framework_frames)
        if root is None or root.time <= 0:
            session.notes.append(
                f"{running.focus[1] if running.focus else 'the focus'} was not sampled: it ran"
                f" for less than the sampling interval ({session.interval_s:g} s)"
            )
            return
        total = root.time or 1e-12
        session.call_tree = compact_tree(root, total, self.min_tree_share)
        session.hot_functions, session.hot_paths = _hot_functions(root)
        self._aggregate(session.hot_functions, session.hot_paths, root.time)

    def _aggregate(
        self, functions: list[dict[str, Any]], paths: list[dict[str, Any]], total: float
    ) -> None:
        with self._lock:
            self._agg_total_s += total
            for hot in functions:
                key = "\x00".join((hot["function"], hot["file"] or "", str(hot["line"] or 0)))
                entry = self._agg_functions.setdefault(key, [0.0, 0.0, 0.0])
                entry[0] += hot["self_s"]
                entry[1] += hot["wait_s"]
                entry[2] += hot["total_s"]
            for hot in paths:
                path = tuple(hot["path"])
                self._agg_paths[path] = self._agg_paths.get(path, 0.0) + hot["self_s"]
            _cap(self._agg_functions, MAX_AGG_FUNCTIONS, lambda v: v[0])
            _cap(self._agg_paths, MAX_AGG_PATHS, lambda v: v)

    def _note_calls(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            for row in rows:
                key = f"{row['name']}\x00{row['file']}\x00{row['line']}"
                self._agg_calls[key] = self._agg_calls.get(key, 0) + int(row["calls"])
            _cap(self._agg_calls, MAX_AGG_FUNCTIONS, lambda v: v)

    def _account(self, session: ProfileSession, sampling_cost: float, memory_cost: float) -> None:
        duration = session.duration_seconds
        cost = sampling_cost + memory_cost
        percent = 100.0 * cost / duration if duration > 0 else 0.0
        self._sampling_cost_s += cost
        self._profiled_s += duration
        before = self.sampling_interval
        adjusted = False
        # Only the sampling cost steers the interval: tracemalloc was asked for explicitly
        # (and widening the interval would not make it cheaper); its cost is reported.
        # Sessions are judged together until they span OVERHEAD_WINDOW_S: one sample in a
        # sub-millisecond test says nothing about the rate.
        sampling_percent = 100.0 * sampling_cost / duration if duration > 0 else 0.0
        if session.sampler is not None:
            self._window_cost_s += sampling_cost
            self._window_duration_s += duration
        window_percent = 0.0
        if self._window_duration_s >= OVERHEAD_WINDOW_S:
            window_percent = 100.0 * self._window_cost_s / self._window_duration_s
            self._window_cost_s = self._window_duration_s = 0.0
        if window_percent > self.overhead_limit and before < MAX_INTERVAL_S:
            sampling_percent = window_percent
            factor = max(2.0, 1.25 * sampling_percent / self.overhead_limit)
            used = session.interval_s or before
            self.sampling_interval = min(MAX_INTERVAL_S, max(before, used) * factor)
            adjusted = True
            self._adjust(
                kind="sampling_interval",
                session=session.name,
                overhead_percent=round(sampling_percent, 3),
                interval_before_s=before,
                interval_s=self.sampling_interval,
                message=(
                    f"sampling cost {sampling_percent:.2f}% of {duration * 1000:.1f} ms > limit"
                    f" {self.overhead_limit:g}%: sampling interval {before * 1000:g} ms ->"
                    f" {self.sampling_interval * 1000:g} ms"
                ),
            )
        session.overhead = {
            "sampling_cost_ms": round(sampling_cost * 1000.0, 3),
            "memory_cost_ms": round(memory_cost * 1000.0, 3),
            "percent": round(percent, 3),
            "sampling_percent": round(sampling_percent, 3),
            "limit_percent": self.overhead_limit,
            "interval_s": session.interval_s,
            "next_interval_s": self.sampling_interval,
            "adjusted": adjusted,
            "function_timing_every": self.timing_every,
        }

    def get_session(self, session_id: str) -> ProfileSession | None:
        """A session kept in memory (running or among the last stopped ones), or ``None``."""
        return self.sessions.get(session_id)

    def active_sessions(self) -> list[ProfileSession]:
        """The sessions started and not yet stopped."""
        with self._lock:
            return [self.sessions[sid] for sid in self._running if sid in self.sessions]

    # Debug sessions --------------------------------------------------------------------
    def wants_profile(self, info: SessionInfo) -> bool:
        """Whether the debug session *info* asked for a profile (CPU, cProfile or memory)."""
        options = info.options
        return bool(
            options.get("enable_profiling")
            or options.get("enable_cprofile")
            or options.get("profile_memory")
        )

    def begin_session(self, session: SessionInfo) -> None:
        """Keep the session's timings apart; start its profile unless ``profile_deferred``."""
        super().begin_session(session)
        self._debug[session.session_id] = (session, None, None)
        if self.wants_profile(session) and not session.options.get("profile_deferred"):
            self.start_debug_profile(session, _caller=sys._getframe(1))

    def start_debug_profile(
        self,
        session: SessionInfo,
        *,
        async_mode: str = "disabled",
        focus: tuple[str, str] | None = None,
        _caller: types.FrameType | None = None,
    ) -> str | None:
        """Start the profile the debug session *session* asked for (in this thread).

        Options read: ``enable_profiling`` (call tree; ``profile_cpu=False`` turns it off),
        ``enable_cprofile``, ``profile_memory``, ``memory_snapshot_diff``.
        """
        if not self.enabled or not self.wants_profile(session):
            return None
        options = session.options
        profile_cpu = bool(options.get("enable_profiling")) and options.get("profile_cpu", True)
        profile_id = self.start_session(
            profile_memory=bool(options.get("profile_memory")),
            profile_cpu=bool(profile_cpu),
            enable_cprofile=bool(options.get("enable_cprofile")),
            name=session.name,
            async_mode=async_mode,
            memory_diff=bool(options.get("memory_snapshot_diff")),
            focus=focus,
            debug_session_id=session.session_id,
            _caller=_caller or sys._getframe(1),
        )
        self._debug[session.session_id] = (session, profile_id, None)
        return profile_id

    def stop_debug_profile(self, session: SessionInfo) -> ProfileSession | None:
        """Stop the debug session's profile; its results go into the session's data."""
        info, profile_id, done = self._debug.get(session.session_id, (session, None, None))
        if profile_id is None or done is not None:
            return done
        result = self.stop_session(profile_id)
        self._debug[session.session_id] = (info, profile_id, result)
        return result

    def end_session(self, session: SessionInfo) -> dict[str, Any]:
        """The session's timings, call tree, memory figures and top allocations."""
        data = super().end_session(session)
        result: ProfileSession | None = None
        try:
            result = self.stop_debug_profile(session)
        except SessionError as exc:
            self.add_diagnostic(f"profile of debug session {session.session_id}: {exc}")
        finally:
            self._debug.pop(session.session_id, None)
        data["functions"] = _session_functions(data["records"])
        if result is None:
            data.update(call_tree=None, memory={}, top_allocations=[])
            return data
        details = result.to_dict()
        data["call_tree"] = details.pop("call_tree")
        data["memory"] = details.pop("memory")
        data["top_allocations"] = details.pop("top_allocations")
        data["profile"] = details
        return data

    # Bottlenecks -----------------------------------------------------------------------
    def get_bottlenecks(self, limit: int = 10) -> list[dict[str, Any]]:
        """The run's bottlenecks, most important first.

        First the functions with the most self time over every profiled session (``kind
        "function"``), then the hottest call paths (``"path"``), then the slowest timed
        functions and blocks (``"timed"``); each with its ``share`` of the total and a
        ``recommendation`` where one applies.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            msg = f"get_bottlenecks limit must be a whole number >= 1, got {limit!r}"
            raise ConfigurationError(msg)
        with self._lock:
            functions = dict(self._agg_functions)
            paths = dict(self._agg_paths)
            calls = dict(self._agg_calls)
            total = self._agg_total_s
            timed = [stats.to_dict() for stats in self._stats.values()]
        from .bottlenecks import rank_bottlenecks  # (a run that asks for none imports none)

        return rank_bottlenecks(functions, paths, calls, total, timed, limit)

    # Self-monitoring -------------------------------------------------------------------
    def overhead_report(self) -> dict[str, Any]:
        """The profiler's own cost, its limit and every adjustment it made."""
        profiled = self._profiled_s
        return {
            "limit_percent": self.overhead_limit,
            "sampling_interval_s": self.sampling_interval,
            "configured_interval_s": self.configuration.profile_interval,
            "function_timing_every": self.timing_every,
            "function_timing_cost_ms": round(self._own_total_s * 1000.0, 3),
            "session_cost_ms": round(self._sampling_cost_s * 1000.0, 3),
            "session_cost_percent": round(
                100.0 * self._sampling_cost_s / profiled if profiled else 0.0, 3
            ),
            "adjusted": bool(self.adjustments),
            "adjustments": [dict(a) for a in self.adjustments],
        }

    def stats(self) -> dict[str, Any]:
        """Counts for ``get_debug_summary()``, plus the ``overhead`` report."""
        base: dict[str, Any] = dict(super().stats())
        base["sessions"] = len(self._running)
        base["overhead"] = self.overhead_report()
        return base

    def stop(self) -> None:
        """Stop every session still running in this thread (background work ends with it)."""
        for session_id in list(self._running):
            running = self._running.get(session_id)
            if running is not None and running.thread_id == threading.get_ident():
                with contextlib.suppress(SessionError):
                    self.stop_session(session_id)


def _cap(table: dict[Any, Any], limit: int, weight: Callable[[Any], float]) -> None:
    """Keep the *limit* heaviest entries of *table* (bounded aggregates)."""
    if len(table) <= limit:
        return
    kept = sorted(table.items(), key=lambda item: -weight(item[1]))[: limit // 2 or 1]
    table.clear()
    table.update(kept)
