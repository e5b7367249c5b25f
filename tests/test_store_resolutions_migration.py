"""An old store (schema 5, the release before one resolutions table) keeps every resolution."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from click.testing import CliRunner
from conftest import store_at_schema

from pytest_kari_debug import views
from pytest_kari_debug.cli import cli
from pytest_kari_debug.dashboard import ExtensionDebugDashboard
from pytest_kari_debug.storage import SCHEMA_VERSION, Store, dumps

#: The schema of the release before issue 22: migrations are only ever appended.
OLD_VERSION = 5

# What that release's Store wrote: `error_groups` rows with their own state (synced by the
# plugin, resolved with `errors resolve`) and `resolutions` rows (alerts, and error groups of
# records a live manager wrote, which `error_groups` does not hold).
_GROUP_SQL = (
    "INSERT INTO error_groups(extension_id, fingerprint, error_type, message, category,"
    " first_seen_run, first_seen_ts, last_seen_run, last_seen_ts, count, runs_seen, status,"
    " resolved_at, resolved_run, notes, regressed, regressed_at, regressed_run, regressions,"
    " data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_OLD_GROUPS = [
    # fingerprint, last_seen_ts, status, resolved_at, resolved_run, notes, regressed,
    # regressed_at, regressed_run, regressions
    ("f-resolved", 150.0, "resolved", 300.0, 2, "fixed in #42", 0, None, None, 0),
    ("f-regressed", 450.0, "unresolved", 300.0, 2, "cache fix", 1, 460.0, 3, 1),
    ("f-reopened", 150.0, "unresolved", None, None, "flaky upstream", 0, None, None, 0),
    ("f-open", 450.0, "unresolved", None, None, None, 0, None, None, 0),
    ("f-both", 150.0, "resolved", 320.0, 2, "in both tables", 0, None, None, 0),
]
_OLD_RESOLUTIONS = [
    ("alert", "ext", "alert-1", 310.0, "restarted"),
    ("error_group", "ext", "f-live", 330.0, "live group"),
    ("error_group", "ext", "f-both", 200.0, "older, in resolutions"),
]


def _old_store(location: str) -> None:
    """A store at schema 5 holding resolutions in both tables, as that release left them."""
    with store_at_schema(location, OLD_VERSION) as db:
        for run in (1, 2, 3):
            db.execute(
                "INSERT INTO runs(uuid, started_at, finished_at, exit_status) VALUES (?,?,?,?)",
                (f"run-{run}", run * 100.0, run * 100.0 + 50, 0),
            )
        for fingerprint, last_seen, *state in _OLD_GROUPS:
            db.execute(
                _GROUP_SQL,
                ("ext", fingerprint, "KeyError", "item missing", "programming", 1, 100.0,
                 3, last_seen, 4, 2, *state, dumps({"sample": None})),
            )  # fmt: skip
        db.execute(
            "INSERT INTO tests(run_id, nodeid, extension_id, outcome, data)"
            " VALUES (3, 't.py::test_live', 'ext', 'failed', '{}')"
        )
        for run, ts, fingerprint in ((3, 320.0, "f-live"), (3, 340.0, "f-live-later")):
            error = {"fingerprint": fingerprint, "error_type": "ValueError", "ts": ts,
                     "error_message": "bad", "category": "validation"}  # fmt: skip
            db.execute(
                "INSERT INTO records(run_id, test_id, kind, ts, extension_id, name, level,"
                " data) VALUES (?, 1, 'error', ?, 'ext', 'ValueError', 'error', ?)",
                (run, ts, dumps(error)),
            )
        for row in _OLD_RESOLUTIONS:
            db.execute(
                "INSERT INTO resolutions(kind, extension_id, key, resolved_at, notes)"
                " VALUES (?,?,?,?,?)",
                row,
            )


def test_old_store_opens_and_keeps_every_resolution(store_location: str) -> None:
    """Each status and note of both old tables is in the one resolutions table after opening."""
    _old_store(store_location)
    with contextlib.closing(Store(store_location, create=False)) as store:
        assert store.schema_version == SCHEMA_VERSION
        groups = store.resolutions("error_group")
        by_key = {key: (r["state"], r["resolved_at"], r["notes"]) for (_, key), r in groups.items()}
        assert by_key == {
            "f-resolved": ("resolved", 300.0, "fixed in #42"),
            "f-regressed": ("regressed", 300.0, "cache fix"),
            "f-reopened": ("open", None, "flaky upstream"),
            "f-both": ("resolved", 320.0, "in both tables"),  # error_groups' own state wins
            "f-live": ("resolved", 330.0, "live group"),
        }
        regressed = groups[("ext", "f-regressed")]
        assert (regressed["regressed_at"], regressed["regressed_run"]) == (460.0, 3)
        assert regressed["regressions"] == 1
        assert groups[("ext", "f-resolved")]["resolved_run"] == 2
        alert = store.resolutions("alert")[("ext", "alert-1")]
        assert (alert["state"], alert["resolved_at"], alert["notes"]) == (
            "resolved",
            310.0,
            "restarted",
        )
        # The store's groups read their status from the one table: as the old store showed it.
        shown = {g["fingerprint"]: (g["status"], g["regressed"]) for g in store.error_groups()}
        assert shown == {
            "f-resolved": ("resolved", False),
            "f-regressed": ("unresolved", True),
            "f-reopened": ("unresolved", False),
            "f-open": ("unresolved", False),
            "f-both": ("resolved", False),
        }
        assert store.get_error_group("f-regressed")["regressions"] == 1  # type: ignore[index]
        # Every surface agrees: the records' groups (dashboard, CLI) and the alert view.
        recorded = ExtensionDebugDashboard(store=store, extension_id="ext")
        statuses = {g["fingerprint"]: g["status"] for g in recorded.get_errors()["groups"]}
        assert statuses == {"f-live": "resolved", "f-live-later": "open"}
        [alert_view] = views.unique_alerts(
            [{"alert_id": "alert-1", "extension_id": "ext", "status": "active"}],
            store.resolutions("alert"),
        )
        assert (alert_view["status"], alert_view["resolution_notes"]) == ("resolved", "restarted")


def test_migrated_store_goes_on_resolving_and_regressing(store_location: str) -> None:
    """After the migration a resolved group regresses, reopens and resolves in one table."""
    _old_store(store_location)
    with contextlib.closing(Store(store_location)) as store:
        run4 = store.begin_run({"uuid": "run-4", "started_at": 400.0})
        group: dict[str, Any] = {
            "extension_id": "ext",
            "fingerprint": "f-resolved",
            "error_type": "KeyError",
            "count": 1,
            "last_ts": 401.0,
        }
        [synced] = store.sync_error_groups(run4, [group])
        assert (synced["regressed_now"], synced["status"], synced["regressed"]) == (
            True,
            "unresolved",
            True,
        )
        assert synced["notes"] == "fixed in #42"
        reopened = store.unresolve_error_group("f-resolved")
        assert (reopened["status"], reopened["regressed"], reopened["notes"]) == (
            "unresolved",
            False,
            "fixed in #42",
        )
        assert store.reopen("error_group", "ext", "f-resolved") is False  # already open
        resolved = store.resolve_error_group("f-resolved", now=500.0)
        assert (resolved["status"], resolved["resolved_at"], resolved["regressions"]) == (
            "resolved",
            500.0,
            1,
        )


def test_cli_reads_the_migrated_resolutions(store_location: str) -> None:
    """`errors patterns` shows a live group resolved in the old resolutions table as resolved."""
    _old_store(store_location)
    Store(store_location).close()
    result = CliRunner().invoke(
        cli,
        ["--store", store_location, "--extension-id", "ext", "--format", "json",
         "errors", "patterns"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    statuses = {g["group"]: g["status"] for g in json.loads(result.output)}
    assert statuses == {"f-live": "resolved", "f-live-later": "open"}
