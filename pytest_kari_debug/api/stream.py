"""Server-sent events of new log records: one event per record, bounded per client.

Each client gets a pump task that follows the log and a bounded queue between the pump and
the socket: a reader slower than the log loses the oldest queued events, and the next event
it receives says how many (``event: dropped``). Every record carries its cursor as the event
id, so a reconnecting ``EventSource`` resumes after the last record it saw (``Last-Event-ID``).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import field
from typing import Any

from ..dashboard import ExtensionDebugDashboard
from ..sharedmethods import dataclass
from ..sources import LogBatch
from ..values import encode_text, repair, to_jsonable

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FIELD_BAD = re.compile(r"[\r\n\x00]")


def sse_event(data: str, *, event: str | None = None, event_id: str | None = None) -> bytes:
    """One server-sent event: each line of *data* on its own ``data:`` line.

    A line break inside *data* can therefore never end the event or start a field;
    *event* and *event_id* lose any CR, LF or NUL (the id field ignores an id with NUL).
    """
    lines = []
    if event_id is not None:
        lines.append(f"id: {_FIELD_BAD.sub('', event_id)}")
    if event is not None:
        lines.append(f"event: {_FIELD_BAD.sub('', event)}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return encode_text("\n".join(lines) + "\n\n")


def sse_comment(text: str) -> bytes:
    """A comment line (ignored by clients; keeps proxies and idle timers from closing)."""
    return encode_text(f": {_LINE_BREAK.sub(' ', text)}\n\n")


@dataclass
class StreamSettings:
    """Pace and bounds of the log streams of one app."""

    poll_seconds: float = 0.1
    heartbeat_seconds: float = 15.0
    queue_size: int = 1000
    max_streams: int = 32
    retry_ms: int = 2000
    closing: threading.Event = field(default_factory=threading.Event)
    open_streams: int = 0


@dataclass
class _ClientQueue:
    """The events waiting for one client; the oldest go first when it is full."""

    size: int
    items: deque[tuple[str, dict[str, Any]]] = field(default_factory=deque)
    lost: int = 0
    missed: int = 0

    def put(self, batch: LogBatch) -> bool:
        for cursor, record in zip(batch.cursors, batch.records, strict=True):
            if len(self.items) >= self.size:
                self.items.popleft()
                self.lost += 1
            self.items.append((cursor, record))
        self.missed += batch.missed
        return bool(batch.records or batch.missed)


def _dumps(record: Any) -> str:
    """JSON text a browser can parse: NaN, infinities and what a writer cannot write (an
    over-long integer) are repaired by the one serializer."""
    try:
        return json.dumps(record, default=to_jsonable, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(repair(record), default=to_jsonable, ensure_ascii=False)


async def log_events(
    dashboard: ExtensionDebugDashboard,
    settings: StreamSettings,
    *,
    first: LogBatch,
    level: str | None,
    query: str | None,
) -> AsyncIterator[bytes]:
    """The byte chunks of one client's stream, until it leaves or the server closes.

    *first* is the opening batch (backlog or resumed records), read before the response
    starts so that nothing logged after the client sees the headers can be missed.
    """
    queue = _ClientQueue(settings.queue_size)
    wake = asyncio.Event()
    failure: list[BaseException] = []
    cursor = first.cursor
    if queue.put(first):
        wake.set()

    async def pump() -> None:
        nonlocal cursor
        while not settings.closing.is_set():
            await asyncio.sleep(settings.poll_seconds)
            try:
                batch = await asyncio.to_thread(
                    dashboard.logs_after, cursor, level=level, query=query
                )
            except Exception as exc:  # the source broke (store gone...): end this stream
                failure.append(exc)
                wake.set()
                return
            cursor = batch.cursor
            if queue.put(batch):
                wake.set()

    settings.open_streams += 1
    task = asyncio.create_task(pump())
    try:
        yield f"retry: {settings.retry_ms}\n".encode() + sse_comment("kari-debug log stream")
        last_sent = time.monotonic()
        while not settings.closing.is_set():
            try:
                await asyncio.wait_for(wake.wait(), timeout=settings.poll_seconds)
            except asyncio.TimeoutError:
                if time.monotonic() - last_sent >= settings.heartbeat_seconds:
                    yield sse_comment(f"heartbeat {time.time():.3f}")
                    last_sent = time.monotonic()
                continue
            wake.clear()
            if failure:
                problem = failure[0]
                yield sse_event(
                    _dumps({"detail": f"the log source failed: {type(problem).__name__}"}),
                    event="error",
                )
                return
            # The pump keeps filling the queue while a slow client holds up a send: a drop
            # notice goes out before the first record after the gap.
            while queue.items or queue.lost or queue.missed:
                if queue.lost or queue.missed:
                    lost, missed = queue.lost, queue.missed
                    queue.lost = queue.missed = 0
                    yield sse_event(
                        _dumps({"count": lost + missed, "slow_client": lost, "buffer": missed}),
                        event="dropped",
                    )
                    continue
                event_id, record = queue.items.popleft()
                yield sse_event(_dumps(record), event="log", event_id=event_id)
            last_sent = time.monotonic()
    finally:
        task.cancel()
        settings.open_streams -= 1
