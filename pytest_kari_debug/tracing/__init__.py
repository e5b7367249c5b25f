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

from .analysis import analyze_spans
from .capture import (
    OpenTelemetryCapture,
    ensure_tracer_provider,
    install_opentelemetry_capture,
    release_tracer_provider,
    uninstall_opentelemetry_capture,
)
from .propagation import TraceContext, extract, inject, parse_traceparent, sampling_decision
from .spans import SPAN_KINDS, Span, UnsampledSpan
from .tracer import ExtensionTracer, current_span

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
    "release_tracer_provider",
    "sampling_decision",
    "uninstall_opentelemetry_capture",
]
