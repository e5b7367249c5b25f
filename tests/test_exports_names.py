"""One Prometheus naming scheme: a stored run's export and a live manager's name alike."""

from __future__ import annotations

import contextlib
from pathlib import Path

from click.testing import CliRunner
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families

from pytest_kari_debug.cli import cli
from pytest_kari_debug.exporters.bundle import session_tests
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


def _names(text: str) -> set[tuple[str, str]]:
    return {(family.name, family.type) for family in text_string_to_metric_families(text)}


def test_stored_run_and_live_exports_name_every_family_alike(tmp_path: Path) -> None:
    """The same tests, exported live (debug_manager.export) and from the store (kari-debug
    export), parse to the same family names and types, labelled alike."""
    manager = _live_manager()
    live_text = manager.export("all", "prometheus")
    live = _names(live_text)
    store_path = tmp_path / "kari.db"
    with contextlib.closing(Store(store_path)) as store:
        run_id = store.begin_run({"uuid": "names-run", "started_at": 1.0})
        store.write_tests(run_id, session_tests(manager.sessions))
        store.finish_run(run_id, finished_at=2.0, exit_status=0, data={})
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
