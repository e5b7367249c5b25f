"""``kari.*`` properties in pytest's JUnit XML, read back with an XML parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import require_tool

TESTS = """
import time
import pytest

@pytest.mark.kari_budget(duration_ms=1)
def test_over_budget():
    time.sleep(0.05)

@pytest.mark.kari_budget(duration_ms=60000)
def test_within_budget(kari_errors):
    kari_errors.record_error("ValueError", "bad <input> | x")

@pytest.mark.parametrize("v", ["a&b|<c>"])
def test_plain(v):
    bytearray(2_000_000)
"""


def properties(path: Path) -> dict[str, dict[str, str]]:
    """Each test case's properties, by ``classname::name``."""
    found: dict[str, dict[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        found[case.get("name", "")] = props
    return found


@pytest.mark.parametrize("family", ["xunit2", "xunit1"])
def test_junit_testcases_carry_kari_properties(pytester: pytest.Pytester, family: str) -> None:
    """With --junitxml each test case has its duration, CPU, peak RSS, errors, alerts and budget
    verdict, and a link to its entry in the report (both JUnit families)."""
    pytester.makepyfile(test_j=TESTS)
    result = pytester.runpytest(
        "--junitxml=out.xml", "--kari-report=report.html", "-o", f"junit_family={family}"
    )
    result.assert_outcomes(passed=2, failed=1)
    props = properties(pytester.path / "out.xml")
    assert set(props) == {"test_over_budget", "test_within_budget", "test_plain[a&b|<c>]"}
    over, within, plain = (
        props[n] for n in ("test_over_budget", "test_within_budget", "test_plain[a&b|<c>]")
    )
    for case in (over, within, plain):
        assert float(case["kari.duration_ms"]) > 0
        assert float(case["kari.cpu_ms"]) >= 0
        assert float(case["kari.peak_rss_mb"]) > 1
        link, _, anchor = case["kari.report"].partition("#test=")
        assert link == str(pytester.path / "report.html")
        assert unquote(anchor).startswith("test_j.py::test_")
    assert float(over["kari.call_ms"]) >= 50
    assert over["kari.outcome"] == "failed"
    assert over["kari.budget"].startswith(
        "exceeded: [high] kari_budget(duration_ms=1): duration_ms = "
    )
    assert int(over["kari.alerts"]) >= 1
    assert "duration_ms" in over["kari.verdicts"]
    assert within["kari.budget"] == "within"
    assert within["kari.errors"] == "1"
    assert within["kari.alerts"] == "0"
    assert "kari.budget" not in plain
    assert unquote(plain["kari.report"].partition("#test=")[2]) == "test_j.py::test_plain[a&b|<c>]"


def test_junit_properties_from_xdist_workers(pytester: pytest.Pytester) -> None:
    """Under xdist the workers' test cases carry the properties in the controller's XML."""
    pytester.makepyfile(test_j=TESTS)
    result = pytester.runpytest("-n", "2", "--junitxml=out.xml", "--kari-debug", "-p", "xdist")
    result.assert_outcomes(passed=2, failed=1)
    props = properties(pytester.path / "out.xml")
    assert all(float(case["kari.duration_ms"]) > 0 for case in props.values())
    assert props["test_over_budget"]["kari.budget"].startswith("exceeded")


def test_no_properties_without_kari_sessions(pytester: pytest.Pytester) -> None:
    """A run that does not use kari-debug leaves the JUnit XML as pytest writes it."""
    pytester.makepyfile("def test_ok():\n    pass\n")
    pytester.runpytest("--junitxml=out.xml").assert_outcomes(passed=1)
    assert properties(pytester.path / "out.xml") == {"test_ok": {}}


def test_report_link_opens_that_test_in_the_report(pytester: pytest.Pytester) -> None:
    """The kari.report link (report.html#test=<node id>) opens that test's entry in Chromium."""
    from test_report_browser import CHROMIUM, CHROMIUM_ARGS, expect, index_of

    require_tool(CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    pytester.makepyfile(test_j=TESTS)
    pytester.runpytest("--junitxml=out.xml", "--kari-report=report.html", "--kari-store=none")
    link = properties(pytester.path / "out.xml")["test_plain[a&b|<c>]"]["kari.report"]
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            path, _, anchor = link.partition("#")
            page.goto(f"{Path(path).as_uri()}#{anchor}")
            page.wait_for_selector("html[data-ready=true]")
            index = index_of(page, "test_plain[a&b|<c>]")
            expect(page.locator(f"#detail-{index}")).to_have_count(1)
            assert page.locator(f"#test-{index}").get_attribute("aria-expanded") == "true"
        finally:
            chromium.close()
