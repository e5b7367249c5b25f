"""Every reader of a SQLite store sees every finished test (issue 17): opening the store first
imports what its runs' journals hold beyond what is committed, once, whoever comes first."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import store_at_schema
from store_support import chmod_tree, without_root_powers

from pytest_kari_debug.journal import RunJournal
from pytest_kari_debug.storage import SCHEMA_VERSION, Store, dumps
from pytest_kari_debug.storage.journals import journal_folder

#: The schema before tests had a unique key and journals a mark (issue 17).
OLD_VERSION = 8


def _test(n: int) -> dict[str, object]:
    return {"nodeid": f"t.py::test_{n}", "outcome": "passed", "finished_at": float(n)}


def _committed(path: Path) -> list[str]:
    """The tests a plain SQLite connection reads: what the run committed, nothing imported."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT nodeid FROM tests ORDER BY id")]


def test_an_older_store_keeps_one_row_per_test_and_gets_the_key(tmp_path: Path) -> None:
    """A copy of a test (same run, node id and end) goes with its records; the unique key
    then refuses a copy, and `journal_marks` exists."""
    location = str(tmp_path / "kari.db")
    with store_at_schema(location, OLD_VERSION) as db:
        db.execute("INSERT INTO runs(uuid, started_at) VALUES ('r', 1.0)")
        for finished in (1.0, 1.0, 2.0):
            db.execute(
                "INSERT INTO tests(run_id, nodeid, extension_id, outcome, finished_at, data)"
                " VALUES (1, 't.py::test_a', 'ext', 'passed', ?, '{}')",
                (finished,),
            )
        for test_id in (1, 2, 3):
            db.execute(
                "INSERT INTO records(run_id, test_id, kind, extension_id, data)"
                " VALUES (1, ?, 'log', 'ext', '{}')",
                (test_id,),
            )
    with contextlib.closing(Store(location)) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [t["id"] for t in store.tests(1)] == [1, 3]
        assert [row[0] for row in store._query("SELECT test_id FROM records")] == [1, 3]
        assert store.journal_mark("none.jsonl") == 0
        with pytest.raises(sqlite3.IntegrityError):
            store.write_tests(1, [{"nodeid": "t.py::test_a", "finished_at": 2.0}])


def _live_journal(path: Path, uuid: str, pid: int) -> RunJournal:
    header = {"uuid": uuid, "pid": pid, "started_at": 1.0, "host": socket.gethostname()}
    return RunJournal(journal_folder(path), header)


def test_opening_imports_a_live_journal_once_and_the_writer_adds_no_copy(tmp_path: Path) -> None:
    """A live run's tests are imported (the run left running, its journal kept, its mark
    noted); the writer's later commit of the same tests adds only the new one; a reader
    decodes only the lines past the mark (a line before it that no longer decodes is never
    read)."""
    path = tmp_path / "kari.db"
    Store(path).close()
    journal = _live_journal(path, "live", os.getpid())
    for n in range(3):
        journal.append(dumps(_test(n)))
    with contextlib.closing(Store(path)) as store:
        (run,) = store.runs()
        assert [t["nodeid"] for t in store.tests(run["id"])] == [
            f"t.py::test_{n}" for n in range(3)
        ]
        assert run["status"] == "running"
        assert store.journal_mark(journal.path.name) == journal.size
        journal.append(dumps(_test(3)))
        tests = [_test(n) for n in range(4)]
        store.submit_tests(run["id"], tests, None, (journal.path.name, journal.size))
        assert len(store.tests(run["id"])) == 4
    with open(journal.path, "r+b") as handle:  # the first test's line, now not JSON
        handle.seek(len(handle.readline()))
        handle.write(b"#")
    journal.append(dumps(_test(4)))
    with contextlib.closing(Store(path)) as store:
        assert [t["nodeid"][-1] for t in store.tests(run["id"])] == list("01234")
    assert journal.path.exists()
    journal.remove()


def test_a_dead_runs_journal_is_recovered_by_a_reader_and_counted_by_the_next_run(
    tmp_path: Path,
) -> None:
    """A reader imports a killed run's tests and marks it crashed; without the plugin's error
    grouping it leaves the journal, which the recovery with it then counts and deletes."""
    path = tmp_path / "kari.db"
    Store(path).close()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    journal = _live_journal(path, "dead", child.pid)
    journal.append(dumps(_test(0)))
    journal.close()
    with contextlib.closing(Store(path)) as store:
        (run,) = store.runs()
        assert run["status"] == "crashed"
        assert run["data"]["status"] == "crashed"
        assert len(store.tests(run["id"])) == 1
    assert journal.path.exists()
    grouped: list[int] = []
    with contextlib.closing(Store(path, error_groups=lambda tests: grouped.append(1) or [])):
        pass
    assert grouped == [1]
    assert not journal.path.exists()


#: A suite whose tests finish fast (inside one group-commit window) and whose last waits.
WINDOW_SUITE = """
import os, time

def _note(name):
    with open("progress.txt", "a") as handle:
        handle.write(name + "\\n")

{tests}

def test_wait():
    _note("test_wait")
    while not os.path.exists("release"):
        time.sleep(0.05)
"""


def _window_suite(
    pytester: pytest.Pytester, count: int, body: str = "    pass\n", window_s: float = 3600.0
) -> None:
    """*count* fast tests and one waiting; the group's time bound *window_s* (an hour: the
    run commits its tests at the end alone, whatever the machine's pace)."""
    tests = "\n".join(f"def test_{n}(kari_errors):\n{body}" for n in range(count))
    pytester.makepyfile(test_window=WINDOW_SUITE.format(tests=tests))
    pytester.makeconftest(
        f"import pytest_kari_debug.plugin.committer as c\nc.GROUP_COMMIT_S = {window_s!r}\n"
    )


def _start(pytester: pytest.Pytester, location: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kari-debug",
         f"--kari-store={location}", *args],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait_for(pytester: pytest.Pytester, name: str, child: subprocess.Popen[bytes]) -> None:
    progress = pytester.path / "progress.txt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if progress.exists() and name in progress.read_text().split():
            return
        time.sleep(0.05)
    child.kill()
    pytest.fail(f"{name} never started:\n{child.communicate()[0].decode()}")


def test_a_reader_process_sees_a_live_runs_tests_still_inside_the_group_window(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    location = tmp_path / "kari.db"
    _window_suite(pytester, 5)
    child = _start(pytester, location)
    try:
        _wait_for(pytester, "test_wait", child)
        assert len(_committed(location)) < 5  # the run has not committed them all yet
        with contextlib.closing(Store(location, create=False)) as store:
            (run,) = store.runs()
            assert [t["nodeid"][-1] for t in store.tests(run["id"])] == list("01234")
            assert run["status"] == "running"
    finally:
        (pytester.path / "release").touch()
        output = child.communicate(timeout=120)[0].decode()
    assert "6 passed" in output, output
    names = _committed(location)
    assert sorted(names) == sorted({*names}), names  # the writer added no copy
    assert len(names) == 6
    with contextlib.closing(Store(location, create=False)) as store:
        assert store.runs()[0]["status"] == "finished"
    assert not journal_folder(location).exists()


def test_a_reader_left_open_sees_the_group_the_timer_commits_during_a_long_test(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """No test is kept while the last one runs: the group's timer commits the tests before it
    once the bound has passed, for a reader that opened the store before they finished."""
    location = tmp_path / "kari.db"
    _window_suite(pytester, 5, window_s=0.2)
    child = _start(pytester, location)
    try:
        _wait_for(pytester, "test_wait", child)
        deadline = time.monotonic() + 60
        while len(_committed(location)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_committed(location)) == 5
    finally:
        (pytester.path / "release").touch()
        output = child.communicate(timeout=120)[0].decode()
    assert "6 passed" in output, output
    assert len(_committed(location)) == 6


#: Opens the store again and again until told to stop (a reader process).
READER = """
import os, sys, time
from pytest_kari_debug.storage import Store
path, stop = sys.argv[1], sys.argv[2]
opened = 0
while not os.path.exists(stop):
    if os.path.exists(path):
        Store(path, create=False).close()
        opened += 1
print(opened)
"""


def test_readers_beside_the_writer_leave_no_copy_and_count_each_error_once(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Three processes import the live run's journal over and over while it runs: the store
    ends with each test once and its error group counted once per error."""
    location = tmp_path / "kari.db"
    count = 60
    _window_suite(
        pytester, count, '    kari_errors.record_error("ValueError", "invalid input 7")\n'
    )
    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(location), str(stop)], stdout=subprocess.PIPE
        )
        for _ in range(3)
    ]
    child = _start(pytester, location)
    try:
        _wait_for(pytester, "test_wait", child)
        time.sleep(0.5)
    finally:
        (pytester.path / "release").touch()
        output = child.communicate(timeout=180)[0].decode()
        stop.touch()
        opened = [int(reader.communicate(timeout=60)[0]) for reader in readers]
    assert f"{count + 1} passed" in output, output
    assert all(opened), opened
    with contextlib.closing(Store(location, create=False)) as store:
        (run,) = store.runs()
        tests = store.tests(run["id"])
        (group,) = store.error_groups()
    assert len(tests) == count + 1
    assert len({(t["nodeid"], t["finished_at"]) for t in tests}) == count + 1
    assert group["count"] == count


def test_a_killed_writers_run_is_complete_and_crashed(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Killed while tests it kept wait for their group's commit: a reader finds every
    finished test and the run crashed; the next run counts its errors once and deletes its
    journal."""
    location = tmp_path / "kari.db"
    _window_suite(pytester, 8, '    kari_errors.record_error("ValueError", "invalid input 7")\n')
    child = _start(pytester, location)
    _wait_for(pytester, "test_wait", child)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    assert len(_committed(location)) < 8
    with contextlib.closing(Store(location, create=False)) as store:
        (run,) = store.runs()
        assert [t["nodeid"][-1] for t in store.tests(run["id"])] == list("01234567")
        assert run["status"] == "crashed"
    pytester.makepyfile(test_window="def test_other():\n    pass\n")
    again = _start(pytester, location)
    assert "1 passed" in again.communicate(timeout=120)[0].decode()
    with contextlib.closing(Store(location, create=False)) as store:
        (group,) = store.error_groups()
        assert len(store.runs()) == 2
    assert group["count"] == 8
    assert not journal_folder(location).exists()


@pytest.mark.parametrize("read_only", ["folder", "file"])
def test_a_store_the_reader_cannot_write_is_read_quietly(
    pytester: pytest.Pytester, tmp_path: Path, read_only: str
) -> None:
    """A killed run's journal beside a store (its folder, or the file alone) its reader may
    not write: the reader reads what is committed, without the import and without an
    error."""
    folder = tmp_path / "shared"
    location = folder / "kari.db"
    _window_suite(pytester, 4)
    child = _start(pytester, location)
    _wait_for(pytester, "test_wait", child)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    committed = len(_committed(location))
    reader = (
        "import sys; from pytest_kari_debug.storage import Store;"
        " s = Store(sys.argv[1], create=False);"
        " print(sum(len(s.tests(r['id'])) for r in s.runs()))"
    )
    chmod_tree(folder, writable=False)
    if read_only == "file":
        folder.chmod(0o755)
    try:
        done = subprocess.run(
            [*without_root_powers(), sys.executable, "-c", reader, str(location)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        chmod_tree(folder, writable=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert int(done.stdout) == committed < 4
    assert len(list(journal_folder(location).iterdir())) == 1  # left for a writer
    with contextlib.closing(Store(location, create=False)) as store:  # one that may write
        assert sum(len(store.tests(run["id"])) for run in store.runs()) == 4


def test_an_xdist_run_is_complete_in_the_store(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    location = tmp_path / "kari.db"
    pytester.makepyfile(test_many="\n".join(f"def test_{n}():\n    pass\n" for n in range(40)))
    child = _start(pytester, location, "-n", "2")
    output = child.communicate(timeout=180)[0].decode()
    assert "40 passed" in output, output
    names = _committed(location)
    assert sorted(names) == sorted(f"test_many.py::test_{n}" for n in range(40))
    assert not journal_folder(location).exists()
