"""Reading the store: runs, tests, records, figures and history, filtered in SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..figures import ROOT_TAG
from .base import OutcomeWindow, RowFilters, StoreBase, where_clause
from .codec import RECORD_KINDS, json_object, scalar
from .runs import run_dict

if TYPE_CHECKING:
    from typing_extensions import Unpack


class StoreReading(StoreBase):
    """The queries of the CLI, the REST API, history, gates and the report."""

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest runs first."""
        rows = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [run_dict(row) for row in rows]

    def get_run(self, run: int | str) -> dict[str, Any] | None:
        """The run with id (or uuid) *run*; ``"last"`` for the newest."""
        if run == "last":
            rows = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT 1")
        else:
            text = str(run).strip()
            number = int(text) if text.isdigit() and len(text) < 18 else None
            # A run id named by the user (--kari-run-id) wins over a row id of the same text.
            rows = self._query(
                "SELECT * FROM runs WHERE uuid = ? OR id = ? ORDER BY uuid = ? DESC LIMIT 1",
                (text, number, text),
            )
        return run_dict(rows[0]) if rows else None

    def tests(self, run_id: int, *, extension_id: str | None = None) -> list[dict[str, Any]]:
        """Every test record of run *run_id*, in the order they finished."""
        where, params = where_clause(run_id=run_id, extension_id=extension_id or None)
        rows = self._query(f"SELECT id, data FROM tests WHERE {where} ORDER BY id", params)
        return [{"id": row["id"], **json.loads(row["data"])} for row in rows]

    def test(
        self, run_id: int, nodeid: str, *, extension_id: str | None = None
    ) -> dict[str, Any] | None:
        """The record of test *nodeid* in run *run_id* (its last one), or ``None``."""
        where, params = where_clause(
            run_id=run_id, extension_id=extension_id or None, equal={"nodeid": nodeid}
        )
        rows = self._query(
            f"SELECT id, data FROM tests WHERE {where} ORDER BY id DESC LIMIT 1", params
        )
        return {"id": rows[0]["id"], **json.loads(rows[0]["data"])} if rows else None

    def records(
        self,
        kind: str,
        *,
        limit: int | None = None,
        newest_first: bool = True,
        **filters: Unpack[RowFilters],
    ) -> list[dict[str, Any]]:
        """Records of one *kind* (log, metric, error, span, alert, profile) matching filters."""
        where, params = where_clause("r.kind = ?", params=[kind], alias="r.", **filters)
        return self._select_records(
            where, params, with_test=False, limit=limit, newest_first=newest_first
        )

    def _select_records(
        self,
        where: str,
        params: list[Any],
        *,
        with_test: bool,
        limit: int | None,
        newest_first: bool,
    ) -> list[dict[str, Any]]:
        """Decoded rows of ``records r`` matching *where* (with the owning test's node id and
        the extension id when *with_test*), by record id."""
        sql = "SELECT r.id, r.run_id, r.test_id, r.extension_id"
        if with_test:
            sql += ", t.nodeid, r.data FROM records r LEFT JOIN tests t ON t.id = r.test_id"
        else:
            sql += ", r.data FROM records r"
        sql += f" WHERE {where} ORDER BY r.id {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += " LIMIT ?"
            params = [*params, limit]
        result = []
        for row in self._query(sql, params):
            item = {"record_id": row["id"], "run_id": row["run_id"], "test_id": row["test_id"]}
            if with_test:
                item.update(extension_id=row["extension_id"], nodeid=row["nodeid"])
            item.update(json.loads(row["data"]))
            result.append(item)
        return result

    def load_baseline(self, name: str) -> dict[str, Any] | None:
        """The baseline document saved as *name*, or ``None``."""
        rows = self._query("SELECT data FROM baselines WHERE name=?", (name,))
        return json.loads(rows[0]["data"]) if rows else None

    def baselines(self) -> list[dict[str, Any]]:
        """Name, creation time and run of every saved baseline, newest first."""
        rows = self._query(
            "SELECT name, created_at, run_id FROM baselines ORDER BY created_at DESC"
        )
        return [dict(row) for row in rows]

    def previous_run(
        self, *, branch: str | None, exclude_uuid: str | None = None
    ) -> dict[str, Any] | None:
        """The newest finished run on *branch* (any branch when None), other than *exclude_uuid*."""
        where, params = where_clause(
            "finished_at IS NOT NULL",
            "uuid != ?",
            params=[exclude_uuid or ""],
            equal={"git_branch": branch or None},
        )
        rows = self._query(f"SELECT * FROM runs WHERE {where} ORDER BY id DESC LIMIT 1", params)
        return run_dict(rows[0]) if rows else None

    def extensions(self) -> list[str]:
        """Every extension id that has tests or records in the store."""
        rows = self._query(
            "SELECT extension_id FROM tests UNION SELECT extension_id FROM records ORDER BY 1"
        )
        return [row[0] for row in rows]

    def run_progress(self, *, limit: int = 10) -> list[dict[str, Any]]:
        """The newest runs with their progress: collected, done, outcomes, running tests."""
        found = []
        for run in self.run_summaries(limit=limit):
            data = run.get("data")
            progress = data.get("progress") if isinstance(data, dict) else None
            if not isinstance(progress, dict):
                progress = {}
            finished = run.get("finished_at") is not None
            done = int(run["tests_count"])
            found.append(
                {
                    "id": run["id"],
                    "uuid": run.get("uuid"),
                    "started_at": run.get("started_at"),
                    "finished_at": run.get("finished_at"),
                    "status": "finished" if finished else "running",
                    "collected": max(int(progress.get("collected") or 0), done),
                    "done": done,
                    "outcomes": run["outcomes"],
                    "running": [] if finished else list(progress.get("running") or []),
                    "progress_at": progress.get("ts"),
                }
            )
        return found

    def select_records(
        self,
        kind: str,
        *,
        levels: Sequence[str] | None = None,
        nodeid: str | None = None,
        equals: dict[str, str] | None = None,
        without_test: bool = False,
        limit: int | None = None,
        newest_first: bool = True,
        **filters: Unpack[RowFilters],
    ) -> list[dict[str, Any]]:
        """Records of one *kind* with their test's node id, filtered in SQL.

        *levels* matches the level column case-insensitively, *nodeid* is a substring of the
        test's node id, *equals* maps top-level record fields to the text they must equal,
        *without_test* keeps only records no test owns (a live manager's).
        """
        clauses, params = ["r.kind = ?"], list[Any]([kind])
        if levels is not None:
            clauses.append(f"upper(r.level) IN ({', '.join('?' * len(levels))})")
            params.extend(level.upper() for level in levels)
        if nodeid:
            clauses.append(self._backend.contains("t.nodeid"))
            params.append(nodeid)
        if without_test:
            clauses.append("r.test_id IS NULL")
        for field_name, text in (equals or {}).items():
            clauses.append(f"{self._backend.json_text('r.data')} = ?")
            params.extend((self._backend.json_path(field_name), text))
        where, params = where_clause(*clauses, params=params, alias="r.", **filters)
        return self._select_records(
            where, params, with_test=True, limit=limit, newest_first=newest_first
        )

    def has_extension(self, extension_id: str) -> bool:
        """Whether the store holds any test or record of *extension_id* (index lookups only)."""
        kinds = tuple(RECORD_KINDS.values())
        rows = self._query(
            "SELECT EXISTS(SELECT 1 FROM tests WHERE extension_id = ?) OR EXISTS(SELECT 1 FROM"
            f" records WHERE kind IN ({', '.join('?' * len(kinds))}) AND extension_id = ?)",
            (extension_id, *kinds, extension_id),
        )
        return bool(rows[0][0])

    def metric_points(
        self,
        *,
        extension_id: str | None = None,
        run_id: int | None = None,
        since: float | None = None,
    ) -> list[tuple[str, str, float, float]]:
        """``(name, unit, ts, value)`` of every numeric metric point matching the filters."""
        where, params = where_clause(
            "kind = 'metric'",
            "value IS NOT NULL",
            extension_id=extension_id,
            run_id=run_id,
            since=since,
        )
        rows = self._query(
            f"SELECT name, coalesce({self._backend.json_text('data')}, ''), coalesce(ts, 0), value"
            f" FROM records WHERE {where}",
            [self._backend.json_path("unit"), *params],
        )
        return [(str(row[0]), str(row[1]), float(row[2]), float(row[3])) for row in rows]

    def resource_samples(
        self,
        fields: Sequence[str],
        *,
        extension_id: str | None = None,
        run_id: int | None = None,
        since: float | None = None,
        tests: int = 2000,
    ) -> list[tuple[str, float, float]]:
        """``(field, ts, value)`` of the sampler's readings of *fields* kept in the newest
        *tests* tests matching the filters (a bound on what one chart reads), oldest first."""
        where, params = where_clause(
            time_column="finished_at", since=since, extension_id=extension_id, run_id=run_id
        )
        path = self._backend.json_value("data", "collected_data", "metrics", "samples")
        rows = self._query(
            f"SELECT {path} FROM tests WHERE {where} ORDER BY id DESC LIMIT ?", [*params, tests]
        )
        rows.reverse()
        found: list[tuple[str, float, float]] = []
        for (text,) in rows:
            samples = json.loads(text) if isinstance(text, str) and text else []
            for sample in samples if isinstance(samples, list) else ():
                ts = sample.get("ts") if isinstance(sample, dict) else None
                if not isinstance(ts, (int, float)) or (since is not None and ts < since):
                    continue
                for name in fields:
                    value = sample.get(name)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        found.append((name, float(ts), float(value)))
        return found

    def slim_tests(
        self, since: float | None, *, extension_id: str | None = None, run_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Test records cut down to what per-test figures need (cheap on big records).

        Each keeps nodeid, outcome, finished_at, duration_ms, phases, the metrics'
        ``resources`` and ``memory``, and stand-ins for the error, span and log records (one
        empty dict per error or span, one ``{"level": ...}`` per log record).
        """
        where, params = where_clause(
            time_column="finished_at", since=since, extension_id=extension_id, run_id=run_id
        )
        db, cd = self._backend, "collected_data"
        rows = self._query(
            f"SELECT nodeid, outcome, finished_at, duration_ms, {db.json_value('data', 'phases')},"
            f" {db.json_value('data', cd, 'metrics', 'resources')},"
            f" {db.json_value('data', cd, 'metrics', 'memory')},"
            f" {db.json_array_length('data', cd, 'error_tracking', 'records')},"
            f" {db.json_array_length('data', cd, 'tracing', 'records')},"
            f" {db.json_joined_field('tests.data', 'level', cd, 'logging', 'records')},"
            f" {db.json_value('data', 'record_version')}, {db.json_value('data', 'cpu_ms')},"
            f" {db.json_value('data', 'kari_overhead_ms')},"
            f" {db.json_value('data', cd, 'error_tracking', 'dropped')},"
            f" {db.json_value('data', cd, 'tracing', 'dropped')},"
            f" {db.json_value('data', cd, 'logging', 'dropped')},"
            f" {db.json_count_tagged('tests.data', ROOT_TAG, cd, 'tracing', 'records')}"
            f" FROM tests WHERE {where} ORDER BY id",
            params,
        )
        result = []
        for row in rows:
            collected: dict[str, Any] = {
                "metrics": {
                    "resources": json_object(row[5]),
                    "memory": json_object(row[6]),
                }
            }
            for kind, count, dropped in (
                ("error_tracking", row[7], row[13]),
                ("tracing", row[8], row[14]),
            ):
                if count is not None:
                    records: list[dict[str, Any]] = [{}] * int(count)
                    if kind == "tracing" and row[16]:  # the session's root spans stay marked
                        roots = int(row[16])
                        records = [{"tags": {ROOT_TAG: True}}] * roots + records[roots:]
                    collected[kind] = {"records": records}
                    collected[kind]["dropped"] = scalar(dropped) or 0
            if row[9] is not None:
                levels = row[9].split(",") if row[9] else []
                collected["logging"] = {
                    "records": [{"level": level} for level in levels],
                    "dropped": scalar(row[15]) or 0,
                }
            result.append(
                {
                    "nodeid": row[0],
                    "outcome": row[1],
                    "finished_at": row[2],
                    "duration_ms": row[3],
                    "phases": json_object(row[4]),
                    "record_version": scalar(row[10]),
                    "cpu_ms": scalar(row[11]),
                    "kari_overhead_ms": scalar(row[12]),
                    "collected_data": collected,
                }
            )
        return result

    def record_counts(
        self, *, extension_id: str | None = None, run_id: int | None = None
    ) -> dict[str, int]:
        """How many records of each kind the store holds (for an extension, a run)."""
        where, params = where_clause(extension_id=extension_id, run_id=run_id)
        rows = self._query(
            f"SELECT kind, count(*) FROM records WHERE {where} GROUP BY kind", params
        )
        return {row[0]: int(row[1]) for row in rows}

    def last_record_id(self) -> int:
        """The id of the newest record (0 when there is none)."""
        rows = self._query("SELECT max(id) FROM records")
        return int(rows[0][0] or 0)

    def group_records(
        self,
        kind: str,
        key_field: str,
        *,
        extension_id: str | None = None,
        run_id: int | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Records of *kind* grouped by the value of their field *key_field*, biggest first.

        Each group: key, extension_id, count, tests (distinct), first_ts, last_ts and
        ``last`` (the newest record of the group).
        """
        where, params = where_clause(
            "r.kind = ?",
            params=[kind],
            alias="r.",
            extension_id=extension_id,
            run_id=run_id,
            since=since,
        )
        key = self._backend.json_text("r.data")
        sql = (
            f"SELECT {key} AS key, r.extension_id, count(*) AS n,"
            " count(DISTINCT r.test_id) AS tests, min(r.ts) AS first_ts, max(r.ts) AS last_ts,"
            " max(r.id) AS last_id"
            f" FROM records r WHERE {where}"
            " GROUP BY key, r.extension_id ORDER BY n DESC, last_ts DESC"
        )
        groups = self._query(sql, [self._backend.json_path(key_field), *params])
        ids = [row["last_id"] for row in groups]
        latest: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._query(
                "SELECT r.id, r.run_id, t.nodeid, r.data FROM records r LEFT JOIN tests t"
                f" ON t.id = r.test_id WHERE r.id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                record = json.loads(row["data"])
                latest[row["id"]] = {
                    "record_id": row["id"],
                    "run_id": row["run_id"],
                    "nodeid": row["nodeid"],
                    **record,
                }
        return [
            {"key": row["key"], "extension_id": row["extension_id"], "count": int(row["n"]),
             "tests": int(row["tests"]), "first_ts": row["first_ts"], "last_ts": row["last_ts"],
             "last": latest.get(row["last_id"], {})}
            for row in groups
        ]  # fmt: skip

    def run_summaries(
        self, *, extension_id: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The newest runs (with tests of *extension_id*) with test counts per outcome."""
        if extension_id is None:
            runs = self._query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        else:
            runs = self._query(
                "SELECT * FROM runs WHERE id IN (SELECT run_id FROM tests WHERE extension_id = ?)"
                " ORDER BY id DESC LIMIT ?",
                (extension_id, limit),
            )
        result = []
        for row in runs:
            run = run_dict(row)
            where, params = where_clause(run_id=run["id"], extension_id=extension_id)
            counts = self._query(
                f"SELECT outcome, count(*), sum(duration_ms) FROM tests WHERE {where}"
                " GROUP BY outcome",
                params,
            )
            run["outcomes"] = {c[0]: int(c[1]) for c in counts}
            run["tests_count"] = sum(run["outcomes"].values())
            run["tests_duration_ms"] = sum(float(c[2] or 0.0) for c in counts)
            exts = self._query(
                "SELECT DISTINCT extension_id FROM tests WHERE run_id = ? ORDER BY 1", (run["id"],)
            )
            run["extensions"] = [e[0] for e in exts]
            result.append(run)
        return result

    def tests_since(
        self, since: float | None, *, extension_id: str | None = None, run_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Test records that finished at or after *since* (every one when ``None``)."""
        where, params = where_clause(
            time_column="finished_at", since=since, extension_id=extension_id, run_id=run_id
        )
        rows = self._query(f"SELECT id, run_id, data FROM tests WHERE {where} ORDER BY id", params)
        return [
            {"id": row["id"], "run_id": row["run_id"], **json.loads(row["data"])} for row in rows
        ]

    def test_outcomes(
        self, **window: Unpack[OutcomeWindow]
    ) -> tuple[list[int], list[tuple[int, str, str, float | None]]]:
        """The newest *runs* run ids up to *until_run* (oldest first) and the
        ``(run_id, nodeid, outcome, duration_ms)`` of their tests, read in one pass."""
        runs, until_run = window["runs"], window.get("until_run")
        nodeid, extension_id = window.get("nodeid"), window.get("extension_id")
        where, params = where_clause(equal={"nodeid": nodeid}, extension_id=extension_id)
        run_where = "id <= ?" if until_run is not None else "1 = 1"
        run_params: list[Any] = [until_run] if until_run is not None else []
        if nodeid is not None:
            # the runs this test ran in, so "history NODEID" reaches past runs without it
            run_where += (
                " AND EXISTS (SELECT 1 FROM tests WHERE tests.run_id = runs.id"
                " AND tests.nodeid = ?)"
            )
            run_params.append(nodeid)
        ids = [
            int(row[0])
            for row in self._query(
                f"SELECT id FROM runs WHERE {run_where} ORDER BY id DESC LIMIT ?",
                [*run_params, runs],
            )
        ]
        if not ids:
            return [], []
        rows = self._query(
            "SELECT run_id, nodeid, outcome, duration_ms FROM tests"
            f" WHERE {where} AND run_id IN ({', '.join('?' * len(ids))}) ORDER BY run_id, id",
            [*params, *ids],
        )
        found = [(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]
        return sorted(ids), found
