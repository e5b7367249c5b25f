"""Every export format, by name: :func:`exporter_for` is the one registry of them.

An :class:`Exporter` knows its media type, its file suffix, the kinds of data it can hold and
how to render an :class:`~.bundle.ExportBundle` of one kind. The REST API, the CLI,
``debug_manager.export()`` and the components' ``export()`` all pick their format here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..exceptions import ExportError
from ..sharedmethods import dataclass
from ..values import encode_text
from .bundle import (
    KINDS,
    ExportBundle,
    document,
    render_bundle_csv,
    render_prometheus,
    render_traces,
    to_json,
)

#: The kinds of records every document format holds; traces have their own formats.
RECORD_EXPORTS = ("logs", "metrics", "errors", "alerts", "all")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Exporter:
    """One export format: its name, media type, file suffix, kinds, and renderer."""

    name: str
    media_type: str
    suffix: str
    kinds: tuple[str, ...]
    renderer: Callable[[ExportBundle, str, str | None], bytes]

    def render(self, bundle: ExportBundle, kind: str, *, trace_id: str | None = None) -> bytes:
        """*bundle*'s *kind* in this format (*trace_id*: one trace of a traces export)."""
        check_format(kind, self.name)
        return self.renderer(bundle, kind, trace_id)


def _json(bundle: ExportBundle, kind: str, _: str | None) -> bytes:
    return encode_text(to_json(document(bundle, kind)))


def _csv(bundle: ExportBundle, kind: str, _: str | None) -> bytes:
    return encode_text(render_bundle_csv(bundle, kind))


def _exposition(fmt: str) -> Callable[[ExportBundle, str, str | None], bytes]:
    def render(bundle: ExportBundle, kind: str, _: str | None) -> bytes:
        return render_prometheus(bundle, kind, fmt)

    return render


def _traces(fmt: str) -> Callable[[ExportBundle, str, str | None], bytes]:
    def render(bundle: ExportBundle, kind: str, trace_id: str | None) -> bytes:
        return encode_text(render_traces(bundle, fmt, trace_id))

    return render


EXPORTERS: dict[str, Exporter] = {
    exporter.name: exporter
    for exporter in (
        Exporter("json", "application/json", "json", RECORD_EXPORTS, _json),
        Exporter("csv", "text/csv; charset=utf-8", "csv", RECORD_EXPORTS, _csv),
        Exporter(
            "prometheus", "text/plain; version=0.0.4; charset=utf-8", "prom", RECORD_EXPORTS,
            _exposition("prometheus"),
        ),
        Exporter(
            "openmetrics", "application/openmetrics-text; version=1.0.0; charset=utf-8", "om",
            RECORD_EXPORTS, _exposition("openmetrics"),
        ),
        Exporter("jaeger", "application/json", "jaeger.json", ("traces",), _traces("jaeger")),
        Exporter("otlp", "application/json", "otlp.json", ("traces",), _traces("otlp")),
    )
}  # fmt: skip
#: The formats of a traces export.
TRACE_FORMATS = tuple(name for name, e in EXPORTERS.items() if "traces" in e.kinds)
#: Media type of each format (the REST API's responses).
MEDIA_TYPES = {name: exporter.media_type for name, exporter in EXPORTERS.items()}
#: What each kind can be exported as.
KIND_FORMATS: dict[str, tuple[str, ...]] = {
    kind: tuple(name for name, e in EXPORTERS.items() if kind in e.kinds) for kind in KINDS
}


def exporter_for(name: str) -> Exporter:
    """The exporter of format *name*; an :class:`ExportError` lists the accepted ones."""
    found = EXPORTERS.get(name) if isinstance(name, str) else None
    if found is None:
        msg = f"unknown export format {name!r}; accepted: {', '.join(EXPORTERS)}"
        raise ExportError(msg)
    return found


def check_format(kind: str, fmt: str) -> None:
    """A clear ExportError unless *kind* can be exported as *fmt*."""
    if kind not in KIND_FORMATS:
        msg = f"unknown export kind {kind!r}; accepted: {', '.join(KINDS)}"
        raise ExportError(msg)
    if fmt not in KIND_FORMATS[kind]:
        msg = f"{kind} cannot be exported as {fmt!r}; accepted: {', '.join(KIND_FORMATS[kind])}"
        raise ExportError(msg)


def render_export(
    bundle: ExportBundle, kind: str, fmt: str, *, trace_id: str | None = None
) -> bytes:
    """The export of *kind* (logs, metrics, errors, alerts, traces, all) in *fmt*."""
    check_format(kind, fmt)
    return exporter_for(fmt).render(bundle, kind, trace_id=trace_id)


def filename(extension_id: str, kind: str, fmt: str) -> str:
    """A safe download name: ``<extension>-<kind>.<suffix of the format>``."""
    suffix = exporter_for(fmt).suffix
    return f"{_SAFE_NAME.sub('_', extension_id)[:80] or 'extension'}-{kind}.{suffix}"


__all__: Sequence[str] = [
    "EXPORTERS", "KIND_FORMATS", "MEDIA_TYPES", "TRACE_FORMATS", "Exporter", "check_format",
    "exporter_for", "filename", "render_export",
]  # fmt: skip
