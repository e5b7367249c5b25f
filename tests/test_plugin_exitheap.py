"""The end of a run that asks for it (``--kari-exit-freeze``) freezes what is left for the
process's exit (pytest_kari_debug.plugin.exitheap), after pytest's own garbage collection; by
default nothing is frozen and a user's finalisers run at exit as under plain pytest."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

FREEZE_AT_EXIT = """
import atexit, gc, os


def _note():  # atexit: after pytest's unconfigure and cleanup, before the interpreter's teardown
    with open(os.path.join(os.path.dirname(__file__), "frozen.txt"), "w") as handle:
        handle.write(str(gc.get_freeze_count()))


atexit.register(_note)
"""
CYCLE_AT_THE_END = """
class Cycle:
    def __init__(self):
        self.me = self

    def __del__(self):
        raise ValueError("finaliser of a cycle")


def pytest_sessionfinish(session):
    Cycle()  # garbage only pytest's collection at unconfigure finds
"""
TWO_TESTS = """
def test_one():
    pass


def test_two():
    pass
"""


@pytest.mark.parametrize(
    ("args", "frozen"),
    [
        pytest.param(["--kari-debug", "--kari-exit-freeze"], True, id="asked"),
        pytest.param(["--kari-debug"], False, id="kari-debug-alone"),
        pytest.param([], False, id="not-asked"),
        pytest.param(
            ["-p", "no:unraisableexception", "--kari-debug", "--kari-exit-freeze"],
            False,
            id="no-unraisable",
        ),
    ],
)
def test_the_process_run_freezes_its_heap_after_pytests_last_collection(
    pytester: pytest.Pytester, args: list[str], frozen: bool
) -> None:
    """A ``python -m pytest --kari-debug --kari-exit-freeze`` process ends with its heap
    frozen (its cleanup and the interpreter's exit do not walk it again), and pytest still
    reports the unraisable exception of a cycle a test left, found by its collection before
    the freeze. A run that did not ask for the freeze, or without pytest's collection, freezes
    nothing."""
    pytester.makeconftest(FREEZE_AT_EXIT + CYCLE_AT_THE_END)
    pytester.makepyfile(test_two=TWO_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-W", "default::pytest.PytestUnraisableExceptionWarning", *args
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    count = int((pytester.path / "frozen.txt").read_text())
    assert (count > 0) is frozen, count
    if "no:unraisableexception" not in args:
        # warned after the summary, so on stderr
        result.stderr.fnmatch_lines(
            ["*PytestUnraisableExceptionWarning*", "*finaliser of a cycle*"]
        )


def test_a_run_nested_in_another_process_freezes_nothing(pytester: pytest.Pytester) -> None:
    """pytester's in-process run (as any program calling pytest.main and going on) leaves the
    process's collector as it was: its objects stay collectable."""
    pytester.makeconftest(FREEZE_AT_EXIT)
    pytester.makepyfile(test_two=TWO_TESTS)
    before = gc.get_freeze_count()
    result = pytester.runpytest_inprocess(
        "--kari-debug", "--kari-exit-freeze", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2)
    assert gc.get_freeze_count() == before


NESTED_RUN = """
import gc
import sys
from pathlib import Path


def test_runs_pytest_inside(pytester):
    pytester.makepyfile(test_inner="def test_one():\\n    pass\\n")
    before = gc.get_freeze_count()
    result = pytester.runpytest_inprocess(
        "--kari-debug", "--kari-exit-freeze", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=1)
    assert gc.get_freeze_count() == before
"""


def test_a_run_nested_in_a_process_that_never_loaded_the_plugin_freezes_nothing(
    pytester: pytest.Pytester,
) -> None:
    """Inside ``python -m pytest -p no:kari_debug`` (the plugin's entry module never loaded
    by the outer run), a test's in-process ``--kari-debug`` run still sees that it is nested
    and freezes nothing."""
    pytester.makepyfile(test_outer=NESTED_RUN)
    result = pytester.runpytest_subprocess("-p", "pytester", "-p", "no:kari_debug")
    result.assert_outcomes(passed=1)


def test_the_pytest_console_script_freezes_too(pytester: pytest.Pytester) -> None:
    """The ``pytest`` command (the console script, whose ``__main__`` calls
    ``pytest.console_main``) is the process's own run as ``python -m pytest`` is."""
    script = Path(sys.executable).parent / "pytest"
    if not script.exists():
        pytest.skip(f"no pytest console script beside {sys.executable}")
    pytester.makeconftest(FREEZE_AT_EXIT)
    pytester.makepyfile(test_two=TWO_TESTS)
    result = pytester.run(
        str(script), "-p", "no:randomly", "-p", "no:cacheprovider", "--kari-debug",
        "--kari-exit-freeze",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    assert int((pytester.path / "frozen.txt").read_text()) > 0


BUFFERED_FILE_IN_A_CYCLE = """
import os


class Holder:
    def __init__(self, path):
        self.handle = open(path, "w")  # buffered, never flushed by hand
        self.me = self


def pytest_sessionfinish(session):
    global _HELD
    _HELD = Holder(os.path.join(str(session.config.rootpath), "out.txt"))
    _HELD.handle.write("flushed by the finaliser\\n")
"""


@pytest.mark.parametrize("args", [[], ["--kari-debug"]], ids=["plain", "kari-debug"])
def test_a_buffered_file_in_a_cycle_is_flushed_at_exit_as_with_plain_pytest(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    """By default the plugin freezes nothing at exit: the interpreter's shutdown finalises a
    conftest's file held in a reference cycle and flushes what it buffered, as plain pytest
    does."""
    pytester.makeconftest(BUFFERED_FILE_IN_A_CYCLE)
    pytester.makepyfile(test_two=TWO_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", *args)
    result.assert_outcomes(passed=2)
    assert (pytester.path / "out.txt").read_text() == "flushed by the finaliser\n"
