"""Report and dashboard in headless Chromium: failures first, layouts that hold, a live run.

Debian ``/usr/bin/chromium`` driven by playwright, as the other browser tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool

from pytest_kari_debug.api import ApiServer

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WIDTHS = (360, 768, 1440, 1920)

#: Tests a new user's CI might run: long ids, a failure with output, a budget, skips, xfails.
SUITE = """
import logging
import sys
import time

import pytest

@pytest.mark.parametrize("case", ["alpha", "beta-with-a-long-parameter-value"])
def test_validates_the_weather_provider_response_payload_structure(case):
    pass

def test_total_of_the_shopping_cart_with_discounts():
    print("cart: 3 items, discount code SUMMER")
    print("warning: price feed stale", file=sys.stderr)
    logging.getLogger("shop.cart").error("discount not applied")
    total = 3 * 9.5
    assert total == 27.0, "discounted total"

@pytest.mark.kari_budget(duration_ms=0.001)
def test_over_its_budget():
    sum(range(20000))

@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known bug", strict=False)
def test_known_bug():
    assert False
"""

#: Finds every table cell and button breaking a word, or too narrow for its longest word.
MEASURE = (Path(__file__).parent / "layout_measure.js").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    require_tool(CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The suite run twice by the plugin into one store; the second run's report and store."""
    folder = tmp_path_factory.mktemp("suite")
    (folder / "test_shop.py").write_text(SUITE, encoding="utf-8")
    store = folder / "kari.db"
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kari-debug",
             f"--kari-store={store}", "--kari-report=report.html", "--kari-metrics-interval=0.02",
             "test_shop.py"],
            cwd=folder, capture_output=True, check=False, timeout=120,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )  # fmt: skip
    return folder / "report.html", store


def _open(browser: Any, url: str, width: int, height: int = 900) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.errors = errors
    return page


def _shoot(page: Any, name: str) -> None:
    folder = os.environ.get("KARI_DEBUG_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name))


def test_first_failure_is_on_the_first_screen(browser: Any, suite_run: tuple[Path, Path]) -> None:
    """At 1440x900 and on a 390x844 phone the first failing test and its message are on screen."""
    report, _ = suite_run
    for width, height in ((1440, 900), (390, 844)):
        page = _open(browser, report.as_uri(), width, height)
        page.wait_for_selector("html[data-ready=true]")
        first = page.locator("#failures article.failure").first
        head = first.locator("h3").bounding_box()
        message = first.locator(".fail-msg").bounding_box()
        assert "test_total_of_the_shopping_cart" in first.locator("h3").inner_text()
        assert "discounted total" in first.locator(".fail-msg").inner_text()
        assert head["y"] + head["height"] <= height, (width, head)
        assert message["y"] + message["height"] <= height, (width, message)
        stdout = first.locator("pre.captured[data-stream=stdout]")
        assert stdout.inner_text().strip() == "cart: 3 items, discount code SUMMER"
        _shoot(page, f"report-{width}.png")
        assert page.errors == []
        page.context.close()


def test_count_badges_filter_the_table(browser: Any, suite_run: tuple[Path, Path]) -> None:
    """Selecting a count badge lists only the tests of that outcome."""
    report, _ = suite_run
    page = _open(browser, report.as_uri(), 1440)
    page.wait_for_selector("html[data-ready=true]")
    page.locator(".counts-line a[data-outcome=failed]").click()
    rows = page.locator("#t-body tr.row")
    assert rows.count() == 2
    assert set(rows.locator("td[data-label=outcome]").all_inner_texts()) <= {
        t for t in rows.locator("td[data-label=outcome]").all_inner_texts() if "failed" in t
    }
    assert page.locator("#f-outcome").input_value() == "failed"
    page.context.close()


def test_report_layout_holds_at_every_width(browser: Any, suite_run: tuple[Path, Path]) -> None:
    """At 360, 768, 1440 and 1920 px no table cell or button breaks a word or is too narrow."""
    report, _ = suite_run
    for width in WIDTHS:
        page = _open(browser, report.as_uri(), width)
        page.wait_for_selector("html[data-ready=true]")
        for index in range(page.evaluate("window.kariReport.data.tests.length")):
            page.locator(f"#test-{index}").dispatch_event("click")
        page.locator("#run-metrics").scroll_into_view_if_needed()
        assert page.evaluate(MEASURE) == [], width
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        assert page.errors == []
        page.context.close()


def test_dashboard_layout_holds_at_every_width(browser: Any, suite_run: tuple[Path, Path]) -> None:
    """The dashboard fills the window and breaks no word at 360, 768, 1440 and 1920 px."""
    _, store = suite_run
    server = ApiServer(store_path=store, include_registry=False).start()
    try:
        for width in (*WIDTHS, 390):
            page = _open(browser, f"{server.url}/", width)
            page.wait_for_selector("#errors tr")
            page.wait_for_selector("#run-counts li")
            page.wait_for_timeout(300)
            assert page.evaluate(MEASURE) == [], width
            main = page.locator("main").bounding_box()
            assert main["width"] >= width - 20  # the full width, nothing left empty
            assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
            if width in (1440, 390):
                _shoot(page, f"dashboard-{width}.png")
            page.context.close()
    finally:
        server.stop()


#: Eight tests, each running until the test watching the dashboard releases it (a file named
#: after it appears): the run moves at the pace of what the page has shown, however loaded
#: the machine.
SLOW_SUITE = """
import os
import time
import pytest

@pytest.mark.parametrize("n", range(8))
def test_slow(n):
    release = os.path.join(os.environ["KARI_TEST_RELEASE"], str(n))
    deadline = time.monotonic() + 120
    while not os.path.exists(release):
        assert time.monotonic() < deadline, "the dashboard test never released this test"
        time.sleep(0.02)
    assert n != 5
"""

#: What the run card shows: its status, how many tests are done, the tests running now.
_RUN_CARD = """([status, done, running]) =>
    document.getElementById("run-status").textContent === status
    && document.getElementById("run-done").textContent === done
    && document.getElementById("run-running").textContent.includes(running)"""


def test_dashboard_follows_a_real_run(browser: Any, tmp_path: Path) -> None:
    """While a real pytest run goes on, the dashboard's progress and counts move with it: each
    test is let go only once the page shows the tests before it done (and the first one
    running), so every step of the bar must show."""
    (tmp_path / "test_slow.py").write_text(SLOW_SUITE, encoding="utf-8")
    release = tmp_path / "release"
    release.mkdir()
    store = tmp_path / "kari.db"
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kari-debug",
         f"--kari-store={store}", "test_slow.py"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "KARI_TEST_RELEASE": str(release)},
    )  # fmt: skip
    server = None
    try:
        deadline = time.monotonic() + 60
        while not store.exists():
            assert run.poll() is None, "the run ended before it created its store"
            assert time.monotonic() < deadline, "the run never created its store"
            time.sleep(0.1)
        server = ApiServer(store_path=store, include_registry=False).start()
        page = _open(browser, f"{server.url}/", 1440)
        for n in range(8):
            running = "test_slow.py::test_slow[0]" if n == 0 else ""
            page.wait_for_function(
                _RUN_CARD, arg=["running", f"{n} of 8 tests done", running], timeout=60_000
            )
            assert page.locator("#run-bar").evaluate("bar => [bar.value, bar.max]") == [n, 8]
            (release / str(n)).touch()
        assert run.wait(timeout=60) == 1
        page.wait_for_function(
            _RUN_CARD, arg=["finished", "8 of 8 tests done", "the run is over"], timeout=60_000
        )
        assert page.errors == []
        page.context.close()
    finally:
        if run.poll() is None:
            run.kill()
        if server is not None:
            server.stop()


def test_charts_rank_tests_and_open_them(browser: Any, suite_run: tuple[Path, Path]) -> None:
    """The slowest tests are ranked bars; a bar and a chart's dot name their test and open it."""
    report, _ = suite_run
    page = _open(browser, report.as_uri(), 1440)
    page.wait_for_selector("html[data-ready=true]")
    tests = page.evaluate("window.kariReport.data.tests")
    slowest = max(range(len(tests)), key=lambda i: tests[i]["duration"])
    page.locator("#run-metrics").scroll_into_view_if_needed()
    ranked = page.locator("figure.ranked", has_text="Slowest tests")
    ranked.wait_for()
    first = ranked.locator("ol.bars li a").first
    assert first.get_attribute("title").startswith(tests[slowest]["nodeid"] + ": ")
    first.click()
    page.wait_for_selector(f"#detail-{slowest}")
    dot = page.locator("#run-charts svg circle.pick").first
    text = dot.locator("title").text_content()
    index = next(i for i, t in enumerate(tests) if text.startswith(t["nodeid"] + ": "))
    dot.dispatch_event("click")
    page.wait_for_selector(f"#detail-{index}")
    assert page.errors == []
    page.context.close()


def test_detail_panes_read_as_tables_for_people(browser: Any, suite_run: tuple[Path, Path]) -> None:
    """A test's figures show once each, in their unit, without the plugin's internal flags."""
    report, _ = suite_run
    page = _open(browser, report.as_uri(), 1440)
    page.wait_for_selector("html[data-ready=true]")
    page.locator("#test-0").dispatch_event("click")
    table = page.locator("#detail-0 table.kv").first
    table.wait_for()
    labels = table.locator("th").all_inner_texts()
    assert labels
    assert len(labels) == len(set(labels))  # no figure twice in two units
    assert not [label for label in labels if "by_session" in label or label == "notes"]
    values = table.locator("td").all_inner_texts()
    assert not [v for v in values if len(v.split(".")[-1].split(" ")[0]) > 3 and v[0].isdigit()]
    assert page.locator("#test-table th", has_text="Extension").count() == 0  # one extension
    assert page.errors == []
    page.context.close()


FLIPPING = """
import os

def test_steady():
    pass

def test_flip():
    assert os.environ["KARI_FLIP"] != "fail"
"""


def test_history_badges_after_three_runs(browser: Any, tmp_path: Path) -> None:
    """Three runs into one store, a test passing, failing, passing: its row says so."""
    (tmp_path / "test_flip.py").write_text(FLIPPING, encoding="utf-8")
    for flip in ("pass", "fail", "pass"):
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kari-debug",
             f"--kari-store={tmp_path / 'kari.db'}", "--kari-report=report.html", "test_flip.py"],
            cwd=tmp_path, capture_output=True, check=False, timeout=120,
            env={**os.environ, "KARI_FLIP": flip},
        )  # fmt: skip
    page = _open(browser, (tmp_path / "report.html").as_uri(), 1440)
    page.wait_for_selector("html[data-ready=true]")
    row = page.locator("#t-body tr.row", has_text="::test_flip")
    assert row.locator(".badge.hb-fixed").inner_text() == "fixed"
    assert row.locator(".badge.hb-flaky").inner_text() == "flaky (failed 1 of last 3)"
    spark = row.locator("svg.spark")
    assert spark.locator("rect").count() == 3
    assert spark.locator("rect.F").count() == 1
    assert "oldest first: passed" in spark.get_attribute("aria-label")
    flaky = page.locator("#flaky-table tbody tr")
    assert flaky.count() == 1
    assert "::test_flip" in flaky.inner_text()
    page.locator(".counts-line a.flaky").click()
    index = page.evaluate(
        "window.kariReport.data.tests.findIndex(t => t.nodeid.endsWith('test_flip'))"
    )
    page.locator(f"#test-{index}").dispatch_event("click")
    history = page.locator(f"#detail-{index} table.history tbody tr")
    assert history.count() == 3
    assert "#3" in history.first.inner_text()  # newest first
    assert page.errors == []
    page.context.close()
