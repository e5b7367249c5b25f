"""Who may talk to the API: bound host names, a bearer token or cookie, same-origin writes.

:class:`ApiSecurity` is a plain ASGI middleware, so it guards streaming responses too:

* the ``Host`` header must name the address the server is bound to (DNS rebinding);
* with a token, every request carries it as ``Authorization: Bearer <token>`` or in the
  cookie that a one-time login link sets; both are compared in constant time;
* a request that changes state (anything but GET, HEAD and OPTIONS) from a browser must come
  from the page's own origin: a cross-origin ``Origin`` or ``Sec-Fetch-Site`` is refused;
* no CORS headers are ever sent, so other origins cannot read responses.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..exceptions import ConfigurationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGIN_PATH = "/auth"
COOKIE_PREFIX = "kari_debug_token_"
LOGIN_CODE_TTL_S = 600.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """Whether *host* (a name or an address) only reaches this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def check_token(token: str | None) -> str | None:
    """*token* when it is long enough to guess hard; a ConfigurationError otherwise."""
    if token is None:
        return None
    if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH or not token.isprintable():
        msg = (
            f"the API token must be printable text of at least {MIN_TOKEN_LENGTH} characters"
            " (leave it out to have one generated)"
        )
        raise ConfigurationError(msg)
    if any(c.isspace() or c in ';,"\\' for c in token):
        msg = "the API token must not hold spaces, quotes, backslashes, commas or semicolons"
        raise ConfigurationError(msg)
    return token


def host_names(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a ``Host`` header may carry for a server bound to *bind_host*.

    Loopback binds accept the loopback names; a wildcard bind (``0.0.0.0``, ``::``) accepts
    this machine's host name, its fully qualified name and every interface address.
    """
    names = {bind_host.strip("[]").lower(), *LOOPBACK_NAMES}
    try:
        wildcard = ipaddress.ip_address(bind_host.strip("[]")).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        names.discard(bind_host.strip("[]").lower())
        names.update({socket.gethostname().lower(), socket.getfqdn().lower()})
        try:
            import psutil

            for addresses in psutil.net_if_addrs().values():
                for address in addresses:
                    if address.family in (socket.AF_INET, socket.AF_INET6):
                        names.add(address.address.split("%")[0].lower())
        except Exception:  # no interface list: the names above still work
            pass
    names.update(name.strip().strip("[]").lower() for name in extra if name.strip())
    return frozenset(names)


def _split_host(value: str) -> tuple[str, str | None]:
    """``("example.org", "8080")`` from a Host header value (IPv6 in brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return "", None
        rest = value[end + 1 :]
        return value[1:end], rest[1:] if rest.startswith(":") else None
    host, _, port = value.partition(":")
    return host, port or None


class ApiSecurity:
    """The ASGI middleware guarding an app (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        allowed_hosts: frozenset[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.token = check_token(token)
        self.allowed_hosts = allowed_hosts
        self.clock = clock
        self._codes: dict[str, float] = {}
        self._lock = threading.Lock()

    # One-time login links ----------------------------------------------------------------
    def login_code(self) -> str:
        """A code for one login link (``/auth?code=...``): valid once, for ten minutes."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            now = self.clock()
            self._codes = {c: t for c, t in self._codes.items() if t > now}
            self._codes[code] = now + LOGIN_CODE_TTL_S
        return code

    def _use_code(self, code: str) -> bool:
        with self._lock:
            now = self.clock()
            found = None
            for known, expires in self._codes.items():
                if hmac.compare_digest(known.encode(), code.encode()) and expires > now:
                    found = known
            if found is None:
                return False
            del self._codes[found]
            return True

    # Checks ------------------------------------------------------------------------------
    def _token_ok(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        assert self.token is not None
        expected = self.token.encode()
        authorization = headers.get(b"authorization", b"")
        scheme, _, value = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), expected):
            return True
        cookie = headers.get(b"cookie")
        if cookie:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(cookie.decode("latin-1"))
            except CookieError:
                return False
            morsel = jar.get(_cookie_name(scope))
            if morsel is not None and hmac.compare_digest(morsel.value.encode(), expected):
                return True
        return False

    def _origin_ok(self, headers: dict[bytes, bytes], host: bytes) -> bool:
        fetch_site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
        if fetch_site and fetch_site not in ("same-origin", "none"):
            return False
        origin = headers.get(b"origin")
        if origin is None:
            return True  # not a browser's cross-origin request (curl, scripts): the token guards
        text = origin.decode("latin-1").strip().lower()
        if text == "null":
            return False
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        return parts.netloc == host.decode("latin-1").strip().lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await _refuse(send, 403, "only HTTP requests are served")
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"")
        name, _ = _split_host(host.decode("latin-1"))
        if not name or name not in self.allowed_hosts:
            await _refuse(
                send,
                400,
                f"Host header {host.decode('latin-1')!r} does not name this server;"
                " use the address it is bound to",
            )
            return
        method = scope.get("method", "GET").upper()
        if method not in SAFE_METHODS and not self._origin_ok(headers, host):
            await _refuse(send, 403, "cross-origin requests may not change state")
            return
        if self.token is not None:
            if scope.get("path") == LOGIN_PATH and method == "GET":
                await self._login(scope, send)
                return
            if not self._token_ok(scope, headers):
                await _refuse(
                    send,
                    401,
                    "this server needs its token: send 'Authorization: Bearer <token>' or"
                    " open the login link printed when it started",
                    extra=[(b"www-authenticate", b'Bearer realm="kari-debug"')],
                )
                return
        await self.app(scope, receive, _with_headers(send))

    async def _login(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        code = (query.get("code") or [""])[0]
        if not code or not self._use_code(code):
            await _refuse(send, 401, "this login link is unknown, used or expired")
            return
        assert self.token is not None
        cookie = (
            f"{_cookie_name(scope)}={self.token}; Path=/; HttpOnly; SameSite=Strict;"
            f" Max-Age={7 * 24 * 3600}"
        )
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", b"/"),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"cache-control", b"no-store"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


#: Sent with every response: no sniffing, no framing, no referrer (login links hold a code).
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def _with_headers(send: Send) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers") or []}
            extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            message["headers"] = [*(message.get("headers") or []), *extra]
        await send(message)

    return sender


def _cookie_name(scope: Scope) -> str:
    """The auth cookie's name: per port, as cookies are shared by every port of a host."""
    server = scope.get("server") or ("", 0)
    return f"{COOKIE_PREFIX}{server[1] or 0}"


async def _refuse(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *SECURITY_HEADERS,
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
