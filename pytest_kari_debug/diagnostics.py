"""The one list of internal problems, kept by components, managers and the plugin's run."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import overload


class Diagnostics(Sequence[str]):
    """Internal problems, each kept once and at most *limit* of them (the first: they name the
    cause; later ones are mostly its echoes). Safe to add to from any thread."""

    __slots__ = ("_items", "_lock", "_seen", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: list[str] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def add(self, message: str) -> bool:
        """Keep *message* unless it is known or the list is full; whether it was new."""
        with self._lock:
            if message in self._seen:
                return False
            if len(self._items) < self.limit:
                self._items.append(message)
                self._seen.add(message)
            return True

    def latest(self, count: int = 3) -> str:
        """The last *count* problems kept, as one line (a health check's detail)."""
        return "; ".join(self._items[-count:])

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __contains__(self, message: object) -> bool:
        return message in self._seen

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Diagnostics):
            return self._items == other._items
        if isinstance(other, (list, tuple)):
            return self._items == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Diagnostics({self._items!r}, limit={self.limit})"
