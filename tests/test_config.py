"""DebugConfiguration: the seed's fields and defaults, validation, and text conversion."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_kari_debug.alerting import AlertingConfiguration
from pytest_kari_debug.config import (
    DebugConfiguration,
    field_help,
    field_names,
    is_positive_number,
    parse_field,
)
from pytest_kari_debug.exceptions import ConfigurationError


def test_defaults_are_the_seeds() -> None:
    """Every field of the seed's example exists with the seed's default."""
    config = DebugConfiguration()
    assert (config.logging_enabled, config.metrics_enabled, config.error_tracking_enabled) == (
        True,
        True,
        True,
    )
    assert (config.profiling_enabled, config.tracing_enabled, config.alerting_enabled) == (
        False,
        False,
        True,
    )
    assert (config.metrics_interval, config.health_check_interval) == (30.0, 60.0)
    assert (config.max_log_entries, config.max_metrics, config.max_errors, config.max_traces) == (
        10000,
        50000,
        1000,
        1000,
    )
    assert (config.sampling_rate, config.profiling_overhead_limit) == (1.0, 5.0)


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("sampling_rate", 1.5, "from 0.0 to 1.0"),
        ("sampling_rate", -0.1, "from 0.0 to 1.0"),
        ("max_log_entries", -1, ">= 0"),
        ("max_metrics", 2.5, "whole number"),
        ("metrics_interval", 0, ">= 0.01"),
        ("metrics_interval", 0.005, ">= 0.01"),
        ("health_check_interval", -5.0, "> 0"),
        ("logging_enabled", "yes", "True or False"),
        ("profiling_overhead_limit", 0, "percentage"),
        ("max_errors", True, "whole number"),
        ("sampling_rate", float("nan"), "a number"),
        ("log_level", "LOUD", "DEBUG"),
    ],
)
def test_bad_values_name_field_value_and_what_is_accepted(field, value, accepted) -> None:
    """A bad value raises ConfigurationError naming the field, the value and the accepted range."""
    with pytest.raises(ConfigurationError) as raised:
        DebugConfiguration(**{field: value})
    message = str(raised.value)
    assert field in message
    assert repr(value) in message
    assert accepted in message


def test_configuration_error_is_a_value_error() -> None:
    """Callers catching ValueError also catch bad configuration."""
    with pytest.raises(ValueError, match="sampling_rate"):
        DebugConfiguration(sampling_rate=2)


def test_from_mapping_converts_ini_text() -> None:
    """Text values (from ini files and flags) become the field's type."""
    config = DebugConfiguration.from_mapping(
        {
            "tracing_enabled": "yes",
            "max_log_entries": "25",
            "sampling_rate": "0.25",
            "redact_fields": "password, pin\nssn",
        }
    )
    assert config.tracing_enabled is True
    assert config.max_log_entries == 25
    assert config.sampling_rate == 0.25
    assert config.redact_fields == ("password", "pin", "ssn")


def test_from_mapping_rejects_unknown_fields_and_bad_text() -> None:
    """Unknown field names and unparsable text are errors naming them."""
    with pytest.raises(ConfigurationError, match="max_logs"):
        DebugConfiguration.from_mapping({"max_logs": "3"})
    with pytest.raises(ConfigurationError, match=r"max_errors.*'many'.*whole number"):
        parse_field("max_errors", "many")


def test_replace_validates() -> None:
    """replace() returns a checked copy and refuses unknown fields."""
    config = DebugConfiguration().replace(sampling_rate=0.5)
    assert config.sampling_rate == 0.5
    with pytest.raises(ConfigurationError):
        DebugConfiguration().replace(sampling_rate=5)
    with pytest.raises(ConfigurationError, match="nope"):
        DebugConfiguration().replace(nope=1)


@pytest.mark.parametrize("configuration", [DebugConfiguration, AlertingConfiguration])
def test_every_field_has_help_in_its_metadata(configuration: type) -> None:
    """Each configuration field carries a capitalised help phrase (the flags' and docs' text)."""
    for spec in dataclasses.fields(configuration):
        text = spec.metadata.get("help", "")
        assert text[:1].isupper(), spec.name
        assert not text.endswith("."), spec.name


def test_flag_help_is_the_fields_help(pytester: pytest.Pytester) -> None:
    """``pytest --help`` shows each --kari-<field> with the help text of its field."""
    result = pytester.runpytest("--help")
    text = " ".join(" ".join(result.outlines).split())
    for name in field_names():
        if name != "memory_tracking":  # --kari-memory stands for it
            assert field_help(name) in text, name


@pytest.mark.parametrize("value", [1, 0.5, 1e300])
def test_positive_numbers_are_accepted(value: float) -> None:
    """A finite int or float above zero is a positive number."""
    assert is_positive_number(value)


@pytest.mark.parametrize("value", [0, -1, 0.0, float("inf"), float("nan"), True, "1", None])
def test_other_values_are_not_positive_numbers(value: object) -> None:
    """Zero, negatives, infinity, NaN, bools, strings and None are refused."""
    assert not is_positive_number(value)


def test_window_and_interval_checks_share_the_positive_number_rule() -> None:
    """The metrics window, the dashboard window and the profiler interval refuse the same
    values with an error naming the parameter."""
    from pytest_kari_debug.dashboard import ExtensionDebugDashboard
    from pytest_kari_debug.manager import ExtensionDebugManager
    from pytest_kari_debug.metrics import MetricsCollector
    from pytest_kari_debug.profiler import PerformanceProfiler

    with pytest.raises(ConfigurationError, match="window_seconds must be a finite number > 0"):
        MetricsCollector("m").aggregate("x", window_seconds=True)
    with pytest.raises(ConfigurationError, match="interval must be a number of seconds > 0"):
        PerformanceProfiler("p").start_session(interval=float("nan"))
    manager = ExtensionDebugManager("dash", DebugConfiguration())
    try:
        with pytest.raises(ConfigurationError, match="window_seconds must be a finite number > 0"):
            ExtensionDebugDashboard(manager).get_metrics(window_seconds=0)
    finally:
        manager.stop()
