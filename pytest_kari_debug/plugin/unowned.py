"""Records of threads that outlive their test: the run's, never the next test's.

A thread started in a test's call or teardown phase and still alive when the test has ended
is a stray. What it logs through stdlib logging from then on is counted and kept (bounded) as
the run's ``unowned`` records: in the JSON and report section ``unowned``, in the store as log
records of the run with no test, and in the terminal summary. Threads started while fixtures
are set up (a session-scoped server, say) serve later tests by design and are left alone.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import pytest

from ..logger import KariLogHandler, iso_utc
from .state import KariState, guard

#: Unowned records kept for the outputs; the rest are counted.
KEEP = 1000
KEY = "unowned"
_BEFORE = pytest.StashKey[list[threading.Thread]]()
_UNOWNED = pytest.StashKey["Unowned"]()


class Unowned:
    """The run's unowned records: counted, the first :data:`KEEP` kept."""

    def __init__(self) -> None:
        self.count = 0
        self.kept: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.threads: dict[str, str] = {}  # thread name -> the test it was started in

    def add(self, record: logging.LogRecord, born_in: str) -> None:
        """Keep one stdlib *record* of a stray thread started in test *born_in*."""
        self.count += 1
        if len(self.kept) >= KEEP:
            return
        try:
            message = record.getMessage()
        except Exception as exc:  # the user's format arguments
            message = f"{record.msg!s} <unformattable: {type(exc).__name__}>"
        self.kept.append(
            {
                "ts": record.created,
                "timestamp": iso_utc(record.created),
                "level": record.levelname,
                "message": message,
                "name": record.name,
                "thread": record.threadName,
                "started_in": born_in,
                "origin": "stdlib",
            }
        )

    def section(self) -> dict[str, Any]:
        """The ``unowned`` section of the run's outputs."""
        return {
            "records": self.count,
            "kept": len(self.kept),
            "dropped": self.count - len(self.kept),
            "threads": dict(self.threads),
            "logs": list(self.kept),
        }


def install(config: pytest.Config, handler: KariLogHandler) -> None:
    """Send *handler*'s records of stray threads to the run's unowned records."""
    unowned = config.stash[_UNOWNED] = Unowned()
    handler.unowned = unowned.add


class StrayThreads:
    """Notes the threads each test leaves running (steps of the core's per-test wrappers,
    added with the log capture)."""

    def __init__(self, handler: KariLogHandler) -> None:
        self.handler = handler

    def note_threads(self, item: pytest.Item) -> None:
        """The threads alive once the fixtures are set up: none of them is the test's."""
        item.stash[_BEFORE] = threading.enumerate()

    def note_strays(self, item: pytest.Item) -> None:
        """Threads the test started that are still alive after its teardown are strays."""
        before = item.stash.get(_BEFORE, None)
        if before is not None:
            del item.stash[_BEFORE]  # pytest keeps every item to the end of the run
            now = threading.enumerate()
            if now != before:  # threads compare by identity: the common case is cheap
                with guard(item.config, "noting threads that outlive their test"):
                    self._note_strays(item, set(before), now)

    def _note_strays(
        self, item: pytest.Item, before: set[threading.Thread], now: list[threading.Thread]
    ) -> None:
        unowned = item.config.stash[_UNOWNED]
        current = threading.current_thread()
        for thread in now:
            if thread not in before and thread is not current:
                self.handler.strays[thread] = item.nodeid
                unowned.threads[thread.name] = item.nodeid


def finish(config: pytest.Config, state: KariState, sections: dict[str, Any]) -> None:
    """Add the ``unowned`` section, the store's records and the summary line."""
    unowned = config.stash.get(_UNOWNED, None)
    if unowned is None or not unowned.count:
        return
    sections[KEY] = unowned.section()
    started = sorted(set(unowned.threads.values()))
    state.summary_lines.append(
        f"unowned: {unowned.count} log record(s) from {len(unowned.threads)} thread(s) that"
        f" outlived their test (started in {', '.join(started[:3])}"
        f"{' ...' if len(started) > 3 else ''}); not counted in any test"
    )
    if state.store is not None and state.run_id is not None:
        with guard(config, "writing unowned records to the store"):
            extension = state.settings.extension_id or "unowned"
            state.store.write_records("log", extension, list(unowned.kept), run_id=state.run_id)
