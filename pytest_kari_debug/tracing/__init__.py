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

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .analysis import analyze_spans
    from .capture import (
        OpenTelemetryCapture,
        ensure_tracer_provider,
        install_opentelemetry_capture,
        release_tracer_provider,
        uninstall_opentelemetry_capture,
    )
    from .propagation import TraceContext, extract, inject, parse_traceparent
    from .sampling import sampling_decision
    from .spans import SPAN_KINDS, Span, UnsampledSpan
    from .tracer import ExtensionTracer, current_span

#: Public name -> the module that defines it: each is imported on first use, so a run that
#: does not trace imports neither OpenTelemetry nor the span classes (which subclass its Span).
_PUBLIC = {
    "SPAN_KINDS": "spans",
    "ExtensionTracer": "tracer",
    "OpenTelemetryCapture": "capture",
    "Span": "spans",
    "TraceContext": "propagation",
    "UnsampledSpan": "spans",
    "analyze_spans": "analysis",
    "current_span": "tracer",
    "ensure_tracer_provider": "capture",
    "extract": "propagation",
    "inject": "propagation",
    "install_opentelemetry_capture": "capture",
    "parse_traceparent": "propagation",
    "release_tracer_provider": "capture",
    "sampling_decision": "sampling",
    "uninstall_opentelemetry_capture": "capture",
}

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
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
