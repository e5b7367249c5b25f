"""Honest figures in pytest runs: the test's own work only, the plugin's cost its own figure."""

from __future__ import annotations

import json

import pytest

from pytest_kari_debug.figures import measure
from pytest_kari_debug.model import RunRecord

#: Every diagnostics flag set a verdict must not depend on.
FLAG_SETS = (
    (),
    ("--kari-memory",),
    ("--kari-profile",),
    ("--kari-trace",),
    ("--kari-memory", "--kari-profile", "--kari-trace"),
)
FLAG_IDS = ["plain", "memory", "profile", "trace", "all"]

BUDGET_FILE = """
import time
import pytest

@pytest.mark.kari_budget(duration_ms=150)
def test_within_budget():
    time.sleep(0.06)

@pytest.mark.kari_budget(duration_ms=150)
def test_over_budget():
    time.sleep(0.3)

@pytest.mark.kari_budget(cpu_ms=1000)
def test_cpu_within_budget():
    sum(i * i for i in range(20000))
"""

TRIVIAL_FILE = """
import pytest

@pytest.mark.parametrize("a", range(15))
def test_trivial(a):
    assert a + 1 == a + 1
"""

CPU_FILE = """
import time

def test_spins():
    end = time.perf_counter() + 0.08
    total = 0
    while time.perf_counter() < end:
        total += sum(range(200))

def test_allocates():
    blocks = [bytearray(1000) for _ in range(2000)]
    assert len(blocks) == 2000
"""


def _run(pytester: pytest.Pytester, *flags: str) -> RunRecord:
    pytester.runpytest_subprocess(
        "--kari-debug", "--kari-store=none", "--kari-json=run.json", "-p", "no:randomly", *flags
    )
    return RunRecord.from_dict(json.loads((pytester.path / "run.json").read_text()))


@pytest.mark.parametrize("flags", FLAG_SETS, ids=FLAG_IDS)
def test_budget_verdict_does_not_depend_on_diagnostics(
    pytester: pytest.Pytester, flags: tuple[str, ...]
) -> None:
    """A 150 ms budget passes a 60 ms test and fails a 300 ms one under every flag set.

    The plugin's own work under --kari-memory used to add 60-250 ms to the test's setup.
    """
    pytester.makepyfile(BUDGET_FILE)
    result = pytester.runpytest_inprocess("--kari-debug", "--kari-store=none", *flags)
    result.assert_outcomes(passed=2, failed=1)
    verdict = "*FAILED*test_over_budget*kari_budget(duration_ms=150): duration_ms = *"
    result.stdout.fnmatch_lines([verdict])


@pytest.mark.parametrize("flags", FLAG_SETS, ids=FLAG_IDS)
def test_trivial_test_phases_stay_small(pytester: pytest.Pytester, flags: tuple[str, ...]) -> None:
    """A trivial test's own phases sum to at most 3 ms under every flag set.

    The plugin's work inside a phase would show in every one of the 15 tests; the quickest is
    judged, so a busy machine's preemptions (in some of them) do not decide the outcome.
    """
    pytester.makepyfile(TRIVIAL_FILE)
    run = _run(pytester, *flags)
    assert len(run.tests) == 15
    totals = [sum(test.phases.values()) for test in run.tests]
    assert min(totals) <= 3.0, totals
    for test in run.tests:
        assert test.kari_overhead_ms is not None
        assert test.kari_overhead_ms >= 0.0


@pytest.mark.parametrize("flags", FLAG_SETS, ids=FLAG_IDS)
def test_cpu_never_exceeds_wall_time(pytester: pytest.Pytester, flags: tuple[str, ...]) -> None:
    """A single-threaded test's cpu_ms is at most its duration_ms (rounding to 1 µs aside)."""
    pytester.makepyfile(CPU_FILE)
    run = _run(pytester, *flags)
    for test in run.tests:
        cpu = measure("cpu_ms", test).value
        assert cpu is not None
        assert cpu <= test.duration_ms + 0.002, (test.nodeid, cpu, test.duration_ms)
    spinner = next(t for t in run.tests if t.nodeid.endswith("test_spins"))
    assert spinner.cpu_ms is not None
    assert spinner.cpu_ms > 1.0  # it did measure the spinning (a busy machine gives less)


def test_record_carries_own_work_and_overhead(pytester: pytest.Pytester) -> None:
    """The record's phases are the test's own; pytest's time minus them is kari_overhead_ms."""
    pytester.makepyfile(CPU_FILE)
    run = _run(pytester, "--kari-memory")
    assert run.version == 2
    for test in run.tests:
        assert test.version == 2
        assert test.duration_ms == round(test.phases["setup"] + test.phases["call"], 3)
        assert measure("kari_overhead_ms", test).value == test.kari_overhead_ms
    assert run.kari_overhead_ms == round(sum(t.kari_overhead_ms or 0 for t in run.tests), 3)


def test_memory_run_keeps_tracemalloc_on_and_stops_it_after(pytester: pytest.Pytester) -> None:
    """--kari-memory starts tracemalloc once for the run and stops it when the run ends."""
    pytester.makepyfile(
        """
        import tracemalloc

        def test_one():
            assert tracemalloc.is_tracing()

        def test_two():
            assert tracemalloc.is_tracing()
        """
    )
    pytester.makeconftest(
        """
        import tracemalloc

        seen = []

        def pytest_runtest_logstart(nodeid):
            seen.append(tracemalloc.is_tracing())

        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(config):
            print("TRACING-BETWEEN", seen[1:], "AFTER", tracemalloc.is_tracing())
        """
    )
    result = pytester.runpytest_subprocess("--kari-memory", "--kari-store=none", "-s")
    result.assert_outcomes(passed=2)
    # Between tests it stays on (started by the first test, held by the run) ...
    assert "TRACING-BETWEEN [True] AFTER False" in result.stdout.str()
