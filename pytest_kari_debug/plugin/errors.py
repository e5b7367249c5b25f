"""Error tracking in the plugin: failing tests' exceptions, groups across the run and runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from ..context import current_session
from ..errors import trend_direction
from ..exceptions import KariDebugAssertion
from ..journal import RunRecords
from ..summaries import RunSections, errors_lines, errors_section
from ..views import run_error_groups
from .core import iter_records
from .sharing import run_uuid
from .state import (
    STATE,
    HookObject,
    KariState,
    add_test_steps,
    guard,
    register_when_sessions,
)

#: Test ids kept per group in the section.
#: Runs of the store the per-run trend looks back over.
TREND_RUNS = 10

ERRORS_CSV_COLUMNS = (
    "run_id", "ts", "nodeid", "extension_id", "session_id", "fingerprint", "group_id",
    "group_status", "error_type", "error_message", "category", "level", "source", "culprit",
    "suggestion", "stack_trace",
)  # fmt: skip

# Exceptions that are pytest's control flow or the user stopping the run, not errors.
_NOT_ERRORS: tuple[type[BaseException], ...] = (
    pytest.skip.Exception,
    pytest.exit.Exception,
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
)


def _record_failure(item: pytest.Item, exc: BaseException, phase: str) -> None:
    """Record the exception that failed *item* in its open debug session."""
    if isinstance(exc, (*_NOT_ERRORS, pytest.xfail.Exception, KariDebugAssertion)):
        return  # a failed verdict is an alert of the user's rule, not an error group
    session = current_session()
    if session is None or session.name != item.nodeid:
        return  # the test does not run in a debug session of ours
    state = item.config.stash[STATE]
    manager = state.managers.get(session.extension_id)
    if manager is None:
        return
    manager.get_error_tracker().record_exception(
        exc, {"phase": phase}, nodeid=item.nodeid, source="test"
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Record failing tests' exceptions in runs where some test has a debug session."""
    register_when_sessions(session.config, "kari-debug-failures", FailureHooks)
    add_test_steps(
        session.config,
        "kari-debug-failures",
        teardown_failed=_teardown_failed,
        recording=_tag_error_records,
    )


class FailureHooks(HookObject):
    """The per-test hook that records a failing phase's exception."""

    def pytest_exception_interact(
        self, node: pytest.Item | pytest.Collector, call: pytest.CallInfo[Any], report: Any
    ) -> None:
        """Record the exception of a failing setup or call phase, with the test's node id.

        pytest calls this hook for a phase that failed with an exception (not a skip, not an
        expected failure), while the test's session is still open; a passing test costs nothing.
        """
        if call.when not in ("setup", "call") or call.excinfo is None:
            return
        if isinstance(node, pytest.Item) and report.failed:
            with guard(node.config, "recording the failing test's exception"):
                _record_failure(node, call.excinfo.value, call.when)


def _teardown_failed(item: pytest.Item, exc: BaseException) -> None:
    """Record an exception of the teardown phase while the test's session is still open."""
    with guard(item.config, "recording the teardown's exception"):
        _record_failure(item, exc, "teardown")


def _tag_error_records(item: pytest.Item, record: dict[str, Any]) -> None:
    """Tag every error record of the test with its node id."""
    data = (record.get("collected_data") or {}).get("error_tracking")
    if isinstance(data, dict):
        for error in data.get("records") or ():
            if isinstance(error, dict) and not error.get("nodeid"):
                error["nodeid"] = record.get("nodeid")


# End of run -----------------------------------------------------------------------------
def pytest_kari_debug_run_finished(
    config: pytest.Config, tests: RunRecords, sections: dict[str, Any], built: RunSections
) -> None:
    """Group the run's errors, sync them with the store, write errors.csv, note the summary."""
    with guard(config, "grouping the run's errors"):
        _finish(config, tests, sections, built)


def _finish(
    config: pytest.Config,
    tests: Iterable[dict[str, Any]],
    sections: dict[str, Any],
    built: RunSections,
) -> None:
    state = config.stash[STATE]
    run = state.run  # the run's metadata, as the hook's ``run`` argument
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    trend: list[dict[str, Any]] = []
    store = state.store
    run_id = state.run_id
    if store is not None and run_id is not None and _store_may_hold_errors(config, state, built):
        with guard(config, "syncing error groups with the store"):
            # Counted from every test the store holds for the run: other shards' (live or
            # imported) included, whatever their order, none twice.
            synced = store.resync_run_errors(run_id, run_error_groups)
            stored = {(g["extension_id"], g["fingerprint"]): g for g in synced}
        with guard(config, "reading the error trend from the store"):
            trend = store.error_trend(runs=TREND_RUNS, until_run=run_id)
    # Built as the tests were kept (or, if that failed, in one pass over the journal), apart
    # from the store's recount: a journal that cannot be read (deleted under the run) costs
    # at most this run's summary, never the stored counts.
    groups = built.error_groups
    for group in groups:
        known = stored.get((group["extension_id"], group["fingerprint"]))
        group.update(_stored_state(known))
    direction = trend_direction([float(run["count"]) for run in trend])
    section = errors_section(
        groups, trend, direction, built.affected_tests, has_store=store is not None
    )
    sections["errors"] = section
    if state.settings.csv_dir is not None:
        with guard(config, "writing errors.csv"):
            _write_csv(state, run, tests, stored)
    state.summary_lines.extend(errors_lines(section))


def _store_may_hold_errors(config: pytest.Config, state: KariState, built: RunSections) -> bool:
    """Whether the store's recount of the run could find an error group: not when no test of
    a run of its own had one, its sections were built and the store holds every test (then it
    holds exactly these)."""
    if built.error_groups or run_uuid(config) is not None:
        return True  # a shared run: other shards' tests count too
    return bool(state.store_problem or state.unstored or state.lost or state.sections_failed)


def _stored_state(known: dict[str, Any] | None) -> dict[str, Any]:
    if known is None:
        return {"group_id": None, "status": "unresolved", "new": None, "regressed": False}
    return {
        "group_id": known["id"],
        "status": known["status"],
        "new": bool(known["new"]),
        "regressed": bool(known["regressed_now"] or known["regressed"]),
        "regressed_now": bool(known["regressed_now"]),
        "first_seen_run": known["first_seen_run"],
        "first_seen_ts": known["first_seen_ts"],
        "runs_seen": known["runs_seen"],
        "total_count": known["count"],
        "resolved_at": known["resolved_at"],
        "notes": known["notes"],
    }


def _write_csv(
    state: KariState,
    run: dict[str, Any],
    tests: Iterable[dict[str, Any]],
    stored: dict[tuple[str, str], dict[str, Any]],
) -> None:
    csv_dir = state.settings.csv_dir
    if csv_dir is None:
        return
    from ..exporters.csv_export import write_csv  # only a run asked for CSV files

    rows = []
    for test, record in iter_records(tests, "error_tracking"):
        extension_id = str(test.get("extension_id") or "")
        known = stored.get((extension_id, str(record.get("fingerprint"))))
        rows.append(
            {
                **record,
                "run_id": run.get("id"),
                "extension_id": extension_id,
                "nodeid": record.get("nodeid") or test.get("nodeid"),
                "group_id": known["id"] if known else None,
                "group_status": known["status"] if known else None,
            }
        )
    rows.sort(key=lambda row: row.get("ts") or 0.0)
    try:
        path = write_csv(csv_dir / "errors.csv", rows, ERRORS_CSV_COLUMNS)
    except Exception as exc:
        state.output_failed(
            "errors csv", csv_dir / "errors.csv", f"{type(exc).__name__}: {exc}", shown=""
        )
        return
    state.outputs["errors csv"] = str(path)


__all__ = ["ERRORS_CSV_COLUMNS"]
