"""The run's store is closed, checkpointed and synced when the process ends."""

from __future__ import annotations

import sqlite3

import pytest

CHECK_AT_EXIT = """
import atexit, os

HERE = os.path.dirname(__file__)


def _note():  # registered first, so run last
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
