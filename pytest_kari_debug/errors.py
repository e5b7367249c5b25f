"""``ErrorTracker``: errors and exceptions of one extension, grouped by fingerprint."""

from __future__ import annotations

import hashlib
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from .component import Component
from .context import CURRENT_SESSION

_VARIABLE = re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-f]{32}\b|\d+(?:\.\d+)?|'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One recorded error."""

    error_type: str
    error_message: str
    fingerprint: str
    ts: float
    session_id: str | None = None
    stack_trace: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-able data."""
        return {
            "error_type": self.error_type,
            "error_message": self.error_message,
            "name": self.error_type,
            "fingerprint": self.fingerprint,
            "ts": self.ts,
            "session_id": self.session_id,
            "stack_trace": self.stack_trace,
            "context": self.context,
            "level": self.severity,
        }


@dataclass(frozen=True)
class ErrorAnalysis:
    """Summary of the errors kept by a tracker."""

    total_errors: int
    unique_errors: int
    error_rate: float
    top_errors: list[dict[str, Any]]


class ErrorTracker(Component):
    """Records errors in a bounded buffer and groups them by fingerprint."""

    kind = "error_tracking"
    limit_field = "max_errors"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group_counts: dict[str, int] = {}
        self._started = time.time()

    def record_error(
        self,
        error_type: str,
        error_message: str,
        stack_trace: str | None = None,
        context: dict[str, Any] | None = None,
        severity: str | None = None,
    ) -> ErrorRecord | None:
        """Record one error; return the record (``None`` when the tracker is disabled)."""
        if not self.enabled:
            return None
        fingerprint = hashlib.sha1(
            f"{error_type}:{_VARIABLE.sub('<x>', error_message)}".encode()
        ).hexdigest()[:16]
        session = CURRENT_SESSION.get()
        record = ErrorRecord(
            error_type=error_type,
            error_message=error_message,
            fingerprint=fingerprint,
            ts=time.time(),
            session_id=session.session_id if session else None,
            stack_trace=stack_trace,
            context=dict(context or {}),
            severity=severity or "error",
        )
        self.group_counts[fingerprint] = self.group_counts.get(fingerprint, 0) + 1
        self.records.append(record, record.session_id)
        return record

    def record_exception(
        self, exc: BaseException, context: dict[str, Any] | None = None
    ) -> ErrorRecord | None:
        """Record *exc* with its traceback."""
        try:
            message = str(exc)
        except Exception:
            message = f"<unprintable {type(exc).__name__}>"
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return self.record_error(type(exc).__name__, message, stack, context)

    def get_error_analysis(self) -> ErrorAnalysis:
        """Totals, distinct groups and the rate per hour since the tracker started."""
        records = self.records.snapshot()
        hours = max((time.time() - self._started) / 3600.0, 1e-9)
        total = sum(self.group_counts.values())
        top = sorted(self.group_counts.items(), key=lambda item: -item[1])[:10]
        return ErrorAnalysis(
            total_errors=total,
            unique_errors=len(self.group_counts),
            error_rate=round(total / hours, 3) if records else 0.0,
            top_errors=[{"fingerprint": fp, "count": count} for fp, count in top],
        )
