"""Prometheus-safe metric, unit and label names, shared by the metrics collector and exporters."""

from __future__ import annotations

import re
import unicodedata

_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_ALNUM = re.compile(r"[a-zA-Z0-9]")
_REPEATED = re.compile(r"__+")
MAX_NAME_LENGTH = 200

#: Unit spellings mapped to the Prometheus base unit and the factor that converts a value.
UNIT_CONVERSIONS: dict[str, tuple[str, float]] = {
    "ns": ("seconds", 1e-9),
    "us": ("seconds", 1e-6),
    "µs": ("seconds", 1e-6),
    "ms": ("seconds", 1e-3),
    "s": ("seconds", 1.0),
    "sec": ("seconds", 1.0),
    "second": ("seconds", 1.0),
    "seconds": ("seconds", 1.0),
    "b": ("bytes", 1.0),
    "byte": ("bytes", 1.0),
    "bytes": ("bytes", 1.0),
    "kb": ("bytes", 1024.0),
    "kib": ("bytes", 1024.0),
    "mb": ("bytes", 1024.0**2),
    "mib": ("bytes", 1024.0**2),
    "gb": ("bytes", 1024.0**3),
    "gib": ("bytes", 1024.0**3),
    "%": ("percent", 1.0),
    "percent": ("percent", 1.0),
}
#: Units that carry no Prometheus unit suffix (plain counts).
UNITLESS = frozenset({"", "1", "count", "counts", "n", "number", "total"})


def _ascii(text: str) -> str:
    # NFKD splits accented letters into letter + mark, so "température" keeps its 'e'.
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def sanitize_metric_name(name: str) -> str:
    """Return *name* as a valid Prometheus metric name, or raise ``ValueError`` saying why not.

    Letters with accents lose them, every other character outside ``[a-zA-Z0-9_:]`` becomes
    ``_``, runs of ``_`` collapse, trailing ``_`` go, and a leading digit gets a ``_`` prefix.
    A name with no ASCII letter or digit left, one longer than 200 characters, or one starting
    with ``__`` (reserved by Prometheus) cannot become valid.
    """
    if not isinstance(name, str):
        msg = f"metric name must be a string, got {name!r}"
        raise ValueError(msg)
    if len(name) > MAX_NAME_LENGTH:
        msg = f"metric name {name[:40]!r}... is {len(name)} characters long; at most 200 accepted"
        raise ValueError(msg)
    if name.startswith("__"):
        msg = f"metric name {name!r} starts with '__', which Prometheus reserves"
        raise ValueError(msg)
    text = _REPEATED.sub("_", _INVALID_NAME.sub("_", _ascii(name.strip())))
    if not _ALNUM.search(text):
        msg = (
            f"metric name {name!r} cannot become a Prometheus name: it needs at least one"
            " ASCII letter or digit (accepted characters: letters, digits, '_' and ':')"
        )
        raise ValueError(msg)
    text = text.rstrip("_") or text
    if text[0].isdigit():
        text = "_" + text
    return text


def sanitize_label_name(name: str) -> str:
    """Return *name* as a valid Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``, no ``__``)."""
    text = _REPEATED.sub("_", _INVALID_LABEL.sub("_", _ascii(str(name))))
    text = text.lstrip("_") or "label"
    if text[0].isdigit():
        text = "_" + text
    return text


def prometheus_unit(unit: str) -> tuple[str, float]:
    """Return ``(prometheus_unit, factor)`` for a recorded *unit* (``""`` for plain counts)."""
    key = (unit or "").strip().lower()
    if key in UNITLESS:
        return "", 1.0
    if key in UNIT_CONVERSIONS:
        return UNIT_CONVERSIONS[key]
    text = _REPEATED.sub("_", _INVALID_LABEL.sub("_", _ascii(key))).strip("_")
    return text, 1.0


__all__ = [
    "UNITLESS",
    "UNIT_CONVERSIONS",
    "prometheus_unit",
    "sanitize_label_name",
    "sanitize_metric_name",
]
