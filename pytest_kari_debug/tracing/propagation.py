"""W3C Trace Context: parse, extract and inject ``traceparent``, and sampling by trace id."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanContext, TraceFlags, TraceState

from ..sharedmethods import dataclass

_get_current_span = otel_trace.get_current_span
_set_span_in_context = otel_trace.set_span_in_context
_attach = otel_context.attach
_detach = otel_context.detach
_getrandbits = random.getrandbits
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)


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

