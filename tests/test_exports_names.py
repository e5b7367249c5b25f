"""One Prometheus naming scheme: a stored run's export and a live manager's name alike."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from pytest_kari_debug.cli import cli
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ExportError
from pytest_kari_debug.exporters.bundle import RECORD_COLUMNS, session_tests
from pytest_kari_debug.exporters.formats import EXPORTERS, exporter_for
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.storage import Store

#: Every family of the scheme, with its type (the docs' table, docs/guide/metrics.md).
EXTENSION_FAMILIES = {
    ("kari_records", "gauge"),
    ("kari_records_dropped", "counter"),
    ("kari_log_records", "gauge"),
    ("kari_errors", "counter"),
    ("kari_error_groups", "gauge"),
    ("kari_alerts", "gauge"),
    ("kari_latest_metric_value", "gauge"),
}


def _live_manager() -> ExtensionDebugManager:
    """A manager whose two stopped sessions logged, measured, failed and alerted."""
    manager = ExtensionDebugManager("names-ext", "Names")
    for index, nodeid in enumerate(("t.py::test_a", "t.py::test_b")):
        with manager.debug_session(name=nodeid):
            manager.get_logger().info("working")
            manager.get_logger().error("failed once")
            manager.get_metrics_collector().record_metric("latency", 120.0 + index, "ms")
            manager.get_error_tracker().record_error("ValueError", f"bad input {index}")
            manager.get_alert_manager().raise_alert(
                "slow", "high", "Slow", "latency above 100 ms", "latency", 120.0
            )
    return manager


def _stored_run(manager: ExtensionDebugManager, folder: Path) -> Path:
    """A store holding the manager's stopped sessions as the tests of one finished run."""
    store_path = folder / "kari.db"
    with contextlib.closing(Store(store_path)) as store:
        run_id = store.begin_run({"uuid": "names-run", "started_at": 1.0})
        store.write_tests(run_id, session_tests(manager.sessions))
        store.finish_run(run_id, finished_at=2.0, exit_status=0, data={})
    return store_path


def _names(text: str) -> set[tuple[str, str]]:
    return {(family.name, family.type) for family in text_string_to_metric_families(text)}


def test_stored_run_and_live_exports_name_every_family_alike(tmp_path: Path) -> None:
    """The same tests, exported live (debug_manager.export) and from the store (kari-debug
    export), parse to the same family names and types, labelled alike."""
    manager = _live_manager()
    live_text = manager.export("all", "prometheus")
    live = _names(live_text)
    store_path = _stored_run(manager, tmp_path)
    result = CliRunner().invoke(
        cli,
        ["--store", str(store_path), "--extension-id", "names-ext", "--run", "last",
         "export", "--format", "prometheus"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = _names(result.stdout)
    assert stored == live
    assert live >= EXTENSION_FAMILIES
    assert {("kari_tests", "counter"), ("kari_test_duration_seconds", "gauge")} <= live
    assert not any("live" in name for name, _ in live)
    labels = {
        family.name: {key for sample in family.samples for key in sample.labels}
        for family in text_string_to_metric_families(live_text)
    }
    stored_labels = {
        family.name: {key for sample in family.samples for key in sample.labels}
        for family in text_string_to_metric_families(result.stdout)
    }
    assert stored_labels == labels
    # Base units: the newest latency, recorded in ms, is exported in seconds.
    [latest] = [
        s
        for f in text_string_to_metric_families(result.stdout)
        if f.name == "kari_latest_metric_value"
        for s in f.samples
        if s.labels["metric"] == "latency"
    ]
    assert (latest.labels["unit"], latest.value) == ("seconds", 0.121)


def test_openmetrics_export_keeps_the_names() -> None:
    """The OpenMetrics exposition of a live manager parses with the OpenMetrics parser, with
    the same families as the text format."""
    manager = _live_manager()
    families = {(f.name, f.type) for f in openmetrics(manager.export("all", "openmetrics"))}
    assert families == _names(manager.export("all", "prometheus"))


def test_every_json_export_has_one_document_shape(tmp_path: Path) -> None:
    """The store's `kari-debug export --format json` and a live manager's JSON export are one
    document shape: the same keys, the store's runs in ``runs``."""
    manager = _live_manager()
    live = json.loads(manager.export("all", "json"))
    store_path = _stored_run(manager, tmp_path)
    result = CliRunner().invoke(
        cli,
        ["--store", str(store_path), "--extension-id", "names-ext", "export", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    stored = json.loads(result.stdout)
    assert set(stored) == set(live)
    assert (stored["format"], stored["kind"], stored["source"]) == (
        "pytest-kari-debug/export",
        "all",
        "store",
    )
    assert (live["format"], live["kind"], live["source"]) == (stored["format"], "all", "live")
    [run] = stored["runs"]
    assert {test["nodeid"] for test in run["tests"]} == {"t.py::test_a", "t.py::test_b"}


def test_exporter_for_names_every_format_and_refuses_others() -> None:
    """exporter_for gives each format's exporter; an unknown name lists the accepted ones."""
    assert list(EXPORTERS) == ["json", "csv", "prometheus", "openmetrics", "jaeger", "otlp"]
    assert exporter_for("openmetrics").media_type.startswith("application/openmetrics-text")
    bundle = _live_manager().export_bundle(with_tests=True)
    for name, exporter in EXPORTERS.items():
        kind = "traces" if name in ("jaeger", "otlp") else "all"
        assert exporter.render(bundle, kind)
    with pytest.raises(ExportError, match=r"unknown export format 'yaml'; accepted: json, csv"):
        exporter_for("yaml")
    with pytest.raises(ExportError, match="traces cannot be exported as 'csv'"):
        exporter_for("csv").render(bundle, "traces")


def _rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or ()), rows


def test_every_csv_of_records_has_one_layout(tmp_path: Path) -> None:
    """A live manager's ``all`` CSV and the store's `kari-debug export --format csv` have one
    layout (RECORD_COLUMNS); a record reads the same in both, its test and extension named."""
    manager = _live_manager()
    live_columns, live = _rows(manager.export("all", "csv"))
    store_path = _stored_run(manager, tmp_path)
    with contextlib.closing(Store(store_path)) as store:
        run_id = store.run_summaries(limit=1)[0]["id"]
        sample = {"ts": 3.0, "level": "INFO", "message": "a sample", "name": "sampler"}
        store.write_records("log", "names-ext", [sample], run_id=run_id)
    result = CliRunner().invoke(
        cli, ["--store", str(store_path), "-e", "names-ext", "export", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    stored_columns, stored = _rows(result.stdout)
    assert live_columns == stored_columns == list(RECORD_COLUMNS)
    assert {row["kind"] for row in live} >= {"log", "metric", "error", "alert"}
    assert {row["kind"] for row in stored} >= {"log", "metric", "error", "alert"}
    for rows in (live, stored):
        [error] = [
            row for row in rows if row["kind"] == "error" and row["message"] == "bad input 1"
        ]
        assert (error["name"], error["extension_id"]) == ("ValueError", "names-ext")
        [alert] = [row for row in rows if row["kind"] == "alert"][:1]
        assert (alert["level"], alert["value"], alert["message"]) == (
            "high",
            "120.0",
            "latency above 100 ms",
        )
        assert json.loads(error["data"])["error_message"] == "bad input 1"
    [error] = [row for row in stored if row["kind"] == "error" and row["message"] == "bad input 1"]
    assert error["test"] == "t.py::test_b"
    assert error["record_id"].isdigit()
    assert error["run_id"].isdigit()
    assert error["time"].endswith("+00:00")
    assert "record_id" not in json.loads(error["data"])
    [sample] = [row for row in stored if row["message"] == "a sample"]
    assert (sample["test"], sample["name"], sample["level"]) == ("", "sampler", "INFO")


def test_a_store_export_of_several_extensions_is_one_exposition(tmp_path: Path) -> None:
    """Without --extension-id, the store's Prometheus export holds each extension's families
    in one valid exposition, and its traces one service per extension."""
    traced = DebugConfiguration(tracing_enabled=True)
    first = ExtensionDebugManager("names-ext", "Names", traced)
    second = ExtensionDebugManager("other-ext", "Other", traced)
    with first.debug_session(name="t.py::test_a"):
        first.get_error_tracker().record_error("ValueError", "bad input")
    with second.debug_session(name="o.py::test_o"):
        second.get_logger().warning("other")
        with second.get_tracer().start_span("other_work"):
            second.get_error_tracker().record_error("KeyError", "missing")
    with first.debug_session(name="t.py::test_c"), first.get_tracer().start_span("work"):
        pass
    store_path = tmp_path / "kari.db"
    with contextlib.closing(Store(store_path)) as store:
        run_id = store.begin_run({"uuid": "two-run", "started_at": 1.0})
        store.write_tests(run_id, session_tests([*first.sessions, *second.sessions]))
        store.finish_run(run_id, finished_at=2.0, exit_status=0, data={})

    def export(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--store", str(store_path), "export", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    families = {f.name: f for f in text_string_to_metric_families(export("--format", "prometheus"))}
    extensions = {s.labels["extension"] for s in families["kari_records"].samples}
    assert extensions == {"names-ext", "other-ext"}
    errors = {s.labels["extension"]: s.labels["error_type"] for s in families["kari_errors"].samples
              if s.labels["extension"] == "other-ext"}  # fmt: skip
    assert errors == {"other-ext": "KeyError"}
    document = json.loads(export("--format", "jaeger"))
    services = {
        process["serviceName"]: {s["operationName"] for s in trace["spans"]}
        for trace in document["data"]
        for process in trace["processes"].values()
    }
    assert services["other-ext"] >= {"other_work"}
    assert services["names-ext"] >= {"work"}
