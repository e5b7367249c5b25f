"""``RunSource``: the records inside a finished run's test records."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .. import views
from ..exceptions import ConfigurationError, KariDebugError
from ..logger import LogQuery
from ..model import records_of
from ..resolutions import ALERT
from ..storage import Store
from .base import (
    KINDS,
    Group,
    _check_extension,
    _mark_in_store,
    _since,
    _Source,
    alert_statistics,
)


# A finished run's test records -------------------------------------------------------------
class RunSource(_Source):
    """The records inside a finished run's test records (the plugin's, or a run JSON's).

    *tests* is iterated once per question, never kept as a list (a run's journal reads it from
    disk each time). An error group's status comes from *error_states* (else the *store*'s,
    else open), an alert's from its record or *alert_resolutions* (else the *store*'s).
    Resolving writes to the *store*.
    """

    name = "run"

    def __init__(
        self,
        tests: Iterable[Mapping[str, Any]],
        *,
        extension_id: str | None = None,
        store: Store | None = None,
        error_states: views.ErrorStates | None = None,
        alert_resolutions: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(tests, (str, bytes, Mapping)) or not isinstance(tests, Iterable):
            msg = f"tests must be an iterable of test records (dicts), got {tests!r:.80}"
            raise ConfigurationError(msg)
        _check_extension(extension_id)
        self._tests = tests
        self.extension_id = extension_id
        self.store = store
        if error_states is None:
            error_states = (
                views.ErrorStates() if store is None
                else views.ErrorStates.of_store(store, extension_id)
            )  # fmt: skip
        if alert_resolutions is None and store is not None:
            alert_resolutions = store.resolutions("alert", extension_id=extension_id)
        self.error_states = error_states
        self.alert_resolutions = dict(alert_resolutions or {})
        self.clock = clock

    def __repr__(self) -> str:
        return f"<RunSource {self.extension_id!r}>"

    def _each(self) -> Iterable[Mapping[str, Any]]:
        for test in self._tests:
            if self.extension_id is None or test.get("extension_id") == self.extension_id:
                yield test

    def _records(self, component: str) -> Iterable[dict[str, Any]]:
        """Each record of *component* in the tests, with the test's node id and extension."""
        for test in self._each():
            for record in records_of(test, component):
                found = dict(record)
                for key in ("nodeid", "extension_id"):
                    if not found.get(key):
                        found[key] = test.get(key)
                yield found

    # RecordSource ------------------------------------------------------------------------
    def tests(self, *, since: float | None = None, slim: bool = False) -> list[dict[str, Any]]:
        return _since([dict(t) for t in self._each()], since, "finished_at")

    def _newest(
        self, kind: str, since: float | None, nodeid: str | None, page: int
    ) -> Iterator[dict[str, Any]]:
        component = next(c for c, k in KINDS.items() if k == kind)
        found = list(self._records(component))
        found.sort(key=lambda r: -float(r.get("ts") or r.get("start") or 0.0))
        return iter(found)

    def logs(
        self, filters: LogQuery, *, limit: int, nodeid: str | None = None
    ) -> list[dict[str, Any]]:
        return self.records(
            "log", limit=limit, nodeid=nodeid, keep=lambda r: filters.matches(r.get)
        )

    def error_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        """Each group also lists ``test_indexes``: the positions of its tests in the run."""
        groups = views.error_groups_of_tests(self._each(), self.error_states)
        return _since(groups, since, "last_seen")

    def _alert_views(self, since: float | None) -> Iterator[dict[str, Any]]:
        rows = self._newest("alert", since, None, views.PAGE)
        yield from views.unique_alerts(rows, self.alert_resolutions)

    def alert_groups(self, *, since: float | None = None) -> list[dict[str, Any]]:
        return views.alert_groups(self.alerts(since=since), self.alert_resolutions)

    def alert_statistics(self) -> dict[str, Any]:
        return alert_statistics(self.alert_groups())

    def metric_rows(self, *, since: float | None = None) -> list[views.MetricRow]:
        rows = views.metric_rows_of_tests(self._each())
        return rows if since is None else [row for row in rows if row[2] >= since]

    def counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for component in KINDS:
            counts[component] = sum(1 for _ in self._records(component))
        return dict(counts)

    def _where(self) -> str:
        return "in this run"

    def _mark(self, what: str, group: Group, key: str, notes: str | None, reopen: bool) -> None:
        """Kept in the store the source was given (a run's records keep no resolutions)."""
        if self.store is None:
            msg = f"{what} {key!r}: a run's records keep no resolutions; give RunSource a store"
            raise KariDebugError(msg)
        _mark_in_store(self.store, (what, group, key, notes, reopen), at=self.clock())
        self.error_states = views.ErrorStates.of_store(self.store, self.extension_id)
        self.alert_resolutions = self.store.resolutions(ALERT, extension_id=self.extension_id)
