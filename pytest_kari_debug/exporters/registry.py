"""The renderers components export through (``logger.export()``, ``metrics.export()``...).

Components sit below the exporters and may not import them: :func:`install` hands the
renderers down into :data:`pytest_kari_debug.component.EXPORTS` instead (done when this package
is imported, which every debug manager does). Each renderer turns the component's plain data
(the fields of an :class:`~.bundle.ExportBundle`, plus ``trace_id`` for traces) into the same
text the REST API and ``debug_manager.export()`` produce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ..component import EXPORTS, ExportRegistry
from .bundle import ExportBundle
from .formats import exporter_for
from .logs_export import logs_to_jsonl

_FIELDS = frozenset(f.name for f in fields(ExportBundle))


def _bundle(data: Mapping[str, Any]) -> ExportBundle:
    return ExportBundle(**{k: v for k, v in data.items() if k in _FIELDS})


def _renderer(kind: str, fmt: str) -> Any:
    def render(data: Mapping[str, Any]) -> str:
        return exporter_for(fmt).render(_bundle(data), kind).decode("utf-8")

    return render


def _traces(fmt: str) -> Any:
    def render(data: Mapping[str, Any]) -> str:
        trace_id = data.get("trace_id")
        found = str(trace_id) if trace_id else None
        return exporter_for(fmt).render(_bundle(data), "traces", trace_id=found).decode("utf-8")

    return render


def _jsonl(data: Mapping[str, Any]) -> str:
    return logs_to_jsonl(data.get("logs") or ())


def install(registry: ExportRegistry = EXPORTS) -> None:
    """Register every component export (kind, format) in *registry*."""
    for kind in ("logs", "metrics", "errors", "alerts", "all"):
        for fmt in ("json", "csv"):
            registry.register(kind, fmt, _renderer(kind, fmt))
    registry.register("logs", "jsonl", _jsonl)
    for kind in ("metrics", "all"):
        for fmt in ("prometheus", "openmetrics"):
            registry.register(kind, fmt, _renderer(kind, fmt))
    for fmt, name in (("jaeger", "jaeger"), ("otlp", "otlp"), ("otlp", "otlp-json")):
        registry.register("traces", name, _traces(fmt))
