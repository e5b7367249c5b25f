"""The run sections built once (pytest_kari_debug.summaries) from hand-made test records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_kari_debug.figures import MIB, ROOT_TAG
from pytest_kari_debug.summaries import (
    affected_tests,
    metrics_line,
    metrics_section,
    profiling_section,
    run_sections,
    tracing_line,
    tracing_section,
)
from pytest_kari_debug.views import metric_stats


def _test(nodeid: str, **data: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_version": 2, "nodeid": nodeid, "extension_id": "ext", "outcome": "passed",
        "phases": {"setup": 1.0, "call": 10.0, "teardown": 1.0}, "duration_ms": 11.0,
        "collected_data": {},
    }  # fmt: skip
    record.update(data)
    return record


def _metrics(points: list[tuple[str, float, float]], **details: Any) -> dict[str, Any]:
    records = [{"name": n, "value": v, "ts": ts, "unit": "ms"} for n, v, ts in points]
    return {"metrics": {"records": records, **details}}


def test_metrics_section_reads_each_tests_own_figures_and_one_statistic() -> None:
    """Tops are the catalogue's figures in base units: "most CPU" is the test's own cpu_ms,
    not the session's reading with the plugin's work in it; each metric's statistics are
    views.metric_stats (the report's table, the dashboard) plus their sum."""
    busy = _test(
        "t.py::busy", cpu_ms=40.0,
        collected_data=_metrics(
            [("latency", 3.0, 1.0), ("latency", 1.0, 2.0)],
            resources={"cpu_ms": 45.0, "peak_rss_bytes": 100 * MIB + 123},
            memory={"allocated_bytes": 5000, "peak_bytes": 9000},
        ),
    )  # fmt: skip
    # more session CPU (the plugin's own work was in that reading), less of the test's own
    noisy = _test(
        "t.py::noisy", cpu_ms=30.0,
        collected_data=_metrics([("latency", 2.0, 3.0)],
                                resources={"cpu_ms": 90.0, "peak_rss_bytes": 50 * MIB}),
    )  # fmt: skip
    section = metrics_section([busy, noisy, _test("t.py::no_metrics")])
    assert section["top_cpu_ms"] == [
        {"nodeid": "t.py::busy", "cpu_ms": 40.0}, {"nodeid": "t.py::noisy", "cpu_ms": 30.0},
    ]  # fmt: skip
    assert section["top_peak_rss_bytes"][0] == {
        "nodeid": "t.py::busy", "peak_rss_bytes": 100 * MIB + 123,
    }  # fmt: skip
    assert section["top_allocated_bytes"] == [{"nodeid": "t.py::busy", "allocated_bytes": 5000}]
    assert section["extensions"] == {"ext": {"tests": 2, "points": 3, "dropped": 0}}
    expected = metric_stats("latency", "ms", [(1.0, 3.0), (2.0, 1.0), (3.0, 2.0)])
    assert section["metrics"]["latency"] == {**expected, "sum": 6.0}
    assert section["metrics"]["latency"]["last"] == 2.0
    line = metrics_line(section)
    assert line is not None
    assert "most CPU 40.0 ms (t.py::busy)" in line
    assert metrics_line(metrics_section([_test("t.py::none")])) is None


def test_tracing_section_counts_the_tests_spans_apart_from_their_root_spans() -> None:
    root = {"name": "t.py::a", "trace_id": "a" * 32, "span_id": "1" * 16, "duration_ms": 50.0,
            "tags": {ROOT_TAG: True}}  # fmt: skip
    child = {"name": "db", "trace_id": "a" * 32, "span_id": "2" * 16, "parent_id": "1" * 16,
             "duration_ms": 20.0, "tags": {}}  # fmt: skip
    traced = _test("t.py::a", collected_data={"tracing": {"records": [root, child], "dropped": 2}})
    section = tracing_section([traced, _test("t.py::untraced")], slow_span_ms=10.0)
    # the spans figure: the test's own kept and dropped spans
    assert (section["spans"], section["root_spans"], section["dropped_spans"]) == (3, 1, 2)
    assert section["traces"] == 1
    assert [s["name"] for s in section["slowest"]] == ["t.py::a", "db"]
    assert tracing_line(section) == (
        "tracing: 3 spans and 1 test root spans in 1 traces (2 spans dropped, 0 tests unsampled)"
    )


def test_profiling_section_ranks_tests_by_their_call_ms_figure() -> None:
    profile = {"profile": {"overhead": {"percent": 1.0, "limit_percent": 5.0}}}
    tests = [
        _test(f"t.py::t{i}", phases={"setup": 100.0, "call": float(i)},
              collected_data={"profiling": profile})
        for i in range(7)
    ]  # fmt: skip
    section = profiling_section(tests)
    assert section is not None
    assert section["profiled_tests"] == 7
    # by the call phase, not by duration (setup + call): the setups are all 100 ms
    slowest = [t["nodeid"] for t in section["slowest_tests"]]
    assert slowest == [f"t.py::t{i}" for i in (6, 5, 4, 3, 2)]
    assert section["overhead"]["max_percent"] == 1.0
    assert profiling_section([_test("t.py::plain")]) is None


@pytest.mark.parametrize(
    ("error_tracking", "affected"),
    [({"records": [{"error_type": "E"}]}, 1), ({"records": [], "dropped": 3}, 1),
     ({"records": []}, 0)],
)  # fmt: skip
def test_affected_tests_counts_the_errors_figure(
    error_tracking: dict[str, Any], affected: int
) -> None:
    """A test with errors kept or dropped at the cap is affected."""
    tests = [_test("t.py::a", collected_data={"error_tracking": error_tracking}), _test("t.py::b")]
    assert affected_tests(tests) == affected


SHARD = """
def test_{name}(kari_metrics):
    for value in {values}:
        kari_metrics.record_metric("queue", value)
"""


def test_stored_report_of_shards_shows_every_shards_metric_points(
    pytester: pytest.Pytester,
) -> None:
    """`kari-debug report` of a run two shards wrote builds the metrics section from every
    shard's tests (the stored section is the last shard's): the table counts 3 points."""
    from click.testing import CliRunner

    from pytest_kari_debug.cli import cli

    pytester.makepyfile(
        shard_a=SHARD.format(name="a", values=(1.0, 5.0)),
        shard_b=SHARD.format(name="b", values=(9.0,)),
    )
    for shard in ("shard_a.py", "shard_b.py"):
        pytester.runpytest(
            shard, "--kari-debug", "--kari-store=kari.db", "--kari-run-id=ci-7"
        ).assert_outcomes(passed=1)
    shown = CliRunner().invoke(
        cli, ["--store", str(pytester.path / "kari.db"), "report", "--run", "ci-7", "-o",
              str(pytester.path / "report.html")],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    page = (pytester.path / "report.html").read_text(encoding="utf-8")
    row = page.split('<tr data-metric="queue">', 1)[1].split("</tr>", 1)[0]
    cells = [cell.split("<", 1)[0] for cell in row.split('<td class="num">')[1:]]
    assert cells[0] == "3", row  # count, then min, mean, p95, max, last
    assert float(cells[1]) == 1.0
    assert float(cells[4]) == 9.0


def test_run_sections_builds_every_section_as_its_own_function_does() -> None:
    """One pass gives what each section's function gives alone, in the same order of ties."""
    root = {"name": "t.py::a", "trace_id": "a" * 32, "span_id": "1" * 16, "duration_ms": 50.0,
            "tags": {ROOT_TAG: True}}  # fmt: skip
    profile = {"profile": {"overhead": {"percent": 1.0, "limit_percent": 5.0}}}
    tests = [
        _test(f"t.py::t{i}", cpu_ms=float(i % 3), phases={"setup": 1.0, "call": float(i % 4)},
              collected_data={
                  **_metrics([("latency", float(i), float(i))],
                             resources={"peak_rss_bytes": (i % 5) * MIB}),
                  "error_tracking": {"records": [{"error_type": "E"}] * (i % 2)},
                  "profiling": profile if i % 3 == 0 else {},
                  "tracing": {"records": [root]} if i % 2 else {"records": []},
              })
        for i in range(12)
    ]  # fmt: skip
    built = run_sections(tests, slow_span_ms=10.0)
    assert built.metrics == metrics_section(tests)
    assert built.profiling == profiling_section(tests)
    assert built.affected_tests == affected_tests(tests) == 6
    assert built.tracing == tracing_section(tests, 10.0)
    assert run_sections(tests).tracing is None  # an untraced run has no tracing figures


PARSE_COUNTER = """
import pytest
from pytest_kari_debug.model import TestRecord

PARSED = []
_from_dict = TestRecord.from_dict.__func__


def _counting(cls, data):
    PARSED.append(data.get("nodeid"))
    return _from_dict(cls, data)


TestRecord.from_dict = classmethod(_counting)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    PARSED.clear()  # the end of the run starts here


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    with open("parsed.txt", "w") as handle:
        handle.write("\\n".join(PARSED))
"""


def test_the_end_of_a_run_parses_each_test_record_once(pytester: pytest.Pytester) -> None:
    """The metrics, errors and profiling sections (and tracing under --kari-trace) share one
    pass over the run's journal: each test's record is parsed into a TestRecord once."""
    pytester.makeconftest(PARSE_COUNTER)
    pytester.makepyfile(
        test_three="""
        import pytest

        def test_a(kari_metrics):
            kari_metrics.record_metric("queue", 1.0)

        @pytest.mark.kari_profile
        def test_b():
            sum(range(1000))

        def test_c():
            raise ValueError("boom")
        """
    )
    result = pytester.runpytest("--kari-debug", "--kari-trace", "--kari-json=run.json")
    result.assert_outcomes(passed=2, failed=1)
    parsed = (pytester.path / "parsed.txt").read_text().split("\n")
    assert sorted(parsed) == sorted(f"test_three.py::test_{name}" for name in "abc")
    sections = json.loads((pytester.path / "run.json").read_text())["sections"]
    assert sections["metrics"]["metrics"]["queue"]["count"] == 1
    assert sections["errors"]["affected_tests"] == 1
    assert sections["profiling"]["profiled_tests"] == 1
    assert sections["tracing"]["root_spans"] == 3
