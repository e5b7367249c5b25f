"""Caps keep what explains a failure; threads outliving their test never write into the next."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_json

from pytest_kari_debug.storage import Store


def test_a_full_log_cap_keeps_the_first_and_newest_with_a_marker_everywhere(
    pytester: pytest.Pytester, pytester_store: Path
) -> None:
    """1,000 records at max_log_entries=100: records 0..49 and 950..999, a marker for 900."""
    pytester.makepyfile(
        """
        import logging

        def test_fails_at_the_end(kari_logger):
            for i in range(1000):
                kari_logger.info("step", i=i)
            logging.getLogger("app").error("the cause, at the very end")
            assert False
        """
    )
    result = pytester.runpytest(
        "--kari-debug", "--kari-max-log-entries=100", "--kari-json=run.json",
        "--kari-report=report.html",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    (test,) = read_json(pytester)["tests"]
    data = test["collected_data"]["logging"]
    records = data["records"]
    assert data["dropped"] == 901
    assert len(records) == 101
    assert [r["fields"]["i"] for r in records[:50]] == list(range(50))
    marker = records[50]
    assert (marker["level"], marker["name"], marker["fields"]["dropped"]) == (
        "WARNING", "kari.debug", 901,
    )  # fmt: skip
    assert [r["fields"]["i"] for r in records[51:-1]] == list(range(951, 1000))
    assert records[-1]["message"] == "the cause, at the very end"  # what explains the failure
    assert test["extra"]["logging"]["records"] == 100  # the marker is not one of the user's
    assert "901 log record(s) dropped here" in (pytester.path / "report.html").read_text()
    store = Store(pytester_store, create=False)
    try:
        names = [r.get("name") for r in store.records("log", newest_first=False)]
    finally:
        store.close()
    assert names.count("kari.debug") == 1
    assert names[-1] == "app"


#: The thread's writes are counted, and the tests wait for the ones they need (never a
#: sleep that a loaded machine may not fill): test_a ends after its first record, test_b after
#: 25 more, test_c once the thread has stopped.
STRAY = """
import logging, threading, time

log = logging.getLogger("worker")
WAIT_S = 60
STOP = threading.Event()
FIRST = threading.Event()
ENOUGH = threading.Event()
logged = 0
wanted = None


def _chatter():
    global logged
    while not STOP.is_set():
        log.warning("still here")
        logged += 1
        FIRST.set()
        if wanted is not None and logged >= wanted:
            ENOUGH.set()
        time.sleep(0.005)


def test_a():
    threading.Thread(target=_chatter, daemon=True, name="chatter").start()
    assert FIRST.wait(WAIT_S)


def test_b():
    global wanted
    wanted = logged + 25
    assert ENOUGH.wait(WAIT_S)
    log.warning("test_b's own record")


def test_c():
    STOP.set()
    [chatter] = [t for t in threading.enumerate() if t.name == "chatter"]
    chatter.join(WAIT_S)
    assert not chatter.is_alive()
"""


def test_a_thread_outliving_its_test_never_writes_into_the_next(
    pytester: pytest.Pytester, pytester_store: Path
) -> None:
    pytester.makepyfile(test_stray=STRAY)
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json", "--kari-report=r.html")
    result.assert_outcomes(passed=3)
    document = read_json(pytester)
    logs = {
        t["nodeid"].split("::")[-1]: [
            r["message"] for r in t["collected_data"]["logging"]["records"]
        ]
        for t in document["tests"]
    }
    assert set(logs["test_a"]) == {"still here"}  # while test_a ran, the thread was its
    assert logs["test_b"] == ["test_b's own record"]
    section = document["sections"]["unowned"]
    assert section["records"] >= 24  # test_b waited for 25 of the thread's records
    assert section["threads"] == {"chatter": "test_stray.py::test_a"}
    assert {r["started_in"] for r in section["logs"]} == {"test_stray.py::test_a"}
    assert section["kept"] + section["dropped"] == section["records"]
    result.stdout.fnmatch_lines(["unowned: * log record(s) from 1 thread(s) that outlived*"])
    assert "outlived their test" not in "".join(logs["test_b"])
    assert "chatter" in (pytester.path / "r.html").read_text()
    store = Store(pytester_store, create=False)
    try:
        stored = [r for r in store.records("log") if r.get("test_id") is None]
    finally:
        store.close()
    assert len(stored) == section["kept"]
