"""Bounded record buffers shared by the components.

A :class:`RecordBuffer` keeps the newest ``limit`` records of a component in a ring, counts
what it had to drop, and keeps a second, equally bounded list per open debug session so that a
session's records can be handed over at its end without scanning the ring.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class RecordBuffer(Generic[T]):
    """A ring of at most *limit* records plus per-session slices of the same bound."""

    __slots__ = ("_appended", "_cleared", "_lock", "_ring", "_sessions", "limit", "session_drops")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            msg = f"buffer limit must be >= 0, got {limit!r}"
            raise ValueError(msg)
        self.limit = limit
        self._ring: deque[T] = deque(maxlen=limit)
        self._sessions: dict[str, list[T]] = {}
        self.session_drops: dict[str, int] = {}
        # itertools.count is atomic under the GIL: exact totals from many threads, no lock.
        self._appended = itertools.count()
        self._cleared = 0
        self._lock = threading.Lock()

    def append(self, record: T, session_id: str | None = None) -> None:
        """Store *record*, and file it under *session_id* when that session is open."""
        next(self._appended)
        self._ring.append(record)
        if session_id is not None:
            bucket = self._sessions.get(session_id)
            if bucket is not None:
                if len(bucket) < self.limit:
                    bucket.append(record)
                else:
                    self.session_drops[session_id] = self.session_drops.get(session_id, 0) + 1

    def open_session(self, session_id: str) -> None:
        """Start keeping a slice for *session_id*."""
        self._sessions.setdefault(session_id, [])

    def peek_session(self, session_id: str) -> list[T]:
        """Return a copy of the records of an open session so far."""
        return list(self._sessions.get(session_id, ()))

    def close_session(self, session_id: str) -> tuple[list[T], int]:
        """Stop keeping *session_id*'s slice; return its records and how many it dropped."""
        records = self._sessions.pop(session_id, [])
        return records, self.session_drops.pop(session_id, 0)

    @property
    def total(self) -> int:
        """How many records were ever appended."""
        # Reading an itertools.count consumes a value; compensate through its repr.
        return int(repr(self._appended)[6:-1])

    @property
    def dropped(self) -> int:
        """How many records the ring pushed out because it was full."""
        return max(0, self.total - self._cleared - len(self._ring))

    def clear(self) -> None:
        """Forget every record kept in the ring (drops stay counted)."""
        with self._lock:
            self._cleared += len(self._ring)
            self._ring.clear()

    def snapshot(self) -> list[T]:
        """Return a stable copy of the ring, oldest first."""
        while True:
            try:
                return list(self._ring)
            except RuntimeError:  # mutated by another thread while copying: try again
                continue

    def __iter__(self) -> Iterator[T]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        return len(self._ring)
