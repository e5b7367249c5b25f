"""Summaries of a run: its sections built once (:mod:`.sections`: metrics, errors, profiling,
tracing, for the JSON, the report and the terminal) and the Markdown for CI
(:mod:`.ci_markdown`: a job summary, a comparison for a PR comment).

The Markdown names are imported on first use (module ``__getattr__``): every ``--kari-debug``
run builds the sections, few write Markdown.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ci_markdown import (
        DEFAULT_MAX_CHARS,
        FAILED_OUTCOMES,
        Failure,
        History,
        SummaryLimits,
        comparison_markdown,
        run_summary,
    )
from .sections import (
    SECTION_GROUPS,
    AlertedTest,
    LogCounts,
    RunDigest,
    RunSections,
    affected_tests,
    errors_lines,
    errors_section,
    metrics_line,
    metrics_section,
    profiling_lines,
    profiling_section,
    run_sections,
    tracing_line,
    tracing_section,
)

__all__ = [
    "DEFAULT_MAX_CHARS",
    "FAILED_OUTCOMES",
    "SECTION_GROUPS",
    "AlertedTest",
    "Failure",
    "History",
    "LogCounts",
    "RunDigest",
    "RunSections",
    "SummaryLimits",
    "affected_tests",
    "comparison_markdown",
    "errors_lines",
    "errors_section",
    "metrics_line",
    "metrics_section",
    "profiling_lines",
    "profiling_section",
    "run_sections",
    "run_summary",
    "tracing_line",
    "tracing_section",
]

_CI_MARKDOWN = frozenset(
    {"DEFAULT_MAX_CHARS", "FAILED_OUTCOMES", "Failure", "History", "SummaryLimits",
     "comparison_markdown", "run_summary"}
)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _CI_MARKDOWN:
        return getattr(importlib.import_module(f"{__name__}.ci_markdown"), name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
