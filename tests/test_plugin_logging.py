"""The plugin's logging: stdlib capture per test, caplog and live logging untouched, exports."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from conftest import read_json

from pytest_kari_debug.logger import KariLogHandler
from pytest_kari_debug.storage import Store

APP_TESTS = """
import logging, threading

log = logging.getLogger("app.weather")

def test_logs(kari_logger, caplog):
    caplog.set_level(logging.INFO, logger="app")
    kari_logger.info("from kari", city="Oslo")
    log.info("fetching %s", "Oslo", extra={"city": "Oslo", "api_key": "sekret"})
    log.debug("too low for the app logger")
    worker = threading.Thread(target=log.warning, args=("from a bare thread",), name="bare")
    worker.start(); worker.join()
    assert [r.getMessage() for r in caplog.records] == ["fetching Oslo", "from a bare thread"]

def test_error():
    try:
        raise ConnectionError("provider down")
    except ConnectionError:
        log.exception("forecast failed")
"""


def _logs(test: dict[str, Any]) -> list[dict[str, Any]]:
    return test["collected_data"]["logging"]["records"]


def test_stdlib_records_are_captured_per_test(pytester: pytest.Pytester) -> None:
    """Each test's stdlib records land in its own session with extras, redacted."""
    pytester.makepyfile(APP_TESTS)
    result = pytester.runpytest("-v", "--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(passed=2)
    tests = {t["nodeid"].split("::")[1]: t for t in read_json(pytester)["tests"]}
    logs = {r["message"]: r for r in _logs(tests["test_logs"])}
    assert set(logs) == {"from kari", "fetching Oslo", "from a bare thread"}
    fetched = logs["fetching Oslo"]
    assert fetched["name"] == "app.weather"
    assert fetched["origin"] == "stdlib"
    assert fetched["fields"] == {"city": "Oslo", "api_key": "[REDACTED]"}
    assert fetched["session_id"] == tests["test_logs"]["session_id"]
    assert logs["from a bare thread"]["thread"] == "bare"
    assert "sekret" not in (pytester.path / "run.json").read_text(encoding="utf-8")
    failed = _logs(tests["test_error"])
    assert [(r["level"], r["exception"]["type"]) for r in failed] == [("ERROR", "ConnectionError")]
    errors = tests["test_error"]["collected_data"]["error_tracking"]["records"]
    assert [e["error_type"] for e in errors] == ["ConnectionError"]
    assert tests["test_logs"]["extra"]["logging"]["counts"]["INFO"] == 2
    assert tests["test_logs"]["extra"]["logging"]["counts"]["WARNING"] == 1
    result.stdout.fnmatch_lines(["logs: 4 records (1 error, 1 warning), 0 dropped"])


def test_caplog_and_logging_config_are_untouched(pytester: pytest.Pytester) -> None:
    """caplog sees the same records, levels and handlers with the plugin as without it."""
    pytester.makepyfile(
        """
        import logging

        def test_config(caplog, request):
            root = logging.getLogger()
            app = logging.getLogger("app")
            assert root.level == logging.WARNING
            assert app.level == logging.NOTSET
            app.info("not emitted: root is at WARNING")
            app.warning("emitted")
            assert [r.getMessage() for r in caplog.records] == ["emitted"]
            assert caplog.text.count("emitted") == 1
            request.config.kari_seen = [type(h).__name__ for h in root.handlers]
        """
    )
    for args in ((), ("--kari-debug",)):
        pytester.runpytest(*args).assert_outcomes(passed=1)
    root = logging.getLogger()
    assert not any(isinstance(h, KariLogHandler) for h in root.handlers)
    assert not any(isinstance(h, KariLogHandler) for h in logging.getLogger("app").handlers)


def test_records_outside_tests_and_without_session_are_ignored(pytester: pytest.Pytester) -> None:
    """Without --kari-debug or a kari fixture nothing is captured; module-level logs neither."""
    pytester.makepyfile(
        """
        import logging
        logging.getLogger("app").warning("at import")

        def test_plain():
            logging.getLogger("app").warning("plain test")

        def test_with_fixture(kari_debug):
            logging.getLogger("app").warning("fixture test")
        """
    )
    pytester.runpytest("--kari-json=run.json").assert_outcomes(passed=2)
    tests = read_json(pytester)["tests"]
    assert [t["nodeid"].split("::")[1] for t in tests] == ["test_with_fixture"]
    assert [r["message"] for r in _logs(tests[0])] == ["fixture test"]


def test_live_logging_output_is_unchanged(pytester: pytest.Pytester) -> None:
    """log_cli shows each record once, exactly as without the plugin."""
    pytester.makepyfile(
        """
        import logging
        def test_live():
            logging.getLogger("app").warning("live message %d", 7)
        """
    )
    outputs = []
    for args in ((), ("--kari-debug",)):
        result = pytester.runpytest("-o", "log_cli=true", "--log-cli-level=INFO", *args)
        result.assert_outcomes(passed=1)
        outputs.append([line for line in result.outlines if "live message" in line])
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 1


def test_non_propagating_loggers_are_captured(pytester: pytest.Pytester) -> None:
    """A logger with propagate=False is captured, as pytest's caplog captures it."""
    pytester.makeconftest(
        """
        import logging
        quiet = logging.getLogger("quiet")
        quiet.propagate = False
        quiet.setLevel(logging.INFO)
        """
    )
    pytester.makepyfile(
        """
        import logging
        def test_quiet(kari_debug, caplog):
            logging.getLogger("quiet").info("hidden from root")
            assert caplog.messages == ["hidden from root"]
        """
    )
    pytester.runpytest("--kari-json=run.json").assert_outcomes(passed=1)
    assert [r["message"] for r in _logs(read_json(pytester)["tests"][0])] == ["hidden from root"]
    assert not any(isinstance(h, KariLogHandler) for h in logging.getLogger("quiet").handlers)


def test_kari_log_level_applies_to_both_sources(pytester: pytest.Pytester) -> None:
    """--kari-log-level=WARNING keeps WARNING and up from kari_logger and stdlib alike."""
    pytester.makepyfile(
        """
        import logging
        def test_levels(kari_logger):
            logging.getLogger("app").setLevel(logging.DEBUG)
            kari_logger.info("kari info")
            kari_logger.warning("kari warning")
            logging.getLogger("app").info("stdlib info")
            logging.getLogger("app").error("stdlib error")
        """
    )
    pytester.runpytest("--kari-log-level=WARNING", "--kari-json=run.json").assert_outcomes(passed=1)
    messages = sorted(r["message"] for r in _logs(read_json(pytester)["tests"][0]))
    assert messages == ["kari warning", "stdlib error"]


def test_bad_kari_log_level_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """An unknown level stops the run at start-up naming the accepted levels."""
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--kari-log-level=LOUD")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*log_level must be one of DEBUG, INFO, WARNING*"])


HOSTILE = 'x,"y"\nz\r\n\x00\x1b[31m<b>&</b> =SUM(A1) \ud800'


def test_logs_csv_is_written_and_parses_back(pytester: pytest.Pytester) -> None:
    """--kari-csv DIR writes logs.csv: one row per record, test column, hostile text intact."""
    pytester.makepyfile(
        f"""
        import logging
        def test_one(kari_logger):
            kari_logger.info({HOSTILE!r}, note={HOSTILE!r}, user={{"id": 7, "token": "t"}})
        def test_two(kari_logger):
            logging.getLogger("app").warning("two")
        """
    )
    result = pytester.runpytest("-v", "--kari-csv=out", "--kari-json=run.json")
    result.assert_outcomes(passed=2, warnings=0)  # the store and JSON took the text too
    stored = Store(pytester.path / ".kari-debug" / "kari.db", create=False)
    try:
        assert stored.records("log", newest_first=False)[0]["message"].endswith("\\ud800")
    finally:
        stored.close()
    assert read_json(pytester)["tests"][0]["collected_data"]["logging"]["records"][0]["message"][
        :2
    ] == ("x,")
    path = pytester.path / "out" / "logs.csv"
    result.stdout.fnmatch_lines([f"logs.csv: {Path('out') / 'logs.csv'}"])
    raw = path.read_bytes().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert [row["test"].split("::")[1] for row in rows] == ["test_one", "test_two"]
    first = rows[0]
    assert first["message"].startswith('x,"y"\nz\r\n\x00\x1b[31m<b>&</b> =SUM(A1) ')
    assert first["message"].endswith("\\ud800")
    assert first["fields.note"] == first["message"]
    assert first["fields.user.id"] == "7"
    assert first["fields.user.token"] == "[REDACTED]"
    assert rows[1]["name"] == "app"
    assert rows[1]["fields.note"] == ""


def test_drops_show_in_csv_summary_and_json(pytester: pytest.Pytester) -> None:
    """A test logging past max_log_entries shows its drops in logs.csv, JSON and summary."""
    pytester.makepyfile(
        """
        def test_noisy(kari_logger):
            for n in range(10):
                kari_logger.info(f"n{n}")
        """
    )
    result = pytester.runpytest(
        "-v", "--kari-max-log-entries=3", "--kari-csv=out", "--kari-json=run.json"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["logs: 3 records (0 error, 0 warning), 7 dropped"])
    rows = list(csv.DictReader(io.StringIO((pytester.path / "out/logs.csv").read_text())))
    # The first record, the marker where 7 were dropped, the newest 2.
    assert [row["message"] for row in rows][:1] + [r["message"] for r in rows][2:] == [
        "n0",
        "n8",
        "n9",
    ]
    assert rows[1]["message"] == (
        "7 log record(s) dropped here: the test reached max_log_entries=3;"
        " its first 1 and newest 2 records are kept"
    )
    assert rows[1]["fields.dropped"] == "7"
    assert len(rows) == 4
    document = read_json(pytester)
    assert document["summary"]["dropped"]["logging"] == 7
    assert document["sections"]["logging"] == {
        "records": 3,
        "dropped": 7,
        "by_level": {"DEBUG": 0, "INFO": 3, "WARNING": 0, "ERROR": 0, "CRITICAL": 0},
    }


def test_log_records_are_in_the_store(pytester: pytest.Pytester, pytester_store: Path) -> None:
    """Every captured record is a ``log`` row of its test, with level and logger name."""
    pytester.makepyfile(APP_TESTS)
    pytester.runpytest("--kari-debug").assert_outcomes(passed=2)
    store = Store(pytester_store, create=False)
    try:
        rows = store.records("log", newest_first=False)
    finally:
        store.close()
    assert [(r["level"], r["name"], r["message"]) for r in rows] == [
        ("INFO", "kari.test_log_records_are_in_the_store0", "from kari"),
        ("INFO", "app.weather", "fetching Oslo"),
        ("WARNING", "app.weather", "from a bare thread"),
        ("ERROR", "app.weather", "forecast failed"),
    ]
    assert len({r["test_id"] for r in rows}) == 2


def test_xdist_workers_logs_reach_one_csv(pytester: pytest.Pytester) -> None:
    """With -n 2 the controller writes one logs.csv holding every worker's records."""
    pytester.makepyfile(
        """
        import logging, pytest
        @pytest.mark.parametrize("n", range(6))
        def test_many(n, kari_logger):
            kari_logger.info(f"kari {n}")
            logging.getLogger("app").warning(f"stdlib {n}")
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--kari-debug", "--kari-csv=out")
    result.assert_outcomes(passed=6)
    rows = list(csv.DictReader(io.StringIO((pytester.path / "out/logs.csv").read_text())))
    assert sorted(row["message"] for row in rows) == sorted(
        [f"kari {n}" for n in range(6)] + [f"stdlib {n}" for n in range(6)]
    )
    assert len({row["session_id"] for row in rows}) == 6


def test_unwritable_csv_dir_is_a_diagnostic(pytester: pytest.Pytester) -> None:
    """A logs.csv that cannot be written warns; the tests still pass."""
    pytester.makepyfile("def test_ok(kari_logger): kari_logger.info('x')")
    (pytester.path / "blocked").write_text("a file, not a folder")
    result = pytester.runpytest("--kari-csv=blocked")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 1
    assert outcomes["warnings"] >= 1  # one per CSV file the run writes
    result.stdout.fnmatch_lines(["*could not write*logs.csv*"])
    assert result.ret == 0


def test_capture_survives_a_test_that_resets_logging(pytester: pytest.Pytester) -> None:
    """The handler stays attached between tests; a test that removes it gets it back next."""
    pytester.makepyfile(
        """
        import logging

        def test_reset(kari_debug):
            logging.getLogger("app").warning("before the reset")
            logging.basicConfig(force=True)  # removes every root handler, ours too

        def test_after(kari_debug):
            logging.getLogger("app").warning("after the reset")
        """
    )
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        pytester.runpytest("--kari-json=run.json").assert_outcomes(passed=2)
        assert not any(isinstance(h, KariLogHandler) for h in root.handlers)
    finally:
        root.handlers[:] = saved  # basicConfig(force=True) ran in this process
    tests = {t["nodeid"].split("::")[1]: t for t in read_json(pytester)["tests"]}
    assert [r["message"] for r in _logs(tests["test_reset"])] == ["before the reset"]
    assert [r["message"] for r in _logs(tests["test_after"])] == ["after the reset"]


_WARNING = {"level": "WARNING", "origin": "stdlib", "message": "w"}
_MARKER = {"level": "WARNING", "origin": "kari.drops", "message": "3 dropped"}


@pytest.mark.parametrize(
    ("collected", "expected"),
    [
        (
            {"logging": {"records": [_WARNING, _MARKER, _WARNING], "dropped": 3}},
            ({"WARNING": 2}, 2, 3),
        ),
        ({"logging": {"records": [], "dropped": 0}}, ({}, 0, 0)),
        ({"logging": {"records": (_WARNING,), "dropped": 0}}, ({"WARNING": 1}, 1, 0)),
        ({"logging": {"records": [_WARNING, "odd", None], "dropped": -2}}, ({"WARNING": 1}, 1, 0)),
        ({"logging": {"records": [{"level": "TRACE"}], "dropped": 2.0}}, ({"TRACE": 1}, 1, 2)),
        ({"logging": {"error": "collection failed"}}, ({}, 0, 0)),
        ({"metrics": {}}, None),
        ("not a dict", None),
    ],
)
def test_log_counts_of_a_record_whatever_its_logging_data_holds(
    collected: Any, expected: tuple[dict[str, int], int, int] | None
) -> None:
    """A test's log counts per level, records and drops (drop markers not counted), read the
    same from the logger's own shape (a list of dicts, an int) as from any other."""
    from pytest_kari_debug.plugin.logcapture import _count_logs

    record: dict[str, Any] = {"collected_data": collected, "extra": {}}
    _count_logs(None, record)  # type: ignore[arg-type]
    if expected is None:
        assert "logging" not in record["extra"]
        return
    counts, total, dropped = expected
    zero = {"DEBUG": 0, "INFO": 0, "WARNING": 0, "ERROR": 0, "CRITICAL": 0}
    assert record["extra"]["logging"] == {
        "counts": {**zero, **counts},
        "records": total,
        "dropped": dropped,
    }
