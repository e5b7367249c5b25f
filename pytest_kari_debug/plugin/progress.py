"""A run's progress in the store while it runs: tests collected and tests running now.

The dashboard shows a run in progress from it (done/total, live counts, tests running now).
Written on the controller only, at most every :data:`PROGRESS_EVERY_SECONDS`, by the store's
committer next to the test records (one small update, never one per test; a failing store
skips it: the test writes retry, and their end-of-run diagnostic tells).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from .state import STATE, HookObject, guard

PROGRESS_EVERY_SECONDS = 0.5
#: Running tests named in the store (an xdist run has one per worker).
RUNNING_SHOWN = 64


class RunProgress(HookObject):
    """Counts collected tests and follows the running ones (registered on the controller)."""

    def __init__(self, config: pytest.Config, send: Callable[[dict[str, Any]], None]) -> None:
        self.config = config
        self.send = send
        self.collected = 0
        self.running: dict[str, float] = {}
        self.written_at = 0.0
        #: The last progress written named no running test: the next start is news.
        self.idle_written = True

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The number of tests this process collected (a run without xdist)."""
        self.collected = max(self.collected, len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """The number of tests an xdist worker collected (they all collect the same)."""
        self.collected = max(self.collected, len(ids))

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        """A test started (here or on a worker)."""
        self.running[nodeid] = time.time()
        if self.idle_written or time.monotonic() - self.written_at >= PROGRESS_EVERY_SECONDS:
            self.write(force=True)

    def finished(self, nodeid: str) -> None:
        """A test is over (its teardown is reported; called by the run's recorder)."""
        self.running.pop(nodeid, None)
        if time.monotonic() - self.written_at >= PROGRESS_EVERY_SECONDS:
            self.write(force=True)

    def write(self, *, force: bool = False) -> None:
        """Hand the progress to the store's committer, unless written a moment ago."""
        now = time.monotonic()
        if not force and now - self.written_at < PROGRESS_EVERY_SECONDS:
            return
        state = self.config.stash.get(STATE, None)
        if state is None or not (state.settings.enabled or state.recorded):
            return  # no test of this run is recorded (yet): the store is not ours to open
        if state.settings.store_path is None or state.store_failed:
            return
        self.written_at = now
        with guard(self.config, "writing the run's progress"):
            running = sorted(self.running.items(), key=lambda item: item[1])[:RUNNING_SHOWN]
            self.idle_written = not running
            self.send(
                {
                    "collected": self.collected,
                    "running": [{"nodeid": n, "started_at": t} for n, t in running],
                    "ts": time.time(),
                }
            )
