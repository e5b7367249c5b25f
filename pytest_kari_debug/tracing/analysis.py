"""Analysis of a trace's spans: critical path, self time, concurrency."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


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
