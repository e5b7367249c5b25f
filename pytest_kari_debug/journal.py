"""The journal of a run: each finished test's record as one JSON line, appended as it finishes.

One ``write`` per test, no fsync, before the next test starts: like the store's WAL
(``synchronous=NORMAL``) it survives the process being killed (SIGKILL, ``os._exit``, a
segfault), not the machine losing power. A SQLite store gets the tests in groups, a second
apart at most (:mod:`pytest_kari_debug.plugin.committer`); until then the journal beside it
is where they are, and every reader opening the store imports from it the tests the store
lacks (:mod:`pytest_kari_debug.storage.journals`): every reader sees every finished test. The
plugin streams the run's outputs from it at the end (the run's records are never all in
memory) and deletes it. It also holds the tests of a store that failed. A journal left behind
by a killed run is imported by the next reader of the store or run of the plugin
(:func:`recover_journals`), its run marked ``crashed`` with every finished test present.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .storage import ErrorGrouper, Store, dumps
from .storage.journals import SUFFIX, decode_line, journal_folder


def journal_dir(location: Path | str, rootdir: Path) -> Path:
    """Where the journals of the runs of the store at *location* are kept: beside a SQLite
    file, under *rootdir*'s ``.kari-debug`` for a server's URL (one folder per URL)."""
    if isinstance(location, Path):
        return journal_folder(location)
    digest = hashlib.sha256(location.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return rootdir / ".kari-debug" / f"runs-{digest}"


def journal_name(header: dict[str, Any]) -> str:
    """The file name of a new journal: the run id (made a safe file name) and this process's
    own part. Shards of one run on one machine share the folder of their store, each with a
    journal of its own; the header, not the name, tells which run a journal is."""
    run = re.sub(r"[^A-Za-z0-9._-]", "_", str(header.get("uuid") or "run"))[:128]
    return f"{run}.{os.getpid()}-{os.urandom(4).hex()}{SUFFIX}"


def read_lines(path: Path) -> Iterator[Any]:
    """Decode the complete lines of journal *path* in order, header first (a line cut short by
    a kill, the last one, is skipped)."""
    with open(path, "rb") as handle:
        for line in handle:
            if line.endswith(b"\n"):
                yield decode_line(line)


class RunRecords:
    """The test records of a run, handed out one at a time (never all in memory at once).

    Iterating decodes each record in the order the tests finished, then applies every
    function of :attr:`transforms` to it (a feature amending records at the end of the run:
    the JSON and the report see the amended records); ``len`` is the count.
    """

    def __init__(self) -> None:
        self.count = 0
        self.transforms: list[Callable[[dict[str, Any]], None]] = []

    def texts(self) -> Iterator[bytes]:
        """Each record's JSON text (UTF-8) as written."""
        raise NotImplementedError

    def append(self, text: str) -> None:
        """Add one test record (its :func:`~pytest_kari_debug.storage.dumps` text)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        transforms = self.transforms
        for text in self.texts():
            record = decode_line(text)
            for transform in transforms:
                transform(record)
            yield record

    def __contains__(self, item: object) -> bool:
        return any(record == item for record in self)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The record at *index* (read up to it: iterate instead when you want many)."""
        position = index + self.count if index < 0 else index
        if not 0 <= position < self.count:
            msg = f"test record index {index} out of range ({self.count} records)"
            raise IndexError(msg)
        return next(itertools.islice(iter(self), position, None))

    def remove(self) -> None:
        """Let go of the records."""


def line_of(text: str) -> bytes:
    """One line's bytes: what the standard library wrote (``dumps`` starts it with a newline)
    starts with a space instead, which JSON allows and which tells the reader to use it too."""
    if text[:1] == "\n":
        text = " " + text[1:]
    return text.encode("utf-8", "surrogatepass")


class MemoryRecords(RunRecords):
    """Records kept in memory as compact text: where no journal file can be written."""

    def __init__(self) -> None:
        super().__init__()
        self._texts: list[bytes] = []

    def append(self, text: str) -> None:
        self._texts.append(line_of(text))
        self.count += 1

    def texts(self) -> Iterator[bytes]:
        yield from self._texts[: self.count]

    def remove(self) -> None:
        self._texts.clear()


class RunJournal(RunRecords):
    """The journal file of the running run, one line per finished test after a header."""

    def __init__(self, folder: Path | None, header: dict[str, Any]) -> None:
        super().__init__()
        self.temporary = folder is None
        made = Path(tempfile.mkdtemp(prefix="kari-debug-run-")) if folder is None else folder
        made.mkdir(parents=True, exist_ok=True)
        self.path = made / journal_name(header)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        self._fd: int | None = None
        #: Bytes written (the header's and every complete line's): where the next line starts.
        self.size = 0
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except OSError:  # nothing of ours to delete at self.path (another's file, maybe)
            if self.temporary:
                shutil.rmtree(made, ignore_errors=True)
            raise
        try:
            self._write(line_of(dumps({"journal": 1, "host": socket.gethostname(), **header})))
        except OSError:  # a full disk: no empty journal left behind for the next run
            self.remove()
            raise

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            msg = f"journal {str(self.path)!r} is closed"
            raise OSError(msg)
        data += b"\n"
        written = os.write(self._fd, data)
        if written < len(data):  # a signal or a full disk cut it short
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(self._fd, view) :]
        self.size += len(data)

    def append(self, text: str) -> None:
        self._write(line_of(text))
        self.count += 1

    def texts(self) -> Iterator[bytes]:
        remaining = self.count  # what was written when the reader started
        with open(self.path, "rb") as handle:
            handle.readline()  # the header
            for line in handle:
                if remaining <= 0:
                    break
                remaining -= 1
                yield line.rstrip(b"\n")

    def close(self) -> None:
        """Close the file (it stays on disk)."""
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None

    def remove(self) -> None:
        """Close and delete the journal (and its folder when it was a temporary one)."""
        self.close()
        if self.temporary:
            shutil.rmtree(self.path.parent, ignore_errors=True)
        else:
            self.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # only when no other run's journal is left
                self.path.parent.rmdir()


def recover_journals(
    store: Store, folder: Path, error_groups: ErrorGrouper | None = None
) -> list[int]:
    """Import the journals in *folder* left by runs whose process is gone into *store*.

    Tests the store lacks are added; a run with no end recorded is marked ``crashed``; with
    *error_groups*, the run's error groups are counted from its stored tests (a killed run
    never counted its errors) and the journal is deleted. A journal that cannot be read or
    imported stays where it is. Returns the recovered runs' ids.
    """
    return store.import_journals(folder, live=False, error_groups=error_groups)
