"""The store shared by a team: its location, shards joining one run, retention, and writes
that outlive a store going away.

``--kari-store`` takes a SQLite path or a ``postgresql://`` URL (checked at start-up),
``--kari-run-id`` (ini ``kari_run_id``, environment ``KARI_RUN_ID``) makes every process with
that id add its tests to one run, and ``--kari-retention-runs`` / ``--kari-retention-days``
prune old runs at the end of a run, within a time budget.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Generator
from typing import Any

import pytest

from ..backends import RefusedWrites, StoreLocation, parse_location, redact
from ..exceptions import ConfigurationError, StoreTimeoutError
from ..optionspec import RETENTION_DAYS, RETENTION_RUNS
from ..storage import DEFAULT_STORE, Store
from .options import RUN_ID_ENV, option_source, option_value
from .state import STATE, KariState, guard

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,127}")
#: Seconds the end of a run may spend pruning; what is left goes at the next run's end.
RETENTION_BUDGET_S = 2.0
#: SQLite pages (4 KiB) given back to the file system at the end of a run, at most.
RECLAIM_PAGES = 25_000
#: Seconds between attempts to reach a store that failed, doubling up to the last.
RETRY_DELAYS_S = (1.0, 2.0, 5.0, 15.0, 30.0)
#: Test records kept for a retry while the store is away; older ones are reported unstored.
MAX_UNSTORED = 20_000
_STORE_SETTINGS = pytest.StashKey["StoreSettings"]()


class StoreSettings:
    """The run id and retention limits asked for (validated at start-up)."""

    __slots__ = ("retention_days", "retention_runs", "run_id")

    def __init__(self, run_id: str | None, retention_runs: int, retention_days: float) -> None:
        self.run_id = run_id
        self.retention_runs = retention_runs
        self.retention_days = retention_days


def store_location(config: pytest.Config) -> StoreLocation | None:
    """Where the run's store is: ``--kari-store`` (a path or a URL), else the default file."""
    text, source = option_source(config, "store")
    text = str(text or "").strip()
    if text.lower() == "none":
        return None
    if not text:
        return config.rootpath / DEFAULT_STORE
    return parse_location(text, source=source)


def _run_id(config: pytest.Config) -> str | None:
    text, source = option_source(config, "run_id")
    text = str(text or "").strip()
    if not text:
        text, source = os.environ.get(RUN_ID_ENV, "").strip(), f"environment {RUN_ID_ENV}"
    if not text:
        return None
    if not _RUN_ID.fullmatch(text):
        msg = (
            f"{source}: run id {text!r} is not accepted; use 1 to 128 letters, digits and"
            " . _ : / @ + = - (starting with a letter or digit), e.g. the CI pipeline id"
        )
        raise ConfigurationError(msg)
    return text


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Check the run id and retention limits (bad values are usage errors)."""
    runs, days = option_value(config, RETENTION_RUNS), option_value(config, RETENTION_DAYS)
    try:
        settings = StoreSettings(_run_id(config), runs, days)
    except ConfigurationError as exc:
        raise pytest.UsageError(f"kari-debug: {exc}") from None
    config.stash[_STORE_SETTINGS] = settings


def run_uuid(config: pytest.Config) -> str | None:
    """The shared run id asked for (``None``: this process is a run of its own)."""
    settings = config.stash.get(_STORE_SETTINGS, None)
    return settings.run_id if settings is not None else None


def begin_run(config: pytest.Config, state: KariState, store: Store) -> None:
    """Insert (or join) the run in *store*; a shared run id is named in the terminal."""
    state.run_id, joined = store.join_run(state.run)
    state.run["id"] = state.run_id
    shared = run_uuid(config)
    if shared is not None:
        how = "joined it (other shards wrote to it first)" if joined else "first shard"
        state.summary_lines.append(
            f"run {shared!r}: store run {state.run_id} in {store.label}; {how}"
        )


def write_batch(
    state: KariState,
    store: Store,
    batch: list[tuple[dict[str, Any], str]],
    journal: tuple[str, int] | None = None,
) -> int:
    """Send *batch* (and any tests kept from a failed write) to the store; how many tests
    were sent, their commit to confirm with :func:`confirm_batch`. *journal* (the run's
    journal's name and length) is noted as stored with them (SQLite: readers of the store
    decode only the journal's lines past it).

    While the store fails, tests are kept (up to :data:`MAX_UNSTORED`) and retried with
    growing delays; the store reconnects by itself when the server is back. A retry skips the
    tests the store holds already (a write whose answer was lost may have been committed).
    """
    assert state.run_id is not None
    state.unstored.extend(batch)
    if len(state.unstored) > MAX_UNSTORED:
        overflow = len(state.unstored) - MAX_UNSTORED
        state.lost.extend(str(record.get("nodeid")) for record, _ in state.unstored[:overflow])
        del state.unstored[:overflow]
    if state.store_problem is not None and time.monotonic() < state.retry_at:
        return 0
    pending = state.unstored
    try:
        if state.store_failures:
            stored = store.test_keys(state.run_id)
            pending = [kept for kept in pending if _key(kept[0]) not in stored]
            state.unstored = pending
        store.submit_tests(state.run_id, [r for r, _ in pending], [t for _, t in pending], journal)
    except StoreTimeoutError:
        raise
    except Exception as exc:
        if store.kind == "sqlite" and refused_by_database(exc):
            return _write_one_by_one(state, store, pending)
        note_store_failure(state, exc)
        return 0
    return len(pending)


def refused_by_database(exc: BaseException) -> bool:
    """Whether *exc* is the database refusing a record (a constraint, a value it cannot
    hold), not the store failing: writing the same record again would fail again."""
    return isinstance(
        exc,
        (sqlite3.IntegrityError, sqlite3.DataError, OverflowError),
    )


def _write_one_by_one(
    state: KariState, store: Store, pending: list[tuple[dict[str, Any], str]]
) -> int:
    """Write each kept test alone (SQLite commits each as it is written), so that a record
    the database refuses costs no other test its row; how many were written. A refused test
    is set aside with a diagnostic naming it and the database's reason, never retried."""
    assert state.run_id is not None
    written: list[tuple[dict[str, Any], str]] = []
    for index, kept in enumerate(pending):
        try:
            store.submit_tests(state.run_id, [kept[0]], [kept[1]])
        except StoreTimeoutError:
            raise
        except Exception as exc:
            if not refused_by_database(exc):
                state.unstored = [*written, *pending[index:]]
                note_store_failure(state, exc)
                return 0  # the written ones are skipped by the retry (the store holds them)
            _set_aside(state, store, kept[0], f"{type(exc).__name__}: {exc}")
            continue
        written.append(kept)
    state.unstored = written
    return len(written)


def _set_aside(state: KariState, store: Store, record: dict[str, Any], reason: str) -> None:
    """A test whose row the database refused: named, with the reason, never written again."""
    state.diagnose(
        f"store {store.label}: the database refused the record of test"
        f" {str(record.get('nodeid'))!r} ({reason}); the test is in the run's other outputs,"
        " not in the store; every other test is stored"
    )


def _key(record: dict[str, Any]) -> tuple[Any, Any]:
    return record.get("nodeid"), record.get("finished_at")


def confirm_batch(state: KariState, store: Store, sent: int, timeout: float | None) -> None:
    """Wait (*timeout* seconds at most) for the commit of the first *sent* kept tests, which
    :func:`write_batch` sent; they are then no longer kept. A store that failed keeps them for
    a retry; one that did not answer in time raises
    :class:`~pytest_kari_debug.exceptions.StoreTimeoutError`. A test whose row the server
    refused (each test is a transaction of its own) is set aside, as on SQLite
    (:func:`_write_one_by_one`): the others are committed."""
    try:
        store.settle_writes(timeout)
    except StoreTimeoutError:
        raise
    except RefusedWrites as exc:
        for index, reason in sorted(exc.refused.items()):
            if index < sent:
                _set_aside(state, store, state.unstored[index][0], reason)
    except Exception as exc:
        note_store_failure(state, exc)
        return
    del state.unstored[:sent]
    state.store_failures = 0
    state.retry_at = 0.0


def note_store_failure(state: KariState, exc: Exception) -> None:
    """Count a failed write to the store; :func:`settle` reports the first at the end."""
    if state.store_problem is None:
        state.store_problem = f"{type(exc).__name__}: {exc}"
    state.failed_outputs.setdefault("store", state.store_problem)
    delay = RETRY_DELAYS_S[min(state.store_failures, len(RETRY_DELAYS_S) - 1)]
    state.store_failures += 1
    state.retry_at = time.monotonic() + delay


def store_failing(state: KariState) -> bool:
    """Whether the last write to the store failed (and no test write has succeeded since)."""
    return state.store_failures > 0


def settle(state: KariState, store: Store) -> None:
    """At the end of the run: one last try, then one diagnostic if the store failed.

    The diagnostic names the store (password redacted), the problem and exactly which
    tests are not in it. A store still failing is dropped for the rest of the run (its
    later steps would only repeat the problem).
    """
    if state.store_problem is None:
        return
    if state.unstored and not state.store_hung:
        state.retry_at = 0.0
        with contextlib.suppress(StoreTimeoutError):
            sent = write_batch(state, store, [])
            if sent:
                confirm_batch(state, store, sent, None)
    missing = [*state.lost, *(str(record.get("nodeid")) for record, _ in state.unstored)]
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        shown = ", ".join(missing[:10]) + more
        state.diagnose(
            f"store {store.label}: {state.store_problem}; {len(missing)} test(s) not stored:"
            f" {shown} (the --kari-json document holds them: `kari-debug import` adds them"
            " later)"
        )
    elif state.store_hung:
        state.diagnose(
            f"store {store.label}: {state.store_problem}; every test was stored, the end of"
            " the run is not"
        )
    else:
        state.diagnose(
            f"store {store.label} failed during the run ({state.store_problem}); every test"
            " was written once it answered again"
        )
        return
    with contextlib.suppress(Exception):  # closing a connection to a server that went away
        store.close()
    state.store = None


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    """After the run is closed in the store: prune it to the retention limits, in bounded time."""
    result = yield
    config = session.config
    state = config.stash.get(STATE, None)
    settings = config.stash.get(_STORE_SETTINGS, None)
    if state is None or settings is None or state.is_worker or state.store is None:
        return result
    if not (settings.retention_runs or settings.retention_days):
        return result
    with guard(config, "pruning the store"):
        store = state.store
        pruned = store.prune(
            keep_runs=settings.retention_runs,
            older_than_days=settings.retention_days,
            protect=[state.run_id] if state.run_id is not None else [],
            budget_s=RETENTION_BUDGET_S,
        )
        if pruned.runs:
            store.reclaim_space(RECLAIM_PAGES)
            more = "" if pruned.complete else " (more at the next run)"
            state.outputs["retention"] = (
                f"removed {len(pruned.runs)} old run(s), {pruned.tests} test(s){more}"
            )
    return result


def store_label(state: KariState) -> str:
    """The run's store as it may be printed (a URL's password redacted)."""
    if state.store is not None:
        return state.store.label
    return redact(state.settings.store_path)
