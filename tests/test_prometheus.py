"""Prometheus text format and OpenMetrics exports, parsed back and checked with promtool."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ExportError
from pytest_kari_debug.exporters.prometheus import (
    PrometheusExporter,
    gateway_address,
    registry_for,
    render,
    write_prometheus,
)
from pytest_kari_debug.manager import ExtensionDebugManager

HOSTILE = 'quote " backslash \\ newline \n tab \t unicode ✓ é 名前 } { , ='


def make_test(
    extension: str,
    nodeid: str,
    points: list[tuple[str, float, str, dict[str, Any]]],
    *,
    memory: bool = False,
    outcome: str = "passed",
) -> dict[str, Any]:
    """A test record as the plugin builds it, from a real debug session."""
    manager = ExtensionDebugManager(
        extension, configuration=DebugConfiguration(memory_tracking=memory)
    )
    collector = manager.get_metrics_collector()
    session_id = manager.start_debug_session(name=nodeid)
    for name, value, unit, labels in points:
        collector.record_metric(name, value, unit, **labels)
    session = manager.stop_debug_session(session_id)
    manager.get_metrics_collector().stop()
    return {
        "nodeid": nodeid,
        "extension_id": extension,
        "outcome": outcome,
        "phases": {"setup": 1.5, "call": 20.0, "teardown": 0.5},
        "duration_ms": 22.0,
        "session_id": session_id,
        "collected_data": session.collected_data,
    }


def samples_of(text: str, parser: Any = parse_text) -> dict[tuple[str, tuple[Any, ...]], float]:
    """(sample name, sorted labels) -> value of every sample in an exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in parser(text)
        for s in family.samples
    }


@pytest.fixture
def tests_records() -> list[dict[str, Any]]:
    """Two tests of two extensions with custom metrics and resource figures."""
    return [
        make_test(
            "weather",
            "tests/test_weather.py::test_forecast",
            [
                ("response_time", 250.0, "ms", {"route": "/forecast"}),
                ("response_time", 150.0, "ms", {"route": "/forecast"}),
                ("cache_hit_rate", 0.85, "ratio", {}),
            ],
            memory=True,
        ),
        make_test(
            "search",
            "tests/test_search.py::test_query[a-b]",
            [("active_users", 150, "count", {})],
            outcome="failed",
        ),
    ]


def test_text_exposition_parses_back_to_recorded_values(
    tests_records: list[dict[str, Any]],
) -> None:
    """prometheus_client's parser reads back the per-test gauges and summaries recorded."""
    found = samples_of(render(tests_records).decode())
    forecast = (("extension", "weather"), ("test", "tests/test_weather.py::test_forecast"))
    route = (("extension", "weather"), ("route", "/forecast"),
             ("test", "tests/test_weather.py::test_forecast"))  # fmt: skip
    assert found[("kari_metric_response_time_seconds_count", route)] == 2
    assert found[("kari_metric_response_time_seconds_sum", route)] == pytest.approx(0.4)
    p50 = tuple(sorted((*route, ("quantile", "0.5"))))
    assert found[("kari_metric_response_time_seconds", p50)] == pytest.approx(0.2)
    assert found[("kari_metric_cache_hit_rate_ratio_sum", forecast)] == pytest.approx(0.85)
    search = (("extension", "search"), ("test", "tests/test_search.py::test_query[a-b]"))
    assert found[("kari_metric_active_users_sum", search)] == 150
    # A version-1 record: duration_ms is migrated to setup + call (pytest_kari_debug.figures).
    assert found[("kari_test_duration_seconds", forecast)] == pytest.approx(0.0215)
    resources = tests_records[0]["collected_data"]["metrics"]["resources"]
    assert found[("kari_test_peak_rss_bytes", forecast)] == resources["peak_rss_bytes"]
    assert found[("kari_test_cpu_seconds", forecast)] == pytest.approx(resources["cpu_ms"] / 1000)
    memory = tests_records[0]["collected_data"]["metrics"]["memory"]
    assert found[("kari_test_allocated_bytes", forecast)] == memory["allocated_bytes"]
    assert ("kari_test_allocated_bytes", search) not in found  # no tracemalloc there
    failed = tuple(sorted((*search, ("outcome", "failed"))))
    assert found[("kari_test_outcome", failed)] == 1
    assert found[("kari_tests_total", (("extension", "search"), ("outcome", "failed")))] == 1
    phase = tuple(sorted((*forecast, ("phase", "call"))))
    assert found[("kari_test_phase_duration_seconds", phase)] == pytest.approx(0.02)


def test_openmetrics_exposition_parses_back(tests_records: list[dict[str, Any]]) -> None:
    """The OpenMetrics output passes the strict OpenMetrics parser with the same values."""
    text = render(tests_records, "openmetrics").decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in parse_openmetrics(text)}
    assert families["kari_metric_response_time_seconds"].type == "summary"
    assert families["kari_metric_response_time_seconds"].unit == "seconds"
    assert families["kari_tests"].type == "counter"
    found = samples_of(text, parse_openmetrics)
    text_found = samples_of(render(tests_records).decode())
    assert found == text_found


def test_promtool_accepts_the_text_exposition(
    tests_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    """`promtool check metrics` passes on the exported text format."""
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=render(tests_records),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()


def test_hostile_names_and_label_values_round_trip(tmp_path: Path) -> None:
    """Quotes, newlines, backslashes and unicode in labels, test ids and names survive."""
    records = [
        make_test(
            f"ext-{HOSTILE}",
            f"tests/t.py::test_x[{HOSTILE}]",
            [
                ('weird "name"\\with\nnewline.é', 3.0, "ms", {"path": HOSTILE}),
                ("température°", 21.5, "", {"city": "Zürich"}),
            ],
        )
    ]
    text = render(records).decode()
    families = {f.name: f for f in parse_text(text)}
    weird = families["kari_metric_weird_name_with_newline_e_seconds"]
    recorded = re.search(r"as ('.*') in 'ms', per test", weird.documentation)
    assert recorded is not None
    assert ast.literal_eval(recorded.group(1)) == 'weird "name"\\with\nnewline.é'
    sample = next(s for s in weird.samples if s.name.endswith("_sum"))
    assert sample.labels == {
        "extension": f"ext-{HOSTILE}",
        "test": f"tests/t.py::test_x[{HOSTILE}]",
        "path": HOSTILE,
    }
    assert sample.value == pytest.approx(0.003)
    temperature = families["kari_metric_temperature"]
    assert (
        next(s for s in temperature.samples if s.name.endswith("_sum")).labels["city"] == "Zürich"
    )
    om = {f.name: f for f in parse_openmetrics(render(records, "openmetrics").decode())}
    om_sample = next(
        s for s in om["kari_metric_weird_name_with_newline_e_seconds"].samples
        if s.name.endswith("_sum")
    )  # fmt: skip
    assert om_sample.labels["path"] == HOSTILE
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()


def test_user_labels_never_shadow_the_exporters_labels() -> None:
    """A user label called extension, test or quantile is renamed label_<name>."""
    records = [make_test("e", "t::x", [("m", 1.0, "", {"extension": "mine", "quantile": "q"})])]
    families = {f.name: f for f in parse_text(render(records).decode())}
    sample = next(s for s in families["kari_metric_m"].samples if s.name.endswith("_count"))
    assert sample.labels == {
        "extension": "e", "test": "t::x", "label_extension": "mine", "label_quantile": "q",
    }  # fmt: skip


def test_negative_values_become_gauges_per_statistic() -> None:
    """A metric with negative values is a gauge per statistic, valid OpenMetrics."""
    records = [make_test("e", "t::x", [("delta", -3.0, "", {}), ("delta", 5.0, "", {})])]
    text = render(records, "openmetrics").decode()
    families = {f.name: f for f in parse_openmetrics(text)}
    gauge = families["kari_metric_delta"]
    assert gauge.type == "gauge"
    stats = {s.labels["stat"]: s.value for s in gauge.samples}
    assert (stats["count"], stats["sum"], stats["min"], stats["max"]) == (2, 2.0, -3.0, 5.0)
    assert stats["p50"] == 1.0


def test_units_convert_to_prometheus_base_units() -> None:
    """ms become seconds, MB become bytes, % becomes percent; counts carry no unit."""
    records = [
        make_test(
            "e",
            "t::x",
            [
                ("lat", 1500.0, "ms", {}),
                ("mem", 2.0, "MB", {}),
                ("cpu", 50.0, "%", {}),
                ("jobs", 3.0, "count", {}),
            ],
        )
    ]
    found = {f.name: f for f in parse_text(render(records).decode())}
    sums = {name: next(s.value for s in f.samples if s.name.endswith("_sum"))
            for name, f in found.items() if name.startswith("kari_metric_")}  # fmt: skip
    assert sums == {
        "kari_metric_lat_seconds": 1.5,
        "kari_metric_mem_bytes": 2.0 * 1024 * 1024,
        "kari_metric_cpu_percent": 50.0,
        "kari_metric_jobs": 3.0,
    }


def test_exporter_is_a_prometheus_client_collector() -> None:
    """The exporter registers in a CollectorRegistry and ignores records it cannot expose."""
    records = [{"nodeid": "t::x", "extension_id": "e", "collected_data": {"metrics": {
        "records": [{"name": "!!!", "value": 1.0}, {"name": "ok", "value": "NaN?"}, "junk"],
        "resources": {"cpu_ms": "n/a"},
    }}}]  # fmt: skip
    registry = registry_for(records)
    names = {m.name for m in registry.collect()}
    assert "kari_tests" in names
    assert not any(n.startswith("kari_metric_") for n in names)
    assert next(iter(PrometheusExporter([]).collect())).name == "kari_tests"


def test_render_rejects_unknown_format() -> None:
    """An unknown format names the accepted ones."""
    with pytest.raises(ExportError, match="accepted: text, openmetrics"):
        render([], "json")


def test_write_prometheus_writes_the_file(
    tests_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    """write_prometheus writes the exposition to the path, creating directories."""
    path = write_prometheus(tmp_path / "out" / "metrics.prom", tests_records)
    assert path.read_bytes() == render(tests_records)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9091", "http://127.0.0.1:9091"),
        ("localhost:9091", "http://localhost:9091"),
        ("https://push.example.org", "https://push.example.org"),
    ],
)
def test_gateway_address_accepts_http_urls(url: str, expected: str) -> None:
    """Pushgateway addresses are http(s) URLs; the scheme defaults to http."""
    assert gateway_address(url) == expected


@pytest.mark.parametrize("url", ["ftp://host:21", "http://", "", "http://host:notaport"])
def test_gateway_address_rejects_other_urls(url: str) -> None:
    """Anything but http(s)://HOST[:PORT] is refused with the accepted form."""
    with pytest.raises(ExportError, match="Pushgateway URL"):
        gateway_address(url)


def test_exporter_over_live_debug_sessions() -> None:
    """Stopped debug sessions of a manager export like tests, named by session name."""
    manager = ExtensionDebugManager("live")
    collector = manager.get_metrics_collector()
    with manager.debug_session(name="checkout"):
        collector.record_metric("basket_size", 3)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PrometheusExporter.from_sessions(manager.sessions))
    found = samples_of(generate_latest(registry).decode())
    key = ("kari_metric_basket_size_sum", (("extension", "live"), ("test", "checkout")))
    assert found[key] == 3.0
