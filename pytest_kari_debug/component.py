"""The base every component (logger, metrics, errors, profiler, tracer, alerts) builds on."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from .atomic import write_atomic
from .buffer import RecordBuffer
from .config import DebugConfiguration
from .context import SessionInfo
from .diagnostics import Diagnostics
from .exceptions import ExportError

#: Renders one component's data (a JSON-able mapping) in one format as text.
ExportRenderer = Callable[[Mapping[str, Any]], str]


class ExportRegistry:
    """Renderers by (kind, format), filled by :mod:`pytest_kari_debug.exporters` on import.

    Components may not import the exporters (they sit below them); the exporters register
    here instead -- the registry is handed down, the imports still point down.
    """

    def __init__(self) -> None:
        self._renderers: dict[tuple[str, str], ExportRenderer] = {}

    def register(self, kind: str, fmt: str, renderer: ExportRenderer) -> None:
        """Make *renderer* the one of *kind* in *fmt*."""
        self._renderers[(kind, fmt)] = renderer

    def formats(self, kind: str) -> list[str]:
        """The formats *kind* can be exported in."""
        return [fmt for (k, fmt) in self._renderers if k == kind]

    def render(self, kind: str, fmt: str, data: Mapping[str, Any]) -> str:
        """*data* of *kind* as *fmt* text; a clear ExportError for a format not served."""
        renderer = self._renderers.get((kind, fmt))
        if renderer is None:
            if not self._renderers:
                msg = (
                    f"no exporter is loaded for {kind}: import pytest_kari_debug.exporters"
                    " (a debug manager does)"
                )
                raise ExportError(msg)
            accepted = ", ".join(self.formats(kind)) or "none"
            msg = f"{kind} cannot be exported as {fmt!r}; accepted formats: {accepted}"
            raise ExportError(msg)
        return renderer(data)


EXPORTS = ExportRegistry()


def export_text(
    kind: str,
    fmt: str,
    data: Mapping[str, Any],
    path: str | os.PathLike[str] | None = None,
    *,
    registry: ExportRegistry = EXPORTS,
) -> str:
    """Render *data* of *kind* as *fmt*; with *path*, also write it there atomically."""
    text = registry.render(kind, fmt, data)
    if path is not None:
        write_atomic(path, text)
    return text


class Component:
    """A part of a debug manager that keeps bounded records and slices them per session.

    A disabled component is still a working object: its recording methods accept every call
    and keep nothing, so code written against it never needs to check a toggle.
    """

    kind: ClassVar[str] = "component"
    #: Name of the DebugConfiguration field that limits the record buffer.
    limit_field: ClassVar[str] = ""

    def __init__(
        self,
        extension_id: str,
        configuration: DebugConfiguration | None = None,
        *,
        enabled: bool = True,
    ) -> None:
        self.extension_id = extension_id
        self.configuration = configuration or DebugConfiguration()
        self.enabled = enabled
        limit = getattr(self.configuration, self.limit_field) if self.limit_field else 10000
        self.records: RecordBuffer[Any] = RecordBuffer(limit)
        self.diagnostics = Diagnostics(100)

    # Lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start background work, if the component has any."""

    def stop(self) -> None:
        """Stop background work, if the component has any."""

    def begin_session(self, session: SessionInfo) -> None:
        """Begin keeping *session*'s records apart."""
        self.records.open_session(session.session_id)

    def end_session(self, session: SessionInfo) -> dict[str, Any]:
        """Return *session*'s data for ``DebugSession.collected_data`` (JSON-able)."""
        records, dropped = self.records.close_session(session.session_id)
        # (most sessions of most components have no record: no comprehension for them)
        return {"records": [r.to_dict() for r in records] if records else [], "dropped": dropped}

    def session_records(self, session_id: str) -> list[Any]:
        """The records of the open session *session_id* so far (for verdicts mid-test)."""
        return self.records.peek_session(session_id)

    # Export ----------------------------------------------------------------------------
    def export_fields(self) -> dict[str, Any]:
        """This component's part of an export (fields of ``exporters.bundle.ExportBundle``)."""
        return {
            "extension_id": self.extension_id,
            "overview": {
                "counts": {self.kind: len(self.records)},
                "dropped": {self.kind: self.records.dropped},
            },
        }

    # Self-monitoring -------------------------------------------------------------------
    def add_diagnostic(self, message: str) -> None:
        """Remember an internal problem once, for ``run_diagnostics`` and the report."""
        self.diagnostics.add(message)

    def stats(self) -> dict[str, int]:
        """Counts for ``get_debug_summary()``: records kept, ever recorded, dropped."""
        return {
            "records": len(self.records),
            "recorded": self.records.total,
            "dropped": self.records.dropped,
            "limit": self.records.limit,
        }

    def check(self) -> tuple[str, str]:
        """Return ``(status, detail)`` of this component: healthy, degraded or unhealthy."""
        if not self.enabled:
            return "healthy", "disabled"
        if self.diagnostics:
            return "degraded", self.diagnostics.latest()
        dropped = self.records.dropped
        if dropped:
            return "degraded", f"{dropped} records dropped at limit {self.records.limit}"
        return "healthy", f"{len(self.records)} records"
