"""Everything above the components reads a test's data through the model (issue 16, item 1).

The stored layout of a test (``collected_data`` per component, ``phases``) is read in one place,
:mod:`pytest_kari_debug.model` (``TestRecord`` and the ``*_of`` accessors); the report, the
exporters, the views and the sources ask it. An AST scan keeps it that way.
"""

from __future__ import annotations

import ast
import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import pytest_kari_debug
from pytest_kari_debug.exporters.json_export import run_summary
from pytest_kari_debug.exporters.prometheus import render
from pytest_kari_debug.model import (
    Kind,
    RecordView,
    TestRecord,
    component_of,
    component_parts,
    dropped_of,
    kept_and_dropped,
    phases_of,
    records_of,
)
from pytest_kari_debug.report.data import build_report_model
from pytest_kari_debug.report.sample import sample_run

PACKAGE = Path(pytest_kari_debug.__file__).parent
#: The keys of the stored layout of a test that only its owners read by name.
LAYOUT_KEYS = frozenset({"collected_data", "phases"})
#: Modules (or ``module:function``) that read those keys, and why they may.
OWNERS = {
    "model.py": "the typed model: the one reader of the stored layout",
    "figures/measure.py": "the figures catalogue (its table of sources is keyed by loader name)",
    "storage/codec.py": "the store splits a test into its record tables",
    "storage/runs.py": "the store indexes a test's phases when it writes it",
    # The record's own hooks complete the dict they are building (they change its records).
    "plugin/alerts.py:amend": "adds delivery outcomes to the alert records being written",
    "plugin/errors.py:_tag_error_records": "tags the error records with the test",
    "plugin/tracing.py:pytest_kari_debug_test_record": "puts the outcome on the root span",
}


def layout_reads(source: str) -> list[tuple[int, str, str]]:
    """``(line, enclosing function, key)`` of each read of a layout key by name:
    ``x["collected_data"]`` or ``x.get("phases")`` (``pop`` and ``setdefault`` too)."""
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "pop", "setdefault")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            key = node.args[0].value
        if key in LAYOUT_KEYS:
            found.append((getattr(node, "lineno", 0), function, str(key)))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "")
    return found


def test_the_scan_finds_every_way_of_digging() -> None:
    """The scan sees subscripts and .get/.pop/.setdefault by name, and names the function."""
    source = (
        "def a(t):\n    return t['collected_data']\n"
        "def b(t):\n    return (t.get('phases') or {}).get('call')\n"
        "def c(t):\n    t.setdefault('collected_data', {})\n"
        "def d(t):\n    return {'phases': 1, 'x': t.collected}\n"
    )
    assert layout_reads(source) == [
        (2, "a", "collected_data"), (4, "b", "phases"), (6, "c", "collected_data"),
    ]  # fmt: skip


def test_only_the_owners_read_the_stored_layout_of_a_test() -> None:
    """No module above the model digs a test's ``collected_data`` or ``phases`` by hand."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        for line, function, key in layout_reads(path.read_text(encoding="utf-8")):
            if module not in OWNERS and f"{module}:{function}" not in OWNERS:
                found.append(f"{module}:{line} ({function or 'module'}) reads {key!r}")
    assert found == [], "read a test through pytest_kari_debug.model (TestRecord, records_of...)"


#: A stored test with every oddity the accessors must take: a component of a newer plugin,
#: drops, a record that is no mapping, a missing phase, a phase that is no number.
ODD_TEST = {
    "nodeid": "t.py::test_odd",
    "extension_id": "ext",
    "outcome": "passed",
    "record_version": 2,
    "phases": {"setup": 1.5, "call": "slow", "teardown": 0.5},
    "collected_data": {
        "logging": {"records": [{"level": "ERROR", "message": "x"}, "junk"], "dropped": 4},
        "metrics": {"records": [], "resources": {"cpu_ms": 2.0}},
        "future_component": {"records": [{"a": 1}], "dropped": 2},
        "not_a_component": [1, 2],
    },
}


@pytest.mark.parametrize("typed", [False, True], ids=["dict", "TestRecord"])
def test_accessors_read_a_stored_dict_and_a_typed_record_alike(typed: bool) -> None:
    """records_of, phases_of, component_of, kept_and_dropped and dropped_of give the same for
    both forms."""
    test = TestRecord.from_dict(ODD_TEST) if typed else copy.deepcopy(ODD_TEST)
    assert records_of(test, "logs") == ({"level": "ERROR", "message": "x"},)
    assert records_of(test, Kind.TRACING) == ()
    assert dict(phases_of(test)) == {"setup": 1.5, "teardown": 0.5}
    metrics = component_of(test, "metric")
    assert metrics is not None
    assert (metrics.records, dict(metrics.details)) == ((), {"resources": {"cpu_ms": 2.0}})
    assert component_of(test, Kind.PROFILING) is None
    assert kept_and_dropped(test, "logs") == (({"level": "ERROR", "message": "x"},), 4)
    assert kept_and_dropped(test, Kind.METRICS) == ((), 0)
    assert kept_and_dropped(test, Kind.PROFILING) is None
    assert dropped_of(test) == {"logging": 4, "metrics": 0, "future_component": 2}
    with pytest.raises(Exception, match="unknown record kind"):
        records_of(test, "nonsense")


@pytest.mark.parametrize(
    "data",
    [
        ODD_TEST,
        {},
        {"record_version": "2", "cpu_ms": float("nan"), "kari_overhead_ms": True, "extra": [1]},
        {
            "record_version": 1,
            "cpu_ms": 3.0,
            "extension_id": "",
            "outcome": None,
            "nodeid": 7,
            "collected_data": {
                "error_tracking": {
                    "records": ({"error_type": "E"},),
                    "dropped": -2,
                    "groups": ({"fingerprint": "f"},),
                },
                "metrics": {"resources": {}, "memory": {"peak_bytes": 3}},
                "profiling": "no mapping",
                3: {"records": []},
            },
        },
    ],
    ids=["odd", "empty", "odd-numbers", "odd-components"],
)
def test_a_record_view_reads_what_a_typed_record_holds(data: dict[str, Any]) -> None:
    """RecordView, which reads each part of a stored dict only when asked, gives what
    TestRecord.from_dict gives, part by part."""
    view, typed = RecordView(data), TestRecord.from_dict(data)
    for name in ("nodeid", "extension_id", "outcome", "version", "phases", "extra"):
        assert getattr(view, name) == getattr(typed, name), name
    for name in ("cpu_ms", "kari_overhead_ms"):
        assert repr(getattr(view, name)) == repr(getattr(typed, name)), name  # NaN is NaN
    assert view.collected == typed.collected
    assert view.other_data == typed.other_data
    for kind in Kind:
        component = typed.component(kind)
        assert view.component(kind) == component
        assert view.has(kind) is (component is not None)
        assert view.records(kind) == (component.records if component else ())
        assert view.dropped(kind) == (component.dropped if component else 0)
        for key in ("resources", "memory", "groups", "records", "dropped"):
            assert view.detail(kind, key) == typed.detail(kind, key), (kind, key)
            expected = component.details.get(key) if component else None
            assert view.value(kind, key) == expected, (kind, key)


def test_component_parts_split_an_unknown_component_as_a_known_one() -> None:
    """A newer plugin's component splits into records, drops and details."""
    records, dropped, details = component_parts({"records": [{"a": 1}, 3], "dropped": 2, "x": 1})
    assert (records, dropped, dict(details)) == (({"a": 1},), 2, {"x": 1})


def test_report_summary_and_prometheus_count_the_same_drops() -> None:
    """The report's dropped rows, the JSON summary and the Prometheus export agree on the
    records each component dropped, a newer plugin's component included."""
    run, tests = sample_run(30, seed=5)
    tests[0]["collected_data"]["logging"]["dropped"] = 7
    tests[3]["collected_data"]["future_component"] = {"records": [{"a": 1}], "dropped": 5}
    tests[4]["collected_data"]["tracing"]["dropped"] = 2
    expected: Counter[str] = Counter()
    for test in tests:
        expected.update(dropped_of(TestRecord.from_dict(test)))
    expected = Counter({k: n for k, n in expected.items() if n})
    assert expected == {"logging": 7, "future_component": 5, "tracing": 2}

    report = build_report_model(run, tests)
    assert dict(report.dropped) == dict(expected)
    summary = run_summary(tests)
    assert {k: n for k, n in summary["dropped"].items() if n} == dict(expected)
    exported: Counter[str] = Counter()
    for family in text_string_to_metric_families(render(tests).decode()):
        if family.name == "kari_test_records_dropped":
            for sample in family.samples:
                exported[sample.labels["component"]] += int(sample.value)
    assert exported == expected
