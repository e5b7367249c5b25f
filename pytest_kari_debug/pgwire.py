"""PostgreSQL on the wire for the store: a connection whose every wait has a bound, and
writes sent without waiting (libpq's pipeline mode) whose results are read later.

psycopg waits for a server without a limit: a server that accepts and never answers would hold
its caller for ever. A :class:`BoundedConnection` gives up after its ``bound_s`` seconds with
:class:`NoAnswer` (the caller closes it: an answer may still be on its way).
:class:`PendingWrites` sends a write (its statements and a Sync: one implicit transaction,
committed at the Sync or rolled back whole) and returns; its result is read by
:meth:`PendingWrites.settle`, by a deadline, while the caller does other work (the round trip
overlaps the next test's setup).

Imported only when a PostgreSQL store is opened (psycopg is an optional dependency). It knows
nothing of the store: :mod:`pytest_kari_debug.backends` turns its errors into the store's.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import pq


class WriteFailed(Exception):
    """A write sent in pipeline mode failed (it was rolled back whole), or the connection did.

    :attr:`refused` maps the index of each write the server refused (among those settled
    together, in the order sent) to the server's reason: a value it cannot hold or a
    constraint (SQLSTATE classes 22 and 23), which sending the same write again would meet
    again. :attr:`failed` counts the writes that failed for any reason.
    """

    def __init__(self, message: str, refused: dict[int, str] | None = None, failed: int = 0):
        super().__init__(message)
        self.refused = refused or {}
        self.failed = failed


class NoAnswer(WriteFailed):
    """The server did not answer in time, or ended a statement for its own timeout."""


#: SQLSTATEs of a statement the server ended after its statement or lock timeout.
SERVER_TIMEOUTS = ("57014", "55P03")
#: SQLSTATE classes of a value refused: a data exception (22), a constraint violated (23).
REFUSALS = ("22", "23")
#: Seconds between psycopg's wake-ups while it waits (to notice Ctrl-C), as its default.
_WAIT_INTERVAL_S = 0.1


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends after :attr:`bound_s` s."""

    #: ``None``: no bound (psycopg's own behaviour).
    bound_s: float | None = None

    def wait(
        self, gen: Any, interval: float = _WAIT_INTERVAL_S, timeout: float | None = None
    ) -> Any:
        bound = self.bound_s if timeout is None else timeout
        started = time.monotonic()
        try:
            return super().wait(gen, interval, bound)
        except Exception as exc:
            late = bound is not None and time.monotonic() - started >= bound
            if late and driver_error(exc):
                raise NoAnswer(f"no answer within {bound:g} s") from None
            raise


def encoded(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format (the server infers its type from the column)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return repr(value).encode() if isinstance(value, float) else str(value).encode()


class PendingWrites:
    """Writes sent on a connection in pipeline mode, their results not read yet.

    While any is pending the connection belongs to this object: its owner calls
    :meth:`settle` before anything else uses the connection.
    """

    def __init__(self, connection: BoundedConnection) -> None:
        self.connection = connection
        #: Writes sent whose result is not read yet (each ends with a Sync).
        self.pending = 0

    def send(self, statements: Iterable[tuple[bytes, Sequence[bytes | None]]]) -> None:
        """Send *statements* (SQL with ``$n`` parameters, and their parameters) as one
        transaction; return without waiting for the server."""
        pgconn = self.connection.pgconn
        try:
            if not self.pending:
                pgconn.nonblocking = 1
                pgconn.enter_pipeline_mode()
            for sql, params in statements:
                pgconn.send_query_params(sql, params)
            pgconn.pipeline_sync()
            self.pending += 1
            pgconn.flush()  # what the socket does not take now goes in settle()
        except Exception as exc:
            if not driver_error(exc):
                raise
            self.pending = 0
            raise WriteFailed(_message(exc)) from None

    def settle(self, deadline: float | None) -> None:
        """Read the result of every pending write, waiting until *deadline* (monotonic) at
        most; raise :class:`WriteFailed` if a write failed (that write was rolled back whole,
        the writes after it are still committed; :attr:`WriteFailed.refused` says which the
        server refused), :class:`NoAnswer` after the deadline (the connection is then in an
        unknown state: close it)."""
        pgconn = self.connection.pgconn
        problems: dict[int, tuple[str, str, str]] = {}  # write index: _problem()
        written = 0
        try:
            while self.pending:
                flushing = pgconn.flush() != 0
                while flushing or pgconn.is_busy():
                    self._wait(pgconn.socket, flushing, deadline)
                    pgconn.consume_input()
                    flushing = flushing and pgconn.flush() != 0
                result = pgconn.get_result()
                if result is None:
                    continue  # the end of one statement's results
                status = result.status
                if status == pq.ExecStatus.PIPELINE_SYNC:
                    self.pending -= 1
                    written += 1
                elif status == pq.ExecStatus.FATAL_ERROR and written not in problems:
                    problems[written] = _problem(result)
            pgconn.exit_pipeline_mode()
            pgconn.nonblocking = 0
        except NoAnswer:
            self.pending = 0
            raise
        except Exception as exc:
            if not driver_error(exc):
                raise
            self.pending = 0
            raise WriteFailed(_message(exc)) from None
        if problems:
            first = problems[min(problems)][0]
            if any(code in SERVER_TIMEOUTS for _, _, code in problems.values()):
                raise NoAnswer(first)
            refused = {i: why for i, (_, why, code) in problems.items() if code[:2] in REFUSALS}
            raise WriteFailed(first, refused, len(problems))

    @staticmethod
    def _wait(socket: int, writing: bool, deadline: float | None) -> None:
        poller = select.poll()
        poller.register(socket, select.POLLIN | (select.POLLOUT if writing else 0))
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not poller.poll(None if left is None else left * 1000):
            raise NoAnswer("no answer by the deadline")


def driver_error(exc: BaseException) -> bool:
    """Whether psycopg raised *exc*. By module, not class: a psycopg imported again (as
    pytester's in-process runs do) has new classes while its compiled part still raises the
    first import's."""
    return type(exc).__module__.split(".")[0] == "psycopg"


def _problem(result: Any) -> tuple[str, str, str]:
    """A failed statement's full message, its short reason (the primary message and the
    SQLSTATE: not the row, which the full message may show whole), and its SQLSTATE."""
    field = pq.DiagnosticField
    code = (result.error_field(field.SQLSTATE) or b"").decode("ascii", "replace")
    primary = (result.error_field(field.MESSAGE_PRIMARY) or b"").decode("utf-8", "replace")
    message = (result.error_message or b"").decode("utf-8", "replace")
    return " ".join(message.split()), f"{primary} (SQLSTATE {code})", code


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
