"""``ExtensionTracer``: traces and nested spans of one extension's operations."""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .component import Component
from .context import CURRENT_SESSION

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class TraceContext:
    """Identifies a trace and the span new spans attach to."""

    trace_id: str
    span_id: str


@dataclass
class Span:
    """A timed operation inside a trace."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start: float
    session_id: str | None = None
    end: float | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    status: str = "ok"

    def set_tag(self, key: str, value: Any) -> None:
        """Attach *key* = *value* to the span."""
        self.tags[key] = value

    def log(self, message: str, **fields: Any) -> None:
        """Add a timestamped event to the span."""
        self.events.append({"ts": time.time(), "message": message, **fields})

    @property
    def duration_ms(self) -> float:
        return 0.0 if self.end is None else (self.end - self.start) * 1000.0

    def to_dict(self) -> dict[str, Any]:
        """Return the span as JSON-able data."""
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "ts": self.start,
            "start": self.start,
            "end": self.end,
            "value": self.duration_ms,
            "duration_ms": self.duration_ms,
            "session_id": self.session_id,
            "tags": self.tags,
            "events": self.events,
            "status": self.status,
        }


_ACTIVE: ContextVar[TraceContext | None] = ContextVar("kari_active_span", default=None)


def _hex(nbytes: int) -> str:
    return os.urandom(nbytes).hex()


class ExtensionTracer(Component):
    """Creates traces and spans; finished spans land in a bounded buffer."""

    kind = "tracing"
    limit_field = "max_traces"

    def start_trace(self, name: str) -> TraceContext:
        """Start a trace whose root span is *name*; later spans in this context nest in it."""
        context = TraceContext(_hex(16), _hex(8))
        _ACTIVE.set(context)
        return context

    def finish_trace(self, trace_id: str) -> None:
        """End the trace *trace_id* in this context."""
        active = _ACTIVE.get()
        if active is not None and active.trace_id == trace_id:
            _ACTIVE.set(None)

    @contextmanager
    def start_span(self, name: str, tags: dict[str, Any] | None = None) -> Iterator[Span]:
        """Open a span named *name* under the current span (or a new trace)."""
        parent = _ACTIVE.get()
        trace_id = parent.trace_id if parent else _hex(16)
        session = CURRENT_SESSION.get()
        span = Span(
            trace_id=trace_id,
            span_id=_hex(8),
            parent_id=parent.span_id if parent else None,
            name=name,
            start=time.time(),
            session_id=session.session_id if session else None,
            tags=dict(tags or {}),
        )
        token = _ACTIVE.set(TraceContext(trace_id, span.span_id))
        try:
            yield span
        except BaseException as exc:
            span.status = "error"
            span.set_tag("error.type", type(exc).__name__)
            raise
        finally:
            _ACTIVE.reset(token)
            span.end = time.time()
            if self.enabled:
                self.records.append(span, span.session_id)

    def trace_function(self, name: str | None = None) -> Callable[[F], F]:
        """Decorate a function so that every call runs in a span."""

        def decorate(func: F) -> F:
            span_name = name or func.__qualname__
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    with self.start_span(span_name):
                        return await func(*args, **kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.start_span(span_name):
                    return func(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate
