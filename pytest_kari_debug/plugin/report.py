"""The HTML report feature of the plugin: ``--kari-report PATH`` (ini ``kari_report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..journal import RunRecords
from .options import option_path, option_text
from .state import STATE, guard

_REPORT_PATH = pytest.StashKey[Path | None]()


def _report_path(config: pytest.Config) -> Path | None:
    path = option_path(config, "report")
    if path is None:
        return None
    if path.is_dir():
        text = option_text(config, "report")
        msg = f"kari-debug: --kari-report {text!r} is a directory; give the path of an .html file"
        raise pytest.UsageError(msg)
    return path


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Check the report path; asking for a report wraps every test in a debug session."""
    path = _report_path(config)
    config.stash[_REPORT_PATH] = path
    state = config.stash.get(STATE, None)
    if path is not None and state is not None:
        # A report of only the tests that happen to use a kari fixture would mislead.
        state.wrap_every_test()
        if not state.is_worker:
            state.expect_output("report", path, page=True)


@pytest.hookimpl(trylast=True)
def pytest_kari_debug_run_finished(
    config: pytest.Config, run: dict[str, Any], tests: RunRecords, sections: dict[str, Any]
) -> None:
    """Write the HTML report after every other feature has filled its sections."""
    path = config.stash.get(_REPORT_PATH, None)
    state = config.stash.get(STATE, None)
    if path is None or state is None:
        return
    with guard(config, "writing the HTML report"):
        from ..report import ReportError, write_report  # jinja2: only in a run with a report

        past = None
        if state.store is not None and state.run_id is not None:
            with guard(config, "reading the tests' history from the store"):
                from ..history import load_history  # a run with a report and a store

                past = load_history(state.store, until_run=state.run_id)
        try:
            written = write_report(
                path, run, tests, sections=sections, diagnostics=state.diagnostics, history=past
            )
        except (ReportError, OSError) as exc:
            state.output_failed("report", path, str(exc), page=True, shown="--kari-report")
            return
        except Exception as exc:  # never leave an earlier run's report standing
            state.output_failed(
                "report",
                path,
                f"{type(exc).__name__}: {exc}",
                page=True,
                shown="--kari-report",
            )
            return
        state.outputs["report"] = str(written)
