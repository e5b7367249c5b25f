"""``ExtensionTracer``: traces and nested spans of one extension, and its decorator."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ..buffer import RecordBuffer
from ..component import Component, export_text
from ..config import DebugConfiguration
from ..context import CURRENT_SESSION, SessionInfo, register_session_option
from ..exceptions import ExportError
from ..lazy import LateImports
from ..redactor import Redactor
from ..scrub import scrubber_for
from .sampling import _MASK64, _TWO64, _bound

if TYPE_CHECKING:
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import SpanContext, StatusCode

    from .analysis import analyze_spans
    from .capture import (
        _CAPTURE,
        _SESSION_TRACERS,
        install_opentelemetry_capture,
        uninstall_opentelemetry_capture,
    )
    from .propagation import (
        TraceContext,
        _attach,
        _get_current_span,
        _getrandbits,
        _set_span_in_context,
    )
    from .spans import _OTEL_KINDS, SPAN_KINDS, AnySpan, Span, UnsampledSpan, _LocalTrace

# A debug session accepts these options besides the seed's ones.
register_session_option("trace_parent", str)
register_session_option("trace_tags", dict)

#: OpenTelemetry, the span classes (they subclass its ``Span``), propagation and capture: imported
#: by the first enabled tracer, span, trace or session. A run whose tracer is off never imports
#: them (about 8 ms of start-up).
_LATE = LateImports(
    globals(),
    __package__,
    {
        "otel_context": "opentelemetry.context",
        "otel_trace": "opentelemetry.trace",
        "SpanContext": "opentelemetry.trace:SpanContext",
        "StatusCode": "opentelemetry.trace:StatusCode",
        "_CAPTURE": ".capture:_CAPTURE",
        "_SESSION_TRACERS": ".capture:_SESSION_TRACERS",
        "install_opentelemetry_capture": ".capture:install_opentelemetry_capture",
        "uninstall_opentelemetry_capture": ".capture:uninstall_opentelemetry_capture",
        "_attach": ".propagation:_attach",
        "_get_current_span": ".propagation:_get_current_span",
        "_getrandbits": ".propagation:_getrandbits",
        "_set_span_in_context": ".propagation:_set_span_in_context",
        "_OTEL_KINDS": ".spans:_OTEL_KINDS",
        "SPAN_KINDS": ".spans:SPAN_KINDS",
        "Span": ".spans:Span",
        "UnsampledSpan": ".spans:UnsampledSpan",
        "_LocalTrace": ".spans:_LocalTrace",
    },
)
#: The traces' analysis (critical path, self times, bottlenecks): at the first trace analysed.
_ANALYSIS = LateImports(globals(), __package__, {"analyze_spans": ".analysis:analyze_spans"})


def current_span() -> Any:
    """The current span (ours, an OpenTelemetry one, or OpenTelemetry's ``INVALID_SPAN``)."""
    if not _LATE.loaded:
        _LATE.load()
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
        if enabled and not _LATE.loaded:
            _LATE.load()
        cfg = self.configuration
        #: The serializer of tags, event attributes and error texts: the logger's rules
        #: (``redact_fields`` by name, URLs and ``redact_patterns`` in text).
        self.values = Redactor(
            cfg.redact_fields,
            max_repr_length=cfg.max_repr_length,
            max_text_length=cfg.max_repr_length,
            scrubber=scrubber_for(cfg.redact_patterns),
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
        if not _LATE.loaded:
            _LATE.load()
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
        if not _LATE.loaded:
            _LATE.load()
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
        if not _LATE.loaded:
            _LATE.load()
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
        return current_span()

    def inject(
        self, carrier: MutableMapping[str, str] | None = None, *, env: bool = False
    ) -> MutableMapping[str, str]:
        """Write the current span's ``traceparent``/``tracestate`` into *carrier*."""
        from .propagation import inject

        return inject(carrier, env=env)

    def extract(self, carrier: Mapping[str, Any]) -> TraceContext | None:
        """The parent context carried by *carrier* (headers or environment), or ``None``."""
        from .propagation import extract

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
        from .decorate import _decorate

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
        if not _ANALYSIS.loaded:
            _ANALYSIS.load()
        return analyze_spans(self.get_spans(trace_id), threshold)

    def get_bottlenecks(self, slow_span_ms: float | None = None) -> list[dict[str, Any]]:
        """Spans of every kept trace longer than *slow_span_ms* (default: configuration)."""
        threshold = self.configuration.slow_span_ms if slow_span_ms is None else slow_span_ms
        if not _ANALYSIS.loaded:
            _ANALYSIS.load()
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
        if not _LATE.loaded:
            _LATE.load()
        _SESSION_TRACERS[session.session_id] = self
        self._ensure_capture()
        if not session.options.get("enable_tracing"):
            return
        parent: Any = None
        text = session.options.get("trace_parent")
        if text:
            from .propagation import parse_traceparent

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
        if not _LATE.loaded:
            _LATE.load()
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
        if not _ANALYSIS.loaded:
            _ANALYSIS.load()
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
        if not _LATE.loaded:
            _LATE.load()
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
            values.fields(_attributes(readable.attributes)),
            _kind_name(readable.kind),
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
                    "attributes": values.fields(_attributes(event.attributes)),
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
            return "degraded", self.diagnostics.latest()
        if self.dropped_traces:
            return "degraded", (
                f"{self.dropped_traces} traces ({self.dropped_spans} spans) dropped at"
                f" max_traces={self.max_traces}"
            )
        return "healthy", f"{len(self._traces)} traces, sampling rate {self._rate:g}"


def _attributes(attributes: Any) -> Any:
    """An SDK span's or event's attributes as a dict of our own: a ``mappingproxy`` of
    ``BoundedAttributes`` copies its dict at once, where reading it item by item goes
    through Python methods and a lock per item. Anything else is passed on as it is."""
    if not attributes:
        return {}
    try:
        copied = attributes.copy()
    except Exception:  # another implementation's mapping: read it item by item
        return attributes
    return copied if type(copied) is dict else attributes


_KIND_NAMES: dict[Any, str] = {}


def _kind_name(kind: Any) -> str:
    """``SpanKind.SERVER`` -> ``"server"``; ``None`` -> ``"internal"`` (an enum's ``name``
    is a property: the five kinds' names are looked up once)."""
    if kind is None:
        return "internal"
    try:
        return _KIND_NAMES[kind]
    except TypeError:  # unhashable
        return str(kind.name).lower()
    except KeyError:
        name = str(kind.name).lower()
        if len(_KIND_NAMES) < 16:
            _KIND_NAMES[kind] = name
        return name


def _bad_kind(kind: str) -> None:
    msg = f"span kind must be one of {', '.join(SPAN_KINDS)}, got {kind!r}"
    raise ValueError(msg)
