"""Each finished test committed to the store before the next test's call phase starts.

A thread of the plugin's own writes the store: the run's row when the first test is kept, then
each finished test in a transaction of its own (or, when several are waiting, one transaction
for them all: a group commit), and the run's progress. It commits while the next test's setup
runs; that test's call phase waits for the commit only if it is not done yet, outside the
test's own-work window (the wait is the plugin's cost, ``kari_overhead_ms``, never the test's).
Under xdist the controller commits each test as its report arrives (workers never wait).

SQLite commits in WAL mode with ``synchronous=NORMAL`` (a commit survives the process being
killed, not the machine losing power). A PostgreSQL commit is a round trip to the server, with
the GIL released meanwhile: the writer thread hides it behind the next test's setup. A SQLite
commit is work in this process that needs the GIL between its C calls: a thread would only
add a hand-over (a thread switch, milliseconds on a busy machine) to it, so pytest's thread
commits each test itself as the test is kept, after its teardown (the writer thread still
opens the store and writes the run's progress). A test thus pays one commit, measured by
``benchmarks/store_commit.py``. A store that fails or hangs never holds the run up: tests
are kept and retried (:func:`~pytest_kari_debug.plugin.sharing.write_batch`), and a commit
slower than :data:`COMMIT_WAIT_S` ends the waiting for the rest of the run (one diagnostic
says so).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

import pytest

from ..exceptions import StoreError
from ..storage import Store
from .sharing import note_store_failure, store_failing, write_batch
from .state import KariState

#: Seconds a test's call phase waits at most for the previous tests' commit.
COMMIT_WAIT_S = 10.0
COMMITTER = pytest.StashKey["StoreCommitter"]()
_BARRIER_PLUGIN = "kari-debug-commit-barrier"


class StoreCommitter:
    """The store's writer thread of one run (controller only), started by its first test."""

    def __init__(
        self, config: pytest.Config, state: KariState, open_store: Callable[[], Store | None]
    ) -> None:
        self.config = config
        self.state = state
        self.open_store = open_store
        self._changed = threading.Condition()
        #: Held while tests are taken and written (by the writer thread, or at the barrier).
        self._writing = threading.Lock()
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
        store = self.state.store
        inline = store is not None and store.kind == "sqlite"
        with self._changed:
            self._tests.append((record, text))
            self.submitted += 1
            if not inline:
                self._changed.notify()
        if not inline:
            self._start()
            return
        with self._writing:
            self._write_waiting(progress=False)

    def set_progress(self, progress: dict[str, Any]) -> None:
        """Write the run's progress next (only the newest waiting progress is written)."""
        with self._changed:
            self._progress = progress
            self._changed.notify()
        self._start()

    def wait(self, timeout: float = COMMIT_WAIT_S) -> bool:
        """Block until every test handed over is written; False after *timeout* seconds."""
        target = self.submitted
        if self.done >= target or self._thread is None:
            return True
        with self._changed:
            return self._changed.wait_for(lambda: self.done >= target, timeout)

    def close(self) -> None:
        """Write what is left and stop the thread (at the end of the run)."""
        thread = self._thread
        if thread is None:
            return
        with self._changed:
            self._closing = True
            self._changed.notify()
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
            with self._changed:
                self._changed.wait_for(
                    lambda: bool(self._tests) or self._progress is not None or self._closing
                )
                closing = self._closing
            with self._writing:
                self._write_waiting(progress=True)
            if closing:
                with self._changed:
                    if not self._tests and self._progress is None:
                        return

    def _write_waiting(self, *, progress: bool) -> None:
        """Take the tests (and the progress) waiting and write them; hold ``_writing``."""
        with self._changed:
            tests, self._tests = self._tests, []
            newest = None
            if progress:
                newest, self._progress = self._progress, None
        try:
            self._write(tests, newest)
        except Exception as exc:  # never let the thread die: the run's tests are kept
            problem = f"{type(exc).__name__}: {exc}"
            self.state.diagnose(f"internal error in writing the store: {problem}")
        finally:
            with self._changed:
                self.done += len(tests)
                self._changed.notify_all()

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
