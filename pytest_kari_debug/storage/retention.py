"""Retention: old runs pruned within a time budget, their space given back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import field
from typing import Any

from ..sharedmethods import dataclass
from .base import StoreBase


class Retention(StoreBase):
    """Pruning runs beyond the newest N or older than D days."""

    def prune(
        self,
        *,
        keep_runs: int = 0,
        older_than_days: float = 0.0,
        now: float | None = None,
        protect: Sequence[int] = (),
        baselines: bool = False,
        resolutions: bool = False,
        dry_run: bool = False,
        budget_s: float | None = None,
        batch: int = 20,
    ) -> PruneResult:
        """Delete runs beyond the newest *keep_runs* or older than *older_than_days*.

        A run goes with its tests, records and per-run error counts (0 turns a limit off);
        records of no run (a live manager's) older than the age limit go too. Baselines and
        resolutions stay unless *baselines* / *resolutions* ask for those older than the
        age limit. *protect* lists runs never pruned (the current one). With *budget_s*, it
        stops after that many seconds (between batches of *batch* runs); the rest goes next
        time (``complete`` False).
        """
        stamp = time.time() if now is None else now
        cutoff = stamp - older_than_days * 86400.0 if older_than_days > 0 else None
        clauses: list[str] = []
        params: list[Any] = []
        if keep_runs > 0:
            clauses.append(
                "id NOT IN (SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT ?)"
            )
            params.append(int(keep_runs))
        if cutoff is not None:
            clauses.append("started_at < ?")
            params.append(cutoff)
        run_ids: list[int] = []
        if clauses:
            rows = self._query(
                f"SELECT id FROM runs WHERE {' OR '.join(clauses)} ORDER BY id", params
            )
            run_ids = [int(row[0]) for row in rows if int(row[0]) not in set(protect)]
        result = PruneResult(runs=run_ids, dry_run=dry_run)
        if dry_run:
            result.tests, result.records = self._run_rows(run_ids)
            if cutoff is not None:
                result.records += int(
                    self._query(
                        "SELECT count(*) FROM records WHERE run_id IS NULL AND ts < ?", (cutoff,)
                    )[0][0]
                )
                result.baselines = self._count_old("baselines", "created_at", cutoff, baselines)
                result.resolutions = self._count_old(
                    "resolutions", "resolved_at", cutoff, resolutions
                )
            return result
        deadline = None if budget_s is None else time.monotonic() + budget_s
        for start in range(0, len(run_ids), batch):
            if deadline is not None and time.monotonic() > deadline:
                result.complete = False
                result.runs = run_ids[:start]
                break
            chunk = run_ids[start : start + batch]
            marks = ", ".join("?" * len(chunk))
            with self.transaction() as db:
                result.records += db.execute(
                    f"DELETE FROM records WHERE run_id IN ({marks})", chunk
                ).rowcount
                result.tests += db.execute(
                    f"DELETE FROM tests WHERE run_id IN ({marks})", chunk
                ).rowcount
                db.execute(f"DELETE FROM error_group_runs WHERE run_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
                if self.kind == "sqlite":  # how far the runs' journals were: moot now
                    db.execute(f"DELETE FROM journal_marks WHERE run_id IN ({marks})", chunk)
        if cutoff is not None and result.complete:
            with self.transaction() as db:
                result.records += db.execute(
                    "DELETE FROM records WHERE run_id IS NULL AND ts < ?", (cutoff,)
                ).rowcount
                if baselines:
                    result.baselines = db.execute(
                        "DELETE FROM baselines WHERE created_at < ?", (cutoff,)
                    ).rowcount
                if resolutions:
                    result.resolutions = db.execute(
                        "DELETE FROM resolutions WHERE resolved_at < ?", (cutoff,)
                    ).rowcount
        return result

    def _run_rows(self, run_ids: Sequence[int]) -> tuple[int, int]:
        tests = records = 0
        for start in range(0, len(run_ids), 500):
            chunk = list(run_ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            tests += int(
                self._query(f"SELECT count(*) FROM tests WHERE run_id IN ({marks})", chunk)[0][0]
            )
            records += int(
                self._query(f"SELECT count(*) FROM records WHERE run_id IN ({marks})", chunk)[0][0]
            )
        return tests, records

    def _count_old(self, table: str, column: str, cutoff: float, wanted: bool) -> int:
        if not wanted:
            return 0
        return int(self._query(f"SELECT count(*) FROM {table} WHERE {column} < ?", (cutoff,))[0][0])


@dataclass
class PruneResult:
    """What :meth:`Store.prune` removed (or, in a dry run, would remove)."""

    runs: list[int] = field(default_factory=list)
    tests: int = 0
    records: int = 0
    baselines: int = 0
    resolutions: int = 0
    dry_run: bool = False
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": len(self.runs), "run_ids": self.runs, "tests": self.tests,
            "records": self.records, "baselines": self.baselines,
            "resolutions": self.resolutions, "dry_run": self.dry_run, "complete": self.complete,
        }  # fmt: skip
