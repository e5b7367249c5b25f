"""The HTML report's model and page, checked by parsing the page back (no browser)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from pytest_kari_debug.report import (
    ReportError,
    ReportLimits,
    build_report_model,
    render_report,
    templates_dir,
    write_report,
)
from pytest_kari_debug.report.sample import sample_run
from pytest_kari_debug.report.templates import fmt_bytes, fmt_ms, script_json

HOSTILE = "</script><script>window.__kariPwned=1</script>\"'&<!-- </textarea><b>x"


class Page(HTMLParser):
    """Collects what the report's checks need from a parsed page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.pre_texts: list[str] = []
        self._script: dict[str, str | None] | None = None
        self._pre_depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script, self._text = dict(attrs), []
        elif tag == "pre":
            self._pre_depth += 1
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._text)))
            self._script = None
        elif tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
            self.pre_texts.append("".join(self._text))

    def handle_data(self, data: str) -> None:
        if self._script is not None or self._pre_depth:
            self._text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def payload(html: str) -> dict[str, Any]:
    page = parse(html)
    (data,) = [text for attrs, text in page.scripts if attrs.get("id") == "kari-data"]
    return json.loads(data)


def test_templates_are_found_in_the_repository() -> None:
    """The templates folder holds the page template and its inline assets."""
    folder = templates_dir()
    for name in ("report.html.j2", "report.css", "report.js"):
        assert (folder / name).is_file()


def test_page_is_self_contained() -> None:
    """The page references no other file or host: no src, no link, only in-page anchors."""
    run, tests = sample_run(30)
    page = parse(render_report(run, tests))
    for tag, attrs in page.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed"), tag
        assert "src" not in attrs, (tag, attrs)
        href = attrs.get("href")
        assert href is None or href.startswith("#"), (tag, href)
    assert [attrs.get("type") for attrs, _ in page.scripts] == ["application/json", None]
    (csp,) = [
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert "default-src 'none'" in (csp or "")


def test_csp_allows_exactly_the_inline_code() -> None:
    """The page's Content-Security-Policy lists the hashes of its own style and script only."""
    run, tests = sample_run(3)
    html = render_report(run, tests)
    page = parse(html)
    code = page.scripts[1][1]
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    (csp,) = [
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert f"script-src 'sha256-{digest}'" in (csp or "")
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    style_digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{style_digest}'" in (csp or "")


def test_embedded_json_round_trips_every_test() -> None:
    """The JSON block parses back with one row per test, in run order, with its figures."""
    run, tests = sample_run(50)
    data = payload(render_report(run, tests))
    assert data["format"] == "pytest-kari-debug/report"
    assert [row["nodeid"] for row in data["tests"]] == [t["nodeid"] for t in tests]
    assert [row["outcome"] for row in data["tests"]] == [t["outcome"] for t in tests]
    first = data["tests"][0]
    assert first["t0"] == tests[0]["started_at"]
    # the peak RSS is stored once, in the test's resources (the page reads it from there)
    peak = tests[0]["collected_data"]["metrics"]["resources"]["peak_rss_bytes"]
    assert "rss" not in first
    assert first["data"]["metrics"]["resources"]["peak_rss_bytes"] == peak
    assert data["extensions"][first["ext"]] == tests[0]["extension_id"]
    logs = first["data"]["logging"]["records"]
    assert logs["message"] == [
        r["message"] for r in tests[0]["collected_data"]["logging"]["records"]
    ]


def test_hostile_text_stays_text() -> None:
    """Test names, logs and tracebacks holding markup neither close the data block nor add tags."""
    run, tests = sample_run(40, payload=HOSTILE)
    failing = next(t for t in tests if t["outcome"] == "failed")
    html = render_report(run, tests)
    page = parse(html)
    assert len(page.scripts) == 2
    assert not any(tag == "b" for tag, _ in page.tags)
    assert not any(tag == "textarea" for tag, _ in page.tags)
    assert failing["longrepr"] in page.pre_texts
    data = payload(html)
    assert data["tests"][0]["nodeid"].endswith(f"[{HOSTILE}]")
    assert HOSTILE in data["tests"][0]["data"]["logging"]["records"]["message"][0]
    raw_block = html[html.index('id="kari-data">') : html.index("</script>")]
    assert "<" not in raw_block[len('id="kari-data">') :]


def test_script_json_escapes_markup_characters() -> None:
    """script_json writes <, > and & as JSON escapes, and NaN or objects as null or repr."""
    text = str(script_json({"a": "</script><!--&\u2028"}))
    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!--&\u2028"}
    assert json.loads(str(script_json({"a": [math.nan, math.inf], (1, 2): 3}))) == {
        "a": [None, None],
        "(1, 2)": 3,
    }


def test_non_json_values_are_made_safe() -> None:
    """NaN, infinities and arbitrary objects in records do not break the page's JSON."""
    run, tests = sample_run(2)
    tests[0]["collected_data"]["metrics"]["records"][0]["value"] = math.inf
    tests[0]["collected_data"]["logging"]["records"][0]["fields"] = {"obj": object(), "n": math.nan}
    data = payload(render_report(run, tests))
    assert data["tests"][0]["data"]["metrics"]["records"]["value"][0] is None
    fields = data["tests"][0]["data"]["logging"]["records"]["fields"][0]
    assert fields["obj"].startswith("<object object")
    assert fields["n"] is None


def test_summary_figures() -> None:
    """The model counts outcomes, alerts by severity and error groups, and ranks tests."""
    run, tests = sample_run(300)
    model = build_report_model(run, tests, diagnostics=["store disabled: disk full"])
    counts = dict(model.outcomes)
    assert sum(counts.values()) == 300
    assert counts["failed"] == sum(t["outcome"] == "failed" for t in tests)
    assert next(o for o, _ in model.outcomes) == "failed"
    alerts = [a for t in tests for a in t["collected_data"]["alerting"]["records"]]
    assert sum(n for _, n in model.alerts_by_severity) == len(alerts)
    errors = [e for t in tests for e in t["collected_data"]["error_tracking"]["records"]]
    assert sum(g["count"] for g in model.payload["errorGroups"]) == len(errors)
    assert len({e["fingerprint"] for e in errors}) == len(model.payload["errorGroups"])
    slowest = max(tests, key=lambda t: t["duration_ms"])
    assert model.slowest[0]["nodeid"] == slowest["nodeid"]
    peak = max(tests, key=lambda t: t["collected_data"]["metrics"]["resources"]["peak_rss_bytes"])
    assert model.peak_memory[0]["nodeid"] == peak["nodeid"]
    assert model.diagnostics == ["store disabled: disk full"]
    assert model.failures_total == counts["failed"]


def test_dropped_and_omitted_records_are_counted() -> None:
    """Records dropped by buffers and records the page leaves out both show in the summary."""
    run, tests = sample_run(3)
    logs = tests[0]["collected_data"]["logging"]
    logs["records"] = [dict(logs["records"][0], message=f"m{i}") for i in range(30)]
    logs["dropped"] = 7
    html = render_report(run, tests, limits=ReportLimits(records_per_kind=10))
    data = payload(html)
    kept = data["tests"][0]["data"]["logging"]
    assert kept["records"]["message"] == [f"m{i}" for i in range(20, 30)]
    assert kept["omitted"] == 20
    assert kept["dropped"] == 7
    assert data["dropped"]["logging"] == 7
    assert data["dropped"]["logging (left out of this page)"] == 20
    assert "logging (left out of this page)" in html


def test_a_newer_plugins_components_and_odd_entries_show_as_a_test_record_reads_them() -> None:
    """The page keeps a test's known components in the order written, then a newer plugin's
    (its records and drops too) and its plain values; a known component's entry that is not a
    mapping is left out, as :class:`TestRecord` leaves it out."""
    test = {
        "nodeid": "t.py::test_odd",
        "outcome": "passed",
        "extension_id": "ext",
        "record_version": 2,
        "phases": {"setup": 0.1, "call": 1.0, "teardown": 0.1},
        "duration_ms": 1.1,
        "collected_data": {
            "future_component": {"records": [{"message": "a"}, {"message": "b"}], "dropped": 2},
            "metrics": {"records": [], "dropped": 0, "resources": {"cpu_ms": 0.5}},
            "plain_value": [1, 2],
            "tracing": "not a mapping",
            "logging": {"records": [{"message": "hello", "level": "INFO"}], "dropped": 3},
            "empty_value": "",
        },
    }
    data = payload(render_report({}, [test]))
    kept = data["tests"][0]["data"]
    assert list(kept) == ["plain_value", "metrics", "logging", "future_component"]
    assert kept["plain_value"] == [1, 2]
    assert kept["logging"] == {"records": {"message": ["hello"], "level": ["INFO"]}, "dropped": 3}
    assert kept["future_component"] == {"records": {"message": ["a", "b"]}, "dropped": 2}
    assert data["dropped"] == {"future_component": 2, "logging": 3}
    assert data["tests"][0]["counts"] == {"logs": 1}


def test_call_tree_keeps_the_hottest_nodes() -> None:
    """A big call tree is cut to the node limit, hottest children first, and says how many went."""
    run, tests = sample_run(1)
    tree = {
        "function": "root",
        "time_s": 1.0,
        "self_s": 0.0,
        "children": [
            {"function": f"f{i}", "time_s": i / 100, "self_s": i / 100, "children": []}
            for i in range(10)
        ],
    }
    tests[0]["collected_data"]["profiling"]["call_tree"] = tree
    data = payload(render_report(run, tests, limits=ReportLimits(call_tree_nodes=4)))
    kept = data["tests"][0]["data"]["profiling"]["call_tree"]
    assert [c["function"] for c in kept["children"]] == ["f9", "f8", "f7"]
    assert kept["pruned"] == 7


def test_only_the_first_failures_are_static() -> None:
    """Failing tests up to the limit are in the HTML once; the rest keep their traceback in JSON."""
    run, tests = sample_run(200)
    failing = [i for i, t in enumerate(tests) if t["outcome"] == "failed"]
    assert len(failing) >= 3
    html = render_report(run, tests, limits=ReportLimits(static_failures=2))
    data = payload(html)
    first, second, third = failing[:3]
    assert data["tests"][first]["longreprRef"] == f"fail-{first}"
    assert "longrepr" not in data["tests"][first]
    assert f'id="fail-{second}"' in html
    assert data["tests"][third]["longrepr"] == tests[third]["longrepr"]
    assert f'id="fail-{third}"' not in html
    assert html.count(str(escape(tests[first]["longrepr"]))) == 1


def test_regressions_section_is_summarised() -> None:
    """A regressions section filled by another feature shows as a table in the summary."""
    run, tests = sample_run(2)
    sections = {
        "regressions": {
            "regressions": [
                {"nodeid": "t::slow", "metric": "duration", "baseline": 5.0, "value": 9.5}
            ]
        }
    }
    html = render_report(run, tests, sections=sections)
    assert "<h3>Regressions" in html
    assert "t::slow" in html
    assert "9.5" in html
    assert payload(html)["sections"] == sections


def test_empty_run_renders() -> None:
    """A run without tests still gives a valid page."""
    html = render_report({"rootdir": "/x"}, [])
    assert payload(html)["tests"] == []
    assert "0 tests" in html


def test_bad_limit_is_rejected() -> None:
    """A non-positive report limit is an error naming the limit."""
    with pytest.raises(ReportError, match="records_per_kind"):
        ReportLimits(records_per_kind=0)


def test_unwritable_path_is_a_report_error(tmp_path: Path) -> None:
    """Writing under a file (not a folder) raises ReportError naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReportError, match="cannot write the report"):
        write_report(blocker / "report.html", {}, [])


def test_write_report_is_atomic_and_complete(tmp_path: Path) -> None:
    """write_report leaves one finished file and no temp file behind."""
    run, tests = sample_run(5)
    path = write_report(tmp_path / "out" / "r.html", run, tests)
    assert path.read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert [p.name for p in path.parent.iterdir()] == ["r.html"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.5, "0.500 ms"),
        (12.34, "12.3 ms"),
        (850, "850 ms"),
        (12_345, "12.3 s"),
        (245_000, "4.08 min"),
    ],
)
def test_fmt_ms(value: float, text: str) -> None:
    """Durations read in the unit a person expects, to three significant digits (the
    figures catalogue's rule, figures.format_value)."""
    assert fmt_ms(value) == text


def test_fmt_bytes() -> None:
    """Sizes use binary units."""
    assert fmt_bytes(512) == "512 B"
    assert fmt_bytes(3 * 1024 * 1024) == "3 MiB"
    assert fmt_bytes(3.5 * 1024 * 1024) == "3.50 MiB"
    assert fmt_bytes(None) == "n/a"


def test_error_groups_use_exact_counters_and_states() -> None:
    """Per-group counters past the record limit count; the errors section gives the status."""
    run, tests = sample_run(1)
    data = tests[0]["collected_data"]["error_tracking"]
    data["records"] = [
        {"fingerprint": "fp1", "error_type": "KeyError", "error_message": "'x'", "ts": 1.0}
    ]
    data["groups"] = [
        {"fingerprint": "fp1", "error_type": "KeyError", "message": "'x'", "count": 1500}
    ]
    ext = tests[0]["extension_id"]
    # the errors feature's section: each group's state in the store when the run ended
    stored = {"extension_id": ext, "fingerprint": "fp1", "status": "unresolved", "new": True}
    sections = {"errors": {"groups": [{**stored, "regressed": False}]}}
    model = build_report_model(run, tests, sections=sections)
    (group,) = model.payload["errorGroups"]
    assert group["count"] == 1500
    assert (group["status"], group["new"]) == ("open", True)
    assert model.payload["tests"][0]["counts"]["errors"] == 1500
    assert "★ new" in render_report(run, tests, sections=sections)
    again = {"errors": {"groups": [{**stored, "new": False, "regressed": True}]}}
    (group,) = build_report_model(run, tests, sections=again).payload["errorGroups"]
    assert (group["status"], "new" in group) == ("regressed", False)
    assert "↺ regressed" in render_report(run, tests, sections=again)


def test_gates_comparison_is_summarised() -> None:
    """The gates feature's comparison lists its changes worth a look, with links and counts."""
    run, tests = sample_run(3)
    nodeid = tests[1]["nodeid"]
    changes = [
        {"nodeid": nodeid, "metric": "call_ms", "baseline": 5.0, "current": 9.5,
         "percent": 90.0, "verdict": "regression", "gate": "duration:+25%", "note": ""},
        {"nodeid": tests[0]["nodeid"], "metric": "call_ms", "baseline": 5.0, "current": 5.1,
         "percent": 2.0, "verdict": "ok", "gate": "duration:+25%", "note": ""},
    ]  # fmt: skip
    sections = {"comparison": {"baseline": "main", "regressions": 1, "changes": changes}}
    model = build_report_model(run, tests, sections=sections)
    assert model.regressions_key == "comparison: main"
    assert [r["verdict"] for r in model.regressions] == ["regression"]
    assert model.regressions_note == "1 regression, 1 ok"
    html = render_report(run, tests, sections=sections)
    assert f'<a href="#test-1" class="nodeid">{nodeid}</a>' in html
    assert "✗ regression" in html


def test_an_unknown_report_option_is_refused_naming_the_accepted_ones(tmp_path: Path) -> None:
    """render_report, write_report and build_report_model share their options; a misspelt
    one is an error at the call, not silently ignored."""
    from pytest_kari_debug.report import build_report_model, render_report, write_report

    run, tests = sample_run(2)
    for call in (
        lambda: render_report(run, tests, titel="x"),  # type: ignore[call-arg]
        lambda: write_report(tmp_path / "r.html", run, tests, titel="x"),  # type: ignore[call-arg]
        lambda: build_report_model(run, tests, titel="x"),  # type: ignore[call-arg]
    ):
        with pytest.raises(TypeError, match=r"unknown report option\(s\) titel; accepted: .*title"):
            call()
    assert not (tmp_path / "r.html").exists()
    page = render_report(run, tests, title="Mine", diagnostics=["d1"])
    assert "<title>Mine</title>" in page
    assert "d1" in page
