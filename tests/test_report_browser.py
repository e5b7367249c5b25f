"""The HTML report opened from file:// in headless Chromium (Debian ``chromium`` + playwright)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool

from pytest_kari_debug.report import write_report
from pytest_kari_debug.report.sample import sample_run

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INJECTED = '<script>window.__kariPwned = 1</script><img src=x onerror="window.__kariPwned = 2">'

EXTENSION_TESTS = f"""
import pytest

INJECTED = {INJECTED!r}

@pytest.mark.kari_extension("weather", name="Weather")
def test_forecast(kari_logger, kari_tracer, kari_metrics):
    kari_logger.debug("cache cold")
    kari_logger.info("fetching forecast", city="Oslo")
    kari_logger.info(INJECTED)
    kari_logger.warning("provider slow")
    kari_logger.error("provider returned 500")
    with kari_tracer.start_span("handle_request"):
        with kari_tracer.start_span("provider.fetch", tags={{"city": INJECTED}}):
            kari_metrics.record_metric("request_time", 12.5, "ms")
        try:
            with kari_tracer.start_span("provider.retry"):
                raise TimeoutError("provider timed out")
        except TimeoutError:
            pass
        kari_metrics.record_metric("request_time", 20.0, "ms")
        kari_metrics.record_metric("request_time", 16.0, "ms")

@pytest.mark.parametrize("city", [INJECTED, "Bergen"])
def test_city(city, kari_logger):
    kari_logger.info("city " + city)

def test_broken():
    assert {{"temp": 41}} == {{"temp": 40}}, "</textarea><script>window.__kariPwned = 3</script>"
"""


@dataclass
class Watch:
    """What a page did: console errors, uncaught exceptions and every request it made."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    require_tool(CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(
    browser: Any, path: Path, *, width: int = 1280, javascript: bool = True
) -> tuple[Any, Watch]:
    """Open *path* from file:// and watch its console and network; wait for the script."""
    context = browser.new_context(
        viewport={"width": width, "height": 900}, java_script_enabled=javascript
    )
    page = context.new_page()
    watch = Watch()
    page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    page.on("request", lambda r: watch.requests.append(r.url))
    page.goto(path.as_uri())
    if javascript:
        page.wait_for_selector("html[data-ready=true]")
    return page, watch


def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: $KARI_DEBUG_ARTIFACTS/report when set (CI), else tmp_path."""
    base = os.environ.get("KARI_DEBUG_ARTIFACTS")
    folder = Path(base) / "report" if base else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def plugin_report(pytester: pytest.Pytester) -> Path:
    """A report written by a real pytester run of the plugin (logs, spans, metrics, a failure)."""
    pytester.makepyfile(test_weather=EXTENSION_TESTS)
    result = pytester.runpytest("--kari-trace", "--kari-report=report.html", "--kari-store=none")
    result.assert_outcomes(passed=3, failed=1)
    return pytester.path / "report.html"


def expect(locator: Any) -> Any:
    """playwright's retrying assertions (they need no eval, which the page's CSP forbids)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def index_of(page: Any, name: str) -> int:
    index = page.evaluate(
        "(name) => window.kariReport.data.tests.findIndex(t => t.nodeid.endsWith(name))", name
    )
    assert index >= 0, name
    return int(index)


def expand(page: Any, index: int) -> Any:
    # The click event itself, not a mouse click at coordinates: the run charts drawn above the
    # table when they scroll into view can move the row between aiming and clicking.
    page.locator(f"#test-{index}").dispatch_event("click")
    return page.locator(f"#detail-{index}")


def test_report_opens_offline_without_errors(
    browser: Any, plugin_report: Path, tmp_path: Path
) -> None:
    """Opened from file://, the page logs no error and requests nothing but itself."""
    page, watch = open_page(browser, plugin_report)
    for index in range(page.evaluate("window.kariReport.data.tests.length")):
        expand(page, index)
    page.locator("#run-metrics").scroll_into_view_if_needed()
    page.wait_for_selector("#run-charts figure svg")
    shot = artifacts(tmp_path) / "report-expanded.png"
    page.screenshot(path=str(shot), full_page=True)
    assert watch.errors == []
    assert watch.requests == [plugin_report.as_uri()]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.context.close()


def test_test_expands_with_waterfall_and_chart(browser: Any, plugin_report: Path) -> None:
    """Expanding a test shows its spans as a nested waterfall with the error marked, and a chart."""
    page, watch = open_page(browser, plugin_report)
    button = page.locator(f"#test-{index_of(page, 'test_forecast')}")
    assert button.get_attribute("aria-expanded") == "false"
    detail = expand(page, index_of(page, "test_forecast"))
    assert button.get_attribute("aria-expanded") == "true"
    rows = detail.locator(".waterfall .wf-row")
    names = [n.strip() for n in rows.locator(".wf-label").all_inner_texts()]
    depths = rows.evaluate_all("rows => rows.map(r => Number(r.dataset.depth))")
    spans = dict(zip(names, depths, strict=True))
    # --kari-trace makes the test itself the root span, when the tracing feature is present
    top = spans.get("test_weather.py::test_forecast", -1) + 1
    assert spans["handle_request"] == top
    assert spans["provider.fetch"] == top + 1
    assert spans["✗ provider.retry (error)"] == top + 1
    assert names.index("provider.fetch") < names.index("✗ provider.retry (error)")
    error_row = detail.locator(".wf-row.error")
    assert error_row.count() == 1
    assert "provider.retry" in error_row.inner_text()
    assert "error" in error_row.inner_text()
    chart = detail.locator("figure.chart", has_text="request_time")
    assert chart.locator("svg circle.pt").count() == 3
    label = chart.locator("svg").get_attribute("aria-label") or ""
    assert "highest 20 ms" in label  # in the metric's unit, by the catalogue's rule
    assert "time since the test started" in label
    assert watch.errors == []
    page.context.close()


def test_log_level_filter_and_search(browser: Any, plugin_report: Path) -> None:
    """The level filter and the search box change which log rows are visible."""
    page, watch = open_page(browser, plugin_report)
    detail = expand(page, index_of(page, "test_forecast"))
    rows = detail.locator("tr.log-row")
    assert rows.count() == 5
    detail.locator("select").first.select_option("30")
    assert [r.split("\t")[1] for r in rows.all_inner_texts()] == ["WARNING", "ERROR"]
    detail.locator("select").first.select_option("0")
    detail.locator("input[type=search]").fill("forecast")
    expect(rows).to_have_count(1)
    assert "fetching forecast" in rows.first.inner_text()
    assert "1 of 1 matching" in detail.locator(".log-count").inner_text()
    assert watch.errors == []
    page.context.close()


def test_injected_markup_stays_text(browser: Any, plugin_report: Path) -> None:
    """A <script> in a log message, a test id or an assertion shows as text and runs nothing."""
    page, watch = open_page(browser, plugin_report)
    for index in range(page.evaluate("window.kariReport.data.tests.length")):
        expand(page, index)
    page.click(".wf-row button[aria-expanded=false] >> text='provider.fetch'")  # tag has markup
    assert INJECTED in page.locator(".wf-info table.kv").inner_text()
    assert page.evaluate("typeof window.__kariPwned") == "undefined"
    assert page.locator("script").count() == 2
    assert page.locator("img").count() == 0
    messages = page.locator("tr.log-row .msg").all_inner_texts()
    assert INJECTED in messages
    nodeids = page.locator("#t-body .nodeid").all_inner_texts()
    assert any(INJECTED in n for n in nodeids)
    assert "</textarea><script>" in page.locator("#failures pre").first.inner_text()
    assert watch.requests == [plugin_report.as_uri()]
    assert watch.errors == []
    page.context.close()


def test_without_javascript_summary_and_failures_read(
    browser: Any, plugin_report: Path, tmp_path: Path
) -> None:
    """With scripts off, the summary and the failing test's traceback are on the page."""
    page, _ = open_page(browser, plugin_report, javascript=False)
    assert page.locator("#summary").is_visible()
    assert "4 tests" in page.locator("#summary .big").first.inner_text()
    failure = page.locator("#failures article.failure").first
    assert "test_broken" in failure.locator("h3").inner_text()
    assert failure.locator("pre.fail-msg").is_visible()
    assert "AssertionError" in failure.locator("pre.fail-msg").inner_text()
    assert "AssertionError" in failure.locator("pre.tb").text_content()
    assert not page.locator("#tests").is_visible()
    assert page.locator("noscript").count() == 1
    page.screenshot(path=str(artifacts(tmp_path) / "report-no-js.png"), full_page=True)
    page.context.close()


def test_keyboard_expands_and_filters(browser: Any, plugin_report: Path) -> None:
    """A test expands and collapses with Enter and Space; '/' jumps to the test search."""
    page, watch = open_page(browser, plugin_report)
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "f-q"
    page.keyboard.type("broken")
    expect(page.locator("#t-body tr.row")).to_have_count(1)
    page.keyboard.press("Tab")  # past the outcome, extension, has and sort filters
    button = page.locator("#t-body button.expand").first
    button.focus()
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"
    assert page.locator("tr.detail").count() == 1
    page.keyboard.press("Space")
    assert button.get_attribute("aria-expanded") == "false"
    assert page.locator("tr.detail").count() == 0
    assert watch.errors == []
    page.context.close()


def test_narrow_window_does_not_scroll_sideways(
    browser: Any, plugin_report: Path, tmp_path: Path
) -> None:
    """At 360 px the page, an expanded test included, fits the window's width."""
    page, watch = open_page(browser, plugin_report, width=360)
    expand(page, index_of(page, "test_forecast"))
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 361
    outcome = page.locator("#t-body tr.row td[data-label=outcome]").first
    assert re.search(r"(passed|failed)", outcome.inner_text())
    page.screenshot(path=str(artifacts(tmp_path) / "report-narrow.png"), full_page=True)
    assert watch.errors == []
    page.context.close()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A 2,000-test synthetic report following the data contract (samples, trees, alerts)."""
    run, tests = sample_run(2000, seed=4)
    path = write_report(tmp_path_factory.mktemp("synthetic") / "report.html", run, tests)
    return path, tests


def test_large_report_renders_lazily_and_sorts(browser: Any, synthetic: tuple[Path, Any]) -> None:
    """Only the first rows exist at first; sorting and the outcome filter reorder the table."""
    path, tests = synthetic
    page, watch = open_page(browser, path)
    assert page.locator("#t-body tr.row").count() == 100
    assert page.locator("tr.detail").count() == 0
    page.click("#t-more")  # (scrolling to it may load a page more by itself)
    shown, text = page.evaluate(
        "[document.querySelectorAll('#t-body tr.row').length,"
        " document.getElementById('t-count').textContent]"
    )
    assert shown >= 200
    assert shown % 100 == 0
    assert f"showing {shown}." in text
    page.click("#test-table th[data-sort=duration] button")
    longest = max(range(len(tests)), key=lambda i: tests[i]["duration_ms"])
    assert page.locator("#t-body tr.row").first.get_attribute("data-index") == str(longest)
    assert page.locator("th[data-sort=duration]").get_attribute("aria-sort") == "descending"
    page.select_option("#f-outcome", "failed")
    failed = sum(t["outcome"] == "failed" for t in tests)
    assert f"{failed} of 2000 tests match" in page.locator("#t-count").inner_text()
    outcomes = set(page.locator("#t-body tr.row td[data-label=outcome]").all_inner_texts())
    assert outcomes == {"✗ failed"}
    assert watch.errors == []
    page.context.close()


def test_link_to_a_far_test_opens_it_alone(browser: Any, synthetic: tuple[Path, Any]) -> None:
    """A #test-N link deep in a big run shows that test alone, opened, until 'Show all tests'."""
    path, _tests = synthetic
    page, watch = open_page(browser, path)
    page.evaluate("location.hash = '#test-1500'")
    expect(page.locator("#detail-1500")).to_have_count(1)
    assert page.locator("#t-body tr.row").count() == 1
    assert page.evaluate("document.activeElement.id") == "test-1500"
    page.click("#f-chip button")
    shown = page.locator("#t-body tr.row").count()  # the first page, or more if scrolled near
    assert shown >= 100
    assert shown % 100 == 0
    assert page.locator("#f-chip").is_hidden()
    assert watch.errors == []
    page.context.close()


def test_page_restores_the_stored_records(browser: Any, synthetic: tuple[Path, Any]) -> None:
    """The compact records of the page come back as the contract's records (times to 1 µs)."""
    path, tests = synthetic
    page, _ = open_page(browser, path)
    for index in (0, 7, 1999):
        restored = page.evaluate("(i) => window.kariReport.test(i).data", index)
        original = tests[index]["collected_data"]
        for kind, keys in (
            ("logging", ("message", "level", "name", "ts", "fields")),
            ("tracing", ("span_id", "parent_id", "name", "start", "duration_ms", "status")),
        ):
            got = restored[kind]["records"]
            want = original[kind]["records"]
            assert len(got) == len(want)
            for g, w in zip(got, want, strict=False):
                for key in keys:
                    if isinstance(w.get(key), float):
                        # seconds keep the microsecond; milliseconds are rounded to it
                        tolerance = 6e-4 if key.endswith("_ms") else 2e-6
                        assert g[key] == pytest.approx(w[key], abs=tolerance), (kind, key)
                    else:
                        assert g.get(key) == w.get(key), (kind, key)
        samples = restored["metrics"]["samples"]
        assert [s["rss_bytes"] for s in samples] == [
            s["rss_bytes"] for s in original["metrics"]["samples"]
        ]
    page.context.close()


def test_alerts_profile_and_errors_panels(browser: Any, synthetic: tuple[Path, Any]) -> None:
    """A test with alerts, a call tree and errors shows rule, value, threshold, tree and groups."""
    path, tests = synthetic
    page, watch = open_page(browser, path)
    alerted = next(i for i, t in enumerate(tests) if t["collected_data"]["alerting"]["records"])
    page.evaluate("(i) => window.kariReport.open(i)", alerted)
    alert = tests[alerted]["collected_data"]["alerting"]["records"][0]
    row = page.locator(f"#detail-{alerted} table.alerts tbody tr").first
    text = row.inner_text()
    assert alert["rule"] in text
    assert alert["severity"] in text
    assert "50" in text
    profiled = next(
        i for i, t in enumerate(tests) if t["collected_data"]["profiling"].get("call_tree")
    )
    page.evaluate("(i) => window.kariReport.open(i)", profiled)
    tree = page.locator(f"#detail-{profiled} ul.calltree")
    assert tree.locator("li").first.inner_text().count("100 %") >= 1
    closed = tree.locator("button[aria-expanded=false]").first
    if closed.count():
        before = tree.locator("li").count()
        closed.click()
        assert tree.locator("li").count() > before
    erred = next(i for i, t in enumerate(tests) if t["collected_data"]["error_tracking"]["records"])
    page.evaluate("(i) => window.kariReport.open(i)", erred)
    group = page.locator(f"#detail-{erred} details.error-group").first
    error = tests[erred]["collected_data"]["error_tracking"]["records"][0]
    assert error["error_type"] in group.locator("summary").inner_text()
    page.locator("#error-groups button").first.click()
    assert "Error group:" in page.locator("#f-chip").inner_text()
    assert watch.errors == []
    page.context.close()


def test_trace_analysis_marks_bottlenecks(browser: Any, tmp_path: Path) -> None:
    """The tracing feature's analysis shows as a critical path and ⚑-marked bottleneck spans."""
    run, tests = sample_run(1, seed=2)
    tracing = tests[0]["collected_data"]["tracing"]
    spans = tracing["records"]
    slow = spans[1]
    tracing["analysis"] = {
        tracing["trace_id"]: {
            "critical_path": [
                {"span_id": spans[0]["span_id"], "name": "root", "ms": 1.0},
                {"span_id": slow["span_id"], "name": slow["name"], "ms": 2.0},
            ],
            "bottlenecks": [{"span_id": slow["span_id"], "name": slow["name"], "self_ms": 2.0}],
            "slow_span_ms": 1.0,
        }
    }
    path = write_report(tmp_path / "r.html", run, tests)
    page, watch = open_page(browser, path)
    detail = expand(page, 0)
    marked = detail.locator(".wf-row.slow")
    assert marked.count() == 1
    assert f"⚑ {slow['name']}" in marked.inner_text()
    assert "(bottleneck)" in marked.inner_text()
    assert f"root (1 ms) → {slow['name']} (2 ms)" in detail.inner_text()
    assert watch.errors == []
    page.context.close()
