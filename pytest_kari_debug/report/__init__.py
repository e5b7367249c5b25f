"""The self-contained HTML report of one run, rendered from ``report_templates/``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..history import RunHistory
from .data import ReportError, ReportLimits, ReportModel, build_report_model
from .templates import render, templates_dir

__all__ = [
    "ReportError",
    "ReportLimits",
    "ReportModel",
    "build_report_model",
    "render_report",
    "templates_dir",
    "write_report",
]


def render_report(
    run: Mapping[str, Any],
    tests: Sequence[Mapping[str, Any]],
    *,
    sections: Mapping[str, Any] | None = None,
    diagnostics: Iterable[str] = (),
    limits: ReportLimits | None = None,
    title: str | None = None,
    history: RunHistory | None = None,
) -> str:
    """Return the HTML page of one run (metadata, test records, feature sections)."""
    model = build_report_model(
        run,
        tests,
        sections=sections,
        diagnostics=diagnostics,
        limits=limits,
        title=title,
        history=history,
    )
    return render(model)


def write_report(
    path: str | Path,
    run: Mapping[str, Any],
    tests: Sequence[Mapping[str, Any]],
    *,
    sections: Mapping[str, Any] | None = None,
    diagnostics: Iterable[str] = (),
    limits: ReportLimits | None = None,
    title: str | None = None,
    history: RunHistory | None = None,
) -> Path:
    """Render the report of one run and write it to *path* atomically."""
    html = render_report(
        run,
        tests,
        sections=sections,
        diagnostics=diagnostics,
        limits=limits,
        title=title,
        history=history,
    )
    try:
        return write_atomic(path, html)
    except OSError as exc:
        msg = f"cannot write the report to {str(path)!r}: {exc}"
        raise ReportError(msg) from exc
