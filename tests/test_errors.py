"""The error tracker: recording, fingerprints, chains, bounds, analysis and resolution."""

from __future__ import annotations

import json
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.errors import (
    ErrorTracker,
    normalize_message,
    trend_direction,
)
from pytest_kari_debug.manager import ExtensionDebugManager

EXTENSION_CODE = """
def load(item_id):
    return _fetch(item_id)

def _fetch(item_id):
    raise KeyError(f"item {item_id} missing at 0x{id(item_id):x}")

def parse(text):
    raise ValueError("invalid input")

def fetch(text):
    raise ValueError("invalid input")

def recurse(n):
    return recurse(n + 1)

def wrapped():
    try:
        parse("x")
    except ValueError as exc:
        raise RuntimeError("could not load the profile") from exc

def handled_badly():
    try:
        parse("x")
    except ValueError:
        raise KeyError("fallback")

def with_secret(password, count):
    raise TypeError(f"bad count {count}")

class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("str is broken")
"""


class Clock:
    """A manual clock: tests decide what time it is."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ext(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A small extension module, imported from a temporary directory (so it is in-app)."""
    (tmp_path / "kari_ext_demo.py").write_text(textwrap.dedent(EXTENSION_CODE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import kari_ext_demo

    yield kari_ext_demo
    sys.modules.pop("kari_ext_demo", None)


def tracker(clock: Callable[[], float] | None = None, **config: Any) -> ErrorTracker:
    """A fresh tracker of extension "demo"."""
    configuration = DebugConfiguration(**config)
    if clock is None:
        return ErrorTracker("demo", configuration)
    return ErrorTracker("demo", configuration, clock=clock)


def raised(func: Callable[..., Any], *args: Any) -> BaseException:
    """The exception *func* raises (with its traceback)."""
    try:
        func(*args)
    except BaseException as exc:
        return exc
    raise AssertionError(f"{func!r} did not raise")


# Recording -------------------------------------------------------------------------------
def test_record_error_returns_a_complete_record() -> None:
    """record_error keeps type, message, context, severity, category and a suggestion."""
    errors = tracker()
    record = errors.record_error(
        "ValidationError", "Invalid input data", context={"input": "bad"}, severity="warning"
    )
    assert record is not None
    data = record.to_dict()
    assert data["error_type"] == "ValidationError"
    assert data["error_message"] == "Invalid input data"
    assert data["context"] == {"input": "bad"}
    assert data["level"] == "warning"
    assert data["category"] == "validation"
    assert data["suggestion"]
    assert data["grouping"] == "message"
    assert data["extension_id"] == "demo"
    json.dumps(data)
    for key in ("ts", "session_id", "fingerprint", "stack_trace", "frames", "chain", "nodeid"):
        assert key in data


def test_record_error_rejects_bad_arguments_with_clear_messages() -> None:
    """Bad severities, fingerprints, types and contexts are refused naming what is accepted."""
    errors = tracker()
    with pytest.raises(ValueError, match="severity must be one of debug, info"):
        errors.record_error("E", "m", severity="loud")
    with pytest.raises(ValueError, match="fingerprint must be a non-empty string"):
        errors.record_error("E", "m", fingerprint=[""])
    with pytest.raises(TypeError, match="error_type must be a non-empty string"):
        errors.record_error("", "m")
    with pytest.raises(TypeError, match="context must be a mapping"):
        errors.record_error("E", "m", context=["x"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs an exception instance"):
        errors.record_exception("boom")  # type: ignore[arg-type]


def test_disabled_tracker_accepts_calls_and_keeps_nothing(ext: ModuleType) -> None:
    """A disabled tracker returns None and records nothing."""
    errors = ErrorTracker("demo", DebugConfiguration(), enabled=False)
    assert errors.record_error("E", "m") is None
    assert errors.record_exception(raised(ext.parse, "x")) is None
    assert errors.get_error_analysis().total_errors == 0


def test_record_exception_keeps_frames_and_culprit(ext: ModuleType) -> None:
    """A recorded exception carries its in-app frames, the culprit frame and its stack text."""
    record = tracker().record_exception(raised(ext.load, 7), {"operation": "load"})
    assert record is not None
    assert record.error_type == "KeyError"
    assert record.grouping == "stack"
    assert record.culprit == "kari_ext_demo in _fetch"
    functions = [frame["function"] for frame in record.frames if frame["in_app"]]
    assert functions[-2:] == ["load", "_fetch"]
    assert "locals" not in record.frames[-1]
    assert 'raise KeyError(f"item {item_id} missing' in (record.stack_trace or "")
    assert record.context == {"operation": "load"}
    assert record.category == "programming"


def test_exception_whose_str_raises_is_still_recorded(ext: ModuleType) -> None:
    """An exception whose __str__ raises is recorded with a placeholder message."""
    errors = tracker()
    record = errors.record_exception(ext.Unprintable())
    assert record is not None
    assert record.error_type == "kari_ext_demo.Unprintable"
    assert record.error_message.startswith("<unrepresentable Unprintable: str raised RuntimeError")
    assert errors.get_error_analysis().total_errors == 1


def test_same_exception_recorded_twice_in_a_session_is_kept_once(ext: ModuleType) -> None:
    """Recording one exception object twice in a debug session keeps one record."""
    manager = ExtensionDebugManager("demo")
    errors = manager.get_error_tracker()
    exc = raised(ext.parse, "x")
    with manager.debug_session() as session_id:
        assert errors.record_exception(exc) is not None
        assert errors.record_exception(exc) is None
    data = manager.get_session(session_id).collected_data["error_tracking"]  # type: ignore[union-attr]
    assert len(data["records"]) == 1


# Fingerprints ----------------------------------------------------------------------------
def test_same_bug_with_different_messages_forms_one_group(ext: ModuleType) -> None:
    """The same code path failing for 50 ids (different messages, addresses) is one group."""
    errors = tracker()
    fingerprints = {errors.record_exception(raised(ext.load, i)).fingerprint for i in range(50)}  # type: ignore[union-attr]
    assert len(fingerprints) == 1
    analysis = errors.get_error_analysis()
    assert (analysis.total_errors, analysis.unique_errors) == (50, 1)
    assert analysis.top_groups[0]["count"] == 50


def test_different_bugs_with_the_same_message_form_two_groups(ext: ModuleType) -> None:
    """Two functions raising the same message text are two groups."""
    errors = tracker()
    first = errors.record_exception(raised(ext.parse, "x"))
    second = errors.record_exception(raised(ext.fetch, "x"))
    assert first is not None
    assert second is not None
    assert first.error_message == second.error_message
    assert first.fingerprint != second.fingerprint
    assert errors.get_error_analysis().unique_errors == 2


def test_message_grouping_ignores_variable_parts() -> None:
    """Without a stack, errors group by type and message with ids, numbers, paths replaced."""
    errors = tracker()
    a = errors.record_error("LookupError", "user 42 not found in /srv/a.db (req 'x1')")
    b = errors.record_error("LookupError", "user 7 not found in /srv/b.db (req 'y2')")
    c = errors.record_error("OtherError", "user 7 not found in /srv/b.db (req 'y2')")
    assert a is not None
    assert b is not None
    assert c is not None
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("id 42 failed after 3.5s", "id <num> failed after <num>s"),
        ("GET https://api.example.com/v1/users?id=9 -> 500", "GET <url> -> <num>"),
        ("object at 0x7f3a2b1c9d80 is gone", "object at <hex> is gone"),
        ("request 123e4567-e89b-12d3-a456-426614174000 failed", "request <uuid> failed"),
        ("cannot open /var/data/file_12.json", "cannot open <path>"),
        ("key 'alpha' and \"beta\" unknown", "key <str> and <str> unknown"),
        ("'user 42 missing'", "'user <num> missing'"),
        ("digest 9f86d081884c7d65 mismatch", "digest <hex> mismatch"),
        ("at 2024-05-01T10:00:00Z from 10.0.0.1:8080", "at <datetime> from <ip>"),
        ("mail bob@example.com bounced", "mail <email> bounced"),
        ("C:\\Users\\bob\\x.txt missing", "<path> missing"),
    ],
)
def test_normalize_message_replaces_variable_parts(message: str, expected: str) -> None:
    """Each kind of variable part becomes its placeholder."""
    assert normalize_message(message) == expected


def test_record_error_groups_by_the_frames_of_its_traceback_text(ext: ModuleType) -> None:
    """record_error with traceback text groups like record_exception of the same exception."""
    errors = tracker()
    exc = raised(ext.load, 1)
    live = errors.record_exception(exc)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    parsed = errors.record_error("KeyError", "'item 2 missing'", stack_trace=text)
    assert live is not None
    assert parsed is not None
    assert parsed.grouping == "stack"
    assert parsed.fingerprint == live.fingerprint
    assert parsed.culprit == "kari_ext_demo in _fetch"


def test_format_exc_outside_an_exception_falls_back_to_the_message() -> None:
    """traceback.format_exc() with no exception ('NoneType: None') groups by message."""
    record = tracker().record_error("ValidationError", "bad", traceback.format_exc())
    assert record is not None
    assert record.grouping == "message"


def test_user_fingerprint_overrides_grouping(ext: ModuleType) -> None:
    """fingerprint= merges unrelated errors, and '{{ default }}' refines the computed one."""
    errors = tracker()
    a = errors.record_exception(raised(ext.parse, "x"), fingerprint="input-errors")
    b = errors.record_error("ValueError", "other", fingerprint="input-errors")
    c = errors.record_exception(raised(ext.parse, "x"), fingerprint=["{{ default }}", "eu"])
    d = errors.record_exception(raised(ext.parse, "x"), fingerprint=["{{ default }}", "us"])
    plain = errors.record_exception(raised(ext.parse, "x"))
    assert a is not None
    assert b is not None
    assert c is not None
    assert d is not None
    assert plain is not None
    assert a.fingerprint == b.fingerprint
    assert a.grouping == "custom"
    assert len({c.fingerprint, d.fingerprint, plain.fingerprint}) == 3


def test_test_file_frames_do_not_split_a_bug_reached_from_many_tests(ext: ModuleType) -> None:
    """Frames of test files leave the fingerprint when extension frames remain."""
    errors = tracker()
    namespace: dict[str, Any] = {"ext": ext}
    for name in ("test_one", "test_two"):
        code = compile(f"def {name}():\n    ext.load(1)\n", f"/proj/tests/{name}.py", "exec")
        exec(code, namespace)
    first = errors.record_exception(raised(namespace["test_one"]))
    second = errors.record_exception(raised(namespace["test_two"]))
    assert first is not None
    assert second is not None
    assert first.fingerprint == second.fingerprint


# Chains and groups -----------------------------------------------------------------------
def test_cause_chain_is_kept_and_shown(ext: ModuleType) -> None:
    """A raise ... from ... keeps the cause in the chain and in the stack text."""
    record = tracker().record_exception(raised(ext.wrapped))
    assert record is not None
    assert [(c["relation"], c["error_type"]) for c in record.chain] == [("cause", "ValueError")]
    text = record.stack_trace or ""
    assert "The above exception was the direct cause of the following exception:" in text
    assert text.index("ValueError: invalid input") < text.index("RuntimeError: could not load")


def test_context_chain_is_kept_and_shown(ext: ModuleType) -> None:
    """An exception raised while handling another keeps that one as its context."""
    record = tracker().record_exception(raised(ext.handled_badly))
    assert record is not None
    assert [(c["relation"], c["error_type"]) for c in record.chain] == [("context", "ValueError")]
    assert "During handling of the above exception" in (record.stack_trace or "")


def test_chain_takes_part_in_the_fingerprint(ext: ModuleType) -> None:
    """The same outer error with a different cause is a different group."""
    errors = tracker()
    a = errors.record_exception(raised(ext.wrapped))
    plain = RuntimeError("could not load the profile")
    b = errors.record_exception(plain)
    assert a is not None
    assert b is not None
    assert a.fingerprint != b.fingerprint


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is built in from 3.11")
def test_exception_group_members_are_kept_and_shown(ext: ModuleType) -> None:
    """Members of an exception group are kept in the chain and listed in the stack text."""
    group = ExceptionGroup(  # noqa: F821 - builtin on 3.11+
        "two failures", [raised(ext.parse, "x"), raised(ext.load, 3)]
    )
    record = tracker().record_exception(raised(_raise, group))
    assert record is not None
    assert [c["relation"] for c in record.chain] == ["group[0]", "group[1]"]
    assert [c["error_type"] for c in record.chain] == ["ValueError", "KeyError"]
    assert "+---------------- 1 ----------------" in (record.stack_trace or "")
    assert "| ValueError: invalid input" in (record.stack_trace or "")


def _raise(exc: BaseException) -> None:
    raise exc


def test_exception_notes_are_kept(ext: ModuleType) -> None:
    """Notes added with add_note are kept and shown under the exception."""
    exc = raised(ext.parse, "x")
    if not hasattr(exc, "add_note"):
        pytest.skip("add_note is new in Python 3.11")
    exc.add_note("while importing tenant acme")
    record = tracker().record_exception(exc)
    assert record is not None
    assert record.exception_notes == ["while importing tenant acme"]
    assert "while importing tenant acme" in (record.stack_trace or "")


# Bounds ----------------------------------------------------------------------------------
def test_recursion_error_stack_is_truncated_not_stored_whole(ext: ModuleType) -> None:
    """A RecursionError's huge stack keeps max_stack_frames frames and says what it left out."""
    errors = tracker(max_stack_frames=20)
    exc = raised(ext.recurse, 0)
    assert isinstance(exc, RecursionError)
    record = errors.record_exception(exc)
    assert record is not None
    assert len(record.frames) == 20
    assert record.frames_omitted > 500
    text = record.stack_trace or ""
    assert "frames omitted ..." in text
    assert "[Previous line repeated" in text
    assert text.count('File "') <= 20
    assert len(text) < 10_000
    # The depth the recursion reached does not change the group.
    again = errors.record_exception(raised(lambda: ext.recurse(500)))
    assert again is not None
    assert again.fingerprint == record.fingerprint


def test_long_traceback_text_is_truncated_to_max_stack_frames() -> None:
    """record_error cuts the middle frames of a long traceback text."""
    frames = "".join(
        f'  File "/app/mod{i}.py", line {i}, in f{i}\n    call_{i}()\n' for i in range(300)
    )
    text = f"Traceback (most recent call last):\n{frames}ValueError: deep\n"
    record = tracker(max_stack_frames=10).record_error("ValueError", "deep", text)
    assert record is not None
    kept = record.stack_trace or ""
    assert kept.count('File "') == 10
    assert "[... 290 frames omitted ...]" in kept
    assert kept.rstrip().endswith("ValueError: deep")


def test_max_errors_bounds_records_but_group_counters_keep_counting(ext: ModuleType) -> None:
    """Past max_errors records are dropped (and counted) while group counts stay exact."""
    manager = ExtensionDebugManager("demo", configuration=DebugConfiguration(max_errors=10))
    errors = manager.get_error_tracker()
    with manager.debug_session() as session_id:
        for i in range(35):
            errors.record_exception(raised(ext.load, i))
    assert len(errors.records) == 10
    assert errors.records.dropped == 25
    analysis = errors.get_error_analysis()
    assert analysis.total_errors == 35
    assert analysis.top_groups[0]["count"] == 35
    assert analysis.dropped == 25
    data = manager.get_session(session_id).collected_data["error_tracking"]  # type: ignore[union-attr]
    assert len(data["records"]) == 10
    assert data["dropped"] == 25
    assert data["total"] == 35
    assert data["groups"][0]["count"] == 35


def test_locals_are_not_captured_unless_asked(ext: ModuleType) -> None:
    """Frame locals stay out by default; when asked, they are captured, redacted and cut."""
    exc = raised(ext.with_secret, "hunter2", "x" * 5000)
    errors = tracker(max_repr_length=50)
    plain = errors.record_exception(exc)
    assert plain is not None
    assert all("locals" not in frame for frame in plain.frames)
    assert "hunter2" not in json.dumps(plain.to_dict())
    asked = errors.record_exception(exc, capture_locals=True)
    assert asked is not None
    culprit = asked.frames[-1]
    assert culprit["function"] == "with_secret"
    assert culprit["locals"]["password"] == "[REDACTED]"
    assert culprit["locals"]["count"].endswith("… [truncated 4952 characters]")
    assert len(culprit["locals"]["count"]) <= 50 + len("… [truncated 4952 characters]")
    assert "hunter2" not in json.dumps(culprit)
    errors.capture_locals = True
    assert errors.record_exception(raised(ext.parse, "y")).frames[-1]["locals"]  # type: ignore[union-attr]


def test_context_values_are_made_json_able_and_redacted() -> None:
    """Context values that JSON cannot hold become reprs; secret keys are redacted."""
    record = tracker().record_error(
        "E", "m", context={"token": "abc", "when": object(), "nested": {"password": "p", "n": 1}}
    )
    assert record is not None
    assert record.context["token"] == "[REDACTED]"
    assert record.context["nested"] == {"password": "[REDACTED]", "n": 1}
    assert record.context["when"].startswith("<object object")
    json.dumps(record.to_dict())


def test_error_context_and_locals_redact_secret_names_as_log_fields_do() -> None:
    """Error context and frame locals follow the rule of log fields and span tags (suffixes,
    camelCase, dashes, dots): ``db_password``, ``apiKey``, ``X-Auth-Token``, ``db.password``
    are redacted; ``max_tokens`` is kept."""
    context = {
        "db_password": "canary-1", "apiKey": "canary-2", "X-Auth-Token": "canary-3",
        "db.password": "canary-4", "max_tokens": 7,
    }  # fmt: skip
    record = tracker().record_error("E", "m", context=context)
    assert record is not None
    assert record.context == {
        "db_password": "[REDACTED]", "apiKey": "[REDACTED]", "X-Auth-Token": "[REDACTED]",
        "db.password": "[REDACTED]", "max_tokens": 7,
    }  # fmt: skip

    def fails(db_password: str, accessToken: str, max_tokens: int) -> None:
        raise ValueError("boom")

    try:
        fails("canary-5", "canary-6", 3)
    except ValueError as exc:
        error = exc
    captured = tracker().record_exception(error, capture_locals=True)
    assert captured is not None
    kept = captured.frames[-1]["locals"]
    assert (kept["db_password"], kept["accessToken"]) == ("[REDACTED]", "[REDACTED]")
    assert kept["max_tokens"] == "3"
    assert "canary" not in json.dumps(kept)


# Analysis --------------------------------------------------------------------------------
def test_analysis_reports_rate_categories_and_affected_sessions(ext: ModuleType) -> None:
    """get_error_analysis gives totals, rate per hour, categories and top groups with counts."""
    clock = Clock()
    manager = ExtensionDebugManager("demo")
    errors = ErrorTracker("demo", manager.configuration, clock=clock)
    manager.error_tracker = errors
    manager.components["error_tracking"] = errors
    for i in range(3):
        with manager.debug_session():
            errors.record_exception(raised(ext.load, i), nodeid=f"tests/test_x.py::test_{i}")
    errors.record_error("TimeoutError", "upstream timed out after 30s")
    clock.now += 1800  # half an hour tracked
    analysis = errors.get_error_analysis()
    assert analysis.total_errors == 4
    assert analysis.unique_errors == 2
    assert analysis.error_rate == 8.0
    assert analysis.categories == {"programming": 3, "timeout": 1}
    top = analysis.top_groups[0]
    assert top["count"] == 3
    assert top["affected_sessions_count"] == 3
    assert top["affected_tests"] == [f"tests/test_x.py::test_{i}" for i in range(3)]
    assert top["first_seen"] <= top["last_seen"]
    assert set(analysis.new_groups) == {g["fingerprint"] for g in analysis.top_groups}
    json.dumps(analysis.to_dict())


def test_analysis_trend_buckets_and_new_groups(ext: ModuleType) -> None:
    """Errors piling up late in the window read as rising; known groups are not new."""
    clock = Clock()
    errors = tracker(clock)
    old = errors.record_exception(raised(ext.parse, "x"))
    assert old is not None
    for step in range(12):
        clock.now += 10
        for _ in range(step):
            errors.record_exception(raised(ext.load, step))
    analysis = errors.get_error_analysis(
        buckets=6, known_fingerprints=[old.fingerprint], runs=[{"count": 9}, {"count": 3}]
    )
    trend = analysis.trend
    assert len(trend["buckets"]) == 6
    assert sum(bucket["count"] for bucket in trend["buckets"]) == analysis.total_errors
    assert trend["direction"] == "rising"
    assert trend["runs_direction"] == "falling"
    assert old.fingerprint not in analysis.new_groups
    assert len(analysis.new_groups) == 1


@pytest.mark.parametrize(
    ("counts", "direction"),
    [
        ([], "stable"),
        ([5], "stable"),
        ([0, 0, 0], "stable"),
        ([1, 2, 4, 8, 16], "rising"),
        ([20, 10, 5, 1], "falling"),
        ([10, 0, 10, 0, 10], "stable"),
        ([10, 10, 11, 10], "stable"),
    ],
)
def test_trend_direction(counts: list[int], direction: str) -> None:
    """The least-squares trend calls a series rising, falling or stable."""
    assert trend_direction(counts) == direction


# Resolution ------------------------------------------------------------------------------
def test_resolved_group_that_recurs_is_flagged_regressed(ext: ModuleType) -> None:
    """Resolving a group with notes, then seeing it again, reopens it as a regression."""
    errors = tracker()
    record = errors.record_exception(raised(ext.parse, "x"))
    assert record is not None
    group = errors.resolve(record.fingerprint[:6], notes="fixed the parser")
    assert (group.status, group.notes, group.regressed) == ("resolved", "fixed the parser", False)
    assert errors.get_groups(status="resolved") == [group]
    errors.record_exception(raised(ext.parse, "x"))
    assert (group.status, group.regressed) == ("unresolved", True)
    assert errors.get_error_analysis().regressed_groups == [record.fingerprint]
    errors.resolve(record.fingerprint)
    errors.unresolve(record.fingerprint)
    assert (group.status, group.resolved_at) == ("unresolved", None)


def test_patterns_and_filtered_errors(ext: ModuleType) -> None:
    """get_error_patterns lists groups by frequency with template and stack; get_errors filters."""
    errors = tracker()
    for i in range(3):
        errors.record_exception(raised(ext.load, i))
    errors.record_error("TimeoutError", "took 31s")
    [top, second] = errors.get_error_patterns()
    assert (top["count"], top["template"], top["culprit"]) == (
        3,
        "'item <num> missing at <hex>'",
        "kari_ext_demo in _fetch",
    )
    assert "Traceback (most recent call last):" in top["stack_trace"]
    assert second["category"] == "timeout"
    assert len(errors.get_errors(fingerprint=top["fingerprint"][:8])) == 3
    assert [e.error_type for e in errors.get_errors(category="timeout")] == ["TimeoutError"]
    assert len(errors.get_errors(limit=2)) == 2
    assert errors.get_errors()[0].error_type == "TimeoutError"


def test_unknown_or_ambiguous_group_is_a_clear_error() -> None:
    """Looking up a group that does not exist names the extension."""
    errors = tracker()
    with pytest.raises(LookupError, match="no error group 'nope' in extension 'demo'"):
        errors.resolve("nope")
    with pytest.raises(ValueError, match="status must be"):
        errors.get_groups(status="open")


# Logs ------------------------------------------------------------------------------------
def test_error_log_with_exception_becomes_an_error_record(ext: ModuleType) -> None:
    """An ERROR log record carrying an exception is recorded as an error of its session."""
    manager = ExtensionDebugManager("demo")
    logger = manager.get_logger()
    with manager.debug_session() as session_id:
        logger.log("ERROR", "loading failed", exc_info=raised(ext.load, 4))
        logger.log("ERROR", "no exception here")
        logger.log("WARNING", "only a warning", exc_info=raised(ext.parse, "x"))
    data = manager.get_session(session_id).collected_data["error_tracking"]  # type: ignore[union-attr]
    assert [r["source"] for r in data["records"]] == ["log"]
    record = data["records"][0]
    assert record["error_type"] == "KeyError"
    assert record["context"]["message"] == "loading failed"
    assert record["session_id"] == session_id
    assert record["grouping"] == "stack"
    assert record["culprit"] == "kari_ext_demo in _fetch"


def test_logged_and_recorded_exception_is_not_counted_twice(ext: ModuleType) -> None:
    """An exception recorded directly and also logged with exc_info counts once."""
    manager = ExtensionDebugManager("demo")
    exc = raised(ext.parse, "x")
    with manager.debug_session() as session_id:
        manager.get_error_tracker().record_exception(exc)
        manager.get_logger().log("ERROR", "parse failed", exc_info=exc)
    data = manager.get_session(session_id).collected_data["error_tracking"]  # type: ignore[union-attr]
    assert data["total"] == 1
    assert (
        manager.get_error_tracker().record_log(
            {"level": "ERROR", "message": "x", "exception": None}
        )
        is None
    )


def test_exception_reported_live_by_a_logger_is_marked_as_from_the_log(ext: ModuleType) -> None:
    """An exception a logger hands over with context source=log is recorded as a log error."""
    record = tracker().record_exception(
        raised(ext.parse, "x"), {"source": "log", "logger": "kari.demo"}
    )
    assert record is not None
    assert record.source == "log"


def test_debug_summary_counts_errors_and_groups(ext: ModuleType) -> None:
    """get_debug_summary shows the tracker's groups and every error counted."""
    manager = ExtensionDebugManager("demo", configuration=DebugConfiguration(max_errors=2))
    for i in range(5):
        manager.get_error_tracker().record_exception(raised(ext.load, i))
    stats = manager.get_debug_summary()["components"]["error_tracking"]
    assert (stats["records"], stats["errors_total"], stats["groups"]) == (2, 5, 1)
