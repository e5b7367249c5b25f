"""The live dashboard page in headless Chromium (Debian chromium, driven by playwright)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import live_manager
from conftest import require_tool

from pytest_kari_debug.api import ApiServer, StreamSettings
from pytest_kari_debug.manager import ExtensionDebugManager

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TOKEN = "page-test-token-0123456789abcdef"
WAIT_MS = 10_000


def _until(check: Any, what: str) -> None:
    """Poll *check* from here (the page's CSP rightly forbids the eval wait_for_function uses)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _levels(opened: Any) -> list[str]:
    return opened.locator("#logs li").evaluate_all("rows => rows.map(r => r.dataset.level)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, shared by the tests of this module."""
    executable = require_tool(CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def manager() -> Iterator[ExtensionDebugManager]:
    """A live manager with logs (one an ERROR), a metric and an active alert."""
    found = live_manager("page-ext")
    yield found
    found.stop()


@pytest.fixture
def page(browser: Any, manager: ExtensionDebugManager) -> Iterator[tuple[Any, list[str]]]:
    """The dashboard opened on a real server; the console problems it reported so far."""
    server = ApiServer(
        manager=manager, include_registry=False, stream=StreamSettings(poll_seconds=0.05)
    ).start()
    context = browser.new_context()
    opened = context.new_page()
    problems: list[str] = []
    opened.on(
        "console",
        lambda message: (
            problems.append(f"{message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    opened.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    opened.goto(f"{server.url}/")
    opened.wait_for_selector("#logs li", timeout=WAIT_MS)
    yield opened, problems
    context.close()
    server.stop()


def test_page_loads_without_console_errors(page: tuple[Any, list[str]]) -> None:
    """The page shows health, overview, charts, logs, errors, alerts; the console stays clean."""
    opened, problems = page
    opened.wait_for_selector("#health li", timeout=WAIT_MS)
    opened.locator("#chart-rss path.series").wait_for(timeout=WAIT_MS)
    assert opened.locator("#health-status").get_attribute("data-status") in (
        "healthy", "degraded",
    )  # fmt: skip
    assert opened.locator("#source").inner_text() == "live"
    assert opened.locator("#errors tr[data-fingerprint]").count() == 1
    assert "ConnectionError" in opened.locator("#errors").inner_text()
    assert opened.locator("#alerts li[data-alert-id]").count() == 1
    assert problems == []


def test_a_log_written_after_load_appears_without_reload(
    page: tuple[Any, list[str]], manager: ExtensionDebugManager
) -> None:
    """A record logged after the page loaded shows up at the top of the live log."""
    opened, problems = page
    opened.evaluate("window.__marker = 'same page'")
    manager.get_logger().error("written <b>after</b> load", order_id=7)
    row = opened.locator("#logs li", has_text="written <b>after</b> load")
    row.wait_for(timeout=WAIT_MS)
    assert row.get_attribute("data-level") == "ERROR"
    assert opened.locator("#logs li b").count() == 0  # shown as text, never as markup
    assert opened.evaluate("window.__marker") == "same page"  # no reload happened
    assert problems == []


def test_level_filter_keeps_that_level_and_above(
    page: tuple[Any, list[str]], manager: ExtensionDebugManager
) -> None:
    """Choosing 'error' keeps ERROR and CRITICAL records, old and new."""
    opened, problems = page
    opened.select_option("#level", "error")
    _until(lambda: set(_levels(opened)) == {"ERROR"}, "only ERROR records")
    manager.get_logger().info("an info line the filter hides")
    manager.get_logger().critical("a critical line the filter keeps")
    opened.locator("#logs li", has_text="a critical line the filter keeps").wait_for(
        timeout=WAIT_MS
    )
    assert set(_levels(opened)) == {"ERROR", "CRITICAL"}
    assert "an info line the filter hides" not in opened.locator("#logs").inner_text()
    opened.fill("#search", "critical line")
    _until(lambda: _levels(opened) == ["CRITICAL"], "the search to keep one record")
    assert problems == []


def test_resolving_an_alert_updates_the_list(
    page: tuple[Any, list[str]], manager: ExtensionDebugManager
) -> None:
    """The Resolve button resolves the alert on the server and the list updates; its Reopen
    button makes it active again (a resolved alert stays listed, with its notes)."""
    opened, problems = page
    opened.click("#alerts li[data-alert-id] button.resolve")
    opened.locator("#alerts li[data-status=resolved]").wait_for(timeout=WAIT_MS)
    assert manager.get_alert_manager().get_active_alerts() == []
    [alert] = manager.get_alert_manager().get_alerts()
    assert alert.resolution_notes == "resolved from the dashboard"
    assert "resolved from the dashboard" in opened.locator("#alerts").inner_text()
    opened.click("#alerts li[data-status=resolved] button.reopen")
    opened.locator("#alerts li[data-status=active]").wait_for(timeout=WAIT_MS)
    assert [a.alert_id for a in manager.get_alert_manager().get_active_alerts()] == [
        alert.alert_id
    ]
    assert problems == []


def test_resolving_an_error_group_updates_the_list(
    page: tuple[Any, list[str]], manager: ExtensionDebugManager
) -> None:
    """An unresolved group's Resolve button resolves it on the server; the row updates in place."""
    opened, problems = page
    opened.evaluate("window.__marker = 'same page'")
    row = opened.locator("#errors tr[data-fingerprint]")
    assert row.locator("td.status").inner_text() == "open"
    row.locator("input.notes").fill("fixed by retrying")
    time.sleep(3)  # a poll redraws the list meanwhile: the typed notes stay
    assert row.locator("input.notes").input_value() == "fixed by retrying"
    row.locator("button.resolve").click()
    _until(lambda: row.locator("td.status").inner_text() == "resolved", "the group resolved")
    assert row.locator("button.resolve").count() == 0
    [group] = manager.get_error_tracker().get_groups()
    assert (group.status, group.notes) == ("resolved", "fixed by retrying")
    assert opened.evaluate("window.__marker") == "same page"  # no reload happened
    assert problems == []


def test_the_one_time_link_opens_a_token_protected_dashboard(
    browser: Any, manager: ExtensionDebugManager
) -> None:
    """With a token, the page refuses a bare visit and works after the one-time login link."""
    server = ApiServer(manager=manager, token=TOKEN, include_registry=False).start()
    context = browser.new_context()
    try:
        opened = context.new_page()
        refused = opened.goto(f"{server.url}/")
        assert refused is not None
        assert refused.status == 401
        opened.goto(server.login_url() or "")
        opened.wait_for_selector("#logs li", timeout=WAIT_MS)
        assert opened.url == f"{server.url}/#ext=page-ext"
        cookies = context.cookies()
        assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
            (f"kari_debug_token_{server.port}", True, "Strict"),
        ]
    finally:
        context.close()
        server.stop()
