"""Per-test figures the CLI shows, read from the figures catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..figures import MIB, figure_spec, values
from ..model import TestRecord

__all__ = ["DISPLAY_FIGURES", "MIB", "UNITS", "figures_of"]

#: The per-test figures ``runs show``, ``metrics show`` and the exports show.
DISPLAY_FIGURES = (
    "duration_ms",
    "call_ms",
    "cpu_ms",
    "kari_overhead_ms",
    "peak_rss_mb",
    "allocated_mb",
    "allocated_blocks",
    "errors",
    "spans",
    "log.error",
    "log.warning",
)
#: Unit of each shown figure (the catalogue's unit).
UNITS: dict[str, str] = {name: figure_spec(name).unit for name in DISPLAY_FIGURES}


def figures_of(record: TestRecord | Mapping[str, Any]) -> dict[str, float]:
    """The shown figures of one test record, only those it measured.

    Each is the catalogue's value (:func:`pytest_kari_debug.figures.measure`): the value an
    alert rule on that figure tests.
    """
    return values(DISPLAY_FIGURES, record)
