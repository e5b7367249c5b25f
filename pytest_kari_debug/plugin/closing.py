"""Closing the run's store at the end of the process's own run, beside pytest's last work.

Closing a SQLite store checkpoints: the last commits are copied from the WAL into the file,
both are synced to disk and the WAL is deleted, milliseconds of waiting on the disk. After the
plugin's ``pytest_unconfigure`` pytest still collects garbage twice over its whole heap (the
unraisable-exception check, then its cleanup), which needs no disk. When pytest is the
process's program, the store closes on a thread of its own meanwhile (SQLite works without
Python's lock), and the process waits for it at exit, before the interpreter shuts down: the
store is closed, checkpointed and synced as before, when the process ends.

A run nested in another (pytester's in-process runs) or started by ``pytest.main()`` in a
program that goes on closes its store there and then: its caller may read the file next.
"""

from __future__ import annotations

import atexit
import sys
import threading

from ..storage import Store
from .exitheap import nested_in_a_run, runs_as_the_program

#: Seconds the process waits at exit for its store to close (a hung file system must not
#: keep it alive; SQLite recovers an unfinished checkpoint at the next open).
CLOSE_WAIT_S = 30.0


class _Closing:
    """A store closing on a thread of its own; :meth:`wait` at the process's exit."""

    __slots__ = ("failure", "label", "store", "thread")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.label = store.label
        self.failure: BaseException | None = None
        self.thread = threading.Thread(
            target=self._close, name="kari-debug-store-close", daemon=True
        )

    def _close(self) -> None:
        try:
            self.store.close()
        except BaseException as exc:  # said at exit: pytest's report is written by then
            self.failure = exc

    def wait(self) -> None:
        try:
            self.thread.join(CLOSE_WAIT_S)
        except KeyboardInterrupt:  # Ctrl-C at exit: SQLite recovers at the next open
            return
        if self.thread.is_alive():
            sys.stderr.write(
                f"kari-debug: store {self.label}: still closing after {CLOSE_WAIT_S:.0f} s;"
                " its last checkpoint is left to the next run that opens it\n"
            )
        elif self.failure is not None:
            failure = self.failure
            sys.stderr.write(
                f"kari-debug: store {self.label}: closing failed:"
                f" {type(failure).__name__}: {failure}\n"
            )


def close_store(store: Store) -> None:
    """Close *store*: beside pytest's last work when pytest is the process's program (the
    process waits for it at exit), else now."""
    if not runs_as_the_program() or nested_in_a_run():
        store.close()
        return
    closing = _Closing(store)
    try:
        closing.thread.start()
    except RuntimeError:  # "can't start new thread": close here
        store.close()
        return
    atexit.register(closing.wait)
