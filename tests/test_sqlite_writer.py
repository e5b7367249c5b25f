"""SQLite's writer process: a run's tests committed beside it, and what happens when it stops."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_kari_debug.backends import RefusedWrites
from pytest_kari_debug.exceptions import StoreError
from pytest_kari_debug.plugin.committer import WRITER_AFTER_TESTS
from pytest_kari_debug.storage import Store


def _record(n: int) -> dict[str, Any]:
    now = time.time()
    return {
        "nodeid": f"test_w.py::test_{n}", "extension_id": "w", "outcome": "passed",
        "phases": {"setup": 0.1, "call": 0.2, "teardown": 0.1}, "duration_ms": 0.4,
        "started_at": now, "finished_at": now + n * 1e-3, "session_id": f"s{n}",
        "collected_data": {"logging": {"records": [{"ts": now, "level": "INFO", "message": "m"}]}}
        if n % 2 else {},
    }  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A SQLite store whose writer process is started and ready; its run is ``store.run_id``."""
    found = Store(str(tmp_path / "kari.db"))
    found.run_id = found.begin_run(  # type: ignore[attr-defined]
        {"uuid": uuid.uuid4().hex, "started_at": time.time(), "pid": os.getpid()}
    )
    found.write_in_background()
    writer = found._backend.writer  # type: ignore[union-attr]
    deadline = time.monotonic() + 60
    while not writer.poll_ready():
        assert time.monotonic() < deadline, "the writer process never became ready"
        time.sleep(0.01)
    try:
        yield found
    finally:
        found.close()


def _stored(location: Path) -> list[str]:
    """The stored tests' node ids, read by a connection of another store object."""
    with contextlib.closing(Store(str(location), create=False)) as other:
        return [str(t["nodeid"]) for run in other.runs() for t in other.tests(run["id"])]


def _writer_pid(store: Store) -> int:
    return int(store._backend.writer.process.pid)  # type: ignore[union-attr]


def test_a_test_sent_to_the_writer_process_is_committed_by_it_when_settled(
    store: Store, tmp_path: Path
) -> None:
    """A test handed to the writer process is committed by that process (another pid, another
    connection) and visible to every reader once settled; records go with their test."""
    pid = _writer_pid(store)
    assert pid != os.getpid()
    for n in range(4):
        store.submit_tests(store.run_id, [_record(n)])  # type: ignore[attr-defined]
        assert store.writes_pending  # the writer has it, not this thread
        store.settle_writes()
        assert not store.writes_pending
        assert _stored(tmp_path / "kari.db") == [f"test_w.py::test_{k}" for k in range(n + 1)]
    tests = store.tests(store.run_id)  # type: ignore[attr-defined]
    logs = [r for r in store.records("log") if r.get("message") == "m"]
    assert [t["nodeid"] for t in tests][1::2] == ["test_w.py::test_1", "test_w.py::test_3"]
    assert len(logs) == 2  # the odd tests' log records, tied to their tests
    assert store.writer_problem is None
    store.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # closing the store ends its writer


def test_a_row_the_database_refuses_is_named_and_the_writer_goes_on(
    store: Store, tmp_path: Path
) -> None:
    with store.transaction() as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON tests WHEN NEW.nodeid LIKE '%test_1'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    store.submit_tests(store.run_id, [_record(0)])  # type: ignore[attr-defined]
    store.settle_writes()
    store.submit_tests(store.run_id, [_record(1)])  # type: ignore[attr-defined]
    with pytest.raises(RefusedWrites, match="refused by the test") as refused:
        store.settle_writes()
    assert list(refused.value.refused) == [0]
    store.submit_tests(store.run_id, [_record(2)])  # type: ignore[attr-defined]
    assert store.writes_pending
    store.settle_writes()
    assert _stored(tmp_path / "kari.db") == ["test_w.py::test_0", "test_w.py::test_2"]


def test_a_writer_killed_before_it_commits_costs_no_test_its_row(
    store: Store, tmp_path: Path
) -> None:
    """SIGKILL of the writer with a test sent: settling writes that test on the caller's thread,
    every later test too, and the store says why."""
    os.kill(_writer_pid(store), signal.SIGSTOP)  # holds it before it reads the test
    store.submit_tests(store.run_id, [_record(0)])  # type: ignore[attr-defined]
    os.kill(_writer_pid(store), signal.SIGKILL)
    store.settle_writes()
    assert store.writer_problem is not None
    assert "its writer process stopped" in store.writer_problem
    store.submit_tests(store.run_id, [_record(1)])  # type: ignore[attr-defined]
    assert not store.writes_pending  # written on this thread from now on
    assert _stored(tmp_path / "kari.db") == ["test_w.py::test_0", "test_w.py::test_1"]


def test_a_writer_killed_after_its_commit_leaves_no_duplicate(store: Store, tmp_path: Path) -> None:
    """A writer that committed a test and died before its answer was read: the test is not
    written twice."""
    writer = store._backend.writer  # type: ignore[union-attr]
    store.submit_tests(store.run_id, [_record(0)])  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while _stored(tmp_path / "kari.db") != ["test_w.py::test_0"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    while b"\n" not in writer._unread:  # the answer, taken away before the store reads it
        with contextlib.suppress(BlockingIOError):
            writer._unread += os.read(writer._in, 100)
    writer._unread = b""
    os.kill(_writer_pid(store), signal.SIGKILL)
    store.settle_writes()
    assert store.writer_problem is not None
    assert _stored(tmp_path / "kari.db") == ["test_w.py::test_0"]


def test_a_writer_that_cannot_start_leaves_the_writes_on_the_callers_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with contextlib.closing(Store(str(tmp_path / "kari.db"))) as store:
        run_id = store.begin_run({"uuid": "u", "started_at": time.time(), "pid": os.getpid()})
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
        with pytest.raises(StoreError, match="cannot start its writer process"):
            store.write_in_background()
        store.submit_tests(run_id, [_record(0)])
        assert not store.writes_pending
        store.settle_writes()
        assert _stored(tmp_path / "kari.db") == ["test_w.py::test_0"]


#: The writer process starts at the run's WRITER_AFTER_TESTS-th test; the next test waits until
#: it is ready, and each test after it ({tests}) reads the store from a connection of its own
#: while the writer commits: every test before it is there.
WRITER_SUITE = """
import contextlib, os, sqlite3, time

from pytest_kari_debug.plugin.state import STATE

def _writer(config):
    return config.stash[STATE].store._backend.writer

def _stored():  # a reader that never waits for the writer's lock
    path = os.environ["KARI_TEST_STORE"]
    with contextlib.closing(sqlite3.connect(f"file:{{path}}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT nodeid FROM tests ORDER BY id").fetchall()
    return [row[0].split("::")[-1] for row in rows]

{first}

def test_ready(request):
    deadline = time.monotonic() + 60
    while not _writer(request.config).poll_ready():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.environ["KARI_TEST_WRITER"] = str(_writer(request.config).process.pid)

{tests}
"""
FIRST = [f"test_0{n}" for n in range(WRITER_AFTER_TESTS)]


def _suite(pytester: pytest.Pytester, tests: list[str]) -> None:
    first = "\n".join(f"def {name}(): pass" for name in FIRST)
    pytester.makepyfile(test_w=WRITER_SUITE.format(first=first, tests="\n".join(tests)))


#: A test's check that the writer is the one that was ready (never stopped, never replaced).
_SAME_WRITER = (
    "    assert _writer(request.config).process.pid == int(os.environ['KARI_TEST_WRITER'])\n"
)


def _seen(n: int) -> str:
    """Test *n*'s check that every test before it is stored."""
    before = [*FIRST, "test_ready", *(f"test_{k}" for k in range(n))]
    return f"    assert _stored() == {before!r}\n"


def test_each_test_the_writer_process_commits_is_in_the_store_before_the_next_call(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the writer process committing (slowly here: a trigger makes each commit count to
    300,000), a test's call phase starts only once every test before it is in the store."""
    location = tmp_path / "kari.db"
    monkeypatch.setenv("KARI_TEST_STORE", str(location))
    with contextlib.closing(Store(str(location))) as store, store.transaction() as db:
        db.execute(
            "CREATE TRIGGER slow BEFORE INSERT ON tests BEGIN SELECT count(*) FROM (WITH"
            " RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)"
            " SELECT x FROM c); END"
        )
    _suite(
        pytester,
        [f"def test_{n}(request):\n{_SAME_WRITER}{_seen(n)}" for n in range(6)],
    )
    result = pytester.runpytest_subprocess("--kari-debug", f"--kari-store={location}", "-v")
    result.assert_outcomes(passed=WRITER_AFTER_TESTS + 7)
    result.stdout.no_fnmatch_line("*diagnostics*")
    names = [*FIRST, "test_ready", *(f"test_{k}" for k in range(6))]
    assert _stored(location) == [f"test_w.py::{name}" for name in names]


def test_a_writer_process_killed_mid_run_costs_no_test_its_row(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL of the writer process during a test: every test is still stored before the next
    call phase (pytest's thread writes from then on), and a diagnostic says what happened."""
    location = tmp_path / "kari.db"
    monkeypatch.setenv("KARI_TEST_STORE", str(location))
    kill = (
        "    if request.node.name == 'test_2':\n"
        "        os.kill(int(os.environ['KARI_TEST_WRITER']), 9)\n"
        "        time.sleep(0.2)\n"
    )
    _suite(pytester, [f"def test_{n}(request):\n{_seen(n)}{kill}" for n in range(6)])
    result = pytester.runpytest_subprocess("--kari-debug", f"--kari-store={location}")
    result.assert_outcomes(passed=WRITER_AFTER_TESTS + 7)
    result.stdout.fnmatch_lines(
        ["*its writer process stopped*the tests after it were committed on pytest's thread*"]
    )
    names = [*FIRST, "test_ready", *(f"test_{k}" for k in range(6))]
    assert _stored(location) == [f"test_w.py::{name}" for name in names]


def test_ctrl_c_in_a_terminal_stops_pytest_and_the_writer_keeps_every_finished_test(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Ctrl-C reaches the whole process group in a terminal: the writer process ignores it,
    pytest stops and labels the run interrupted, every finished test is stored, and the writer
    ends with the run."""
    location = tmp_path / "kari.db"
    wait = (
        "    if request.node.name == 'test_3':\n"
        "        open('waiting', 'w').close()\n"
        "        time.sleep(600)\n"
    )
    _suite(pytester, [f"def test_{n}(request):\n{wait}    pass\n" for n in range(5)])
    pytester.makeconftest(
        """
import pytest
from pytest_kari_debug.plugin.state import STATE

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    writer = session.config.stash[STATE].store._backend.writer
    with open("writer-at-the-end", "w") as handle:
        handle.write(str(writer.process.poll()))
"""
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kari-debug",
         f"--kari-store={location}"],
        cwd=pytester.path, env={**os.environ, "KARI_TEST_STORE": str(location)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (pytester.path / "waiting").exists():
        assert child.poll() is None, child.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGINT)
    output = child.communicate(timeout=120)[0].decode()
    assert child.returncode == pytest.ExitCode.INTERRUPTED, output
    assert (pytester.path / "writer-at-the-end").read_text() == "None"  # Ctrl-C left it running
    assert "writer process" not in output
    with contextlib.closing(Store(str(location), create=False)) as store:
        (run,) = store.runs()
        names = [t["nodeid"].split("::")[-1] for t in store.tests(run["id"])]
    assert run["status"] == "interrupted"
    assert names[: WRITER_AFTER_TESTS + 4] == [*FIRST, "test_ready", "test_0", "test_1", "test_2"]
    with pytest.raises(ProcessLookupError):
        os.killpg(child.pid, 0)  # no process of the run is left
