"""The catalogue's entries: each fixed figure (``catalogue.json``) and each family, by name."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError
from ..model import LOG_LEVELS, Unit
from ..sharedmethods import dataclass

#: Tag of a debug session's root span (a test under --kari-trace): not counted in its figures.
ROOT_TAG = "kari.session.root"
SPAN_AGGREGATES = ("count", "total_ms", "max_ms", "min_ms", "mean_ms", "p50_ms", "p90_ms",
                   "p95_ms", "p99_ms")  # fmt: skip
METRIC_AGGREGATES = ("last", "max", "min", "mean", "sum", "count", "p50", "p90", "p95", "p99")


class UnknownFigure(ConfigurationError):
    """A figure name that is not in the catalogue (the message lists the catalogue)."""


@dataclass(frozen=True)
class FigureSpec:
    """A figure: its name, unit, meaning, where it comes from, and whether it is a series."""

    name: str
    unit: str
    description: str
    series: bool = False
    source: str = ""

    @property
    def base_unit(self) -> str:
        """The unit of :attr:`Measurement.base` (bytes for a MiB figure)."""
        return unit_of(self.unit).base.value

    @property
    def factor(self) -> float:
        """Multiply a value by this to get it in :attr:`base_unit`."""
        return unit_of(self.unit).factor

    def to_dict(self) -> dict[str, Any]:
        """The catalogue entry, as ``kari-debug figures --format json`` and the API show it."""
        return {
            "name": self.name,
            "unit": self.unit,
            "base_unit": self.base_unit,
            "description": self.description,
            "source": self.source,
            "series": self.series,
        }


_UNITS = {unit.value: unit for unit in Unit}


def unit_of(text: str) -> Unit:
    """The :class:`~pytest_kari_debug.model.Unit` spelled *text* (``NONE`` for another)."""
    found = _UNITS.get(text) if type(text) is str else None  # a figure's unit, every reading
    if found is not None:
        return found
    try:
        return Unit(text)
    except ValueError:
        return Unit.NONE


def _load(path: Path) -> dict[str, FigureSpec]:
    entries = json.loads(path.read_text(encoding="utf-8"))
    return {entry["name"]: FigureSpec(**entry) for entry in entries}


#: The fixed figures, in the catalogue's order (``catalogue.json`` beside this module: name,
#: unit, meaning, source, series); ``log.<level>``, ``errors:<type>``, ``span:<name>.<agg>``
#: and ``metric:<name>[.<agg>]`` are families recognised by :func:`figure_spec`.
FIGURES: dict[str, FigureSpec] = _load(Path(__file__).with_name("catalogue.json"))
_FAMILIES = (
    "log.<debug|info|warning|error|critical>",
    "errors:<error type glob>",
    f"span:<name glob>.<{'|'.join(SPAN_AGGREGATES)}>",
    f"metric:<name>[.<{'|'.join(METRIC_AGGREGATES)}>]",
)


def known_figures() -> str:
    """The accepted figure names and families, for error messages and help."""
    return ", ".join([*FIGURES, *_FAMILIES])


def catalogue() -> list[FigureSpec]:
    """Every fixed figure, then one example spec per family."""
    return [
        *FIGURES.values(),
        FigureSpec("log.<level>", "records", "log records at <level> or above (kept ones)",
                   source="the logger"),
        FigureSpec("errors:<type>", "errors", "error records whose type matches the glob",
                   source="the error tracker"),
        FigureSpec("span:<name>.<aggregate>", "ms",
                   f"an aggregate ({', '.join(SPAN_AGGREGATES)}) of the spans named <name>",
                   source="the tracer"),
        FigureSpec("metric:<name>[.<aggregate>]", "",
                   f"a custom metric's points, or an aggregate"
                   f" ({', '.join(METRIC_AGGREGATES)}) of them", series=True,
                   source="the metrics collector (record_metric)"),
    ]  # fmt: skip


def figure_spec(name: str) -> FigureSpec:
    """Return the spec of figure *name*; raise :class:`UnknownFigure` for an unknown one."""
    spec = FIGURES.get(name)
    if spec is not None:
        return spec
    if name.startswith("log."):
        level = name[4:]
        if level in LOG_LEVELS:
            return FigureSpec(
                name, "records", f"log records at {level.upper()} or above", source="the logger"
            )
        msg = f"unknown log level {level!r} in figure {name!r}; accepted: {', '.join(LOG_LEVELS)}"
        raise UnknownFigure(msg)
    if name.startswith("errors:") and len(name) > 7:
        return FigureSpec(
            name, "errors", f"error records of type {name[7:]!r}", source="the error tracker"
        )
    if name.startswith("span:"):
        target, _, aggregate = name[5:].rpartition(".")
        if target and aggregate in SPAN_AGGREGATES:
            unit = "spans" if aggregate == "count" else "ms"
            return FigureSpec(
                name, unit, f"{aggregate} of the spans named {target!r}", source="the tracer"
            )
        msg = (
            f"figure {name!r} needs span:<name>.<aggregate>, aggregate one of "
            f"{', '.join(SPAN_AGGREGATES)}"
        )
        raise UnknownFigure(msg)
    if name.startswith("metric:"):
        target, dot, aggregate = name[7:].rpartition(".")
        source = "the metrics collector"
        if dot and aggregate in METRIC_AGGREGATES and target:
            return FigureSpec(name, "", f"{aggregate} of the metric {target!r}", source=source)
        if name[7:] and re.fullmatch(r"[A-Za-z_:*?\[\]][\w:*?\[\]]*", name[7:]):
            return FigureSpec(
                name, "", f"points of the metric {name[7:]!r}", series=True, source=source
            )
        msg = (
            f"figure {name!r} needs metric:<name> or metric:<name>.<aggregate>, aggregate one"
            f" of {', '.join(METRIC_AGGREGATES)}"
        )
        raise UnknownFigure(msg)
    msg = f"unknown figure {name!r}; known: {known_figures()}"
    raise UnknownFigure(msg)
