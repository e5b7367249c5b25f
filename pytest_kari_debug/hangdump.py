"""Stacks of every thread and every asyncio task of the process, and a watchdog that takes them.

A hung test is the most expensive failure in CI and pytest's own output says nothing of what
the other threads or the event loop's tasks were doing. :func:`capture_stacks` records that as
plain JSON-able data; :class:`HangWatchdog` calls back when a watched job outlives its
deadline, from one daemon thread for the whole process.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

MAX_FRAMES = 50
#: Threads and tasks kept per dump (the rest are counted): a dump stays a bounded record.
MAX_THREADS = 200
MAX_TASKS = 200


@cache
def _stdlib() -> tuple[str, ...]:
    """The standard library's folders (sysconfig is read on the first dump only)."""
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple(p for p in {paths.get("stdlib"), paths.get("platstdlib")} if p)


def _frames(frame: FrameType | None, limit: int) -> list[dict[str, Any]]:
    """Outermost first, the innermost *limit* frames of the stack ending at *frame*."""
    summary = traceback.extract_stack(frame, limit=limit) if frame is not None else []
    return [
        {"file": entry.filename, "line": entry.lineno, "function": entry.name,
         "code": (entry.line or "").strip()[:200]}
        for entry in summary
    ]  # fmt: skip


def _own_function(frames: list[dict[str, Any]]) -> str:
    """The innermost function outside the standard library (where the waiting code is)."""
    for frame in reversed(frames):
        if not str(frame["file"]).startswith(_stdlib()) and frame["file"] != __file__:
            return str(frame["function"])
    return str(frames[-1]["function"]) if frames else ""


def _loops(frames: dict[int, FrameType]) -> dict[int, asyncio.AbstractEventLoop]:
    """Running event loops, by the ident of the thread running each (found on its stack)."""
    found: dict[int, asyncio.AbstractEventLoop] = {}
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:  # never imported: no loop runs (and a dump does not import it)
        return found
    for ident, frame in frames.items():
        walker: FrameType | None = frame
        while walker is not None:
            candidate = walker.f_locals.get("self")
            if isinstance(candidate, asyncio.AbstractEventLoop):
                found[ident] = candidate
                break
            walker = walker.f_back
    return found


def _tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    import asyncio

    # all_tasks reads a WeakSet the loop's thread may change meanwhile: retry a few times.
    for _ in range(5):
        try:
            return list(asyncio.all_tasks(loop))
        except RuntimeError:
            continue
    return []


def capture_stacks(
    *, skip: Iterable[int] = (), limit: int = MAX_FRAMES, main_frame: FrameType | None = None
) -> dict[str, Any]:
    """Every thread's stack (but those in *skip*) and every running loop's tasks' stacks.

    *main_frame* replaces the main thread's current frame (a signal handler's caller). Never
    raises: a part that cannot be read becomes an ``error`` entry.
    """
    skipped = set(skip)
    frames = sys._current_frames()
    names = {thread.ident: thread for thread in threading.enumerate()}
    main = threading.main_thread().ident
    threads: list[dict[str, Any]] = []
    omitted = {"threads": 0, "tasks": 0}
    for ident, frame in sorted(frames.items(), key=lambda kv: (kv[0] != main, kv[0])):
        if ident in skipped:
            continue
        if len(threads) >= MAX_THREADS:
            omitted["threads"] += 1
            continue
        if ident == main and main_frame is not None:
            frame = main_frame
        thread = names.get(ident)
        stack = _frames(frame, limit)
        threads.append({
            "name": thread.name if thread is not None else f"<unknown {ident}>",
            "ident": ident,
            "daemon": bool(thread.daemon) if thread is not None else None,
            "main": ident == main,
            "function": _own_function(stack),
            "frames": stack,
        })  # fmt: skip
    tasks: list[dict[str, Any]] = []
    try:
        for ident, loop in _loops(frames).items():
            loop_thread = names.get(ident)
            for task in _tasks(loop):
                if len(tasks) >= MAX_TASKS:
                    omitted["tasks"] += 1
                    continue
                stack = []
                for task_frame in task.get_stack(limit=limit):
                    stack.extend(_frames(task_frame, 1))
                coro = task.get_coro()
                tasks.append({
                    "name": task.get_name(),
                    "coroutine": getattr(coro, "__qualname__", repr(coro))[:200],
                    "thread": loop_thread.name if loop_thread is not None else str(ident),
                    "done": task.done(),
                    "function": _own_function(stack),
                    "frames": stack,
                })  # fmt: skip
    except Exception as exc:  # a loop changing under us must not lose the threads' stacks
        tasks.append({"error": f"{type(exc).__name__}: {exc}"})
    return {"threads": threads, "tasks": tasks, "omitted": omitted}


def format_dump(dump: dict[str, Any]) -> str:
    """A dump as text, as Python prints a traceback (for the report and a terminal)."""
    lines: list[str] = []
    for thread in dump.get("threads") or ():
        flags = " (main)" if thread.get("main") else (" (daemon)" if thread.get("daemon") else "")
        lines.append(f"Thread {thread['name']!r}{flags}, in {thread.get('function')}:")
        lines += _frame_lines(thread.get("frames") or ())
    for task in dump.get("tasks") or ():
        if "error" in task:
            lines.append(f"asyncio tasks: {task['error']}")
            continue
        lines.append(
            f"Task {task['name']!r} ({task['coroutine']}) on thread {task['thread']!r},"
            f" in {task.get('function')}:"
        )
        lines += _frame_lines(task.get("frames") or ())
    omitted = dump.get("omitted") or {}
    if omitted.get("threads") or omitted.get("tasks"):
        lines.append(
            f"... and {omitted.get('threads', 0)} more threads, {omitted.get('tasks', 0)} more"
            " tasks (not kept)"
        )
    return "\n".join(lines)


def _frame_lines(frames: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for frame in frames:
        lines.append(f'  File "{frame["file"]}", line {frame["line"]}, in {frame["function"]}')
        if frame.get("code"):
            lines.append(f"    {frame['code']}")
    return lines


class HangWatchdog:
    """Calls ``callback(key, n)`` when a watched job runs past ``n * seconds`` (n = 1..repeats).

    One daemon thread serves every job; watching and unwatching are a lock and a notify, so a
    run of many short tests pays next to nothing.
    """

    def __init__(
        self,
        seconds: float,
        repeats: int = 3,
        *,
        thread_context: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        if not seconds > 0:
            msg = f"hang dump seconds must be > 0, got {seconds!r}"
            raise ValueError(msg)
        self.seconds = float(seconds)
        self.repeats = max(1, int(repeats))
        self._jobs: dict[object, tuple[float, int, Callable[[object, int], None]]] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.last_error: str | None = None
        #: Entered by the watchdog thread for its life (the plugin counts its CPU as its own).
        self.thread_context = thread_context

    @property
    def thread_ident(self) -> int | None:
        """The watchdog thread's ident (left out of the dumps it takes)."""
        return self._thread.ident if self._thread is not None else None

    def watch(self, key: object, callback: Callable[[object, int], None]) -> None:
        """Start the clock of job *key*."""
        with self._cond:
            if self._closed:
                return
            self._jobs[key] = (time.monotonic(), 0, callback)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kari-debug-hang-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def unwatch(self, key: object) -> None:
        """Stop the clock of job *key* (its dumps so far stay with its owner)."""
        with self._cond:
            self._jobs.pop(key, None)

    def close(self) -> None:
        """Stop the thread; no callback runs after this returns."""
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(self) -> None:
        with self.thread_context():
            self._loop()

    def _loop(self) -> None:
        while True:
            due: list[tuple[object, int, Callable[[object, int], None]]] = []
            with self._cond:
                if self._closed:
                    return
                now = time.monotonic()
                wait = None
                for key, (started, fired, callback) in list(self._jobs.items()):
                    if fired >= self.repeats:
                        continue
                    deadline = started + self.seconds * (fired + 1)
                    if deadline <= now:
                        self._jobs[key] = (started, fired + 1, callback)
                        due.append((key, fired + 1, callback))
                    else:
                        wait = deadline - now if wait is None else min(wait, deadline - now)
                if not due:
                    self._cond.wait(timeout=wait)
                    continue
            for key, number, callback in due:
                try:
                    callback(key, number)
                except Exception as exc:  # the watchdog outlives a failed dump
                    self.last_error = f"{type(exc).__name__}: {exc}"
