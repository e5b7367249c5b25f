"""Structured logging in the plugin: stdlib capture per test, per-test counts, logs.csv."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest

from ..context import current_session
from ..journal import RunRecords
from ..logger import LEVELS, KariLogHandler
from ..model import DROP_MARKER_ORIGIN, Kind, component_of, kept_and_dropped
from ..summaries import RunSections
from . import unowned
from .state import STATE, add_test_steps, guard, internal_error, write_run_csv

_HANDLER = pytest.StashKey[KariLogHandler]()
_ATTACHED = pytest.StashKey[list[logging.Logger]]()
#: Key of this feature in ``record["extra"]`` and in the run's sections.
KEY = "logging"
CSV_NAME = "logs.csv"


def pytest_configure(config: pytest.Config) -> None:
    """Make the run's stdlib capture handler (attached while tests run, as pytest's is)."""
    handler = config.stash[_HANDLER] = KariLogHandler()
    config.stash[_ATTACHED] = []
    unowned.install(config, handler)


def _attach(handler: KariLogHandler, attached: list[logging.Logger]) -> None:
    """Add *handler* to the root logger and to every logger that does not propagate.

    The same loggers pytest's own capture attaches to, so a record ``caplog`` sees is seen
    here too; levels, filters and the other handlers stay as the user configured them.
    """
    for logger in _capturing_loggers():
        if handler not in logger.handlers:
            logger.addHandler(handler)
            if logger not in attached:
                attached.append(logger)


_LOGGERS: dict[str, Any] = {"known": -1, "loggers": []}


def _capturing_loggers() -> list[logging.Logger]:
    """The root logger and the loggers that do not propagate to it.

    Rescanned only when loggers were added since the last scan: walking every logger of
    every library once per test would cost more than the capture itself.
    """
    root = logging.getLogger()
    known = len(root.manager.loggerDict)
    if known != _LOGGERS["known"]:
        _LOGGERS["known"] = known
        _LOGGERS["loggers"] = [
            logger
            for logger in list(root.manager.loggerDict.values())
            if isinstance(logger, logging.Logger) and not logger.propagate
        ]
    # propagate may change at any time: keep only those still detached from the root.
    return [root, *(logger for logger in _LOGGERS["loggers"] if not logger.propagate)]


def _detach(handler: KariLogHandler, attached: list[logging.Logger]) -> None:
    handler.fallback = None
    while attached:
        attached.pop().removeHandler(handler)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Capture stdlib records in runs where some test has a debug session."""
    config = session.config
    add_test_steps(
        config, "kari-debug-log-capture", setting_up=_capture_test, recording=_count_logs
    )
    handler = config.stash.get(_HANDLER, None)
    if handler is not None:
        strays = unowned.StrayThreads(handler)
        add_test_steps(
            config,
            "kari-debug-stray-threads",
            calling=strays.note_threads,
            torn_down=strays.note_strays,
        )


def _capture_test(item: pytest.Item) -> None:
    """Copy stdlib log records into the test's debug session from its setup on.

    The core's wrapper has started the session by now; the handler stays attached from the
    first test to the end of the run (records outside a session are dropped at once), and is
    attached again where a test removed it or a new logger stopped propagating.
    """
    handler = item.config.stash.get(_HANDLER, None)
    if handler is None:
        return
    try:  # (a try, not a guard: this runs at every test)
        session = current_session()
        handler.fallback = session  # threads started without the test's context
        if session is not None:
            root = logging.getLogger()
            if (
                handler not in root.handlers
                or len(root.manager.loggerDict) != _LOGGERS["known"]
                or len(_LOGGERS["loggers"]) > 0
            ):
                _attach(handler, item.config.stash[_ATTACHED])
    except Exception as exc:
        internal_error(item.config, "starting stdlib log capture", exc)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Detach the handler once the tests are over."""
    handler = session.config.stash.get(_HANDLER, None)
    if handler is not None:
        _detach(handler, session.config.stash.get(_ATTACHED, []))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Never leave the handler behind (a run interrupted inside a test)."""
    handler = config.stash.get(_HANDLER, None)
    if handler is not None:
        _detach(handler, config.stash.get(_ATTACHED, []))


def _count_logs(item: pytest.Item, record: dict[str, Any]) -> None:
    """Put the test's log counts per level and its drops under ``extra["logging"]``."""
    try:  # (a try, not a guard: this runs at every test)
        found = kept_and_dropped(record, Kind.LOGGING)
        if found is None:
            return
        entries, dropped = found
        counts = dict(_NO_COUNTS)
        total = 0
        for entry in entries:
            if entry.get("origin") != DROP_MARKER_ORIGIN:
                level = str(entry.get("level"))
                counts[level] = counts.get(level, 0) + 1
                total += 1
        record.setdefault("extra", {})[KEY] = {
            "counts": counts,
            "records": total,
            "dropped": dropped,
        }
    except Exception as exc:
        internal_error(item.config, "counting the test's log records", exc)


_NO_COUNTS = dict.fromkeys(LEVELS, 0)


def run_log_records(
    tests: Iterable[dict[str, Any]], limit: int | None = None
) -> Iterator[Mapping[str, Any]]:
    """Every test's log records in finishing order, a drop marker after a test that dropped."""
    from ..exporters.logs_export import drop_marker  # only a run asked for logs.csv

    for test in tests:
        data = component_of(test, Kind.LOGGING)
        if data is None:
            continue
        records = data.records
        yield from records
        dropped = data.dropped
        if dropped and not any(r.get("origin") == DROP_MARKER_ORIGIN for r in records):
            yield (
                drop_marker(
                    dropped,
                    extension_id=str(test.get("extension_id") or ""),
                    session_id=test.get("session_id"),
                    test=test.get("nodeid"),
                    limit=limit,
                    ts=records[-1].get("ts") if records else test.get("finished_at"),
                )
            )


def pytest_kari_debug_run_finished(
    config: pytest.Config, tests: RunRecords, sections: dict[str, Any], built: RunSections
) -> None:
    """Write ``logs.csv`` under ``--kari-csv``; add the run's log counts to its sections and
    the records of threads that outlived their test."""
    state = config.stash[STATE]
    with guard(config, "summarising unowned records"):
        unowned.finish(config, state, sections)
    with guard(config, "summarising the run's logs"):
        limit = state.settings.configuration.max_log_entries
        counts, dropped = built.logs.by_level, built.logs.dropped
        total = sum(counts.values())
        if total or dropped:  # a run without log records gets no section
            sections[KEY] = {
                "records": total,
                "dropped": dropped,
                "by_level": {level: counts.get(level, 0) for level in LEVELS},
            }
            state.summary_lines.append(
                f"logs: {total} records ({counts.get('ERROR', 0) + counts.get('CRITICAL', 0)}"
                f" error, {counts.get('WARNING', 0)} warning), {dropped} dropped"
            )
    if state.settings.csv_dir is not None:
        with guard(config, "writing logs.csv"):
            from ..exporters.logs_export import log_rows

            rows, columns = log_rows(run_log_records(tests, limit))
            write_run_csv(state, CSV_NAME, rows, columns, output=CSV_NAME)
