"""One Prometheus naming scheme: a stored run's export and a live manager's name alike."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from pytest_kari_debug.cli import cli
from pytest_kari_debug.exceptions import ExportError
from pytest_kari_debug.exporters.bundle import session_tests
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
