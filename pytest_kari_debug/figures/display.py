"""One unit and rounding rule for every surface: the report's and the dashboard's scripts read
:func:`display_rules`; the templates and the CLI call :func:`format_value`."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..model import MIB, Unit
from .catalogue import figure_spec, unit_of

#: Larger units a value in a base unit is shown in: ``(factor, symbol)``, smallest first.
_STEPS: dict[str, tuple[tuple[float, str], ...]] = {
    "ms": ((1.0, "ms"), (1000.0, "s"), (60_000.0, "min")),
    "bytes": ((1.0, "B"), (1024.0, "KiB"), (MIB, "MiB"), (1024.0 * MIB, "GiB")),
}
#: Other spellings of units (the sampler's, record_metric's): their base unit and factor.
_ALIASES = {"percent": ("%", 1.0), "s": ("ms", 1000.0), "seconds": ("ms", 1000.0),
            "MB": ("bytes", MIB), "KiB": ("bytes", 1024.0), "B": ("bytes", 1.0)}  # fmt: skip


def display_rules() -> dict[str, Any]:
    """The rules :func:`format_value` follows, as JSON for the pages' scripts."""
    units = {unit.value: [unit.base.value, unit.factor] for unit in Unit}
    units.update({name: [base, factor] for name, (base, factor) in _ALIASES.items()})
    return {"units": units, "steps": {k: [list(s) for s in v] for k, v in _STEPS.items()}}


def _decimals(magnitude: float) -> int:
    """Three significant digits, at most three decimals (0.318, 4.25, 85.5, 942)."""
    return 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3


def _fixed(value: float, decimals: int) -> str:
    """*value* with *decimals* decimals, halves away from zero (as JavaScript's toFixed)."""
    text = str(Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
    return "0" + text[2:] if text.startswith("-0") and not text.strip("-0.") else text


def format_value(value: Any, unit: str) -> str:
    """*value* in *unit* as every surface shows it: in the largest readable unit (ms, s,
    min; B, KiB, MiB, GiB), to three significant digits; ``n/a`` for no number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    base, factor = _ALIASES.get(unit) or (unit_of(unit).base.value, unit_of(unit).factor)
    if base == "" and unit:  # a unit the catalogue does not know is shown as given
        base, factor = unit, 1.0
    amount, steps = float(value) * factor, _STEPS.get(base, ((1.0, base),))
    index = max([0, *(i for i, (f, _) in enumerate(steps) if abs(amount) >= f)])
    text = ""
    while not text:
        shown = amount / steps[index][0]
        text = str(int(shown)) if shown == int(shown) else _fixed(shown, _decimals(abs(shown)))
        if _decimals(abs(float(text))) < _decimals(abs(shown)):  # 9.996 -> 10.0, not 10.00
            text = _fixed(shown, _decimals(abs(float(text))))
        if index + 1 < len(steps) and abs(float(text)) * steps[index][0] >= steps[index + 1][0]:
            index, text = index + 1, ""  # 999.96 ms -> 1.00 s, not 1000 ms
    return f"{text} {steps[index][1]}".strip()


def format_figure(name: str, value: Any) -> str:
    """The value of figure *name* (in its catalogue unit) as every surface shows it."""
    return format_value(value, figure_spec(name).unit)
