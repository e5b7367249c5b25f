"""The figures catalogue: one definition and one reader per figure."""

from __future__ import annotations

import pytest

from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.figures import (
    FIGURES,
    MIB,
    RecordFigures,
    SessionFigures,
    UnknownFigure,
    catalogue,
    figure_spec,
    measure,
    values,
)
from pytest_kari_debug.model import TestRecord

RECORD = {
    "record_version": 2,
    "nodeid": "t.py::test_a",
    "extension_id": "ext",
    "outcome": "passed",
    "phases": {"setup": 1.5, "call": 10.0, "teardown": 4.0},
    "duration_ms": 11.5,
    "cpu_ms": 9.0,
    "kari_overhead_ms": 0.75,
    "collected_data": {
        "metrics": {
            "records": [],
            "resources": {"cpu_ms": 99.0, "peak_rss_bytes": 3 * MIB + 1},
            "memory": {"allocated_bytes": 1234567, "peak_bytes": 2345678, "allocated_blocks": 7},
        },
        "logging": {"records": [{"level": "ERROR"}, {"level": "INFO"}], "dropped": 5},
        "error_tracking": {"records": [{"error_type": "ValueError"}], "dropped": 1},
        "tracing": {"records": [{"name": "q", "duration_ms": 3.0}]},
    },
}


def test_every_figure_is_defined_once_with_meaning_unit_and_source() -> None:
    """Each catalogue entry has a name, a meaning, a unit, a base unit and a source."""
    names = [spec.name for spec in catalogue()]
    assert len(names) == len(set(names))
    for spec in catalogue():
        assert spec.description, spec.name
        assert spec.source, spec.name
        entry = spec.to_dict()
        assert set(entry) == {"name", "unit", "base_unit", "description", "source", "series"}
    assert figure_spec("peak_rss_mb").base_unit == "bytes"
    assert "setup + call" in FIGURES["duration_ms"].description


def test_unknown_figure_is_a_usage_error_listing_the_catalogue() -> None:
    """An unknown figure name raises UnknownFigure naming every known figure."""
    with pytest.raises(UnknownFigure) as info:
        measure("durration_ms", RECORD)
    assert isinstance(info.value, ConfigurationError)
    for name in FIGURES:
        assert name in str(info.value)
    assert "span:<name glob>" in str(info.value)


def test_duration_is_setup_plus_call() -> None:
    """duration_ms is the test's own setup + call; teardown is its own figure."""
    record = TestRecord.from_dict(RECORD)
    assert measure("duration_ms", record).value == 11.5
    assert measure("teardown_ms", record).value == 4.0
    live = SessionFigures(object(), "s", phases={"setup": 1.5, "call": 10.0})
    assert live.measure("duration_ms").value == 11.5


def test_own_work_figures_come_from_the_record() -> None:
    """cpu_ms is the test's own CPU (not the session's), kari_overhead_ms the plugin's time."""
    assert measure("cpu_ms", RECORD).value == 9.0
    assert measure("kari_overhead_ms", RECORD).value == 0.75


def test_version_1_record_falls_back_and_says_why() -> None:
    """On an old record cpu_ms is the session's figure and kari_overhead_ms is missing."""
    old = {k: v for k, v in RECORD.items() if k != "record_version"}
    assert measure("cpu_ms", old).value == 99.0
    overhead = measure("kari_overhead_ms", old)
    assert overhead.missing is not None
    assert "version 1" in overhead.missing


def test_counts_include_records_dropped_at_the_cap() -> None:
    """errors, logs and spans count every record the test made, kept or dropped."""
    got = values(["errors", "logs", "spans", "log.error"], RECORD)
    assert got == {"errors": 2.0, "logs": 7.0, "spans": 1.0, "log.error": 1.0}


def test_base_values_are_exact_bytes() -> None:
    """A MiB figure's base value is the recorded byte count, not a rounded MiB scaled back."""
    measured = measure("allocated_mb", RECORD)
    assert measured.base == pytest.approx(1234567, abs=1e-6)
    assert values(["peak_rss_mb"], RECORD, base=True) == {"peak_rss_mb": pytest.approx(3 * MIB + 1)}


def test_record_figures_accept_a_typed_record_or_its_dict() -> None:
    """The one reader gives the same figures for a TestRecord and its dictionary."""
    names = [n for n in FIGURES if n not in ("cpu_percent", "rss_mb")]
    assert values(names, RECORD) == values(names, RecordFigures(TestRecord.from_dict(RECORD)))
