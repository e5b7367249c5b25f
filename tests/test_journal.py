"""The run's journal: records in order, hostile texts, a line cut by a kill, recovery."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_kari_debug.journal import (
    MemoryRecords,
    RunJournal,
    journal_dir,
    read_lines,
    recover_journals,
)
from pytest_kari_debug.storage import Store, dumps


def _records() -> list[dict[str, object]]:
    return [
        {"nodeid": "t0", "text": 'a,b]\n"c"', "finished_at": 1.0},
        {"nodeid": "t1", "big": 10**30, "finished_at": 2.0},  # orjson refuses it: stdlib writes
        {"nodeid": "t2", "name": "report-\udcff.csv", "finished_at": 3.0},
        {"nodeid": "t3", "text": "\u2028 ünïcode", "finished_at": 4.0},
    ]


@pytest.mark.parametrize("kind", ["journal", "memory"])
def test_records_come_back_in_order_and_whole(tmp_path: Path, kind: str) -> None:
    records = (
        RunJournal(tmp_path, {"uuid": "u1", "pid": 1}) if kind == "journal" else MemoryRecords()
    )
    for record in _records():
        records.append(dumps(record))
    got = list(records)
    assert len(records) == 4
    assert [r["nodeid"] for r in got] == ["t0", "t1", "t2", "t3"]
    assert got[0]["text"] == 'a,b]\n"c"'
    assert got[1]["big"] == 10**30
    assert got[3]["text"] == "\u2028 ünïcode"
    assert "report-" in got[2]["name"]
    assert list(records) == got  # iterable again
    for line in records.texts():  # each text is one valid JSON document
        json.loads(line)
    records.transforms.append(lambda r: r.update(seen=True))
    assert all(r["seen"] for r in records)
    records.remove()


def test_a_line_cut_by_a_kill_is_skipped(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, {"uuid": "u2", "pid": 1})
    journal.append(dumps({"nodeid": "t0"}))
    journal.close()
    with open(journal.path, "ab") as handle:
        handle.write(b'{"nodeid": "t1", "cut')
    store = Store(tmp_path / "k.db")
    # pid 1 is alive (init): not recovered while its process may still write
    assert recover_journals(store, tmp_path) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_recovery_imports_what_the_store_lacks_and_marks_the_run_crashed(tmp_path: Path) -> None:
    store_path = tmp_path / "kari.db"
    store = Store(store_path)
    header = {"uuid": "u3", "pid": _dead_pid(), "started_at": 1.0, "host": socket.gethostname()}
    run_id = store.begin_run(header)
    records = [{"nodeid": f"t{n}", "outcome": "passed", "finished_at": float(n)} for n in range(5)]
    store.write_tests(run_id, records[:2])  # the batch written before the kill
    journal = RunJournal(journal_dir(store_path, tmp_path), header)
    for record in records:
        journal.append(dumps(record))
    journal.close()
    with open(journal.path, "ab") as handle:
        handle.write(b'{"nodeid": "t5", "cu')  # the kill cut this line
    assert store.get_run(run_id)["status"] == "crashed"  # no end, its process gone
    assert recover_journals(store, journal_dir(store_path, tmp_path)) == [run_id]
    assert [t["nodeid"] for t in store.tests(run_id)] == [f"t{n}" for n in range(5)]
    assert store.get_run(run_id)["status"] == "crashed"
    assert not journal.path.exists()
    assert recover_journals(store, journal_dir(store_path, tmp_path)) == []  # nothing twice


def test_recovery_creates_a_run_the_store_never_saw(tmp_path: Path) -> None:
    store = Store(tmp_path / "kari.db")
    header = {"uuid": "u4", "pid": _dead_pid(), "started_at": 1.0, "host": socket.gethostname()}
    journal = RunJournal(tmp_path / "runs", header)
    journal.append(dumps({"nodeid": "t0", "outcome": "failed", "finished_at": 1.0}))
    journal.close()
    (run_id,) = recover_journals(store, tmp_path / "runs")
    run = store.get_run(run_id)
    assert run is not None
    assert run["uuid"] == "u4"
    assert run["status"] == "crashed"
    assert [t["outcome"] for t in store.tests(run_id)] == ["failed"]


def test_a_live_or_foreign_run_is_left_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "kari.db")
    for uuid, pid, host in (("own", os.getpid(), socket.gethostname()), ("far", 1, "elsewhere")):
        journal = RunJournal(tmp_path / "runs", {"uuid": uuid, "pid": pid, "host": host})
        journal.append(dumps({"nodeid": "t0", "finished_at": 1.0}))
        journal.close()
    assert recover_journals(store, tmp_path / "runs") == []
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_records_can_be_indexed_like_the_list_they_replace(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, {"uuid": "u5", "pid": 1})
    for n in range(3):
        journal.append(dumps({"nodeid": f"t{n}"}))
    assert journal[0]["nodeid"] == "t0"
    assert journal[-1]["nodeid"] == "t2"
    with pytest.raises(IndexError, match="out of range"):
        journal[3]


def test_shards_of_one_run_keep_journals_of_their_own(tmp_path: Path) -> None:
    """Shards of one run id on one machine share the journal folder of their store: each
    writes a file of its own there, and one opening or removing its journal never touches
    another's (it used to take the run id as its name and delete the other's on a clash)."""
    header = {"uuid": "ci-5", "pid": os.getpid(), "host": socket.gethostname()}
    first = RunJournal(tmp_path / "runs", header)
    first.append(dumps({"nodeid": "a", "finished_at": 1.0}))
    second = RunJournal(tmp_path / "runs", header)
    second.append(dumps({"nodeid": "b", "finished_at": 2.0}))
    assert first.path != second.path
    assert {first.path.parent, second.path.parent} == {tmp_path / "runs"}  # both recoverable
    second.remove()
    assert [record["nodeid"] for record in first] == ["a"]
    first.remove()
    assert not (tmp_path / "runs").exists()


def test_a_run_id_with_a_slash_gets_a_recoverable_journal(tmp_path: Path) -> None:
    """A run id may hold ``/`` (``pipeline/123``): its journal is still a file of the store's
    journal folder, which the next run imports after a kill, not one in a temporary folder."""
    journal = RunJournal(tmp_path / "runs", {"uuid": "pipeline/123", "pid": 1})
    journal.append(dumps({"nodeid": "a", "finished_at": 1.0}))
    journal.close()
    assert journal.path.parent == tmp_path / "runs"
    assert next(read_lines(journal.path))["uuid"] == "pipeline/123"
