"""Each finished test in the store for every reader before the next test's call phase starts.

Everything is written on pytest's thread, as each test is kept (after its teardown reported,
between tests). No writer thread or process: a hand-over costs more than the write (thread
switches, the GIL: 35 to 130 µs a test; a writer process missed the target, reverted in
3b9b792).

A SQLite store gets the run's row and the first test at once, then the tests in groups: the
kept tests are committed together, in one transaction, when the oldest of them was kept
:data:`GROUP_COMMIT_S` ago or :data:`GROUP_COMMIT_TESTS` of them wait, at the end of the run,
and before this process reads the store (its history, gates, error groups: all at the end of
the run, after :func:`close_committer`). The bounds are checked as each test is kept: that
commit runs between two tests, as the earlier one's teardown is reported, outside every
window that times a test (pytest's durations, ``kari_overhead_ms``), as the commit per test
did. When no test is kept for that long (a long test after short ones), the
:class:`GroupTimer`'s thread commits the group (its CPU time the plugin's own). Until then
each
test is in the run's journal (:mod:`pytest_kari_debug.journal`: one ``write`` before the next
test starts, which survives the process being killed, as a WAL commit with
``synchronous=NORMAL`` does), and every reader opening the store first imports the journal's
tests the store lacks (:mod:`pytest_kari_debug.storage.journals`; the unique key of a test
makes the writer's later commit of the same test add nothing): every reader sees every
finished test (one that stays open, such as the dashboard, sees what was there when it opened
and each commit since, a second behind at most; one that may not write the store sees the
commits alone). The group's commit notes the journal's length as stored, so that readers
decode only the lines past it. A group costs about what one test's commit did (a WAL commit:
~6 locks and 2 writes a page), shared by its tests. The checkpoints (copying the WAL into the
file and syncing both to disk, milliseconds each few hundred tests) run on a thread of their
own (:meth:`~pytest_kari_debug.storage.Store.checkpoint_in_background`).

A PostgreSQL store's commit is a round trip to the server, and its journal folder is local to
the writer's machine (no reader elsewhere sees it): each test is a transaction of its own,
sent without waiting (:meth:`~pytest_kari_debug.storage.Store.submit_tests`); the server
commits it while the next test's setup runs, and the result is read as that test's setup is
reported, before its call phase (:class:`CommitBarrier`): outside every window that times the
test, pytest's own durations too (the wait is the plugin's cost, counted in that test's
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
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from .. import selfcost
from ..backends import is_url
from ..exceptions import StoreError, StoreTimeoutError
from ..journal import RunJournal
from ..storage import Store
from .sharing import confirm_batch, note_store_failure, store_failing, write_batch
from .state import KariState

#: Seconds a kept test waits at most for the commit of its group to a SQLite store (checked
#: as each test is kept): the run's journal holds it meanwhile, which every reader opening
#: the store imports, and which survives the process being killed.
GROUP_COMMIT_S = 1.0
#: Kept tests committed together at most (SQLite).
GROUP_COMMIT_TESTS = 256
#: Seconds the group's timer sleeps at least between two looks at the group.
GROUP_TIMER_MIN_WAIT_S = 0.05
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
        #: A SQLite store's tests are committed in groups (a server's each by itself).
        self.grouped = not is_url(state.settings.store_path)
        #: Kept tests not committed yet (SQLite), and when the first of them was kept.
        self.group: list[tuple[dict[str, Any], str]] = []
        self.group_since = 0.0
        #: The run's journal and the length of its lines up to the group's last test: what
        #: committing the group makes stored (a line appended since is not in the group).
        self.group_mark: tuple[str, int] | None = None
        #: Held around the group and its commit (pytest's thread, the group's timer).
        self.lock = threading.Lock()
        self.timer: GroupTimer | None = None

    def add_test(self, record: dict[str, Any], text: str) -> None:
        """Write a finished test's record (and its store JSON): a SQLite store commits it
        with its group (:meth:`flush`), a PostgreSQL store's commit is confirmed by
        :meth:`settle` (see the module's docstring)."""
        if self.in_flight:
            self.settle()
        if not self.grouped or self.timer is None:  # the first test opens the store
            self._guarded(self._write_test, record, text)
            if self.grouped and self.checkpointing:
                try:
                    self.timer = GroupTimer(self)
                except RuntimeError as exc:  # "can't start new thread": a commit per test
                    self.grouped = False
                    self.state.diagnose(f"store: {exc}; each test is committed by itself")
            return
        with self.lock:
            group = self.group
            group.append((record, text))
            self.group_mark = self._journal_mark()
            now = time.monotonic()
            if len(group) == 1:
                self.group_since = now
            if len(group) >= GROUP_COMMIT_TESTS or now - self.group_since >= GROUP_COMMIT_S:
                self._flush()

    def flush(self, *, due: bool = False) -> None:
        """Commit the group of kept tests now (SQLite): at its bounds, at the end of the run
        and before this process reads the store (with *due*: only if its oldest test waited
        :data:`GROUP_COMMIT_S`, the group's timer asking)."""
        with self.lock:
            if not due or time.monotonic() - self.group_since >= GROUP_COMMIT_S:
                self._flush()

    def _flush(self) -> None:
        group = self.group
        if group:
            self.group = []
            self._guarded(self._write_group, group)

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
        """At the end of the run: commit the last group, confirm the last commit."""
        if self.timer is not None:
            self.timer.stop()
        if self.group:
            self.flush()
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
        sent = write_batch(state, store, [(record, text)], self._journal_mark())
        if store.kind == "sqlite":
            if sent:
                confirm_batch(state, store, sent, None)  # committed already
        else:
            self.in_flight = sent

    def _write_group(self, group: list[tuple[dict[str, Any], str]]) -> None:
        state = self.state
        store = self.open_store()
        if store is None or state.run_id is None:
            return  # the store failed: the journal keeps the tests, the end names them
        sent = write_batch(state, store, group, self.group_mark)
        if sent:
            confirm_batch(state, store, sent, None)  # committed already

    def _journal_mark(self) -> tuple[str, int] | None:
        """The run's journal beside the store and the length of its lines kept so far (on
        pytest's thread, as a test is kept): what a commit of every kept test makes stored
        (readers decode only past it)."""
        journal = self.state.journal
        if isinstance(journal, RunJournal) and not journal.temporary:
            return journal.path.name, journal.size
        return None

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


class GroupTimer:
    """Commits a SQLite store's group once its oldest test waited :data:`GROUP_COMMIT_S`
    when no test is kept meanwhile (a long test after short ones), on a thread of its own:
    its CPU time is the plugin's own, never the running test's
    (:mod:`pytest_kari_debug.selfcost`). It wakes once per bound at most, never for a test:
    a test kept wakes no thread (a hand-over to a thread at each test costs more than the
    commit)."""

    def __init__(self, committer: StoreCommitter) -> None:
        self.committer = committer
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="kari-debug-group-commit", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        committer, stop = self.committer, self._stop
        with selfcost.own_thread():
            while True:
                wait = GROUP_COMMIT_S
                if committer.group:
                    wait = committer.group_since + GROUP_COMMIT_S - time.monotonic()
                with selfcost.idle():
                    stopped = stop.wait(max(wait, GROUP_TIMER_MIN_WAIT_S))
                if stopped:
                    return
                if committer.group:
                    committer.flush(due=True)

    def stop(self) -> None:
        """End the thread (after the commit under way)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(COMMIT_WAIT_S)


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
