"""The one catalogue of figures: what can be measured about a test, defined once.

Each figure has a name, a meaning, a unit (and a base unit: MiB figures are bytes underneath),
where it comes from, and one reader: :func:`measure` on a :class:`Figures` source, which is a
live debug session (:class:`SessionFigures`), a stored test record (:class:`RecordFigures`) or a
plain mapping (:class:`StaticFigures`). Alert rules, budgets, regression gates, the report, the
CLI, the API, the Prometheus export and the JSON summaries all read figures here.

**What ``duration_ms`` means**: the test's own time from the start of its setup to the end of
its call phase (``setup_ms + call_ms``), without the plugin's own work. It is the time up to
the test's verdict: alert rules and budgets, judged at the end of the call phase, see the same
value as the record, the report and the exports. Teardown has its own figure, ``teardown_ms``.
The regression gate ``duration`` compares ``call_ms``, the part ``--kari-repeat`` re-runs.

The plugin's own cost is never in a test's figures; it is its own figure, ``kari_overhead_ms``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports
from ..model import LOG_LEVELS, MIB
from .catalogue import (
    FIGURES,
    METRIC_AGGREGATES,
    ROOT_TAG,
    SPAN_AGGREGATES,
    FigureSpec,
    UnknownFigure,
    catalogue,
    figure_spec,
    known_figures,
)
from .direct import DirectFigures, direct_figures
from .measure import DataFigures, Figures, Measurement
from .readers import (
    RecordFigures,
    SessionFigures,
    StaticFigures,
    figure_rows,
    measure,
    test_figure_names,
    values,
)

if TYPE_CHECKING:
    from .display import display_rules, format_figure, format_value

__all__ = [
    "FIGURES",
    "LOG_LEVELS",
    "METRIC_AGGREGATES",
    "MIB",
    "ROOT_TAG",
    "SPAN_AGGREGATES",
    "DataFigures",
    "DirectFigures",
    "FigureSpec",
    "Figures",
    "Measurement",
    "RecordFigures",
    "SessionFigures",
    "StaticFigures",
    "UnknownFigure",
    "catalogue",
    "direct_figures",
    "display_rules",
    "figure_rows",
    "figure_spec",
    "format_figure",
    "format_value",
    "known_figures",
    "measure",
    "test_figure_names",
    "values",
]

#: The display helpers (the report's, the CLI's), imported at their first use.
__getattr__, __dir__ = lazy_exports(
    __name__, dict.fromkeys(("display_rules", "format_figure", "format_value"), "display")
)
