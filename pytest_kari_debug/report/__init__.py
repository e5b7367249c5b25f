"""The self-contained HTML report of one run, rendered from ``report_templates/``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import open_atomic
from .data import (
    TESTS_PLACEHOLDER,
    ReportError,
    ReportLimits,
    ReportModel,
    ReportOptions,
    build_report_model,
)
from .templates import render, script_json, templates_dir

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..storage import Store

__all__ = [
    "ReportError",
    "ReportLimits",
    "ReportModel",
    "ReportOptions",
    "build_report_model",
    "render_report",
    "templates_dir",
    "write_report",
]


def render_report(
    run: Mapping[str, Any],
    tests: Sequence[Mapping[str, Any]],
    *,
    store: Store | None = None,
    **options: Unpack[ReportOptions],
) -> str:
    """Return the HTML page of one run (metadata, test records, feature sections).

    With *store*, error groups and alerts show their statuses in it now (see
    :func:`build_report_model`).
    """
    return render(build_report_model(run, tests, store=store, **options))


def write_report(
    path: str | Path,
    run: Mapping[str, Any],
    tests: Iterable[Mapping[str, Any]],
    *,
    store: Store | None = None,
    **options: Unpack[ReportOptions],
) -> Path:
    """Render the report of one run and write it to *path* atomically.

    With *store* (a report rebuilt from it), error groups and alerts show their statuses in
    the store now, not those the run kept at its end.

    Each test's row is turned into its page JSON as soon as it is made and parked in a
    temporary file, then copied into the page: the rows are never all in memory.
    """
    with tempfile.TemporaryFile() as spill:

        def park(row: dict[str, Any]) -> None:
            spill.write(script_json(row).encode("utf-8", "backslashreplace") + b"\n")

        model = build_report_model(run, tests, store=store, row_sink=park, **options)
        html = render(model)
        marker = str(script_json(TESTS_PLACEHOLDER))
        if html.count(marker) != 1:
            msg = "report template must embed the payload once"
            raise ReportError(msg)
        head, tail = html.split(marker)
        spill.seek(0)
        try:
            with open_atomic(path) as out:
                out.write(head.encode("utf-8", "backslashreplace") + b"[")
                separator = b""
                for line in spill:
                    out.write(separator + line.rstrip(b"\n"))
                    separator = b","
                out.write(b"]" + tail.encode("utf-8", "backslashreplace"))
        except OSError as exc:
            msg = f"cannot write the report to {str(path)!r}: {exc}"
            raise ReportError(msg) from exc
    return Path(path)
