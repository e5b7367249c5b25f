"""The Markdown run summary: ``--kari-markdown=FILE`` and GitHub's ``GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..atomic import write_atomic
from .options import STEP_SUMMARY_ENV, option_text
from .state import STATE, KariState, guard

if TYPE_CHECKING:
    from ..summaries.ci_markdown import Failure, History, SummaryLimits

PLUGIN = "kari-debug-markdown"


class MarkdownSummary:
    """Keeps each failed test's crash line (controller side) and writes the summary."""

    def __init__(
        self, rootdir: Path, path: Path | None, step_summary: Path | None, limits: SummaryLimits
    ) -> None:
        self.rootdir = rootdir
        self.path = path
        self.step_summary = step_summary
        self.limits = limits
        self.failures: dict[str, Failure] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note the first failure of each test: its message's first line and location."""
        if not report.failed or report.nodeid in self.failures:
            return
        if len(self.failures) >= self.limits.rows * 4:
            return  # the summary shows only the first rows; a few spare for reruns
        crash = getattr(report.longrepr, "reprcrash", None)
        if crash is not None:
            message = str(getattr(crash, "message", "") or "")
            location = f"{self._relative(str(crash.path))}:{crash.lineno}"
        else:
            message = str(report.longreprtext or "")
            path, line, _ = report.location
            location = f"{path}:{(line or 0) + 1}"
        headline = next((part.strip() for part in message.splitlines() if part.strip()), "")
        phase = "" if report.when == "call" else f" (in {report.when})"
        from ..summaries.ci_markdown import (
            Failure,
        )  # the Markdown is imported by a run that writes it

        self.failures[report.nodeid] = Failure(headline + phase, location)

    def _relative(self, path: str) -> str:
        """*path* from the rootdir when it lies under it (as pytest shows test ids)."""
        try:
            return Path(path).relative_to(self.rootdir).as_posix()
        except ValueError:
            return path

    @pytest.hookimpl(wrapper=True)
    def pytest_kari_debug_run_finished(
        self,
        config: pytest.Config,
        run: dict[str, Any],
        tests: list[dict[str, Any]],
        sections: dict[str, Any],
    ) -> Generator[None, None, None]:
        """After every feature filled its sections and wrote its files: write the summary."""
        yield
        state = config.stash[STATE]
        with guard(config, "writing the Markdown summary"):
            from ..summaries.ci_markdown import run_summary

            text = run_summary(
                run,
                tests,
                sections,
                failures=self.failures,
                outputs=_outputs(state),
                history=_history(config, state, tests),
                limits=self.limits,
            )
            self._write(state, text)

    def _write(self, state: KariState, text: str) -> None:
        if self.path is not None:
            try:
                state.outputs["markdown"] = str(write_atomic(self.path, text))
            except OSError as exc:
                state.diagnose(f"could not write --kari-markdown {str(self.path)!r}: {exc}")
        if self.step_summary is not None:
            try:
                with self.step_summary.open("a", encoding="utf-8") as handle:
                    handle.write(text)
            except OSError as exc:
                state.diagnose(
                    f"could not append to ${STEP_SUMMARY_ENV} {str(self.step_summary)!r}: {exc}"
                )


def _outputs(state: KariState) -> dict[str, str]:
    outputs = {k: v for k, v in state.outputs.items() if k != "markdown"}
    if state.settings.json_path is not None:
        outputs.setdefault("json", str(state.settings.json_path))
    if state.store is not None and state.run_id is not None:
        outputs.setdefault("store", f"{state.store.label} (run {state.run_id})")
    return outputs


def _history(
    config: pytest.Config, state: KariState, tests: list[dict[str, Any]]
) -> History | None:
    """New and flaky tests from the store's earlier runs (None without a store or a past)."""
    if state.store is None or state.run_id is None:
        return None
    from ..history import load_history
    from ..summaries.ci_markdown import History

    past = load_history(state.store, until_run=state.run_id)
    if len(past.run_ids) < 2:
        return None  # a first run: every test would be "new"
    current = state.run_id
    window = past.tests.values()
    new = sorted(h.nodeid for h in window if h.run_ids == (current,))
    flaky = [
        (h.nodeid, f"{h.letters()}: failed {h.failures} of the last {h.runs} runs")
        for h in past.flaky()
        if h.run_ids[-1] == current
    ]
    return History(new=new, flaky=flaky)


def _resolve(config: pytest.Config, text: str, *, from_cli: bool) -> Path:
    path = Path(text)
    if not path.is_absolute():
        base = Path(config.invocation_params.dir) if from_cli else config.rootpath
        path = base / path
    return path


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Check ``--kari-markdown``; register the summary writer when a summary is wanted."""
    state = config.stash.get(STATE, None)
    if state is None or state.is_worker:
        return
    text = option_text(config, "markdown")
    path = None
    if text:
        path = _resolve(config, text, from_cli=bool(config.getoption("kari_markdown", None)))
        if path.is_dir():
            msg = (
                f"kari-debug: --kari-markdown {text!r} is a directory; give the path of a .md file"
            )
            raise pytest.UsageError(msg)
        state.wrap_every_test()  # a summary of only some tests would mislead
    step_text = os.environ.get(STEP_SUMMARY_ENV, "").strip()
    step = Path(step_text) if step_text and config.getini("kari_step_summary") else None
    if path is not None or step is not None:
        from ..summaries.ci_markdown import SummaryLimits

        config.pluginmanager.register(
            MarkdownSummary(config.rootpath, path, step, SummaryLimits()), PLUGIN
        )
