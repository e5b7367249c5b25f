"""The heap at the end of a run that asked for it (``--kari-exit-freeze``, ini
``kari_exit_freeze``), frozen for the process's exit.

After pytest's last garbage collection at ``pytest_unconfigure`` (the one that reports
unraisable exceptions), what is still alive lives until the process exits: pytest's items,
reports and config, the modules, the plugin's features. pytest's cleanup collects again and
the interpreter collects while it shuts down, and each of those walks all of it: with a few
thousand tests, more time than the plugin's whole end of run. ``gc.freeze()`` moves those
objects out of the collector's reach, so the process ends without walking them again.

Only the process's own pytest run freezes (``pytest`` or ``python -m pytest``, not a run
nested in another, such as pytester's, and not a program that calls ``pytest.main()`` and
goes on): its heap is about to be torn down. What is made after the freeze is collected as
usual.

It is off by default: the interpreter's shutdown collects the reference cycles the modules
held and runs their finalisers; frozen, they are never finalised, so a user's buffered file
held in a cycle at exit would not be flushed, where plain pytest flushes it.
"""

from __future__ import annotations

import gc
import sys
from types import FrameType

import pytest

from .options import option_bool


def runs_as_the_program() -> bool:
    """Whether pytest is this process's program (its console script or ``python -m pytest``),
    so that the end of the run is the end of the process."""
    main = sys.modules.get("__main__")
    if main is None:
        return False
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == "pytest.__main__":
        return True
    # the console script imports pytest's entry (``_console_main`` since pytest 9)
    for name in ("console_main", "_console_main"):
        entry = getattr(main, name, None)
        if entry is not None and getattr(entry, "__module__", None) == "_pytest.config":
            return True
    return False


#: Modules whose frames are on the stack while a test runs, or while pytester runs pytest.
_INSIDE_A_RUN = frozenset({"_pytest.runner", "_pytest.pytester"})


def nested_in_a_run() -> bool:
    """Whether this run was started inside another one (by a test, pytester's in-process
    runs): the other run goes on after it ends."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") in _INSIDE_A_RUN:
            return True
        frame = frame.f_back
    return False


def freeze_for_exit(config: pytest.Config) -> bool:
    """Freeze the heap left after pytest's garbage collection at unconfigure, if the run
    asked for it (``--kari-exit-freeze``); True if done.

    Not when pytest's unraisable-exception plugin is off (its collection frees the run's
    garbage first and reports what raised in a finaliser), nor when the collector is off. A
    pytest older than 8.4 collects nothing at its end: the garbage is collected here first.
    """
    if not option_bool(config, "exit_freeze"):
        return False
    unraisable = config.pluginmanager.get_plugin("unraisableexception")
    if not gc.isenabled() or unraisable is None:
        return False
    if not runs_as_the_program() or nested_in_a_run():
        return False
    if not hasattr(unraisable, "pytest_unconfigure"):
        gc.collect()
    gc.freeze()
    return True
