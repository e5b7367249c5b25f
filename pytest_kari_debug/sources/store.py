"""``StoreSource``: what the store recorded for an extension (or every one), or one run of it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .. import views
from ..exceptions import ConfigurationError
from ..figures import measure
from ..logger import LEVELS, LogQuery, to_epoch
from ..manager import STATUS_ORDER, ExtensionDebugManager
from ..metrics import SAMPLE_FIELDS
from ..model import TestRecord
from ..resolutions import ALERT, ERROR_GROUP
from ..storage import RECORD_KINDS, SCHEMA_VERSION, Store
from .base import (
    Group,
    LiveOnlyError,
    LogBatch,
    LogWindow,
    _check_extension,
    _filtered,
    _mark_in_store,
    _Source,
    alert_statistics,
    cursor_position,
    error_analysis,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

# Store -------------------------------------------------------------------------------------
#: The sampler's readings a store source gives as metric rows (kept in the tests' records).
STORED_SAMPLES = ("cpu_percent", "rss_bytes")


class StoreSource(_Source):
    """What the store recorded for an extension (``None``: every one), or for one run of it."""

    name = "store"

    def __init__(
        self,
        store: Store,
        extension_id: str | None = None,
        run: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(store, Store):
            msg = f"a store source needs a Store, got {store!r}"
            raise ConfigurationError(msg)
        _check_extension(extension_id)
        if run is not None and (isinstance(run, bool) or not isinstance(run, int)):
            msg = f"run must be a run id (a whole number) or None, got {run!r}"
            raise ConfigurationError(msg)
        self.store = store
        self.extension_id = extension_id
        self.run = run
        self.clock = clock

    def __repr__(self) -> str:
        run = "" if self.run is None else f" run {self.run}"
        return f"<StoreSource {self.extension_id!r}{run}>"

    @property
    def extension_name(self) -> str:
        return self.extension_id or ""

    def live_manager(self, what: str) -> ExtensionDebugManager:
        msg = (
            f"{what} needs a live debug manager; extension {self.extension_id!r} only has"
            " recorded data (start its manager first)"
        )
        raise LiveOnlyError(msg)

    def _scope(self) -> dict[str, Any]:
        return {"extension_id": self.extension_id, "run_id": self.run}

    # RecordSource ------------------------------------------------------------------------
    def tests(self, *, since: float | None = None, slim: bool = False) -> list[dict[str, Any]]:
        if slim:
            return self.store.slim_tests(since, **self._scope())
        return self.store.tests_since(since, **self._scope())

    def _newest(
        self, kind: str, since: float | None, nodeid: str | None, page: int, **narrow: Any
    ) -> Iterator[dict[str, Any]]:
        """The store filters by time and test (and *narrow*: ``select_records``' filters).

        The first query asks for *page* rows (all a filter SQL answers alone needs), the next
        ones for at least :data:`~pytest_kari_debug.views.PAGE`.
        """
        before: int | None = None
        while True:
            rows = self.store.select_records(
                kind, since=since, nodeid=nodeid, before_id=before, limit=page, **narrow,
                **self._scope(),
            )  # fmt: skip
            yield from rows
            if len(rows) < page:
                return
            before, page = rows[-1]["record_id"], max(page, views.PAGE)

    def logs(
        self, filters: LogQuery, *, limit: int, nodeid: str | None = None
    ) -> list[dict[str, Any]]:
        """The store narrows by level, time, correlation id and test; :meth:`LogQuery.matches`
        decides the rest, exactly as for a live logger's records."""
        floor = views.level_floor(filters.level)
        least = -1 if floor is None else LEVELS[floor]
        narrow = {
            "levels": None if floor is None else [n for n, v in LEVELS.items() if v >= least],
            "until": None if filters.until is None else to_epoch(filters.until, "until"),
            "equals": {"correlation_id": filters.correlation_id} if filters.correlation_id
            else None,
        }  # fmt: skip
        since = None if filters.since is None else to_epoch(filters.since, "since")
        rows = self._newest("log", since, nodeid, limit, **narrow)
        return _filtered(rows, limit, None, None, lambda record: filters.matches(record.get))

    def error_groups(
        self, *, since: float | None = None, states: views.ErrorStates | None = None
    ) -> list[dict[str, Any]]:
        return views.store_error_groups(self.store, since=since, states=states, **self._scope())

    def error_states(self) -> views.ErrorStates:
        """Where each group's state is kept (the CLI reads a record's group status from it)."""
        return views.ErrorStates.of_store(self.store, self.extension_id)

    def _alert_views(self, since: float | None) -> Iterator[dict[str, Any]]:
        """Each alert id once, as it was last recorded, resolved by the store's resolutions."""
        resolutions = self.store.resolutions(ALERT, extension_id=self.extension_id)
        rows = self._newest("alert", since, None, views.PAGE)
        yield from views.unique_alerts(rows, resolutions, extension_id=self.extension_id)

    def alert_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        resolutions = self.store.resolutions(ALERT, extension_id=self.extension_id)
        return views.alert_groups(self.alerts(since=since), resolutions)

    def alert_statistics(self) -> dict[str, Any]:
        return alert_statistics(self.alert_groups())

    def metric_rows(self, *, since: float | None = None) -> list[views.MetricRow]:
        """Recorded points, and the sampler's CPU and RSS readings kept in the tests."""
        rows = self.store.metric_points(since=since, **self._scope())
        sampled = self.store.resource_samples(STORED_SAMPLES, since=since, **self._scope())
        return rows + [(name, SAMPLE_FIELDS[name], ts, value) for name, ts, value in sampled]

    def counts(self) -> dict[str, int]:
        counts = self.store.record_counts(**self._scope())
        return {kind: counts.get(record_kind, 0) for kind, record_kind in RECORD_KINDS.items()}

    def _groups(self, what: str) -> list[Group]:
        """Of every run: a resolution holds for the extension, whatever run is in scope."""
        every = self if self.run is None else StoreSource(self.store, self.extension_id)
        return every.error_groups() if what == ERROR_GROUP else every.alert_groups()

    def _mark(self, what: str, group: Group, key: str, notes: str | None, reopen: bool) -> None:
        _mark_in_store(self.store, (what, group, key, notes, reopen), at=self.clock())

    # ExtensionSource ---------------------------------------------------------------------
    def _run_summary(self) -> dict[str, Any] | None:
        runs = self.store.run_summaries(extension_id=self.extension_id, limit=50)
        if self.run is None:
            return runs[0] if runs else None
        return next((run for run in runs if run["id"] == self.run), None)

    def status(self) -> dict[str, Any]:
        kinds = self.counts()
        last = self._run_summary()
        return {
            "extension_id": self.extension_id,
            "extension_name": self.extension_name,
            "source": self.name,
            "running": False,
            "uptime_seconds": 0.0,
            "enabled_components": [k for k, n in kinds.items() if n],
            "counts": kinds,
            "dropped": {},
            "sessions": {"active": 0, "completed": int(last["tests_count"]) if last else 0},
            "debug_overhead_ms": 0.0,
            "sampling_rate": 1.0,
            "diagnostics": list(((last or {}).get("data") or {}).get("diagnostics") or []),
        }

    def last_run(self) -> dict[str, Any] | None:
        last = self._run_summary()
        if last is None:
            return None
        return {
            "id": last["id"],
            "started_at": last["started_at"],
            "finished_at": last.get("finished_at"),
            "outcomes": last["outcomes"],
            "tests_count": last["tests_count"],
        }

    def log_levels(self) -> dict[str, int]:
        levels = dict.fromkeys(LEVELS, 0)
        for group in self.store.group_records("log", "level", **self._scope()):
            key = str(group["key"] or "").upper()
            if key in levels:
                levels[key] += int(group["count"])
        return levels

    def error_analysis(self, groups: list[dict[str, Any]]) -> dict[str, Any]:
        return error_analysis(groups)

    def health(self) -> dict[str, Any]:
        checks = [store_check(self.store_health())]
        run = self._run_summary()
        if run is not None:
            checks.append(run_check(run))
        overall = max((c["status"] for c in checks), key=STATUS_ORDER.index)
        return {
            "overall_status": overall,
            "checked_at": self.clock(),
            "debug_overhead_ms": 0.0,
            "checks": checks,
        }

    def metric_state(self) -> dict[str, Any]:
        return {}

    def latest(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        out: dict[str, dict[str, Any] | None] = {}
        for name in names:
            rows = self.store.select_records(
                "metric", equals={"name": name}, limit=1, **self._scope()
            )
            out[name] = None
            if rows and isinstance(rows[0].get("value"), (int, float)):
                row = rows[0]
                out[name] = {"value": row["value"], "unit": row.get("unit") or "",
                             "ts": row.get("ts"), "source": "store"}  # fmt: skip
        return out

    def logs_after(
        self, cursor: str | None, filters: LogQuery, **window: Unpack[LogWindow]
    ) -> LogBatch:
        """Cursors are ``s:<record id>``: a record's place in the store."""
        backlog, limit, nodeid = window["backlog"], window["limit"], window.get("nodeid")
        store = self.store
        after = cursor_position(cursor, "s:")
        if after is None:
            newest = store.select_records("log", limit=1, **self._scope())
            start = newest[0]["record_id"] if newest else 0
            recent: list[dict[str, Any]] = []
            if backlog:
                found = self.logs(filters, limit=backlog, nodeid=nodeid)
                recent = [r for r in reversed(found) if r["record_id"] <= start]
            return LogBatch(recent, f"s:{start}", 0, [f"s:{r['record_id']}" for r in recent])
        rows = store.select_records(
            "log", after_id=after, nodeid=nodeid, newest_first=False, limit=limit, **self._scope()
        )
        last = rows[-1]["record_id"] if rows else after
        passed = [r for r in rows if filters.matches(r.get)]
        return LogBatch(passed, f"s:{last}", 0, [f"s:{r['record_id']}" for r in passed])

    def sessions(self, *, limit: int) -> dict[str, Any]:
        """The tests of the run in scope (the newest run without one) as completed sessions."""
        run = self._run_summary()
        completed = []
        if run is not None:
            tests = self.store.slim_tests(None, extension_id=self.extension_id, run_id=run["id"])
            for test in reversed(tests[-limit:]):
                duration = (measure("duration_ms", test).value or 0.0) / 1000.0
                completed.append(
                    {"session_id": None, "name": test["nodeid"], "status": test["outcome"],
                     "started_at": None, "ended_at": test.get("finished_at"),
                     "duration_seconds": duration, "configuration": {}, "records": {},
                     "run_id": run["id"]}
                )  # fmt: skip
        return {"active": [], "completed": completed}

    def run_tests(self, run_id: int | None = None) -> list[dict[str, Any]]:
        """The tests of run *run_id* (default: the run in scope, the newest without one)."""
        if run_id is None:
            run = self._run_summary()
            run_id = None if run is None else int(run["id"])
        return [] if run_id is None else self.store.tests(run_id, extension_id=self.extension_id)

    def metric_document(self, *, limit: int) -> dict[str, Any]:
        rows = self.records("metric", limit=limit)
        return {"extension_id": self.extension_id, "records": list(reversed(rows)),
                "samples": [], "dropped": 0}  # fmt: skip

    # The store's runs, baselines and state (what the CLI reads besides records) -----------
    def of(self, extension_id: str | None) -> StoreSource:
        """The same store and run in scope, for *extension_id* (``None``: every one)."""
        return StoreSource(self.store, extension_id, self.run, clock=self.clock)

    def runs(self, *, limit: int = 20, extension_only: bool = True) -> list[dict[str, Any]]:
        """The newest stored runs, with their tests' outcome counts and extensions.

        Only runs with tests of the extension, unless *extension_only* is false (then the
        counts are of every extension's tests).
        """
        extension = self.extension_id if extension_only else None
        return self.store.run_summaries(extension_id=extension, limit=limit)

    def find_run(self, text: str) -> dict[str, Any] | None:
        """The stored run *text* names: an id, a uuid, ``last`` or ``last~N`` (N runs before
        the last run with tests of the extension); ``None`` when there is none."""
        text = str(text).strip()
        if text == "last" or text.startswith("last~"):
            back = 0
            if text != "last":
                try:
                    back = int(text[5:])
                except ValueError:
                    msg = f"run {text!r}: write last~N with a whole number N, e.g. last~1"
                    raise ConfigurationError(msg) from None
            runs = self.runs(limit=back + 1)
            return runs[back] if len(runs) > back else None
        return self.store.get_run(int(text) if text.isdigit() else text)

    def run_summary(self, run_id: int) -> dict[str, Any] | None:
        """Run *run_id* with its outcome counts over every extension's tests."""
        return next((r for r in self.runs(limit=1_000_000, extension_only=False)
                     if r["id"] == run_id), None)  # fmt: skip

    def run_records(self, run_id: int) -> list[TestRecord]:
        """The tests of run *run_id* (of the extension) as typed records."""
        return [TestRecord.from_dict(test) for test in self.run_tests(run_id)]

    def test(self, run_id: int, nodeid: str) -> dict[str, Any] | None:
        """The record of test *nodeid* in run *run_id* (of the extension; its last one)."""
        return self.store.test(run_id, nodeid, extension_id=self.extension_id)

    def run_progress(self, *, limit: int = 10) -> list[dict[str, Any]]:
        """The newest runs, a running one with its progress (done of collected, running)."""
        return self.store.run_progress(limit=limit)

    def test_outcomes(self, **window: Any) -> tuple[list[int], list[tuple[Any, ...]]]:
        """What :func:`~pytest_kari_debug.history.load_history` reads (its *window*: runs,
        until_run, nodeid, extension_id): the run ids and their tests' outcomes."""
        return self.store.test_outcomes(**window)

    def every_record(self, kind: str, *, standalone: bool = False) -> list[dict[str, Any]]:
        """Every record of *kind* in scope, oldest first; *standalone*: only those no test
        owns (a live manager's samples). What an export writes, without a limit."""
        rows = list(self._newest(kind, None, None, views.PAGE, without_test=standalone))
        rows.reverse()
        return rows

    def extensions(self) -> list[str]:
        """Every extension the store has records or tests of."""
        return self.store.extensions()

    def has_extension(self, extension_id: str) -> bool:
        """Whether the store has records or tests of *extension_id*."""
        return self.store.has_extension(extension_id)

    def record_counts(self) -> dict[str, int]:
        """Records in scope by record kind (``log``, ``metric``...), only kinds it has."""
        return self.store.record_counts(**self._scope())

    def newest_record_id(self) -> int:
        """The id of the store's newest record (0 when there is none)."""
        return self.store.last_record_id()

    def baseline(self, name: str) -> dict[str, Any] | None:
        """The baseline saved as *name* (``--kari-save-baseline``), or ``None``."""
        return self.store.load_baseline(name)

    def baseline_names(self) -> list[str]:
        """The names of the baselines saved in the store."""
        return [str(b["name"]) for b in self.store.baselines()]

    def store_health(self) -> dict[str, Any]:
        """Size, schema and integrity of the store (a file, or a database on a server)."""
        integrity = self.store.integrity()
        return {
            "path": self.store.label,
            "size_bytes": self.store.size_bytes(),
            "schema_version": self.store.schema_version,
            "schema_supported": SCHEMA_VERSION,
            "integrity": integrity,
            "status": "healthy" if integrity == "ok" else "unhealthy",
        }


def store_check(health: dict[str, Any]) -> dict[str, str]:
    """The health check of the store, from :meth:`StoreSource.store_health`."""
    detail = f"schema {health['schema_version']}, integrity {health['integrity']}"
    return {"component": "store", "status": health["status"], "detail": detail}


def run_check(run: dict[str, Any]) -> dict[str, str]:
    """The health check of a stored run: degraded when it noted internal problems."""
    diagnostics = (run.get("data") or {}).get("diagnostics") or []
    return {
        "component": f"run #{run['id']}",
        "status": "degraded" if diagnostics else "healthy",
        "detail": f"{len(diagnostics)} internal problem(s): {diagnostics[0]}"
        if diagnostics
        else "no internal problems",
    }
