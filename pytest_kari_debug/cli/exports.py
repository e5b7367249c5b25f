"""``kari-debug export``: what the store recorded, in any format of the package's exporters.

What is in scope is read through a :class:`~pytest_kari_debug.sources.StoreSource` into an
:class:`~pytest_kari_debug.exporters.bundle.ExportBundle`; the format renders it through
:func:`~pytest_kari_debug.exporters.formats.exporter_for`, as the REST API and
``debug_manager.export()`` render theirs: the same names, shapes and CSV layout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..exporters.bundle import ExportBundle
from ..exporters.formats import TRACE_FORMATS, exporter_for
from ..exporters.json_export import build_run_document
from ..model import TestRecord, dropped_of
from ..sources import StoreSource
from ..version import plugin_version

RECORD_KINDS = ("log", "metric", "error", "span", "alert", "profile")
#: What each format reads: run documents ("all", "newest", "none"), record kinds, and
#: whether only the records no test owns are needed (the run documents hold the rest).
NEEDS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "json": ("all", RECORD_KINDS, True),
    "csv": ("none", RECORD_KINDS, False),
    "prometheus": ("newest", ("metric",), False),
    "jaeger": ("none", ("span",), False),
    "otlp": ("none", ("span",), False),
}


def gather(source: StoreSource, fmt: str, kinds: Sequence[str] = ()) -> ExportBundle:
    """What format *fmt* exports of *source*'s scope (*kinds*: only these record kinds).

    Every run in scope (``json``) or the newest (``prometheus``: its tests' families), and
    the records; ``prometheus`` also gets one part per extension in scope (its records by
    kind, log levels, error groups, alerts with their statuses, newest metric values).
    """
    documents, needed, standalone = NEEDS[fmt]
    records = {kind: source.every_record(kind, standalone=standalone) for kind in kinds or needed}
    runs = _runs(source, documents)
    bundle = ExportBundle(
        extension_id=source.extension_id or "",
        source="store",
        plugin_version=plugin_version(),
        logs=records.get("log", []),
        metrics={"records": records.get("metric", [])},
        errors=records.get("error", []),
        alerts=records.get("alert", []),
        spans=records.get("span", []),
        profiles=records.get("profile", []),
        runs=[_run_document(source, run) for run in runs],
    )
    if bundle.runs:
        bundle.tests = bundle.runs[0]["tests"]
    if fmt == "prometheus":
        bundle.parts = _parts(source, bundle)
    return bundle


def render(bundle: ExportBundle, fmt: str) -> str:
    """*bundle* as *fmt* text: every record kind, or the traces of a trace format."""
    kind = "traces" if fmt in TRACE_FORMATS else "all"
    return exporter_for(fmt).render(bundle, kind).decode("utf-8")


def record_count(bundle: ExportBundle) -> int:
    """Records exported: those of the bundle and those its run documents' tests hold."""
    count = sum(
        len(found)
        for found in (bundle.logs, bundle.metrics.get("records") or (), bundle.errors,
                      bundle.alerts, bundle.spans, bundle.profiles)
    )  # fmt: skip
    tests = (TestRecord.from_dict(test) for run in bundle.runs for test in run["tests"])
    return count + sum(len(part.records) for test in tests for part in test.collected.values())


def _runs(source: StoreSource, documents: str) -> list[dict[str, Any]]:
    if documents == "none":
        return []
    if source.run is not None:
        found = source.find_run(str(source.run))
        return [found] if found is not None else []
    return source.runs(limit=1 if documents == "newest" else 1_000_000)


def _run_document(source: StoreSource, run: Mapping[str, Any]) -> dict[str, Any]:
    """The run document (``--kari-json`` shape) of a stored run, with the scope's tests."""
    data = run.get("data") or {}
    meta = {
        k: v
        for k, v in run.items()
        if k not in ("data", "outcomes", "extensions") and not k.startswith("tests_")
    }
    return build_run_document(
        meta,
        source.run_tests(int(run["id"])),
        diagnostics=data.get("diagnostics") or [],
        sections=data.get("sections") or {},
    )


def _parts(source: StoreSource, bundle: ExportBundle) -> list[ExportBundle]:
    """One bundle per extension in scope, with what its Prometheus families show."""
    tests = [TestRecord.from_dict(test) for test in bundle.tests]
    names = [source.extension_id] if source.extension_id else source.extensions()
    parts = []
    for name in names:
        part = source.of(name)
        counts = part.record_counts()
        if not counts and not any(test.extension_id == name for test in tests):
            continue
        points = [p for p in bundle.metrics["records"] if p.get("extension_id") in (None, name)]
        parts.append(
            ExportBundle(
                extension_id=str(name),
                source="store",
                overview={
                    "counts": counts,
                    "dropped": _dropped(t for t in tests if t.extension_id == name),
                    "log_levels": part.log_levels(),
                },
                error_groups=part.error_groups(),
                alerts=part.alerts(),
                latest_metrics=_latest(points),
            )
        )
    return parts


def _dropped(tests: Iterable[TestRecord]) -> dict[str, int]:
    """Records the tests' components dropped at their limits, by component (0 for each one
    they have data of, as a live manager counts)."""
    dropped: Counter[str] = Counter()
    for test in tests:
        dropped.update(dropped_of(test))
    return dict(dropped)


def _latest(points: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest numeric value of each metric of *points* (oldest first)."""
    latest: dict[str, dict[str, Any]] = {}
    for point in points:
        value = point.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            latest[str(point.get("name"))] = {
                "ts": point.get("ts"), "value": value, "unit": point.get("unit"),
            }  # fmt: skip
    return latest
