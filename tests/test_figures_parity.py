"""One real run: every surface shows the same figures for a test as the catalogue reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_support import framework_client
from click.testing import CliRunner
from conftest import read_json
from prometheus_client.parser import text_string_to_metric_families

from pytest_kari_debug.api import PREFIX, create_app
from pytest_kari_debug.cli import cli
from pytest_kari_debug.figures import FIGURES as CATALOGUE
from pytest_kari_debug.figures import MIB, figure_rows, measure, values
from pytest_kari_debug.report.data import build_report_model

SUITE = """
import time

def test_works(kari_logger, kari_metrics, kari_tracer):
    with kari_tracer.start_span("load_basket"):
        time.sleep(0.002)
    kari_logger.warning("careful")
    kari_logger.error("bad")
    kari_metrics.record_metric("queue_size", 3)
    keep = [bytearray(1000) for _ in range(600)]
    time.sleep(0.01)
    assert len(keep) == 600

def test_sleeps():
    time.sleep(0.02)
"""
#: Figures every surface shows, and rules that fire on each so the run's verdicts record them.
FIGURES = (
    "duration_ms", "cpu_ms", "peak_rss_mb", "peak_memory_mb", "allocated_mb", "allocated_blocks",
    "kari_overhead_ms", "errors", "spans", "log.error", "log.warning",
)  # fmt: skip
RULES = "\n".join(f"{name} >= 0 severity=low" for name in FIGURES)


def _prometheus(text: str) -> dict[tuple[str, str], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "test" in sample.labels:
                found[(sample.name, sample.labels["test"])] = sample.value
    return found


def test_every_surface_agrees_with_the_catalogue(pytester: pytest.Pytester) -> None:
    """JSON, report model, CLI JSON, API, Prometheus and alert evaluation agree per figure."""
    pytester.makepyfile(SUITE)
    rules = RULES.replace("\n", "\n    ")
    pytester.makeini(f"[pytest]\nkari_alert_rules =\n    {rules}\n")
    result = pytester.runpytest_subprocess(
        "--kari-debug", "--kari-memory", "--kari-trace", "--kari-store=store.db",
        "--kari-json=run.json",
        "--kari-prometheus=run.prom",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    document = read_json(pytester)
    tests = document["tests"]
    truth = {t["nodeid"]: values(FIGURES, t) for t in tests}
    by_id = {t["nodeid"]: t for t in tests}
    assert all(len(found) == len(FIGURES) for found in truth.values()), truth

    # The run's own verdicts: each rule evaluated live saw the value the record now has.
    for test in tests:
        fired = {entry["name"]: entry for entry in test["extra"]["alerts"]["fired"]}
        for name in FIGURES:
            entry = fired[f"{name} >= 0"]
            if name in ("kari_overhead_ms", "cpu_ms", "duration_ms"):
                # judged at the end of the call phase: the same figure, before teardown
                assert entry["value"] <= truth[test["nodeid"]][name] + 1e-6, (name, entry)
            elif name in ("peak_rss_mb",):
                assert entry["value"] <= truth[test["nodeid"]][name] + 1e-6
            elif name not in ("peak_memory_mb", "allocated_mb", "allocated_blocks"):
                assert entry["value"] == pytest.approx(truth[test["nodeid"]][name]), name
        assert fired["duration_ms >= 0"]["value"] == pytest.approx(
            truth[test["nodeid"]]["duration_ms"]
        )

    # The report model; its metric table is the JSON's metrics section, whose statistics the
    # CLI's metrics show computes the same from the store's points.
    model = build_report_model(document["run"], tests, sections=document["sections"])
    section = document["sections"]["metrics"]["metrics"]
    assert model.metrics == list(section.values())
    cli_metrics = CliRunner().invoke(
        cli, ["--store", str(pytester.path / "store.db"), "--format", "json", "--run", "last",
              "metrics", "show"],
    )  # fmt: skip
    assert cli_metrics.exit_code == 0, cli_metrics.output
    [queue] = [m for m in json.loads(cli_metrics.stdout)["metrics"] if m["name"] == "queue_size"]
    for key in ("count", "min", "mean", "p50", "p95", "max", "last"):
        assert section["queue_size"][key] == queue[key], key
    most_cpu = document["sections"]["metrics"]["top_cpu_ms"][0]
    assert most_cpu["cpu_ms"] == max(t["cpu_ms"] for t in truth.values())
    for row in model.payload["tests"]:
        want = truth[row["nodeid"]]
        assert row["duration"] == pytest.approx(want["duration_ms"])
        # the page leaves out a figure equal to the resources it embeds (and reads it there)
        resources = row["data"]["metrics"]["resources"]
        assert row.get("cpu", resources["cpu_ms"]) == pytest.approx(want["cpu_ms"])
        rss = row.get("rss", resources["peak_rss_bytes"])
        assert rss == pytest.approx(want["peak_rss_mb"] * MIB)
        assert row["alloc"] == pytest.approx(want["peak_memory_mb"] * MIB)
        assert row["overhead"] == pytest.approx(want["kari_overhead_ms"])

    # kari-debug --format json runs show.
    shown = CliRunner().invoke(
        cli, ["--store", str(pytester.path / "store.db"), "--format", "json", "runs", "show"]
    )
    assert shown.exit_code == 0, shown.output
    for row in json.loads(shown.stdout)["tests"]:
        want = truth[row["nodeid"]]
        for name, value in row["figures"].items():
            expected = want[name] if name in want else measure(name, by_id[row["nodeid"]]).value
            assert value == pytest.approx(expected), name
        assert {"duration_ms", "cpu_ms", "kari_overhead_ms", "log.error"} <= set(row["figures"])

    # The API: every figure of the catalogue (fixed ones, each log level, each metric and span
    # name the test recorded), as the JSON's record reads, value, unit and why one is missing.
    app = create_app(None, store_path=pytester.path / "store.db", include_registry=False)
    with framework_client(app) as client:
        for nodeid, want in truth.items():
            response = client.get(PREFIX + "/runs/last/figures", params={"nodeid": nodeid})
            assert response.status_code == 200, response.text
            from_api = response.json()["figures"]
            expected = figure_rows(by_id[nodeid])
            assert [r["name"] for r in from_api] == [r["name"] for r in expected]
            assert len(from_api) >= len(CATALOGUE) + 5
            for got, row in zip(from_api, expected, strict=True):
                assert got == row, got["name"]
            api_values = {r["name"]: r["value"] for r in from_api if r["value"] is not None}
            assert {k: api_values[k] for k in want} == want
            if nodeid.endswith("test_works"):
                assert {"metric:queue_size", "span:load_basket.total_ms"} <= set(api_values)
            response = client.get(PREFIX + "/history/test", params={"nodeid": nodeid})
            assert response.status_code == 200, response.text
            assert response.json()["runs"][-1]["duration_ms"] == pytest.approx(want["duration_ms"])

    # The Prometheus export, parsed back.
    exported = _prometheus((pytester.path / "run.prom").read_text())
    for nodeid, want in truth.items():
        pairs: list[tuple[str, float, Any]] = [
            ("kari_test_duration_seconds", want["duration_ms"] / 1000.0, None),
            ("kari_test_cpu_seconds", want["cpu_ms"] / 1000.0, None),
            ("kari_test_overhead_seconds", want["kari_overhead_ms"] / 1000.0, None),
            ("kari_test_peak_rss_bytes", want["peak_rss_mb"] * MIB, None),
            ("kari_test_tracemalloc_peak_bytes", want["peak_memory_mb"] * MIB, None),
            ("kari_test_allocated_bytes", want["allocated_mb"] * MIB, None),
            ("kari_test_allocated_blocks", want["allocated_blocks"], None),
        ]
        for name, value, _ in pairs:
            assert exported[(name, nodeid)] == pytest.approx(value), name
    assert measure("log.error", tests[0]).value == 1.0
