"""Who may use the API: token (bearer or one-time-link cookie), Host check, same-origin writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import framework_client, live_manager

from pytest_kari_debug.api import PREFIX, ApiServer, create_app
from pytest_kari_debug.api import security as security_module
from pytest_kari_debug.api.security import host_names, is_loopback
from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.manager import ExtensionDebugManager

TOKEN = "kari-test-token-0123456789abcdef"
EXT = "sec-ext"
BASE = "http://127.0.0.1:8765"


@pytest.fixture
def manager() -> Iterator[ExtensionDebugManager]:
    """A started manager with one active alert."""
    found = live_manager(EXT)
    yield found
    found.stop()


@pytest.fixture
def guarded(manager: ExtensionDebugManager) -> Iterator[Any]:
    """A test client of an app that needs TOKEN."""
    app = create_app(manager, token=TOKEN, include_registry=False)
    with framework_client(app, BASE) as client:
        yield client


@pytest.fixture
def open_client(manager: ExtensionDebugManager) -> Iterator[Any]:
    """A test client of an app without a token (loopback only)."""
    with framework_client(create_app(manager, include_registry=False), BASE) as client:
        yield client


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_with_a_token_every_request_needs_it(guarded: Any) -> None:
    """Without the token (or with a wrong one) every path is 401; with it, 200."""
    for path in ("/", f"{PREFIX}/managers", f"{PREFIX}/dashboard/{EXT}/logs", "/openapi.json"):
        refused = guarded.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "needs its token" in refused.json()["detail"]
        assert (
            guarded.get(path, headers=_bearer("kari-test-token-0123456789abcdeX")).status_code
            == 401
        )
        assert guarded.get(path, headers=_bearer()).status_code == 200, path
    assert guarded.get("/", headers={"authorization": TOKEN}).status_code == 401  # no scheme


def test_tokens_are_compared_in_constant_time(
    guarded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token check goes through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    real = security_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security_module.hmac, "compare_digest", spy)
    assert guarded.get(f"{PREFIX}/managers", headers=_bearer("x" * 40)).status_code == 401
    assert (b"x" * 40, TOKEN.encode()) in calls


def test_one_time_link_sets_the_cookie_once(guarded: Any) -> None:
    """A login link sets an HttpOnly SameSite cookie, then the code is spent."""
    app = guarded.app
    code = app.login_code()
    first = guarded.get(f"/auth?code={code}", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"kari_debug_token_8765={TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert guarded.get("/").status_code == 200  # the client keeps the cookie
    guarded.cookies.clear()
    assert guarded.get(f"/auth?code={code}", follow_redirects=False).status_code == 401
    assert guarded.get("/auth?code=guessed", follow_redirects=False).status_code == 401
    assert guarded.get("/").status_code == 401
    wrong = {"cookie": "kari_debug_token_8765=not-the-token-at-all-1234"}
    assert guarded.get("/", headers=wrong).status_code == 401


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io:8765", "[::2]:8765", ""]
)
def test_host_header_must_name_this_server(open_client: Any, host: str) -> None:
    """A Host that is not a bound name is refused (DNS rebinding)."""
    response = open_client.get(f"{PREFIX}/managers", headers={"host": host})
    assert response.status_code == 400
    assert "Host header" in response.json()["detail"]


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765"])
def test_loopback_names_are_accepted(open_client: Any, host: str) -> None:
    """The loopback names reach a server bound to 127.0.0.1."""
    assert open_client.get(f"{PREFIX}/managers", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "http://127.0.0.1:9999"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ],
)
def test_cross_origin_state_changes_are_refused(
    open_client: Any, manager: ExtensionDebugManager, headers: dict[str, str]
) -> None:
    """A POST from another origin is 403 and changes nothing."""
    [alert] = manager.get_alert_manager().get_active_alerts()
    response = open_client.post(f"{PREFIX}/alerts/{EXT}/{alert.alert_id}/resolve", headers=headers)
    assert response.status_code == 403
    assert "cross-origin" in response.json()["detail"]
    assert manager.get_alert_manager().get_active_alerts() == [alert]
    stop = open_client.post(f"{PREFIX}/managers/{EXT}/stop", headers=headers)
    assert stop.status_code == 403
    assert manager.running is True
    [group] = manager.get_error_tracker().get_groups()
    path = f"{PREFIX}/dashboard/{EXT}/errors/{group.fingerprint}/resolve"
    assert open_client.post(path, headers=headers).status_code == 403
    assert group.status == "unresolved"


def test_same_origin_and_non_browser_posts_are_served(
    open_client: Any, manager: ExtensionDebugManager
) -> None:
    """The page's own origin (and a client sending no Origin) may change state."""
    [alert] = manager.get_alert_manager().get_active_alerts()
    same = {"origin": BASE, "sec-fetch-site": "same-origin"}
    response = open_client.post(f"{PREFIX}/alerts/{EXT}/{alert.alert_id}/resolve", headers=same)
    assert response.status_code == 200
    assert open_client.post(f"{PREFIX}/health/{EXT}/check").status_code == 200


def test_no_cors_headers_are_ever_sent(open_client: Any) -> None:
    """Other origins get no Access-Control-Allow-Origin, not even on a preflight."""
    origin = {"origin": "http://evil.example"}
    responses = [
        open_client.get(f"{PREFIX}/managers", headers=origin),
        open_client.options(
            f"{PREFIX}/managers/{EXT}/stop",
            headers={**origin, "access-control-request-method": "POST"},
        ),
        open_client.get("/", headers=origin),
    ]
    for response in responses:
        assert not any(k.lower().startswith("access-control-") for k in response.headers)
    assert responses[1].status_code == 405


def test_every_response_carries_the_protective_headers(open_client: Any) -> None:
    """nosniff, no framing and no referrer on pages, data and refusals alike."""
    for response in (
        open_client.get("/"),
        open_client.get(f"{PREFIX}/managers"),
        open_client.get(f"{PREFIX}/managers", headers={"host": "evil.example"}),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_binding_another_address_needs_a_token() -> None:
    """create_app refuses a non-loopback host without a token; ApiServer generates one."""
    with pytest.raises(ConfigurationError, match="needs a token"):
        create_app(host="0.0.0.0", include_registry=False)
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        create_app(token="short", include_registry=False)
    server = ApiServer(host="0.0.0.0", include_registry=False)  # never started: nothing bound
    assert server.token_generated
    assert server.token is not None
    assert len(server.token) >= 32
    lines = server.announce()
    assert sum(server.token in line for line in lines) == 1
    assert any("/auth?code=" in line for line in lines)
    local = ApiServer(include_registry=False)
    assert (local.token, local.announce()) == (None, ["kari-debug dashboard: http://127.0.0.1:0/"])


def test_wildcard_binds_accept_this_machines_names_only() -> None:
    """A 0.0.0.0 bind accepts the host name and interface addresses, not any name."""
    names = host_names("0.0.0.0", ["ci-box.example"])
    assert {"localhost", "127.0.0.1", "ci-box.example"} <= names
    assert "evil.example" not in names
    assert "0.0.0.0" not in names
    assert is_loopback("127.0.0.2")
    assert is_loopback("::1")
    assert not is_loopback("10.0.0.1")


def test_real_server_refuses_requests_without_the_token() -> None:
    """Over real HTTP on 127.0.0.1, a token-protected server refuses a request without it."""
    manager = ExtensionDebugManager("token-ext")
    try:
        server = ApiServer(manager=manager, token=TOKEN, include_registry=False)
        with server, httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get(f"{PREFIX}/managers").status_code == 401
            ok = client.get(f"{PREFIX}/managers", headers=_bearer())
            assert ok.status_code == 200
            assert ok.json()["managers"][0]["extension_id"] == "token-ext"
    finally:
        manager.stop()
