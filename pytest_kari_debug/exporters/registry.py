"""The renderers components export through (``logger.export()``, ``metrics.export()``...).

Components sit below the exporters and may not import them: :func:`install` hands the
renderers down into :data:`pytest_kari_debug.component.EXPORTS` instead (done when this package
is imported, which every debug manager does). Each renderer turns the component's plain data
(the fields of an :class:`~.bundle.ExportBundle`, plus ``trace_id`` for traces) into the same
text the REST API and ``debug_manager.export()`` produce. The formats are imported by the
first export, not by a manager's start (every ``--kari-debug`` run starts one).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from ..component import EXPORTS, ExportRegistry

if TYPE_CHECKING:
    from .bundle import ExportBundle
    from .formats import Exporter


@functools.cache
def _fields() -> frozenset[str]:
    from .bundle import ExportBundle

    return frozenset(f.name for f in fields(ExportBundle))


def _bundle(data: Mapping[str, Any]) -> ExportBundle:
    from .bundle import ExportBundle

    names = _fields()
    return ExportBundle(**{k: v for k, v in data.items() if k in names})


def _exporter(fmt: str) -> Exporter:
    from .formats import exporter_for

    return exporter_for(fmt)


def _renderer(kind: str, fmt: str) -> Any:
    def render(data: Mapping[str, Any]) -> str:
        return _exporter(fmt).render(_bundle(data), kind).decode("utf-8")

    return render


def _traces(fmt: str) -> Any:
    def render(data: Mapping[str, Any]) -> str:
        trace_id = data.get("trace_id")
        found = str(trace_id) if trace_id else None
        return _exporter(fmt).render(_bundle(data), "traces", trace_id=found).decode("utf-8")

    return render


def _jsonl(data: Mapping[str, Any]) -> str:
    from .logs_export import logs_to_jsonl

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
