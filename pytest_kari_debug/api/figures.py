"""A test's figures for the API, read through the figures catalogue: a live manager's debug
session (running or kept after it stopped) or a test of a stored run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..dashboard import DashboardError, ExtensionDebugDashboard
from ..figures import SessionFigures, figure_rows
from ..model import SCHEMA_VERSION
from ..sources import StoreSource


def session_figures(
    dashboard: ExtensionDebugDashboard, session_id: str, names: Sequence[str] | None
) -> dict[str, Any]:
    """The figures of the live manager's session *session_id* (running or stopped)."""
    manager = dashboard.manager
    if manager is None:
        msg = (
            f"the figures of a debug session need the live manager of {dashboard.extension_id!r};"
            " a stored run's test has its figures at /runs/{run}/figures"
        )
        raise DashboardError(msg)
    running = next((i for i in manager.active_sessions() if i.session_id == session_id), None)
    if running is not None:
        rows = figure_rows(SessionFigures(manager, session_id), names)
        name, status = running.name, "running"
    else:
        session = manager.get_session(session_id)
        if session is None:
            msg = f"no debug session {session_id!r} of {dashboard.extension_id!r} is kept"
            raise LookupError(msg)
        record = {
            "record_version": SCHEMA_VERSION,
            "nodeid": session.name,
            "extension_id": session.extension_id,
            "outcome": session.status,
            "collected_data": session.collected_data,
        }
        rows = figure_rows(record, names)
        name, status = session.name, session.status
    return {
        "extension_id": dashboard.extension_id,
        "source": "live",
        "session_id": session_id,
        "name": name,
        "status": status,
        "figures": rows,
    }


def stored_figures(
    source: StoreSource, run: str, nodeid: str, names: Sequence[str] | None
) -> dict[str, Any]:
    """The figures of test *nodeid* in the stored run *run* (an id, a uuid or ``last``) of
    *source*'s extension (every extension's when it has none)."""
    found = source.find_run(run)
    if found is None:
        msg = f"no stored run {run!r} (a run id, its uuid, or last)"
        raise LookupError(msg)
    record = source.test(int(found["id"]), nodeid)
    if record is None:
        msg = f"the stored run {found['id']} has no test {nodeid!r}"
        raise LookupError(msg)
    return {
        "extension_id": record.get("extension_id"),
        "source": "store",
        "run_id": found["id"],
        "run_uuid": found.get("uuid"),
        "nodeid": nodeid,
        "name": nodeid,
        "status": record.get("outcome"),
        "figures": figure_rows(record, names),
    }
