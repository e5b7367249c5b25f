"""The typed record model: kinds, vocabulary, round trips, the schema and old documents."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.exporters.json_export import SCHEMA_PATH, build_run_document
from pytest_kari_debug.model import (
    OUTCOMES,
    PHASES,
    SCHEMA_VERSION,
    ComponentData,
    Kind,
    RunRecord,
    TestRecord,
    Unit,
)
from pytest_kari_debug.rules import AlertSeverity

SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
TEST_SCHEMA = SCHEMA["$defs"]["test"]

#: A test record as version 1 of the plugin wrote it (phases including the plugin's work).
V1_RECORD = {
    "nodeid": "t.py::test_a",
    "extension_id": "ext",
    "extension_name": "Ext",
    "outcome": "passed",
    "phases": {"setup": 61.0, "call": 2.0, "teardown": 9.0},
    "duration_ms": 72.0,
    "started_at": 1.0,
    "finished_at": 2.0,
    "session_id": "s1",
    "worker": None,
    "longrepr": None,
    "collected_data": {
        "metrics": {"records": [], "resources": {"cpu_ms": 247.0, "peak_rss_bytes": 1 << 20}},
        "logging": {"records": [{"level": "ERROR", "message": "x"}], "dropped": 2},
        "custom_component": {"anything": [1, 2]},
    },
    "extra": {"gates": {"figures": {"call_ms": 2.0}}},
    "a_key_from_the_future": {"kept": True},
}


@pytest.mark.parametrize(
    ("spelling", "kind"),
    [
        ("logging", Kind.LOGGING), ("log", Kind.LOGGING), ("logs", Kind.LOGGING),
        ("error_tracking", Kind.ERROR_TRACKING), ("error", Kind.ERROR_TRACKING),
        ("errors", Kind.ERROR_TRACKING), ("tracing", Kind.TRACING), ("span", Kind.TRACING),
        ("spans", Kind.TRACING), ("metric", Kind.METRICS), ("Profiles", Kind.PROFILING),
        ("alert", Kind.ALERTING),
    ],
)  # fmt: skip
def test_kind_maps_every_spelling(spelling: str, kind: Kind) -> None:
    """One Kind reads the collected-data key, the store's record kind and the plural."""
    assert Kind.parse(spelling) is kind
    assert Kind.parse(kind.record) is kind
    assert Kind.parse(kind.plural) is kind


def test_unknown_kind_lists_the_spellings() -> None:
    """An unknown kind is a configuration error naming what is accepted."""
    with pytest.raises(ConfigurationError, match=r"unknown record kind 'lgos'; accepted: .*logs"):
        Kind.parse("lgos")


def test_store_record_kinds_are_the_model_kinds() -> None:
    """The store's component -> record kind table is the model's Kind.record."""
    from pytest_kari_debug.storage import RECORD_KINDS

    assert {kind.value: kind.record for kind in Kind} == RECORD_KINDS


def test_severities_are_the_alert_severities() -> None:
    """The alert severity vocabulary is AlertSeverity's values, lowest first; views list them
    worst first under a name of their own."""
    from pytest_kari_debug.model import ALERT_SEVERITIES, ALERT_SEVERITIES_WORST_FIRST

    assert tuple(s.value for s in sorted(AlertSeverity)) == ALERT_SEVERITIES
    assert ALERT_SEVERITIES == ("low", "medium", "high", "critical")
    assert ALERT_SEVERITIES_WORST_FIRST == ("critical", "high", "medium", "low")


def test_alert_severities_order_and_refuse_other_types() -> None:
    """Severities compare by rank in every direction; a comparison with a string is a TypeError."""
    low, high = AlertSeverity.LOW, AlertSeverity.HIGH
    assert low < high
    assert low <= high
    assert low <= low
    assert high > low
    assert high >= low
    assert not high < low
    assert not high <= low
    assert not low > high
    assert not low >= high
    assert [s.rank for s in AlertSeverity] == [1, 2, 3, 4]
    with pytest.raises(TypeError):
        assert low < "high"  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match="accepted: low, medium, high, critical"):
        AlertSeverity.parse("severe")


def test_shared_vocabulary_is_defined_once() -> None:
    """Log levels, alert severities and operators come from model wherever they are used, and
    no module keeps a name ``SEVERITIES`` that means different things in different places."""
    import importlib
    import pkgutil

    import pytest_kari_debug
    from pytest_kari_debug import alerting, channels, config, logger, model, rules
    from pytest_kari_debug.cli import records as cli_records
    from pytest_kari_debug.metrics import MetricsCollector

    assert rules.AlertSeverity is model.AlertSeverity is alerting.AlertSeverity
    assert channels.AlertSeverity is model.AlertSeverity
    assert {name.upper(): n for name, n in model.LOG_LEVELS.items()} == logger.LEVELS
    assert tuple(logger.LEVELS) == model.LOG_LEVEL_NAMES
    assert logger.level_number("warn") == logger.level_number("WARNING") == 30
    with pytest.raises(ConfigurationError, match="DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        config.DebugConfiguration(log_level="TRACE")
    assert cli_records.ALERT_SEVERITIES is model.ALERT_SEVERITIES
    collector = MetricsCollector("ops")
    for spelling in (*model.OPERATORS, *model.OPERATOR_ALIASES):
        collector.set_threshold("m", spelling, 1.0)
    with pytest.raises(ConfigurationError, match="accepted: >, >=, <, <=, ==, !=, gt, ge"):
        collector.set_threshold("m", "~", 1.0)
    for info in pkgutil.walk_packages(pytest_kari_debug.__path__, "pytest_kari_debug."):
        if info.name.startswith(("pytest_kari_debug.plugin", "pytest_kari_debug.api")):
            continue  # pytest / the API's optional dependencies; neither defines vocabulary
        module = importlib.import_module(info.name)
        assert "SEVERITIES" not in vars(module), info.name


def test_units_convert_to_base_units() -> None:
    """A MiB figure is bytes underneath; the others are their own base."""
    assert (Unit.MIB.base, Unit.MIB.factor) == (Unit.BYTES, 1024.0 * 1024.0)
    assert (Unit.MS.base, Unit.MS.factor) == (Unit.MS, 1.0)


def test_records_are_frozen() -> None:
    """A TestRecord cannot be changed after it is read."""
    record = TestRecord.from_dict(V1_RECORD)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.outcome = "failed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.phases["call"] = 0.0  # type: ignore[index]


def test_version_1_record_is_migrated() -> None:
    """A version-1 record reads: duration_ms becomes setup + call, its own-work figures unknown."""
    record = TestRecord.from_dict(V1_RECORD)
    assert record.version == 1
    assert record.duration_ms == 63.0
    assert record.cpu_ms is None
    assert record.kari_overhead_ms is None
    logging = record.component("logs")
    assert logging is not None
    assert (len(logging.records), logging.dropped, logging.count) == (1, 2, 3)
    metrics = record.detail(Kind.METRICS, "resources")
    assert metrics is not None
    assert metrics["cpu_ms"] == 247.0


def test_round_trip_keeps_everything() -> None:
    """to_dict(from_dict(d)) keeps unknown components and keys, and writes the new version."""
    again = TestRecord.from_dict(V1_RECORD).to_dict()
    assert again["record_version"] == SCHEMA_VERSION
    assert again["collected_data"]["custom_component"] == {"anything": [1, 2]}
    assert again["a_key_from_the_future"] == {"kept": True}
    assert again["extra"] == V1_RECORD["extra"]
    assert TestRecord.from_dict(again) == dataclasses.replace(
        TestRecord.from_dict(V1_RECORD), version=SCHEMA_VERSION
    )


def test_component_data_round_trip() -> None:
    """A component's records, drop count and details survive a round trip."""
    data = {"records": [{"a": 1}], "dropped": 3, "resources": {"cpu_ms": 1.0}}
    component = ComponentData.from_dict(Kind.METRICS, data)
    assert component.to_dict() == data


def test_schema_names_every_field_of_the_model() -> None:
    """The schema's test properties are exactly the fields a TestRecord writes."""
    full = {
        **V1_RECORD,
        "crashed": True,
        "failure": {"phase": "call", "message": "boom"},
        "captured": [{"phase": "call", "stream": "stdout", "text": "hi"}],
    }
    written = set(TestRecord.from_dict(full).to_dict())
    written -= set(V1_RECORD) - set(TEST_SCHEMA["properties"])  # the unknown key kept as is
    assert written == set(TEST_SCHEMA["properties"])
    assert tuple(TEST_SCHEMA["properties"]["outcome"]["enum"]) == OUTCOMES
    assert tuple(TEST_SCHEMA["properties"]["phases"]["properties"]) == PHASES
    assert SCHEMA_VERSION in SCHEMA["properties"]["version"]["enum"]
    assert SCHEMA_VERSION in TEST_SCHEMA["properties"]["record_version"]["enum"]
    assert set(TEST_SCHEMA["required"]) <= written


def test_model_documents_validate_against_the_schema() -> None:
    """A run written from the model validates against schemas/run.schema.json."""
    run = {
        "uuid": "u", "started_at": 1.0, "finished_at": 2.0, "exit_status": 0, "args": [],
        "host": "h", "python_version": "3", "pytest_version": "8", "plugin_version": "0",
    }  # fmt: skip
    record = TestRecord.from_dict(V1_RECORD).to_dict()
    document = build_run_document(run, [record])
    jsonschema.validate(document, SCHEMA)
    read = RunRecord.from_dict(document)
    assert read.version == SCHEMA_VERSION
    assert read.tests[0].nodeid == "t.py::test_a"
    assert read.to_dict()["tests"] == [record]


def test_version_1_run_document_still_reads(tmp_path: Path) -> None:
    """A run document of version 1 reads, its tests migrated."""
    document = {
        "format": "pytest-kari-debug/run", "version": 1, "run": {"uuid": "u"}, "summary": {},
        "tests": [V1_RECORD], "diagnostics": ["d"], "sections": {},
    }  # fmt: skip
    run = RunRecord.from_dict(document)
    assert (run.version, run.diagnostics, run.tests[0].duration_ms) == (1, ("d",), 63.0)
    assert run.kari_overhead_ms is None


def test_newer_or_foreign_documents_are_refused() -> None:
    """A document of a newer version or another format is a clear error."""
    with pytest.raises(ConfigurationError, match="newer than this pytest-kari-debug reads"):
        RunRecord.from_dict({"format": "pytest-kari-debug/run", "version": 99, "tests": []})
    with pytest.raises(ConfigurationError, match="not a run document"):
        RunRecord.from_dict({"format": "something/else", "tests": []})


def test_model_is_at_the_bottom_of_the_layers() -> None:
    """An import-linter contract places model alone in the lowest layer above the exceptions
    (config and the other small modules read the vocabulary from it)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    # The exceptions' layer (with text, since b51335a); below it only selfcost (since 2d48c07:
    # lazy imports it), which imports nothing of the package.
    bottom = next(i for i, layer in enumerate(layers) if "exceptions" in layer.split(" : "))
    assert layers[bottom + 1 :] == ["selfcost"]
    assert layers[bottom - 1] == "(model)"
    assert "config" in layers[bottom - 2].split(" : ")
    assert layers.index("(figures)") < bottom - 2
    forbidden = next(c for c in contracts if c["name"] == "pytest stays in the plugin layer")
    assert "pytest_kari_debug.model" in forbidden["source_modules"]
