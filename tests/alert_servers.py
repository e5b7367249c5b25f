"""Real servers on 127.0.0.1 for the alerting tests: a webhook receiver and an SMTP server."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class WebhookServer:
    """An HTTP server that records every POST; *behaviour* says how it answers."""

    #: ok, fail-first (500 then 200), hang (never answers), status:<code>,
    #: retry-after:<header> (429 with that Retry-After header, then 200)
    behaviour: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until *count* requests arrived (or *timeout*); return them."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
        return list(self.requests)

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received, in order."""
        return [json.loads(r["body"]) for r in self.requests]


def _handler(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8")
            with server.arrived:
                server.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "at": time.monotonic(),
                    }
                )
                count = len(server.requests)
                server.arrived.notify_all()
            if server.behaviour == "hang":
                server.release.wait(30)
                return
            status, retry_after = 200, None
            if server.behaviour == "fail-first" and count == 1:
                status = 500
            elif server.behaviour.startswith("status:"):
                status = int(server.behaviour.split(":", 1)[1])
            elif server.behaviour.startswith("retry-after:") and count == 1:
                status, retry_after = 429, server.behaviour.split(":", 1)[1]
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@contextmanager
def webhook_server(
    behaviour: str = "ok", path: str = "/hooks/T000/SECRET-TOKEN"
) -> Iterator[WebhookServer]:
    """Run a :class:`WebhookServer` on a free port of 127.0.0.1 for the block."""
    server = WebhookServer(behaviour)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SmtpServer:
    """An aiosmtpd server that records every message."""

    host: str
    port: int
    messages: list[dict[str, Any]]
    logins: list[str]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.messages)


class _Recorder:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content,
            }
        )
        return "250 Message accepted for delivery"


def self_signed_certificate(directory: Path, openssl: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@contextmanager
def smtp_server(
    *,
    tls: tuple[Path, Path] | None = None,
    users: dict[str, str] | None = None,
) -> Iterator[SmtpServer]:
    """Run aiosmtpd on a free port; with *tls* it offers STARTTLS, with *users* it needs login."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    messages: list[dict[str, Any]] = []
    logins: list[str] = []
    kwargs: dict[str, Any] = {}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        kwargs.update(tls_context=context, require_starttls=True)
    if users is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> AuthResult:
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            login = auth_data.login.decode()
            password = auth_data.password.decode()
            ok = users.get(login) == password
            if ok:
                logins.append(login)
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_require_tls=tls is not None)
    else:
        kwargs.update(auth_require_tls=False)
    port = free_port()
    controller = Controller(_Recorder(messages), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, messages, logins)
    finally:
        controller.stop()
