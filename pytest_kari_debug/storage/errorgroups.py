"""Error groups across runs and the resolutions of groups and alerts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..exceptions import StoreError
from ..resolutions import ERROR_GROUP, OPEN, REGRESSED, RESOLVED, check_kind, status_of
from .base import StoreBase, where_clause
from .codec import dumps

#: Groups test records' errors (:func:`~pytest_kari_debug.views.run_error_groups`).
ErrorGrouper = Callable[[list[dict[str, Any]]], Iterable[Mapping[str, Any]]]


class ErrorGroupStore(StoreBase):
    """Error groups (counted per run, resolved, regressed) and resolutions."""

    def sync_error_groups(
        self,
        run_id: int,
        groups: Iterable[Mapping[str, Any]],
        *,
        now: float | None = None,
        accumulate: bool = False,
    ) -> list[dict[str, Any]]:
        """Merge the error groups of run *run_id* into the store; return their stored state.

        Each group is a mapping with ``extension_id``, ``fingerprint``, ``error_type``,
        ``count`` (errors in this run) and optionally ``message``, ``template``, ``category``,
        ``culprit``, ``tests`` (tests affected), ``first_ts``, ``last_ts`` and ``sample`` (a
        JSON-able example record). A new fingerprint is inserted as first seen in this run.
        A resolved group that occurred after its resolution is reopened and flagged as a
        regression of this run. Syncing the same run again replaces that run's counts, or
        with *accumulate* (the shards of one run, each syncing its own errors) adds to them.

        Returns one dict per group (the columns of :meth:`error_groups`) plus ``run_count``,
        ``new`` (first seen in this run) and ``regressed_now`` (regressed in this run).
        """
        stamp = time.time() if now is None else now
        result = []
        with self.transaction() as db:
            for group in groups:
                result.append(self._sync_group(db, run_id, group, stamp, accumulate))
        return result

    def resync_run_errors(
        self, run_id: int, error_groups: ErrorGrouper, *, now: float | None = None
    ) -> list[dict[str, Any]]:
        """Count run *run_id*'s error groups again from every test the store holds for it.

        What every writer of a run calls once its tests are in: a shard writing live, a
        ``kari-debug import`` of another shard's document, the import of a killed run's
        journal. The counts then always agree with the run's stored tests, whichever mix of
        them added tests, in whichever order (never counted twice, never left out).
        *error_groups* groups test records (:func:`~pytest_kari_debug.views.run_error_groups`).
        Returns what :meth:`sync_error_groups` returns.
        """
        stamp = time.time() if now is None else now
        with self.transaction() as db:
            return self._resync_run_errors(db, run_id, error_groups, stamp)

    def _resync_run_errors(
        self, db: Any, run_id: int, error_groups: ErrorGrouper, now: float
    ) -> list[dict[str, Any]]:
        # Write first: writers of one run recount it in turn, each seeing the others' tests.
        db.execute("UPDATE runs SET data = data WHERE id = ?", (run_id,))
        errors = self._backend.json_value("data", "collected_data", "error_tracking")
        rows = db.execute(
            f"SELECT nodeid, extension_id, {errors} FROM tests WHERE run_id = ? ORDER BY id",
            (run_id,),
        ).fetchall()
        tests = [
            {"nodeid": row[0], "extension_id": row[1],
             "collected_data": {"error_tracking": json.loads(row[2])}}
            for row in rows
            if row[2] not in (None, "null")
        ]  # fmt: skip
        return [self._sync_group(db, run_id, group, now, False) for group in error_groups(tests)]

    def _sync_group(
        self, db: Any, run_id: int, group: Mapping[str, Any], now: float, accumulate: bool
    ) -> dict[str, Any]:
        extension_id = str(group.get("extension_id") or "")
        fingerprint = str(group["fingerprint"])
        count = int(group.get("count", 0) or 0)
        tests = int(group.get("tests", 0) or 0)
        first_ts = group.get("first_ts")
        last_ts = group.get("last_ts")
        # Insert-if-absent first: writers sharing a server may meet the same group at once.
        db.execute(
            "INSERT INTO error_groups(extension_id, fingerprint, error_type, message, template,"
            " category, culprit, first_seen_run, first_seen_ts, last_seen_run, last_seen_ts,"
            " count, runs_seen, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,0,?)"
            " ON CONFLICT(extension_id, fingerprint) DO NOTHING",
            (
                extension_id, fingerprint, str(group.get("error_type") or "Error"),
                group.get("message"), group.get("template"), group.get("category"),
                group.get("culprit"), run_id, first_ts, run_id, last_ts,
                dumps({"sample": group.get("sample")}),
            ),
        )  # fmt: skip
        row = db.execute(
            "SELECT id FROM error_groups WHERE extension_id=? AND fingerprint=?",
            (extension_id, fingerprint),
        ).fetchone()
        group_id = int(row[0])
        # Writers syncing this group at once take turns from here (a row lock on PostgreSQL).
        db.execute("UPDATE error_groups SET count = count WHERE id = ?", (group_id,))
        occurred = float(last_ts) if isinstance(last_ts, (int, float)) else now
        regressed_now = self._note_regression(db, extension_id, fingerprint, occurred, run_id, now)
        previous = db.execute(
            "SELECT count, tests, first_ts, last_ts FROM error_group_runs"
            " WHERE group_id=? AND run_id=?",
            (group_id, run_id),
        ).fetchone()
        added = count - (int(previous[0]) if previous else 0)
        if accumulate and previous is not None:
            added = count
            count, tests = count + int(previous[0]), tests + int(previous[1] or 0)
            first_ts = min((t for t in (first_ts, previous[2]) if t is not None), default=None)
            last_ts = max((t for t in (last_ts, previous[3]) if t is not None), default=None)
        db.execute(
            "INSERT INTO error_group_runs(group_id, run_id, count, tests, first_ts,"
            " last_ts) VALUES (?,?,?,?,?,?) ON CONFLICT(group_id, run_id) DO UPDATE SET"
            " count = excluded.count, tests = excluded.tests, first_ts = excluded.first_ts,"
            " last_ts = excluded.last_ts",
            (group_id, run_id, count, tests, first_ts, last_ts),
        )
        db.execute(
            "UPDATE error_groups SET count=count+?, runs_seen=runs_seen+?,"
            f" last_seen_run={self._backend.greatest('COALESCE(last_seen_run, 0)', '?')},"
            " last_seen_ts="
            f"{self._backend.greatest('COALESCE(last_seen_ts, 0)', 'COALESCE(?, 0)')},"
            " message=COALESCE(?, message), category=COALESCE(?, category),"
            " culprit=COALESCE(?, culprit), data=COALESCE(?, data)"
            " WHERE id=?",
            (
                added,
                0 if previous else 1,
                run_id,
                last_ts,
                group.get("message"),
                group.get("category"),
                group.get("culprit"),
                None if group.get("sample") is None else dumps({"sample": group["sample"]}),
                group_id,
            ),
        )
        stored = db.execute(f"{_GROUP_SELECT} WHERE g.id=?", (group_id,)).fetchone()
        data = group_dict(dict(zip(_GROUP_SELECTED, stored, strict=True)))
        data.update(run_count=count, new=data["first_seen_run"] == run_id)
        data["regressed_now"] = regressed_now
        return data

    @staticmethod
    def _note_regression(
        db: Any, extension_id: str, key: str, occurred: float, run_id: int, now: float
    ) -> bool:
        """Mark the resolved group *key* regressed when it occurred after its resolution."""
        row = db.execute(
            "SELECT state, resolved_at FROM resolutions WHERE kind=? AND extension_id=? AND key=?",
            (ERROR_GROUP, extension_id, key),
        ).fetchone()
        if row is None or row[0] != RESOLVED or (row[1] is not None and occurred <= row[1]):
            return False
        db.execute(
            "UPDATE resolutions SET state=?, regressed_at=?, regressed_run=?,"
            " regressions=regressions+1 WHERE kind=? AND extension_id=? AND key=?",
            (REGRESSED, now, run_id, ERROR_GROUP, extension_id, key),
        )
        return True

    def error_groups(
        self,
        *,
        extension_id: str | None = None,
        status: str | None = None,
        regressed: bool | None = None,
        category: str | None = None,
        run_id: int | None = None,
        order: str = "count",
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Error groups matching the filters (``errors show --unresolved`` reads this).

        *status*: ``"resolved"`` or ``"unresolved"``; *run_id*: only groups that occurred in
        that run (with their ``run_count`` there); *order*: ``"count"`` (most errors first),
        ``"last_seen"`` (most recent first) or ``"first_seen"`` (newest groups first). Each
        dict: ``id``, ``extension_id``, ``fingerprint``, ``error_type``, ``message``,
        ``template``, ``category``, ``culprit``, ``first_seen_run``, ``first_seen_ts``,
        ``last_seen_run``, ``last_seen_ts``, ``count`` (all runs), ``runs_seen``, ``status``,
        ``resolved_at``, ``resolved_run``, ``notes``, ``regressed`` (bool), ``regressed_at``,
        ``regressed_run``, ``regressions``, ``sample`` (an example error record or None).
        """
        if status not in (None, "resolved", "unresolved"):
            msg = f"status must be 'resolved', 'unresolved' or None, got {status!r}"
            raise StoreError(msg)
        orders = {
            "count": "g.count DESC, g.last_seen_ts DESC",
            "last_seen": "g.last_seen_ts DESC",
            "first_seen": "g.first_seen_ts DESC",
        }
        if order not in orders:
            msg = f"order must be one of {sorted(orders)}, got {order!r}"
            raise StoreError(msg)
        sql = _GROUP_SELECT
        params: list[Any] = []
        if run_id is not None:
            sql = sql.replace(" FROM error_groups g", ", r.count AS run_count FROM error_groups g")
            sql += " JOIN error_group_runs r ON r.group_id = g.id AND r.run_id = ?"
            params.append(run_id)
        where, params = where_clause(
            params=params, alias="g.", extension_id=extension_id, equal={"category": category}
        )
        sql += f" WHERE {where} ORDER BY {orders[order]}, g.id"
        # The status is the resolution's rule (resolutions.status_of), applied once, here.
        filtered = status is not None or regressed is not None
        if limit is not None and not filtered:
            sql += " LIMIT ?"
            params.append(int(limit))
        groups = [group_dict(dict(row)) for row in self._query(sql, params)]
        if filtered:
            groups = [
                g
                for g in groups
                if (status is None or g["status"] == status)
                and (regressed is None or g["regressed"] == regressed)
            ]
        return groups if limit is None else groups[: int(limit)]

    def get_error_group(
        self, group: int | str, *, extension_id: str | None = None
    ) -> dict[str, Any] | None:
        """The group with id *group*, fingerprint *group* or a unique fingerprint prefix.

        A prefix needs at least 4 characters; an ambiguous prefix raises :class:`StoreError`
        naming the candidates. ``None`` when nothing matches.
        """
        text = str(group).strip()
        where, params = "", []
        if extension_id is not None:
            where, params = " AND g.extension_id = ?", [extension_id]
        if text.isdigit():
            rows = self._query(f"{_GROUP_SELECT} WHERE g.id = ?{where}", [int(text), *params])
            if rows:
                return group_dict(dict(rows[0]))
        rows = self._query(f"{_GROUP_SELECT} WHERE g.fingerprint = ?{where}", [text, *params])
        if not rows and len(text) >= 4:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._query(
                f"{_GROUP_SELECT} WHERE g.fingerprint LIKE ? ESCAPE '\\'{where}",
                [escaped + "%", *params],
            )
        if len(rows) > 1:
            found = ", ".join(
                f"{row['id']} ({row['extension_id']}:{row['fingerprint']})" for row in rows[:5]
            )
            msg = f"error group {text!r} is ambiguous: {found}; give the id or more characters"
            raise StoreError(msg)
        return group_dict(dict(rows[0])) if rows else None

    def _require_group(self, group: int | str, extension_id: str | None) -> dict[str, Any]:
        found = self.get_error_group(group, extension_id=extension_id)
        if found is None:
            where = f" of extension {extension_id!r}" if extension_id else ""
            msg = f"no error group {str(group)!r}{where}: give a group id or fingerprint"
            raise StoreError(msg)
        return found

    def resolve_error_group(
        self,
        group: int | str,
        *,
        notes: str | None = None,
        extension_id: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Mark a group (id, fingerprint or unique prefix) resolved, with *notes*; return it.

        If it occurs again in a later run, :meth:`sync_error_groups` flags it regressed.
        """
        found = self._require_group(group, extension_id)
        self.resolve(
            ERROR_GROUP, found["extension_id"], found["fingerprint"], notes=notes,
            at=time.time() if now is None else now,
        )  # fmt: skip
        return self._require_group(found["id"], None)

    def unresolve_error_group(
        self, group: int | str, *, extension_id: str | None = None
    ) -> dict[str, Any]:
        """Reopen a resolved group (its notes stay). Returns the group."""
        found = self._require_group(group, extension_id)
        self.reopen(ERROR_GROUP, found["extension_id"], found["fingerprint"])
        return self._require_group(found["id"], None)

    def error_group_history(self, group_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
        """Occurrences of one group per run, oldest first: run_id, started_at, count, tests."""
        rows = self._query(
            "SELECT r.run_id, runs.uuid, runs.started_at, r.count, r.tests, r.first_ts, r.last_ts"
            " FROM error_group_runs r JOIN runs ON runs.id = r.run_id WHERE r.group_id = ?"
            " ORDER BY r.run_id DESC LIMIT ?",
            (group_id, limit),
        )
        return [dict(row) for row in reversed(rows)]

    def error_trend(
        self, *, extension_id: str | None = None, runs: int = 20, until_run: int | None = None
    ) -> list[dict[str, Any]]:
        """Errors per run over the last *runs* runs (up to *until_run*), oldest first.

        Only runs that recorded tests (of *extension_id*, when given) count; each dict:
        ``run_id``, ``uuid``, ``started_at``, ``count`` (errors) and ``groups`` (distinct).
        """
        test_filter = "SELECT DISTINCT run_id FROM tests"
        params: list[Any] = []
        if extension_id is not None:
            test_filter += " WHERE extension_id = ?"
            params.append(extension_id)
        sql = (
            "SELECT runs.id AS run_id, runs.uuid, runs.started_at,"
            " COALESCE(SUM(r.count), 0) AS count, COUNT(r.group_id) AS groups"
            " FROM runs LEFT JOIN error_group_runs r ON r.run_id = runs.id"
        )
        if extension_id is not None:
            sql += " AND r.group_id IN (SELECT id FROM error_groups WHERE extension_id = ?)"
            params.insert(0, extension_id)
        sql += f" WHERE runs.id IN ({test_filter})"
        if until_run is not None:
            sql += " AND runs.id <= ?"
            params.append(until_run)
        sql += " GROUP BY runs.id ORDER BY runs.id DESC LIMIT ?"
        params.append(int(runs))
        return [dict(row) for row in reversed(self._query(sql, params))]

    def resolve(
        self,
        kind: str,
        extension_id: str,
        key: str,
        *,
        notes: str | None = None,
        at: float,
        run_id: int | None = None,
    ) -> None:
        """Mark the error group or alert *key* of *extension_id* resolved at *at*.

        *notes* replace earlier ones when given; *run_id* (default: the newest run) is the
        run it was resolved after.
        """
        check_kind(kind)
        with self.transaction() as db:
            if run_id is None:
                run_id = db.execute("SELECT MAX(id) FROM runs").fetchone()[0]
            db.execute(
                "INSERT INTO resolutions(kind, extension_id, key, state, resolved_at,"
                " resolved_run, notes) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT(kind, extension_id, key) DO UPDATE SET state = excluded.state,"
                " resolved_at = excluded.resolved_at, resolved_run = excluded.resolved_run,"
                " notes = COALESCE(excluded.notes, resolutions.notes)",
                (kind, extension_id, key, RESOLVED, at, run_id, notes),
            )

    def reopen(self, kind: str, extension_id: str, key: str) -> bool:
        """Reopen the error group or alert *key*: open again, notes and history kept.

        Returns whether it was resolved (or regressed) before.
        """
        check_kind(kind)
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE resolutions SET state=?, resolved_at=NULL, resolved_run=NULL"
                " WHERE kind=? AND extension_id=? AND key=? AND state <> ?",
                (OPEN, kind, extension_id, key, OPEN),
            ).rowcount
        return bool(changed)

    def resolutions(
        self, kind: str, *, extension_id: str | None = None
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Resolutions of *kind* (``error_group`` or ``alert``) by (extension_id, key).

        Each: ``state`` (resolved, regressed or open: see :mod:`resolutions`),
        ``resolved_at``, ``resolved_run``, ``notes``, ``regressed_at``, ``regressed_run``
        and ``regressions``.
        """
        check_kind(kind)
        where, params = where_clause("kind = ?", params=[kind], extension_id=extension_id)
        columns = ", ".join(_RESOLUTION_COLUMNS)
        sql = f"SELECT extension_id, key, {columns} FROM resolutions WHERE {where}"
        return {
            (row["extension_id"], row["key"]): {name: row[name] for name in _RESOLUTION_COLUMNS}
            for row in self._query(sql, params)
        }


_GROUP_COLUMN_NAMES = (
    "id", "extension_id", "fingerprint", "error_type", "message", "template", "category",
    "culprit", "first_seen_run", "first_seen_ts", "last_seen_run", "last_seen_ts", "count",
    "runs_seen", "data",
)  # fmt: skip
_RESOLUTION_COLUMNS = (
    "state", "resolved_at", "resolved_run", "notes", "regressed_at", "regressed_run",
    "regressions",
)  # fmt: skip
#: What a group row is read with: its columns and its resolution's (the one table of them).
_GROUP_SELECTED = (*_GROUP_COLUMN_NAMES, *_RESOLUTION_COLUMNS)
_GROUP_SELECT = (
    f"SELECT {', '.join('g.' + name for name in _GROUP_COLUMN_NAMES)},"
    f" {', '.join('res.' + name for name in _RESOLUTION_COLUMNS)} FROM error_groups g"
    " LEFT JOIN resolutions res ON res.kind = 'error_group'"
    " AND res.extension_id = g.extension_id AND res.key = g.fingerprint"
)


def group_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A group row as :meth:`Store.error_groups` gives it: its status from its resolution."""
    data = json.loads(row.pop("data", None) or "{}")
    row["sample"] = data.get("sample")
    resolution = {"state": row.pop("state"), "resolved_at": row["resolved_at"]}
    status = status_of(resolution if resolution["state"] else None, row["last_seen_ts"])
    row["status"] = RESOLVED if status == RESOLVED else "unresolved"
    row["regressed"] = status == REGRESSED
    row["regressions"] = int(row["regressions"] or 0)
    return row
