"""The run's store closes beside pytest's last work when pytest is the process's program
(pytest_kari_debug.plugin.closing), and is closed, checkpointed and synced when the process
ends; a run nested in another closes it there and then."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_kari_debug.plugin import closing
from pytest_kari_debug.storage import Store

CHECK_AT_EXIT = """
import atexit, os, threading

HERE = os.path.dirname(__file__)


def _note():  # registered first, so run last: after the plugin's wait for its store
    with open(os.path.join(HERE, "at-exit.txt"), "w") as handle:
        handle.write(str(os.path.exists(os.path.join(HERE, "k.db-wal"))))


atexit.register(_note)
"""


def test_the_process_run_leaves_its_store_closed_and_checkpointed_at_exit(
    pytester: pytest.Pytester,
) -> None:
    """After ``python -m pytest --kari-debug --kari-store=k.db`` the store's WAL is gone
    (checkpointed into the file at its last close) before the interpreter shuts down, and
    the store holds the finished run with its tests."""
    pytester.makeconftest(CHECK_AT_EXIT)
    pytester.makepyfile(test_three="def test_a(): pass\ndef test_b(): pass\ndef test_c(): pass\n")
    result = pytester.runpytest_subprocess("--kari-debug", "--kari-store=k.db", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert (pytester.path / "at-exit.txt").read_text() == "False"
    assert not (pytester.path / "k.db-wal").exists()
    with sqlite3.connect(pytester.path / "k.db") as db:
        (finished,) = db.execute("SELECT finished_at FROM runs").fetchone()
        (tests,) = db.execute("SELECT count(*) FROM tests").fetchone()
    assert finished is not None
    assert tests == 3


class _Registered:
    """What close_store hands to atexit."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], None]] = []

    def register(self, function: Callable[[], None]) -> None:
        self.calls.append(function)


@pytest.fixture
def as_the_program(monkeypatch: pytest.MonkeyPatch) -> _Registered:
    """close_store as at the end of the process's own run, with atexit captured."""
    registered = _Registered()
    monkeypatch.setattr(closing, "runs_as_the_program", lambda: True)
    monkeypatch.setattr(closing, "nested_in_a_run", lambda: False)
    monkeypatch.setattr(closing.atexit, "register", registered.register)
    return registered


def _store_with_a_run(path: Path) -> Store:
    store = Store(path)
    run_id = store.begin_run({"uuid": "closing", "started_at": 0.0})
    store.finish_run(run_id, finished_at=1.0, exit_status=0, data={})
    return store


def test_the_process_run_closes_its_store_on_a_thread_and_waits_for_it_at_exit(
    tmp_path: Path, as_the_program: _Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the end of the process's run the store is closed on a thread of its own (pytest's
    thread goes on), and the wait registered for the exit returns once it is closed."""
    store = _store_with_a_run(tmp_path / "k.db")
    release = threading.Event()
    closed_on: list[str] = []
    close = store.close

    def slow_close() -> None:
        release.wait(10)
        closed_on.append(threading.current_thread().name)
        close()

    monkeypatch.setattr(store, "close", slow_close)
    closing.close_store(store)
    assert closed_on == []  # not waited for here
    (wait,) = as_the_program.calls
    release.set()
    wait()
    assert closed_on == ["kari-debug-store-close"]
    assert not (tmp_path / "k.db-wal").exists()


def test_a_store_still_closing_at_the_bound_is_said_and_does_not_hold_the_exit(
    tmp_path: Path,
    as_the_program: _Registered,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A close that hangs (a dead file system) holds the exit for CLOSE_WAIT_S at most and
    says so on stderr; a close that fails is said on stderr too."""
    store = _store_with_a_run(tmp_path / "k.db")
    release = threading.Event()
    monkeypatch.setattr(closing, "CLOSE_WAIT_S", 0.05)
    monkeypatch.setattr(store, "close", lambda: release.wait(10))
    closing.close_store(store)
    as_the_program.calls.pop()()
    release.set()
    assert "still closing after 0 s" in capsys.readouterr().err

    def failing_close() -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store, "close", failing_close)
    closing.close_store(store)
    as_the_program.calls.pop()()
    err = capsys.readouterr().err
    assert "closing failed: OSError: [Errno 5] Input/output error" in err


def test_a_nested_run_closes_its_store_there_and_then(tmp_path: Path) -> None:
    """A run inside another process's work (here: this test) closes the store before
    close_store returns: its caller may read the file next."""
    store = _store_with_a_run(tmp_path / "k.db")
    closing.close_store(store)
    assert not (tmp_path / "k.db-wal").exists()
