"""The figures the run's sections read of every kept test, read straight from its record.

A second reader of four figures (``cpu_ms``, ``peak_rss_mb``, ``allocated_mb``, ``call_ms``),
for the run's digest, which reads them as each test is kept: the generic path
(:class:`~.readers.RecordFigures`) spends about 40 Python calls and a :class:`~.Measurement`
each on them. It must give what the generic path gives for a record of any shape:
``tests/test_figures_direct.py`` compares the two over many shapes.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import MIB, Kind, RecordView, finite
from .readers import RecordFigures

_METRICS, _PROFILING = Kind.METRICS, Kind.PROFILING


def _cpu_ms(record: RecordView) -> float | None:
    resources = record.detail(_METRICS, "resources")
    if resources is None:  # the generic reader asks for the resources first
        return None
    own = record.cpu_ms  # (None before record version 2)
    return own if own is not None else finite(resources.get("cpu_ms"))


def _peak_rss_bytes(record: RecordView) -> float | None:
    resources = record.detail(_METRICS, "resources")
    value = None if resources is None else finite(resources.get("peak_rss_bytes"))
    return None if value is None else value / MIB * MIB  # (as the generic MiB round trip)


def _allocated_bytes(record: RecordView) -> float | None:
    memory = record.detail(_METRICS, "memory")
    if memory is not None:
        value = finite(memory.get("allocated_bytes"))
    else:  # a test that only a memory profile traced: its one peak is the profile's
        profile = record.detail(_PROFILING, "memory")
        if profile is None or finite(profile.get("peak_increase_bytes")) is None:
            return None
        value = finite(max(0, finite(profile.get("net_allocated_bytes")) or 0))
    return None if value is None else value / MIB * MIB


def _call_ms(record: RecordView) -> float | None:
    return record.phase("call")


_DIRECT: dict[str, Callable[[RecordView], float | None]] = {
    "cpu_ms": _cpu_ms,
    "peak_rss_mb": _peak_rss_bytes,
    "allocated_mb": _allocated_bytes,
    "call_ms": _call_ms,
}


class DirectFigures:
    """A kept test's figures in base units (:meth:`base`): the four figures above read
    straight from *record*, every other one through :class:`~.readers.RecordFigures`."""

    __slots__ = ("_generic", "record")

    def __init__(self, record: RecordView) -> None:
        self.record = record
        self._generic: RecordFigures | None = None

    def base(self, name: str) -> float | None:
        """As :meth:`~.DataFigures.base`."""
        read = _DIRECT.get(name)
        if read is None:
            generic = self._generic
            if generic is None:
                generic = self._generic = RecordFigures(self.record)
            return generic.base(name)
        try:
            return read(self.record)
        except Exception:  # as the generic reader: an odd record's figure is missing
            return None


def direct_figures() -> tuple[str, ...]:
    """The figures :class:`DirectFigures` reads itself."""
    return tuple(_DIRECT)
