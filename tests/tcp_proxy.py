"""A TCP proxy on 127.0.0.1 that a test can cut and restore: a database server going away."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards connections on a loopback port to *upstream*; :meth:`cut` drops every
    connection and refuses new ones, :meth:`hang` keeps them (and accepts new ones) but
    forwards nothing, :meth:`restore` forwards again on the same port.

    A line ``cut``, ``hang`` or ``restore`` sent to :attr:`control_port` does the same from
    anywhere (a test file run by pytester, say).
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = 0
        self._control = socket.create_server(("127.0.0.1", 0))
        self.control_port = int(self._control.getsockname()[1])
        self._closed = False
        #: Nothing is forwarded: a server that stopped answering (its kernel still accepts
        #: connections and acknowledges data).
        self.hung = False
        self._held: list[socket.socket] = []
        #: The port, bound while cut (see cut()).
        self._reserved: socket.socket | None = None
        threading.Thread(target=self._serve_control, daemon=True).start()
        self.restore()

    def hang(self) -> None:
        self.hung = True

    def restore(self) -> None:
        self.hung = False
        with self._lock:
            if self._listener is not None:
                return
            listener, self._reserved = self._reserved or self._bound(), None
            listener.listen(16)
            self.port = int(listener.getsockname()[1])
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _bound(self) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        return sock

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        held, self._held = self._held, []
        for sock in [*([listener] if listener else []), *connections, *held]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if listener is not None and not self._closed:
            # The port stays bound, not listening (a connection is refused): left free, the
            # system could give it to an outgoing connection, and restore() could not bind it.
            with self._lock:
                self._reserved = self._bound()

    def close(self) -> None:
        self._closed = True
        self.cut()
        if self._reserved is not None:
            self._reserved.close()
        self._control.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.hung:
                with self._lock:
                    self._held.append(client)  # open, never answered
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)  # an idle connection stays open
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _serve_control(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._control.accept()
            except OSError:
                return
            with conn:
                command = conn.recv(64).decode().strip()
                if command == "cut":
                    self.cut()
                elif command == "hang":
                    self.hang()
                elif command == "restore":
                    self.restore()
                conn.sendall(b"ok\n")

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.hung:
                    target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def send(control_port: int, command: str) -> None:
    """Send *command* (``cut``, ``hang``, ``restore``) to a proxy's control port; wait for it."""
    with socket.create_connection(("127.0.0.1", control_port), timeout=10) as conn:
        conn.sendall(command.encode() + b"\n")
        conn.recv(16)
