"""The base every component (logger, metrics, errors, profiler, tracer, alerts) builds on."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from .buffer import RecordBuffer
from .config import DebugConfiguration
from .context import SessionInfo


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
        self.diagnostics: list[str] = []
        self._diagnostics_lock = threading.Lock()

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
        return {"records": [record.to_dict() for record in records], "dropped": dropped}

    def session_records(self, session_id: str) -> list[Any]:
        """The records of the open session *session_id* so far (for verdicts mid-test)."""
        return self.records.peek_session(session_id)

    # Self-monitoring -------------------------------------------------------------------
    def add_diagnostic(self, message: str) -> None:
        """Remember an internal problem once, for ``run_diagnostics`` and the report."""
        with self._diagnostics_lock:
            if message not in self.diagnostics and len(self.diagnostics) < 100:
                self.diagnostics.append(message)

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
            return "degraded", "; ".join(self.diagnostics[-3:])
        dropped = self.records.dropped
        if dropped:
            return "degraded", f"{dropped} records dropped at limit {self.records.limit}"
        return "healthy", f"{len(self.records)} records"
