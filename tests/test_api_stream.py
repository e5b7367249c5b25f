"""The server-sent log stream, read by real HTTP clients from a real server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import Event, parse_sse, split_lines

from pytest_kari_debug.api import PREFIX, ApiServer, StreamSettings, sse_event
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.storage import Store

EXT = "stream-ext"
DEADLINE_S = 20.0


@pytest.fixture
def manager() -> Iterator[ExtensionDebugManager]:
    """A manager whose logger keeps 20,000 records."""
    found = ExtensionDebugManager(EXT, configuration=DebugConfiguration(max_log_entries=20_000))
    yield found
    found.stop()


def _server(manager: ExtensionDebugManager, **settings: object) -> ApiServer:
    stream = StreamSettings(**{"poll_seconds": 0.05, **settings})  # type: ignore[arg-type]
    return ApiServer(manager=manager, include_registry=False, stream=stream).start()


def _events(response: httpx.Response) -> Iterator[Event]:
    return parse_sse(split_lines(response.iter_raw()))


def _next_logs(events: Iterator[Event], count: int) -> list[Event]:
    found = []
    deadline = time.monotonic() + DEADLINE_S
    while len(found) < count:
        assert time.monotonic() < deadline, f"only {len(found)} of {count} log events arrived"
        event = next(events)
        if event.event == "log":
            found.append(event)
    return found


def test_sse_event_puts_every_line_on_its_own_data_field() -> None:
    """Text with CR, LF or CRLF cannot end the event or start a field of its own."""
    raw = sse_event(
        "a\n\nevent: alert\r\ndata: forged\rid: 9\n", event="lo\ng", event_id="4\r2\x00"
    )
    assert raw == (
        b"id: 42\nevent: log\ndata: a\ndata: \ndata: event: alert\ndata: data: forged\n"
        b"data: id: 9\ndata: \n\n"
    )
    [event] = list(parse_sse(split_lines(iter([raw]))))
    assert (event.event, event.id) == ("log", "42")
    assert event.data == "a\n\nevent: alert\ndata: forged\nid: 9\n"


def test_a_record_holding_newlines_cannot_forge_events(manager: ExtensionDebugManager) -> None:
    """A log message written to forge an event arrives as one log event, intact."""
    forged = 'done\n\nevent: alert\ndata: {"forged": true}\r\nid: 999\r\rretry: 1'
    with _server(manager) as server, httpx.Client(timeout=DEADLINE_S) as client:
        url = f"{server.url}{PREFIX}/dashboard/{EXT}/logs/stream"
        with client.stream("GET", url) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _events(response)
            manager.get_logger().warning(forged, note="line\n\ndata: x")
            manager.get_logger().info("after")
            first, second = _next_logs(events, 2)
    record = json.loads(first.data)
    assert (record["message"], record["fields"]) == (forged, {"note": "line\n\ndata: x"})
    assert first.id is not None
    assert first.id != "999"
    assert json.loads(second.data)["message"] == "after"


def test_reconnecting_with_last_event_id_resumes_after_it(manager: ExtensionDebugManager) -> None:
    """Last-Event-ID resumes right after the last record seen, records logged meanwhile too."""
    log = manager.get_logger()
    with _server(manager) as server, httpx.Client(timeout=DEADLINE_S) as client:
        url = f"{server.url}{PREFIX}/dashboard/{EXT}/logs/stream"
        with client.stream("GET", url) as response:
            events = _events(response)
            for index in range(3):
                log.info(f"record {index}")
            seen = _next_logs(events, 2)
        assert [json.loads(e.data)["message"] for e in seen] == ["record 0", "record 1"]
        log.info("record 3")
        log.info("record 4")
        headers = {"Last-Event-ID": seen[-1].id or ""}
        with client.stream("GET", url, headers=headers) as response:
            events = _events(response)
            log.info("record 5")
            resumed = _next_logs(events, 4)
        assert [json.loads(e.data)["message"] for e in resumed] == [
            "record 2", "record 3", "record 4", "record 5",
        ]  # fmt: skip
        with client.stream("GET", url, params={"last_event_id": "l0:7", "backlog": 1}) as response:
            [latest] = _next_logs(_events(response), 1)  # an unknown cursor: the backlog
        assert json.loads(latest.data)["message"] == "record 5"


def test_a_slow_reader_loses_the_oldest_events_and_is_told_how_many(
    manager: ExtensionDebugManager,
) -> None:
    """A reader that does not keep up gets a dropped event; received + dropped = written."""
    total = 3000
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with _server(manager, queue_size=20) as server, sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(DEADLINE_S)
        sock.connect(("127.0.0.1", server.port))
        path = f"{PREFIX}/dashboard/{EXT}/logs/stream"
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        received = b""
        while b"kari-debug log stream" not in received:
            received += sock.recv(4096)
        padding = "x" * 4000
        # About 12 MB logged before the reader takes a byte: far more than the socket buffers
        # and the queue of 20 hold, so the pump must drop whether it reads the burst as it
        # comes or after it.
        for index in range(total):
            manager.get_logger().info(f"burst {index} {padding}")
        manager.get_logger().info("the end")

        def body() -> Iterator[bytes]:
            yield received.split(b"\r\n\r\n", 1)[1]
            while chunk := sock.recv(1 << 16):  # each read bounded by the socket's timeout
                yield chunk

        logs: list[str] = []
        drops: list[dict[str, int]] = []
        for event in parse_sse(split_lines(body())):  # complete events only, to the last one
            if event.event == "dropped":
                drops.append(json.loads(event.data))
            elif event.event == "log":
                logs.append(json.loads(event.data)["message"])
                if logs[-1] == "the end":
                    break
    assert logs[-1:] == ["the end"]
    assert drops, "a slow reader must be told about the events it lost"
    assert sum(d["slow_client"] for d in drops) > 0
    assert len(logs) + sum(d["count"] for d in drops) == total + 1
    numbers = [int(m.split()[1]) for m in logs[:-1]]
    assert numbers == sorted(numbers)  # what arrives is in order, the oldest went first


def test_a_reader_that_keeps_up_loses_nothing(manager: ExtensionDebugManager) -> None:
    """With room in its queue, a reader receives every record in order."""
    with _server(manager, queue_size=10_000) as server, httpx.Client(timeout=DEADLINE_S) as client:
        url = f"{server.url}{PREFIX}/dashboard/{EXT}/logs/stream"
        with client.stream("GET", url) as response:
            events = _events(response)
            for index in range(500):
                manager.get_logger().info(f"steady {index}")
            got = _next_logs(events, 500)
    assert [json.loads(e.data)["message"] for e in got] == [f"steady {i}" for i in range(500)]


def test_filters_backlog_and_heartbeats(manager: ExtensionDebugManager) -> None:
    """level and query filter the stream; backlog sends recent records; idle streams beat."""
    log = manager.get_logger()
    log.error("old payment failure")
    log.info("old payment note")
    with _server(manager, heartbeat_seconds=0.2) as server, httpx.Client(timeout=5) as client:
        url = f"{server.url}{PREFIX}/dashboard/{EXT}/logs/stream"
        params = {"level": "error", "query": "PAYMENT", "backlog": 5}
        with client.stream("GET", url, params=params) as response:
            events = _events(response)
            [old] = _next_logs(events, 1)
            log.error("new timeout")
            log.info("new payment info")
            log.critical("new payment outage")
            [new] = _next_logs(events, 1)
            beats = []
            while len(beats) < 2:
                event = next(events)
                assert event.event == "comment", event
                beats.extend(c for c in event.comments if c.startswith("heartbeat"))
    assert json.loads(old.data)["message"] == "old payment failure"
    assert json.loads(new.data)["message"] == "new payment outage"


def test_streams_end_cleanly_on_disconnect_and_on_stop(manager: ExtensionDebugManager) -> None:
    """A client leaving ends its stream; stopping the server ends the others; a cap holds."""
    server = _server(manager, max_streams=1)
    settings = server.app.app_state.stream  # type: ignore[attr-defined]
    url = f"{server.url}{PREFIX}/dashboard/{EXT}/logs/stream"
    try:
        with httpx.Client(timeout=DEADLINE_S) as client:
            with client.stream("GET", url) as response:
                chunks = response.iter_raw()  # kept: a dropped iterator closes the response
                next(chunks)
                assert settings.open_streams == 1
                refused = client.get(url)
                assert refused.status_code == 503
                assert "too many open log streams" in refused.json()["detail"]
            deadline = time.monotonic() + DEADLINE_S
            while settings.open_streams and time.monotonic() < deadline:
                time.sleep(0.02)
            assert settings.open_streams == 0
            with client.stream("GET", url) as response:
                chunks = response.iter_raw()
                next(chunks)
                stopper = threading.Thread(target=server.stop)
                stopper.start()
                rest = b"".join(chunks)  # ends when the server closes the stream
                stopper.join(DEADLINE_S)
                assert not stopper.is_alive()
        assert b"data:" not in rest
        assert not server.running
    finally:
        server.stop()


def test_store_backed_stream_follows_new_records(tmp_path: Path) -> None:
    """An extension known only from the store streams the records written to it."""
    store = Store(tmp_path / "kari.db")
    store.write_records("log", "stored-ext", [{"ts": 1.0, "level": "INFO", "message": "before"}])
    server = ApiServer(
        store_path=tmp_path / "kari.db", include_registry=False,
        stream=StreamSettings(poll_seconds=0.05),
    ).start()  # fmt: skip
    try:
        with httpx.Client(timeout=DEADLINE_S) as client:
            url = f"{server.url}{PREFIX}/dashboard/stored-ext/logs/stream"
            with client.stream("GET", url, params={"backlog": 1}) as response:
                events = _events(response)
                [before] = _next_logs(events, 1)
                store.write_records(
                    "log", "stored-ext", [{"ts": 2.0, "level": "INFO", "message": "after"}]
                )
                [after] = _next_logs(events, 1)
        assert [json.loads(e.data)["message"] for e in (before, after)] == ["before", "after"]
        assert after.id is not None
        assert after.id.startswith("s:")
    finally:
        server.stop()
        store.close()
