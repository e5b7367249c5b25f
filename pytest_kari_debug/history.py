"""Each test's recent outcomes across stored runs: new failures, fixed tests, flaky tests.

Read from the store with one query for a window of runs (never one per test), and shared by
the report, the CLI (``kari-debug history`` / ``flaky``), the REST API, the dashboard and the
run summaries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, Protocol

from .sharedmethods import dataclass

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .storage import OutcomeWindow

#: Runs looked back over by default ("flaky (failed 3 of last 10)").
DEFAULT_RUNS = 10
FAILING = frozenset({"failed", "error"})
PASSING = frozenset({"passed", "xfailed", "xpassed"})
#: One letter per outcome in compact histories (the report's sparkline).
LETTERS = {
    "passed": "P", "failed": "F", "error": "E", "skipped": "S", "xfailed": "x", "xpassed": "X",
}  # fmt: skip


class OutcomeSource(Protocol):
    """What the history reads: a store's ``test_outcomes`` (one query for the window)."""

    def test_outcomes(
        self, **window: Unpack[OutcomeWindow]
    ) -> tuple[list[int], list[tuple[int, str, str, float | None]]]: ...


def _kind(outcome: str) -> str:
    if outcome in FAILING:
        return "fail"
    if outcome in PASSING:
        return "pass"
    return "other"


@dataclass(frozen=True, slots=True)
class TestHistory:
    """One test's outcomes and durations in the runs it ran in, oldest first."""

    nodeid: str
    run_ids: tuple[int, ...]
    outcomes: tuple[str, ...]
    durations: tuple[float | None, ...]
    #: Whether an older run in the window exists (a first run has nothing to compare with).
    has_past: bool = True

    @property
    def runs(self) -> int:
        """Runs of the window the test ran in."""
        return len(self.outcomes)

    @property
    def failures(self) -> int:
        """Runs of the window where the test failed (or errored)."""
        return sum(1 for o in self.outcomes if o in FAILING)

    def _decided(self) -> list[str]:
        return [k for k in map(_kind, self.outcomes) if k != "other"]

    @property
    def flips(self) -> int:
        """How often the test went from passing to failing or back (skips ignored)."""
        kinds = self._decided()
        return sum(1 for a, b in itertools.pairwise(kinds) if a != b)

    @property
    def new_failure(self) -> bool:
        """Fails in the newest run and did not fail in the run before (or is new there)."""
        if not self.outcomes or self.outcomes[-1] not in FAILING or not self.has_past:
            return False
        earlier = self._decided()[:-1]
        return not earlier or earlier[-1] == "pass"

    @property
    def fixed(self) -> bool:
        """Passes in the newest run and failed in the run before."""
        kinds = self._decided()
        return (
            bool(self.outcomes)
            and self.outcomes[-1] in PASSING
            and len(kinds) >= 2
            and kinds[-2] == "fail"
        )

    @property
    def flaky(self) -> bool:
        """Both passed and failed in the window, changing at least twice (not one regression)."""
        return self.failures > 0 and self.flips >= 2

    def badges(self) -> list[str]:
        """The words the report, CLI and dashboard show next to the test."""
        found = []
        if self.new_failure:
            found.append("new failure")
        if self.fixed:
            found.append("fixed")
        if self.flaky:
            found.append(f"flaky (failed {self.failures} of last {self.runs})")
        return found

    def letters(self) -> str:
        """The outcomes as one letter each (``PPFP``), oldest first."""
        return "".join(LETTERS.get(o, "?") for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the API and ``--format json``."""
        return {
            "nodeid": self.nodeid,
            "runs": [
                {"run_id": r, "outcome": o, "duration_ms": d}
                for r, o, d in zip(self.run_ids, self.outcomes, self.durations, strict=True)
            ],
            "failures": self.failures,
            "flips": self.flips,
            "new_failure": self.new_failure,
            "fixed": self.fixed,
            "flaky": self.flaky,
            "badges": self.badges(),
        }


@dataclass(frozen=True)
class RunHistory:
    """The histories of every test seen in a window of runs (``run_ids`` oldest first)."""

    run_ids: tuple[int, ...]
    tests: Mapping[str, TestHistory] = field(default_factory=dict)

    def get(self, nodeid: str) -> TestHistory | None:
        """The history of *nodeid*, or ``None`` when it ran in none of the runs."""
        return self.tests.get(nodeid)

    def flaky(self) -> list[TestHistory]:
        """Flaky tests, most failures first."""
        found = [h for h in self.tests.values() if h.flaky]
        return sorted(found, key=lambda h: (-h.failures, -h.flips, h.nodeid))

    def new_failures(self) -> list[TestHistory]:
        """Tests that fail in the newest run and did not before."""
        newest = self.run_ids[-1] if self.run_ids else None
        return sorted(
            (h for h in self.tests.values() if h.run_ids[-1] == newest and h.new_failure),
            key=lambda h: h.nodeid,
        )

    def fixed(self) -> list[TestHistory]:
        """Tests that pass in the newest run and failed in the one before."""
        newest = self.run_ids[-1] if self.run_ids else None
        return sorted(
            (h for h in self.tests.values() if h.run_ids[-1] == newest and h.fixed),
            key=lambda h: h.nodeid,
        )


def build_history(
    run_ids: Sequence[int], rows: Iterable[tuple[int, str, str, float | None]]
) -> RunHistory:
    """Histories from ``(run_id, nodeid, outcome, duration_ms)`` rows of the runs *run_ids*.

    A test recorded twice in one run (a rerun) counts with its last record.
    """
    order = sorted(run_ids)
    per_test: dict[str, dict[int, tuple[str, float | None]]] = {}
    for run_id, nodeid, outcome, duration in rows:
        per_test.setdefault(nodeid, {})[run_id] = (outcome, duration)
    first = order[0] if order else None
    tests = {}
    for nodeid, by_run in per_test.items():
        ids = tuple(sorted(by_run))
        tests[nodeid] = TestHistory(
            nodeid=nodeid,
            run_ids=ids,
            outcomes=tuple(by_run[r][0] for r in ids),
            durations=tuple(by_run[r][1] for r in ids),
            has_past=len(order) > 1 and ids[-1] != first,
        )
    return RunHistory(run_ids=tuple(order), tests=tests)


def load_history(
    store: OutcomeSource,
    *,
    runs: int = DEFAULT_RUNS,
    until_run: int | None = None,
    nodeid: str | None = None,
    extension_id: str | None = None,
) -> RunHistory:
    """The histories over the newest *runs* runs up to *until_run* (one query)."""
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        msg = f"runs must be a positive integer, got {runs!r}"
        raise ValueError(msg)
    run_ids, rows = store.test_outcomes(
        runs=runs, until_run=until_run, nodeid=nodeid, extension_id=extension_id
    )
    return build_history(run_ids, rows)


__all__ = [
    "DEFAULT_RUNS",
    "RunHistory",
    "TestHistory",
    "build_history",
    "load_history",
]
