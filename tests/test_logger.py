"""ExtensionLogger: records, levels, exceptions, context, helpers, redaction and safety."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import re
import threading
from typing import Any

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.logger import (
    MAX_TEXT_LENGTH,
    REDACTED,
    ExtensionLogger,
    LogRecord,
    current_correlation_id,
    iso_utc,
)
from pytest_kari_debug.manager import ExtensionDebugManager


def make_logger(**config: Any) -> ExtensionLogger:
    """A logger of its own with *config* applied."""
    return ExtensionLogger("ext", DebugConfiguration(**config))


def only(logger: ExtensionLogger) -> LogRecord:
    """The single record *logger* kept."""
    records = logger.get_logs()
    assert len(records) == 1, records
    return records[0]


# Records -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ts",
    [
        0, 0.0, 1.0000005, 0.9999995, -0.5, -1e-7, -1.0000005, 1796614290.1513686,
        1796614290.9999996, 1796614290.0000005, 1796614290.0000015, 253402300798.4,
        -62135596800, 1796614290, True,
    ],
)  # fmt: skip
def test_iso_utc_writes_what_datetime_writes(ts: float) -> None:
    """The cached-second text equals datetime's, microseconds rounded half to even (a
    fraction that rounds up to the next second included), on either side of the epoch."""
    moment = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert iso_utc(ts) == expected
    assert iso_utc(ts + 0.25) != expected  # the cached second is not reused for another
    assert iso_utc(ts) == expected


@pytest.mark.parametrize("ts", [math.nan, math.inf, -math.inf, 1e20, -1e20, 10**30, "x", None])
def test_iso_utc_of_a_time_datetime_cannot_hold_is_empty(ts: Any) -> None:
    iso_utc(1796614290.5)  # a second in the cache
    assert iso_utc(ts) == ""


def test_iso_utc_from_many_threads_keeps_each_records_own_second() -> None:
    """Threads replacing the cached second under each other never mix two seconds."""
    stamps = [1796614290.0 + n + n / 1000.0 for n in range(50)]
    wanted = {
        ts: dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for ts in stamps
    }
    wrong: list[tuple[float, str]] = []

    def write() -> None:
        for _ in range(200):
            for ts in stamps:
                text = iso_utc(ts)
                if text != wanted[ts]:
                    wrong.append((ts, text))

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_a_records_dict_holds_what_its_attributes_say(manager: ExtensionDebugManager) -> None:
    """to_dict (one unpacking of the record) gives each key the value of its attribute."""
    logger = manager.get_logger()
    with (
        manager.debug_session(name="t") as session_id,
        logger.user_context("u-1", "t-1"),
        logger.correlation_context("c-1"),
    ):
        try:
            raise KeyError("k")
        except KeyError:
            logger.error("failed", n=1)
    record = only(logger)
    data = record.to_dict()
    assert data == {key: getattr(record, key) for key in data}
    assert list(data) == [
        "ts", "timestamp", "level", "message", "name", "extension_id", "session_id", "test",
        "correlation_id", "user_id", "tenant_id", "thread", "task", "fields", "exception",
        "origin", "seq",
    ]  # fmt: skip
    assert (data["session_id"], data["test"], data["user_id"]) == (session_id, "t", "u-1")
    assert data["exception"]["type"] == "KeyError"


def test_record_carries_every_attribute(manager: ExtensionDebugManager) -> None:
    """A record holds UTC time, level, message, fields, names, ids, thread and no task."""
    logger = manager.get_logger()
    with manager.debug_session(name="tests/test_x.py::test_a") as session_id:
        logger.info("Extension started", version="1.0.0", n=3)
    data = only(logger).to_dict()
    assert data["level"] == "INFO"
    assert data["message"] == "Extension started"
    assert data["fields"] == {"version": "1.0.0", "n": 3}
    assert data["name"] == "kari.test-ext"
    assert data["extension_id"] == "test-ext"
    assert data["session_id"] == session_id
    assert data["test"] == "tests/test_x.py::test_a"
    assert data["thread"] == "MainThread"
    assert data["task"] is None
    assert data["origin"] == "kari"
    assert data["timestamp"].endswith("Z")
    parsed = dt.datetime.strptime(data["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(parsed.replace(tzinfo=dt.timezone.utc).timestamp() - data["ts"]) < 1e-3
    json.dumps(data, allow_nan=False)


def test_each_level_method_records_its_level() -> None:
    """debug/info/warning/error/critical record at their own level, newest first."""
    logger = make_logger()
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    logger.critical("c")
    logger.log("warning", "via log")
    assert [(r.level, r.message) for r in logger.get_logs()] == [
        ("WARNING", "via log"),
        ("CRITICAL", "c"),
        ("ERROR", "e"),
        ("WARNING", "w"),
        ("INFO", "i"),
        ("DEBUG", "d"),
    ]


def test_log_level_sets_the_lowest_level_kept() -> None:
    """log_level=WARNING drops DEBUG and INFO; set_level changes it later."""
    logger = make_logger(log_level="WARNING")
    logger.debug("no")
    logger.info("no")
    logger.warning("yes")
    assert [r.message for r in logger.get_logs()] == ["yes"]
    assert not logger.is_enabled_for("info")
    logger.set_level("debug")
    logger.debug("now")
    assert logger.get_logs()[0].message == "now"
    with pytest.raises(ConfigurationError, match="unknown log level 'LOUD'"):
        logger.set_level("LOUD")


def test_disabled_logger_keeps_nothing() -> None:
    """A logger switched off accepts every call and keeps no record."""
    logger = ExtensionLogger("ext", DebugConfiguration(), enabled=False)
    logger.critical("dropped", a=1)
    logger.log_api_request("GET", "http://x", 200, 1.0)
    assert logger.get_logs() == []
    logger.enabled = True
    logger.info("kept")
    assert len(logger.get_logs()) == 1


def test_exc_info_true_attaches_the_exception() -> None:
    """exc_info=True at any level records type, message and formatted traceback."""
    logger = make_logger()
    try:
        raise KeyError("missing-key")
    except KeyError:
        logger.info("handled", exc_info=True)
    exception = only(logger).exception
    assert exception is not None
    assert exception["type"] == "KeyError"
    assert exception["message"] == "'missing-key'"
    assert "Traceback (most recent call last)" in exception["traceback"]
    assert 'raise KeyError("missing-key")' in exception["traceback"]


def test_error_inside_except_attaches_the_exception() -> None:
    """error(), critical() and exception() inside ``except`` attach it; info() does not."""
    logger = make_logger()

    class PluginFailure(Exception):
        pass

    try:
        raise PluginFailure("plugin broke")
    except PluginFailure:
        logger.info("no exception here")
        logger.error("failed")
        logger.critical("very failed")
        logger.exception("as stdlib does")
        logger.error("suppressed", exc_info=False)
    by_message = {r.message: r.exception for r in logger.get_logs()}
    assert by_message["no exception here"] is None
    assert by_message["suppressed"] is None
    for message in ("failed", "very failed", "as stdlib does"):
        exception = by_message[message]
        assert exception is not None
        assert exception["type"].endswith("PluginFailure")
        assert exception["message"] == "plugin broke"
    logger.error("outside except")
    assert logger.get_logs()[0].exception is None


def test_exception_instance_and_chain_are_formatted() -> None:
    """An exception object as exc_info gives its chained traceback."""
    logger = make_logger()
    try:
        try:
            raise ValueError("inner")
        except ValueError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        caught = exc
    logger.warning("chained", exc_info=caught)
    traceback_text = only(logger).exception["traceback"]  # type: ignore[index]
    assert "ValueError: inner" in traceback_text
    assert "RuntimeError: outer" in traceback_text


def test_error_records_with_exceptions_reach_the_error_tracker(
    manager: ExtensionDebugManager,
) -> None:
    """The manager wires error records that carry an exception to ErrorTracker."""
    logger = manager.get_logger()
    with manager.debug_session():
        with logger.correlation_context("req-9"):
            try:
                raise TimeoutError("upstream timed out")
            except TimeoutError:
                logger.error("request failed")
        logger.error("no exception, not an error record")
    errors = manager.get_error_tracker().records.snapshot()
    assert [e.error_type for e in errors] == ["TimeoutError"]
    assert errors[0].context["correlation_id"] == "req-9"
    assert errors[0].context["source"] == "log"


def test_failing_on_error_hook_never_raises() -> None:
    """An on_error hook that raises becomes a diagnostic; the record is kept."""

    def hook(exc: BaseException, context: dict[str, Any]) -> None:
        raise RuntimeError("hook broke")

    logger = ExtensionLogger("ext", DebugConfiguration(), on_error=hook)
    try:
        raise ValueError("x")
    except ValueError:
        logger.error("kept")
    assert only(logger).message == "kept"
    assert any("hook broke" in d for d in logger.diagnostics)


# Context -------------------------------------------------------------------------------
def test_correlation_context_generates_and_restores() -> None:
    """A fresh uuid4 hex when none is given; nested blocks restore the outer value on exit."""
    logger = make_logger()
    with logger.correlation_context() as generated:
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        with logger.correlation_context("inner"):
            logger.info("in inner")
        logger.info("back in outer")
    logger.info("outside")
    got = {r.message: r.correlation_id for r in logger.get_logs()}
    assert got == {"in inner": "inner", "back in outer": generated, "outside": None}


def test_user_context_nests_with_correlation() -> None:
    """User/tenant and correlation ids combine and restore independently."""
    logger = make_logger()
    with logger.correlation_context("req-123"):
        with logger.user_context("user123", "tenant456"):
            logger.info("Processing user request")
            with logger.user_context("other"):
                logger.info("other user")
        logger.info("no user")
    records = {r.message: (r.correlation_id, r.user_id, r.tenant_id) for r in logger.get_logs()}
    assert records == {
        "Processing user request": ("req-123", "user123", "tenant456"),
        "other user": ("req-123", "other", None),
        "no user": ("req-123", None, None),
    }


def test_context_managers_restore_on_exception() -> None:
    """An exception leaving the block still restores the previous context."""
    logger = make_logger()
    with pytest.raises(ZeroDivisionError), logger.correlation_context("doomed"):
        1 / 0  # noqa: B018
    assert current_correlation_id() is None


def test_context_rejects_bad_ids() -> None:
    """A non-string user id or correlation id is refused at the call."""
    logger = make_logger()
    with pytest.raises(ConfigurationError, match="user_id must be a non-empty string"):
        logger.user_context(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="correlation_id must be"):
        logger.correlation_context(7)  # type: ignore[arg-type]


def test_async_with_and_tasks_never_cross() -> None:
    """``async with`` works and 50 concurrent tasks each see only their own correlation id."""
    logger = make_logger(max_log_entries=100_000)

    async def handle(n: int) -> None:
        async with logger.correlation_context(f"req-{n}"):
            with logger.user_context(f"user-{n}", f"tenant-{n % 3}"):
                for step in range(20):
                    logger.info("step", n=n, step=step)
                    await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(handle(n) for n in range(50)), return_exceptions=False)

    asyncio.run(main())
    records = logger.get_logs()
    assert len(records) == 50 * 20
    for record in records:
        n = record.fields["n"]
        assert record.correlation_id == f"req-{n}"
        assert record.user_id == f"user-{n}"
        assert record.tenant_id == f"tenant-{n % 3}"
        assert record.task is not None
        assert record.task.startswith("Task-")
    assert len({r.task for r in records}) == 50


def test_threads_never_cross() -> None:
    """Each thread's correlation context is its own and the thread name is recorded."""
    logger = make_logger()
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        with logger.correlation_context(f"thread-{n}"):
            barrier.wait()
            logger.info("hello", n=n)

    threads = [threading.Thread(target=work, args=(n,), name=f"worker-{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for record in logger.get_logs():
        n = record.fields["n"]
        assert (record.correlation_id, record.thread) == (f"thread-{n}", f"worker-{n}")


# Structured helpers ----------------------------------------------------------------------
def test_helpers_make_typed_records_and_feed_metrics(manager: ExtensionDebugManager) -> None:
    """The three helpers record fixed events with typed fields and feed the metrics."""
    logger = manager.get_logger()
    logger.log_api_request("get", "https://api.example.com/v1", 200, 150.5)
    logger.log_api_request("POST", "https://api.example.com/v1", "503", 20)
    logger.log_database_query("select", "users", 25, 10)
    logger.log_plugin_execution("weather", "get_forecast", True, 200.0)
    logger.log_plugin_execution("weather", "get_forecast", False, 5)
    records = list(reversed(logger.get_logs()))
    assert [(r.fields["event"], r.level) for r in records] == [
        ("api_request", "INFO"),
        ("api_request", "ERROR"),
        ("database_query", "DEBUG"),
        ("plugin_execution", "INFO"),
        ("plugin_execution", "ERROR"),
    ]
    assert records[0].fields == {
        "event": "api_request",
        "method": "GET",
        "url": "https://api.example.com/v1",
        "status_code": 200,
        "duration_ms": 150.5,
        "success": True,
    }
    assert records[1].fields["status_code"] == 503
    assert records[2].fields == {
        "event": "database_query",
        "operation": "SELECT",
        "table": "users",
        "duration_ms": 25.0,
        "rows": 10,
    }
    assert records[4].fields["success"] is False
    assert isinstance(records[2].fields["duration_ms"], float)
    metrics = [(p.name, p.value) for p in manager.get_metrics_collector().get_metrics()]
    assert ("request_time", 150.5) in metrics
    assert ("request_time", 20.0) in metrics
    assert ("db_query_time", 25.0) in metrics
    assert ("plugin_execution_time", 200.0) in metrics
    errors = [p.labels for p in manager.get_metrics_collector().get_metrics("errors")]
    assert errors == [{"error_type": "http_503"}, {"error_type": "plugin_failure"}]


def test_helpers_reject_wrong_types() -> None:
    """A status that is not a number or a non-finite duration is refused by name."""
    logger = make_logger()
    with pytest.raises(ConfigurationError, match="status_code must be a whole number"):
        logger.log_api_request("GET", "http://x", "OK", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="duration_ms must be a finite number"):
        logger.log_database_query("SELECT", "t", math.nan)
    with pytest.raises(ConfigurationError, match="success must be True or False"):
        logger.log_plugin_execution("p", "a", "yes", 1.0)  # type: ignore[arg-type]


def test_helpers_redact_urls() -> None:
    """log_api_request drops the URL's userinfo and redacts secret query values."""
    logger = make_logger()
    logger.log_api_request("GET", "https://bob:hunter2@api.example.com/x?api_key=abc&q=1", 200, 1)
    record = only(logger)
    assert record.fields["url"] == f"https://api.example.com/x?api_key={REDACTED}&q=1"
    assert "hunter2" not in record.message
    assert "abc" not in record.message


# Redaction -----------------------------------------------------------------------------
def test_default_secret_fields_are_redacted_nested_and_any_case() -> None:
    """Every default name, in any case, at any depth, is replaced before storing."""
    logger = make_logger()
    logger.info(
        "login",
        Password="p1",
        passwd="p2",
        client_secret="p3",
        token="p4",
        API_KEY="p5",
        apikey="p6",
        Authorization="p7",
        cookie="p8",
        headers={"Set-Cookie": "p9", "X-Api-Key": "p10", "accept": "json"},
        attempts=[{"accessToken": "p11"}, {"ok": 1}],
        max_tokens=512,
        user="bob",
    )
    stored = logger.records.snapshot()[0]  # what the buffer holds, not a copy made on read
    text = json.dumps(stored.fields)
    for n in range(1, 12):
        assert f'"p{n}"' not in text
    assert stored.fields["headers"] == {
        "Set-Cookie": REDACTED,
        "X-Api-Key": REDACTED,
        "accept": "json",
    }
    assert stored.fields["attempts"] == [{"accessToken": REDACTED}, {"ok": 1}]
    assert stored.fields["max_tokens"] == 512
    assert stored.fields["user"] == "bob"


def test_redact_fields_is_configurable() -> None:
    """A custom redact_fields list replaces the default one."""
    logger = make_logger(redact_fields=("ssn",))
    logger.info("x", ssn="123", customer_ssn="456", password="visible")
    assert only(logger).fields == {"ssn": REDACTED, "customer_ssn": REDACTED, "password": "visible"}


def test_urls_in_fields_lose_userinfo_and_secret_query_values() -> None:
    """URLs anywhere in string fields are cleaned; other text is kept."""
    logger = make_logger()
    logger.info(
        "call",
        target="postgres://admin:s3cret@db:5432/app",
        note="see https://x.example/cb?code=1&token=t0k&state=ok#frag and more",
        nested={"u": ["https://u:p@h/?Password=pw"]},
    )
    fields = only(logger).fields
    assert fields["target"] == "postgres://db:5432/app"
    assert fields["note"] == (
        f"see https://x.example/cb?code=1&token={REDACTED}&state=ok#frag and more"
    )
    assert fields["nested"] == {"u": [f"https://h/?Password={REDACTED}"]}


# Safety --------------------------------------------------------------------------------
class Unprintable:
    """An object whose repr and str raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


def test_values_that_are_not_json_become_bounded_reprs() -> None:
    """Objects are kept as repr cut to max_repr_length; a failing __repr__ never raises."""
    logger = make_logger(max_repr_length=50)

    class Big:
        def __repr__(self) -> str:
            return "B" * 10_000

    logger.info(
        Unprintable(),
        big=Big(),
        broken=Unprintable(),
        when=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc),
        raw=b"\x00\xff",
        items={3, 1, 2},
        pair=(1, "a"),
        nan=math.nan,
        inf=-math.inf,
        number=2.5,
    )
    record = only(logger)
    assert record.message == "<unrepresentable Unprintable: str raised RuntimeError: no str>"
    placeholder = "<unrepresentable Unprintable: repr raised RuntimeError: no repr>"
    fields = record.fields
    assert fields["big"].startswith("B" * 50)
    assert "[truncated 9950 characters]" in fields["big"]
    assert fields["broken"] == placeholder
    assert fields["when"] == "2024-05-01T12:00:00+00:00"
    assert fields["raw"] == "b'\\x00\\xff'"
    assert fields["items"] == [1, 2, 3]
    assert fields["pair"] == [1, "a"]
    assert (fields["nan"], fields["inf"], fields["number"]) == ("nan", "-inf", 2.5)
    json.dumps(record.to_dict(), allow_nan=False)


def test_default_repr_length_is_2000() -> None:
    """Without configuration a repr is cut at 2,000 characters."""
    logger = make_logger()

    class Long:
        def __repr__(self) -> str:
            return "x" * 5000

    logger.info("m", value=Long())
    assert only(logger).fields["value"].startswith("x" * 2000 + "… [truncated 3000")


def test_cycles_and_deep_nesting_are_cut() -> None:
    """A cyclic dict/list and a 10,000-deep nesting are cut, never recursing without end."""
    logger = make_logger()
    cyclic: dict[str, Any] = {"name": "root"}
    cyclic["self"] = cyclic
    loop: list[Any] = [1]
    loop.append(loop)
    deep: list[Any] = []
    cursor = deep
    for _ in range(10_000):
        cursor.append([])
        cursor = cursor[0]
    logger.info("structures", cyclic=cyclic, loop=loop, deep=deep)
    fields = only(logger).fields
    assert fields["cyclic"] == {"name": "root", "self": "[cycle: dict]"}
    assert fields["loop"] == [1, "[cycle: list]"]
    text = json.dumps(fields["deep"])
    assert "[cut at depth" in text
    assert text.count("[") < 20


def test_huge_message_is_truncated_with_a_marker() -> None:
    """A 10 MB message is cut to MAX_TEXT_LENGTH with a visible marker."""
    logger = make_logger()
    logger.info("m" * 10_000_000, blob="b" * 10_000_000)
    record = only(logger)
    assert len(record.message) < MAX_TEXT_LENGTH + 100
    assert record.message.endswith(f"[truncated {10_000_000 - MAX_TEXT_LENGTH} characters]")
    assert len(record.fields["blob"]) < MAX_TEXT_LENGTH + 100


def test_wide_containers_are_bounded() -> None:
    """A field holding a million items keeps a bounded number and says how many were cut."""
    logger = make_logger()
    logger.info("wide", values=list(range(1_000_000)), table={str(i): i for i in range(5000)})
    fields = only(logger).fields
    assert len(fields["values"]) == 1001
    assert fields["values"][-1] == "[999000 more items not kept]"
    assert len(fields["table"]) == 1001


def test_hostile_text_is_kept_and_json_safe() -> None:
    """Newlines, NUL, ANSI escapes, HTML and lone surrogates survive as encodable text."""
    logger = make_logger()
    hostile = "line1\nline2\r\n\x00\x1b[31mred\x1b[0m <script>alert(1)</script> \ud800 end"
    logger.info(hostile, value=hostile, **{"weird\nkey\ud800": 1})
    record = only(logger)
    assert "\x00" in record.message
    assert "\x1b[31m" in record.message
    assert "<script>" in record.fields["value"]
    assert "\\ud800" in record.message  # made visible, and encodable
    encoded = json.dumps(record.to_dict(), ensure_ascii=False).encode("utf-8")
    assert json.loads(encoded)["fields"]["value"].startswith("line1\nline2")


def test_non_string_keys_and_messages_are_text() -> None:
    """A non-string message or nested key becomes text rather than failing."""
    logger = make_logger()
    logger.info(12345, mapping={1: "a", (2, 3): "b", None: "c"})
    record = only(logger)
    assert record.message == "12345"
    assert record.fields["mapping"] == {"1": "a", "(2, 3)": "b", "None": "c"}


# Bounds --------------------------------------------------------------------------------
def test_a_one_record_cap_keeps_the_newest_record_and_the_drop_marker() -> None:
    """max_log_entries=1 keeps no first record (1 // 2) but the newest one, after its marker."""
    small = ExtensionDebugManager("small", configuration=DebugConfiguration(max_log_entries=1))
    logger = small.get_logger()
    with small.debug_session() as session_id:
        for word in ("first", "second", "third"):
            logger.warning(word)
    session = small.get_session(session_id)
    assert session is not None
    logging_data = session.collected_data["logging"]
    assert logging_data["dropped"] == 2
    marker, kept = logging_data["records"]
    assert "2 log record(s) dropped here" in marker["message"]
    assert "first 0 and newest 1" in marker["message"]
    assert kept["message"] == "third"


def test_ring_keeps_the_newest_and_counts_drops(manager: ExtensionDebugManager) -> None:
    """Past max_log_entries the oldest records go and the summary shows the drop count."""
    small = ExtensionDebugManager("small", configuration=DebugConfiguration(max_log_entries=5))
    logger = small.get_logger()
    with small.debug_session() as session_id:
        for n in range(12):
            logger.info(f"m{n}")
    session = small.get_session(session_id)
    assert session is not None
    assert session.collected_data["logging"]["dropped"] == 7
    records = session.collected_data["logging"]["records"]
    # The session keeps its first 2 and newest 3 records, a marker where 7 were dropped.
    assert [r["message"] for r in records[:2] + records[3:]] == ["m0", "m1", "m9", "m10", "m11"]
    marker = records[2]
    assert (marker["level"], marker["name"], marker["fields"]) == (
        "WARNING",
        "kari.debug",
        {"event": "log_records_dropped", "dropped": 7},
    )
    assert "7 log record(s) dropped here" in marker["message"]
    assert "first 2 and newest 3" in marker["message"]
    # The marker is a log record like the others: the same keys, the session's ids.
    assert list(marker) == list(records[0])
    assert (marker["origin"], marker["session_id"], marker["seq"]) == (
        "kari.drops",
        session_id,
        None,
    )
    assert (marker["ts"], marker["timestamp"]) == (records[3]["ts"], records[3]["timestamp"])
    assert [r.message for r in logger.get_logs()] == [f"m{n}" for n in range(11, 6, -1)]
    summary = small.get_debug_summary()
    assert summary["dropped"]["logging"] == 7
    assert summary["components"]["logging"]["recorded"] == 12


def test_log_calls_never_raise_on_internal_failure() -> None:
    """If keeping a record fails, the call returns and a diagnostic says why."""
    logger = make_logger()

    def broken(record: object, session_id: object) -> None:
        raise RuntimeError("buffer broke")

    logger._append = broken  # type: ignore[method-assign]
    logger.info("lost")
    assert any("buffer broke" in d for d in logger.diagnostics)


def test_traceback_keeps_the_innermost_max_stack_frames() -> None:
    """max_stack_frames bounds the traceback, keeping the frames nearest the error."""
    logger = make_logger(max_stack_frames=5)

    def dive(depth: int) -> None:
        if depth == 0:
            raise RecursionError("bottom reached")
        dive(depth - 1)

    try:
        dive(100)
    except RecursionError:
        logger.error("deep failure")
    text = only(logger).exception["traceback"]  # type: ignore[index]
    assert 'raise RecursionError("bottom reached")' in text
    assert "in test_traceback_keeps_the_innermost" not in text  # the outermost frame is cut
    assert text.count('File "') <= 5
