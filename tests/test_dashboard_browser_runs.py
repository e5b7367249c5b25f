"""The dashboard across runs in headless Chromium, against a real API server on 127.0.0.1: a
run selector that scopes every panel, CPU/RSS charts on a time axis with gaps, one alert per
rule and test with Resolve (notes) and Reopen, layouts that hold; and the one formatting rule
of the figures catalogue, identical in Python and in the pages' script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import EXT, record_two_runs
from conftest import require_tool

from pytest_kari_debug.api import ApiServer
from pytest_kari_debug.api.app import PREFIX
from pytest_kari_debug.figures import display_rules, format_value

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
WIDTHS = (360, 768, 1440, 1920)
MEASURE = (Path(__file__).parent / "layout_measure.js").read_text(encoding="utf-8")
FIGURES_JS = (Path(__file__).parent.parent / "report_templates" / "figures.js").read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_tool(CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """`kari-debug serve`'s server on a store of two real runs (#1, #2)."""
    store = record_two_runs(tmp_path_factory.mktemp("runs"))
    started = ApiServer(store_path=store, include_registry=False).start()
    yield started
    started.stop()


def _open(browser: Any, url: str, width: int = 1440) -> Any:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.errors = errors
    return page


def _until(check: Any, what: str, seconds: float = 15.0) -> None:
    """Wait for *check()* (the page's CSP forbids playwright's string predicates)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _figure(page: Any, name: str) -> str:
    return str(page.locator(f'#overview [data-figure="{name}"] dd').inner_text())


def _api(server: ApiServer, path: str) -> Any:
    with urllib.request.urlopen(f"{server.url}{PREFIX}{path}", timeout=10) as answer:
        return json.load(answer)


def test_the_run_selector_scopes_every_panel(browser: Any, server: ApiServer) -> None:
    """The newest run is shown first; choosing run #1 or all runs changes every counter, the
    error counts, the alerts' occurrences and the logs to that scope."""
    page = _open(browser, f"{server.url}/")
    page.wait_for_selector("#scope:has-text('run #2')")
    page.wait_for_selector("#alerts li[data-group]")
    assert page.locator("#run").input_value() == "2"
    second = _api(server, f"/dashboard/{EXT}?run_id=2")["overview"]
    logs = str(second["counts"]["logging"])
    _until(lambda: _figure(page, "log records") == logs, f"log records {logs}")
    assert "×1" in page.locator("#alerts li").first.inner_text()
    page.wait_for_selector("#logs li:has-text('second run only')")

    page.select_option("#run", "1")
    page.wait_for_selector("#scope:has-text('run #1')")
    first = _api(server, f"/dashboard/{EXT}?run_id=1")["overview"]
    logs = str(first["counts"]["logging"])
    _until(lambda: _figure(page, "log records") == logs, f"log records {logs}")
    assert first["counts"]["logging"] == second["counts"]["logging"] - 1
    assert _figure(page, "errors").startswith(f"{first['errors']['total']} in ")
    page.wait_for_selector("#logs li")
    page.wait_for_timeout(500)
    assert "second run only" not in page.locator("#logs").inner_text()

    page.select_option("#run", "all")
    page.wait_for_selector("#scope:has-text('all runs')")
    both = f"{2 * first['errors']['total']} in "
    _until(lambda: _figure(page, "errors").startswith(both), f"errors {both}")
    page.wait_for_selector("#alerts li:has-text('×2 in 2 runs')")
    assert page.locator("#alerts li[data-group]").count() == 2
    assert page.errors == []
    page.context.close()


def test_cpu_and_rss_charts_have_a_time_axis_and_gaps(browser: Any, server: ApiServer) -> None:
    """Recorded CPU and RSS samples are drawn against clock time; across the two runs the
    seconds between them are a gap, not a line; pointing at the chart names a sample."""
    page = _open(browser, f"{server.url}/")
    page.wait_for_selector("#scope:has-text('run #2')")
    page.select_option("#run", "all")
    page.wait_for_selector("#chart-rss[data-gaps='1'], #chart-rss[data-gaps='2']")
    rss = page.locator("#chart-rss")
    assert int(rss.get_attribute("data-points")) >= 4
    ticks = rss.locator("text.tick").all_text_contents()
    assert any(t.endswith(("MiB", "GiB")) for t in ticks), ticks
    assert any(t.count(":") == 2 for t in ticks), ticks  # a clock time on the x axis
    assert rss.locator("rect.gap title").first.text_content().startswith("no samples from ")
    assert rss.locator("path.series").get_attribute("d").count("M") >= 2
    assert int(page.locator("#chart-cpu").get_attribute("data-points")) >= 4
    box = rss.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    readout = page.locator("#chart-rss-readout").inner_text()
    assert readout.count(":") >= 3
    assert readout.endswith("MiB"), readout
    # one run alone has no gap
    page.select_option("#run", "1")
    page.wait_for_selector("#chart-rss[data-gaps='0']")
    assert page.errors == []
    page.context.close()


def test_resolve_with_notes_and_reopen_alert_and_error_group(
    browser: Any, server: ApiServer
) -> None:
    """Resolve with notes marks the alert of both runs resolved (shown with its notes and a
    Reopen button); Reopen makes it active again; the same for an error group."""
    page = _open(browser, f"{server.url}/")
    page.wait_for_selector("#scope:has-text('run #2')")
    page.select_option("#run", "all")
    row = page.locator("#alerts li[data-group]", has_text="High CPU Usage")
    row.locator("input.notes").fill("raised the limit")
    row.locator("button.resolve").click()
    page.wait_for_selector("#alerts li[data-status=resolved]:has-text('raised the limit')")
    [alert] = [a for a in _api(server, f"/alerts/{EXT}")["alerts"] if a["alert_type"] == "high_cpu"]
    assert (alert["status"], alert["resolution_notes"], alert["occurrences"]) == (
        "resolved", "raised the limit", 2,
    )  # fmt: skip
    page.locator("#alerts li[data-status=resolved] button.reopen").click()
    _until(lambda: page.locator("#alerts li[data-status=resolved]").count() == 0, "reopened")
    assert {a["status"] for a in _api(server, f"/alerts/{EXT}")["alerts"]} == {"active"}

    group = page.locator("#errors tr[data-fingerprint]").first
    fingerprint = group.get_attribute("data-fingerprint")
    group.locator("input.notes").fill("validated first")
    group.locator("button.resolve").click()
    resolved = page.locator(f"#errors tr[data-fingerprint='{fingerprint}']")
    resolved.locator("button.reopen").wait_for()
    assert "validated first" in resolved.inner_text()
    resolved.locator("button.reopen").click()
    page.locator(f"#errors tr[data-fingerprint='{fingerprint}'] button.resolve").wait_for()
    groups = _api(server, f"/dashboard/{EXT}/errors")["groups"]
    assert next(g for g in groups if g["fingerprint"] == fingerprint)["status"] == "open"
    assert page.errors == []
    page.context.close()


def test_the_dashboard_across_runs_holds_at_every_width(browser: Any, server: ApiServer) -> None:
    """With alerts (active and resolved, with notes), error groups and charts, no cell or
    button breaks a word and nothing scrolls sideways at 360, 768, 1440 and 1920 px."""
    _post = urllib.request.Request(
        f"{server.url}{PREFIX}/alerts/{EXT}/"
        + _api(server, f"/alerts/{EXT}")["alerts"][0]["group"] + "/resolve",
        data=b'{"notes": "a note"}', headers={"Content-Type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(_post, timeout=10).close()
    for width in WIDTHS:
        page = _open(browser, f"{server.url}/", width)
        page.wait_for_selector("#scope:has-text('run #2')")
        page.select_option("#run", "all")
        page.wait_for_selector("#alerts li[data-status=resolved]")
        page.wait_for_selector("#chart-rss[data-gaps='1'], #chart-rss[data-gaps='2']")
        assert page.evaluate(MEASURE) == [], width
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, width
        assert page.errors == []
        page.context.close()
    reopen = urllib.request.Request(_post.full_url.replace("/resolve", "/reopen"), data=b"")
    urllib.request.urlopen(reopen, timeout=10).close()


#: Values and units a figure takes: durations, sizes, shares, counts, odd metric units, and
#: the edges of the rule (rounding up into the next unit, ties, negatives, zero).
SAMPLES = [
    (v, u)
    for u in ("ms", "MiB", "bytes", "%", "percent", "s", "seconds", "records", "errors", "", "req")
    for v in (0, 0.0004, 0.317914, 0.5, 1, 2.5, 9.996, 12.345, 85.5, 99.95, 999.96, 1023.9,
              1234.5, 59_999.9, 90_000, 1_048_576, 98_631_680, -2.5, -0.0001, 1e12)
]  # fmt: skip


def test_python_and_the_pages_format_every_figure_alike(browser: Any) -> None:
    """figures.format_value and the pages' kariFormat give the same text for every sample."""
    page = browser.new_context().new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(content=f"var KARI_DISPLAY = {json.dumps(display_rules())};\n{FIGURES_JS}")
    shown = page.evaluate("samples => samples.map(([v, u]) => kariFormat(v, u))", SAMPLES)
    expected = [format_value(v, u) for v, u in SAMPLES]
    assert shown == expected
    assert format_value(94.059, "MiB") == "94.1 MiB"
    assert format_value(0.317914, "ms") == "0.318 ms"
    assert format_value(999.96, "ms") == "1.00 s"
    assert format_value(float("nan"), "ms") == "n/a"
    page.context.close()


SAMPLED_TEST = """
import time

def test_sampled():
    time.sleep(0.4)
"""


def test_a_tests_sample_charts_answer_questions(browser: Any, tmp_path: Path) -> None:
    """A test's CPU and RSS samples are charted in catalogue units, with where its call and
    teardown began; pointing at a chart names the nearest sample's time and value."""
    (tmp_path / "test_sampled.py").write_text(SAMPLED_TEST, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kari-debug",
         "--kari-store=none", "--kari-metrics-interval=0.02", "--kari-report=report.html",
         "test_sampled.py"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    page = _open(browser, (tmp_path / "report.html").as_uri())
    page.wait_for_selector("html[data-ready=true]")
    page.evaluate("window.kariReport.open(0, true)")
    rss = page.locator("#detail-0 figure.chart", has_text="RSS").first
    rss.wait_for()
    ticks = rss.locator("svg text").all_text_contents()
    assert any(t.endswith("MiB") for t in ticks), ticks
    assert any(t.endswith(" ms") for t in ticks), ticks
    assert "call" in rss.locator("svg text.phase-label").all_text_contents()
    box = rss.locator("svg").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    readout = rss.locator("p.readout").inner_text()
    assert readout.startswith("RSS at "), readout
    assert readout.endswith("MiB"), readout
    assert page.errors == []
    page.context.close()
