"""One grouping of errors: ``group_errors`` sums occurrences in one order for every surface."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from pytest_kari_debug import views
from pytest_kari_debug.errors.grouping import (
    GROUP_NODEIDS,
    Occurrence,
    group_errors,
    occurrences_of_test,
)
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.storage import Store


def test_group_errors_sums_counts_tests_and_times_of_occurrences() -> None:
    """Counts add up, a test counts once per group, times widen, the newest error speaks."""
    found = group_errors(
        [
            Occurrence("e", "f1", {"error_message": "old", "ts": 1.0}, 2, 1.0, 1.0, "t1", 0),
            Occurrence("e", "f1", {"error_message": "counter only"}, 3, None, 5.0, "t1", 0),
            Occurrence("e", "f1", {"error_message": "new", "ts": 4.0}, 1, 0.5, 4.0, "t2", 1),
            Occurrence("e", "f2", {"error_message": "x", "ts": 9.0}, 6, 9.0, 9.0, tests=4),
            Occurrence("other", "f1", {"error_message": "y", "ts": 2.0}, 6, 2.0, 2.0, tests=1),
        ]
    )
    # One order: most errors, then the most recently seen, then the fingerprint.
    assert [(g.extension_id, g.fingerprint) for g in found] == [
        ("e", "f2"),
        ("e", "f1"),
        ("other", "f1"),
    ]
    f1 = found[1]
    assert (f1.count, f1.tests, f1.first_seen, f1.last_seen) == (6, 2, 0.5, 5.0)
    assert (f1.nodeids, f1.test_keys) == (["t1", "t2"], [0, 1])
    assert f1.newest["error_message"] == "counter only"  # its last time is the newest
    assert f1.sample is not None
    assert f1.sample["error_message"] == "new"
    assert found[0].tests == 4  # a place that counted its tests itself


def test_group_errors_keeps_a_bounded_list_of_node_ids() -> None:
    """A group of many tests counts them all and lists the first GROUP_NODEIDS."""
    many = [
        Occurrence("e", "f", {"ts": float(i)}, 1, float(i), float(i), f"t{i}", i)
        for i in range(GROUP_NODEIDS + 5)
    ]
    [group] = group_errors(many)
    assert group.tests == GROUP_NODEIDS + 5
    assert group.nodeids == [f"t{i}" for i in range(GROUP_NODEIDS)]


def _tests_with_errors(manager: ExtensionDebugManager) -> list[dict[str, Any]]:
    """Three test records whose sessions recorded errors of three groups."""
    tracker = manager.get_error_tracker()
    plan = {
        "t.py::test_a": [("KeyError", "item 1 missing"), ("ValueError", "bad input")],
        "t.py::test_b": [("KeyError", "item 2 missing"), ("KeyError", "item 3 missing")],
        "t.py::test_c": [("TimeoutError", "slow"), ("ValueError", "bad input")],
    }
    tests = []
    for nodeid, errors in plan.items():
        session_id = manager.start_debug_session(name=nodeid)
        for error_type, message in errors:
            tracker.record_error(error_type, message, nodeid=nodeid)
        session = manager.stop_debug_session(session_id)
        tests.append(
            {
                "nodeid": nodeid,
                "extension_id": manager.extension_id,
                "outcome": "failed",
                "session_id": session_id,
                "collected_data": session.collected_data,
            }
        )
    return tests


def test_every_surface_groups_the_same_errors_the_same_way(tmp_path: Path) -> None:
    """The run's section, the report's groups, the store's and the live tracker's agree."""
    manager = ExtensionDebugManager("ext", "Ext")
    tests = _tests_with_errors(manager)
    key = ("fingerprint", "count", "tests", "message")
    run = [tuple(g[k] for k in key) for g in views.run_error_groups(tests)]
    report = [
        tuple(g[k] for k in key) for g in views.error_groups_of_tests(tests, views.ErrorStates())
    ]
    live = [tuple(g[k] for k in key) for g in views.live_error_groups(manager.error_tracker)]
    with contextlib.closing(Store(tmp_path / "kari.db")) as store:
        run_id = store.begin_run({"uuid": "u", "started_at": 0.0})
        store.write_tests(run_id, tests)
        stored = [tuple(g[k] for k in key) for g in views.store_error_groups(store)]
    assert run == report == live == stored
    assert [(count, n) for _, count, n, _ in run] == [(3, 2), (2, 2), (1, 1)]
    assert run[0][3] == "item 3 missing"  # the newest error's words, everywhere
    [section_key] = {g["fingerprint"] for g in views.run_error_groups(tests)[:1]}
    assert [o.fingerprint for o in occurrences_of_test(tests[1])] == [section_key]
