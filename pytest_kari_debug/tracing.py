"""``ExtensionTracer``: W3C traces and nested spans, sampling, propagation, OpenTelemetry capture.

Design, decided by ``benchmarks/tracing_bench.py``: the tracer is a light recorder of its own,
not a wrapper of the OpenTelemetry SDK (an SDK span costs several times more). It still speaks
OpenTelemetry where it matters:

* the current span lives in the OpenTelemetry context (one context for both worlds), and our
  :class:`Span` *is* an ``opentelemetry.trace.Span``: spans that instrumented code opens through
  the OpenTelemetry API nest under ours, ours nest under theirs, and OpenTelemetry propagators
  inject our ids;
* a span processor (:func:`install_opentelemetry_capture`) copies the spans an SDK
  ``TracerProvider`` records during a debug session into that session's trace.

Ids follow W3C Trace Context (128-bit trace id, 64-bit span id, lowercase hex); sampling is
decided once per trace from its trace id, so every span of a trace (in every process that uses
the same rate) shares the decision.
"""

from __future__ import annotations

import functools
import inspect
import os
import random
import re
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanContext, StatusCode, TraceFlags, TraceState

from .buffer import RecordBuffer
from .component import Component, export_text
from .config import DebugConfiguration
from .context import CURRENT_SESSION, SessionInfo, register_session_option
from .exceptions import ExportError
from .scrub import scrubber_for
from .values import ValueSerializer, safe_str

F = TypeVar("F", bound=Callable[..., Any])

_MASK64 = (1 << 64) - 1
_TWO64 = 1 << 64
_get_current_span = otel_trace.get_current_span
_set_span_in_context = otel_trace.set_span_in_context
_attach = otel_context.attach
_detach = otel_context.detach
_getrandbits = random.getrandbits
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
SPAN_KINDS = ("internal", "server", "client", "producer", "consumer")
_OTEL_KINDS = {kind: getattr(otel_trace.SpanKind, kind.upper()) for kind in SPAN_KINDS}

# A debug session accepts these options besides the seed's ones.
register_session_option("trace_parent", str)
register_session_option("trace_tags", dict)


# W3C Trace Context ---------------------------------------------------------------------
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A span context received from elsewhere (``traceparent``): a parent for new spans."""

    trace_id: str
    span_id: str
    sampled: bool = True
    tracestate: str = ""
    remote: bool = True

    @property
    def traceparent(self) -> str:
        """This context as a W3C ``traceparent`` header value."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def get_span_context(self) -> SpanContext:
        """This context in OpenTelemetry's terms."""
        return SpanContext(
            int(self.trace_id, 16),
            int(self.span_id, 16),
            self.remote,
            _SAMPLED if self.sampled else _UNSAMPLED,
            _trace_state(self.tracestate),
        )


def parse_traceparent(value: str, tracestate: str = "") -> TraceContext:
    """Parse a W3C ``traceparent`` value; raise ``ValueError`` naming the problem."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str):
        msg = f"traceparent must be a string, got {value!r}"
        raise ValueError(msg)
    match = _TRACEPARENT.match(text)
    if match is None:
        msg = (
            f"traceparent {value!r} is not '<version>-<32 hex trace id>-<16 hex span id>-<2 hex"
            " flags>' in lowercase hex (W3C Trace Context)"
        )
        raise ValueError(msg)
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff":
        msg = f"traceparent {value!r} has the forbidden version 'ff'"
        raise ValueError(msg)
    if version == "00" and rest:
        msg = f"traceparent {value!r} has extra fields, which version 00 does not allow"
        raise ValueError(msg)
    if trace_id == "0" * 32 or span_id == "0" * 16:
        msg = f"traceparent {value!r} has an all-zero trace id or span id"
        raise ValueError(msg)
    state = tracestate.strip() if isinstance(tracestate, str) else ""
    return TraceContext(trace_id, span_id, bool(int(flags, 16) & 1), state[:512])


def _header(carrier: Mapping[str, Any], name: str) -> str | None:
    value = carrier.get(name)
    if value is None:
        value = carrier.get(name.upper())
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in carrier.items() if str(k).lower() == lowered), None)
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return None if value is None else str(value)


def extract(carrier: Mapping[str, Any]) -> TraceContext | None:
    """The span context in *carrier* (HTTP headers or ``os.environ``), or ``None``.

    Reads ``traceparent``/``tracestate`` in any letter case (``TRACEPARENT`` in an
    environment). An invalid value is ignored, as W3C Trace Context asks.
    """
    parent = _header(carrier, "traceparent")
    if not parent:
        return None
    try:
        return parse_traceparent(parent, _header(carrier, "tracestate") or "")
    except ValueError:
        return None


def inject(
    carrier: MutableMapping[str, str] | None = None,
    span: Any = None,
    *,
    env: bool = False,
) -> MutableMapping[str, str]:
    """Write the current span's context (or *span*'s) into *carrier* and return it.

    Keys are ``traceparent``/``tracestate`` for HTTP headers, ``TRACEPARENT``/``TRACESTATE``
    with *env* (a subprocess environment). Without a valid span the carrier is unchanged.
    """
    target: MutableMapping[str, str] = {} if carrier is None else carrier
    current = _get_current_span() if span is None else span
    if isinstance(current, TraceContext):
        context = current.get_span_context()
    else:
        context = current.get_span_context()
    if not context.is_valid:
        return target
    parent_key, state_key = ("TRACEPARENT", "TRACESTATE") if env else ("traceparent", "tracestate")
    flags = "01" if context.trace_flags.sampled else "00"
    target[parent_key] = f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"
    state = context.trace_state.to_header() if context.trace_state else ""
    if state:
        target[state_key] = state
    elif state_key in target:
        del target[state_key]
    return target


def _trace_state(text: str) -> TraceState:
    if not text:
        return TraceState()
    try:
        return TraceState.from_header([text])
    except Exception:  # a malformed tracestate is dropped, never fatal
        return TraceState()


def sampling_decision(trace_id: str | int, rate: float) -> bool:
    """Whether a trace is recorded at *rate*: a function of its trace id alone.

    Like OpenTelemetry's ``TraceIdRatioBased``: the low 64 bits of the id against
    ``rate * 2**64``, so every process with the same rate takes the same decision.
    """
    tid = int(trace_id, 16) if isinstance(trace_id, str) else trace_id
    return (tid & _MASK64) < _bound(rate)


def _bound(rate: float) -> int:
    if rate >= 1.0:
        return _TWO64
    return max(0, int(rate * _TWO64))


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


class Span(otel_trace.Span):
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
    def span_id(self) -> str:
        """The span id, 16 lowercase hex digits."""
        return f"{self._sid:016x}"

    @property
    def parent_id(self) -> str | None:
        """The parent span's id, or ``None`` for a root span."""
        return None if self._parent_sid is None else f"{self._parent_sid:016x}"

    @property
    def context(self) -> TraceContext:
        """This span's context, e.g. to pass as ``parent=`` to another tracer."""
        return TraceContext(self._trace_hex, self.span_id, True, self._tracestate, remote=False)

    @property
    def traceparent(self) -> str:
        """This span as a W3C ``traceparent`` value."""
        return f"00-{self._trace_hex}-{self._sid:016x}-01"

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
        repr; never raises because of the value)."""
        values = self._tracer.values
        if type(key) is not str or not key.isascii():
            key = values.key(key)
        self.tags[key] = values.value(value)

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
        token, self._token = self._token, None
        if token is not None:
            _detach(token)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(kind, exc, tb)

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


class UnsampledSpan(otel_trace.Span):
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
    def span_id(self) -> str:
        """Id of the span that carries this trace's context, 16 hex digits."""
        return f"{self._sid:016x}"

    @property
    def context(self) -> TraceContext:
        """This span's context (unsampled)."""
        return TraceContext(self.trace_id, self.span_id, False, self._tracestate, remote=False)

    @property
    def traceparent(self) -> str:
        """This span as a W3C ``traceparent`` value (flags ``00``)."""
        return f"00-{self._tid:032x}-{self._sid:016x}-00"

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
        token, self._token = self._token, None
        if token is not None:
            _detach(token)

    async def __aenter__(self) -> UnsampledSpan:
        return self.__enter__()

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(kind, exc, tb)

    def __repr__(self) -> str:
        return f"<UnsampledSpan {self.name!r} trace={self.trace_id}>"


AnySpan = Span | UnsampledSpan
#: Sessions whose spans a tracer records, for routing OpenTelemetry spans to it.
_SESSION_TRACERS: dict[str, ExtensionTracer] = {}


def current_span() -> Any:
    """The current span (ours, an OpenTelemetry one, or OpenTelemetry's ``INVALID_SPAN``)."""
    return _get_current_span()


class ExtensionTracer(Component):
    """Creates traces and spans of one extension; keeps the newest ``max_traces`` traces.

    Finished spans are kept per trace (at most ``max_traces`` traces, oldest finished first
    out, counted in ``dropped_traces``/``dropped_spans``) and per open debug session. A
    session started with ``{"enable_tracing": True}`` gets a root span named after it, under
    ``trace_parent`` (a ``traceparent`` value) when given, carrying the ``trace_tags``.
    """

    kind = "tracing"
    limit_field = "max_traces"
    #: Spans kept per trace and per session; more are counted as dropped.
    max_spans_per_trace = 10_000
    max_session_spans = 10_000
    max_events_per_span = 1_000
    #: start_trace() roots kept open at once (leaked ones beyond are forgotten).
    max_open_traces = 10_000

    def __init__(
        self,
        extension_id: str,
        configuration: DebugConfiguration | None = None,
        *,
        enabled: bool = True,
        clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(extension_id, configuration, enabled=enabled)
        cfg = self.configuration
        #: The serializer of tags, event attributes and error texts.
        self.values = ValueSerializer(
            max_repr_length=cfg.max_repr_length,
            max_text_length=cfg.max_repr_length,
            text_filter=scrubber_for(cfg.redact_patterns).scrub,
        )
        self.records = RecordBuffer(self.max_session_spans)
        self.max_traces = self.configuration.max_traces
        self._clock: Callable[[], int] = clock or time.time_ns
        self._rate = 1.0
        self._bound = _TWO64
        self.sampling_rate = self.configuration.sampling_rate
        self._traces: OrderedDict[int, _LocalTrace] = OrderedDict()
        self._lock = threading.Lock()
        self.dropped_traces = 0
        self.dropped_spans = 0
        self.sampled_traces = 0
        self.unsampled_traces = 0
        self._open_traces: OrderedDict[int, tuple[AnySpan, Any]] = OrderedDict()
        self._session_roots: dict[str, tuple[AnySpan, Any]] = {}
        self._session_windows: dict[str, tuple[int, int]] = {}
        self._capture_provider: Any = None

    # Sampling ----------------------------------------------------------------------------
    @property
    def sampling_rate(self) -> float:
        """Share of traces recorded (0.0 to 1.0); the manager may lower it under overhead."""
        return self._rate

    @sampling_rate.setter
    def sampling_rate(self, rate: float) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            msg = f"sampling_rate must be a number from 0.0 to 1.0, got {rate!r}"
            raise ValueError(msg)
        self._rate = float(rate)
        self._bound = _bound(self._rate)

    def is_sampled(self, trace_id: str | int) -> bool:
        """Whether this tracer records the trace *trace_id* at its current rate."""
        tid = int(trace_id, 16) if isinstance(trace_id, str) else trace_id
        return (tid & _MASK64) < self._bound

    # Spans -------------------------------------------------------------------------------
    def start_span(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        *,
        parent: Any = None,
        kind: str = "internal",
        session_id: str | None = None,
    ) -> AnySpan:
        """Open a span named *name* under the current span (or *parent*, or in a new trace).

        Use the result with ``with``/``async with``; *parent* may be a span, a
        :class:`TraceContext` (from :func:`extract`) or an OpenTelemetry span.
        """
        if parent is None:
            parent = _get_current_span()
        parent_class = parent.__class__
        if parent_class is UnsampledSpan:  # the cheap path: one shared, inert child
            child: UnsampledSpan | None = parent._child
            if child is None:
                child = parent._child = UnsampledSpan(
                    parent._tid,
                    parent._sid,
                    name,
                    parent.session_id,
                    attach=False,
                    tracestate=parent._tracestate,
                )
            return child
        if session_id is None:
            session = CURRENT_SESSION.get()
            session_id = None if session is None else session.session_id
        if parent_class is Span and parent._tracer is self:
            if kind != "internal" and kind not in _OTEL_KINDS:
                _bad_kind(kind)
            return Span(
                self,
                name,
                parent._trace_hex,
                parent._tid,
                _getrandbits(64) or 1,
                parent._sid,
                self._clock(),
                session_id,
                parent._bucket,
                self.values.fields(dict(tags)) if tags else {},
                kind,
                parent._tracestate,
            )
        return self._start_local_root(name, tags, parent, kind, session_id)

    def _start_local_root(
        self,
        name: str,
        tags: Mapping[str, Any] | None,
        parent: Any,
        kind: str,
        session_id: str | None,
        bound: int | None = None,
    ) -> AnySpan:
        """A span whose parent is not one of this tracer's spans: a new local trace.

        *bound* overrides the current rate's sampling bound (see :meth:`begin_session`).
        """
        if kind not in _OTEL_KINDS:
            _bad_kind(kind)
        parent_context = None
        bucket = None
        if isinstance(parent, Span):  # a span of another tracer: same trace, same decision
            parent_context = parent.get_span_context()
        elif parent is not None and parent is not otel_trace.INVALID_SPAN:
            getter = getattr(parent, "get_span_context", None)
            candidate = getter() if getter is not None else None
            if isinstance(candidate, SpanContext) and candidate.is_valid:
                parent_context = candidate
                bucket = _CAPTURE.bucket_of(self, candidate.span_id)
        sid = _getrandbits(64) or 1
        if parent_context is None:
            tid = _getrandbits(128) or 1
            parent_sid = None
            tracestate = ""
        else:
            tid = parent_context.trace_id
            parent_sid = parent_context.span_id
            tracestate = (
                parent_context.trace_state.to_header() if parent_context.trace_state else ""
            )
        if isinstance(parent, Span):
            sampled = True
        elif isinstance(parent, UnsampledSpan):
            sampled = False
        else:
            limit = self._bound if bound is None else bound
            sampled = self.enabled and (tid & _MASK64) < limit
        if not (sampled and self.enabled):
            self.unsampled_traces += 1
            return UnsampledSpan(tid, sid, name, session_id, attach=True, tracestate=tracestate)
        start_ns = self._clock()
        trace_hex = f"{tid:032x}"
        if bucket is None:
            bucket = self._new_trace(trace_hex, sid, start_ns)
        return Span(
            self,
            name,
            trace_hex,
            tid,
            sid,
            parent_sid,
            start_ns,
            session_id,
            bucket,
            self.values.fields(dict(tags)) if tags else {},
            kind,
            tracestate,
        )

    def _new_trace(self, trace_hex: str, root_sid: int, start_ns: int) -> _LocalTrace:
        bucket = _LocalTrace(trace_hex, root_sid, start_ns)
        with self._lock:
            self.sampled_traces += 1
            if self.max_traces <= 0:
                bucket.evicted = True
                self.dropped_traces += 1
                return bucket
            self._traces[root_sid] = bucket
            while len(self._traces) > self.max_traces:
                self._evict_one()
        return bucket

    def _evict_one(self) -> None:
        victim_key = next((k for k, b in self._traces.items() if b.finished), None)
        if victim_key is None:  # every kept trace is still running: the oldest goes
            victim_key = next(iter(self._traces))
        victim = self._traces.pop(victim_key)
        victim.evicted = True
        self.dropped_traces += 1
        self.dropped_spans += len(victim.spans)
        victim.spans = []

    def _finish(self, span: Span) -> None:
        bucket = span._bucket
        if bucket.evicted:
            with self._lock:
                self.dropped_spans += 1
        elif len(bucket.spans) < self.max_spans_per_trace:
            bucket.spans.append(span)
        else:
            with self._lock:
                bucket.dropped += 1
                self.dropped_spans += 1
        if span._sid == bucket.root_sid:
            bucket.finished = True
        self.records.append(span, span.session_id)

    # Traces ------------------------------------------------------------------------------
    def start_trace(
        self, name: str, tags: Mapping[str, Any] | None = None, *, parent: Any = None
    ) -> AnySpan:
        """Open a span *name* that becomes the current span until :meth:`finish_trace`.

        Outside any span (or with ``parent=TraceContext`` from :func:`extract`) it starts a
        new trace; inside a span (a test's root span, say) it continues that trace. The
        result has ``trace_id`` and ``span_id``.
        """
        root = self.start_span(name, tags, parent=parent)
        previous = otel_context.get_current()
        _attach(_set_span_in_context(root))
        with self._lock:
            self._open_traces[id(root)] = (root, previous)
            while len(self._open_traces) > self.max_open_traces:
                self._open_traces.popitem(last=False)
        return root

    def finish_trace(self, trace_id: str) -> None:
        """End the newest span opened by :meth:`start_trace` in trace *trace_id*."""
        with self._lock:
            key = next(
                (
                    k
                    for k, (root, _) in reversed(self._open_traces.items())
                    if root.trace_id == trace_id
                ),
                None,
            )
            entry = self._open_traces.pop(key) if key is not None else None
        if entry is None:
            msg = f"no open trace {trace_id!r} started by start_trace() on this tracer"
            raise ValueError(msg)
        root, previous = entry
        if _get_current_span() is root:
            _attach(previous)
        root.end()

    def current_span(self) -> Any:
        """The current span (see the module function :func:`current_span`)."""
        return _get_current_span()

    def inject(
        self, carrier: MutableMapping[str, str] | None = None, *, env: bool = False
    ) -> MutableMapping[str, str]:
        """Write the current span's ``traceparent``/``tracestate`` into *carrier*."""
        return inject(carrier, env=env)

    def extract(self, carrier: Mapping[str, Any]) -> TraceContext | None:
        """The parent context carried by *carrier* (headers or environment), or ``None``."""
        return extract(carrier)

    def trace_function(
        self, name: str | Callable[..., Any] | None = None, tags: Mapping[str, Any] | None = None
    ) -> Any:
        """Decorate a function, coroutine function or (async) generator: each call is a span.

        Use as ``@tracer.trace_function("name")`` or bare ``@tracer.trace_function``. For
        generators the span covers the whole iteration and is current only while the
        generator body runs.
        """
        if callable(name):
            return self.trace_function()(name)
        return functools.partial(_decorate, self, name, dict(tags or {}))

    # Queries -----------------------------------------------------------------------------
    def get_spans(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """Finished spans kept (of one trace, or all), as records, by start time."""
        with self._lock:
            buckets = list(self._traces.values())
        spans = [
            span.to_dict()
            for bucket in buckets
            if trace_id is None or bucket.trace_id == trace_id
            for span in list(bucket.spans)
        ]
        return sorted(spans, key=lambda s: s["start"])

    def export(
        self,
        format: str = "jaeger",
        trace_id: str | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> str:
        """The finished spans kept (of *trace_id*, or all) as ``jaeger`` JSON (the Jaeger UI's
        upload format) or ``otlp-json``; with *path*, also written there atomically."""
        spans = self.get_spans(trace_id)
        if trace_id is not None and not spans:
            kept = [t["trace_id"] for t in self.get_traces()[:5]]
            msg = f"no finished span of trace {trace_id!r} is kept (some kept: {kept or 'none'})"
            raise ExportError(msg)
        fields = self.export_fields()
        fields.update(spans=spans, trace_id=trace_id)
        return export_text("traces", format, fields, path)

    def get_trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The finished spans kept of trace *trace_id*."""
        return self.get_spans(trace_id)

    def get_traces(self) -> list[dict[str, Any]]:
        """A summary of every kept trace: id, root name, span count, duration, status."""
        with self._lock:
            buckets = list(self._traces.values())
        summaries: dict[str, dict[str, Any]] = {}
        for bucket in buckets:
            spans = list(bucket.spans)
            if not spans:
                continue
            summary = summaries.setdefault(
                bucket.trace_id,
                {
                    "trace_id": bucket.trace_id,
                    "root": None,
                    "spans": 0,
                    "errors": 0,
                    "start": bucket.started_ns / 1e9,
                    "duration_ms": 0.0,
                    "finished": True,
                    "dropped_spans": 0,
                },
            )
            summary["spans"] += len(spans)
            summary["errors"] += sum(1 for s in spans if s.status == "error")
            summary["finished"] = summary["finished"] and bucket.finished
            summary["dropped_spans"] += bucket.dropped
            root = next((s for s in spans if s._sid == bucket.root_sid), None)
            if root is not None and (summary["root"] is None or root.start < summary["start"]):
                summary["root"] = root.name
            if root is not None:
                summary["duration_ms"] = max(summary["duration_ms"], root.duration_ms)
        return sorted(summaries.values(), key=lambda s: s["start"])

    def analyze_trace(self, trace_id: str, slow_span_ms: float | None = None) -> dict[str, Any]:
        """Critical path, slowest spans, self times and bottlenecks of trace *trace_id*."""
        threshold = self.configuration.slow_span_ms if slow_span_ms is None else slow_span_ms
        return analyze_spans(self.get_spans(trace_id), threshold)

    def get_bottlenecks(self, slow_span_ms: float | None = None) -> list[dict[str, Any]]:
        """Spans of every kept trace longer than *slow_span_ms* (default: configuration)."""
        threshold = self.configuration.slow_span_ms if slow_span_ms is None else slow_span_ms
        found: list[dict[str, Any]] = []
        for summary in self.get_traces():
            found.extend(
                analyze_spans(self.get_spans(summary["trace_id"]), threshold)["bottlenecks"]
            )
        return sorted(found, key=lambda b: -b["duration_ms"])

    def clear(self) -> None:
        """Forget every kept trace (drop counters stay)."""
        with self._lock:
            for bucket in self._traces.values():
                bucket.evicted = True
                bucket.spans = []
            self._traces.clear()
        self.records.clear()

    # Sessions ----------------------------------------------------------------------------
    def begin_session(self, session: SessionInfo) -> None:
        """Keep the session's spans apart; open its root span if it asked for tracing."""
        super().begin_session(session)
        if not self.enabled:
            return
        _SESSION_TRACERS[session.session_id] = self
        self._ensure_capture()
        if not session.options.get("enable_tracing"):
            return
        parent: Any = None
        text = session.options.get("trace_parent")
        if text:
            try:
                parent = parse_traceparent(text)
            except ValueError as exc:
                self.add_diagnostic(f"trace_parent ignored: {exc}")
        tags: dict[str, Any] = {
            "kari.extension.id": self.extension_id,
            "kari.session.id": session.session_id,
            "kari.session.root": True,
        }
        tags.update(self.values.mapping(session.options.get("trace_tags")))
        current = _get_current_span() if parent is None else parent
        if isinstance(current, (Span, UnsampledSpan)) and getattr(current, "_tracer", self) is self:
            root = self.start_span(
                session.name, tags, parent=current, session_id=session.session_id
            )
        else:
            # A session that asked for tracing (a test under --kari-trace) is sampled at the
            # configured rate: the manager's overhead-driven lowering applies to the traces an
            # extension starts by itself, not to traces the user explicitly asked for.
            configured = _bound(self.configuration.sampling_rate)
            root = self._start_local_root(
                session.name, tags, current, "internal", session.session_id, configured
            )
        previous = otel_context.get_current()
        _attach(_set_span_in_context(root))
        self._session_roots[session.session_id] = (root, previous)

    def time_session_root(self, session_id: str, start_ns: int, end_ns: int) -> None:
        """Time the session's root span to the window of the session's own work.

        *start_ns* and *end_ns* are epoch nanoseconds of this tracer's clock; the root span
        ends there when the session ends, so work done around the session's own (a test
        runner's verdicts, say) stays out of it.
        """
        entry = self._session_roots.get(session_id)
        if entry is not None and end_ns >= start_ns:
            self._session_windows[session_id] = (start_ns, end_ns)

    def end_session(self, session: SessionInfo) -> dict[str, Any]:
        """End the session's root span; return its spans, drops, trace id and analysis."""
        _SESSION_TRACERS.pop(session.session_id, None)
        entry = self._session_roots.pop(session.session_id, None)
        window = self._session_windows.pop(session.session_id, None)
        root: AnySpan | None = None
        if entry is not None:
            root, previous = entry
            current = _get_current_span()
            if current is root or getattr(current, "session_id", None) == session.session_id:
                _attach(previous)  # also forgets spans the test left open in this context
            if window is None:
                root.end()
            else:
                if isinstance(root, Span):
                    root.start_ns = window[0]
                    root._bucket.started_ns = min(root._bucket.started_ns, window[0])
                root.end(window[1])
        spans, dropped = self.records.close_session(session.session_id)
        spans.sort(key=lambda s: s.start_ns)
        records = [span.to_dict() for span in spans]
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_trace.setdefault(record["trace_id"], []).append(record)
        analysis = {
            trace_id: analyze_spans(trace_spans, self.configuration.slow_span_ms, annotate=True)
            for trace_id, trace_spans in by_trace.items()
        }
        return {
            "records": records,
            "dropped": dropped,
            "trace_id": None if root is None else root.trace_id,
            "root_span_id": None if root is None else root.span_id,
            "sampled": bool(root is not None and root.sampled),
            "sampling_rate": self._rate,
            "traces": list(by_trace),
            "analysis": analysis,
        }

    # Lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Capture OpenTelemetry spans of this tracer's sessions (if an SDK provider is set)."""
        if self.enabled:
            self._ensure_capture()

    def stop(self) -> None:
        """Stop capturing OpenTelemetry spans."""
        provider, self._capture_provider = self._capture_provider, None
        if provider is not None:
            uninstall_opentelemetry_capture(provider)

    def _ensure_capture(self) -> None:
        provider = otel_trace.get_tracer_provider()
        if provider is self._capture_provider:
            return
        if self._capture_provider is not None:
            uninstall_opentelemetry_capture(self._capture_provider)
            self._capture_provider = None
        if hasattr(provider, "add_span_processor"):
            install_opentelemetry_capture(provider)
            self._capture_provider = provider

    def _record_otel(self, readable: Any, bucket: _LocalTrace, session_id: str | None) -> None:
        """Keep a finished OpenTelemetry SDK span as one of ours."""
        context = readable.context
        parent = readable.parent
        values = self.values
        span = Span(
            self,
            readable.name,
            f"{context.trace_id:032x}",
            context.trace_id,
            context.span_id,
            None if parent is None else parent.span_id,
            readable.start_time or self._clock(),
            session_id,
            bucket,
            values.mapping(readable.attributes),
            readable.kind.name.lower() if readable.kind is not None else "internal",
        )
        span.source = "opentelemetry"
        scope = getattr(readable, "instrumentation_scope", None)
        if scope is not None and scope.name:
            span.tags["otel.scope.name"] = scope.name
        events = span.events = []
        for event in readable.events or ():
            events.append(
                {
                    "ts": event.timestamp / 1e9,
                    "name": event.name,
                    "attributes": values.mapping(event.attributes),
                }
            )
        status = readable.status
        if status is not None and status.status_code is StatusCode.ERROR:
            span.status = "error"
            span.status_message = status.description or ""
            span.tags.setdefault("error", True)
        span.end_ns = readable.end_time or self._clock()
        self._finish(span)

    def stats(self) -> dict[str, int]:
        """Spans kept, recorded and dropped, and the same for traces."""
        with self._lock:
            kept_spans = sum(len(b.spans) for b in self._traces.values())
            kept_traces = len(self._traces)
        return {
            "records": kept_spans,
            "recorded": self.records.total,
            "dropped": self.dropped_spans,
            "dropped_spans": self.dropped_spans,
            "limit": self.max_traces,
            "traces": kept_traces,
            "sampled_traces": self.sampled_traces,
            "unsampled_traces": self.unsampled_traces,
            "dropped_traces": self.dropped_traces,
        }

    def check(self) -> tuple[str, str]:
        """Degraded when traces were dropped at ``max_traces`` or an internal problem occurred."""
        if not self.enabled:
            return "healthy", "disabled"
        if self.diagnostics:
            return "degraded", "; ".join(self.diagnostics[-3:])
        if self.dropped_traces:
            return "degraded", (
                f"{self.dropped_traces} traces ({self.dropped_spans} spans) dropped at"
                f" max_traces={self.max_traces}"
            )
        return "healthy", f"{len(self._traces)} traces, sampling rate {self._rate:g}"


def _bad_kind(kind: str) -> None:
    msg = f"span kind must be one of {', '.join(SPAN_KINDS)}, got {kind!r}"
    raise ValueError(msg)


# Decorator -----------------------------------------------------------------------------
def _decorate(tracer: ExtensionTracer, name: str | None, tags: dict[str, Any], func: F) -> F:
    span_name: str = name if name else getattr(func, "__qualname__", repr(func))
    tags = {"code.function": getattr(func, "__qualname__", span_name), **tags}
    module = getattr(func, "__module__", None)
    if module:
        tags.setdefault("code.namespace", module)
    start_span = tracer.start_span

    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = start_span(span_name, tags)
            agen = func(*args, **kwargs)
            to_send: Any = None
            to_throw: BaseException | None = None
            try:
                while True:
                    token = _attach(_set_span_in_context(span))
                    try:
                        if to_throw is None:
                            item = await agen.asend(to_send)
                        else:
                            error, to_throw = to_throw, None
                            item = await agen.athrow(error)
                    except StopAsyncIteration:
                        return
                    finally:
                        _detach(token)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        await agen.aclose()
                        raise
                    except BaseException as error:  # thrown in by the consumer
                        to_throw = error
            except Exception as error:
                span.fail(error)
                raise
            finally:
                span.end()

        return cast(F, async_gen_wrapper)

    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = start_span(span_name, tags)
            gen = func(*args, **kwargs)
            to_send: Any = None
            to_throw: BaseException | None = None
            try:
                while True:
                    token = _attach(_set_span_in_context(span))
                    try:
                        if to_throw is None:
                            item = gen.send(to_send)
                        else:
                            error, to_throw = to_throw, None
                            item = gen.throw(error)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        _detach(token)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as error:  # thrown in by the consumer
                        to_throw = error
            except Exception as error:
                span.fail(error)
                raise
            finally:
                span.end()

        return cast(F, gen_wrapper)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with start_span(span_name, tags):
                return await func(*args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with start_span(span_name, tags):
            return func(*args, **kwargs)

    return cast(F, wrapper)


# Analysis ------------------------------------------------------------------------------
def analyze_spans(
    spans: Sequence[dict[str, Any]],
    slow_span_ms: float = 100.0,
    *,
    top: int = 5,
    annotate: bool = False,
) -> dict[str, Any]:
    """Critical path, slowest spans, self time per span and bottlenecks of one trace.

    *spans* are span records of one trace. Self time is a span's duration minus the union of
    its children's intervals (concurrent children are not double-counted). The critical path
    walks back from the root's end through the child that finished last before each point, as
    Jaeger's critical-path view does. Spans longer than *slow_span_ms* are bottlenecks. With
    *annotate*, each record gets its ``self_ms``.
    """
    finished = [s for s in spans if s.get("end") is not None]
    by_id = {s["span_id"]: s for s in finished}
    children: dict[str, list[dict[str, Any]]] = {}
    for span in finished:
        parent = span.get("parent_id")
        if parent is not None and parent in by_id:
            children.setdefault(parent, []).append(span)
    self_ms: dict[str, float] = {}
    for span in finished:
        covered = _union_ms(
            [
                (max(c["start"], span["start"]), min(c["end"], span["end"]))
                for c in children.get(span["span_id"], ())
            ]
        )
        self_ms[span["span_id"]] = max(0.0, span["duration_ms"] - covered)
        if annotate:
            span["self_ms"] = round(self_ms[span["span_id"]], 6)
    roots = [s for s in finished if s.get("parent_id") not in by_id]
    root = max(roots, key=lambda s: s["duration_ms"], default=None)
    path: list[dict[str, Any]] = []
    if root is not None:
        _critical_path(root, root["end"], children, path)
        path.sort(key=lambda seg: seg["start"])
    merged: list[dict[str, Any]] = []
    for segment in path:
        if merged and merged[-1]["span_id"] == segment["span_id"]:
            merged[-1]["ms"] += segment["ms"]
        else:
            merged.append(dict(segment))
    slowest = sorted(finished, key=lambda s: -s["duration_ms"])[:top]
    bottlenecks = [
        {
            "trace_id": s["trace_id"],
            "span_id": s["span_id"],
            "name": s["name"],
            "duration_ms": s["duration_ms"],
            "self_ms": self_ms[s["span_id"]],
            "threshold_ms": slow_span_ms,
        }
        for s in sorted(finished, key=lambda s: -s["duration_ms"])
        if s["duration_ms"] > slow_span_ms
    ]
    return {
        "root": None if root is None else {"span_id": root["span_id"], "name": root["name"]},
        "duration_ms": 0.0 if root is None else root["duration_ms"],
        "spans": len(spans),
        "errors": sum(1 for s in spans if s.get("status") == "error"),
        "critical_path": [
            {"span_id": seg["span_id"], "name": seg["name"], "ms": round(seg["ms"], 6)}
            for seg in merged
        ],
        "slowest": [
            {
                "span_id": s["span_id"],
                "name": s["name"],
                "duration_ms": s["duration_ms"],
                "self_ms": self_ms[s["span_id"]],
            }
            for s in slowest
        ],
        "self_ms": {
            span_id: round(value, 6)
            for span_id, value in sorted(self_ms.items(), key=lambda kv: -kv[1])[: top * 4]
        },
        "bottlenecks": bottlenecks,
        "slow_span_ms": slow_span_ms,
    }


def _union_ms(intervals: Iterable[tuple[float, float]]) -> float:
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total * 1000.0


def _critical_path(
    span: dict[str, Any],
    until: float,
    children: Mapping[str, list[dict[str, Any]]],
    out: list[dict[str, Any]],
) -> None:
    """Append *span*'s critical-path segments that end at or before *until* to *out*."""
    cursor = min(until, span["end"])
    kids = sorted(children.get(span["span_id"], ()), key=lambda c: -c["end"])
    for child in kids:
        if child["end"] <= span["start"] or child["start"] >= cursor:
            continue
        child_end = min(child["end"], cursor)
        if child_end < cursor:
            out.append(_segment(span, child_end, cursor))
        _critical_path(child, child_end, children, out)
        cursor = max(child["start"], span["start"])
        if cursor <= span["start"]:
            break
    if cursor > span["start"]:
        out.append(_segment(span, span["start"], cursor))


def _segment(span: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    return {
        "span_id": span["span_id"],
        "name": span["name"],
        "start": start,
        "ms": (end - start) * 1000.0,
    }


# OpenTelemetry capture -----------------------------------------------------------------
class OpenTelemetryCapture:
    """Span processor that copies OpenTelemetry SDK spans made in a debug session.

    It is added to a ``TracerProvider`` only while a tracer runs (reference-counted per
    provider) and does nothing for spans made outside a session of a running tracer, so the
    provider's own processors and exporters are unaffected.
    """

    max_pending = 100_000

    def __init__(self) -> None:
        self._pending: dict[int, tuple[ExtensionTracer, _LocalTrace, str | None]] = {}
        self._providers: dict[int, list[Any]] = {}
        self._lock = threading.Lock()
        self.dropped = 0

    def bucket_of(self, tracer: ExtensionTracer, span_id: int) -> _LocalTrace | None:
        """The local trace of a running captured span, when *tracer* captured it."""
        entry = self._pending.get(span_id)
        return entry[1] if entry is not None and entry[0] is tracer else None

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Note the session and trace of a span an SDK tracer starts."""
        session = CURRENT_SESSION.get()
        if session is None:
            return
        tracer = _SESSION_TRACERS.get(session.session_id)
        if tracer is None:
            return
        context = span.get_span_context()
        parent = _get_current_span(parent_context)
        bucket: _LocalTrace | None = None
        if isinstance(parent, Span) and parent._tracer is tracer:
            bucket = parent._bucket
        elif isinstance(parent, UnsampledSpan):
            return
        else:
            parent_context_ = parent.get_span_context()
            if parent_context_.is_valid:
                bucket = self.bucket_of(tracer, parent_context_.span_id)
            if bucket is None:
                if not tracer.is_sampled(context.trace_id):
                    return
                bucket = tracer._new_trace(
                    f"{context.trace_id:032x}", context.span_id, span.start_time or time.time_ns()
                )
        if len(self._pending) >= self.max_pending:
            with self._lock:
                self.dropped += 1
            return
        self._pending[context.span_id] = (tracer, bucket, session.session_id)

    def _on_ending(self, span: Any) -> None:
        """Nothing to do before the span ends."""

    def on_end(self, span: Any) -> None:
        """Copy a finished span noted by :meth:`on_start` into its tracer."""
        entry = self._pending.pop(span.context.span_id, None)
        if entry is None:
            return
        tracer, bucket, session_id = entry
        try:
            tracer._record_otel(span, bucket, session_id)
        except Exception as exc:  # never break the instrumented code
            tracer.add_diagnostic(f"could not record OpenTelemetry span: {exc!r}")

    def shutdown(self) -> None:
        """Forget running spans."""
        self._pending.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered."""
        return True

    def install(self, provider: Any) -> None:
        """Add this processor to *provider* (once, however many tracers ask)."""
        with self._lock:
            entry = self._providers.get(id(provider))
            if entry is not None:
                entry[1] += 1
                return
            provider.add_span_processor(self)
            self._providers[id(provider)] = [provider, 1]

    def uninstall(self, provider: Any) -> None:
        """Remove this processor from *provider* once the last tracer stops."""
        with self._lock:
            entry = self._providers.get(id(provider))
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del self._providers[id(provider)]
        # The SDK has no public removal: rebuild its processor tuple under its lock.
        multi = getattr(provider, "_active_span_processor", None)
        processors = getattr(multi, "_span_processors", None)
        lock = getattr(multi, "_lock", None)
        if multi is not None and isinstance(processors, tuple) and lock is not None:
            with lock:
                multi._span_processors = tuple(p for p in multi._span_processors if p is not self)

    def installed_on(self, provider: Any) -> bool:
        """Whether this processor is currently added to *provider*."""
        return id(provider) in self._providers


_CAPTURE = OpenTelemetryCapture()


def install_opentelemetry_capture(provider: Any = None) -> bool:
    """Capture spans of *provider* (default: the global one) made in debug sessions.

    Returns ``False`` when the provider takes no span processors (OpenTelemetry's default
    proxy when no SDK provider is set, or a vendor's own implementation).
    """
    target = otel_trace.get_tracer_provider() if provider is None else provider
    if not hasattr(target, "add_span_processor"):
        return False
    _CAPTURE.install(target)
    return True


def uninstall_opentelemetry_capture(provider: Any = None) -> None:
    """Undo one :func:`install_opentelemetry_capture` for *provider*."""
    target = otel_trace.get_tracer_provider() if provider is None else provider
    _CAPTURE.uninstall(target)


def ensure_tracer_provider(service_name: str = "pytest-kari-debug") -> bool:
    """Set an SDK ``TracerProvider`` as OpenTelemetry's global one when none is set.

    Without one, spans made through the OpenTelemetry API are no-ops and there is nothing
    to capture. A provider already set (by the user) is never replaced; OpenTelemetry does
    not allow unsetting one, so the provider set here stays for the rest of the process
    (with no exporter of its own). Returns whether a provider was set.
    """
    current = otel_trace.get_tracer_provider()
    if not isinstance(current, otel_trace.ProxyTracerProvider):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    otel_trace.set_tracer_provider(provider)
    return otel_trace.get_tracer_provider() is provider


__all__ = [
    "SPAN_KINDS",
    "ExtensionTracer",
    "OpenTelemetryCapture",
    "Span",
    "TraceContext",
    "UnsampledSpan",
    "analyze_spans",
    "current_span",
    "ensure_tracer_provider",
    "extract",
    "inject",
    "install_opentelemetry_capture",
    "parse_traceparent",
    "sampling_decision",
    "uninstall_opentelemetry_capture",
]
