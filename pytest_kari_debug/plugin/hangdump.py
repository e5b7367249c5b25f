"""Hang dumps: ``--kari-hang-dump=SECONDS`` and tests that pytest-timeout stops.

A test running longer than SECONDS gets the stacks of every thread and every asyncio task in
its record (``extra["hang_dump"]``), again at 2x and 3x, and its outcome is left alone. With
pytest-timeout installed, a test it times out gets the same dump taken at the moment it fires:
with the ``signal`` method the test then fails as usual; with the ``thread`` method the process
is about to be ended (``os._exit``), so the test is recorded as failed and the run's store,
JSON, report and Markdown summary are written first.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Generator
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

from .core import finish_run, keep_unfinished
from .options import option_source
from .state import STATE, add_test_steps, after_teardown, guard, register_when_sessions

if TYPE_CHECKING:  # imported when a run asks for dumps (it reads sysconfig and asyncio)
    from ..hangdump import HangWatchdog

DUMPS_PER_TEST = 3
WATCHDOG = pytest.StashKey["HangWatchdog | None"]()
_DUMPS = pytest.StashKey[dict[str, Any]]()
_STARTED = pytest.StashKey[float]()


def _seconds(config: pytest.Config) -> float | None:
    raw, source = option_source(config, "hang_dump")
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        msg = f"kari-debug: {source} {text!r} is not a number of seconds > 0 (e.g. 30 or 2.5)"
        raise pytest.UsageError(msg)
    return seconds


def _add_dump(item: pytest.Item, reason: str, seconds: float | None, **capture: Any) -> None:
    """Append a dump of the process now to *item*'s hang record."""
    from ..hangdump import capture_stacks, format_dump

    started = item.stash.get(_STARTED, time.monotonic())
    entry = item.stash.get(_DUMPS, None)
    if entry is None:
        entry = item.stash[_DUMPS] = {"seconds": seconds, "reason": reason, "dumps": []}
    if len(entry["dumps"]) >= DUMPS_PER_TEST + 1:  # the slow dumps and the timeout's
        return
    dump = capture_stacks(**capture)
    dump["after_s"] = round(time.monotonic() - started, 3)
    dump["reason"] = reason
    dump["text"] = format_dump(dump)
    entry["reason"] = reason
    entry["dumps"].append(dump)
    with guard(item.config, "calling pytest_kari_debug_hang_dump"):
        item.config.hook.pytest_kari_debug_hang_dump(
            item=item, number=len(entry["dumps"]), dump=dump
        )


class HangHooks:
    """The per-test watchdog of ``--kari-hang-dump`` (registered when a test has a session)."""

    def __init__(self, watchdog: HangWatchdog) -> None:
        self.watchdog = watchdog

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        """Start the test's clock before its fixtures are set up."""
        item.stash[_STARTED] = time.monotonic()
        self.watchdog.watch(item, self._due)
        return (yield)

    def _after_teardown(self, item: pytest.Item) -> None:
        """Stop the test's clock once it is torn down."""
        self.watchdog.unwatch(item)

    pytest_runtest_teardown = after_teardown(_after_teardown)

    def _due(self, key: object, number: int) -> None:
        item = key
        assert isinstance(item, pytest.Item)
        with guard(item.config, "taking a hang dump"):
            skip = [self.watchdog.thread_ident or 0]
            _add_dump(item, "slow", self.watchdog.seconds, skip=skip)


def _record_dumps(item: pytest.Item, record: dict[str, Any]) -> None:
    """Put the test's hang dumps under ``record["extra"]["hang_dump"]``."""
    entry = item.stash.get(_DUMPS, None)
    if entry is not None:
        record.setdefault("extra", {})["hang_dump"] = entry


class TimeoutHooks:
    """Takes the dump when pytest-timeout fires (registered when pytest-timeout is active).

    pytest-timeout's ``pytest_timeout_set_timer`` hook sets the timer; this wrapper then puts
    a function in front of the one it set, which dumps (and, for the thread method, writes
    the run's outputs) and calls pytest-timeout's own.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds

    @pytest.hookimpl(wrapper=True, optionalhook=True)
    def pytest_timeout_set_timer(
        self, item: pytest.Item, settings: Any
    ) -> Generator[None, Any, Any]:
        result = yield
        with guard(item.config, "watching pytest-timeout"):
            method = settings.method
            if method == "signal" and threading.current_thread() is not threading.main_thread():
                method = "thread"
            if method == "signal":
                self._wrap_signal(item, settings)
            elif method == "thread" and getattr(item, "cancel_timeout", None) is not None:
                self._replace_timer(item, settings)
        return result

    def _wrap_signal(self, item: pytest.Item, settings: Any) -> None:
        theirs = signal.getsignal(signal.SIGALRM)
        if not callable(theirs):
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            __tracebackhide__ = True
            if not _debugging(settings):
                with guard(item.config, "taking the timeout's hang dump"):
                    _add_dump(item, "timeout", self.seconds, main_frame=frame)
            theirs(signum, frame)

        signal.signal(signal.SIGALRM, handler)

    def _replace_timer(self, item: pytest.Item, settings: Any) -> None:
        import pytest_timeout

        item.cancel_timeout()  # type: ignore[attr-defined]

        def fire() -> None:
            if not _debugging(settings):
                with guard(item.config, "keeping the run before pytest-timeout ends it"):
                    _add_dump(item, "timeout", self.seconds, skip=[threading.get_ident()])
                    message = (
                        f"Timeout >{settings.timeout}s: pytest-timeout (thread method) ended the"
                        " process during this test; the stacks of its threads and tasks are in"
                        " the test's hang dump"
                    )
                    keep_unfinished(item, message)
                    finish_run(item.config, pytest.ExitCode.TESTS_FAILED)
            pytest_timeout.timeout_timer(item, settings)

        timer = threading.Timer(settings.timeout, fire)
        timer.name = f"pytest_timeout {item.nodeid}"
        timer.daemon = True

        def cancel() -> None:
            timer.cancel()
            timer.join()

        item.cancel_timeout = cancel  # type: ignore[attr-defined]
        timer.start()


def _debugging(settings: Any) -> bool:
    """pytest-timeout does nothing under a debugger: neither does the dump."""
    import pytest_timeout

    return not settings.disable_debugger_detection and bool(pytest_timeout.is_debugging())


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Check ``--kari-hang-dump``; asking for dumps wraps every test in a debug session."""
    seconds = _seconds(config)
    config.stash[WATCHDOG] = None
    state = config.stash.get(STATE, None)
    if state is None:
        return
    if seconds is not None:
        from ..hangdump import HangWatchdog
        from ..selfcost import own_thread

        state.wrap_every_test()  # a dump needs the test's record to live in
        # The dumps' CPU time is the plugin's own, never the hung test's.
        config.stash[WATCHDOG] = HangWatchdog(seconds, DUMPS_PER_TEST, thread_context=own_thread)
    if config.pluginmanager.hasplugin("timeout"):
        config.pluginmanager.register(TimeoutHooks(seconds), "kari-debug-timeout")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Watch every test with a debug session (when --kari-hang-dump is on); put a test's
    dumps (here or pytest-timeout's) in its record."""
    add_test_steps(session.config, "kari-debug-hang-dump-record", recording=_record_dumps)
    watchdog = session.config.stash.get(WATCHDOG, None)
    if watchdog is not None:
        register_when_sessions(session.config, "kari-debug-hang-dump", lambda: HangHooks(watchdog))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the watchdog thread."""
    watchdog = config.stash.get(WATCHDOG, None)
    if watchdog is not None:
        watchdog.close()
