"""Records of stdlib ``logging`` (and structlog through it) filed with the session's logger."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.context import CURRENT_SESSION
from pytest_kari_debug.logger import REDACTED, ExtensionLogger, KariLogHandler
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.values import bounded_call


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """A fresh stdlib logger at DEBUG that does not propagate to pytest's handlers.

    Made lazily on first attribute use, inside the test's call phase, so that pytest's
    capture (which also attaches to non-propagating loggers existing at phase start) stays
    out of it.
    """
    made: list[logging.Logger] = []

    class Lazy:
        def __getattr__(self, name: str) -> Any:
            if not made:
                logger = logging.getLogger(f"kari_test_app.{uuid.uuid4().hex}")
                logger.setLevel(logging.DEBUG)
                logger.propagate = False
                made.append(logger)
            return getattr(made[0], name)

    yield Lazy()  # type: ignore[misc]
    for logger in made:
        for handler in list(logger.handlers):
            if isinstance(handler, KariLogHandler):
                logger.removeHandler(handler)


def test_handler_files_records_with_the_current_session(
    manager: ExtensionDebugManager, app_logger: logging.Logger
) -> None:
    """Inside a session a stdlib record is kept with its extra fields, redacted."""
    handler = KariLogHandler()
    app_logger.addHandler(handler)
    app_logger.info("before any session")
    logger = manager.get_logger()
    with manager.debug_session(name="t") as session_id, logger.correlation_context("c-1"):
        app_logger.warning(
            "user %s logged in", "bob", extra={"user": "bob", "api_key": "k", "n": 2}
        )
    records = logger.get_logs()
    assert len(records) == 1
    record = records[0]
    assert record.message == "user bob logged in"
    assert (record.level, record.origin) == ("WARNING", "stdlib")
    assert record.name.startswith("kari_test_app.")
    assert record.fields == {"user": "bob", "api_key": REDACTED, "n": 2}
    assert record.session_id == session_id
    assert record.correlation_id == "c-1"
    assert record.extension_id == "test-ext"


class _Formatting(logging.Handler):
    """Formats each record (sets ``record.message``, as pytest's handlers do) before ours."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


@pytest.mark.parametrize("formatted_first", [False, True])
@pytest.mark.parametrize("extra", [{}, {"user": "bob"}, {"user": "bob", "token": "t"}])
def test_extra_fields_whatever_ran_before(
    app_logger: logging.Logger, formatted_first: bool, extra: dict[str, str]
) -> None:
    """The fields are the ``extra`` keys, whether or not a handler formatted the record
    first (one attribute past LogRecord's own: a ``message``, or the one extra key)."""
    logger = ExtensionLogger("ext", DebugConfiguration())
    formatting = _Formatting()
    if formatted_first:
        app_logger.addHandler(formatting)
    with logger.capture_stdlib(app_logger.name):
        app_logger.warning("hi %s", 1, extra=extra)
    app_logger.removeHandler(formatting)
    expected = {key: REDACTED if key == "token" else value for key, value in extra.items()}
    assert [(r.message, r.fields) for r in logger.get_logs()] == [("hi 1", expected)]


def test_records_go_to_the_logger_of_their_own_session(app_logger: logging.Logger) -> None:
    """Two managers' sessions each receive only the stdlib records made inside them."""
    first = ExtensionDebugManager("first-ext")
    second = ExtensionDebugManager("second-ext")
    app_logger.addHandler(KariLogHandler())
    with first.debug_session():
        app_logger.info("for first")
    with second.debug_session():
        app_logger.info("for second")
    assert [r.message for r in first.get_logger().get_logs()] == ["for first"]
    assert [r.message for r in second.get_logger().get_logs()] == ["for second"]


def test_fallback_session_catches_context_less_records(app_logger: logging.Logger) -> None:
    """With a fallback session, records made outside any session context are attributed."""
    manager = ExtensionDebugManager("fallback-ext")
    handler = KariLogHandler()
    app_logger.addHandler(handler)
    session_id = manager.start_debug_session()
    handler.fallback = manager.active_sessions()[0]
    token = CURRENT_SESSION.set(None)  # as in a thread started without the test's context
    try:
        app_logger.info("from a bare thread")
        handler.fallback = None
        app_logger.info("no session, no fallback")
    finally:
        CURRENT_SESSION.reset(token)
    stopped = manager.stop_debug_session(session_id)
    assert [r["message"] for r in stopped.collected_data["logging"]["records"]] == [
        "from a bare thread"
    ]


def test_exc_info_levels_and_bad_format_args(app_logger: logging.Logger) -> None:
    """Exceptions are formatted, custom levels map down, a broken %-format never raises."""
    logger = ExtensionLogger("ext", DebugConfiguration())
    with logger.capture_stdlib(app_logger.name):
        try:
            raise ValueError("bad value")
        except ValueError:
            app_logger.exception("it failed")
        app_logger.log(25, "between info and warning")
        app_logger.info("%d items", "not-a-number")
        app_logger.debug("debug too")
    records = {r.message: r for r in logger.get_logs()}
    failed = records["it failed"]
    assert failed.level == "ERROR"
    assert failed.exception is not None
    assert failed.exception["type"] == "ValueError"
    assert "bad value" in failed.exception["traceback"]
    assert records["between info and warning"].level == "INFO"
    broken = next(m for m in records if m.startswith("'%d items'"))
    assert "formatting failed: TypeError" in broken
    assert "debug too" in records
    assert not app_logger.handlers  # the capture block removed its handler


def test_log_level_applies_to_stdlib_records(app_logger: logging.Logger) -> None:
    """log_level=ERROR keeps only stdlib records from ERROR up."""
    logger = ExtensionLogger("ext", DebugConfiguration(log_level="ERROR"))
    with logger.capture_stdlib(app_logger.name):
        app_logger.warning("dropped")
        app_logger.error("kept")
    assert [r.message for r in logger.get_logs()] == ["kept"]


def test_stdlib_errors_reach_the_error_tracker(app_logger: logging.Logger) -> None:
    """logging.exception inside a session becomes an error record as well."""
    manager = ExtensionDebugManager("errors-ext")
    app_logger.addHandler(KariLogHandler())
    with manager.debug_session():
        try:
            raise ConnectionError("refused")
        except ConnectionError:
            app_logger.exception("could not connect")
    errors = manager.get_error_tracker().records.snapshot()
    assert [(e.error_type, e.context["origin"]) for e in errors] == [("ConnectionError", "stdlib")]


def test_a_repr_that_logs_does_not_recurse(app_logger: logging.Logger) -> None:
    """A field whose __repr__ logs through stdlib is converted without looping."""
    logger = ExtensionLogger("ext", DebugConfiguration())

    class Chatty:
        def __repr__(self) -> str:
            app_logger.info("repr called")
            return "<Chatty>"

    with logger.capture_stdlib(app_logger.name):
        app_logger.info("has chatty", extra={"obj": Chatty()})
    assert [(r.message, r.fields) for r in logger.get_logs()] == [
        ("has chatty", {"obj": "<Chatty>"})
    ]


def test_a_record_made_while_one_is_filed_is_not_captured(app_logger: logging.Logger) -> None:
    """A record logged on the filing thread itself (an error hook that logs through stdlib)
    is not captured; the thread's next record is, and helpers' records never are."""
    calls: list[str] = []

    def on_error(exc: BaseException, context: dict[str, Any]) -> None:
        calls.append(context["message"])
        app_logger.error("hook saw %s", exc)

    logger = ExtensionLogger("ext", DebugConfiguration(), on_error=on_error)
    with logger.capture_stdlib(app_logger.name):
        try:
            raise ValueError("boom")
        except ValueError:
            app_logger.exception("failed")
        app_logger.info("after")
        done = threading.Event()
        bounded_call(lambda _: (app_logger.info("on a helper"), done.set()), None)
        assert done.wait(5)
    assert calls == ["failed"]
    assert [r.message for r in reversed(logger.get_logs())] == ["failed", "after"]


def test_structlog_routes_through_stdlib(app_logger: logging.Logger) -> None:
    """structlog configured with the stdlib factory and render_to_log_kwargs is captured."""
    structlog = pytest.importorskip("structlog")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    try:
        logger = ExtensionLogger("ext", DebugConfiguration())
        with logger.capture_stdlib(app_logger.name):
            structlog.get_logger(app_logger.name).warning(
                "cache miss", key="forecast:oslo", password="p"
            )
    finally:
        structlog.reset_defaults()
    records = logger.get_logs()
    assert len(records) == 1
    fields: dict[str, Any] = records[0].fields
    assert records[0].message == "cache miss"
    assert fields["key"] == "forecast:oslo"
    assert fields["password"] == REDACTED


def test_a_stdlib_record_made_in_an_asyncio_task_names_the_task(
    manager: ExtensionDebugManager, app_logger: logging.Logger
) -> None:
    """A record logged inside a task carries the task's name; outside any loop, none."""
    import asyncio

    app_logger.addHandler(KariLogHandler())

    async def fetch() -> None:
        app_logger.warning("in a task")

    async def main() -> None:
        await asyncio.create_task(fetch(), name="fetcher-7")

    with manager.debug_session(name="t"):
        asyncio.run(main())
        app_logger.warning("outside")
    tasks = {r.message: r.task for r in manager.get_logger().get_logs()}
    assert tasks == {"in a task": "fetcher-7", "outside": None}
