"""The suite-wide guard fails a test that leaves process-wide state behind, and restores it."""

from __future__ import annotations

import logging
import sys
import tracemalloc
from collections.abc import Iterator

import pytest

LEAKY = """
import logging
import sys
import threading
import tracemalloc

STOP = threading.Event()

def test_adds_a_handler():
    logging.getLogger("leaky.app").addHandler(logging.NullHandler())

def test_removes_a_root_handler():
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__module__ == "logging":
            root.removeHandler(handler)

def test_starts_tracemalloc():
    tracemalloc.start()

def test_sets_the_tracer_provider():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())

def test_sets_the_meter_provider():
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider

    metrics.set_meter_provider(MeterProvider())

def test_installs_a_profile_hook():
    sys.setprofile(lambda frame, event, arg: None)

def test_leaves_a_thread_running():
    threading.Thread(target=STOP.wait, args=(60,), name="leaky-worker").start()

def test_zz_cleans_up_after_itself():
    STOP.set()
    handler = logging.StreamHandler()
    logging.getLogger("tidy").addHandler(handler)
    logging.getLogger("tidy").removeHandler(handler)
"""


@pytest.fixture
def root_handler() -> Iterator[logging.Handler]:
    """A plain handler on the root logger for the run's duration (what an app might set)."""
    handler = logging.NullHandler()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def test_guard_fails_each_leaky_test_and_restores_the_state(
    pytester: pytest.Pytester, root_handler: logging.Handler
) -> None:
    """Every kind of leftover fails its own test at teardown, naming what was left; the next
    test starts from the state as it was."""
    pytester.makepyfile(test_leaky=LEAKY)
    result = pytester.runpytest("-p", "state_guard")
    result.assert_outcomes(passed=8, errors=7)
    result.stdout.fnmatch_lines_random(
        [
            "*ERROR at teardown of test_adds_a_handler*",
            "*logging handler <NullHandler (NOTSET)> left on logger 'leaky.app'*",
            "*logging handler <NullHandler (NOTSET)> removed from logger '<root>'*",
            "*tracemalloc left tracing*",
            "*OpenTelemetry tracer provider * set process-wide*",
            "*OpenTelemetry meter provider * set process-wide*",
            "*sys.setprofile hook * left installed*",
            "*non-daemon thread 'leaky-worker' still running*",
        ]
    )
    result.stdout.no_fnmatch_line("*teardown of test_zz_cleans_up_after_itself*")
    assert root_handler in logging.getLogger().handlers
    assert not logging.getLogger("leaky.app").handlers
    assert not tracemalloc.is_tracing()
    assert sys.getprofile() is None


def test_guard_passes_a_suite_that_leaves_nothing(pytester: pytest.Pytester) -> None:
    """Tests that set state and put it back pass under the guard."""
    pytester.makepyfile(
        """
        import logging
        import tracemalloc

        def test_tidy():
            tracemalloc.start()
            tracemalloc.stop()
            handler = logging.NullHandler()
            logging.getLogger().addHandler(handler)
            logging.getLogger().removeHandler(handler)
        """
    )
    pytester.runpytest("-p", "state_guard").assert_outcomes(passed=1)
