"""The pytest plugin's core: sessions per test, outcomes, store, JSON, xdist, robustness."""

from __future__ import annotations

import gc
import json
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import jsonschema
import pytest
from conftest import read_json

from pytest_kari_debug.exporters.json_export import SCHEMA_PATH
from pytest_kari_debug.plugin.core import session_of

OUTCOMES_FILE = """
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")

def test_pass(kari_logger):
    kari_logger.info("hello from the test", answer=42)

def test_fail():
    assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skip():
    pass

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert 0

@pytest.mark.xfail(reason="flaky", strict=False)
def test_xpass():
    pass

def test_setup_error(broken_setup):
    pass

def test_teardown_error(broken_teardown):
    pass
"""


def _outcomes(document: dict) -> dict[str, str]:
    return {t["nodeid"].split("::")[-1]: t["outcome"] for t in document["tests"]}


def test_every_outcome_is_recorded_and_the_json_matches_its_schema(
    pytester: pytest.Pytester,
) -> None:
    """Each outcome is recorded per test, and the JSON export validates against the schema."""
    pytester.makepyfile(test_outcomes=OUTCOMES_FILE)
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(passed=2, failed=1, skipped=1, xfailed=1, xpassed=1, errors=2)
    document = read_json(pytester)
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    assert _outcomes(document) == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_skip": "skipped",
        "test_xfail": "xfailed",
        "test_xpass": "xpassed",
        "test_setup_error": "error",
        "test_teardown_error": "error",
    }
    passed = next(t for t in document["tests"] if t["nodeid"].endswith("test_pass"))
    assert set(passed["phases"]) == {"setup", "call", "teardown"}
    records = passed["collected_data"]["logging"]["records"]
    assert [(r["message"], r["fields"]) for r in records] == [
        ("hello from the test", {"answer": 42})
    ]
    failed = next(t for t in document["tests"] if t["nodeid"].endswith("test_fail"))
    assert "assert 1 == 2" in failed["longrepr"]
    assert document["summary"]["outcomes"]["error"] == 2
    assert document["run"]["exit_status"] == 1


def test_phases_are_timed_separately(pytester: pytest.Pytester) -> None:
    """Setup, call and teardown each get their own duration."""
    pytester.makepyfile(
        """
        import time, pytest
        @pytest.fixture
        def slow():
            time.sleep(0.05)
            yield
            time.sleep(0.03)
        def test_it(slow):
            time.sleep(0.01)
        """
    )
    pytester.runpytest("--kari-debug", "--kari-json=run.json").assert_outcomes(passed=1)
    phases = read_json(pytester)["tests"][0]["phases"]
    assert phases["setup"] >= 50
    assert phases["teardown"] >= 30
    assert phases["call"] >= 10


def test_store_holds_one_run_its_tests_and_records(
    pytester: pytest.Pytester, pytester_store: Path
) -> None:
    """The default store under the rootdir gets the run, one row per test and the log records."""
    pytester.makepyfile(test_outcomes=OUTCOMES_FILE)
    pytester.runpytest("--kari-debug")
    db = sqlite3.connect(pytester_store)
    assert db.execute("SELECT count(*), max(exit_status) FROM runs").fetchone() == (1, 1)
    assert db.execute("SELECT count(*) FROM tests").fetchone() == (7,)
    outcome = db.execute("SELECT outcome FROM tests WHERE nodeid LIKE '%test_fail'").fetchone()
    assert outcome == ("failed",)
    messages = db.execute("SELECT json_extract(data, '$.message') FROM records WHERE kind='log'")
    assert messages.fetchall() == [("hello from the test",)]
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_store_none_writes_no_store(pytester: pytest.Pytester, pytester_store: Path) -> None:
    """--kari-store none records nothing on disk."""
    pytester.makepyfile("def test_ok(): pass")
    pytester.runpytest("--kari-debug", "--kari-store=none").assert_outcomes(passed=1)
    assert not pytester_store.exists()


def test_terminal_summary_counts_and_names_files(pytester: pytest.Pytester) -> None:
    """The kari-debug section gives the counts and the paths written."""
    pytester.makepyfile(test_outcomes=OUTCOMES_FILE)
    result = pytester.runpytest("-v", "--kari-debug", "--kari-json=run.json")
    result.stdout.fnmatch_lines(
        [
            "*= kari-debug =*",
            "7 tests recorded for 1 extension(s) (*): 2 error, 1 failed, 1 passed, 1 skipped,"
            " 1 xfailed, 1 xpassed",
            "store: *kari.db (run 1)",
            "json: *run.json",
        ]
    )


def test_markers_are_registered_with_help(pytester: pytest.Pytester) -> None:
    """pytest --markers lists every kari marker with its help text."""
    result = pytester.runpytest("--markers")
    for name in ("kari_extension", "kari_alert", "kari_budget", "kari_profile", "kari_gate"):
        result.stdout.fnmatch_lines([f"@pytest.mark.{name}*"])


def test_fixtures_work_without_kari_debug(pytester: pytest.Pytester) -> None:
    """Requesting a kari fixture wraps that test in a session even without --kari-debug."""
    pytester.makepyfile(
        """
        def test_uses_fixture(kari_debug, kari_logger, kari_metrics, kari_errors, kari_profiler,
                              kari_tracer, kari_alerts):
            assert kari_logger is kari_debug.get_logger()
            kari_metrics.record_metric("hits", 1, "count")
            kari_logger.info("seen")

        def test_plain():
            pass
        """
    )
    pytester.runpytest("--kari-json=run.json").assert_outcomes(passed=2)
    tests = read_json(pytester)["tests"]
    assert [t["nodeid"].split("::")[-1] for t in tests] == ["test_uses_fixture"]
    assert tests[0]["collected_data"]["logging"]["records"][0]["message"] == "seen"


def test_extension_id_from_marker_then_ini_then_package(pytester: pytest.Pytester) -> None:
    """The marker wins over the ini key, which wins over the test file's top package name."""
    pytester.makeini("[pytest]\nkari_extension_id = from-ini\n")
    pkg = pytester.mkpydir("weatherpkg")
    (pkg / "test_a.py").write_text(
        "import pytest\n"
        "@pytest.mark.kari_extension('from-marker', name='Marked')\n"
        "def test_marked(): pass\n"
        "def test_unmarked(): pass\n"
    )
    pytester.runpytest("--kari-debug", "--kari-json=run.json").assert_outcomes(passed=2)
    ids = {t["nodeid"].split("::")[-1]: t["extension_id"] for t in read_json(pytester)["tests"]}
    assert ids == {"test_marked": "from-marker", "test_unmarked": "from-ini"}
    pytester.makeini("[pytest]\n")
    pytester.runpytest("--kari-debug", "--kari-json=run.json").assert_outcomes(passed=2)
    ids = {t["nodeid"].split("::")[-1]: t["extension_id"] for t in read_json(pytester)["tests"]}
    assert ids == {"test_marked": "from-marker", "test_unmarked": "weatherpkg"}
    marked = next(t for t in read_json(pytester)["tests"] if t["nodeid"].endswith("test_marked"))
    assert marked["extension_name"] == "Marked"


@pytest.mark.parametrize(
    ("marker", "problem"),
    [
        ("kari_extension()", "takes one extension id string"),
        ("kari_extension(42)", "takes one extension id string"),
        ("kari_extension('x', colour='red')", "unknown argument(s) ['colour']"),
        ("kari_extension('x', name=3)", "name must be a string"),
        ("kari_profile(1)", "takes no arguments"),
    ],
)
def test_bad_marker_arguments_are_a_usage_error(
    pytester: pytest.Pytester, marker: str, problem: str
) -> None:
    """A kari marker with bad arguments stops the run, naming the marker and the test."""
    pytester.makepyfile(f"import pytest\n@pytest.mark.{marker}\ndef test_bad(): pass\n")
    result = pytester.runpytest("--kari-debug")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    marker_name = marker.split("(")[0]
    result.stderr.fnmatch_lines([f"*marker {marker_name} on test_bad_marker*::test_bad*"])
    assert problem in result.stderr.str()


def test_bad_options_and_ini_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    """A bad flag or ini value stops the run naming the field, the value and what is accepted."""
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--kari-sampling-rate=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*sampling_rate must be a number from 0.0 to 1.0, got 2.0*"])
    pytester.makeini("[pytest]\nkari_max_log_entries = lots\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*max_log_entries (from ini kari_max_log_entries): 'lots'*"])


def test_flag_overrides_ini(pytester: pytest.Pytester) -> None:
    """A flag beats the ini key of the same field, and both reach the managers."""
    pytester.makeini("[pytest]\nkari_max_log_entries = 3\nkari_log_level = WARNING\n")
    pytester.makepyfile(
        """
        def test_limits(kari_debug):
            assert kari_debug.configuration.max_log_entries == 7
            assert kari_debug.configuration.log_level == "WARNING"
        """
    )
    pytester.runpytest("--kari-max-log-entries=7").assert_outcomes(passed=1)


FAULTY_CONFTEST = """
from pytest_kari_debug.manager import ExtensionDebugManager

def explode(self, session_id):
    raise RuntimeError("injected fault")

ExtensionDebugManager.stop_debug_session = explode
"""


@pytest.mark.parametrize("ini", ["[pytest]\n", "[pytest]\nfilterwarnings = error\n"])
def test_internal_errors_never_change_outcomes(pytester: pytest.Pytester, ini: str) -> None:
    """A fault inside the plugin becomes a KariDebugWarning; outcomes and exit status stay."""
    pytester.makeini(ini)
    pytester.makeconftest(FAULTY_CONFTEST)
    pytester.makepyfile(
        """
        def test_pass():
            pass
        def test_fail():
            assert False
        """
    )
    result = pytester.runpytest_subprocess("--kari-debug")
    result.assert_outcomes(passed=1, failed=1, warnings=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*KariDebugWarning: kari-debug: internal error in stopping the debug session*"
            "injected fault*"
        ]
    )


def test_unwritable_store_is_a_warning_and_results_stand(pytester: pytest.Pytester) -> None:
    """A store path that cannot be created warns; the tests and the exit status are unchanged."""
    (pytester.path / "blocker").write_text("a file where a folder should be")
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest(
        "--kari-debug", "--kari-store=blocker/kari.db", "--kari-json=run.json"
    )
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*store disabled: cannot * store*blocker/kari.db*"])
    assert read_json(pytester)["tests"][0]["outcome"] == "passed"


def test_foreign_store_file_is_named_and_left_alone(pytester: pytest.Pytester) -> None:
    """A store path holding another kind of file is reported by name and never overwritten."""
    notes = pytester.path / "notes.txt"
    notes.write_text("keep me")
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--kari-debug", "--kari-store=notes.txt")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*notes.txt' is not a SQLite store (left untouched)*"])
    assert notes.read_text() == "keep me"


def test_unwritable_json_path_is_a_warning_and_results_stand(pytester: pytest.Pytester) -> None:
    """A JSON path that cannot be written warns; the exit status follows the tests alone."""
    (pytester.path / "blocker").write_text("x")
    pytester.makepyfile("def test_fail(): assert False")
    result = pytester.runpytest("--kari-debug", "--kari-json=blocker/run.json")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*could not write --kari-json*blocker/run.json*"])


def test_xdist_controller_writes_one_run_with_every_worker(
    pytester: pytest.Pytester, pytester_store: Path
) -> None:
    """With -n 2 the controller writes one run and one JSON holding every worker's tests."""
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.parametrize("n", range(12))
        def test_many(n, kari_logger):
            kari_logger.info(f"record {n}")
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(passed=12)
    document = read_json(pytester)
    assert len(document["tests"]) == 12
    assert {t["worker"] for t in document["tests"]} == {"gw0", "gw1"}
    assert document["run"]["workers"] == 2
    db = sqlite3.connect(pytester_store)
    assert db.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM tests").fetchone() == (12,)
    assert db.execute("SELECT count(*) FROM records WHERE kind='log'").fetchone() == (12,)


def test_crashed_xdist_worker_keeps_other_tests(pytester: pytest.Pytester) -> None:
    """A worker dying mid-test is recorded as a failed, crashed test; the others are intact."""
    pytester.makepyfile(
        """
        import os, pytest
        @pytest.mark.parametrize("n", range(6))
        def test_ok(n, kari_logger):
            kari_logger.info(f"ok {n}")
        def test_crash():
            os._exit(3)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(passed=6, failed=1)
    tests = read_json(pytester)["tests"]
    crashed = [t for t in tests if t.get("crashed")]
    assert [t["nodeid"].split("::")[-1] for t in crashed] == ["test_crash"]
    assert crashed[0]["outcome"] == "failed"
    kept = [t for t in tests if not t.get("crashed")]
    assert len(kept) == 6
    assert all(t["collected_data"]["logging"]["records"] for t in kept)


def test_interrupted_run_keeps_finished_tests(
    pytester: pytest.Pytester, pytester_store: Path
) -> None:
    """A run stopped by Ctrl-C keeps every test that finished before it in the store."""
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.parametrize("n", range(3))
        def test_done(n):
            pass
        def test_interrupt():
            raise KeyboardInterrupt
        def test_never():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--kari-debug")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    db = sqlite3.connect(pytester_store)
    nodeids = [row[0] for row in db.execute("SELECT nodeid FROM tests ORDER BY id")]
    assert len(nodeids) == 3
    assert all("test_done" in nodeid for nodeid in nodeids)
    assert db.execute("SELECT exit_status FROM runs").fetchone() == (
        int(pytest.ExitCode.INTERRUPTED),
    )


def test_verdict_hook_fails_a_passing_test(pytester: pytest.Pytester) -> None:
    """A conftest implementing pytest_kari_debug_verdicts fails a passing test with its message."""
    pytester.makeconftest(
        """
        def pytest_kari_debug_verdicts(item, manager, session_id):
            records = manager.get_logger().session_records(session_id)
            errors = [r for r in records if r.level == "ERROR"]
            if errors:
                return [f"rule 'log.error > 0' fired: log.error={len(errors)}, threshold 0"]
            return []
        """
    )
    pytester.makepyfile(
        """
        def test_noisy(kari_logger):
            kari_logger.error("boom")
        def test_quiet(kari_logger):
            kari_logger.info("fine")
        """
    )
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(passed=1, failed=1)
    # the verdict's message and the test's location, never the plugin's frames
    result.stdout.fnmatch_lines(
        [
            "rule 'log.error > 0' fired: log.error=1, threshold 0",
            "kari-debug verdict of test_noisy at test_verdict_hook_fails_a_passing_test.py:*",
        ]
    )
    failures = result.stdout.str().split("= FAILURES =")[1].split("kari-debug =")[0]
    assert "pytest_kari_debug" not in failures
    assert _outcomes(read_json(pytester)) == {"test_noisy": "failed", "test_quiet": "passed"}


def test_hooks_add_session_options_and_record_data(pytester: pytest.Pytester) -> None:
    """Conftest examples of pytest_kari_debug_session_options, _test_record and _run_finished."""
    pytester.makeconftest(
        """
        def pytest_kari_debug_session_options(item):
            return {"profile_memory": True} if "mem" in item.name else None

        def pytest_kari_debug_test_record(item, record):
            record["extra"]["owner"] = "team-weather"

        def pytest_kari_debug_run_finished(config, run, tests, sections):
            sections["count"] = len(tests)
        """
    )
    pytester.makepyfile(
        """
        def test_mem(kari_debug):
            assert kari_debug.active_sessions()[0].options == {"profile_memory": True}
        def test_plain(kari_debug):
            assert kari_debug.active_sessions()[0].options == {}
        """
    )
    pytester.runpytest("--kari-debug", "--kari-json=run.json").assert_outcomes(passed=2)
    document = read_json(pytester)
    assert document["sections"]["count"] == 2
    assert {t["extra"]["owner"] for t in document["tests"]} == {"team-weather"}


def test_async_tests_are_attributed(pytester: pytest.Pytester) -> None:
    """Records made by an async test and the tasks it spawns land in its session."""
    pytester.makepyfile(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_async(kari_logger):
            async def child(n):
                kari_logger.info(f"child {n}")
            await asyncio.gather(child(1), child(2))
        """
    )
    pytester.runpytest("--kari-debug", "--kari-json=run.json", "-p", "asyncio").assert_outcomes(
        passed=1
    )
    records = read_json(pytester)["tests"][0]["collected_data"]["logging"]["records"]
    assert sorted(r["message"] for r in records) == ["child 1", "child 2"]


def test_a_record_hook_sees_the_plugins_own_parts_of_the_record(
    pytester: pytest.Pytester,
) -> None:
    """The plugin puts its parts in a test's record (log counts, alert results, error records'
    node ids) before ``pytest_kari_debug_test_record`` runs, whichever conftest implements it
    (a nested conftest's hook used to run first and see none of them)."""
    hook = """
        import json

        def pytest_kari_debug_test_record(item, record):
            errors = record["collected_data"]["error_tracking"]["records"]
            seen = {
                "logging": record["extra"].get("logging"),
                "alerts": sorted(record["extra"].get("alerts") or {}),
                "error_nodeids": [error.get("nodeid") for error in errors],
            }
            with open(f"{item.name}.WHO.json", "w") as handle:
                json.dump(seen, handle)
        """
    pytester.makeconftest(hook.replace("WHO", "top"))
    pytester.mkpydir("nested")
    (pytester.path / "nested" / "conftest.py").write_text(
        textwrap.dedent(hook.replace("WHO", "nested"))
    )
    test = """
        import logging
        import pytest

        @pytest.mark.kari_budget(duration_ms=60000)
        def test_{name}(kari_errors):
            logging.getLogger("app").warning("careful")
            kari_errors.record_exception(ValueError("boom"))
        """
    pytester.makepyfile(test_top=test.format(name="top"))
    (pytester.path / "nested" / "test_nested.py").write_text(
        textwrap.dedent(test.format(name="nested"))
    )
    pytester.runpytest("--kari-debug", "--kari-store=none").assert_outcomes(passed=2)
    for seen_by in (
        "test_top.top",
        "test_nested.top",
        "test_nested.nested",  # registered after the plugin's features: its hook ran first
    ):
        nodeid = (
            "nested/test_nested.py::test_nested" if "nested" in seen_by else "test_top.py::test_top"
        )
        seen = json.loads((pytester.path / f"{seen_by}.json").read_text())
        assert seen["logging"]["counts"]["WARNING"] == 1
        assert seen["logging"]["records"] == 1
        assert "rules" in seen["alerts"]
        assert seen["error_nodeids"] == [nodeid]


SESSION_HOOKS = {
    "kari-debug-test-sessions", "kari-debug-log-capture", "kari-debug-failures",
    "kari-debug-alerts-record", "kari-debug-hang-dump-record",
}  # fmt: skip
FEATURE_HOOKS = (
    "kari-debug-profiled-tests",
    "kari-debug-traced-tests",
    "kari-debug-measured-tests",
    "kari-debug-ruled-tests",
    *sorted(SESSION_HOOKS),
)
PLAIN = "def test_a():\n    pass\n"


def test_a_run_without_alerts_adds_no_logger(pytester: pytest.Pytester) -> None:
    """pytest's log capture walks every logger of the process at each phase of each test: a
    --kari-debug run adds none of its own until an alert is logged (its log channel's logger is
    looked up then)."""
    pytester.makeconftest(
        """
        import json, logging

        def pytest_sessionfinish(session):
            names = sorted(logging.getLogger().manager.loggerDict)
            with open("loggers.json", "w") as handle:
                json.dump([n for n in names if n.startswith("pytest_kari")], handle)
        """
    )
    pytester.makepyfile(PLAIN)
    result = pytester.runpytest_subprocess("--kari-debug", "--kari-store=none")
    result.assert_outcomes(passed=1)
    assert json.loads((pytester.path / "loggers.json").read_text()) == []


@pytest.mark.parametrize(
    ("source", "args", "registered"),
    [
        (PLAIN, (), set()),
        ("def test_a(kari_logger):\n    pass\n", (), SESSION_HOOKS),
        (PLAIN, ("--kari-debug",), SESSION_HOOKS),
        (
            "import pytest\n@pytest.mark.kari_profile\ndef test_a():\n    pass\n",
            ("--kari-debug",),
            {"kari-debug-profiled-tests", *SESSION_HOOKS},
        ),
        (PLAIN, ("--kari-debug", "--kari-trace"), {"kari-debug-traced-tests", *SESSION_HOOKS}),
        (PLAIN, ("--kari-debug", "--kari-repeat=2"), {"kari-debug-measured-tests", *SESSION_HOOKS}),
        (
            "import pytest\n@pytest.mark.kari_budget(duration_ms=1000)\ndef test_a():\n    pass\n",
            ("--kari-debug",),
            {"kari-debug-ruled-tests", *SESSION_HOOKS},
        ),
    ],
)
def test_per_test_hooks_run_only_in_runs_that_use_them(
    pytester: pytest.Pytester, source: str, args: tuple[str, ...], registered: set[str]
) -> None:
    """A run without sessions pays for no per-test hook or step; a plain --kari-debug run for
    no profiling, tracing, gate or rule hook; a run that uses one of those does."""
    pytester.makeconftest(
        f"""
        FEATURE_HOOKS = {FEATURE_HOOKS!r}

        from pytest_kari_debug.plugin.state import STATE

        def pytest_sessionfinish(session):
            manager = session.config.pluginmanager
            state = session.config.stash.get(STATE, None)
            steps = state.steps.names if state is not None else []
            session.config.kari_registered = sorted(
                name for name in FEATURE_HOOKS if manager.has_plugin(name) or name in steps
            )
        """
    )
    pytester.makepyfile(source)
    recorder = pytester.inline_run("--kari-store=none", *args)
    recorder.assertoutcome(passed=1)
    config = recorder.getcall("pytest_sessionfinish").session.config
    assert set(config.kari_registered) == registered


def test_a_plain_run_dispatches_no_verdicts_or_record_hook_and_still_judges(
    pytester: pytest.Pytester,
) -> None:
    """The plugin's own verdicts (alerts, budgets) and record parts are steps of the core's
    wrappers: in a --kari-debug run without gates or a user's hook nothing implements the two
    per-test hooks (pluggy dispatches neither at each test), and a broken budget still fails
    its test while its record still carries the alerts' part."""
    pytester.makeconftest(
        """
        def pytest_sessionfinish(session):
            hook = session.config.hook
            session.config.kari_impls = (
                len(hook.pytest_kari_debug_verdicts.get_hookimpls()),
                len(hook.pytest_kari_debug_test_record.get_hookimpls()),
            )
        """
    )
    pytester.makepyfile(
        """
        import time, pytest

        @pytest.mark.kari_budget(duration_ms=1)
        def test_slow():
            time.sleep(0.02)

        def test_quick():
            pass
        """
    )
    recorder = pytester.inline_run("--kari-debug", "--kari-store=none", "--kari-json=run.json")
    recorder.assertoutcome(passed=1, failed=1)
    config = recorder.getcall("pytest_sessionfinish").session.config
    assert config.kari_impls == (0, 0)
    (failed,) = [r for r in recorder.getreports("pytest_runtest_logreport") if r.failed]
    assert "duration_ms" in failed.longreprtext
    tests = json.loads((pytester.path / "run.json").read_text())["tests"]
    (slow,) = [test for test in tests if test["nodeid"].endswith("::test_slow")]
    assert slow["outcome"] == "failed"
    assert slow["extra"]["alerts"]["verdicts"]


def test_finished_tests_are_kept_as_text_only(pytester: pytest.Pytester) -> None:
    """pytest keeps reports and items to the end: neither holds a test's record afterwards."""
    pytester.makepyfile(
        """
        def test_a(kari_logger):
            kari_logger.info("kept")

        def test_b():
            pass
        """
    )
    recorder = pytester.inline_run("--kari-debug", "--kari-json=run.json")
    recorder.assertoutcome(passed=2)
    reports = recorder.getreports("pytest_runtest_logreport")
    assert len(reports) == 6
    assert not any(hasattr(report, "kari_debug") for report in reports)
    items = recorder.getcall("pytest_collection_finish").session.items
    assert len(items) == 2
    assert all(session_of(item) is None for item in items)
    tests = {t["nodeid"].split("::")[-1]: t for t in read_json(pytester)["tests"]}
    assert [r["message"] for r in tests["test_a"]["collected_data"]["logging"]["records"]] == [
        "kept"
    ]


@pytest.mark.parametrize("enabled", [True, False])
def test_the_run_leaves_garbage_collection_as_it_found_it(
    pytester: pytest.Pytester, enabled: bool
) -> None:
    """The pause around the run's end never leaves the collector off (or turns it on)."""
    pytester.makepyfile("def test_a():\n    pass\n")
    was = gc.isenabled()
    try:
        if not enabled:
            gc.disable()
        pytester.inline_run("--kari-debug", "--kari-store=none").assertoutcome(passed=1)
        assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()


def test_markers_added_by_a_conftest_at_collection_count(pytester: pytest.Pytester) -> None:
    """A kari marker a conftest adds in pytest_collection_modifyitems is honoured."""
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_tagged":
                    item.add_marker(pytest.mark.kari_extension("added-ext"))
        """
    )
    pytester.makepyfile("def test_tagged():\n    pass\n\ndef test_plain():\n    pass\n")
    pytester.runpytest("--kari-store=none", "--kari-json=run.json").assert_outcomes(passed=2)
    tests = {t["nodeid"].split("::")[-1]: t for t in read_json(pytester)["tests"]}
    assert set(tests) == {"test_tagged"}  # a kari marker puts the test in a session
    assert tests["test_tagged"]["extension_id"] == "added-ext"


def test_run_records_the_git_commit_and_branch(pytester: pytest.Pytester) -> None:
    """A run in a git repository records HEAD's commit and branch; outside one, neither."""
    pytester.makepyfile("def test_a():\n    pass\n")
    run = ("--kari-debug", "--kari-store=none", "--kari-json=run.json")
    pytester.runpytest(*run).assert_outcomes(passed=1)
    outside = read_json(pytester)["run"]
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=trunk"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run([*git, *args], cwd=pytester.path, check=True, capture_output=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=pytester.path, check=True, capture_output=True, text=True
    )
    pytester.runpytest(*run).assert_outcomes(passed=1)
    inside = read_json(pytester)["run"]
    assert (inside["git_commit"], inside["git_branch"]) == (head.stdout.strip(), "trunk")
    parent = subprocess.run(["git", "rev-parse"], cwd=pytester.path.parent, capture_output=True)
    if parent.returncode != 0:  # the temporary folder is in no repository
        assert (outside["git_commit"], outside["git_branch"]) == (None, None)
