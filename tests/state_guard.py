"""A suite-wide guard: a test that leaves process-wide state behind fails.

Checked after each test's fixtures are torn down: logging handlers added to any logger, an
OpenTelemetry tracer or meter provider set, tracemalloc left tracing (or stopped when it was
on), ``sys``/``threading`` trace or profile hooks, and non-daemon threads still running. The
state is put back before the failure, so one leak fails one test, not every later one.

``tests/conftest.py`` uses it for the whole suite; a pytester run loads it with
``-p state_guard`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

#: How long threads started by a test get to end after its teardown (they may be stopping).
THREAD_GRACE_S = 2.0
#: Idle workers of an executor that outlives the test (an event loop of a module-scoped fixture,
#: such as Playwright's, starts them on first use): their pool owns them, not the test.
POOL_THREADS = ("asyncio_", "ThreadPoolExecutor-")


def _loggers() -> dict[str, logging.Logger]:
    found = {"<root>": logging.getLogger()}
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            found[name] = logger
    return found


def _handlers() -> dict[str, list[logging.Handler]]:
    """Each logger's handlers, but pytest's own (it adds and removes them around each phase)."""
    return {
        name: [h for h in logger.handlers if not type(h).__module__.startswith("_pytest.")]
        for name, logger in _loggers().items()
    }


def _otel_globals() -> list[tuple[str, Any, Any]]:
    """(what, module, name of its global) of the OpenTelemetry providers, when imported."""
    found = []
    if "opentelemetry.trace" in sys.modules:
        found.append(("tracer provider", sys.modules["opentelemetry.trace"], "_TRACER_PROVIDER"))
    if "opentelemetry.metrics._internal" in sys.modules:
        module = sys.modules["opentelemetry.metrics._internal"]
        found.append(("meter provider", module, "_METER_PROVIDER"))
    return found


def _hooks() -> dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]]:
    return {
        "sys.settrace": (sys.gettrace, sys.settrace),
        "sys.setprofile": (sys.getprofile, sys.setprofile),
        "threading.settrace": (threading.gettrace, threading.settrace),
        "threading.setprofile": (threading.getprofile, threading.setprofile),
    }


@dataclass
class Snapshot:
    """The process-wide state a test must leave as it found it."""

    handlers: dict[str, list[logging.Handler]] = field(default_factory=_handlers)
    providers: dict[str, Any] = field(
        default_factory=lambda: {what: getattr(m, name) for what, m, name in _otel_globals()}
    )
    tracing: bool = field(default_factory=tracemalloc.is_tracing)
    hooks: dict[str, Any] = field(
        default_factory=lambda: {k: g() for k, (g, _) in _hooks().items()}
    )
    threads: set[threading.Thread] = field(default_factory=lambda: set(threading.enumerate()))

    def restore(self) -> list[str]:
        """Put the state back as it was; say what had been left behind."""
        return [
            *self._restore_handlers(),
            *self._restore_providers(),
            *self._restore_tracemalloc(),
            *self._restore_hooks(),
            *self._leftover_threads(),
        ]

    def _restore_handlers(self) -> list[str]:
        problems = []
        loggers = _loggers()
        for name, handlers in _handlers().items():
            before = self.handlers.get(name, [])
            for handler in handlers:
                if handler not in before:
                    loggers[name].removeHandler(handler)
                    problems.append(f"logging handler {handler!r} left on logger {name!r}")
            for handler in before:
                if handler not in handlers:
                    loggers[name].addHandler(handler)
                    problems.append(f"logging handler {handler!r} removed from logger {name!r}")
        return problems

    def _restore_providers(self) -> list[str]:
        problems = []
        for what, module, name in _otel_globals():
            before, now = self.providers.get(what), getattr(module, name)
            if now is not before:
                setattr(module, name, before)
                once = getattr(module, name + "_SET_ONCE", None)
                if before is None and once is not None:
                    once._done = False  # the provider may be set again, as before the test
                problems.append(f"OpenTelemetry {what} {now!r} set process-wide")
        return problems

    def _restore_tracemalloc(self) -> list[str]:
        if tracemalloc.is_tracing() == self.tracing:
            return []
        if self.tracing:
            tracemalloc.start()
            return ["tracemalloc stopped (it was tracing before the test)"]
        tracemalloc.stop()
        return ["tracemalloc left tracing"]

    def _restore_hooks(self) -> list[str]:
        problems = []
        for what, (get, set_) in _hooks().items():
            before, now = self.hooks[what], get()
            if now is not before and now != before:
                set_(before)
                problems.append(f"{what} hook {now!r} left installed")
        return problems

    def _leftover_threads(self) -> list[str]:
        def running() -> list[threading.Thread]:
            return [
                t
                for t in threading.enumerate()
                if t not in self.threads
                and t.is_alive()
                and not t.daemon
                and not t.name.startswith(POOL_THREADS)
            ]

        deadline = time.monotonic() + THREAD_GRACE_S
        left = running()
        while left and time.monotonic() < deadline:
            left[0].join(timeout=max(0.0, deadline - time.monotonic()))
            left = running()
        return [f"non-daemon thread {t.name!r} still running" for t in left]


@pytest.fixture(autouse=True)
def no_global_state_left_behind() -> Iterator[None]:
    """Fail the test (at teardown) if it left process-wide state behind; put it back first."""
    before = Snapshot()
    yield
    problems = before.restore()
    if problems:
        lines = "\n  ".join(problems)
        pytest.fail(f"the test left process-wide state behind:\n  {lines}", pytrace=False)
