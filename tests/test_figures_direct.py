"""The direct reader of the run digest's figures gives what the generic reader gives."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest

from pytest_kari_debug.figures import MIB, DirectFigures, RecordFigures, direct_figures, measure
from pytest_kari_debug.model import Kind, RecordView, TestRecord
from pytest_kari_debug.summaries import RunDigest, run_sections

#: Odd numbers a record in memory may hold (a hook of the user's writes anything).
NUMBERS: tuple[Any, ...] = (
    1.5, 0, -0.0, 7, -3.0, 2**60, 10**400, math.nan, math.inf, -math.inf, True, False, None,
    "3", [1.0], 1e-310,
)  # fmt: skip
MISSING = object()  # the key is absent


def _pick(rng: random.Random, values: tuple[Any, ...]) -> Any:
    return values[rng.randrange(len(values))]


def _numbers(rng: random.Random, *keys: str) -> dict[str, Any]:
    found = {}
    for key in keys:
        value = _pick(rng, (*NUMBERS, MISSING))
        if value is not MISSING:
            found[key] = value
    return found


def _mapping(rng: random.Random, value: dict[str, Any]) -> Any:
    """*value*, or it as another mapping, empty, or not a mapping at all."""
    return _pick(rng, (value, value, MappingProxyType(value), {}, None, [value], "text"))


def _metrics(rng: random.Random) -> Any:
    entry: dict[str, Any] = {"records": [], "dropped": 0}
    if rng.random() < 0.8:
        resources = _numbers(rng, "cpu_ms", "peak_rss_bytes", "rss_start_bytes", "rss_end_bytes")
        entry["resources"] = _mapping(rng, resources)
    if rng.random() < 0.4:
        entry["memory"] = _mapping(rng, _numbers(rng, "allocated_bytes", "peak_bytes"))
    if rng.random() < 0.1:
        entry["records"] = [{"name": "queue", "value": 1.0, "ts": 1.0, "unit": "items"}]
    return _mapping(rng, entry)


def _profiling(rng: random.Random) -> Any:
    memory = _numbers(rng, "peak_increase_bytes", "net_allocated_bytes")
    entry = {"records": [], "dropped": 0, "memory": _mapping(rng, memory)}
    if rng.random() < 0.3:
        entry["profile"] = {"overhead": {"percent": 1.0, "limit_percent": 5.0}}
    return _mapping(rng, entry)


def _errors(rng: random.Random) -> Any:
    count = rng.randrange(3)
    entry = {
        "records": [{"error_type": "ValueError", "message": f"bad {i}"} for i in range(count)],
        "dropped": _pick(rng, (0, 0, 2, -1, "x", math.nan)),
    }
    return _mapping(rng, entry)


def records(count: int, seed: int = 18) -> Iterator[dict[str, Any]]:
    """Test records of every shape: each outcome, failures, budgets and alerts, profiles,
    errors, records of version 1 and 2, odd values where numbers go, parts that are no
    mappings or absent."""
    rng = random.Random(seed)
    for index in range(count):
        record: dict[str, Any] = {
            "nodeid": f"t.py::test_{index}",
            "extension_id": _pick(rng, ("ext", "other", "", None)),
            "outcome": _pick(rng, ("passed", "failed", "skipped", "xfailed", "xpassed", "error")),
        }
        version = _pick(rng, (2, 2, 2, 1, "2", 2.0, None, MISSING, 3))
        if version is not MISSING:
            record["record_version"] = version
        record.update(_numbers(rng, "cpu_ms", "kari_overhead_ms"))
        if rng.random() < 0.95:
            record["phases"] = _mapping(rng, _numbers(rng, "setup", "call", "teardown"))
        collected: dict[Any, Any] = {}
        for name, make, share in (
            ("metrics", _metrics, 0.9), ("profiling", _profiling, 0.3),
            ("error_tracking", _errors, 0.6), ("logging", lambda r: {"records": []}, 0.8),
        ):  # fmt: skip
            if rng.random() < share:
                collected[name] = make(rng)
        record["collected_data"] = _mapping(rng, collected)
        extra: dict[str, Any] = {}
        if rng.random() < 0.2:
            extra["alerts"] = {"fired": [{"name": "cpu_ms > 0", "value": 1.0}]}
        if rng.random() < 0.1:
            extra["budgets"] = {"broken": [{"figure": "duration_ms", "limit": 1.0}]}
        if rng.random() < 0.1:
            record["longrepr"] = "AssertionError: no"
            record["failure"] = {"type": "AssertionError", "message": "no"}
        record["extra"] = extra
        yield record


def _generic(record: Any, name: str) -> Any:
    measured = measure(name, record)
    return measured.base if measured.missing is None else None


def _same(found: Any, expected: Any) -> bool:
    return type(found) is type(expected) and (found == expected or found is expected)


def test_the_direct_reader_gives_the_generic_readers_figures() -> None:
    """For each figure it reads itself, over records of every shape: the value (and its
    type) the generic reader gives, of the record's dict and of its view."""
    names = direct_figures()
    assert set(names) == {"cpu_ms", "peak_rss_mb", "allocated_mb", "call_ms"}
    measured = dict.fromkeys(names, 0)
    for record in records(4000):
        view = RecordView(record)
        direct, generic = DirectFigures(view), RecordFigures(view)
        for name in names:
            found = direct.base(name)
            expected = generic.base(name)
            assert _same(found, expected), (name, record, found, expected)
            assert _same(found, _generic(record, name)), (name, record)
            measured[name] += found is not None
    assert all(count > 50 for count in measured.values()), measured  # shapes that measure


def test_the_direct_reader_asks_the_generic_one_for_every_other_figure() -> None:
    record = next(records(1))
    record["collected_data"] = {"error_tracking": {"records": [{"error_type": "E"}], "dropped": 2}}
    assert DirectFigures(RecordView(record)).base("errors") == 3.0
    assert DirectFigures(RecordView(record)).base("spans") is None


def test_the_memory_profiles_peak_stands_in_for_tracemalloc() -> None:
    record = {
        "record_version": 2,
        "collected_data": {
            "profiling": {"memory": {"peak_increase_bytes": 4 * MIB, "net_allocated_bytes": -1}}
        },
    }
    assert DirectFigures(RecordView(record)).base("allocated_mb") == 0.0


def test_a_views_kept_records_and_drops_are_those_it_reads_one_by_one() -> None:
    """``RecordView.kept`` (the digest's one call for both) is ``(records, dropped)``, None
    exactly when the component was off, for records of every shape."""
    for record in records(1500, seed=3):
        view = RecordView(record)
        for kind in Kind:
            expected = (view.records(kind), view.dropped(kind)) if view.has(kind) else None
            assert view.kept(kind) == expected, (kind, record)
            component = TestRecord.from_dict(record).component(kind)
            assert expected == (
                None if component is None else (component.records, component.dropped)
            )


def test_an_integer_past_a_floats_range_is_no_figure() -> None:
    """A number no float holds (a user's hook can put one in a record) is read as missing,
    by both readers and by the typed record (which raised OverflowError before)."""
    record = {"record_version": 2, "cpu_ms": 10**400, "phases": {"call": 10**400},
              "collected_data": {"metrics": {"resources": {"cpu_ms": 2.0}}}}  # fmt: skip
    assert TestRecord.from_dict(record).cpu_ms is None
    for name, expected in (("cpu_ms", 2.0), ("call_ms", None)):
        assert DirectFigures(RecordView(record)).base(name) == expected
        assert _generic(record, name) == expected


@pytest.mark.parametrize("slow_span_ms", [None, 10.0])
def test_the_digest_builds_the_sections_of_the_generic_path(slow_span_ms: float | None) -> None:
    """The run's digest (direct figures, each record read as it is added) and one pass over
    the same records through the generic figures give the same sections."""
    tests = list(records(1500, seed=9))
    digest = RunDigest(slow_span_ms)
    for test in tests:
        digest.add(test)
    built = digest.sections()
    assert built == run_sections(tests, slow_span_ms)
    assert built.failed == ()
    for top in ("top_cpu_ms", "top_peak_rss_bytes", "top_allocated_bytes"):
        assert built.metrics[top], top  # the shapes measure each figure in some tests
    assert built.profiling is not None
    assert built.profiling["slowest_tests"]
    assert built.affected_tests > 0
