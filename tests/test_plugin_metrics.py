"""The plugin's metrics: per-test figures, metrics.csv, --kari-prometheus and its checks."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import read_json, run_with_json
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

TESTS = """
import pytest

LEAK = []

@pytest.mark.kari_extension("weather")
def test_forecast(kari_metrics):
    kari_metrics.record_metric("response_time", 120.0, "ms", route="=HYPERLINK(1)")
    kari_metrics.record_request_time(80.0)
    LEAK.append([object() for _ in range(10_000)])

@pytest.mark.kari_extension("weather")
def test_plain():
    pass

def test_failing(kari_metrics):
    kari_metrics.record_error("ValidationError")
    assert False
"""


def run_json(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run the TESTS file with --kari-debug and a JSON export; return the result and document."""
    pytester.makepyfile(test_sample=TESTS)
    return run_with_json(pytester, "--kari-debug", "--kari-store=none", *args)


def test_every_test_gets_resource_figures(pytester: pytest.Pytester) -> None:
    """Each test's record carries resources, samples and its recorded points."""
    result, document = run_json(pytester, "-v")
    result.assert_outcomes(passed=2, failed=1)
    by_id = {t["nodeid"].split("::")[-1]: t for t in document["tests"]}
    for test in by_id.values():
        metrics = test["collected_data"]["metrics"]
        assert {"cpu_ms", "peak_rss_bytes", "rss_start_bytes", "ctx_switches"} <= set(
            metrics["resources"]
        )
        assert isinstance(metrics["samples"], list)
        assert "memory" not in metrics
    names = [p["name"] for p in by_id["test_forecast"]["collected_data"]["metrics"]["records"]]
    assert names == ["response_time", "request_time"]
    failing = by_id["test_failing"]["collected_data"]["metrics"]["records"]
    assert failing[0]["labels"] == {"error_type": "ValidationError"}
    section = document["sections"]["metrics"]
    assert section["extensions"]["weather"]["points"] == 2
    assert section["metrics"]["response_time"]["count"] == 1
    result.stdout.fnmatch_lines(["metrics: 3 point(s) of 3 metric(s) in 3 test(s)*most CPU*"])


def test_kari_memory_adds_tracemalloc_figures(pytester: pytest.Pytester) -> None:
    """With --kari-memory each test also gets peak, allocated bytes and blocks."""
    result, document = run_json(pytester, "--kari-memory")
    result.assert_outcomes(passed=2, failed=1)
    forecast = next(t for t in document["tests"] if t["nodeid"].endswith("test_forecast"))
    memory = forecast["collected_data"]["metrics"]["memory"]
    assert memory["allocated_bytes"] >= 10_000 * 16
    assert memory["allocated_blocks"] >= 9_000
    assert memory["peak_bytes"] >= memory["allocated_bytes"]


def test_fast_sampling_fills_samples(pytester: pytest.Pytester) -> None:
    """--kari-metrics-interval 0.01 gives a sleeping test sampler points."""
    pytester.makepyfile(
        """
        import time

        def test_sleepy(kari_debug, kari_metrics):
            session_id = kari_debug.active_sessions()[0].session_id
            deadline = time.monotonic() + 30
            while len(kari_metrics.session_samples(session_id)) < 3:
                assert time.monotonic() < deadline, "no samples"
                time.sleep(0.01)
        """
    )
    result = pytester.runpytest(
        "--kari-debug",
        "--kari-store=none",
        "--kari-json=run.json",
        "--kari-metrics-interval=0.01",
        "--kari-csv=csv",
    )
    result.assert_outcomes(passed=1)
    document = read_json(pytester)
    samples = document["tests"][0]["collected_data"]["metrics"]["samples"]
    assert len(samples) >= 3
    assert {"ts", "cpu_percent", "rss_bytes"} <= set(samples[0])
    # metrics.csv has every sampler point too: one row per figure, at the point's time.
    with (pytester.path / "csv" / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["kind"] == "sample"]
    rss = [r for r in rows if r["name"] == "rss_bytes"]
    assert [float(r["value"]) for r in rss] == [float(s["rss_bytes"]) for s in samples]
    assert [float(r["ts"]) for r in rss] == [s["ts"] for s in samples]
    assert {r["unit"] for r in rss} == {"bytes"}


def test_metrics_csv_written_with_formula_guard(pytester: pytest.Pytester) -> None:
    """--kari-csv writes metrics.csv: points and resource rows, formulas neutralised."""
    result, _ = run_json(pytester, "-v", "--kari-csv=csv")
    result.assert_outcomes(passed=2, failed=1)
    path = pytester.path / "csv" / "metrics.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    points = [r for r in rows if r["kind"] == "metric"]
    assert [r["name"] for r in points] == ["response_time", "request_time", "errors"]
    assert json.loads(points[0]["labels"]) == {"route": "=HYPERLINK(1)"}
    assert not any(cell.startswith("=") for row in rows for cell in row.values())
    resources = {(r["nodeid"].split("::")[-1], r["name"]) for r in rows if r["kind"] == "resources"}
    assert ("test_plain", "cpu_ms") in resources
    result.stdout.fnmatch_lines(["metrics csv: *metrics.csv"])


def test_kari_prometheus_writes_text_exposition(pytester: pytest.Pytester) -> None:
    """--kari-prometheus writes the text format with gauges for every test."""
    result, _ = run_json(pytester, "-v", "--kari-prometheus=out/metrics.prom")
    result.assert_outcomes(passed=2, failed=1)
    text = (pytester.path / "out" / "metrics.prom").read_text(encoding="utf-8")
    families = {f.name: f for f in parse_text(text)}
    tests = {s.labels["test"] for s in families["kari_test_cpu_seconds"].samples}
    assert tests == {
        "test_sample.py::test_forecast", "test_sample.py::test_plain",
        "test_sample.py::test_failing",
    }  # fmt: skip
    summary = families["kari_metric_response_time_seconds"]
    total = next(s for s in summary.samples if s.name.endswith("_sum"))
    assert total.value == pytest.approx(0.12)
    assert total.labels["extension"] == "weather"
    result.stdout.fnmatch_lines(["prometheus: out/metrics.prom"])


def test_kari_prometheus_openmetrics_from_ini(pytester: pytest.Pytester) -> None:
    """The ini keys kari_prometheus and kari_prometheus_format select an OpenMetrics file."""
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "kari_prometheus = metrics.om\nkari_prometheus_format = openmetrics\n"
    )
    result, _ = run_json(pytester)
    result.assert_outcomes(passed=2, failed=1)
    text = (pytester.path / "metrics.om").read_text(encoding="utf-8")
    assert text.endswith("# EOF\n")
    assert {f.name for f in parse_openmetrics(text)} >= {"kari_tests", "kari_test_cpu_seconds"}


def test_bad_prometheus_format_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """An unknown --kari-prometheus-format stops the run naming the accepted formats."""
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--kari-prometheus=x.prom", "--kari-prometheus-format=json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--kari-prometheus-format 'json' is not known*text, openmetrics*"]
    )


def test_bad_pushgateway_url_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A Pushgateway URL that is not http(s) stops the run before any test."""
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--kari-pushgateway=ftp://host")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kari-pushgateway*is not valid: use http://HOST:PORT*"])


def test_unwritable_prometheus_path_is_a_warning(pytester: pytest.Pytester) -> None:
    """A Prometheus path that cannot be written warns; the outcomes are unchanged."""
    pytester.makepyfile(blocker="")
    result, _ = run_json(pytester, "--kari-prometheus=blocker.py/metrics.prom")
    result.assert_outcomes(passed=2, failed=1, warnings=1)
    result.stdout.fnmatch_lines(["*could not write --kari-prometheus 'blocker.py/metrics.prom'*"])


def test_metrics_with_xdist_cover_every_test(pytester: pytest.Pytester) -> None:
    """Under xdist the controller's exposition holds every worker's tests."""
    pytester.makepyfile(
        test_many="""
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_n(kari_metrics, n):
            kari_metrics.record_metric("n_value", n)
        """
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--kari-debug", "--kari-store=none", "--kari-prometheus=m.prom"
    )
    result.assert_outcomes(passed=6)
    families = {f.name: f for f in parse_text((pytester.path / "m.prom").read_text())}
    sums = {s.labels["test"]: s.value for s in families["kari_metric_n_value"].samples
            if s.name.endswith("_sum")}  # fmt: skip
    assert sums == {f"test_many.py::test_n[{n}]": float(n) for n in range(6)}


def test_unwritable_csv_dir_is_a_warning(pytester: pytest.Pytester) -> None:
    """A metrics.csv that cannot be written warns; the outcomes are unchanged."""
    pytester.makepyfile("def test_ok(kari_metrics): kari_metrics.record_metric('x', 1)")
    (pytester.path / "blocked").write_text("a file, not a folder")
    result = pytester.runpytest("--kari-store=none", "--kari-csv=blocked")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], "failed" in outcomes) == (1, False)
    assert outcomes["warnings"] >= 1
    result.stdout.fnmatch_lines(["*could not write 'blocked/metrics.csv'*"])
    assert result.ret == 0


def test_no_prometheus_file_without_the_flag(pytester: pytest.Pytester) -> None:
    """Without --kari-prometheus no exposition file is written."""
    result, _ = run_json(pytester)
    result.assert_outcomes(passed=2, failed=1)
    assert not list(Path(pytester.path).glob("*.prom"))
