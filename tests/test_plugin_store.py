"""The plugin's store on both backends: shards joining one run, retention, a store that fails."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import fresh_postgres_database, read_json
from tcp_proxy import TcpProxy

from pytest_kari_debug.backends import as_location
from pytest_kari_debug.journal import journal_dir
from pytest_kari_debug.storage import Store

SHARD_A = """
def test_a1(): pass
def test_a2(): assert 0
"""
SHARD_B = """
def test_b1(): pass
"""


def test_two_shards_with_one_run_id_are_one_run(
    pytester: pytest.Pytester, store_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards given one run id (flag, then environment) add their tests to one stored run,
    and each terminal says which run it joined."""
    pytester.makepyfile(shard_a=SHARD_A, shard_b=SHARD_B)
    first = pytester.runpytest(
        "shard_a.py", "--kari-debug", f"--kari-store={store_location}", "--kari-run-id=ci-42"
    )
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines(["run 'ci-42': store run * in *; first shard"])
    monkeypatch.setenv("KARI_RUN_ID", "ci-42")
    second = pytester.runpytest("shard_b.py", "--kari-debug", f"--kari-store={store_location}")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["run 'ci-42': store run * in *; joined it*"])
    with contextlib.closing(Store(store_location)) as store:
        runs = store.run_summaries()
        assert len(runs) == 1
        assert runs[0]["uuid"] == "ci-42"
        assert runs[0]["outcomes"] == {"failed": 1, "passed": 2}
        assert runs[0]["exit_status"] == 1
        assert runs[0]["data"]["shards"] == 2


INTERLEAVED_A = """
import time
from pathlib import Path


def test_first(kari_errors):
    kari_errors.record_error("ValueError", "invalid input 1")


def test_last(kari_errors):
    Path("a_waiting").touch()
    deadline = time.monotonic() + 120
    while not Path("b_done").exists():
        assert time.monotonic() < deadline, "shard b never finished"
        time.sleep(0.02)
    kari_errors.record_error("ValueError", "invalid input 3")
    kari_errors.record_error("TimeoutError", "upstream timed out after 30s")
"""
INTERLEAVED_B = """
def test_b(kari_errors):
    kari_errors.record_error("ValueError", "invalid input 2")
"""


def _await_file(path: Path, process: subprocess.Popen[str]) -> None:
    """Wait until *path* exists (written by *process*, which must still be running)."""
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def test_a_shard_ending_inside_another_leaves_it_whole(
    pytester: pytest.Pytester, store_location: str
) -> None:
    """Two shards of one run on one machine, interleaved: shard b runs whole while shard a
    waits in its last test. Both keep their journal (a's used to be deleted by b), a's end
    recounts the run's errors with its last test in, and neither has a diagnostic."""
    pytester.makepyfile(shard_a=INTERLEAVED_A, shard_b=INTERLEAVED_B)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kari-debug",
               f"--kari-store={store_location}", "--kari-run-id=ci-7"]  # fmt: skip
    shard_a = subprocess.Popen(
        [*command, "shard_a.py"], cwd=pytester.path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        _await_file(pytester.path / "a_waiting", shard_a)
        shard_b = subprocess.run(
            [*command, "shard_b.py"], cwd=pytester.path, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        (pytester.path / "b_done").touch()
        output_a = shard_a.communicate(timeout=120)[0]
    finally:
        if shard_a.poll() is None:
            shard_a.kill()
            shard_a.wait()
    assert shard_b.returncode == 0, shard_b.stdout + shard_b.stderr
    assert shard_a.returncode == 0, output_a
    for output in (output_a, shard_b.stdout):
        assert "diagnostics" not in output, output
    with contextlib.closing(Store(store_location)) as store:
        (run,) = store.run_summaries()
        assert run["tests_count"] == 3
        counts = {g["error_type"]: g["run_count"] for g in store.error_groups(run_id=run["id"])}
        assert counts == {"ValueError": 3, "TimeoutError": 1}


def test_a_journal_deleted_under_the_run_leaves_the_stored_error_counts_whole(
    pytester: pytest.Pytester, store_location: str
) -> None:
    """The run's journal deleted while it runs (a cleanup script, another process) costs
    nothing: the summaries were built as the tests were kept, and the store's recount of the
    run's errors reads the store only, and still counts both tests."""
    folder = journal_dir(as_location(store_location), pytester.path)
    pytester.makepyfile(
        f"""
        from pathlib import Path

        def test_error(kari_errors):
            kari_errors.record_error("ValueError", "invalid input 1")

        def test_deletes_the_journal(kari_errors):
            kari_errors.record_error("ValueError", "invalid input 2")
            for journal in Path({str(folder)!r}).glob("*.jsonl"):
                journal.unlink()
        """
    )
    result = pytester.runpytest("--kari-debug", f"--kari-store={store_location}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["errors: 2 in 1 group(s), 2 test(s) affected*"])
    result.stdout.no_fnmatch_line("*internal error*")
    with contextlib.closing(Store(store_location)) as store:
        (run,) = store.runs()
        assert [g["run_count"] for g in store.error_groups(run_id=run["id"])] == [2]


def test_bad_store_url_run_id_and_retention_are_usage_errors(pytester: pytest.Pytester) -> None:
    """An unknown URL scheme, a bad run id or retention value stops the run at start-up."""
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--kari-store=mysql://root:hunter2@db/x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown store URL scheme 'mysql://'*postgresql://*"])
    assert "hunter2" not in result.stderr.str() + result.stdout.str()
    result = pytester.runpytest("--kari-run-id=has space")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kari-run-id: run id 'has space' is not accepted*"])
    result = pytester.runpytest("--kari-retention-days=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--kari-retention-days must be a number >= 0 (0: never), got 'soon'*"]
    )


def test_retention_keeps_the_newest_runs(pytester: pytest.Pytester, store_location: str) -> None:
    """With kari_retention_runs = 2 the third run removes the oldest, and says so."""
    pytester.makeini("[pytest]\nkari_retention_runs = 2\n")
    pytester.makepyfile("def test_ok(): pass")
    for _ in range(2):
        pytester.runpytest("--kari-debug", f"--kari-store={store_location}").assert_outcomes(
            passed=1
        )
    result = pytester.runpytest("--kari-debug", f"--kari-store={store_location}", "-v")
    result.stdout.fnmatch_lines(["retention: removed 1 old run(s), 1 test(s)"])
    with contextlib.closing(Store(store_location)) as store:
        assert len(store.runs()) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_leaves_results_and_json(pytester: pytest.Pytester) -> None:
    """Nothing listening at the store's address: same outcomes, one diagnostic naming the
    store with its password redacted, and the JSON written."""
    pytest.importorskip("psycopg")
    url = f"postgresql://kari:pw-canary@127.0.0.1:{_free_port()}/kari"
    pytester.makepyfile("def test_ok(): pass\ndef test_bad(): assert 0")
    result = pytester.runpytest("--kari-debug", f"--kari-store={url}", "--kari-json=run.json")
    result.assert_outcomes(passed=1, failed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*store disabled: cannot connect to store 'postgresql://kari:***@127.0.0.1:*/kari'*"
         "no test of this run is stored*"]
    )  # fmt: skip
    assert "pw-canary" not in result.stdout.str()
    assert len(read_json(pytester, "run.json")["tests"]) == 2


@pytest.fixture
def proxied_database() -> Iterator[tuple[str, TcpProxy]]:
    """A fresh PostgreSQL database reached through a proxy the test can cut."""
    with fresh_postgres_database() as url:
        parts = urlsplit(url)
        proxy = TcpProxy((parts.hostname or "127.0.0.1", int(parts.port or 5432)))
        netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}"
        try:
            yield urlunsplit(parts._replace(netloc=netloc)), proxy
        finally:
            proxy.close()


SERVER_GOES_AWAY = """
import time
from tcp_proxy import send

def test_1(): time.sleep(1.1)
def test_2(): time.sleep(1.1)
def test_3(): send({port}, "cut"); time.sleep(1.1)
def test_4(): time.sleep(1.1)
def test_5(): {last}
"""


def test_a_server_going_away_mid_run_names_the_tests_not_stored(
    pytester: pytest.Pytester, proxied_database: tuple[str, TcpProxy]
) -> None:
    """The server goes away after two tests: outcomes unchanged, the JSON holds every test,
    the store the ones written before, and one diagnostic names the others."""
    url, proxy = proxied_database
    pytester.syspathinsert(Path(__file__).parent)
    pytester.makepyfile(SERVER_GOES_AWAY.format(port=proxy.control_port, last="assert 0"))
    result = pytester.runpytest("--kari-debug", f"--kari-store={url}", "--kari-json=run.json")
    result.assert_outcomes(passed=4, failed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*store postgresql://postgres:***@127.0.0.1:*: StoreError: * test(s) not stored: *"
         "test_4, *test_5*kari-debug import*"]
    )  # fmt: skip
    assert len(read_json(pytester, "run.json")["tests"]) == 5
    proxy.restore()
    with contextlib.closing(Store(url)) as store:
        stored = [t["nodeid"].split("::")[-1] for t in store.tests(store.runs()[0]["id"])]
    assert stored[:2] == ["test_1", "test_2"]
    assert "test_4" not in stored


def test_a_server_back_before_the_end_gets_every_test(
    pytester: pytest.Pytester, proxied_database: tuple[str, TcpProxy]
) -> None:
    """The server goes away and comes back: every test ends up stored, and one diagnostic
    says the store failed during the run."""
    url, proxy = proxied_database
    pytester.syspathinsert(Path(__file__).parent)
    restore = f"send({proxy.control_port}, 'restore')"
    pytester.makepyfile(SERVER_GOES_AWAY.format(port=proxy.control_port, last=restore))
    result = pytester.runpytest("--kari-debug", f"--kari-store={url}")
    result.assert_outcomes(passed=5, warnings=1)
    result.stdout.fnmatch_lines(
        ["*store postgresql://postgres:***@* failed during the run (*); every test was written*"]
    )
    with contextlib.closing(Store(url)) as store:
        assert len(store.tests(store.runs()[0]["id"])) == 5


def test_the_password_of_a_store_url_is_in_no_output(pytester: pytest.Pytester) -> None:
    """With a PostgreSQL URL holding a password: the terminal, JSON, report, JUnit XML,
    Markdown summary and the stored run's arguments never contain it."""
    with fresh_postgres_database() as url:
        password = urlsplit(url).password
        assert password
        pytester.makepyfile("def test_ok(): pass\ndef test_bad(): assert 0")
        result = pytester.runpytest(
            "--kari-debug", f"--kari-store={url}", "--kari-json=run.json",
            "--kari-report=report.html", "--junitxml=junit.xml", "--kari-markdown=summary.md",
            "-v",
        )  # fmt: skip
        result.assert_outcomes(passed=1, failed=1)
        assert "postgresql://postgres:***@" in result.stdout.str()
        assert password not in result.stdout.str() + result.stderr.str()
        for name in ("run.json", "report.html", "junit.xml", "summary.md"):
            assert password not in (pytester.path / name).read_text(), name
        with contextlib.closing(Store(url)) as store:
            args = store.runs()[0]["args"]
        assert any("postgresql://postgres:***@" in arg for arg in args)
        assert not any(password in arg for arg in args)


def test_a_non_utf8_project_folder_is_stored_on_both_backends(
    pytester: pytest.Pytester, store_location: str
) -> None:
    """A rootdir whose name is not UTF-8 (its run metadata and default extension id hold a
    lone surrogate) is stored with every test, escaped, on SQLite and PostgreSQL."""
    import os
    import subprocess
    import sys

    folder = pytester.path / os.fsdecode(b"proj-\xff")
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "test_a.py").write_text(
        "def test_a(kari_logger):\n    kari_logger.info('x')\n\ndef test_b():\n    assert 0\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kari-debug",
         f"--kari-store={store_location}"],
        cwd=folder, capture_output=True, text=True, errors="replace", timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "diagnostics" not in done.stdout, done.stdout
    with contextlib.closing(Store(store_location)) as store:
        (run,) = store.runs()
        assert run["rootdir"].endswith("proj-\\udcff")
        assert run["status"] == "finished"
        tests = store.tests(run["id"])
        assert [(t["nodeid"], t["outcome"]) for t in tests] == [
            ("test_a.py::test_a", "passed"),
            ("test_a.py::test_b", "failed"),
        ]
        assert store.extensions() == ["proj-\\udcff"]
        (group,) = store.error_groups(run_id=run["id"])
        assert group["extension_id"] == "proj-\\udcff"


RECOUNTS = """
import pytest
from pytest_kari_debug.storage import Store

_resync = Store.resync_run_errors
RECOUNTED = []


def _counting(self, run_id, error_groups, **kwargs):
    RECOUNTED.append(run_id)
    return _resync(self, run_id, error_groups, **kwargs)


Store.resync_run_errors = _counting


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    Store.resync_run_errors = _resync  # pytester runs in this process
    with open("recounts.txt", "w") as handle:
        handle.write(str(len(RECOUNTED)))
"""


@pytest.mark.parametrize(
    ("tests", "args", "recounts"),
    [
        pytest.param("def test_ok(): pass", [], 0, id="green-run"),
        pytest.param("def test_bad(): raise ValueError('x')", [], 1, id="an-error"),
        pytest.param("def test_ok(): pass", ["--kari-run-id=ci-7"], 1, id="shared-run"),
    ],
)
def test_the_store_recounts_a_runs_errors_only_where_it_can_find_one(
    pytester: pytest.Pytester, store_location: str, tests: str, args: list[str], recounts: int
) -> None:
    """A run of its own whose kept tests had no error skips the store's recount (the store
    holds exactly those tests); a run with an error, or a shard of a shared run (other shards'
    tests count too), recounts from the store."""
    pytester.makeconftest(RECOUNTS)
    pytester.makepyfile(tests)
    result = pytester.runpytest("--kari-debug", f"--kari-store={store_location}", *args)
    result.stdout.no_fnmatch_line("*internal error*")
    assert (pytester.path / "recounts.txt").read_text() == str(recounts)
    with contextlib.closing(Store(store_location)) as store:
        (run,) = store.runs()
        groups = store.error_groups(run_id=run["id"])
        assert [g["run_count"] for g in groups] == ([1] if "raise" in tests else [])


ODD_FIELDS = """
def test_before(): pass
def test_odd(): pass
def test_after(): assert 0
"""
ODD_FIELDS_CONFTEST = """
def pytest_kari_debug_test_record(item, record):
    if item.name == "test_odd":
        record["extension_id"] = None
        record["session_id"] = {"not": "text"}
        record["duration_ms"] = "fast"
        record["started_at"] = 10**400
        record["phases"] = "odd"
        record["nodeid"] = 42
        record["cpu_ms"] = "fast"
"""


def test_a_record_whose_columns_a_hook_made_odd_is_stored_with_every_later_test(
    pytester: pytest.Pytester, store_location: str
) -> None:
    """A user's record hook that sets a column the store indexes to the wrong type (a None
    extension, a number for a node id, text for a duration) costs no test its row: the odd
    values are stored as text or NULL, and the tests after it are stored too."""
    pytester.makeconftest(ODD_FIELDS_CONFTEST)
    pytester.makepyfile(test_odd=ODD_FIELDS)
    result = pytester.runpytest("--kari-debug", f"--kari-store={store_location}")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.no_fnmatch_line("*internal error*")
    result.stdout.no_fnmatch_line("*not stored*")
    with contextlib.closing(Store(store_location)) as store:
        run_id = store.runs()[0]["id"]
        tests = {str(test["nodeid"]): test for test in store.tests(run_id)}
        columns = {row["nodeid"]: row for row in store.slim_tests(None, run_id=run_id)}
    assert sorted(tests) == ["42", "test_odd.py::test_after", "test_odd.py::test_before"]
    assert tests["test_odd.py::test_after"]["outcome"] == "failed"
    assert tests["42"]["duration_ms"] == "fast"  # the record itself is kept as the hook left it
    assert columns["42"]["duration_ms"] is None  # its column holds numbers only
    assert columns["test_odd.py::test_before"]["duration_ms"] >= 0


REFUSED = """
def test_before(): pass
def test_refused(): pass
def test_after(): assert 0
"""


def test_a_record_the_database_refuses_costs_no_other_test_its_row(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A SQLite store whose database refuses one test's row (here a trigger; in life a
    constraint or a value it cannot hold) stores every other test, later ones included, names
    the refused test with the database's reason, and still closes the run."""
    location = str(tmp_path / "kari.db")
    with contextlib.closing(Store(location)) as store, store.transaction() as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON tests WHEN NEW.nodeid LIKE '%test_refused'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    pytester.makepyfile(test_refuse=REFUSED)
    result = pytester.runpytest("--kari-debug", f"--kari-store={location}")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the database refused the record of test 'test_refuse.py::test_refused'*"
            "refused by the test*every other test is stored*"
        ]
    )
    with contextlib.closing(Store(location)) as store:
        run = store.runs()[0]
        stored = [test["nodeid"] for test in store.tests(run["id"])]
    assert stored == ["test_refuse.py::test_before", "test_refuse.py::test_after"]
    assert run["status"] != "crashed"
    assert run["finished_at"] is not None


TWO_TESTS = """
def test_one():
    pass


def test_two():
    pass
"""


def test_a_checkpoint_thread_the_system_refuses_costs_no_test_its_row(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system that refuses the store's checkpoint thread (a pid limit: "can't start new
    thread") leaves SQLite checkpointing on pytest's thread: every test is stored, the first
    one too, and a diagnostic says why."""
    start = threading.Thread.start

    def refusing_start(thread: threading.Thread) -> None:
        if thread.name == "kari-debug-store-checkpoints":
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refusing_start)
    location = str(tmp_path / "kari.db")
    pytester.makepyfile(test_two=TWO_TESTS)
    result = pytester.runpytest("--kari-debug", f"--kari-store={location}", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*cannot checkpoint*in the background (can't start new thread)*pytest's thread*"]
    )
    with contextlib.closing(Store(location)) as store:
        run = store.runs()[0]
        stored = [test["nodeid"] for test in store.tests(run["id"])]
    assert stored == ["test_two.py::test_one", "test_two.py::test_two"]


FAILING_TEST = """
def test_fails():
    raise KeyError("missing")
"""


def test_error_groups_reach_the_store_when_the_runs_summary_could_not_be_built(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary part that fails on the run's records (as tests finish and again in the pass
    at the end) leaves the run's summary without error groups, so the store recounts them
    from the tests it holds: its error groups are never lost with the summary."""
    from pytest_kari_debug.summaries import sections

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("summary part broke")

    monkeypatch.setattr(sections._ErrorGroupsPart, "add", broken)
    location = str(tmp_path / "kari.db")
    pytester.makepyfile(test_failing=FAILING_TEST)
    result = pytester.runpytest_inprocess("--kari-debug", f"--kari-store={location}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*summarising the run's tests*summary part broke*"])
    with contextlib.closing(Store(location)) as store:
        groups = store.error_groups()
    assert [group["error_type"] for group in groups] == ["KeyError"]


@pytest.mark.parametrize(
    "refusal",
    [
        "ALTER TABLE tests ADD CONSTRAINT refuse CHECK (nodeid NOT LIKE '%test_refused')",
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.nodeid LIKE '%test_refused'"
        " THEN RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22023'; END IF;"
        " RETURN NEW; END $$ LANGUAGE plpgsql; CREATE TRIGGER refuse BEFORE INSERT ON tests"
        " FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
    ids=["constraint", "data-exception"],
)
def test_a_record_the_server_refuses_costs_no_other_test_its_row(
    pytester: pytest.Pytester, refusal: str
) -> None:
    """PostgreSQL: a test whose row the server refuses (SQLSTATE class 23 or 22) is set aside
    with a diagnostic naming it and the server's reason; the tests after it are stored (none
    is retried with it or goes unstored) and the run is closed."""
    with fresh_postgres_database() as url:
        with contextlib.closing(Store(url)) as store, store.transaction() as db:
            db.execute(refusal)
        pytester.makeini(f"[pytest]\nkari_store = {url}\n")
        pytester.makepyfile(test_refuse=REFUSED + "def test_later(): pass\n")
        result = pytester.runpytest("--kari-debug")
        result.assert_outcomes(passed=3, failed=1)
        result.stdout.fnmatch_lines(
            ["*the database refused the record of test 'test_refuse.py::test_refused'"
             " (*(SQLSTATE 2*)*every other test is stored*"]
        )  # fmt: skip
        result.stdout.no_fnmatch_line("*not stored:*")
        result.stdout.no_fnmatch_line("*failed during the run*")
        with contextlib.closing(Store(url)) as store:
            run = store.runs()[0]
            stored = [test["nodeid"] for test in store.tests(run["id"])]
    assert stored == [
        "test_refuse.py::test_before", "test_refuse.py::test_after", "test_refuse.py::test_later"
    ]  # fmt: skip
    assert run["status"] == "finished"


SLOW_COMMIT = (
    "CREATE FUNCTION slow_commit() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(0.4);"
    " RETURN NEW; END $$ LANGUAGE plpgsql; CREATE TRIGGER slow_commit BEFORE INSERT ON tests"
    " FOR EACH ROW EXECUTE FUNCTION slow_commit()"
)


def test_waiting_for_a_slow_servers_commit_is_never_in_a_tests_durations(
    pytester: pytest.Pytester,
) -> None:
    """PostgreSQL: the wait for the previous test's commit (a server that takes 0.4 s a row)
    happens before the next call phase, outside pytest's phase timings: ``--durations`` and
    junit times show the tests' own time, and each test still sees the tests before it in the
    store."""
    with fresh_postgres_database() as url:
        with contextlib.closing(Store(url)) as store, store.transaction() as db:
            db.execute(SLOW_COMMIT)
        pytester.makeini(f"[pytest]\nkari_store = {url}\n")
        pytester.makepyfile(
            test_slow_store=f"""
import contextlib
import pytest
from pytest_kari_debug.storage import Store

@pytest.mark.parametrize("n", range(4))
def test_sees_the_tests_before(n):
    with contextlib.closing(Store({url!r})) as store:
        assert len(store.tests(store.runs()[0]["id"])) == n
"""
        )
        result = pytester.runpytest("--kari-debug", "--junitxml=junit.xml")
        result.assert_outcomes(passed=4)
    junit = (pytester.path / "junit.xml").read_text("utf-8")
    times = [float(found) for found in re.findall(r'<testcase [^>]*time="([0-9.]+)"', junit)]
    assert len(times) == 4
    assert max(times) < 0.3, times  # each waited 0.4 s for the previous test's row before


def test_a_runs_sqlite_checkpoints_run_on_a_thread_that_ends_with_the_run(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A run's SQLite store checkpoints on a thread of its own while tests run (pytest's
    thread never waits for the disk's syncs) and that thread is gone when the run ends; the
    store holds every test and is whole."""
    location = tmp_path / "kari.db"
    pytester.makepyfile(
        test_threads="""
import threading

def checkpointers():
    return [t for t in threading.enumerate() if t.name == "kari-debug-store-checkpoints"]

def test_first(): pass

def test_sees_the_checkpoint_thread():
    assert len(checkpointers()) == 1
"""
    )
    result = pytester.runpytest_inprocess("--kari-debug", f"--kari-store={location}")
    result.assert_outcomes(passed=2)
    alive = [t for t in threading.enumerate() if t.name == "kari-debug-store-checkpoints"]
    assert alive == []
    with contextlib.closing(Store(location)) as store:
        assert len(store.tests(store.runs()[0]["id"])) == 2
        assert store.integrity() == "ok"
