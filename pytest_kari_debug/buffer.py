"""Bounded record buffers shared by the components.

A :class:`RecordBuffer` keeps the newest ``limit`` records of a component in a ring, counts
what it had to drop, and keeps a second, equally bounded slice per open debug session so that a
session's records can be handed over at its end without scanning the ring. A full session slice
keeps the session's first ``limit // 2`` records and its newest ``limit - limit // 2``: how a test
began and what happened just before it ended (what explains a failure); the middle is dropped
and counted.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_TAIL_LOCK = threading.Lock()
#: A session no longer open (not in a buffer's slices).
_CLOSED: Any = object()


class SessionSlice(Generic[T]):
    """One session's records: the first ``limit // 2``, then the newest that fit the limit."""

    __slots__ = ("dropped", "head", "head_limit", "tail", "tail_limit")

    def __init__(self, limit: int, first: list[T] | None = None) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        #: (*first*: the session's first record, in a list, when the head holds one.)
        self.head: list[T] = first if first is not None else []
        #: Made by the first record past the head (most sessions never fill their head).
        self.tail: deque[T] | None = None
        self.dropped = 0

    def append(self, record: T) -> None:
        if len(self.head) < self.head_limit:
            self.head.append(record)
            return
        tail = self.tail
        if tail is None:
            tail = self._new_tail()
        if len(tail) == self.tail_limit:
            self.dropped += 1  # the oldest of the tail leaves: a record from the middle
        tail.append(record)

    def _new_tail(self) -> deque[T]:
        tail: deque[T] = deque(maxlen=self.tail_limit)
        with _TAIL_LOCK:  # two threads' first records past the head share one tail
            if self.tail is None:
                self.tail = tail
            return self.tail

    def tail_records(self) -> list[T]:
        """A copy of the newest records past the head."""
        while True:
            try:
                return [] if self.tail is None else list(self.tail)
            except RuntimeError:  # the tail moved under another thread: try again
                continue

    def records(self) -> list[T]:
        """The kept records in the order they were made."""
        return [*self.head, *self.tail_records()]


class RecordBuffer(Generic[T]):
    """A ring of at most *limit* records plus per-session slices of the same bound."""

    __slots__ = ("_appended", "_cleared", "_lock", "_ring", "_sessions", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            msg = f"buffer limit must be >= 0, got {limit!r}"
            raise ValueError(msg)
        self.limit = limit
        self._ring: deque[T] = deque(maxlen=limit)
        #: Open sessions' slices (None: open, without a record yet).
        self._sessions: dict[str, SessionSlice[T] | None] = {}
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
                bucket.append(record)
            elif session_id in self._sessions:  # else not an open session
                self._first_record(session_id, record)

    def _first_record(self, session_id: str, record: T) -> None:
        """File *record* in the slice of the open *session_id*, made by its first record."""
        with self._lock:  # two threads' first records of one session share one slice
            bucket = self._sessions.get(session_id, _CLOSED)
            if bucket is None:
                if self.limit > 1:  # (the slice's head takes it)
                    self._sessions[session_id] = SessionSlice(self.limit, [record])
                    return
                bucket = self._sessions[session_id] = SessionSlice(self.limit)
            elif bucket is _CLOSED:
                return  # closed meanwhile
        bucket.append(record)

    def open_session(self, session_id: str) -> None:
        """Start keeping a slice for *session_id* (made by its first record: most sessions
        of most components have none)."""
        self._sessions.setdefault(session_id, None)

    def peek_session(self, session_id: str) -> list[T]:
        """Return a copy of the records of an open session so far."""
        bucket = self._sessions.get(session_id)
        return [] if bucket is None else bucket.records()

    def close_session(self, session_id: str) -> tuple[list[T], int]:
        """Stop keeping *session_id*'s slice; return its records and how many it dropped."""
        with self._lock:
            bucket = self._sessions.pop(session_id, None)
        if bucket is None:  # (most sessions of most components: no record)
            return [], 0
        # A copy: a thread that looked the slice up before the close may still append to it.
        return bucket.records(), bucket.dropped

    def close_session_parts(self, session_id: str) -> tuple[list[T], list[T], int]:
        """Stop keeping *session_id*'s slice; return its first records, its newest records and
        how many were dropped between them."""
        with self._lock:
            bucket = self._sessions.pop(session_id, None)
        if bucket is None:
            return [], [], 0
        # Copies: a thread that looked the slice up before the close may still append to it.
        return list(bucket.head), bucket.tail_records(), bucket.dropped

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
