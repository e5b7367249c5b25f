"""MetricsCollector: custom metrics, collectors, per-session resources, aggregation, thresholds."""

from __future__ import annotations

import math
import os
import resource
import time
from fractions import Fraction
from pathlib import Path

import psutil
import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.metrics import MetricsCollector
from pytest_kari_debug.metrics.readings import _resources
from pytest_kari_debug.stats import quantile


class FakeClock:
    """A wall clock that only moves when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def manager() -> ExtensionDebugManager:
    """A fresh manager with metrics and alerting on (not started: no sampler thread)."""
    return ExtensionDebugManager("metrics-ext", "Metrics", DebugConfiguration())


@pytest.fixture
def metrics(manager: ExtensionDebugManager) -> MetricsCollector:
    """The manager's metrics collector."""
    return manager.get_metrics_collector()


def _burn_cpu(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        sum(i * i for i in range(1000))


# Recording -----------------------------------------------------------------------------
def test_record_metric_keeps_point_in_current_session(
    manager: ExtensionDebugManager, metrics: MetricsCollector
) -> None:
    """A point recorded inside a session carries its id, unit and labels (as text)."""
    session_id = manager.start_debug_session()
    metrics.record_metric("response_time", 250.5, "ms", route="/users", code=200)
    data = manager.stop_debug_session(session_id).collected_data["metrics"]
    assert data["records"][0]["name"] == "response_time"
    assert data["records"][0]["value"] == 250.5
    assert data["records"][0]["unit"] == "ms"
    assert data["records"][0]["session_id"] == session_id
    assert data["records"][0]["labels"] == {"route": "/users", "code": "200"}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "at least one ASCII letter or digit"),
        ("!!!", "at least one ASCII letter or digit"),
        ("名前", "at least one ASCII letter or digit"),
        ("__reserved", "reserved"),
        ("x" * 201, "at most 200"),
        (42, "must be a string"),
    ],
)
def test_record_metric_rejects_names_prometheus_cannot_take(
    metrics: MetricsCollector, name: object, fragment: str
) -> None:
    """A name that cannot become a valid Prometheus name after sanitizing is a clear error."""
    with pytest.raises(ConfigurationError, match=fragment):
        metrics.record_metric(name, 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["cache.hit-rate", "température", "1st_try", "a b/c"])
def test_record_metric_accepts_names_that_sanitize(metrics: MetricsCollector, name: str) -> None:
    """Names with dots, dashes, accents, spaces or a leading digit are kept as written."""
    metrics.record_metric(name, 1.0)
    assert metrics.get_metrics(name)[0].name == name


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_record_metric_rejects_nan_and_infinity(metrics: MetricsCollector, value: float) -> None:
    """NaN and infinities are refused with the metric's name and the value in the message."""
    with pytest.raises(ConfigurationError, match=r"'latency' value must be finite"):
        metrics.record_metric("latency", value)


@pytest.mark.parametrize("value", ["5", None, True, [1], 1 + 2j])
def test_record_metric_rejects_non_numbers(metrics: MetricsCollector, value: object) -> None:
    """Strings, None, booleans, lists and complex numbers are not metric values."""
    with pytest.raises(ConfigurationError, match="must be a real number"):
        metrics.record_metric("latency", value)  # type: ignore[arg-type]


def test_record_metric_accepts_other_real_numbers(metrics: MetricsCollector) -> None:
    """Any numbers.Real (a Fraction here) is stored as a float."""
    metrics.record_metric("ratio", Fraction(1, 4))
    assert metrics.get_metrics("ratio")[0].value == 0.25


def test_disabled_collector_accepts_calls_and_keeps_nothing() -> None:
    """A switched-off collector checks arguments but records nothing and starts no thread."""
    off = ExtensionDebugManager("off", configuration=DebugConfiguration(metrics_enabled=False))
    collector = off.get_metrics_collector()
    off.start()
    collector.record_metric("x", 1.0)
    collector.record_request_time(3.0)
    assert collector.get_metrics() == []
    assert not collector.sampling
    assert collector.sample_now() == {}
    with pytest.raises(ConfigurationError):
        collector.record_metric("x", math.nan)
    off.stop()


def test_buffer_bounded_by_max_metrics_with_drop_counter() -> None:
    """Beyond max_metrics the oldest points go and the drops are counted, run and session."""
    bounded = ExtensionDebugManager("bounded", configuration=DebugConfiguration(max_metrics=5))
    collector = bounded.get_metrics_collector()
    session_id = bounded.start_debug_session()
    for i in range(8):
        collector.record_metric("n", i)
    data = bounded.stop_debug_session(session_id).collected_data["metrics"]
    assert [p.value for p in collector.get_metrics()] == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert collector.stats()["dropped"] == 3
    assert len(data["records"]) == 5
    assert data["dropped"] == 3


def test_request_time_and_error_helpers(metrics: MetricsCollector) -> None:
    """record_request_time is metric request_time in ms; record_error counts by error_type."""
    metrics.record_request_time(125.0)
    metrics.record_error("ValidationError")
    request = metrics.get_metrics("request_time")[0]
    error = metrics.get_metrics("errors")[0]
    assert (request.value, request.unit) == (125.0, "ms")
    assert (error.value, error.unit, error.labels) == (
        1.0,
        "count",
        {"error_type": "ValidationError"},
    )


# Custom collectors -----------------------------------------------------------------------
def test_custom_collector_called_at_each_sample(metrics: MetricsCollector) -> None:
    """A registered collector is called at every sample; its value is a point and in the sample."""
    queue = [1, 2, 3]
    metrics.register_custom_collector("queue_size", lambda: len(queue))
    first = metrics.sample_now()
    queue.append(4)
    second = metrics.sample_now()
    assert first["custom"] == {"queue_size": 3.0}
    assert second["custom"] == {"queue_size": 4.0}
    assert [p.value for p in metrics.get_metrics("queue_size")] == [3.0, 4.0]


def test_custom_collector_that_raises_is_reported_once_and_skipped(
    metrics: MetricsCollector,
) -> None:
    """A raising collector gives one diagnostic, is skipped from then on; sampling goes on."""
    calls = []

    def broken() -> float:
        calls.append(1)
        raise RuntimeError("queue is gone")

    metrics.register_custom_collector("broken", broken)
    metrics.register_custom_collector("fine", lambda: 1.0)
    for _ in range(3):
        point = metrics.sample_now()
        assert "rss_bytes" in point or "cpu_percent" in point
    assert len(calls) == 1
    assert [d for d in metrics.diagnostics if "broken" in d] == [
        "custom collector 'broken' raised RuntimeError: queue is gone; skipped from now on"
    ]
    assert len(metrics.get_metrics("fine")) == 3
    assert metrics.check()[0] == "degraded"


def test_custom_collector_returning_nan_is_skipped(metrics: MetricsCollector) -> None:
    """A collector whose value is not a finite number is reported and skipped like one raising."""
    metrics.register_custom_collector("nan_source", lambda: math.nan)
    metrics.sample_now()
    assert "nan_source" not in metrics.custom_collectors
    assert any("nan_source" in d and "finite" in d for d in metrics.diagnostics)


def test_register_custom_collector_checks_arguments(metrics: MetricsCollector) -> None:
    """A collector must be callable and its name must be able to become a Prometheus name."""
    with pytest.raises(ConfigurationError, match="must be callable"):
        metrics.register_custom_collector("queue_size", 5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="letter or digit"):
        metrics.register_custom_collector("???", lambda: 1.0)


# Per-session resources -------------------------------------------------------------------
def test_session_resources_have_the_contract_keys(manager: ExtensionDebugManager) -> None:
    """Every session gets CPU, RSS, peak RSS, io and context switch figures and its samples."""
    session_id = manager.start_debug_session()
    data = manager.stop_debug_session(session_id).collected_data["metrics"]
    expected = {"cpu_user_s", "cpu_system_s", "cpu_ms", "rss_start_bytes", "rss_end_bytes",
                "peak_rss_bytes", "peak_rss_mb", "ctx_switches"}  # fmt: skip
    assert expected <= set(data["resources"])
    if Path("/proc/self/io").exists() and os.access("/proc/self/io", os.R_OK):
        assert {"io_read_bytes", "io_write_bytes"} <= set(data["resources"])
    assert data["samples"] == []
    assert data["samples_dropped"] == 0
    assert "memory" not in data


def test_session_cpu_time_counts_work_done_in_the_session(
    manager: ExtensionDebugManager, metrics: MetricsCollector
) -> None:
    """CPU burnt inside the session (measured by time.process_time) shows in cpu_ms."""
    session_id = manager.start_debug_session()
    before = time.process_time()
    _burn_cpu(0.05)
    burnt_ms = (time.process_time() - before) * 1000.0
    live = metrics.session_resources(session_id)
    data = manager.stop_debug_session(session_id).collected_data["metrics"]["resources"]
    assert live["cpu_ms"] >= burnt_ms * 0.9
    assert data["cpu_ms"] >= live["cpu_ms"]
    assert data["cpu_ms"] == pytest.approx(
        (data["cpu_user_s"] + data["cpu_system_s"]) * 1000, abs=0.01
    )


def test_session_context_switches_and_io_enclose_an_inner_measurement(
    manager: ExtensionDebugManager, tmp_path: Path
) -> None:
    """Context switches and io bytes of the session are at least those measured inside it."""
    session_id = manager.start_debug_session()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    io_before = psutil.Process().io_counters()
    for _ in range(5):
        time.sleep(0.001)
    with (tmp_path / "data.bin").open("wb") as handle:
        handle.write(os.urandom(256 * 1024))
        handle.flush()
        os.fsync(handle.fileno())
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    io_after = psutil.Process().io_counters()
    data = manager.stop_debug_session(session_id).collected_data["metrics"]["resources"]
    inner = (usage_after.ru_nvcsw + usage_after.ru_nivcsw) - (
        usage_before.ru_nvcsw + usage_before.ru_nivcsw
    )
    assert data["ctx_switches"] >= inner >= 1
    assert data["ctx_switches"] == data["ctx_switches_voluntary"] + data["ctx_switches_involuntary"]
    if "io_write_bytes" in data:
        assert data["io_write_bytes"] >= io_after.write_bytes - io_before.write_bytes
        assert data["io_read_bytes"] >= io_after.read_bytes - io_before.read_bytes


def test_peak_rss_includes_sampler_points(
    manager: ExtensionDebugManager, metrics: MetricsCollector
) -> None:
    """Memory held only while the sampler looked still counts in the session's peak RSS."""
    session_id = manager.start_debug_session()
    block = b"\x01" * (64 * 1024 * 1024)
    point = metrics.sample_now()
    del block
    data = manager.stop_debug_session(session_id).collected_data["metrics"]
    assert data["resources"]["peak_rss_bytes"] >= point["rss_bytes"]
    assert point["rss_bytes"] - data["resources"]["rss_start_bytes"] >= 60 * 1024 * 1024
    assert data["samples"] == [point]


def test_resources_take_a_rising_lifetime_peak_as_the_session_peak() -> None:
    """When getrusage's lifetime peak rose during the session, that peak was the session's."""
    # (user s, system s, ctx voluntary, ctx involuntary, lifetime peak, rss, io read, io write)
    start = (1.0, 0.5, 10, 1, 150, 100, 0, 0)
    rose = (1.5, 0.5, 12, 1, 400, 110, 0, 4096)
    flat = (1.5, 0.5, 12, 1, 150, 110, 0, 4096)
    assert _resources(start, rose, 0.0)["peak_rss_bytes"] == 400
    assert _resources(start, flat, 0.0)["peak_rss_bytes"] == 110
    assert _resources(start, flat, 130.0)["peak_rss_bytes"] == 130
    assert _resources(start, rose, 0.0)["cpu_ms"] == 500.0
    assert _resources(start, rose, 0.0)["io_write_bytes"] == 4096
    assert _resources(start, rose, 0.0)["ctx_switches"] == 2
    missing = (1.0, 0.5, None, None, None, None, None, None)
    assert set(_resources(missing, missing, 0.0)) == {"cpu_user_s", "cpu_system_s", "cpu_ms"}


def test_session_resources_of_unknown_session_is_empty(metrics: MetricsCollector) -> None:
    """Live figures of a session that is not open are empty dicts, not an error."""
    assert metrics.session_resources("nope") == {}
    assert metrics.session_memory("nope") == {}
    assert metrics.session_samples("nope") == []


# tracemalloc -----------------------------------------------------------------------------
def _memory_manager() -> ExtensionDebugManager:
    return ExtensionDebugManager("mem", configuration=DebugConfiguration(memory_tracking=True))


def test_memory_tracking_reports_peak_and_allocations() -> None:
    """With memory_tracking, a session reports tracemalloc's peak and what it left allocated.

    tracemalloc, started by the first memory session, stops with the manager.
    """
    import tracemalloc

    was_tracing = tracemalloc.is_tracing()
    mem = _memory_manager()
    mem.start()
    session_id = mem.start_debug_session()
    kept = [object() for _ in range(20_000)]
    transient = bytes(8 * 1024 * 1024)
    del transient
    live = mem.get_metrics_collector().session_memory(session_id)
    data = mem.stop_debug_session(session_id).collected_data["metrics"]["memory"]
    mem.stop()
    assert live["peak_bytes"] >= 8 * 1024 * 1024
    assert data["peak_bytes"] >= 8 * 1024 * 1024
    assert 20_000 * 16 <= data["allocated_bytes"] < 8 * 1024 * 1024
    assert data["allocated_blocks"] >= 19_000
    assert data["allocated_mb"] == pytest.approx(data["allocated_bytes"] / 2**20, abs=1e-5)
    assert tracemalloc.is_tracing() == was_tracing
    del kept


def test_profile_memory_session_option_turns_tracemalloc_on(
    manager: ExtensionDebugManager,
) -> None:
    """A session started with profile_memory=True gets memory figures without the config."""
    session_id = manager.start_debug_session({"profile_memory": True})
    data = manager.stop_debug_session(session_id).collected_data["metrics"]
    plain = manager.stop_debug_session(manager.start_debug_session()).collected_data["metrics"]
    manager.stop()
    assert {"peak_bytes", "allocated_bytes", "allocated_blocks"} <= set(data["memory"])
    assert "memory" not in plain


def test_tracemalloc_started_by_others_is_never_stopped() -> None:
    """When other code started tracemalloc, stopping the manager leaves it tracing."""
    import tracemalloc

    started_here = not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        mem = _memory_manager()
        mem.start()
        mem.stop_debug_session(mem.start_debug_session())
        mem.stop()
        assert tracemalloc.is_tracing()
    finally:
        if started_here:
            tracemalloc.stop()


def test_overlapping_memory_sessions_keep_their_peaks() -> None:
    """A session starting (and resetting tracemalloc's peak) does not erase an open one's peak."""
    mem = _memory_manager()
    first = mem.start_debug_session()
    transient = bytes(6 * 1024 * 1024)
    del transient
    second = mem.start_debug_session()
    data_second = mem.stop_debug_session(second).collected_data["metrics"]["memory"]
    data_first = mem.stop_debug_session(first).collected_data["metrics"]["memory"]
    mem.stop()
    assert data_first["peak_bytes"] >= 6 * 1024 * 1024
    assert data_second["peak_bytes"] < 6 * 1024 * 1024


# Aggregation -----------------------------------------------------------------------------
def test_aggregate_over_the_run(metrics: MetricsCollector) -> None:
    """count, sum, min, max, mean, percentiles, last and rate over everything kept."""
    clock = FakeClock()
    metrics.clock = clock
    metrics.created_at = clock.now
    for value in range(1, 101):
        clock.now += 0.1
        metrics.record_metric("latency", value, "ms")
    stats = metrics.aggregate("latency")
    assert stats is not None
    assert (stats.count, stats.sum, stats.min, stats.max, stats.last) == (100, 5050.0, 1, 100, 100)
    assert stats.mean == 50.5
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(90.1)
    assert stats.p95 == pytest.approx(95.05)
    assert stats.p99 == pytest.approx(99.01)
    assert stats.rate_per_second == pytest.approx(10.0)
    assert stats.to_dict()["count"] == 100


def test_aggregate_over_last_seconds(metrics: MetricsCollector) -> None:
    """A window of the last N seconds counts only points recorded in it."""
    clock = FakeClock()
    metrics.clock = clock
    for value in range(10):
        clock.now += 1.0
        metrics.record_metric("load", value)
    stats = metrics.aggregate("load", window_seconds=3.5)
    assert stats is not None
    assert (stats.count, stats.min, stats.max) == (4, 6.0, 9.0)
    assert stats.rate_per_second == pytest.approx(4 / 3.5)


def test_aggregate_over_a_session_and_by_labels(
    manager: ExtensionDebugManager, metrics: MetricsCollector
) -> None:
    """A session window counts that session's points only; labels narrow further."""
    metrics.record_metric("hits", 100)
    session_id = manager.start_debug_session()
    metrics.record_metric("hits", 1, route="a")
    metrics.record_metric("hits", 3, route="b")
    live = metrics.aggregate("hits", session_id=session_id)
    only_a = metrics.aggregate("hits", session_id=session_id, route="a")
    manager.stop_debug_session(session_id)
    after = metrics.aggregate("hits", session_id=session_id)
    assert live is not None
    assert after is not None
    assert only_a is not None
    assert (live.count, live.sum) == (2, 4.0)
    assert (after.count, after.sum) == (2, 4.0)
    assert (only_a.count, only_a.max) == (1, 1.0)
    assert metrics.aggregate("hits").count == 3  # type: ignore[union-attr]


def test_aggregate_of_resource_fields_uses_samples(metrics: MetricsCollector) -> None:
    """Resource fields (rss_bytes, cpu_percent...) aggregate over the sampler's points."""
    points = [metrics.sample_now() for _ in range(3)]
    stats = metrics.aggregate("rss_bytes")
    assert stats is not None
    assert stats.count == 3
    assert stats.max == max(p["rss_bytes"] for p in points)


def test_aggregate_edge_cases(metrics: MetricsCollector) -> None:
    """An unknown name gives None; a window that is not a positive number is an error."""
    assert metrics.aggregate("never") is None
    with pytest.raises(ConfigurationError, match="window_seconds"):
        metrics.aggregate("x", window_seconds=0)
    with pytest.raises(ConfigurationError, match="window_seconds"):
        metrics.aggregate("x", window_seconds=math.inf)
    assert quantile([5.0], 0.99) == 5.0


def test_aggregate_all_lists_every_metric(metrics: MetricsCollector) -> None:
    """aggregate_all covers recorded metrics and sampled resource fields."""
    metrics.record_metric("a", 1)
    metrics.record_metric("b", 2)
    metrics.sample_now()
    found = metrics.aggregate_all()
    assert {"a", "b", "rss_bytes"} <= set(found)


def test_real_time_view_of_seed_names(metrics: MetricsCollector) -> None:
    """The seed's real-time names give their latest values; unknown names give None."""
    metrics.record_metric("response_time", 12.0, "ms")
    metrics.record_metric("response_time", 15.0, "ms")
    view = metrics.get_real_time_metrics(["cpu_percent", "memory_mb", "response_time", "nope"])
    assert view["response_time"] is not None
    assert view["response_time"]["value"] == 15.0
    assert view["memory_mb"] is not None
    assert view["memory_mb"]["value"] > 1
    assert view["memory_mb"]["source"] == "sampler"
    assert view["cpu_percent"] is not None
    assert view["nope"] is None
    assert set(metrics.latest()) >= {"response_time", "rss_bytes"}


# Thresholds ------------------------------------------------------------------------------
def test_threshold_breach_fires_on_crossing_only(
    manager: ExtensionDebugManager, metrics: MetricsCollector
) -> None:
    """A breach is recorded when a value crosses the limit, not again while it stays across."""
    metrics.set_threshold("response_time", ">", 100, "high")
    session_id = manager.start_debug_session()
    for value in (50, 150, 160, 50, 170):
        metrics.record_metric("response_time", value, "ms")
    data = manager.stop_debug_session(session_id).collected_data["metrics"]
    assert [b.value for b in metrics.breaches] == [150.0, 170.0]
    assert [b["value"] for b in data["breaches"]] == [150.0, 170.0]
    assert data["breaches"][0]["message"] == "response_time = 150 breaks threshold > 100"


def test_threshold_breach_goes_to_the_alert_manager(
    manager: ExtensionDebugManager, metrics: MetricsCollector
) -> None:
    """The manager hands breaches to its alert manager: an alert names metric and limit."""
    metrics.set_threshold("error_rate", ">=", 0.05, "critical")
    metrics.record_metric("error_rate", 0.2)
    alerts = manager.get_alert_manager().get_active_alerts()
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.severity.value == "critical"
    assert (alert.metric_name, alert.current_value, alert.threshold_value) == (
        "error_rate",
        0.2,
        0.05,
    )


def test_threshold_on_a_resource_field_checked_at_each_sample(
    metrics: MetricsCollector,
) -> None:
    """Thresholds on sampler fields (rss_bytes here) are checked at every sample."""
    metrics.set_threshold("rss_bytes", ">", 1, "low")
    metrics.sample_now()
    assert [b.name for b in metrics.breaches] == ["rss_bytes"]


def test_threshold_without_alerting_still_records_the_breach() -> None:
    """With alerting off, the breach is recorded and no alert exists."""
    quiet = ExtensionDebugManager("quiet", configuration=DebugConfiguration(alerting_enabled=False))
    collector = quiet.get_metrics_collector()
    collector.set_threshold("x", "gt", 1)
    collector.record_metric("x", 2)
    assert len(collector.breaches) == 1
    assert quiet.get_alert_manager().get_active_alerts() == []


def test_alert_handler_failure_becomes_a_diagnostic(metrics: MetricsCollector) -> None:
    """An alert handler that raises never reaches the caller of record_metric."""

    def broken(**_: object) -> None:
        raise OSError("webhook down")

    metrics.set_alert_handler(broken)
    metrics.set_threshold("x", ">", 0)
    metrics.record_metric("x", 1)
    assert any("webhook down" in d for d in metrics.diagnostics)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("x", "=>", 1), "operator '=>' is not known"),
        (("x", ">", math.nan), "finite number"),
        (("x", ">", "10"), "finite number"),
        (("x", ">", 1, "urgent"), "unknown severity 'urgent'"),
        (("", ">", 1), "letter or digit"),
    ],
)
def test_set_threshold_checks_arguments(
    metrics: MetricsCollector, args: tuple[object, ...], fragment: str
) -> None:
    """Bad operators, limits, severities and names are refused with what is accepted."""
    with pytest.raises(ConfigurationError, match=fragment):
        metrics.set_threshold(*args)  # type: ignore[arg-type]


def test_set_threshold_accepts_alert_severity_and_replaces(metrics: MetricsCollector) -> None:
    """An AlertSeverity works as severity; setting name and operator again replaces it."""
    from pytest_kari_debug.alerting import AlertSeverity

    metrics.set_threshold("x", ">", 1, AlertSeverity.MEDIUM)
    metrics.set_threshold("x", ">", 5, AlertSeverity.HIGH)
    assert next(iter(metrics.thresholds.values())).to_dict() == {
        "name": "x", "op": ">", "value": 5.0, "severity": "high",
    }  # fmt: skip
    metrics.remove_threshold("x")
    assert metrics.thresholds == {}


def test_stats_include_sampler_counts(metrics: MetricsCollector) -> None:
    """stats() adds sampler counts to the record counts."""
    metrics.sample_now()
    stats = metrics.stats()
    assert stats["samples"] == 1
    assert stats["samples_taken"] == 1
    assert stats["samples_dropped"] == 0


def test_export_data_is_json_able(metrics: MetricsCollector) -> None:
    """export_data holds points, samples, aggregates, thresholds and breaches as JSON."""
    import json

    metrics.set_threshold("x", ">", 1)
    metrics.record_metric("x", 2, "ms", route="/a")
    metrics.sample_now()
    data = json.loads(json.dumps(metrics.export_data()))
    assert data["records"][0]["labels"] == {"route": "/a"}
    assert data["aggregates"]["x"]["count"] == 1
    assert data["breaches"][0]["value"] == 2.0
    assert len(data["samples"]) == 1
