"""The run's records on the controller: each finished test kept (journal, the store's
committer), the run's metadata, the store opened at the first test, and failure text as it is
kept (cut, writable, scrubbed)."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
import uuid
from typing import Any

import pytest

from ..backends import redact_urls
from ..exceptions import StoreError
from ..exporters.json_export import add_dropped
from ..journal import MemoryRecords, RunJournal, RunRecords, journal_dir, recover_journals
from ..model import SCHEMA_VERSION
from ..scrub import scrubber_for
from ..storage import Store, dumps_record
from ..summaries import RunDigest
from ..values import writable_text
from ..version import plugin_version
from ..views import run_error_groups
from . import SESSION_STARTED, committer
from .committer import COMMITTER, StoreCommitter, committer_of
from .githead import git_head
from .progress import RunProgress
from .sharing import begin_run, run_uuid
from .state import STATE, HookObject, KariState, guard, internal_error


def scrubbed(config: pytest.Config, value: Any) -> Any:
    """Failure details and captured output with every text made writable and scrubbed."""
    if isinstance(value, str):
        return kept_text(config, value)
    if isinstance(value, dict):
        return {key: scrubbed(config, item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrubbed(config, item) for item in value]
    return value


def kept_text(config: pytest.Config, value: str, limit: int = 50_000) -> str:
    """Failure text as it is kept: cut, writable, its secrets scrubbed."""
    if len(value) > limit:
        value = value[:limit] + f"\n[... {len(value) - limit} more characters]"
    patterns = config.stash[STATE].settings.configuration.redact_patterns
    return scrubber_for(patterns).scrub_once(writable_text(value))


class RunRecorder(HookObject):
    """Keeps each finished test's record (registered on the controller, or without xdist), and
    tells the run's progress that the test is over."""

    def __init__(self, config: pytest.Config, progress: RunProgress) -> None:
        self.config = config
        self.progress = progress

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each finished test's record (and a crashed xdist worker's test's)."""
        when = report.when
        if when == "setup" or when == "call":
            return
        self.progress.finished(report.nodeid)
        config = self.config
        state = config.stash[STATE]
        try:  # (a try, not a guard: this runs at every test)
            record = getattr(report, "kari_debug", None)
            if when == "teardown" and isinstance(record, dict):
                for message in record.pop("diagnostics", ()):
                    state.diagnostics.add(message)  # the worker warned
                # pytest keeps every report to the end: the record lives on as text only.
                del report.kari_debug
                keep(config, state, record)
            elif when != "teardown" and report.failed:
                keep(config, state, crash_record(config, report, state))
        except Exception as exc:
            internal_error(config, "recording a test", exc)


def crash_record(
    config: pytest.Config, report: pytest.TestReport, state: KariState
) -> dict[str, Any]:
    """A record for a test whose worker died under it (xdist reports it with when='???')."""
    return {
        "record_version": SCHEMA_VERSION,
        "nodeid": report.nodeid,
        "extension_id": state.settings.extension_id or "unknown",
        "outcome": "failed",
        "phases": {},
        "duration_ms": 0.0,
        "started_at": None,
        "finished_at": time.time(),
        "session_id": None,
        "worker": getattr(report, "node", None) and str(getattr(report.node, "gateway", "")),
        "longrepr": kept_text(config, report.longreprtext),
        "crashed": True,
        "collected_data": {},
        "extra": {},
    }


def keep(config: pytest.Config, state: KariState, record: dict[str, Any]) -> None:
    worker = record.get("worker")
    if worker is not None:
        if not isinstance(worker, str):
            worker = record["worker"] = str(worker)
        state.workers.add(worker)
    outcome = str(record.get("outcome"))
    state.outcomes[outcome] = state.outcomes.get(outcome, 0) + 1
    overhead = record.get("kari_overhead_ms")
    if isinstance(overhead, (int, float)):
        state.kari_overhead_ms += overhead
        state.overhead_tests += 1
    state.extensions.add(str(record.get("extension_id")))
    record, text, replaced = dumps_record(record)
    if replaced:
        state.diagnose(
            f"test {record.get('nodeid')!r}: {len(replaced)} part(s) of its record could not"
            f" be kept and were replaced: {'; '.join(replaced[:5])}"
        )
    state.recorded += 1
    if state.settings.json_path is not None:  # read by the JSON's summary alone
        add_dropped(state.dropped, record)
    journal = state.journal
    if journal is None:
        journal = _open_journal(config, state)
    try:
        journal.append(text)
    except OSError as exc:
        state.diagnose(f"could not append to the run's journal, records kept in memory: {exc}")
        if isinstance(journal, RunJournal):  # its complete lines stay while the store lags
            journal.close()
            state.closed_journals.append(journal)
        state.journal = MemoryRecords()
        state.journal.transforms = journal.transforms
        for old in journal.texts():
            state.journal.append(old.decode("utf-8", "surrogatepass"))
        state.journal.append(text)
    if state.settings.store_path is not None and not state.store_failed:
        # Committed before the next test's call phase (the first opens the store and its run).
        committer = config.stash.get(COMMITTER, None)
        if committer is None:
            committer = committer_for(config, state)
        committer.add_test(record, text)
    try:
        digest = state.digest
        if digest is None:
            digest = _digest(state)
        digest.add(record)
    except Exception as exc:
        internal_error(config, "summarising the run's tests", exc)


def _digest(state: KariState) -> RunDigest:
    """The run's sections, built as its tests are kept."""
    if state.digest is None:
        settings = state.settings
        state.digest = RunDigest(settings.configuration.slow_span_ms if settings.trace else None)
    return state.digest


def committer_for(config: pytest.Config, state: KariState) -> StoreCommitter:
    return committer_of(config, state, lambda: open_store(config, state))


def _open_journal(config: pytest.Config, state: KariState) -> RunRecords:
    """The run's journal, made at its first test: next to the store (a killed run's journal
    is imported by the next run), in a temporary folder without one, in memory without disk."""
    if state.journal is not None:
        return state.journal
    with guard(config, "reading run metadata"):
        complete_run_meta(config, state)
    store_path = state.settings.store_path
    header = {k: v for k, v in state.run.items() if k != "id"}
    folders = [None] if store_path is None else [journal_dir(store_path, config.rootpath), None]
    for folder in folders:
        try:
            state.journal = RunJournal(folder, header)
            return state.journal
        except OSError as exc:
            problem = exc
    state.diagnose(f"could not create the run's journal, records kept in memory: {problem}")
    state.journal = MemoryRecords()
    return state.journal


def run_records(state: KariState) -> RunRecords:
    """Every finished test's record, read one at a time from the run's journal."""
    return state.journal if state.journal is not None else MemoryRecords()


def run_meta(config: pytest.Config) -> dict[str, Any]:
    """What is known of the run when it starts (the rest when a test is recorded)."""
    return {
        "uuid": run_uuid(config) or uuid.uuid4().hex,
        "id": None,
        "pid": os.getpid(),
        "started_at": config.stash.get(SESSION_STARTED, None) or time.time(),
        "rootdir": str(config.rootpath),
        # --kari-store=postgresql://user:PASSWORD@...: the password stays out of every output.
        "args": [redact_urls(str(arg)) for arg in config.invocation_params.args],
    }


def complete_run_meta(config: pytest.Config, state: KariState) -> None:
    """Add the git commit, host and versions: asked only by a run that records a test."""
    if "host" in state.run:
        return
    commit, branch = git_head(config)
    state.run.update(
        git_commit=commit,
        git_branch=branch,
        host=socket.gethostname(),
        python_version=platform.python_version(),
        pytest_version=pytest.__version__,
        plugin_version=plugin_version(),
        platform=sys.platform,
    )


def open_store(config: pytest.Config, state: KariState) -> Store | None:
    if state.store is not None or state.store_failed or state.settings.store_path is None:
        return state.store
    path = state.settings.store_path
    try:
        # Its own journal is the run's to commit; killed runs' are recovered just below.
        state.store = Store(path, bound_s=committer.COMMIT_WAIT_S, import_journals=False)
        folder = journal_dir(path, config.rootpath)
        recovered = recover_journals(state.store, folder, error_groups=run_error_groups)
        if recovered:
            state.diagnose(
                f"store: imported the journal of {len(recovered)} killed run(s)"
                f" (run {', '.join(map(str, recovered))}), marked crashed"
            )
        complete_run_meta(config, state)
        begin_run(config, state, state.store)
    except StoreError as exc:
        state.store_failed = True
        state.store = None
        state.failed_outputs["store"] = str(exc)
        state.diagnose(
            f"store disabled: {exc}; no test of this run is stored (`kari-debug import`"
            " adds a --kari-json document later)"
        )
    return state.store
