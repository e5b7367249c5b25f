"""Per-test figures the CLI shows, read from the figures catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..figures import MIB, figure_spec, format_value, values
from ..model import TestRecord

__all__ = ["DISPLAY_FIGURES", "MIB", "UNITS", "figures_of", "shown", "shown_figure"]

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


def shown(value: float | None, unit: str) -> str:
    """*value* in *unit* as every surface shows it (:func:`~pytest_kari_debug.figures.
    format_value`: the largest readable unit, three significant digits); ``-`` for none."""
    return "-" if value is None else format_value(value, unit)


def shown_figure(name: str, figures: Mapping[str, float]) -> str:
    """Figure *name* of *figures* (:func:`figures_of`) in its catalogue unit; ``-`` when the
    test did not measure it."""
    return shown(figures.get(name), UNITS.get(name) or figure_spec(name).unit)
