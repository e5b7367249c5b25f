"""Summaries of a run: its sections built once (:mod:`.sections`: metrics, errors, profiling,
tracing, for the JSON, the report and the terminal) and the Markdown for CI
(:mod:`.ci_markdown`: a job summary, a comparison for a PR comment)."""

from __future__ import annotations

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
    "Failure",
    "History",
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
