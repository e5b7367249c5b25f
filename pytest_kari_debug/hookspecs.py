"""Hook specifications of pytest-kari-debug (``pytest_kari_debug_*``).

Feature modules of the plugin (and users' conftest files) implement these to add session
options, verdicts, per-test data and run outputs without touching the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import pytest

    from .journal import RunRecords
    from .manager import ExtensionDebugManager
    from .summaries import RunSections

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_kari_debug_session_options(item: pytest.Item) -> dict[str, Any] | None:
    """Return debug-session options for *item* (merged over every implementation).

    Example, in a conftest: ``return {"profile_memory": True} if "mem" in item.name else None``
    """


@hookspec
def pytest_kari_debug_verdicts(
    item: pytest.Item, manager: ExtensionDebugManager, session_id: str
) -> list[str] | None:
    """Return failure messages for a test whose call phase passed (empty: no verdict).

    Each message names the rule, the measured value and the threshold. A non-empty result
    fails the test with a :class:`~pytest_kari_debug.exceptions.KariDebugAssertion`.
    """


@hookspec
def pytest_kari_debug_test_record(item: pytest.Item, record: dict[str, Any]) -> None:
    """Add JSON-able data to a finished test's *record* (under ``record["extra"]``).

    Runs where the test ran (an xdist worker included), before the record travels to the
    controller. The plugin's own parts (``extra["logging"]``, ``extra["alerts"]``,
    ``extra["hang_dump"]``, the error records' ``nodeid``) are in the record already.
    """


@hookspec
def pytest_kari_debug_hang_dump(item: pytest.Item, number: int, dump: dict[str, Any]) -> None:
    """A hang dump of *item* was just taken: its *number*-th (``--kari-hang-dump`` takes them at
    1x, 2x and 3x the threshold; pytest-timeout's timeout adds one). *dump* holds the threads,
    the asyncio tasks and ``text``, as the record will.

    Called while the test still runs, on the plugin's watchdog thread (on pytest's for a
    timeout): keep it short. Example, in a conftest, to see dumps as they happen in CI:
    ``print(f"{item.nodeid} still running:\n{dump['text']}", file=sys.stderr)``
    """


@hookspec
def pytest_kari_debug_run_finished(
    config: pytest.Config,
    run: dict[str, Any],
    tests: RunRecords,
    sections: dict[str, Any],
    built: RunSections,
) -> None:
    """On the controller, once every test is recorded: write outputs, fill JSON *sections*.

    *tests* are the records as the store holds them, read from the run's journal one at a
    time each time they are iterated (``len(tests)`` is their count): keep aggregates, not the
    records. To amend records for the JSON and the report, add a function to
    ``tests.transforms``. *built* holds what reads every typed record (the metrics and
    profiling sections, the tests with errors, the tracing figures, the error groups, the log
    counts, the tests whose alert rules fired), made from the records in memory as the tests
    finished: a plugin that needs no more than that reads no record again. Automatic garbage
    collection is paused while this hook runs.
    """
