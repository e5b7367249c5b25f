"""``ApiServer``: uvicorn serving the API in a daemon thread, with the security it needs.

Binds 127.0.0.1 by default. Binding any other address needs a token: one is generated when
none is given, and :meth:`ApiServer.announce` gives the lines to print once (the token and a
one-time login link for the browser).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError
from ..manager import ExtensionDebugManager
from .app import create_app
from .hub import ManagerSource
from .security import ApiSecurity, check_token, is_loopback, new_token
from .stream import StreamSettings

DEFAULT_HOST = "127.0.0.1"


class ApiServer:
    """The API of live managers and a store, served from a background thread.

    ``start()`` returns once the socket accepts connections; ``stop()`` ends open log
    streams and the server within a few seconds. Nothing here keeps the process alive.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        token: str | None = None,
        manager: ExtensionDebugManager | None = None,
        managers: ManagerSource | None = None,
        store_path: str | Path | None = None,
        extension_id: str | None = None,
        allowed_hosts: Iterable[str] = (),
        include_registry: bool = True,
        stream: StreamSettings | None = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            msg = f"port must be a whole number from 0 to 65535, got {port!r}"
            raise ConfigurationError(msg)
        if not isinstance(host, str) or not host.strip():
            msg = f"host must be an address or host name, got {host!r}"
            raise ConfigurationError(msg)
        self.host = host.strip()
        self.token_generated = False
        token = check_token(token)
        if token is None and not is_loopback(self.host):
            token = new_token()
            self.token_generated = True
        self.token = token
        self.app: ApiSecurity = create_app(
            manager,
            managers=managers,
            extension_id=extension_id,
            store_path=store_path,
            token=token,
            host=self.host,
            allowed_hosts=allowed_hosts,
            include_registry=include_registry,
            stream=stream,
        )
        self.port = port
        self._socket: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL (with the bound port once started)."""
        host = self.host
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_unspecified:
                host = "127.0.0.1" if ":" not in host else "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def login_url(self) -> str | None:
        """A one-time login link for the browser (``None`` without a token)."""
        if self.token is None:
            return None
        return f"{self.url}/auth?code={self.app.login_code()}"

    def announce(self) -> list[str]:
        """Lines to print once the server runs: its URL, and how to get in with the token."""
        lines = [f"kari-debug dashboard: {self.url}/"]
        if self.token is not None:
            lines.append(f"  open in a browser (one-time link): {self.login_url()}")
            if self.token_generated:
                lines.append(f"  API token (send 'Authorization: Bearer <token>'): {self.token}")
        return lines

    def start(self, timeout: float = 10.0) -> ApiServer:
        """Bind and serve in a daemon thread; returns once serving (RuntimeError otherwise)."""
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Accepted connections inherit it: a response's head and body go out at once
            # instead of waiting out the client's delayed ACK (about 40 ms per request).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            msg = f"cannot serve on {self.host}:{self.port}: {exc.strerror or exc}"
            raise RuntimeError(msg) from exc
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            # No dictConfig: the server runs inside the user's process (a pytest run), whose
            # logging is the user's; uvicorn's records reach its loggers' usual handlers.
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=2,
            access_log=False,
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"kari-debug-api[{self.port}]",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                self.stop()
                msg = f"the API server on {self.host}:{self.port} stopped while starting"
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                self.stop()
                msg = f"the API server on {self.host}:{self.port} did not start in {timeout:g} s"
                raise RuntimeError(msg)
            time.sleep(0.01)
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """End open streams and the server; waits at most *timeout* seconds."""
        state = getattr(self.app, "app_state", None)
        if state is not None:
            state.stream.closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(1.0)
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> ApiServer:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
