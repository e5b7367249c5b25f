"""Each finished test committed to the store before the next test's call phase starts.

Everything is written on pytest's thread, as each test is kept (after its teardown): the
run's row with the first test, then each finished test in a transaction of its own, and the
run's progress. No writer thread: a hand-over to one costs more than the write (thread
switches, the GIL; milliseconds on a busy machine).

A SQLite store commits there and then, in WAL mode with ``synchronous=NORMAL``: a commit
survives the process being killed, not the machine losing power. Its checkpoints (copying the
WAL into the file and syncing both to disk, milliseconds each few hundred tests) run on a
thread of their own (:meth:`~pytest_kari_debug.storage.Store.checkpoint_in_background`).

A PostgreSQL store's commit is a round trip to the server: the test's transaction is sent
without waiting (:meth:`~pytest_kari_debug.storage.Store.submit_tests`), the server commits it
while the next test's setup runs, and the result is read as that test's setup is reported,
before its call phase (:class:`CommitBarrier`): outside every window that times the test,
pytest's own durations too (the wait is the plugin's cost, counted in that test's
``kari_overhead_ms``, never the test's). Under xdist the controller sends each test as its
report arrives and reads the result before it sends the next (workers never wait).

A store that fails never holds the run up: tests are kept and retried
(:func:`~pytest_kari_debug.plugin.sharing.write_batch`). A server that does not answer within
:data:`COMMIT_WAIT_S` (every wait on the connection is bounded, see
:mod:`pytest_kari_debug.pgwire`) is given up for the rest of the run: one diagnostic says so,
the run's journal keeps its tests, and the end of the run names those not stored.
``benchmarks/store_backends.py`` measures what a test pays.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from .. import selfcost
from ..backends import is_url
from ..exceptions import StoreError, StoreTimeoutError
from ..storage import Store
from .sharing import confirm_batch, note_store_failure, store_failing, write_batch
from .state import KariState

#: Seconds the run waits at most for the store's server (each wait on its connection; the
#: server ends a statement blocked by a lock sooner, see ``backends.SERVER_SHARE_OF_BOUND``).
COMMIT_WAIT_S = 10.0
COMMITTER = pytest.StashKey["StoreCommitter"]()
_BARRIER_PLUGIN = "kari-debug-commit-barrier"


class StoreCommitter:
    """The store's writer of one run (controller only, on pytest's thread), made by its first
    test."""

    def __init__(
        self, config: pytest.Config, state: KariState, open_store: Callable[[], Store | None]
    ) -> None:
        self.config = config
        self.state = state
        self.open_store = open_store
        #: Kept tests sent to the server whose commit is not confirmed yet (PostgreSQL).
        self.in_flight = 0
        #: The store checkpoints in the background (asked at the first test).
        self.checkpointing = False

    def add_test(self, record: dict[str, Any], text: str) -> None:
        """Write a finished test's record (and its store JSON): a SQLite store commits it now,
        a PostgreSQL store's commit is confirmed by :meth:`settle` (see the module's
        docstring)."""
        if self.in_flight:
            self.settle()
        self._guarded(self._write_test, record, text)

    def set_progress(self, progress: dict[str, Any]) -> None:
        """Write the run's progress."""
        if self.in_flight:
            self.settle()
        self._guarded(self._write_progress, progress)

    def settle(self) -> None:
        """Confirm the commit of the tests sent (waiting :data:`COMMIT_WAIT_S` at most)."""
        store, sent = self.state.store, self.in_flight
        self.in_flight = 0
        if store is not None and sent:
            self._guarded(confirm_batch, self.state, store, sent, COMMIT_WAIT_S)

    def close(self) -> None:
        """At the end of the run: confirm the last commit."""
        if self.in_flight:
            self.settle()

    def _guarded(self, write: Callable[..., None], *args: Any) -> None:
        try:
            write(*args)
        except StoreTimeoutError as exc:  # checked by confirm_batch; the store's opening
            self._given_up(exc)
        except Exception as exc:  # never let a store's problem end the run: tests are kept
            problem = f"{type(exc).__name__}: {exc}"
            self.state.diagnose(f"internal error in writing the store: {problem}")

    def _given_up(self, exc: StoreError) -> None:
        state = self.state
        note_store_failure(state, exc)
        state.store_hung = True
        state.retry_at = math.inf
        label = state.store.label if state.store is not None else "(opening)"
        state.diagnose(
            f"store {label}: gave up after {COMMIT_WAIT_S:g} s ({exc}); the run goes on"
            " without the store (every test is kept in the run's journal; the end of the run"
            " names the tests not stored)"
        )

    def _write_test(self, record: dict[str, Any], text: str) -> None:
        state = self.state
        store = self.open_store()
        if store is None or state.run_id is None:
            return
        if not self.checkpointing:
            self.checkpointing = True
            try:  # The thread's CPU time is the plugin's, never the running test's.
                store.checkpoint_in_background(selfcost.own_thread, selfcost.idle)
            except StoreError as exc:  # checkpoints stay on this thread; the test is written
                state.diagnose(f"store {store.label}: {exc}; it checkpoints on pytest's thread")
        sent = write_batch(state, store, [(record, text)])
        if store.kind == "sqlite":
            if sent:
                confirm_batch(state, store, sent, None)  # committed already
        else:
            self.in_flight = sent

    def _write_progress(self, progress: dict[str, Any]) -> None:
        state = self.state
        if store_failing(state):
            return
        store = self.open_store()
        if store is None or state.run_id is None:
            return
        try:
            store.set_run_progress(state.run_id, progress)
        except StoreTimeoutError:
            raise
        except StoreError as exc:  # the store went away: one diagnostic at the end
            note_store_failure(state, exc)


class CommitBarrier:
    """Holds a test's call phase until the tests before it are committed (registered on the
    process that writes a PostgreSQL store)."""

    def __init__(self, committer: StoreCommitter) -> None:
        self.committer = committer

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Confirm the previous tests' commit as a test's setup is reported: before its call
        phase, outside every window that times the test (pytest's own durations too)."""
        if report.when != "setup":
            return
        committer = self.committer
        if committer.in_flight:
            from .core import charge_to_plugin  # the running test's figures (core imports us)

            began = time.perf_counter()
            committer.settle()
            charge_to_plugin(time.perf_counter() - began)
        if committer.state.unwarned:
            committer.state.warn_unwarned()


def committer_of(
    config: pytest.Config, state: KariState, open_store: Callable[[], Store | None]
) -> StoreCommitter:
    """The run's committer, made (and its barrier registered) at the first call."""
    found = config.stash.get(COMMITTER, None)
    if found is None:
        found = config.stash[COMMITTER] = StoreCommitter(config, state, open_store)
        # A SQLite store commits as each test is kept: no call phase has anything to wait for
        # (and pytest dispatches one wrapper fewer per test).
        server = is_url(state.settings.store_path)
        if server and not config.pluginmanager.has_plugin(_BARRIER_PLUGIN):
            config.pluginmanager.register(CommitBarrier(found), _BARRIER_PLUGIN)
    return found


def close_committer(config: pytest.Config) -> None:
    """Confirm the run's last commit."""
    found = config.stash.get(COMMITTER, None)
    if found is not None:
        found.close()
        found.state.warn_unwarned()
