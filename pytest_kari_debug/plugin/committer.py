"""Each finished test committed to the store before the next test's call phase starts.

A SQLite store is written on pytest's thread, as each test is kept (after its teardown): the
run's row with the first test, then each finished test in a transaction of its own, and the
run's progress. A SQLite commit is work in this process that needs the GIL between its C
calls: a thread would only add hand-overs (thread switches: milliseconds on a busy machine),
so no thread is started for it. SQLite commits in WAL mode with ``synchronous=NORMAL``: a
commit survives the process being killed, not the machine losing power.

A PostgreSQL commit is a round trip to the server with the GIL released meanwhile: a thread of
the plugin's own writes it, while the next test's setup runs (several tests waiting share one
transaction: a group commit). That test's call phase waits for the commit only if it is not
done yet, outside the test's own-work window (the wait is the plugin's cost,
``kari_overhead_ms``, never the test's). Under xdist the controller commits each test as its
report arrives (workers never wait).

A store that fails or hangs never holds the run up: tests are kept and retried
(:func:`~pytest_kari_debug.plugin.sharing.write_batch`), and a commit slower than
:data:`COMMIT_WAIT_S` ends the waiting for the rest of the run (one diagnostic says so).
``benchmarks/store_backends.py`` measures what a test pays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

import pytest

from ..backends import is_url
from ..exceptions import StoreError
from ..storage import Store
from .sharing import note_store_failure, store_failing, write_batch
from .state import KariState

#: Seconds a test's call phase waits at most for the previous tests' commit.
COMMIT_WAIT_S = 10.0
COMMITTER = pytest.StashKey["StoreCommitter"]()
_BARRIER_PLUGIN = "kari-debug-commit-barrier"


class StoreCommitter:
    """The store's writer of one run (controller only), made by its first test: on pytest's
    thread for a SQLite file, on a thread of its own for a PostgreSQL server."""

    def __init__(
        self, config: pytest.Config, state: KariState, open_store: Callable[[], Store | None]
    ) -> None:
        self.config = config
        self.state = state
        self.open_store = open_store
        #: Written on pytest's thread (a SQLite file), rather than by the writer thread.
        self.inline = not is_url(state.settings.store_path)
        lock = threading.Lock()
        #: The writer thread waits on ``_work`` for tests, progress or the end; the barrier on
        #: ``_written`` for commits (two conditions: a commit never wakes the writer itself).
        self._work = threading.Condition(lock)
        self._written = threading.Condition(lock)
        self._tests: list[tuple[dict[str, Any], str]] = []
        self._progress: dict[str, Any] | None = None
        #: Tests handed over and tests written (committed, or kept for a retry).
        self.submitted = 0
        self.done = 0
        self._thread: threading.Thread | None = None
        self._closing = False
        self.waiting = True  # False once a commit took longer than COMMIT_WAIT_S

    # On pytest's thread -------------------------------------------------------------------
    def add_test(self, record: dict[str, Any], text: str) -> None:
        """Hand a finished test's record (and its store JSON) over for its commit: a SQLite
        store's is committed here and now (see the module's docstring)."""
        if self.inline:
            self.submitted += 1
            self._write_guarded([(record, text)], None)
            self.done += 1
            return
        with self._work:
            self._tests.append((record, text))
            self.submitted += 1
            self._work.notify()
        self._start()

    def set_progress(self, progress: dict[str, Any]) -> None:
        """Write the run's progress (next, on the writer thread: only the newest waiting one)."""
        if self.inline:
            self._write_guarded([], progress)
            return
        with self._work:
            self._progress = progress
            self._work.notify()
        self._start()

    def wait(self, timeout: float = COMMIT_WAIT_S) -> bool:
        """Block until every test handed over is written; False after *timeout* seconds."""
        target = self.submitted
        if self.done >= target or self._thread is None:
            return True
        with self._written:
            return self._written.wait_for(lambda: self.done >= target, timeout)

    def close(self) -> None:
        """Write what is left and stop the thread (at the end of the run)."""
        thread = self._thread
        if thread is None:
            return
        with self._work:
            self._closing = True
            self._work.notify()
        thread.join()
        self._thread = None

    def _start(self) -> None:
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(
                target=self._run, name="kari-debug-store-writer", daemon=True
            )
            self._thread.start()

    # On the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._work:
                self._work.wait_for(
                    lambda: bool(self._tests) or self._progress is not None or self._closing
                )
                closing = self._closing
                tests, self._tests = self._tests, []
                progress, self._progress = self._progress, None
            try:
                self._write_guarded(tests, progress)
            finally:
                with self._written:
                    self.done += len(tests)
                    self._written.notify_all()
            if closing:
                with self._work:
                    if not self._tests and self._progress is None:
                        return

    def _write_guarded(
        self, tests: list[tuple[dict[str, Any], str]], progress: dict[str, Any] | None
    ) -> None:
        try:
            self._write(tests, progress)
        except Exception as exc:  # never let the thread die: the run's tests are kept
            problem = f"{type(exc).__name__}: {exc}"
            self.state.diagnose(f"internal error in writing the store: {problem}")

    def _write(
        self, tests: list[tuple[dict[str, Any], str]], progress: dict[str, Any] | None
    ) -> None:
        state = self.state
        if tests:
            store = self.open_store()
            if store is not None and state.run_id is not None:
                write_batch(state, store, tests)
        if progress is not None and not store_failing(state):
            store = self.open_store()
            if store is None or state.run_id is None:
                return
            try:
                store.set_run_progress(state.run_id, progress)
            except StoreError as exc:  # the store went away: one diagnostic at the end
                note_store_failure(state, exc)


class CommitBarrier:
    """Holds a test's call phase until the tests before it are committed (registered with the
    writer thread, on the process that writes the store)."""

    def __init__(self, committer: StoreCommitter) -> None:
        self.committer = committer

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """Wait for the previous tests' commit, outside every window that times the test."""
        committer = self.committer
        if committer.waiting and committer.done < committer.submitted and not committer.wait():
            committer.waiting = False
            state = committer.state
            label = state.store.label if state.store is not None else "(opening)"
            state.diagnose(
                f"store {label}: a commit took longer than {COMMIT_WAIT_S:.0f} s; the run goes"
                " on without waiting for the store (finished tests are still written, and kept"
                " in the run's journal until they are)"
            )
        if committer.state.unwarned:
            committer.state.warn_unwarned()
        return (yield)


def committer_of(
    config: pytest.Config, state: KariState, open_store: Callable[[], Store | None]
) -> StoreCommitter:
    """The run's committer, made (and its barrier registered) at the first call."""
    found = config.stash.get(COMMITTER, None)
    if found is None:
        found = config.stash[COMMITTER] = StoreCommitter(config, state, open_store)
        if not config.pluginmanager.has_plugin(_BARRIER_PLUGIN):
            config.pluginmanager.register(CommitBarrier(found), _BARRIER_PLUGIN)
    return found


def close_committer(config: pytest.Config) -> None:
    """Write the run's last tests and stop the writer thread."""
    found = config.stash.get(COMMITTER, None)
    if found is not None:
        found.close()
        found.state.warn_unwarned()
