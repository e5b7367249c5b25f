"""Spans: the recorded ``Span`` (an OpenTelemetry span) and the cheap ``UnsampledSpan``."""

from __future__ import annotations

import abc
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanContext, StatusCode

from ..values import safe_str
from .propagation import (
    _SAMPLED,
    _UNSAMPLED,
    TraceContext,
    _attach,
    _detach,
    _set_span_in_context,
    _trace_state,
)

if TYPE_CHECKING:
    from .tracer import ExtensionTracer


SPAN_KINDS = ("internal", "server", "client", "producer", "consumer")
_OTEL_KINDS = {kind: getattr(otel_trace.SpanKind, kind.upper()) for kind in SPAN_KINDS}


# Spans ---------------------------------------------------------------------------------
class _LocalTrace:
    """The spans of one trace recorded in this process under one local root."""

    __slots__ = ("dropped", "evicted", "finished", "root_sid", "spans", "started_ns", "trace_id")

    def __init__(self, trace_id: str, root_sid: int, started_ns: int) -> None:
        self.trace_id = trace_id
        self.root_sid = root_sid
        self.started_ns = started_ns
        self.spans: list[Span] = []
        self.finished = False
        self.evicted = False
        self.dropped = 0


class _CurrentSpan(otel_trace.Span):
    """What both spans do as a (sync or async) context manager: while inside, the span is the
    current one (``__enter__`` attaches it); leaving detaches it."""

    __slots__ = ()
    sampled: bool
    _sid: int
    _tracestate: str
    _token: Any

    @property
    @abc.abstractmethod
    def trace_id(self) -> str:
        """The trace id, 32 lowercase hex digits (each span class keeps it its own way)."""

    @property
    def span_id(self) -> str:
        """The span's id (an unsampled span: the one that carries the trace's context), 16
        lowercase hex digits."""
        return f"{self._sid:016x}"

    @property
    def context(self) -> TraceContext:
        """This span's context, e.g. to pass as ``parent=`` to another tracer."""
        return TraceContext(
            self.trace_id, self.span_id, self.sampled, self._tracestate, remote=False
        )

    @property
    def traceparent(self) -> str:
        """This span as a W3C ``traceparent`` value (flags ``01`` sampled, ``00`` not)."""
        return f"00-{self.trace_id}-{self._sid:016x}-{'01' if self.sampled else '00'}"

    def _detach_token(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            _detach(token)

    async def __aenter__(self: _Span) -> _Span:
        self.__enter__()
        return self

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(kind, exc, tb)


_Span = TypeVar("_Span", bound=_CurrentSpan)


class Span(_CurrentSpan):
    """A recorded span: a timed operation of a trace, also an OpenTelemetry ``Span``.

    Use it as a (sync or async) context manager: while inside, it is the current span and
    new spans nest under it; an exception that escapes marks it ``error`` with its type and
    message. ``end()`` finishes a span used without ``with``.
    """

    sampled = True
    # Class-level defaults: a span that keeps them costs no assignment at start.
    end_ns: int | None = None
    status = "ok"
    status_message = ""
    source = "kari"
    self_ms: float | None = None
    _token: Any = None
    _otel_context: SpanContext | None = None
    events: list[dict[str, Any]] = []  # replaced by a list of its own on the first event

    def __init__(
        self,
        tracer: ExtensionTracer,
        name: str,
        trace_hex: str,
        tid: int,
        sid: int,
        parent_sid: int | None,
        start_ns: int,
        session_id: str | None,
        bucket: _LocalTrace,
        tags: dict[str, Any],
        kind: str = "internal",
        tracestate: str = "",
    ) -> None:
        self._tracer = tracer
        self.name = name
        self._trace_hex = trace_hex
        self._tid = tid
        self._sid = sid
        self._parent_sid = parent_sid
        self.start_ns = start_ns
        self.session_id = session_id
        self._bucket = bucket
        self.tags = tags
        self.kind = kind
        self._tracestate = tracestate

    # Identity ----------------------------------------------------------------------------
    @property
    def trace_id(self) -> str:
        """The trace id, 32 lowercase hex digits."""
        return self._trace_hex

    @property
    def parent_id(self) -> str | None:
        """The parent span's id, or ``None`` for a root span."""
        return None if self._parent_sid is None else f"{self._parent_sid:016x}"

    @property
    def start(self) -> float:
        """Start time, epoch seconds."""
        return self.start_ns / 1e9

    @property
    def end_time(self) -> float | None:
        """End time, epoch seconds, or ``None`` while running."""
        return None if self.end_ns is None else self.end_ns / 1e9

    @property
    def duration_ms(self) -> float:
        """Duration in milliseconds (0.0 while running)."""
        return 0.0 if self.end_ns is None else (self.end_ns - self.start_ns) / 1e6

    # Recording ---------------------------------------------------------------------------
    def set_tag(self, key: str, value: Any) -> None:
        """Attach *key* = *value* to the span (non-JSON values are kept as their bounded
        repr, a secret-named key's value as ``[REDACTED]``; never raises because of the value)."""
        values = self._tracer.values
        if type(key) is not str or len(key) > 200 or not key.isascii():
            key = values.key(key)  # bounded text, as start_span's tag keys
        self.tags[key] = values.tag(key, value)

    def set_tags(self, **tags: Any) -> None:
        """Attach several tags at once."""
        for key, value in tags.items():
            self.set_tag(key, value)

    def set_attribute(self, key: str, value: Any) -> None:
        """OpenTelemetry name of :meth:`set_tag`."""
        self.set_tag(key, value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """OpenTelemetry name of :meth:`set_tags`."""
        for key, value in attributes.items():
            self.set_tag(key, value)

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Add a timestamped event (*timestamp* in epoch nanoseconds, default now)."""
        ts_ns = self._tracer._clock() if timestamp is None else timestamp
        values = self._tracer.values
        events = self.__dict__.get("events")
        if events is None:
            events = self.events = []
        if len(events) >= self._tracer.max_events_per_span:
            self.tags["kari.events_dropped"] = int(self.tags.get("kari.events_dropped", 0)) + 1
            return
        events.append(
            {
                "ts": ts_ns / 1e9,
                "name": values.text(safe_str(name), 500),
                "attributes": values.mapping(attributes),
            }
        )

    def log(self, message: str, **fields: Any) -> None:
        """Add a timestamped event named *message* with *fields* as its attributes."""
        self.add_event(message, fields)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Add an ``exception`` event with the type, message and stack trace of *exception*."""
        limit = self._tracer.configuration.max_stack_frames
        stack = "".join(
            traceback.format_exception(
                type(exception), exception, exception.__traceback__, limit=limit
            )
        )
        event = {
            "exception.type": type(exception).__qualname__,
            "exception.message": safe_str(exception),
            "exception.stacktrace": stack,
            "exception.escaped": escaped,
        }
        event.update(attributes or {})
        self.add_event("exception", event, timestamp)

    def fail(self, exception: BaseException) -> None:
        """Mark the span ``error`` because of *exception* (type and message recorded)."""
        self.status = "error"
        values = self._tracer.values
        message = values.text(safe_str(exception), values.max_repr_length)
        self.status_message = f"{type(exception).__qualname__}: {message}"
        self.tags["error"] = True
        self.tags["error.type"] = type(exception).__qualname__
        self.tags["error.message"] = message
        self.record_exception(exception, escaped=True)

    def set_status(self, status: Any, description: str | None = None) -> None:
        """Set ``ok`` or ``error`` (also accepts OpenTelemetry's ``Status``/``StatusCode``)."""
        code = getattr(status, "status_code", status)
        description = description or getattr(status, "description", None)
        if code in ("error", StatusCode.ERROR):
            self.status = "error"
        elif code in ("ok", StatusCode.OK, StatusCode.UNSET):
            self.status = "ok"
        else:
            msg = (
                f"span status must be 'ok', 'error' or an OpenTelemetry StatusCode, got {status!r}"
            )
            raise ValueError(msg)
        if description:
            self.status_message = str(description)

    def update_name(self, name: str) -> None:
        """Rename the span."""
        self.name = str(name)

    def is_recording(self) -> bool:
        """``True`` until the span ends."""
        return self.end_ns is None

    def get_span_context(self) -> SpanContext:
        """This span's ids in OpenTelemetry's terms (lets OpenTelemetry spans nest under it)."""
        context = self._otel_context
        if context is None:
            context = SpanContext(
                self._tid, self._sid, False, _SAMPLED, _trace_state(self._tracestate)
            )
            self._otel_context = context
        return context

    def end(self, end_time: int | None = None) -> None:
        """Finish the span (*end_time* in epoch nanoseconds); later calls do nothing."""
        if self.end_ns is not None:
            return
        self.end_ns = self._tracer._clock() if end_time is None else end_time
        self._tracer._finish(self)

    # Context management ------------------------------------------------------------------
    def __enter__(self) -> Span:
        self._token = _attach(_set_span_in_context(self))
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            if isinstance(exc, Exception):
                self.fail(exc)
            else:  # KeyboardInterrupt, cancellation, pytest's skip/fail outcomes
                self.tags["interrupted"] = type(exc).__qualname__
        if self.end_ns is None:
            self.end_ns = self._tracer._clock()
            self._tracer._finish(self)
        self._detach_token()

    def __repr__(self) -> str:
        return f"<Span {self.name!r} trace={self._trace_hex} span={self.span_id} {self.status}>"

    def to_dict(self) -> dict[str, Any]:
        """The span as a JSON-able record (the ``tracing`` data contract)."""
        start = self.start_ns / 1e9
        end = None if self.end_ns is None else self.end_ns / 1e9
        duration = self.duration_ms
        record: dict[str, Any] = {
            "trace_id": self._trace_hex,
            "span_id": f"{self._sid:016x}",
            "parent_id": self.parent_id,
            "name": self.name,
            "start": start,
            "end": end,
            "duration_ms": duration,
            "value": duration,
            "ts": start,
            "status": self.status,
            "status_message": self.status_message,
            "kind": self.kind,
            "source": self.source,
            "tags": dict(self.tags),
            "events": list(self.events),
            "session_id": self.session_id,
        }
        if self.self_ms is not None:
            record["self_ms"] = self.self_ms
        return record


class UnsampledSpan(_CurrentSpan):
    """A span of a trace that sampling left out: accepts every call, records nothing.

    It still carries the trace's ids, so spans under it (ours and OpenTelemetry's) stay in
    the same, unsampled, trace and propagation keeps working.
    """

    __slots__ = (
        "_attach", "_child", "_sid", "_tid", "_token", "_tracestate", "name", "session_id",
    )  # fmt: skip
    sampled = False
    status = "ok"
    source = "kari"

    def __init__(
        self,
        tid: int,
        sid: int,
        name: str,
        session_id: str | None,
        *,
        attach: bool,
        tracestate: str = "",
    ) -> None:
        self._tid = tid
        self._sid = sid
        self.name = name
        self.session_id = session_id
        self._attach = attach
        self._token: Any = None
        self._tracestate = tracestate
        # Spans under an unsampled span share one inert child (it attaches nothing).
        self._child: UnsampledSpan | None = None if attach else self

    @property
    def trace_id(self) -> str:
        """The trace id, 32 lowercase hex digits."""
        return f"{self._tid:032x}"

    @property
    def tags(self) -> dict[str, Any]:
        """Always empty: nothing is recorded."""
        return {}

    @property
    def events(self) -> list[dict[str, Any]]:
        """Always empty: nothing is recorded."""
        return []

    def set_tag(self, key: str, value: Any) -> None:
        """Accept and drop a tag."""

    def set_tags(self, **tags: Any) -> None:
        """Accept and drop tags."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Accept and drop an attribute."""

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Accept and drop attributes."""

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        """Accept and drop an event."""

    def log(self, message: str, **fields: Any) -> None:
        """Accept and drop an event."""

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Accept and drop an exception."""

    def fail(self, exception: BaseException) -> None:
        """Accept and drop a failure."""

    def set_status(self, status: Any, description: str | None = None) -> None:
        """Accept and drop a status."""

    def update_name(self, name: str) -> None:
        """Rename (kept only on this object)."""
        self.name = name

    def is_recording(self) -> bool:
        """Always ``False``."""
        return False

    def get_span_context(self) -> SpanContext:
        """The trace's ids with the sampled flag off."""
        return SpanContext(self._tid, self._sid, False, _UNSAMPLED, _trace_state(self._tracestate))

    def end(self, end_time: int | None = None) -> None:
        """Nothing to finish."""

    def __enter__(self) -> UnsampledSpan:
        if self._attach:
            self._token = _attach(_set_span_in_context(self))
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        self._detach_token()

    def __repr__(self) -> str:
        return f"<UnsampledSpan {self.name!r} trace={self.trace_id}>"


AnySpan = Span | UnsampledSpan
