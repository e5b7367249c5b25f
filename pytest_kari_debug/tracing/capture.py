"""Capture of OpenTelemetry SDK spans made inside a debug session."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as otel_trace

from ..context import CURRENT_SESSION
from .propagation import _get_current_span
from .spans import Span, UnsampledSpan, _LocalTrace

if TYPE_CHECKING:
    from .tracer import ExtensionTracer


#: Sessions whose spans a tracer records, for routing OpenTelemetry spans to it.
_SESSION_TRACERS: dict[str, ExtensionTracer] = {}


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
    to capture. A provider already set (by the user) is never replaced. The provider set here
    (with no exporter of its own) stays until :func:`release_tracer_provider` unsets it.
    Returns whether a provider was set.
    """
    current = otel_trace.get_tracer_provider()
    if not isinstance(current, otel_trace.ProxyTracerProvider):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    otel_trace.set_tracer_provider(provider)
    return otel_trace.get_tracer_provider() is provider


def release_tracer_provider(provider: object) -> bool:
    """Unset OpenTelemetry's global provider if it is still *provider* (the one
    :func:`ensure_tracer_provider` set), so the process is left as it was found: a second
    pytest run in it (pytester, an IDE) starts without the first run's provider.

    OpenTelemetry has no API for this; its own test utilities reset the same two globals.
    Where they are not found (another version), the provider stays and False is returned.
    """
    once = getattr(otel_trace, "_TRACER_PROVIDER_SET_ONCE", None)
    if getattr(otel_trace, "_TRACER_PROVIDER", None) is not provider or not hasattr(once, "_done"):
        return False
    otel_trace._TRACER_PROVIDER = None
    once._done = False  # type: ignore[union-attr]
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()
    return True
