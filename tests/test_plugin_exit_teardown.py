"""At the process's exit, a ``--kari-debug`` run's objects go with the first collection of the
interpreter's module teardown, as plain pytest's do: nothing of the package (a fork hook, a
module's loader) keeps pytest's config, and through it the whole run, alive past it."""

from __future__ import annotations

import gc
import weakref

import pytest

from pytest_kari_debug.metrics.readings import _Probe

#: Marks that write their name to stdout when freed. Their class lives in a namespace of its
#: own: a conftest's globals hold its loader, pytest's assertion rewriter, and through it the
#: config, so a mark that held them would itself keep the run alive.
EXIT_MARKS = '''
import builtins, os, sys

import pytest

_SOURCE = """
class Mark:
    def __init__(self, name):
        self.name = name

    def __call__(self):
        pass

    def __del__(self):
        write(1, ("freed: " + self.name + chr(10)).encode())
"""
_NAMES = {"__builtins__": {"__build_class__": builtins.__build_class__}, "__name__": "marks",
          "write": os.write, "chr": chr}
exec(_SOURCE, _NAMES)
Mark = _NAMES["Mark"]
_KEY = pytest.StashKey()


def pytest_configure(config):
    config.stash[_KEY] = Mark("config")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    # freed when the module teardown clears sys's globals, after its first collection
    sys.kari_exit_mark = Mark("sys")
    # freed when the interpreter clears its own state, after the module teardown
    os.register_at_fork(after_in_child=Mark("fork hooks"))
'''


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="plain"),
        pytest.param(["-p", "pytest_kari_debug.plugin", "--kari-debug"], id="kari-debug"),
    ],
)
def test_the_run_is_freed_by_the_first_collection_of_the_module_teardown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """pytest's config (and with it the session, the items, the reports) is freed before the
    interpreter clears sys's globals and its own state at exit, with ``--kari-debug`` as
    under plain pytest (no other plugin loaded: some hold the config longer)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(EXIT_MARKS)
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    freed = [line for line in result.outlines if line.startswith("freed: ")]
    assert freed == ["freed: config", "freed: sys", "freed: fork hooks"]


def test_a_probe_is_not_kept_alive_by_its_fork_hook() -> None:
    """The metrics probe's fork hook holds its state, not the probe (nor, through a method,
    its module's globals)."""
    probe = _Probe()
    probe.read()
    gone = weakref.ref(probe)
    del probe
    gc.collect()
    assert gone() is None
