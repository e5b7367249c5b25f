"""The ``kari-debug`` command line against a store written by a real pytest run."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from pytest_kari_debug.cli import cli, exports, main
from pytest_kari_debug.cli.figures import figures_of
from pytest_kari_debug.exporters.json_export import SCHEMA_PATH
from pytest_kari_debug.sources import StoreSource
from pytest_kari_debug.storage import Store

DEMO = """
import asyncio
import time

import pytest

pytestmark = pytest.mark.kari_extension("my-ext")


def test_api(kari_logger, kari_metrics, kari_errors, kari_tracer):
    kari_logger.info("extension started", version="1.0.0")
    with kari_logger.correlation_context("req-123"):
        kari_logger.error("API request failed", status_code=500)
    for value in (100.0, 200.0, 300.0):
        kari_metrics.record_metric("response_time", value, "ms")
    kari_errors.record_error("ValueError", "invalid input 42", context={"operation": "parse"})
    context = kari_tracer.start_trace("user_request")
    with kari_tracer.start_span("validate_input") as span:
        span.set_tag("input_type", "json")
    kari_tracer.finish_trace(context.trace_id)


def test_slow(kari_logger, kari_errors, kari_alerts):
    time.sleep(0.03)
    kari_logger.warning("slow dependency", dependency="db")
    kari_errors.record_error("ValueError", "invalid input 7")
    asyncio.run(
        kari_alerts.create_alert(
            alert_type="high_cpu", severity="medium", title="High CPU Usage",
            message="CPU usage is 85%", metric_name="cpu_percent", current_value=85.0,
            threshold_value=80.0,
        )
    )
    kari_alerts.raise_alert("queue_depth", "low", "Queue growing", "depth 12", "queue_size", 12.0)
"""


@pytest.fixture
def store(pytester: pytest.Pytester, pytester_store: Path) -> Path:
    """A store holding one run of the demo tests of extension my-ext."""
    pytester.makepyfile(test_demo=DEMO)
    result = pytester.runpytest("--kari-debug", "--kari-trace", *QUIET)
    result.assert_outcomes(passed=2)
    assert pytester_store.exists()
    return pytester_store


#: Inner pytest runs: no cache folder, no pytest-asyncio (its deprecation warning is noise here).
QUIET = ("-p", "no:cacheprovider", "-p", "no:asyncio")


def kari(store: Path | None, *args: str) -> Result:
    """Run kari-debug in-process with click's test runner."""
    prefix = ["--store", str(store)] if store is not None else []
    return CliRunner().invoke(cli, [*prefix, *args])


def json_out(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_error_line(result: Result) -> str:
    """The stderr of a failed command: exactly one `kari-debug: error:` line."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kari-debug: error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


# status, logs ----------------------------------------------------------------------------
def test_status_shows_last_run_counts_and_store(store: Path) -> None:
    """status names the extension, the last run's outcomes, record counts and store health."""
    result = kari(store, "--extension-id", "my-ext", "status")
    assert result.exit_code == 0, result.output
    assert "my-ext" in result.stdout
    assert "2 passed" in result.stdout
    assert "log " in result.stdout
    assert "schema" in result.stdout
    assert "ok" in result.stdout
    data = json_out(kari(store, "--format", "json", "status"))
    assert data["extension_id"] == "my-ext"
    assert data["last_run"]["outcomes"] == {"passed": 2}
    assert data["records"]["error"] == 2
    assert data["store"]["integrity"] == "ok"
    assert data["managers"][0]["running"] is False


def test_logs_show_filters_by_level_grep_test_and_correlation(store: Path) -> None:
    """logs show keeps the records each filter asks for, oldest first."""
    everything = kari(store, "-e", "my-ext", "logs", "show")
    lines = everything.stdout.strip().splitlines()
    first = next(i for i, line in enumerate(lines) if "extension started" in line)
    last = next(i for i, line in enumerate(lines) if "slow dependency" in line)
    assert first < last
    errors = kari(store, "-e", "my-ext", "logs", "show", "--level", "error").stdout
    assert "API request failed" in errors
    assert "slow dependency" not in errors
    assert "correlation_id=req-123" in errors
    warned = kari(store, "-e", "my-ext", "logs", "show", "--level", "WARNING").stdout
    assert "slow dependency" in warned
    assert "extension started" not in warned
    # the dashboard's search: any case, in the message, logger, exception and field values
    grep = kari(store, "logs", "show", "--grep", "DB").stdout
    assert grep.strip().count("\n") == 0
    assert "slow dependency" in grep
    by_test = kari(store, "logs", "show", "--test", "test_api").stdout
    assert "extension started" in by_test
    assert "slow dependency" not in by_test
    corr = json_out(kari(store, "--format", "json", "logs", "show", "--correlation-id", "req-123"))
    assert [r["message"] for r in corr] == ["API request failed"]
    limited = json_out(
        kari(store, "--format", "json", "logs", "show", "--limit", "1", "--grep", "slow|started")
    )
    assert [r["message"] for r in limited] == ["slow dependency"]
    future = kari(store, "logs", "show", "--since", "2999-01-01")
    assert future.exit_code == 0
    assert future.stdout == ""


def test_logs_json_has_stable_keys(store: Path) -> None:
    """Each log record in JSON carries the documented keys, with its test's node id."""
    records = json_out(kari(store, "--format", "json", "logs", "show"))
    assert list(records[0]) == [
        "record_id", "ts", "time", "level", "logger", "message", "extension_id", "test",
        "run_id", "session_id", "correlation_id", "user_id", "tenant_id", "fields", "exception",
    ]  # fmt: skip
    assert records[0]["test"] == "test_demo.py::test_api"
    assert records[0]["fields"] == {"version": "1.0.0"}


# metrics -----------------------------------------------------------------------------------
def test_metrics_show_aggregates_points_and_test_figures(store: Path) -> None:
    """metrics show aggregates each metric and the per-test figures over the window."""
    data = json_out(kari(store, "--format", "json", "metrics", "show", "--hours", "2"))
    rows = {row["name"]: row for row in data["metrics"]}
    response = rows["response_time"]
    assert (response["count"], response["min"], response["max"], response["mean"]) == (
        3, 100.0, 300.0, 200.0,
    )  # fmt: skip
    assert response["p95"] == 290.0  # interpolated between the closest ranks, as everywhere
    assert response["last"] == 300.0
    assert rows["test.duration_ms"]["count"] == 2
    assert rows["test.duration_ms"]["max"] >= 30.0  # test_slow sleeps 30 ms
    table = kari(store, "metrics", "show", "--hours", "2").stdout
    assert "response_time" in table
    assert "300 ms" in table  # as the report shows it (figures.format_value)
    assert kari(store, "metrics", "show", "--hours", "0").exit_code == 2


def test_metrics_current_shows_this_machine(store: Path) -> None:
    """metrics current reports live CPU and memory of this machine, with or without a store."""
    data = json_out(kari(store, "--format", "json", "metrics", "current"))
    assert 0.0 <= data["machine"]["cpu_percent"] <= 100.0
    assert data["machine"]["memory_total_bytes"] > 0
    assert data["managers"] == []
    text = kari(store, "-e", "my-ext", "metrics", "current").stdout
    assert "this machine" in text
    assert "no debug manager running for 'my-ext'" in text


# errors and alerts -------------------------------------------------------------------------
def test_errors_patterns_group_and_resolution_persists(store: Path) -> None:
    """Errors of the same shape form one group; resolving it hides it from --unresolved."""
    shown = json_out(kari(store, "--format", "json", "errors", "show"))
    assert {e["error_message"] for e in shown} == {"invalid input 42", "invalid input 7"}
    groups = json_out(kari(store, "--format", "json", "errors", "patterns"))
    assert len(groups) == 1
    group = groups[0]
    assert (group["count"], group["tests"], group["error_type"], group["status"]) == (
        2, 2, "ValueError", "open",
    )  # fmt: skip
    assert group["first_seen"] <= group["last_seen"]
    table = kari(store, "errors", "patterns").stdout
    assert group["group"][:12] in table
    assert "ValueError: invalid input" in table
    resolved = kari(store, "errors", "resolve", group["group"][:6], "--notes", "validate first")
    assert resolved.exit_code == 0, resolved.output
    assert "resolved error group" in resolved.stdout
    assert "validate first" in resolved.stdout
    assert json_out(kari(store, "--format", "json", "errors", "show", "--unresolved")) == []
    after = json_out(kari(store, "--format", "json", "errors", "patterns"))[0]
    assert (after["status"], after["resolution_notes"]) == ("resolved", "validate first")
    missing = kari(store, "errors", "resolve", "ffffffff")
    assert missing.exit_code == 2
    assert "errors patterns" in one_error_line(missing)


def test_resolved_error_group_seen_again_is_regressed(
    pytester: pytest.Pytester, store: Path
) -> None:
    """A group resolved before a new occurrence shows as regressed, and as unresolved."""
    group = json_out(kari(store, "--format", "json", "errors", "patterns"))[0]["group"]
    assert kari(store, "errors", "resolve", group).exit_code == 0
    pytester.runpytest("--kari-debug", *QUIET, "-k", "test_slow")
    again = json_out(kari(store, "--format", "json", "errors", "patterns", "--unresolved"))
    assert [(g["group"], g["status"]) for g in again] == [(group, "regressed")]


def test_alerts_filter_by_severity_and_resolve(store: Path) -> None:
    """alerts show keeps the severity asked for and above; a resolution is kept in the store."""
    every = json_out(kari(store, "--format", "json", "alerts", "show"))
    assert sorted(a["severity"] for a in every) == ["low", "medium"]
    high = json_out(kari(store, "--format", "json", "alerts", "show", "--severity", "medium"))
    assert [a["title"] for a in high] == ["High CPU Usage"]
    assert high[0]["current_value"] == 85.0
    assert high[0]["status"] == "active"
    table = kari(store, "alerts", "show", "--severity", "MEDIUM").stdout
    assert "High CPU Usage" in table
    assert "cpu_percent 85 > 80" in table
    alert_id = high[0]["alert_id"]
    done = kari(store, "-e", "my-ext", "alerts", "resolve", alert_id, "--notes", "Fixed by restart")
    assert done.exit_code == 0
    assert "Fixed by restart" in done.stdout
    open_ = json_out(kari(store, "--format", "json", "alerts", "show", "--unresolved"))
    assert [a["title"] for a in open_] == ["Queue growing"]
    again = json_out(kari(store, "--format", "json", "alerts", "show", "--severity", "medium"))
    assert json_out(kari(store, "--format", "json", "alerts", "show", "--severity", "high")) == []
    assert (again[0]["status"], again[0]["resolution_notes"]) == ("resolved", "Fixed by restart")
    bad = kari(store, "alerts", "show", "--severity", "urgent")
    assert bad.exit_code == 2
    assert "urgent" in one_error_line(bad)


# health, runs ------------------------------------------------------------------------------
def test_health_exit_status_follows_the_checks(pytester: pytest.Pytester, store: Path) -> None:
    """health exits 0 when every check is healthy, 1 when records were dropped."""
    healthy = kari(store, "-e", "my-ext", "health")
    assert healthy.exit_code == 0, healthy.output
    assert "health: healthy" in healthy.stdout
    assert "store: schema" in healthy.stdout
    pytester.runpytest("--kari-debug", "--kari-max-log-entries", "1", *QUIET)
    degraded = kari(store, "--format", "json", "-e", "my-ext", "health")
    assert degraded.exit_code == 1
    data = json.loads(degraded.stdout)
    assert data["overall_status"] == "degraded"
    assert any(c["component"] == "buffers" and "logging" in c["detail"] for c in data["checks"])


def test_runs_list_and_show(pytester: pytest.Pytester, store: Path) -> None:
    """runs list shows the newest run first; runs show lists its tests with their figures."""
    pytester.runpytest("--kari-debug", *QUIET, "-k", "test_api")
    listed = json_out(kari(store, "--format", "json", "runs", "list"))
    assert [r["tests_count"] for r in listed] == [1, 2]
    assert listed[0]["id"] > listed[1]["id"]
    shown = json_out(kari(store, "--format", "json", "runs", "show", "last~1"))
    assert [t["nodeid"] for t in shown["tests"]] == [
        "test_demo.py::test_api",
        "test_demo.py::test_slow",
    ]
    assert shown["tests"][1]["figures"]["errors"] == 1.0
    text = kari(store, "runs", "show", str(listed[1]["id"])).stdout
    assert "test_demo.py::test_slow" in text
    assert "passed" in text
    missing = kari(store, "runs", "show", "999")
    assert missing.exit_code == 2
    assert "runs list" in one_error_line(missing)


# export ------------------------------------------------------------------------------------
def test_export_json_holds_schema_valid_run_documents(store: Path, tmp_path: Path) -> None:
    """export --format json writes run documents that validate against the run schema."""
    jsonschema = pytest.importorskip("jsonschema")
    target = tmp_path / "out" / "debug-data.json"
    result = kari(store, "-e", "my-ext", "export", "--format", "json", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in result.stdout
    document = json.loads(target.read_text())
    assert document["format"] == "pytest-kari-debug/export"
    assert len(document["runs"]) == 1
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(document["runs"][0], schema)
    assert {t["nodeid"] for t in document["runs"][0]["tests"]} == {
        "test_demo.py::test_api", "test_demo.py::test_slow",
    }  # fmt: skip
    assert not list(target.parent.glob(".*.tmp"))


def test_export_csv_parses_back(store: Path) -> None:
    """export --format csv to stdout is RFC 4180 CSV with one row per record of the kinds."""
    result = kari(store, "export", "--format", "csv", "--kind", "log", "--kind", "error", "-o", "-")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    assert sorted({row["kind"] for row in rows}) == ["error", "log"]
    assert len([row for row in rows if row["kind"] == "error"]) == 2
    failed = next(row for row in rows if row["message"] == "API request failed")
    assert failed["level"] == "ERROR"
    assert failed["test"] == "test_demo.py::test_api"
    assert json.loads(failed["data"])["fields"] == {"status_code": 500}


def test_export_prometheus_parses_back(store: Path) -> None:
    """export --format prometheus is text exposition the Prometheus parser reads."""
    from prometheus_client.parser import text_string_to_metric_families

    result = kari(store, "--run", "last", "export", "--format", "prometheus")
    assert result.exit_code == 0, result.output
    families = list(text_string_to_metric_families(result.stdout))
    tests = {s.labels.get("test") for family in families for s in family.samples}
    assert {"test_demo.py::test_api", "test_demo.py::test_slow"} <= tests
    assert all(family.name.startswith("kari_") for family in families)


def test_prometheus_export_holds_tests_and_records(store: Path) -> None:
    """The store's export: test families of the newest run and extension families of the
    records in scope, in the one naming scheme (base units, ``_total`` counters)."""
    from prometheus_client.parser import text_string_to_metric_families

    opened = Store(store, create=False)
    try:
        bundle = exports.gather(StoreSource(opened, "my-ext"), "prometheus")
        text = exports.render(bundle, "prometheus")
    finally:
        opened.close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["kari_tests"].type == "counter"
    outcomes = {s.labels["outcome"]: s.value for s in families["kari_tests"].samples}
    assert outcomes == {"passed": 2.0}
    last = {s.labels["metric"]: s.value for s in families["kari_latest_metric_value"].samples}
    assert last["response_time"] == 0.3  # 300 ms, in seconds
    durations = {s.labels["test"]: s.value for s in families["kari_test_duration_seconds"].samples}
    assert durations["test_demo.py::test_slow"] >= 0.03
    # bytes are the record's bytes, not a rounded MiB figure scaled back
    peaks = {s.labels["test"]: s.value for s in families["kari_test_peak_rss_bytes"].samples}
    recorded = {
        t["nodeid"]: t["collected_data"]["metrics"]["resources"]["peak_rss_bytes"]
        for t in bundle.tests
    }
    assert peaks == recorded
    assert any(value % 1000 for value in peaks.values())
    kinds = {s.labels["kind"]: s.value for s in families["kari_records"].samples}
    assert (kinds["error"], kinds["alert"]) == (2.0, 2.0)
    assert kinds["log"] >= 3.0
    assert families["kari_errors"].type == "counter"
    assert sum(s.value for s in families["kari_errors"].samples) == 2.0
    groups = {s.labels["status"]: s.value for s in families["kari_error_groups"].samples}
    assert sum(groups.values()) >= 1.0
    severities = {s.labels["severity"] for s in families["kari_alerts"].samples}
    assert severities


def test_export_jaeger_has_traces_and_parent_references(store: Path) -> None:
    """export --format jaeger groups spans by trace, in the shape the Jaeger UI loads."""
    document = json.loads(kari(store, "export", "--format", "jaeger").stdout)
    spans = [span for trace in document["data"] for span in trace["spans"]]
    names = {span["operationName"]: span for span in spans}
    assert "validate_input" in names
    span = names["validate_input"]
    assert len(span["traceID"]) == 32
    assert len(span["spanID"]) == 16
    assert {"key": "input_type", "type": "string", "value": "json"} in span["tags"]
    trace = next(t for t in document["data"] if t["traceID"] == span["traceID"])
    assert trace["processes"][span["processID"]]["serviceName"] == "my-ext"
    if "user_request" in names:
        assert span["references"][0]["spanID"] == names["user_request"]["spanID"]


# compare -----------------------------------------------------------------------------------
def _baseline(store: Path, tmp_path: Path, edit: object) -> Path:
    document = json.loads(kari(store, "--run", "last", "export", "--format", "json").stdout)
    run = document["runs"][0]
    for test in run["tests"]:
        edit(test)  # type: ignore[operator]
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(run))
    return path


def test_compare_exit_status_ok_regression_and_bad_baseline(store: Path, tmp_path: Path) -> None:
    """compare exits 0 without regression, 1 with one, 2 when the baseline is missing or bad."""
    same = kari(store, "compare", "last", "last", "--fail", "duration:+25%,errors:+0")
    assert same.exit_code == 0, same.output
    assert "no regression" in same.stdout

    def fewer_errors(test: dict) -> None:
        test["collected_data"]["error_tracking"]["records"] = []

    baseline = _baseline(store, tmp_path, fewer_errors)
    worse = kari(store, "--format", "json", "compare", str(baseline), "--fail", "errors:+0")
    assert worse.exit_code == 1, worse.output
    verdict = json.loads(worse.stdout)
    assert verdict["ok"] is False
    assert verdict["compared_tests"] == 2
    regressed = {
        (c["nodeid"], c["metric"]) for c in verdict["changes"] if c["verdict"] == "regression"
    }
    assert regressed == {
        ("test_demo.py::test_api", "errors"), ("test_demo.py::test_slow", "errors"),
    }  # fmt: skip
    assert [
        (t["nodeid"], t["baseline"], t["current"], t["verdict"]) for t in verdict["totals"]
    ] == [("(total)", 0.0, 2.0, "regression")]
    assert verdict["regressions"] == 3
    assert worse.stderr == ""  # the verdicts are in the table; stderr does not repeat them

    def faster(test: dict) -> None:
        test["phases"]["call"] = 0.001

    slow = kari(
        store, "compare", str(_baseline(store, tmp_path, faster)), "--fail", "duration:+50%"
    )
    assert slow.exit_code == 1
    assert "REGRESSED" in slow.stdout
    assert "test_demo.py::test_slow" in slow.stdout
    assert "0.001 ms" in slow.stdout  # the edited baseline, shown as the report shows it
    assert slow.stderr == ""

    missing = kari(store, "compare", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert "does not exist" in one_error_line(missing)
    (tmp_path / "bad.json").write_text("{not json")
    bad = kari(store, "compare", str(tmp_path / "bad.json"))
    assert bad.exit_code == 2
    assert "not readable JSON" in one_error_line(bad)
    (tmp_path / "newer.json").write_text('{"format": "pytest-kari-debug/baseline", "version": 9}')
    newer = kari(store, "compare", str(tmp_path / "newer.json"))
    assert newer.exit_code == 2
    assert "newer.json' has baseline version 9" in one_error_line(newer)
    no_run = kari(store, "compare", "last~5")
    assert no_run.exit_code == 2
    assert "not found" in one_error_line(no_run)
    no_name = kari(store, "compare", "release-1")
    assert no_name.exit_code == 2
    assert "'release-1' is not a run nor a baseline saved" in one_error_line(no_name)
    bad_spec = kari(store, "compare", "last", "--fail", "speed:+5%")
    assert bad_spec.exit_code == 2
    assert "accepted:" in one_error_line(bad_spec)
    no_gate = kari(store, "compare", "last", "--fail", "log.error:+0")
    assert no_gate.exit_code == 2
    assert "log.error has no gate" in one_error_line(no_gate)


def test_compare_reads_saved_baselines_by_name_and_file(
    pytester: pytest.Pytester, store: Path, tmp_path: Path
) -> None:
    """A baseline saved by --kari-save-baseline, in the store or as a file, gates the last run."""
    base_file = tmp_path / "main.json"
    saved = pytester.runpytest(
        "--kari-debug", "--kari-save-baseline=main", f"--kari-baseline-file={base_file}",
        "--kari-confirm-runs=2", *QUIET,
    )  # fmt: skip
    saved.assert_outcomes(passed=2)
    # Like with like: the head takes as many call samples as the baseline did.
    pytester.runpytest("--kari-debug", "--kari-repeat=2", *QUIET).assert_outcomes(passed=2)
    spec = "duration:+300%,errors:+0,memory:+100MB"
    by_name = json_out(kari(store, "--format", "json", "compare", "main", "--fail", spec))
    assert by_name["base"] == "baseline main"
    assert by_name["compared_tests"] == 2
    assert by_name["gates"] == ["duration:+300%", "errors:+0", "memory:+100MB"]
    assert {c["metric"] for c in by_name["changes"]} == {"call_ms", "errors", "peak_rss_bytes"}
    by_file = json_out(kari(store, "--format", "json", "compare", str(base_file), "--fail", spec))
    assert by_file["base"] == f"baseline file {base_file}"
    assert by_file["head"] == by_name["head"]
    document = json.loads(base_file.read_text())
    assert len(document["tests"]["test_demo.py::test_slow"]["samples"]["call_ms"]) == 2
    as_head = kari(store, "compare", "last", str(base_file))
    assert as_head.exit_code == 2
    assert "is a baseline; HEAD is a run" in one_error_line(as_head)


def test_compare_merges_the_runs_of_an_export_into_one_baseline(
    pytester: pytest.Pytester, store: Path, tmp_path: Path
) -> None:
    """Every run of an export is one baseline sample; its head must be a single run."""
    pytester.runpytest("--kari-debug", "--kari-trace", *QUIET).assert_outcomes(passed=2)
    pytester.runpytest("--kari-debug", "--kari-trace", *QUIET).assert_outcomes(passed=2)
    export = tmp_path / "export.json"
    assert kari(store, "export", "--format", "json", "-o", str(export)).exit_code == 0
    spec = "spans:+0,errors:+0,logs:+0"
    result = json_out(kari(store, "--format", "json", "compare", str(export), "--fail", spec))
    assert result["base"] == f"{export} (3 runs)"
    assert result["compared_tests"] == 2
    assert result["ok"] is True
    spans = {c["nodeid"]: c for c in result["changes"] if c["metric"] == "spans"}
    assert spans["test_demo.py::test_api"]["baseline"] == spans["test_demo.py::test_api"]["current"]
    assert spans["test_demo.py::test_api"]["current"] >= 1
    as_head = kari(store, "compare", "last", str(export))
    assert as_head.exit_code == 2
    assert "holds 3 runs" in one_error_line(as_head)
    run_doc = tmp_path / "run.json"
    document = json.loads(export.read_text())["runs"][-1]
    run_doc.write_text(json.dumps(document))
    assert kari(store, "compare", str(export), str(run_doc), "--fail", spec).exit_code == 0


# errors for people, no data --------------------------------------------------------------
def test_errors_are_one_line_with_exit_status_2(store: Path, tmp_path: Path) -> None:
    """A bad --since, an unknown option value, a corrupt or newer store: one line, exit 2."""
    since = kari(store, "logs", "show", "--since", "last tuesday")
    assert since.exit_code == 2
    assert "--since 'last tuesday'" in one_error_line(since)
    unknown = kari(store, "--format", "yaml", "status")
    assert unknown.exit_code == 2
    assert "yaml" in one_error_line(unknown)
    option = kari(store, "logs", "show", "--colour")
    assert option.exit_code == 2
    assert "No such option" in one_error_line(option)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database at all" * 10)
    result = kari(corrupt, "status")
    assert result.exit_code == 2
    assert "--store" in one_error_line(result)
    assert corrupt.read_bytes().startswith(b"this is not")  # left untouched
    newer = tmp_path / "newer.db"
    newer.write_bytes(store.read_bytes())
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.close()
    result = kari(newer, "logs", "show")
    assert result.exit_code == 2
    assert "upgrade pytest-kari-debug" in one_error_line(result)


def test_no_data_is_a_hint_with_exit_status_0(store: Path, tmp_path: Path) -> None:
    """No store, or nothing for the extension: a one-line hint on stderr and exit status 0."""
    commands = (
        ["status"],
        ["logs", "show"],
        ["health"],
        ["export", "-o", "x.json"],
        ["errors", "patterns"],
        ["runs", "list"],
    )  # fmt: skip  (alerts resolve of an id never recorded is an error: test_cli_ci.py)
    for args in commands:
        result = kari(tmp_path / "none.db", *args)
        assert result.exit_code == 0, (args, result.output)
        assert "no data yet" in result.stderr
        assert "pytest --kari-debug" in result.stderr
        assert result.stdout == ""
    assert not (tmp_path / "none.db").exists()
    other = kari(store, "--format", "json", "-e", "other-ext", "logs", "show")
    assert other.exit_code == 0
    assert "'other-ext' (the store has: my-ext)" in other.stderr
    assert json.loads(other.stdout) is None


def test_main_returns_the_exit_status(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """main([...]) returns the exit status instead of exiting."""
    assert main(["--store", str(store), "--format", "json", "runs", "list"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["tests_count"] == 2
    assert main(["--store", str(store), "logs", "show", "--since", "soon"]) == 2
    assert capsys.readouterr().err.startswith("kari-debug: error: --since")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


def test_every_command_has_help_with_examples() -> None:
    """--help works on every command and shows at least one example."""
    commands = _commands(cli)
    assert len(commands) >= 16
    for command in commands:
        result = kari(None, *command, "--help")
        assert result.exit_code == 0, command
        assert "Examples:" in result.stdout, command
        assert "kari-debug" in result.stdout


def test_default_store_is_the_one_under_the_rootdir(
    store: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --store, the store under the rootdir (nearest pytest config) is read."""
    pytester.makeini("[pytest]\n")
    sub = pytester.mkpydir("pkg") / "deeper"
    sub.mkdir()
    monkeypatch.chdir(sub)
    monkeypatch.delenv("KARI_DEBUG_STORE", raising=False)
    data = json_out(CliRunner().invoke(cli, ["--format", "json", "status"]))
    assert data["store"]["path"] == str(store.resolve())


def test_slim_test_records_give_the_same_figures(pytester: pytest.Pytester, store: Path) -> None:
    """The cut-down records metrics show reads yield the figures of the full records."""
    pytester.runpytest("--kari-debug", "--kari-memory", *QUIET)
    opened = Store(store, create=False)
    try:
        full = [t for run in opened.runs() for t in opened.tests(run["id"])]
        slim = opened.slim_tests(None)
    finally:
        opened.close()
    assert len(full) == len(slim) == 4
    by_id = {(t["nodeid"], t["finished_at"]): figures_of(t) for t in full}
    for test in slim:
        assert figures_of(test) == by_id[(test["nodeid"], test["finished_at"])]
    assert any(figures.get("log.warning") for figures in by_id.values())


def test_colour_only_where_wanted(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Levels are coloured on a colour terminal; --no-color and NO_COLOR turn colour off."""
    args = ["--store", str(store), "logs", "show", "--level", "error"]
    coloured = CliRunner().invoke(cli, args, color=True)
    assert "\x1b[31m" in coloured.stdout
    plain = CliRunner().invoke(cli, ["--no-color", *args], color=True)
    assert "\x1b[" not in plain.stdout
    assert "API request failed" in plain.stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in CliRunner().invoke(cli, args, color=True).stdout
