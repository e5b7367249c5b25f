"""The run sections built once (pytest_kari_debug.summaries) from hand-made test records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_kari_debug.figures import MIB, ROOT_TAG
from pytest_kari_debug.summaries import (
    RunDigest,
    affected_tests,
    metrics_line,
    metrics_section,
    profiling_section,
    run_sections,
    tracing_line,
    tracing_section,
)
from pytest_kari_debug.views import metric_stats, run_error_groups


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
    digest = RunDigest(slow_span_ms=10.0)
    for test in tests:
        digest.add(test)
    assert digest.count == 12
    assert digest.sections() == built
    assert built.error_groups == run_error_groups(tests)
    assert [g["count"] for g in built.error_groups] == [6]


def _raising_on(nodeid: str) -> Any:
    def add(self: object, order: int, record: Any, figures: Any) -> None:
        if record.nodeid == nodeid:
            raise RuntimeError(f"odd record {nodeid}")

    return add


@pytest.mark.parametrize("digest", [False, True], ids=["one-pass", "digest"])
def test_a_part_that_raises_costs_its_own_section_only(
    monkeypatch: pytest.MonkeyPatch, digest: bool
) -> None:
    """A summary part that raises on one test's record, or when its section is made, is set
    aside with its name and error; every other section is what it is without the failure
    (before, one raising part left every section of the run empty)."""
    from pytest_kari_debug.summaries import sections

    tests = [
        _test(f"t.py::t{i}", cpu_ms=float(i),
              collected_data={**_metrics([("latency", float(i), float(i))]),
                              "error_tracking": {"records": [{"error_type": "E"}] * (i % 2)},
                              "profiling": {"profile": {"overhead": {"percent": 1.0}}}})
        for i in range(6)
    ]  # fmt: skip

    def build() -> Any:
        if not digest:
            return run_sections(tests)
        kept = RunDigest()
        for test in tests:
            kept.add(test)
        return kept.sections()

    whole = build()
    assert whole.failed == ()
    monkeypatch.setattr(sections._MetricsPart, "add", _raising_on("t.py::t3"))

    def broken_section(self: object) -> None:
        raise ValueError("no profile today")

    monkeypatch.setattr(sections._ProfilingPart, "section", broken_section)
    built = build()
    assert built.failed == (
        "the metrics section: RuntimeError: odd record t.py::t3",
        "the profiling section: ValueError: no profile today",
    )
    assert built.metrics == metrics_section([])  # empty, never a part of the tests
    assert built.profiling is None
    assert whole.profiling is not None
    assert built.error_groups == whole.error_groups
    assert [g["count"] for g in built.error_groups] == [3]
    assert built.affected_tests == whole.affected_tests == 3
    assert built.logs == whole.logs
    assert (built.alerts_judged, built.alerted_tests) == (whole.alerts_judged, whole.alerted_tests)


def test_a_raising_summary_part_is_a_diagnostic_naming_it_and_the_rest_is_summarised(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a run, a part that raises is one KariDebugWarning and diagnostic naming the part;
    outcomes are unchanged and the other sections (alerts, errors in the terminal and the
    JSON) are whole."""
    from pytest_kari_debug.summaries import sections

    monkeypatch.setattr(sections._LogsPart, "add", _raising_on("test_odd.py::test_fails"))
    pytester.makepyfile(test_odd=ODD_TESTS)
    result = pytester.runpytest_inprocess(
        "--kari-debug", "--kari-fail-on=none", "--kari-json=run.json", "-p", "no:randomly", "-v"
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["alerts: 2 fired in tests (1 medium, 1 low)*"])
    result.stdout.fnmatch_lines(["errors: 3 in 3 group(s), 3 test(s) affected*"])
    result.stdout.fnmatch_lines(
        ["*internal error in summarising the run's tests: the log counts: RuntimeError:"
         " odd record test_odd.py::test_fails*"]
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*KariDebugWarning*the log counts*"])
    document = json.loads((pytester.path / "run.json").read_text())
    assert document["sections"]["errors"]["affected_tests"] == 3
    assert any("the log counts" in d for d in document["diagnostics"])
    assert document["sections"]["metrics"]["extensions"]


PARSE_COUNTER = """
import pytest
from pytest_kari_debug.model import RecordView, TestRecord

PARSED, AT_END = [], []
_from_dict = TestRecord.from_dict.__func__
_view = RecordView.__init__


def _counting(cls, data):
    PARSED.append(data.get("nodeid"))
    return _from_dict(cls, data)


def _counting_view(self, data):
    PARSED.append(data.get("nodeid"))
    _view(self, data)


TestRecord.from_dict = classmethod(_counting)
RecordView.__init__ = _counting_view


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    AT_END.append(len(PARSED))  # the end of the run starts here


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    TestRecord.from_dict = classmethod(_from_dict)  # pytester runs in this process
    RecordView.__init__ = _view
    with open("parsed.txt", "w") as handle:
        handle.write("\\n".join(PARSED[:AT_END[0]]) + "\\n--\\n" + "\\n".join(PARSED[AT_END[0]:]))
"""
THREE_TESTS = """
import pytest

def test_a(kari_metrics):
    kari_metrics.record_metric("queue", 1.0)

@pytest.mark.kari_profile
def test_b():
    sum(range(1000))

def test_c():
    raise ValueError("boom")
"""


def _parsed(pytester: pytest.Pytester) -> tuple[list[str], list[str]]:
    """The records read (as a TestRecord or a view of one) during the run and at its end."""
    during, end = (pytester.path / "parsed.txt").read_text().split("\n--\n")
    return [n for n in during.split("\n") if n], [n for n in end.split("\n") if n]


def test_the_end_of_a_run_parses_each_test_record_once(pytester: pytest.Pytester) -> None:
    """The metrics, errors, logs, alerts and profiling sections (and tracing under
    --kari-trace) are built from the records kept in memory, in one read of each as its test
    is kept: the end of the run reads none."""
    pytester.makeconftest(PARSE_COUNTER)
    pytester.makepyfile(test_three=THREE_TESTS)
    result = pytester.runpytest("--kari-debug", "--kari-trace", "--kari-json=run.json")
    result.assert_outcomes(passed=2, failed=1)
    during, end = _parsed(pytester)
    assert sorted(during) == sorted(f"test_three.py::test_{name}" for name in "abc")
    assert end == []
    sections = json.loads((pytester.path / "run.json").read_text())["sections"]
    assert sections["metrics"]["metrics"]["queue"]["count"] == 1
    assert sections["errors"]["affected_tests"] == 1
    assert sections["profiling"]["profiled_tests"] == 1
    assert sections["tracing"]["root_spans"] == 3


def test_a_test_the_digest_missed_makes_the_end_read_each_record_once(
    pytester: pytest.Pytester,
) -> None:
    """When a test could not be added to the run's digest (an internal error, a diagnostic),
    the end of the run builds every section in one pass over the journal instead: each
    record parsed once there, and the sections are the same."""
    pytester.makeconftest(
        PARSE_COUNTER
        + """
from pytest_kari_debug.summaries import RunDigest

_add = RunDigest.add


def _failing_add(self, test):
    if test.get("nodeid", "").endswith("test_b"):
        raise RuntimeError("digest lost a test")
    _add(self, test)


RunDigest.add = _failing_add
_unconfigure = pytest_unconfigure


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    RunDigest.add = _add  # pytester runs in this process: later runs get the real one
    _unconfigure(config)
"""
    )
    pytester.makepyfile(test_three=THREE_TESTS)
    result = pytester.runpytest("--kari-debug", "--kari-trace", "--kari-json=run.json")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*internal error in summarising the run's tests: RuntimeError*"])
    during, end = _parsed(pytester)
    assert "test_three.py::test_b" not in during  # the digest missed it
    assert sorted(end) == sorted(f"test_three.py::test_{name}" for name in "abc")
    sections = json.loads((pytester.path / "run.json").read_text())["sections"]
    assert sections["metrics"]["metrics"]["queue"]["count"] == 1
    assert sections["errors"]["affected_tests"] == sections["errors"]["total_errors"] == 1
    assert sections["profiling"]["profiled_tests"] == 1
    assert sections["tracing"]["root_spans"] == 3


ODD_RECORDS = """
import dataclasses
import datetime
import json
import math

import pytest

from pytest_kari_debug.plugin.state import STATE
from pytest_kari_debug.storage import dumps
from pytest_kari_debug.summaries import run_sections


@pytest.hookimpl(trylast=True)
def pytest_kari_debug_test_record(item, record):
    data = record["collected_data"]
    if item.name == "test_odd":  # what a record in memory may hold and its JSON may not
        metrics = data["metrics"]
        metrics["records"] = (
            *metrics["records"],
            {"name": "odd", "value": math.nan, "ts": math.inf, "unit": "ms"},
            {"name": 7, "value": True, "ts": 1.0},
            {"name": "odd", "value": 2.5, "ts": None, "unit": datetime.date(2020, 1, 1)},
        )
        errors = data["error_tracking"]
        errors["records"] = tuple(errors["records"])
        errors["groups"] = tuple(errors["groups"])
        logs = data["logging"]
        logs["records"] = (*logs["records"], {"level": None}, {"level": 10, "origin": None})
        logs["dropped"] = 3
        data[3] = {"records": [{"name": "x"}]}
        record["extra"]["when"] = datetime.datetime(2020, 1, 1)
        record["cpu_ms"] = math.nan
    if item.name == "test_no_extension":
        record["extension_id"] = ""
        record["phases"] = {"setup": 1, "call": math.inf}


@pytest.hookimpl(tryfirst=True)
def pytest_kari_debug_run_finished(config, tests, built):
    state = config.stash[STATE]
    slow = state.settings.configuration.slow_span_ms if state.settings.trace else None
    again = run_sections(tests, slow)  # one pass over the journal, as without the digest

    def written(sections):
        return json.loads(dumps(dataclasses.asdict(sections)))

    with open("compared.json", "w") as handle:
        json.dump({"digest": written(built), "journal": written(again),
                   "complete": state.digest.count == state.recorded}, handle)
"""

ODD_TESTS = """
import logging

import pytest

log = logging.getLogger("odd")


@pytest.mark.kari_alert("errors > 0", severity="low")
def test_odd(kari_metrics, kari_errors, kari_tracer):
    kari_metrics.record_metric("queue", 3.0, unit="items")
    log.warning("careful")
    log.error("bad %s", 1)
    kari_errors.record_error("ValueError", "invalid input 3")
    with kari_tracer.start_span("work"):
        pass


@pytest.mark.kari_alert("log.error > 0", severity="medium")
def test_no_extension(kari_errors):
    log.error("again")
    kari_errors.record_error("KeyError", "missing key 'a'")


@pytest.mark.kari_profile
def test_profiled():
    sum(range(10_000))


def test_fails():
    raise TimeoutError("too slow")
"""


def test_the_sections_built_as_tests_are_kept_are_those_of_the_journal(
    pytester: pytest.Pytester,
) -> None:
    """Every part of the run's sections (metrics, profiling, tracing, affected tests, error
    groups, log counts, fired alerts) built from each record in memory as its test is kept
    equals what one pass over the run's journal builds, with every feature on and records
    holding what JSON turns into something else (tuples, NaN, infinity, a date, an integer
    key, no extension id)."""
    pytester.makeconftest(ODD_RECORDS)
    pytester.makepyfile(test_odd=ODD_TESTS)
    result = pytester.runpytest(
        "--kari-debug", "--kari-trace", "--kari-memory", "--kari-fail-on=none",
        "--kari-json=run.json", "-p", "no:randomly",
    )  # fmt: skip
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.no_fnmatch_line("*internal error*")
    compared = json.loads((pytester.path / "compared.json").read_text())
    assert compared["complete"]
    assert compared["digest"] == compared["journal"]
    built = compared["digest"]
    assert built["logs"]["dropped"] == 3
    assert {"ERROR": 2, "None": 1, "10": 1}.items() <= built["logs"]["by_level"].items()
    assert sorted(g["error_type"] for g in built["error_groups"]) == [
        "KeyError", "TimeoutError", "ValueError",
    ]  # fmt: skip
    assert built["alerts_judged"] is True
    assert sorted(t["nodeid"] for t in built["alerted_tests"]) == [
        "test_odd.py::test_no_extension", "test_odd.py::test_odd",
    ]  # fmt: skip
    assert built["profiling"]["profiled_tests"] >= 1
    assert built["tracing"]["spans"] == 1
    assert built["metrics"]["metrics"]["odd"]["count"] == 1  # NaN and a bool are no values


JOURNAL_READS = """
import pytest
from pytest_kari_debug.journal import MemoryRecords, RunJournal

READS = []


ORIGINAL = {cls: cls.texts for cls in (RunJournal, MemoryRecords)}


def _counted(cls):
    def counting(self):
        READS.append(cls.__name__)
        return ORIGINAL[cls](self)

    cls.texts = counting


_counted(RunJournal)
_counted(MemoryRecords)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    READS.clear()  # the end of the run starts here


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    for cls, texts in ORIGINAL.items():  # pytester runs in this process
        cls.texts = texts
    with open("reads.txt", "w") as handle:
        handle.write(" ".join(READS))
"""


@pytest.mark.parametrize(
    ("args", "reads"),
    [
        pytest.param([], 0, id="kari-debug"),
        pytest.param(["--kari-trace", "--kari-profile", "--kari-memory"], 0, id="every-feature"),
        pytest.param(["--kari-store=none"], 0, id="no-store"),
        pytest.param(["--kari-json=run.json"], 1, id="json"),
        pytest.param(["--kari-report=run.html"], 1, id="report"),
        pytest.param(["--kari-json=run.json", "--kari-report=run.html"], 2, id="json-and-report"),
    ],
)
def test_the_end_of_a_run_reads_the_journal_only_for_an_export(
    pytester: pytest.Pytester, args: list[str], reads: int
) -> None:
    """The end of a --kari-debug run reads no test record again: the summaries, the error
    groups synced with the store and the sections it keeps were built as the tests were kept.
    An export that writes every test (the JSON document, the HTML report with its error groups
    and alerts) streams the journal once."""
    pytester.makeconftest(JOURNAL_READS)
    pytester.makepyfile(test_odd=ODD_TESTS)
    result = pytester.runpytest("--kari-debug", "--kari-fail-on=none", *args)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["alerts: 2 fired in tests (1 medium, 1 low)*"])
    result.stdout.fnmatch_lines(["errors: 3 in 3 group(s), 3 test(s) affected*"])
    result.stdout.no_fnmatch_line("*internal error*")
    assert len((pytester.path / "reads.txt").read_text().split()) == reads


def test_the_run_lets_go_of_its_sessions_at_its_end(pytester: pytest.Pytester) -> None:
    """Once the outputs are written, the run's managers drop their sessions' records: the
    garbage collector's passes at pytest's exit need not walk a thousand tests' data."""
    pytester.makeconftest(
        """
        import pytest

        SEEN = []

        @pytest.fixture(autouse=True)
        def _manager(kari_debug):
            SEEN.append(kari_debug)

        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(session):
            with open("during.txt", "w") as handle:
                handle.write(str(len(SEEN[-1].sessions)))

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):
            with open("after.txt", "w") as handle:
                handle.write(str(len(SEEN[-1].sessions)))
        """
    )
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass\n")
    result = pytester.runpytest("--kari-debug")
    result.assert_outcomes(passed=2)
    assert (pytester.path / "during.txt").read_text() == "2"
    assert (pytester.path / "after.txt").read_text() == "0"
