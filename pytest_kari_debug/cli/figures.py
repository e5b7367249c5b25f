"""Per-test figures the CLI shows, measured the way alert rules measure them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..rules import MIB, RecordFigures, figure_spec

__all__ = ["DISPLAY_FIGURES", "MIB", "UNITS", "figures_of"]

#: The per-test figures ``runs show``, ``metrics show`` and the exports show.
DISPLAY_FIGURES = (
    "duration_ms",
    "call_ms",
    "cpu_ms",
    "peak_rss_mb",
    "allocated_mb",
    "allocated_blocks",
    "errors",
    "spans",
    "log.error",
    "log.warning",
)
#: Unit of each shown figure (the alert rules' unit).
UNITS: dict[str, str] = {name: figure_spec(name).unit for name in DISPLAY_FIGURES}


def figures_of(record: Mapping[str, Any]) -> dict[str, float]:
    """The shown figures of one test record, only those it measured.

    Each is ``RecordFigures(record).measure(name).value``: the value an alert rule on that
    figure tests. A figure whose instrument was off (missing) or with no value is left out.
    """
    source = RecordFigures(record)
    figures: dict[str, float] = {}
    for name in DISPLAY_FIGURES:
        measured = source.measure(name)
        if measured.missing is None and measured.value is not None:
            figures[name] = measured.value
    return figures
