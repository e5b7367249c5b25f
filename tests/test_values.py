"""The one serializer of record values: never raises, bounded user code, writable output."""

from __future__ import annotations

import json
import math
import threading
import time

import orjson
import pytest

from pytest_kari_debug.atomic import write_atomic
from pytest_kari_debug.logger.redaction import Redactor
from pytest_kari_debug.storage import dumps, dumps_record, loads_many
from pytest_kari_debug.tracing import ExtensionTracer
from pytest_kari_debug.values import (
    ValueSerializer,
    encode_text,
    label_text,
    plain_fields,
    repair,
    safe_repr,
    safe_str,
)

SURROGATE = "report-\udcff.csv"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr broke")


class NonStrRepr:
    def __repr__(self) -> object:  # type: ignore[override]
        return 42


class SlowRepr:
    def __repr__(self) -> str:
        time.sleep(1.0)
        return "slow"


def _writable(value: object) -> None:
    """Every writer's encoding accepts *value*: orjson, json (strict), UTF-8."""
    orjson.dumps(value)
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10**5000, "<unrepresentable int: integer of 16610 bits exceeds the int-to-str limit>"),
        (BadRepr(), "<unrepresentable BadRepr: repr raised RuntimeError: repr broke>"),
        (NonStrRepr(), "<unrepresentable NonStrRepr: repr raised TypeError"),
        (SURROGATE, "report-\\udcff.csv"),
        (math.nan, "nan"),
        (-math.inf, "-inf"),
    ],
    ids=["huge-int", "raising-repr", "non-str-repr", "surrogate", "nan", "inf"],
)
def test_hostile_values_become_writable_placeholders(value: object, expected: str) -> None:
    """Values a writer cannot write become text: a placeholder naming the type and reason."""
    kept = ValueSerializer().value(value)
    assert isinstance(kept, str)
    assert kept.startswith(expected)
    _writable(kept)


def test_nested_hostile_values_are_replaced_in_place() -> None:
    """A container keeps its good parts; only the bad ones are replaced; cycles are cut."""
    cycle: list[object] = [1]
    cycle.append(cycle)
    kept = ValueSerializer().value(
        {"a": [10**5000, 2], "b": BadRepr(), "c": {SURROGATE: cycle}, 3: (1.5, None)}
    )
    assert kept["a"][1] == 2
    assert kept["a"][0].startswith("<unrepresentable int")
    assert kept["b"].startswith("<unrepresentable BadRepr")
    assert kept["c"] == {"report-\\udcff.csv": [1, "[cycle: list]"]}
    assert kept["3"] == [1.5, None]
    _writable(kept)


def test_a_slow_repr_is_time_boxed() -> None:
    """A __repr__ that sleeps 1 s costs the caller the bound (0.2 s), not the second."""
    started = time.monotonic()
    kept = safe_repr(SlowRepr())
    elapsed = time.monotonic() - started
    assert kept == "<unrepresentable SlowRepr: repr took longer than 0.2 s>"
    assert elapsed < 0.9


def test_hanging_reprs_cost_a_bounded_number_of_threads() -> None:
    """Reprs that never return stop being called once a few are stuck; threads stay bounded."""
    release = threading.Event()

    class Hangs:
        def __repr__(self) -> str:
            release.wait(10)
            return "hangs"

    before = threading.active_count()
    try:
        texts = [safe_repr(Hangs(), timeout=0.05) for _ in range(12)]
        assert threading.active_count() - before <= 5
        assert any("earlier calls still running" in text for text in texts)
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while "still running" in safe_repr(Hangs(), timeout=1.0) and time.monotonic() < deadline:
        time.sleep(0.05)  # the stuck calls return and their threads leave
    assert safe_repr(Hangs(), timeout=1.0) == "hangs"


def _helper_calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The values the serializer hands to its helper thread from now on."""
    from pytest_kari_debug import values

    calls: list[object] = []
    call = values._CALLER.call

    def counting(function: object, value: object, timeout: float) -> object:
        calls.append(value)
        return call(function, value, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(values._CALLER, "call", counting)
    return calls


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    "error",
    [
        KeyError("item 7 missing"),
        AttributeError("'NoneType' object has no attribute 'x'"),
        NameError("name 'y' is not defined"),
        ImportError("no module named z"),
        FileNotFoundError(2, "No such file or directory", "/nowhere/f.txt"),
        PermissionError(13, "Permission denied", b"/root/x", None, "/root/y"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_builtin_exceptions_showing_only_plain_args_are_read_without_the_helper_thread(
    error: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their builtin __str__ runs no user code: no thread hand-off (two per recorded error)."""
    calls = _helper_calls(monkeypatch)
    assert safe_str(error) == str(error)
    assert safe_repr(error) == repr(error)
    assert calls == []


def test_builtin_exceptions_showing_user_objects_still_go_through_the_bounded_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user object in the args, an OSError's filename or an overridden __str__ is user
    code: it runs on the helper thread under the time bound, as before."""

    class Slow:
        def __repr__(self) -> str:
            time.sleep(2)
            return "slow"

    class OwnStr(KeyError):
        def __str__(self) -> str:
            return "own"

    class UserStr:
        def __str__(self) -> str:
            return "user text"

    missing = FileNotFoundError(2, "No such file or directory")
    missing.filename = Slow()  # type: ignore[assignment]
    odd_strerror = OSError(2, "No such file", "a.txt")
    odd_strerror.strerror = UserStr()  # type: ignore[assignment]  # OSError shows str() of it
    odd_errno = OSError(2, "No such file")
    odd_errno.errno = UserStr()  # type: ignore[assignment]
    calls = _helper_calls(monkeypatch)
    for error in (KeyError(Slow()), missing):
        assert "took longer than" in safe_str(error, timeout=0.05), error
    assert safe_str(OwnStr("k")) == "own"
    assert len(calls) == 3
    assert safe_str(odd_strerror) == "[Errno 2] user text: 'a.txt'"
    assert safe_str(odd_errno) == "[Errno user text] No such file"
    assert len(calls) == 5  # each on the helper thread


def test_str_that_raises_or_returns_bytes_gives_a_placeholder() -> None:
    """safe_str checks the type of what __str__ returns and never raises."""

    class BytesStr:
        def __str__(self) -> object:  # type: ignore[override]
            return b"x"

    assert safe_str(BytesStr()).startswith("<unrepresentable BytesStr: str raised TypeError")
    assert safe_str(ValueError(BadRepr())).startswith("<unrepresentable ValueError")
    assert label_text(10**5000).startswith("<unrepresentable int")


def test_a_repr_that_logs_to_stdlib_is_not_recorded_in_its_helper_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Records made by a repr running on the serializer's helper thread are not captured."""
    from pytest_kari_debug.logger import ExtensionLogger

    logger = ExtensionLogger("ext")

    class Chatty:
        def __repr__(self) -> str:
            import logging

            logging.getLogger("chatty").warning("inside repr")
            return "<chatty>"

    with logger.capture_stdlib("chatty"):
        logger.info("m", value=Chatty())
    assert [(r.message, r.fields) for r in logger.get_logs()] == [("m", {"value": "<chatty>"})]


def test_span_tags_never_raise_into_the_test() -> None:
    """set_tag, set_tags, add_event and start_span tags accept any value (case A)."""
    tracer = ExtensionTracer("ext")
    with tracer.start_span("s", {"huge": 10**5000, "bad": BadRepr()}) as span:
        span.set_tag("k", BadRepr())
        span.set_tag("n", NonStrRepr())
        span.set_tag("big", {"a": [10**5000]})
        span.set_tag(SURROGATE, SURROGATE)
        span.add_event("e", {"v": BadRepr(), "s": SURROGATE})
    [record] = tracer.get_spans()
    tags = record["tags"]
    assert tags["k"].startswith("<unrepresentable BadRepr")
    assert tags["n"].startswith("<unrepresentable NonStrRepr")
    assert tags["big"]["a"][0].startswith("<unrepresentable int")
    assert tags["huge"].startswith("<unrepresentable int")
    assert tags["report-\\udcff.csv"] == "report-\\udcff.csv"
    _writable(record)


def test_repair_keeps_a_clean_record_and_names_what_it_replaced() -> None:
    """repair cuts nothing; it replaces only what a writer cannot write and lists the paths."""
    long_list = list(range(5000))
    replaced: list[str] = []
    fixed = repair(
        {"ok": long_list, "deep": {"v": [10**5000]}, "s": SURROGATE, "o": object()}, replaced
    )
    assert fixed["ok"] == long_list
    assert fixed["s"] == "report-\\udcff.csv"
    assert [entry.split(":")[0] for entry in replaced] == ["deep.v[0]", "o"]
    _writable(fixed)


def test_the_store_json_of_any_record_never_raises() -> None:
    """dumps/dumps_record write any record; a big-but-valid integer keeps its value."""
    record = {"nodeid": SURROGATE, "v": 10**5000, "big": 2**70, "o": BadRepr(), "n": math.nan}
    fixed, text, replaced = dumps_record(record)
    assert fixed["nodeid"] == "report-\\udcff.csv"
    assert {entry.split(":")[0] for entry in replaced} == {"v", "o", "n"}
    [back] = loads_many([text])
    assert back["big"] == 2**70
    assert loads_many([dumps(record)])[0]["nodeid"] == "report-\\udcff.csv"
    clean = {"a": 1}
    assert dumps_record(clean) == (clean, '{"a":1}', [])


def test_writers_write_any_string(tmp_path: pytest.TempPathFactory) -> None:
    """write_atomic and encode_text escape what UTF-8 cannot hold instead of failing."""
    path = write_atomic(tmp_path / "out.txt", f"name {SURROGATE}")  # type: ignore[operator]
    assert path.read_bytes() == b"name report-\\udcff.csv"
    assert encode_text(SURROGATE) == b"report-\\udcff.csv"
    assert encode_text("caf\u00e9") == "caf\u00e9".encode()


def test_plain_fields_is_the_one_fast_check_of_the_serializer_and_the_log_redactor() -> None:
    """A dict of plain values is kept as it is (the same object) by the value serializer and
    by the log redactor; anything that needs work (an object, a huge int, NaN, a secret name,
    a URL with a password) makes both serialize it."""
    serializer, redactor = ValueSerializer(), Redactor(["password"])
    plain = {"a": 1, "b": "x", "c": 2.5, "d": None, "e": True}
    redactor.fields(dict(plain))  # the redactor learns which names are not secret
    assert plain_fields(plain, serializer.kept_key, serializer.plain_text)
    assert serializer.fields(plain) is plain
    assert redactor.fields(plain) is plain
    for key, value in {
        "o": object(),
        "i": 2**70,
        "f": math.nan,
        "u": "https://user:secret@example.org/",
    }.items():
        fields = {**plain, key: value}
        assert not plain_fields(fields, serializer.kept_key, serializer.plain_text) or key == "u"
        assert redactor.fields(fields) is not fields
    assert serializer.fields({1: 2}) == {"1": 2}
    secret = {"password": "hunter2"}
    assert redactor.fields(secret) == {"password": "[REDACTED]"}


def test_log_filters_and_csv_cells_share_one_text_form() -> None:
    """A field value reads the same in a CSV cell and to a log filter (values.field_text):
    JSON with sorted keys and the text as written; keys that do not sort are repaired."""
    from pytest_kari_debug.exporters.csv_export import cell
    from pytest_kari_debug.logger import LogQuery
    from pytest_kari_debug.values import field_text

    value = {"name": "värde", "count": 2}
    assert cell(value) == field_text(value) == '{"count": 2, "name": "värde"}'
    record = {"level": "INFO", "message": "m", "fields": {"a": value}}
    assert LogQuery(fields={"a": cell(value)}).apply([record]) == [record]
    assert [field_text(v) for v in (None, True, 1.5, -3, "=x")] == ["", "true", "1.5", "-3", "=x"]
    assert [cell(v) for v in (-3, "=x")] == ["-3", "'=x"]
    assert json.loads(field_text({1: "a", "b": 2})) == {"1": "a", "b": 2}
