"""Searching and filtering log records, and exporting them as JSON, JSON Lines and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError, ExportError
from pytest_kari_debug.exporters.logs_export import (
    LOG_COLUMNS,
    export_logger,
    log_rows,
    logs_to_csv,
    logs_to_json,
    logs_to_jsonl,
    with_drops,
    write_logs,
)
from pytest_kari_debug.logger import ExtensionLogger, LogQuery
from pytest_kari_debug.manager import ExtensionDebugManager


@pytest.fixture
def filled() -> tuple[ExtensionDebugManager, dict[str, str]]:
    """A manager whose logger holds a known mix of records in two sessions."""
    manager = ExtensionDebugManager("query-ext", configuration=DebugConfiguration())
    logger = manager.get_logger()
    sessions = {}
    with manager.debug_session(name="tests/test_a.py::test_one") as first:
        sessions["first"] = first
        logger.debug("cache warm", hits=3)
        with logger.correlation_context("req-1"), logger.user_context("alice", "acme"):
            logger.info("Processing user request", route="/forecast", status_code=200)
            logger.warning("Slow upstream", status_code=200, upstream={"host": "api"})
    with manager.debug_session(name="tests/test_a.py::test_two") as second:
        sessions["second"] = second
        with logger.correlation_context("req-2"), logger.user_context("bob", "globex"):
            logger.error("API request FAILED", status_code=500, retry=True)
            logger.critical("Giving up", status_code=500, attempts=[1, 2, 3])
    logger.info("outside any session", status_code=204)
    return manager, sessions


def messages(records: list[Any]) -> list[str]:
    return [r.message if not isinstance(r, dict) else r["message"] for r in records]


def test_newest_first_with_limit_and_offset(filled: Any) -> None:
    """Results are newest first; offset skips and limit caps after filtering."""
    logger = filled[0].get_logger()
    everything = messages(logger.get_logs())
    assert everything[0] == "outside any session"
    assert everything[-1] == "cache warm"
    assert messages(logger.get_logs(limit=2)) == everything[:2]
    assert messages(logger.get_logs(offset=2, limit=2)) == everything[2:4]
    assert logger.get_logs(offset=100) == []


def test_minimum_and_exact_level(filled: Any) -> None:
    """level is a minimum (any case); exact_level keeps one level only."""
    logger = filled[0].get_logger()
    assert messages(logger.get_logs(level="error")) == ["Giving up", "API request FAILED"]
    assert messages(logger.get_logs(level="WARN")) == [
        "Giving up",
        "API request FAILED",
        "Slow upstream",
    ]
    assert messages(logger.get_logs(exact_level="ERROR")) == ["API request FAILED"]
    with pytest.raises(ConfigurationError, match="unknown log level 'loud'"):
        logger.get_logs(level="loud")


def test_time_range(filled: Any) -> None:
    """since/until are inclusive epoch seconds on a logger's records."""
    logger = filled[0].get_logger()
    records = list(reversed(logger.get_logs()))
    middle = records[3].ts
    assert messages(logger.get_logs(since=middle)) == messages(list(reversed(records[3:])))
    assert messages(logger.get_logs(until=middle)) == messages(list(reversed(records[:4])))
    assert logger.get_logs(since=middle + 3600) == []


def test_time_range_accepts_datetimes_and_iso_text() -> None:
    """since/until accept datetimes (naive is UTC) and ISO 8601 text; other text is refused."""
    noon = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc).timestamp()
    dicts = [
        {"ts": noon + hour * 3600, "message": f"h{hour}", "level": "INFO"} for hour in range(5)
    ]
    assert messages(LogQuery(since=dt.datetime(2024, 5, 1, 14)).apply(dicts)) == ["h2", "h3", "h4"]
    assert messages(LogQuery(until="2024-05-01T13:00:00Z").apply(dicts)) == ["h0", "h1"]
    local = dt.timezone(dt.timedelta(hours=2))
    assert messages(LogQuery(since=dt.datetime(2024, 5, 1, 17, tzinfo=local)).apply(dicts)) == [
        "h3",
        "h4",
    ]
    assert messages(LogQuery(since=str(noon + 4 * 3600)).apply(dicts)) == ["h4"]
    with pytest.raises(ConfigurationError, match="since 'yesterday' is not a time"):
        LogQuery(since="yesterday")


def test_substring_is_case_insensitive_over_message_and_fields(filled: Any) -> None:
    """query matches the message, logger name, exception and field values, ignoring case."""
    logger = filled[0].get_logger()
    assert messages(logger.search_logs("api request failed")) == ["API request FAILED"]
    assert messages(logger.search_logs("/FORECAST")) == ["Processing user request"]
    assert messages(logger.search_logs("API", level="warning")) == [
        "API request FAILED",
        "Slow upstream",
    ]


def test_regex(filled: Any) -> None:
    """regex searches the same text; an invalid pattern is refused by name."""
    logger = filled[0].get_logger()
    assert messages(logger.get_logs(regex=r"^(Slow|Giving) ")) == ["Giving up", "Slow upstream"]
    with pytest.raises(ConfigurationError, match=r"regex '\(' is not a valid regular expression"):
        logger.get_logs(regex="(")


def test_field_equality(filled: Any) -> None:
    """fields={...} is equality; text matches the value's text form; a.b reaches nested keys."""
    logger = filled[0].get_logger()
    assert messages(logger.get_logs(fields={"status_code": 500})) == [
        "Giving up",
        "API request FAILED",
    ]
    assert len(logger.get_logs(fields={"status_code": "500"})) == 2
    assert messages(logger.get_logs(fields={"retry": "true"})) == ["API request FAILED"]
    assert messages(logger.get_logs(fields={"retry": True})) == ["API request FAILED"]
    assert logger.get_logs(fields={"retry": 1}) == []
    assert messages(logger.get_logs(fields={"upstream.host": "api"})) == ["Slow upstream"]
    assert logger.get_logs(fields={"missing": None}) == []


def test_context_session_and_test_filters(filled: Any) -> None:
    """correlation, user, tenant, session id, test name and logger name filters."""
    manager, sessions = filled
    logger = manager.get_logger()
    assert messages(logger.get_logs(correlation_id="req-2")) == ["Giving up", "API request FAILED"]
    assert messages(logger.get_logs(user_id="alice")) == [
        "Slow upstream",
        "Processing user request",
    ]
    assert len(logger.get_logs(tenant_id="globex")) == 2
    assert len(logger.get_logs(session_id=sessions["first"])) == 3
    assert messages(logger.get_logs(test="tests/test_a.py::test_two", level="critical")) == [
        "Giving up"
    ]
    assert len(logger.get_logs(logger_name="kari")) == 6
    assert logger.get_logs(logger_name="kar") == []
    assert [r.seq for r in logger.get_logs(after_seq=4)] == [6, 5]


def test_filters_work_on_record_dicts(filled: Any) -> None:
    """LogQuery filters stored dicts (the store's, say) exactly as it filters records."""
    logger = filled[0].get_logger()
    dicts = [r.to_dict() for r in logger.get_logs()]
    query = LogQuery(level="warning", query="up", limit=5)
    assert messages(query.apply(dicts)) == messages(logger.get_logs(level="warning", query="up"))
    with pytest.raises(ConfigurationError, match="limit must be a whole number"):
        LogQuery(limit=-1)


def test_level_counts(filled: Any) -> None:
    """level_counts counts kept records per level, per session on request."""
    manager, sessions = filled
    counts = manager.get_logger().level_counts(sessions["second"])
    assert counts == {"DEBUG": 0, "INFO": 0, "WARNING": 0, "ERROR": 1, "CRITICAL": 1}


# Exports -------------------------------------------------------------------------------
HOSTILE = 'a,b "quoted"\nnew\r\nline\x00nul \x1b[2Jansi <b>&amp;</b> \ud83d bad =1+2 '


def test_json_and_jsonl_round_trip(filled: Any) -> None:
    """JSON array and JSON Lines parse back to the same records."""
    logger = filled[0].get_logger()
    logger.info(HOSTILE, payload=HOSTILE)
    records = logger.get_logs()
    as_array = json.loads(logs_to_json(records).encode("utf-8"))
    lines = logs_to_jsonl(records).encode("utf-8").decode("utf-8").splitlines()
    assert len(lines) == len(records)
    assert [json.loads(line) for line in lines] == as_array
    assert as_array[0]["fields"]["payload"] == records[0].fields["payload"]
    assert as_array[0]["message"].startswith('a,b "quoted"\nnew\r\nline\x00nul \x1b[2J')


def test_csv_round_trip_with_hostile_text(filled: Any) -> None:
    """CSV parses back cell for cell: quotes, newlines, NUL, ANSI, HTML, formulas."""
    logger = filled[0].get_logger()
    logger.warning(HOSTILE, payload=HOSTILE, formula="=HYPERLINK(1)", count=-3)
    records = list(reversed(logger.get_logs()))
    text = logs_to_csv(records)
    parsed = list(csv.DictReader(io.StringIO(text.encode("utf-8").decode("utf-8"), newline="")))
    assert len(parsed) == len(records)
    last = parsed[-1]
    assert last["message"] == records[-1].message
    assert last["fields.payload"] == records[-1].fields["payload"]
    assert last["fields.formula"] == "'=HYPERLINK(1)"
    assert last["fields.count"] == "-3"  # a number stays a number
    assert last["level"] == "WARNING"
    assert text.count("\r\n") >= len(records) + 1


def test_csv_columns_are_stable_and_flattened(filled: Any) -> None:
    """Fixed columns first, then sorted flattened field names; same records, same columns."""
    logger = filled[0].get_logger()
    records = logger.get_logs()
    _, columns = log_rows(records)
    assert tuple(columns[: len(LOG_COLUMNS)]) == LOG_COLUMNS
    field_columns = columns[len(LOG_COLUMNS) : -1]
    assert field_columns == sorted(field_columns)
    assert "fields.upstream.host" in field_columns
    assert columns[-1] == "fields_other"
    assert log_rows(list(reversed(records)))[1] == columns
    rows = list(csv.DictReader(io.StringIO(logs_to_csv(records), newline="")))
    by_message = {row["message"]: row for row in rows}
    assert by_message["Giving up"]["fields.attempts"] == "[1, 2, 3]"
    assert by_message["Slow upstream"]["fields.upstream.host"] == "api"
    assert by_message["Processing user request"]["correlation_id"] == "req-1"


def test_exception_columns(filled: Any) -> None:
    """An attached exception fills the exception columns."""
    logger = filled[0].get_logger()
    try:
        raise LookupError("nope")
    except LookupError:
        logger.error("lookup failed")
    rows = list(csv.DictReader(io.StringIO(logs_to_csv(logger.get_logs(limit=1)), newline="")))
    assert rows[0]["exception_type"] == "LookupError"
    assert rows[0]["exception_message"] == "nope"
    assert "Traceback" in rows[0]["exception_traceback"]


def test_drops_are_shown_in_exports(tmp_path: Path) -> None:
    """export_logger appends a drop marker record when the ring dropped records."""
    logger = ExtensionLogger("ext", DebugConfiguration(max_log_entries=3))
    for n in range(10):
        logger.info(f"m{n}")
    for fmt in ("json", "jsonl", "csv"):
        path = export_logger(logger, tmp_path / f"logs.{fmt}", fmt)
        text = path.read_text(encoding="utf-8")
        assert "7 log record(s) dropped at the buffer limit (max_log_entries=3)" in text
    array = json.loads((tmp_path / "logs.json").read_text(encoding="utf-8"))
    assert [r["message"] for r in array[:3]] == ["m7", "m8", "m9"]
    assert array[-1]["fields"] == {"event": "log_records_dropped", "dropped": 7}
    # The session's marker's origin: whatever counts records skips both markers alike.
    assert array[-1]["origin"] == "kari.drops"
    assert with_drops([], 0) == []


def test_unknown_export_format_is_refused(tmp_path: Path) -> None:
    """write_logs names the accepted formats."""
    with pytest.raises(ExportError, match="unknown log export format 'xml'; accepted: json"):
        write_logs(tmp_path / "x", [], "xml")
