"""Review findings on importing runs' journals into a SQLite store (issue 17): an odd record,
a reader's lock, tests without an end, twins, the schema 9 migration, stale marks, a
read-only reader (real SQLite, real processes)."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import store_at_schema
from store_support import chmod_tree, without_root_powers

from pytest_kari_debug.journal import RunJournal
from pytest_kari_debug.storage import Store, dumps, journals
from pytest_kari_debug.storage.journals import journal_folder


def _test(n: int, **extra: Any) -> dict[str, Any]:
    return {"nodeid": f"t.py::test_{n}", "outcome": "passed", "finished_at": float(n), **extra}


def _with_log(n: int) -> dict[str, Any]:
    logs = {"records": [{"ts": 1.0, "name": "app", "level": "INFO", "message": f"m{n}"}]}
    return _test(n, collected_data={"logging": logs})


def _journal(path: Path, uuid: str = "live", pid: int | None = None) -> RunJournal:
    header = {
        "uuid": uuid,
        "pid": os.getpid() if pid is None else pid,
        "started_at": 1.0,
        "host": socket.gethostname(),
    }
    return RunJournal(journal_folder(path), header)


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return list(db.execute(sql))


def test_an_odd_journal_line_never_stops_a_store_from_opening(tmp_path: Path) -> None:
    """Review finding 1: a record whose ``collected_data`` is a list, a line that is not
    JSON and one that is not a record: the store opens, every test is stored (the odd one
    with its data as written), the lines after them too."""
    path = tmp_path / "kari.db"
    Store(path).close()
    journal = _journal(path)
    journal.append(dumps(_with_log(0)))
    journal.append(dumps(_test(1, collected_data=["odd"])))
    with open(journal.path, "ab") as handle:
        handle.write(b"{not json\n[1, 2]\n")
    journal.append(dumps(_with_log(2)))
    with contextlib.closing(Store(path)) as store:
        (run,) = store.runs()
        tests = store.tests(run["id"])
        assert [t["nodeid"] for t in tests] == [f"t.py::test_{n}" for n in range(3)]
        assert store.journal_mark(journal.path.name) == journal.path.stat().st_size
    assert _rows(path, "SELECT json_extract(data, '$.collected_data') FROM tests WHERE id = 2") == [
        ('["odd"]',)
    ]
    assert _rows(path, "SELECT test_id FROM records ORDER BY test_id") == [(1,), (3,)]
    journal.remove()


@pytest.mark.parametrize("how", ["submit_tests", "write_tests"])
def test_a_writers_batch_stores_every_test_beside_an_odd_one(tmp_path: Path, how: str) -> None:
    """Review finding 1 (older): one record the codec cannot take (a list as collected data,
    a record that is not a mapping) costs neither its neighbours nor itself its row."""
    path = tmp_path / "kari.db"
    with contextlib.closing(Store(path)) as store:
        run_id = store.begin_run({"uuid": "r", "started_at": 1.0})
        odd: Any = ["not", "a", "mapping"]
        batch = [_with_log(0), _test(1, collected_data=["odd"]), odd, _with_log(3)]
        getattr(store, how)(run_id, batch)
        tests = store.tests(run_id)
    assert [t["nodeid"] for t in tests] == ["t.py::test_0", "t.py::test_1", "", "t.py::test_3"]
    assert "unrepresentable test record" in tests[2]["unstorable"]
    assert _rows(path, "SELECT count(*) FROM records") == [(2,)]


ODD_HOOK = """
def pytest_kari_debug_test_record(item, record):
    if item.name == "test_b":
        record["collected_data"] = ["odd"]
"""


def test_a_run_with_an_odd_record_stores_all_its_tests(pytester: pytest.Pytester) -> None:
    """Review finding 1 through the plugin: a hook makes one test's collected data a list;
    the run stores its three tests, and the store's readers (the CLI) open it."""
    pytester.makeconftest(ODD_HOOK)
    pytester.makepyfile(
        "def test_a():\n    pass\n\ndef test_b():\n    pass\n\ndef test_c():\n    pass\n"
    )
    result = pytester.runpytest("--kari-debug", "--kari-store=kari.db", "-p", "no:cacheprovider")
    assert result.ret == 0
    path = pytester.path / "kari.db"
    with contextlib.closing(Store(path)) as store:
        (run,) = store.runs()
        assert sorted(t["nodeid"].rsplit("::")[-1] for t in store.tests(run["id"])) == [
            "test_a", "test_b", "test_c",
        ]  # fmt: skip
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pytest_kari_debug.cli import main; main()",
            "--store",
            str(path),
            "runs",
            "list",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr


def test_a_reader_decodes_outside_its_transactions_and_commits_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding 2: while a reader decodes a long journal, another connection writes
    (no lock held while decoding), and the mark moves on batch by batch."""
    path = tmp_path / "kari.db"
    Store(path).close()
    journal = _journal(path)
    count = 2 * journals.BATCH + 7
    for n in range(count):
        journal.append(dumps(_test(n)))
    decode = journals.decode_line
    seen: list[tuple[int, int]] = []
    decoded = 0

    def observed(line: bytes) -> Any:
        nonlocal decoded
        decoded += 1
        if decoded == journals.BATCH + 10:  # the header, a batch in, the next one decoding
            with contextlib.closing(sqlite3.connect(path, timeout=0)) as other:
                with other:
                    other.execute("INSERT INTO meta(key, value) VALUES ('other', 'w')")
                mark = other.execute("SELECT position FROM journal_marks").fetchall()
                stored = other.execute("SELECT count(*) FROM tests").fetchone()[0]
                seen.append((mark[0][0] if mark else 0, stored))
        return decode(line)

    monkeypatch.setattr(journals, "decode_line", observed)
    with contextlib.closing(Store(path)) as store:
        (run,) = store.runs()
        assert len(store.tests(run["id"])) == count
        assert store.journal_mark(journal.path.name) == journal.size
    with open(journal.path, "rb") as handle:
        first_batch_end = sum(len(handle.readline()) for _ in range(journals.BATCH + 1))
    assert seen == [(first_batch_end, journals.BATCH)]
    journal.remove()


@pytest.mark.parametrize("end", [None, float("nan"), float("inf")])
def test_a_test_without_an_end_is_stored_once(tmp_path: Path, end: float | None) -> None:
    """Review finding 3: a test whose end is NULL in the store (None, NaN, inf) is one row
    however many readers import its journal and whatever the writer commits after."""
    path = tmp_path / "kari.db"
    Store(path).close()
    journal = _journal(path)
    tests = [_test(0), {"nodeid": "t.py::test_1", "outcome": "passed", "finished_at": end}]
    for test in tests:
        journal.append(dumps(test))
    for _ in range(3):  # each reader imports the journal again (its mark forgotten)
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("DELETE FROM journal_marks")
        Store(path).close()
    with contextlib.closing(Store(path)) as store:
        (run,) = store.runs()
        store.submit_tests(run["id"], tests, None, (journal.path.name, journal.size))
        assert [t["nodeid"] for t in store.tests(run["id"])] == ["t.py::test_0", "t.py::test_1"]
    journal.remove()


def test_a_store_with_copies_of_a_test_without_an_end_keeps_one(tmp_path: Path) -> None:
    """Review finding 3, migration: the copies the old key let through (NULL end, same data)
    go with their records; distinct tests under one key stay."""
    location = str(tmp_path / "kari.db")
    with store_at_schema(location, 9) as db:
        db.execute("INSERT INTO runs(uuid, started_at) VALUES ('r', 1.0)")
        for data in ('{"a":1}', '{"a":1}', '{"a":1}', '{"a":2}'):
            db.execute(
                "INSERT INTO tests(run_id, nodeid, extension_id, outcome, finished_at, data)"
                " VALUES (1, 't.py::a', '', 'passed', NULL, ?)",
                (data,),
            )
        for test_id in (1, 2, 3, 4):
            db.execute(
                "INSERT INTO records(run_id, test_id, kind, extension_id, data)"
                " VALUES (1, ?, 'log', '', '{}')",
                (test_id,),
            )
    with contextlib.closing(Store(location)) as store:
        assert [t["id"] for t in store.tests(1)] == [1, 4]
    assert _rows(tmp_path / "kari.db", "SELECT test_id FROM records ORDER BY 1") == [(1,), (4,)]


def test_a_schema_8_store_keeps_distinct_tests_under_one_key(tmp_path: Path) -> None:
    """Review finding 6: two rows of (run 1, t.py::a, 5.0), one passed and one failed with
    its report, both stay; an exact copy goes."""
    location = str(tmp_path / "kari.db")
    with store_at_schema(location, 8) as db:
        db.execute("INSERT INTO runs(uuid, started_at) VALUES ('r', 1.0)")
        for outcome, data in (
            ("passed", '{"outcome":"passed"}'),
            ("failed", '{"outcome":"failed","longrepr":"boom"}'),
            ("passed", '{"outcome":"passed"}'),
        ):
            db.execute(
                "INSERT INTO tests(run_id, nodeid, extension_id, outcome, finished_at, data)"
                " VALUES (1, 't.py::a', '', ?, 5.0, ?)",
                (outcome, data),
            )
    with contextlib.closing(Store(location)) as store:
        assert [(t["id"], t["outcome"]) for t in store.tests(1)] == [(1, "passed"), (2, "failed")]
        # The key still refuses a copy from a journal (the first of its key).
        journal = _journal(tmp_path / "kari.db", uuid="r")
        journal.append(dumps({"nodeid": "t.py::a", "outcome": "passed", "finished_at": 5.0}))
    with contextlib.closing(Store(location)) as store:
        assert len(store.tests(1)) == 2
    journal.remove()


def test_importing_a_document_with_two_tests_under_one_key_keeps_both(tmp_path: Path) -> None:
    """Review finding 5: a run document holding two tests of one node id and end adds both;
    importing it again adds nothing."""
    document = {
        "run": {"uuid": "doc", "started_at": 1.0},
        "tests": [
            {**_with_log(1), "outcome": "passed"},
            {**_with_log(1), "outcome": "failed"},
            _test(2),
        ],
    }
    with contextlib.closing(Store(tmp_path / "kari.db")) as store:
        result = store.import_run(document)
        assert (result.added, result.skipped) == (3, 0)
        again = store.import_run(document)
        assert (again.added, again.skipped) == (0, 3)
        outcomes = [t["outcome"] for t in store.tests(result.run_id)]
    assert outcomes == ["passed", "failed", "passed"]
    assert _rows(tmp_path / "kari.db", "SELECT count(*) FROM records") == [(2,)]


def test_a_journals_mark_goes_with_the_journal_and_with_its_run(tmp_path: Path) -> None:
    """Review finding 7: the mark of a journal that is gone (its run ended) is dropped at the
    store's next open; pruning a run drops its marks."""
    path = tmp_path / "kari.db"
    Store(path).close()
    ended = _journal(path, uuid="ended")
    ended.append(dumps(_test(0)))
    live = _journal(path, uuid="live", pid=os.getppid())  # a live run started earlier
    live.append(dumps(_test(1)))
    with contextlib.closing(Store(path)) as store:
        store.begin_run({"uuid": "newest", "started_at": 9.0})
    Store(path).close()
    assert len(_rows(path, "SELECT name FROM journal_marks")) == 2
    ended.remove()
    with contextlib.closing(Store(path)) as store:
        assert _rows(path, "SELECT name FROM journal_marks") == [(live.path.name,)]
        live_run = next(r["id"] for r in store.runs() if r["uuid"] == "live")
        assert store.prune(keep_runs=1, protect=[1]).runs == [live_run]
    assert _rows(path, "SELECT name FROM journal_marks") == []
    live.remove()


LIVE_READER = """
import pathlib, sys, time
from pytest_kari_debug.storage import Store
here = pathlib.Path(sys.argv[2])
store = Store(sys.argv[1], create=False)
print(len(store.tests(1)), flush=True)
(here / "read").touch()
while not (here / "written").exists():
    time.sleep(0.02)
print(len(store.tests(1)), flush=True)
"""


def _live_reader(location: Path, tmp_path: Path) -> subprocess.Popen[str]:
    """A reader process without root's powers, started on *location* and past its first
    read (LIVE_READER: it prints the tests it sees, then again once "written" exists)."""
    reader = subprocess.Popen(
        [*without_root_powers(), sys.executable, "-c", LIVE_READER, str(location), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while not (tmp_path / "read").exists() and reader.poll() is None:
        time.sleep(0.02)
    return reader


def test_a_read_only_reader_sees_what_its_writer_commits_later(tmp_path: Path) -> None:
    """Review finding 4 (what stays): a reader that may not write the store's folder nor
    files, opened while its writer runs, reads it live: a test the writer commits after the
    reader opened is seen by it."""
    folder = tmp_path / "shared"
    folder.mkdir()
    location = folder / "kari.db"
    writer = Store(location)
    try:
        run_id = writer.begin_run({"uuid": "r", "started_at": 1.0})
        writer.write_tests(run_id, [_test(0)])
        writer._backend._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # an empty WAL
        assert (folder / "kari.db-wal").stat().st_size == 0
        chmod_tree(folder, writable=False)
        try:
            reader = _live_reader(location, tmp_path)
            writer.write_tests(run_id, [_test(1)])
            (tmp_path / "written").touch()
            out, err = reader.communicate(timeout=60)
        finally:
            chmod_tree(folder, writable=True)
    finally:
        writer.close()
    assert out.split("\n")[:2] == ["1", "2"], (out, err)


@pytest.mark.parametrize("writer_stays", [True, False])
def test_a_read_only_reader_of_a_closed_store_sees_a_later_writer(
    tmp_path: Path, writer_stays: bool
) -> None:
    """Review finding 4: a WAL store its last writer closed (no -shm), in a folder the reader
    may not write, is read as it is; a writer that may write it (root) then commits a
    test: the long-lived reader sees it (while the writer runs, and after it closed)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    location = folder / "kari.db"
    with contextlib.closing(Store(location)) as store:
        store.write_tests(store.begin_run({"uuid": "r", "started_at": 1.0}), [_test(0)])
    assert sorted(p.name for p in folder.iterdir()) == ["kari.db"]
    chmod_tree(folder, writable=False)
    try:
        reader = _live_reader(location, tmp_path)
        writer = Store(location)
        try:
            writer.write_tests(1, [_test(1)])
            if not writer_stays:
                writer.close()
            (tmp_path / "written").touch()
            out, err = reader.communicate(timeout=60)
        finally:
            writer.close()
    finally:
        chmod_tree(folder, writable=True)
    assert out.split("\n")[:2] == ["1", "2"], (out, err)
