"""A SQLite store's test writes committed by a process of its own, beside the test run.

A test's commit costs SQLite about a dozen system calls (the WAL's frames and its locks) and
the B-tree's work: tens of microseconds of pytest's thread at every test. A thread would not
take it off: Python's lock (the GIL) hands over to another thread only when pytest's blocks,
milliseconds later on a busy thread. A process takes it: pytest's thread writes the test's rows
to a pipe (:meth:`WriterProcess.send`) and goes on; the writer commits them with a connection
of its own while the next test's setup runs, and answers one line per write, which the next
test's call phase reads first (:meth:`WriterProcess.answers`). What a commit guarantees does
not change: a test answered is in the store's WAL, which every reader reads.

The writer runs this file with ``python -I -S -c``: the standard library only (no package, no
site-packages), its own configuration in ``argv[1]``. It ignores Ctrl-C (pytest stops, closes
the store, and with it the writer) and ends when told or when its pipe closes (pytest gone).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Bytes of a frame's length prefix (little-endian); a zero length tells the writer to end.
_LENGTH = 4
#: The first answer of a writer whose connection is open.
READY = "ready"
#: The answer to a write committed, as the writer sends it.
_OK_LINE = b'["ok"]\n'
#: :meth:`WriterProcess.answers` of one write committed (shared: never changed).
ONE_OK: list[list[str]] = [["ok"]]


class WriterGone(Exception):
    """The writer process ended, or did not answer in time."""


class WriterProcess:
    """The parent's side: starts the writer, sends it writes, reads its answers."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        if not sys.executable:
            msg = "no Python executable to start"
            raise OSError(msg)
        configuration = json.dumps({"path": str(path), **settings})
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", Path(__file__).read_text("utf-8"), configuration],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )  # fmt: skip
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._out = self.process.stdin.fileno()
        self._in = self.process.stdout.fileno()
        os.set_blocking(self._out, False)
        os.set_blocking(self._in, False)
        self._unread = b""
        #: Whether the writer has its connection open (it answered :data:`READY`).
        self.ready = False
        #: Why the writer could not start (its first answer was a failure), if it could not.
        self.problem: str | None = None
        #: Writes sent and not answered yet.
        self.pending = 0

    def poll_ready(self) -> bool:
        """Whether the writer is ready (reading its first answer if it came); never waits."""
        if not self.ready and self.problem is None:
            lines = self._lines(None, deadline=0.0)
            if lines:
                status, *reason = lines[0]
                self.ready = status == READY
                if not self.ready:
                    self.problem = str(reason[0] if reason else status)
        return self.ready

    def send(self, payload: bytes, wait_s: float) -> None:
        """Send one write (its JSON); the writer answers it in turn. Waits *wait_s* seconds at
        most for room in the pipe (there is room unless the writer stopped reading)."""
        data = len(payload).to_bytes(_LENGTH, "little") + payload
        try:
            written = os.write(self._out, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:  # a broken pipe: the writer ended
            raise WriterGone(self._ended(f"{type(exc).__name__}: {exc}")) from None
        if written < len(data):
            self._write(data[written:], time.monotonic() + wait_s)
        self.pending += 1

    def answers(self, wait_s: float) -> list[list[str]]:
        """The answers to the writes sent, in order (each ``["ok"]``, ``["refused", why]`` or
        ``["failed", why]``), waiting *wait_s* seconds at most."""
        pending, self.pending = self.pending, 0
        if pending == 1 and not self._unread:  # the hot path: one write, answered already
            try:
                chunk = os.read(self._in, 65536)
            except BlockingIOError:
                chunk = b""
            else:
                if not chunk:
                    raise WriterGone(self._ended("its pipe closed"))
            if chunk == _OK_LINE:
                return ONE_OK
            self._unread = chunk
        return self._lines(pending, time.monotonic() + wait_s)

    def close(self, timeout: float) -> int | None:
        """Tell the writer to end and wait *timeout* seconds at most (then end it); its exit
        status."""
        process = self.process
        deadline = time.monotonic() + timeout
        try:
            if process.poll() is None:
                self._write(bytes(_LENGTH), deadline)
                self._until_closed(deadline)  # its pipe closes as it exits: no polling wait
        except (WriterGone, OSError):
            pass
        try:
            return process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
        finally:
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()

    def _until_closed(self, deadline: float) -> None:
        """Read the answers' pipe until the writer closes it (it exits) or *deadline*."""
        while True:
            try:
                if not os.read(self._in, 65536):
                    return
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._in], [], [], left)[0]:
                    return

    def _write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._out, view) :]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:  # a broken pipe: the writer ended
                raise WriterGone(self._ended(f"{type(exc).__name__}: {exc}")) from None
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._out], [], left)[1]:
                raise WriterGone("no answer in time")

    def _lines(self, count: int | None, deadline: float) -> list[list[str]]:
        """*count* answers (``None``: the first, if it came already)."""
        wanted = 1 if count is None else count
        found: list[list[str]] = []
        while True:
            while len(found) < wanted and b"\n" in self._unread:
                line, self._unread = self._unread.split(b"\n", 1)
                found.append(json.loads(line))
            if len(found) >= wanted:
                return found
            try:
                chunk = os.read(self._in, 65536)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    if count is None:
                        return found
                    raise WriterGone("no answer in time") from None
                select.select([self._in], [], [], left)
                continue
            if not chunk:
                raise WriterGone(self._ended("its pipe closed"))
            self._unread += chunk

    def _ended(self, how: str) -> str:
        status = self.process.poll()
        return f"{how} (exit status {status})" if status is not None else how


def _refused(exc: BaseException) -> bool:
    """The database refused the row (writing it again would fail again); as
    ``plugin.sharing.refused_by_database`` judges it on pytest's thread."""
    return isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, OverflowError))


def _write(db: sqlite3.Connection, settings: dict[str, Any], write: Sequence[Any]) -> None:
    """One test: its row, then its records' rows with its id, in one transaction."""
    row, records = write
    if not records:
        db.execute(settings["test_sql"], row)
        return
    db.execute("BEGIN")
    try:
        test_id = db.execute(settings["test_sql"], row).lastrowid
        db.executemany(settings["record_sql"], [(test_id, *record) for record in records])
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


#: Seconds between two looks at the pipe while tests keep coming: a write then wakes nobody (on a
#: virtual machine, waking a process asleep on an idle CPU costs the writing thread ~9 us).
POLL_S = 50e-6
#: Seconds without a write after which the writer sleeps until the next one.
POLL_FOR_S = 0.02


class _Frames:
    """The writes sent, read from the pipe as they come (looking every :data:`POLL_S` while
    they keep coming, asleep on the pipe after :data:`POLL_FOR_S` without one)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.unread = bytearray()
        self.last = time.monotonic()
        with contextlib.suppress(Exception):  # sleeps of POLL_S, not POLL_S + 50 us of slack
            import ctypes

            ctypes.CDLL(None).prctl(29, 10_000)  # PR_SET_TIMERSLACK, ns

    def next(self) -> bytes | None:
        """The next write's JSON; ``None`` when told to end or the pipe closed."""
        while True:
            unread = self.unread
            if len(unread) >= _LENGTH:
                size = int.from_bytes(unread[:_LENGTH], "little")
                if not size:
                    return None
                if len(unread) >= _LENGTH + size:
                    payload = bytes(unread[_LENGTH : _LENGTH + size])
                    del unread[: _LENGTH + size]
                    self.last = time.monotonic()
                    return payload
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                if time.monotonic() - self.last < POLL_FOR_S:
                    time.sleep(POLL_S)
                else:
                    select.select([self.fd], [], [])
                continue
            if not chunk:
                return None
            unread += chunk


def main() -> int:
    """The writer: open the store, answer ready, then commit each write sent and answer it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = json.loads(sys.argv[1])
    answers = sys.stdout.buffer.raw  # type: ignore[union-attr]

    def answer(*parts: str) -> None:
        line = memoryview(json.dumps(parts).encode() + b"\n")
        while line:
            line = line[answers.write(line) :]

    try:
        db = sqlite3.connect(settings["path"], timeout=settings["busy_s"], isolation_level=None)
        for pragma in settings["pragmas"]:
            db.execute(pragma)
    except Exception as exc:
        answer("failed", f"{type(exc).__name__}: {exc}")
        return 1
    answer(READY)
    frames = _Frames(sys.stdin.fileno())
    while True:
        payload = frames.next()
        if payload is None:
            db.close()
            os._exit(0)  # nothing to finalise: pytest waits for this exit
        try:
            _write(db, settings, json.loads(payload))
        except Exception as exc:
            answer("refused" if _refused(exc) else "failed", f"{type(exc).__name__}: {exc}")
        else:
            answer("ok")


if __name__ == "__main__":
    sys.exit(main())
