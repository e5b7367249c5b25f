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
  through :mod:`.memtrace`: one owner count for the whole package, so tracing is started
  when nothing traces yet and stopped when the last memory session of either component ends,
  only if it was started by this package. Each session's peak is a :class:`memtrace.Meter`,
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

import contextlib
import cProfile
import functools
import inspect
import itertools
import math
import os
import random
import sys
import threading
import time
import tracemalloc
import types
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from . import memtrace, selfcost
from .component import Component
from .context import CURRENT_SESSION, SessionInfo, register_session_option
from .exceptions import ConfigurationError, SessionError
from .stats import quantile

F = TypeVar("F", bound=Callable[..., Any])

#: Session option: the debug session's profile starts only when ``start_debug_profile`` is
#: called (the pytest plugin uses it to profile the call phase, not the fixtures).
register_session_option("profile_deferred", bool)
#: Session option: also keep a tracemalloc snapshot diff between the profile's start and stop.
register_session_option("memory_snapshot_diff", bool)

PY312 = sys.version_info >= (3, 12)
RESERVOIR_SIZE = 512
MAX_TREE_DEPTH = 60
MAX_TREE_NODES = 400
MAX_HOT_FUNCTIONS = 25
MAX_HOT_PATHS = 10
MAX_AGG_FUNCTIONS = 5000
MAX_AGG_PATHS = 2000
MAX_KEPT_SESSIONS = 100
MAX_ADJUSTMENTS = 100
MAX_INTERVAL_S = 0.1
MAX_TIMING_EVERY = 4096
OVERHEAD_CHECK_CALLS = 256
OVERHEAD_WINDOW_S = 0.05
MEMORY_POLL_S = 0.005
MIN_SNAPSHOT_BYTES = 256 * 1024
MAX_SNAPSHOTS_PER_SESSION = 12
CPROFILE_ROWS = 50
ASYNC_MODES = ("enabled", "disabled", "strict")
#: Functions whose self time is waiting (sleep, I/O, locks), not computing.
WAIT_FUNCTIONS = frozenset(
    {"sleep", "select", "poll", "epoll.poll", "kqueue.control", "recv", "recv_into", "recvfrom",
     "read", "readinto", "readline", "accept", "connect", "send", "sendall", "write", "wait",
     "acquire", "join", "getaddrinfo", "urlopen", "communicate", "[await]", "_run_once",
     "stat", "lstat", "open", "listdir", "scandir", "fsync", "flush", "create_connection"}
)  # fmt: skip
SYNTHETIC = frozenset({"[await]", "[out-of-context]", "[self]"})
_HERE = os.path.abspath(__file__)
_PACKAGE_DIR = os.path.dirname(_HERE)
_PYINSTRUMENT_DIR: list[str] = []


def _pyinstrument_dir() -> str:
    """pyinstrument's directory once it is imported (before, none of its frames can run)."""
    if not _PYINSTRUMENT_DIR:
        module = sys.modules.get("pyinstrument")
        file = getattr(module, "__file__", None)
        if not file:
            return ""
        _PYINSTRUMENT_DIR.append(os.path.dirname(os.path.abspath(file)))
    return _PYINSTRUMENT_DIR[0]


_FRAMEWORK_DIRS: list[str] = []
_OWNERS: dict[str, str] = {}


def _framework_dirs() -> list[str]:
    """The folders of pytest and pluggy: their frames are the test runner's, not the test's."""
    if not _FRAMEWORK_DIRS:
        for name in ("_pytest", "pytest", "pluggy"):
            module = sys.modules.get(name)
            file = getattr(module, "__file__", None)
            if file:
                _FRAMEWORK_DIRS.append(os.path.dirname(os.path.abspath(file)))
    return _FRAMEWORK_DIRS


def frame_owner(file: str | None) -> str:
    """``"package"`` for a frame of pytest_kari_debug (or pyinstrument), ``"framework"`` for
    one of pytest or pluggy, ``""`` for the user's (the code a profile is about)."""
    if not file:
        return ""
    owner = _OWNERS.get(file)
    if owner is None:
        path = os.path.abspath(file) if file.startswith(os.sep) else file
        instrument = _pyinstrument_dir()
        if path.startswith(_PACKAGE_DIR + os.sep) or bool(
            instrument and path.startswith(instrument + os.sep)
        ):
            owner = "package"
        elif any(path.startswith(folder + os.sep) for folder in _framework_dirs()):
            owner = "framework"
        else:
            owner = ""
        if len(_OWNERS) < 20000:
            _OWNERS[file] = owner
    return owner


# Records ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Timing:
    """One timed call of a profiled function or block."""

    name: str
    wall_ms: float
    cpu_ms: float
    ts: float
    session_id: str | None
    failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the timing as JSON-able data."""
        return {
            "name": self.name,
            "value": self.wall_ms,
            "wall_ms": self.wall_ms,
            "cpu_ms": self.cpu_ms,
            "ts": self.ts,
            "session_id": self.session_id,
            "failed": self.failed,
        }


def _p95(values: Sequence[float]) -> float:
    return quantile(sorted(values), 0.95) if values else 0.0


class FunctionStats:
    """Aggregated timings of one profiled name; p95 comes from a bounded random reservoir."""

    __slots__ = (
        "_cpu_reservoir",
        "_rng",
        "_wall_reservoir",
        "calls",
        "cpu_max",
        "cpu_min",
        "cpu_total",
        "failed",
        "name",
        "timed",
        "wall_max",
        "wall_min",
        "wall_total",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.timed = 0
        self.failed = 0
        self.wall_total = self.cpu_total = 0.0
        self.wall_min = self.cpu_min = math.inf
        self.wall_max = self.cpu_max = 0.0
        self._wall_reservoir: list[float] = []
        self._cpu_reservoir: list[float] = []
        self._rng = random.Random(name)

    def add(self, wall: float, cpu: float) -> None:
        """Add one timed call (seconds)."""
        self.timed += 1
        self.wall_total += wall
        self.cpu_total += cpu
        self.wall_min = min(self.wall_min, wall)
        self.wall_max = max(self.wall_max, wall)
        self.cpu_min = min(self.cpu_min, cpu)
        self.cpu_max = max(self.cpu_max, cpu)
        if len(self._wall_reservoir) < RESERVOIR_SIZE:
            self._wall_reservoir.append(wall)
            self._cpu_reservoir.append(cpu)
        else:  # Algorithm R: every timed call has the same chance to be kept
            slot = self._rng.randrange(self.timed)
            if slot < RESERVOIR_SIZE:
                self._wall_reservoir[slot] = wall
                self._cpu_reservoir[slot] = cpu

    def to_dict(self) -> dict[str, Any]:
        """Return the statistics in milliseconds, as JSON-able data."""
        timed = self.timed or 1
        mean_wall = self.wall_total / timed
        mean_cpu = self.cpu_total / timed
        return {
            "name": self.name,
            "calls": self.calls,
            "timed_calls": self.timed,
            "failed": self.failed,
            # With sampled timing (overhead limit) the total is the mean times the calls.
            "total_ms": round(mean_wall * self.calls * 1000.0, 6),
            "mean_ms": round(mean_wall * 1000.0, 6),
            "min_ms": round((self.wall_min if self.timed else 0.0) * 1000.0, 6),
            "max_ms": round(self.wall_max * 1000.0, 6),
            "p95_ms": round(quantile(sorted(self._wall_reservoir), 0.95) * 1000.0, 6)
            if self._wall_reservoir
            else 0.0,
            "cpu_total_ms": round(mean_cpu * self.calls * 1000.0, 6),
            "cpu_mean_ms": round(mean_cpu * 1000.0, 6),
            "cpu_min_ms": round((self.cpu_min if self.timed else 0.0) * 1000.0, 6),
            "cpu_max_ms": round(self.cpu_max * 1000.0, 6),
            "cpu_p95_ms": round(_p95(self._cpu_reservoir) * 1000.0, 6),
        }


# Call trees ------------------------------------------------------------------------------
def _split_identifier(key: str) -> tuple[str, str | None, int | None]:
    parts = key.split("\x00")
    function = parts[0]
    file = parts[1] if len(parts) > 1 else None
    line = None
    if len(parts) > 2:
        with contextlib.suppress(ValueError):
            line = int(parts[2])
    return function, file, line


def function_label(function: str, file: str | None, line: int | None) -> str:
    """``function (file:line)``, the name bottlenecks and paths use for a function."""
    if not file:
        return function
    return f"{function} ({file}:{line})" if line else f"{function} ({file})"


class _Node:
    __slots__ = ("children", "key", "time")

    def __init__(self, key: str) -> None:
        self.key = key
        self.time = 0.0
        self.children: dict[str, _Node] = {}

    @property
    def self_time(self) -> float:
        return max(0.0, self.time - sum(child.time for child in self.children.values()))


def _build_tree(records: Iterable[tuple[Sequence[str], float]]) -> _Node:
    """Aggregate frame records (root-first identifier stacks) into a tree keyed by function."""
    root = _Node("[root]")
    for stack, seconds in records:
        node = root
        node.time += seconds
        for info in stack:
            key = info.split("\x01", 1)[0]
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node(key)
            child.time += seconds
            node = child
    return root


def _trim(root: _Node, start_stack: Sequence[str], focus: tuple[str, str] | None) -> _Node | None:
    """The node the tree should start at: *focus* ``(file, function)`` (``None`` when it was
    never sampled), else the first node below the stem shared with the profiler's start."""
    if focus is not None:
        queue = [root]
        while queue:
            node = queue.pop(0)
            function, file, _ = _split_identifier(node.key)
            if function == focus[1] and file is not None and _same_file(file, focus[0]):
                return node
            queue.extend(node.children.values())
        return None
    node = root
    stem = [info.split("\x01", 1)[0] for info in start_stack]
    for expected in stem:
        if len(node.children) != 1 or node.self_time > 0:
            break
        (child,) = node.children.values()
        if child.key != expected:
            break
        node = child
    return node


def _cut_at(
    records: list[tuple[list[str], float]], focus: tuple[str, str]
) -> list[tuple[list[str], float]]:
    """The samples taken inside *focus* ``(file, function)``, each from that frame down."""
    prefix = f"{focus[1]}\x00{focus[0]}\x00"
    cut = []
    for stack, seconds in records:
        for index, info in enumerate(stack):
            if info.startswith(prefix):
                cut.append((stack[index:], seconds))
                break
    return cut or records


def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.abspath(a) == os.path.abspath(b)


def _merge_into(children: dict[str, _Node], node: _Node) -> None:
    found = children.get(node.key)
    if found is None:
        children[node.key] = node
        return
    found.time += node.time
    for child in node.children.values():
        _merge_into(found.children, child)


def prune_tree(node: _Node, *, framework_frames: bool = False) -> float:
    """Leave this package's frames (and their time) out of the tree under *node*, and fold
    pytest's and pluggy's frames into their callers unless *framework_frames*.

    The package's time inside a test is its own cost, reported as ``kari_overhead_ms``, not
    the test's; the runner's frames between the test and the code it calls are noise.
    Returns the seconds taken out.
    """
    removed = 0.0
    for key, child in list(node.children.items()):
        owner = frame_owner(_split_identifier(key)[1])
        if owner == "package":
            del node.children[key]
            removed += child.time
            continue
        removed += prune_tree(child, framework_frames=framework_frames)
        if owner == "framework" and not framework_frames:
            del node.children[key]
            for grandchild in child.children.values():
                _merge_into(node.children, grandchild)
    node.time -= removed
    return removed


def _ours(file: str | None) -> bool:
    if not file:
        return False
    path = os.path.abspath(file)
    if path == _HERE:
        return True
    pyinstrument_dir = _pyinstrument_dir()
    return bool(pyinstrument_dir and path.startswith(pyinstrument_dir))


def _func_std_string(key: tuple[str, int, str]) -> str:
    """pstats' name of a cProfile entry (pstats is imported only when rows are made)."""
    import pstats

    return str(pstats.func_std_string(key))  # type: ignore[attr-defined]


def compact_tree(node: _Node, total: float, min_share: float) -> dict[str, Any]:
    """The tree under *node* as JSON-able dicts, keeping children with at least *min_share*
    of *total* time, at most ``MAX_TREE_DEPTH`` deep and ``MAX_TREE_NODES`` nodes."""
    budget = [MAX_TREE_NODES]
    floor = total * min_share

    def convert(current: _Node, depth: int) -> dict[str, Any]:
        budget[0] -= 1
        function, file, line = _split_identifier(current.key)
        kept = sorted(current.children.values(), key=lambda c: -c.time)
        children = []
        for child in kept:
            if child.time < floor or depth >= MAX_TREE_DEPTH or budget[0] <= 0:
                break
            children.append(convert(child, depth + 1))
        return {
            "function": function,
            "file": file,
            "line": line,
            "time_s": round(current.time, 6),
            "self_s": round(current.self_time, 6),
            "children": children,
        }

    return convert(node, 0)


def _hot_functions(node: _Node) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Self time per function and per call path under *node* (largest first)."""
    functions: dict[str, list[float]] = {}
    paths: dict[tuple[str, ...], float] = {}
    stack: list[tuple[_Node, tuple[str, ...], frozenset[str]]] = [(node, (), frozenset())]
    while stack:
        current, path, seen = stack.pop()
        function, file, line = _split_identifier(current.key)
        label = function_label(function, file, line)
        here = (*path, label)
        if current.key in SYNTHETIC:
            continue  # counted in its parent (as self time, and as waiting)
        wait = sum(c.time for c in current.children.values() if c.key in SYNTHETIC)
        own = current.self_time + wait
        if own > 0 and current.key != "[root]" and not _ours(file):
            entry = functions.setdefault(current.key, [0.0, 0.0, 0.0])
            entry[0] += own
            entry[1] += wait
            if current.key not in seen:  # recursion: count the inclusive time once
                entry[2] += current.time
            paths[here[-MAX_TREE_DEPTH:]] = paths.get(here[-MAX_TREE_DEPTH:], 0.0) + own
        for child in current.children.values():
            stack.append((child, here, seen | {current.key}))
    hot: list[dict[str, Any]] = []
    for key, (own, wait, inclusive) in functions.items():
        function, file, line = _split_identifier(key)
        hot.append(
            {
                "function": function,
                "file": file,
                "line": line,
                "self_s": round(own, 6),
                "wait_s": round(wait, 6),
                "total_s": round(max(inclusive, own), 6),
            }
        )
    hot.sort(key=lambda h: -h["self_s"])
    hot_paths = [
        {"path": list(path), "self_s": round(seconds, 6)}
        for path, seconds in sorted(paths.items(), key=lambda item: -item[1])[:MAX_HOT_PATHS]
    ]
    return hot[:MAX_HOT_FUNCTIONS], hot_paths


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
            began = time.perf_counter()
            snapshot = _snapshot()
            with self._lock:
                if not self.done:
                    self.best_increase, self.best_snapshot = increase, snapshot
                    self.snapshots += 1
            self.cost_s += time.perf_counter() - began

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
            if best is None and peak_bytes - self.start_current >= MIN_SNAPSHOT_BYTES * 4:
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


# Sessions --------------------------------------------------------------------------------
@dataclass
class ProfileSession:
    """A profiling session and, once stopped, its results."""

    session_id: str
    name: str
    started_at: float
    profile_cpu: bool
    profile_memory: bool
    enable_cprofile: bool
    debug_session_id: str | None = None
    duration_seconds: float = 0.0
    cpu_seconds: float = 0.0
    sampler: str | None = None
    interval_s: float | None = None
    sample_count: int = 0
    shared: bool = False
    call_tree: dict[str, Any] | None = None
    hot_functions: list[dict[str, Any]] = field(default_factory=list)
    hot_paths: list[dict[str, Any]] = field(default_factory=list)
    cprofile_stats: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    top_allocations: list[dict[str, Any]] = field(default_factory=list)
    snapshot_diff: list[dict[str, Any]] | None = None
    overhead: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False
    #: The pyinstrument ``Session`` of the samples (for its HTML and speedscope renderers).
    pyinstrument_session: Any = field(default=None, repr=False)
    _state: Any = field(default=None, repr=False)

    @property
    def status(self) -> str:
        return "stopped" if self.stopped else "running"

    def to_dict(self) -> dict[str, Any]:
        """Return the session's results as JSON-able data."""
        return {
            "profile_id": self.session_id,
            "name": self.name,
            "debug_session_id": self.debug_session_id,
            "started_at": self.started_at,
            "status": self.status,
            "duration_s": round(self.duration_seconds, 6),
            "cpu_s": round(self.cpu_seconds, 6),
            "sampler": self.sampler,
            "interval_s": self.interval_s,
            "samples": self.sample_count,
            "shared": self.shared,
            "call_tree": self.call_tree,
            "hot_functions": self.hot_functions,
            "hot_paths": self.hot_paths,
            "cprofile": self.cprofile_stats,
            "memory": self.memory,
            "top_allocations": self.top_allocations,
            "snapshot_diff": self.snapshot_diff,
            "overhead": self.overhead,
            "notes": list(self.notes),
        }

    def render_html(self) -> str:
        """The call tree as pyinstrument's interactive HTML page."""
        from pyinstrument.renderers import HTMLRenderer

        return str(HTMLRenderer().render(self._pyi_session()))

    def render_speedscope(self) -> str:
        """The samples as a speedscope JSON document (pyinstrument's renderer)."""
        from pyinstrument.renderers import SpeedscopeRenderer

        return str(SpeedscopeRenderer().render(self._pyi_session()))

    def render_text(self) -> str:
        """The call tree as pyinstrument's console text (no colour)."""
        from pyinstrument.renderers import ConsoleRenderer

        return str(ConsoleRenderer(unicode=False, color=False).render(self._pyi_session()))

    def _pyi_session(self) -> Any:
        if self.pyinstrument_session is None:
            msg = f"profiling session {self.session_id!r} has no call-tree samples to render"
            raise SessionError(msg)
        return self.pyinstrument_session


@dataclass
class _Running:
    """What a running session needs to produce its results."""

    thread_id: int
    wall_start: float
    perf_start: float
    cpu_start: float
    sampler: _Sampler | None = None
    sample_index: int = 0
    cprofile: _CProfileShare | None = None
    cprofile_before: dict[Any, tuple[Any, ...]] | None = None
    memory: _MemoryWatch | None = None
    focus: tuple[str, str] | None = None


class _TimedBlock:
    """Context manager (sync and async) timing one execution of a named block."""

    __slots__ = ("_c0", "_name", "_profiler", "_t0", "_t1", "_timed")

    def __init__(self, profiler: PerformanceProfiler, name: str) -> None:
        self._profiler = profiler
        self._name = name
        self._timed = False

    def __enter__(self) -> _TimedBlock:
        t0 = time.perf_counter()
        profiler = self._profiler
        if profiler.enabled and next(profiler._ticks) % profiler.timing_every == 0:
            self._timed = True
            self._t0 = t0
            self._c0 = time.thread_time()
            self._t1 = time.perf_counter()
        else:
            self._timed = False
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        t2 = time.perf_counter()
        profiler = self._profiler
        if not profiler.enabled:
            return
        if not self._timed:
            profiler._count(self._name, exc_type is not None)
            return
        cpu = time.thread_time() - self._c0
        wall = t2 - self._t1
        profiler._finish(self._name, wall, cpu, exc_type is not None, (self._t1 - self._t0), t2)

    async def __aenter__(self) -> _TimedBlock:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


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
        if interval is not None and (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not 0 < interval < math.inf
        ):
            msg = f"start_session interval must be a number of seconds > 0, got {interval!r}"
            raise ConfigurationError(msg)
        if isinstance(top_allocations, bool) or not isinstance(top_allocations, int):
            msg = f"start_session top_allocations must be a whole number, got {top_allocations!r}"
            raise ConfigurationError(msg)
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


def _final_stats(share: _CProfileShare) -> dict[Any, tuple[Any, ...]]:
    share.users.clear()
    share.profile.disable()
    share.profile.create_stats()
    return dict(share.profile.stats)


def _cap(table: dict[Any, Any], limit: int, weight: Callable[[Any], float]) -> None:
    """Keep the *limit* heaviest entries of *table* (bounded aggregates)."""
    if len(table) <= limit:
        return
    kept = sorted(table.items(), key=lambda item: -weight(item[1]))[: limit // 2 or 1]
    table.clear()
    table.update(kept)


def _session_functions(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-name timing figures of one debug session's records (timed calls only)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record["name"], []).append(record)
    result = {}
    for name, rows in grouped.items():
        walls = [r["wall_ms"] for r in rows]
        cpus = [r["cpu_ms"] for r in rows]
        result[name] = {
            "timed_calls": len(rows),
            "failed": sum(1 for r in rows if r["failed"]),
            "total_ms": round(sum(walls), 6),
            "mean_ms": round(sum(walls) / len(walls), 6),
            "min_ms": round(min(walls), 6),
            "max_ms": round(max(walls), 6),
            "p95_ms": round(_p95(walls), 6),
            "cpu_total_ms": round(sum(cpus), 6),
            "cpu_p95_ms": round(_p95(cpus), 6),
        }
    return result


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


# Ranking, shared by the profiler and the pytest plugin (which ranks from test records) ----
def _recommend_function(function: str, own: float, wait: float, calls: int | None) -> str:
    short = function.rsplit(".", 1)[-1]
    waiting = wait > 0.5 * own or function in WAIT_FUNCTIONS or short in WAIT_FUNCTIONS
    if waiting:
        return (
            "waits (sleep, I/O or a lock) rather than computes: run the waits concurrently,"
            " batch the requests, add a cache or a timeout"
        )
    if calls is not None and calls >= 1000:
        return (
            f"called {calls} times: batch the calls, cache the results or hoist the work out"
            " of the loop"
        )
    return (
        "CPU-bound: improve the algorithm or data structures, cache results, or move it to a"
        " worker process"
    )


def _recommend_timed(stats: dict[str, Any]) -> str | None:
    wall, cpu, calls = stats["total_ms"], stats["cpu_total_ms"], stats["calls"]
    if calls >= 100 and stats["mean_ms"] < 1.0:
        return (
            f"called {calls} times at {stats['mean_ms']:.3f} ms each: batch the calls or cache"
            " the results"
        )
    if wall > 0 and cpu / wall < 0.5:
        return (
            f"only {100 * cpu / wall:.0f}% of its wall time is CPU: it waits on I/O, sleep or"
            " locks; overlap the waits or cache"
        )
    if wall > 0 and cpu / wall >= 0.9:
        return "CPU-bound: improve the algorithm, cache results or move it to a worker process"
    return None


def rank_bottlenecks(
    functions: dict[str, list[float]],
    paths: dict[tuple[str, ...], float],
    calls: dict[str, int],
    total: float,
    timed: list[dict[str, Any]],
    limit: int,
) -> list[dict[str, Any]]:
    """Bottleneck entries from aggregated self times, paths and timed-name statistics.

    *functions* maps ``function\\0file\\0line`` to ``[self_s, wait_s, total_s]``; *paths*
    maps call paths (labels, root first) to self seconds of their last function; *calls*
    maps the same function keys to cProfile call counts; *total* is the sampled seconds.
    """
    found: list[dict[str, Any]] = []
    denominator = total or 1e-12
    ranked = sorted(functions.items(), key=lambda item: -item[1][0])[:limit]
    for key, (own, wait, inclusive) in ranked:
        function, file, line = _split_identifier(key)
        call_count = calls.get(key) or calls.get(f"{function}\x00{file}\x00{line}")
        found.append(
            {
                "kind": "function",
                "name": function_label(function, file, line),
                "function": function,
                "file": file or None,
                "line": line or None,
                "self_s": round(own, 6),
                "wait_s": round(wait, 6),
                "total_s": round(inclusive, 6),
                "share": round(own / denominator, 4),
                "calls": call_count,
                "recommendation": _recommend_function(function, own, wait, call_count),
            }
        )
    for path, own in sorted(paths.items(), key=lambda item: -item[1])[: max(1, limit // 2)]:
        found.append(
            {
                "kind": "path",
                "name": " > ".join(path[-6:]),
                "path": list(path),
                "self_s": round(own, 6),
                "share": round(own / denominator, 4),
                "recommendation": f"hottest path: most time is spent in {path[-1]}",
            }
        )
    grand = sum(t["total_ms"] for t in timed) or 1e-12
    for stats in sorted(timed, key=lambda t: -t["total_ms"])[:limit]:
        found.append(
            {
                "kind": "timed",
                **stats,
                "share": round(stats["total_ms"] / grand, 4),
                "recommendation": _recommend_timed(stats),
            }
        )
    return found


def bottlenecks_from_profiles(
    profiles: Iterable[dict[str, Any]], limit: int = 10
) -> list[dict[str, Any]]:
    """Rank bottlenecks across per-session ``collected_data["profiling"]`` dicts."""
    functions: dict[str, list[float]] = {}
    paths: dict[tuple[str, ...], float] = {}
    calls: dict[str, int] = {}
    timed: dict[str, dict[str, Any]] = {}
    total = 0.0
    for data in profiles:
        details = data.get("profile") or {}
        tree = data.get("call_tree")
        if tree:
            total += float(tree.get("time_s") or 0.0)
        for hot in details.get("hot_functions") or ():
            key = "\x00".join((hot["function"], hot.get("file") or "", str(hot.get("line") or 0)))
            entry = functions.setdefault(key, [0.0, 0.0, 0.0])
            entry[0] += hot.get("self_s", 0.0)
            entry[1] += hot.get("wait_s", 0.0)
            entry[2] += hot.get("total_s", 0.0)
        for hot in details.get("hot_paths") or ():
            path = tuple(hot["path"])
            paths[path] = paths.get(path, 0.0) + hot.get("self_s", 0.0)
        for row in details.get("cprofile") or ():
            key = f"{row['name']}\x00{row['file']}\x00{row['line']}"
            calls[key] = calls.get(key, 0) + int(row["calls"])
        for name, figures in (data.get("functions") or {}).items():
            entry2 = timed.setdefault(
                name,
                {"name": name, "calls": 0, "timed_calls": 0, "failed": 0, "total_ms": 0.0,
                 "cpu_total_ms": 0.0, "max_ms": 0.0, "p95_ms": 0.0},
            )  # fmt: skip
            entry2["calls"] += figures["timed_calls"]
            entry2["timed_calls"] += figures["timed_calls"]
            entry2["failed"] += figures["failed"]
            entry2["total_ms"] += figures["total_ms"]
            entry2["cpu_total_ms"] += figures["cpu_total_ms"]
            entry2["max_ms"] = max(entry2["max_ms"], figures["max_ms"])
            entry2["p95_ms"] = max(entry2["p95_ms"], figures["p95_ms"])
    for entry2 in timed.values():
        entry2["mean_ms"] = entry2["total_ms"] / (entry2["timed_calls"] or 1)
    return rank_bottlenecks(functions, paths, calls, total, list(timed.values()), limit)


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
