"""Metrics outputs of a run: ``metrics.csv``, a Prometheus exposition file, a Pushgateway push."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..exceptions import ExportError
from ..journal import RunRecords
from ..stats import quantile
from .options import option_text
from .state import STATE, guard, write_run_csv

CSV_COLUMNS = ("ts", "extension_id", "nodeid", "session_id", "kind", "name", "value", "unit",
               "labels")  # fmt: skip
TOP = 5


@dataclass(frozen=True)
class MetricsSettings:
    """What the metrics flags asked for."""

    prometheus_path: Path | None
    prometheus_format: str
    pushgateway: str | None


METRICS_SETTINGS = pytest.StashKey[MetricsSettings]()


def pytest_configure(config: pytest.Config) -> None:
    """Check the metrics flags: a bad format or Pushgateway URL is a usage error."""
    fmt = option_text(config, "prometheus_format") or "text"
    gateway = option_text(config, "pushgateway") or None
    if fmt != "text" or gateway is not None:
        # prometheus_client is imported only by a run that exports to it.
        from ..exporters import prometheus

        if fmt not in prometheus.FORMATS:
            msg = (
                f"kari-debug: --kari-prometheus-format {fmt!r} is not known;"
                f" accepted: {', '.join(prometheus.FORMATS)}"
            )
            raise pytest.UsageError(msg)
        if gateway is not None:
            try:
                gateway = prometheus.gateway_address(gateway)
            except ExportError as exc:
                raise pytest.UsageError(f"kari-debug: --kari-pushgateway: {exc}") from None
    path = option_text(config, "prometheus")
    config.stash[METRICS_SETTINGS] = MetricsSettings(Path(path) if path else None, fmt, gateway)


def _metrics_of(test: dict[str, Any]) -> dict[str, Any]:
    data = (test.get("collected_data") or {}).get("metrics")
    return data if isinstance(data, dict) else {}


def csv_rows(tests: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows of ``metrics.csv``: recorded points, then per-test resource and memory figures."""
    for test in tests:
        metrics = _metrics_of(test)
        if not metrics:
            continue
        base = {
            "extension_id": test.get("extension_id"),
            "nodeid": test.get("nodeid"),
            "session_id": test.get("session_id"),
        }
        for point in metrics.get("records") or ():
            yield {**base, "kind": "metric", **point, "labels": point.get("labels") or {}}
        ended = test.get("finished_at")
        for kind in ("resources", "memory"):
            for name, value in (metrics.get(kind) or {}).items():
                if _is_number(value):
                    yield {**base, "ts": ended, "kind": kind, "name": name,
                           "value": value, "unit": _unit(name), "labels": {}}  # fmt: skip
        for point in metrics.get("samples") or ():
            yield from _sample_rows(base, point)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sample_rows(base: dict[str, Any], point: Any) -> list[dict[str, Any]]:
    """One row per figure of a sampler point (resources, then custom collectors by name)."""
    if not isinstance(point, dict):
        return []
    figures = [(k, v, _unit(k)) for k, v in point.items() if k != "ts" and _is_number(v)]
    custom = point.get("custom")
    if isinstance(custom, dict):
        figures += [(k, v, "") for k, v in custom.items() if _is_number(v)]
    return [
        {
            **base,
            "ts": point.get("ts"),
            "kind": "sample",
            "name": name,
            "value": value,
            "unit": unit,
            "labels": {},
        }
        for name, value, unit in figures
    ]


def _unit(name: str) -> str:
    for suffix, unit in (("_bytes", "bytes"), ("_mb", "MiB"), ("_ms", "ms"), ("_s", "s")):
        if name.endswith(suffix):
            return unit
    return "count"


def run_summary(tests: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The ``metrics`` section of the run: per extension and per metric name, plus the tops."""
    extensions: dict[str, dict[str, Any]] = {}
    values: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    cpu: list[tuple[float, str]] = []
    peak: list[tuple[float, str]] = []
    allocated: list[tuple[float, str]] = []
    for test in tests:
        metrics = _metrics_of(test)
        if not metrics:
            continue
        nodeid = str(test.get("nodeid"))
        entry = extensions.setdefault(
            str(test.get("extension_id")), {"tests": 0, "points": 0, "dropped": 0}
        )
        entry["tests"] += 1
        entry["points"] += len(metrics.get("records") or ())
        entry["dropped"] += int(metrics.get("dropped") or 0)
        for point in metrics.get("records") or ():
            values.setdefault(point["name"], []).append(float(point["value"]))
            units.setdefault(point["name"], point.get("unit") or "")
        resources = metrics.get("resources") or {}
        if "cpu_ms" in resources:
            cpu.append((float(resources["cpu_ms"]), nodeid))
        if "peak_rss_bytes" in resources:
            peak.append((float(resources["peak_rss_bytes"]), nodeid))
        memory = metrics.get("memory") or {}
        if "allocated_bytes" in memory:
            allocated.append((float(memory["allocated_bytes"]), nodeid))
    names = {}
    for name, found in sorted(values.items()):
        ordered = sorted(found)
        names[name] = {
            "unit": units[name],
            "count": len(ordered),
            "sum": math.fsum(ordered),
            "min": ordered[0],
            "max": ordered[-1],
            "mean": math.fsum(ordered) / len(ordered),
            "p50": quantile(ordered, 0.5),
            "p95": quantile(ordered, 0.95),
        }

    def top(pairs: list[tuple[float, str]], key: str) -> list[dict[str, Any]]:
        return [{"nodeid": n, key: v} for v, n in sorted(pairs, key=lambda p: -p[0])[:TOP]]

    return {
        "extensions": extensions,
        "metrics": names,
        "top_cpu_ms": top(cpu, "cpu_ms"),
        "top_peak_rss_bytes": top(peak, "peak_rss_bytes"),
        "top_allocated_bytes": top(allocated, "allocated_bytes"),
    }


def _summary_line(section: dict[str, Any]) -> str:
    points = sum(e["points"] for e in section["extensions"].values())
    dropped = sum(e["dropped"] for e in section["extensions"].values())
    tests = sum(e["tests"] for e in section["extensions"].values())
    line = f"metrics: {points} point(s) of {len(section['metrics'])} metric(s) in {tests} test(s)"
    if dropped:
        line += f", {dropped} dropped at max_metrics"
    if section["top_peak_rss_bytes"]:
        best = section["top_peak_rss_bytes"][0]
        line += f"; highest peak RSS {best['peak_rss_bytes'] / 2**20:.1f} MiB ({best['nodeid']})"
    if section["top_cpu_ms"]:
        best = section["top_cpu_ms"][0]
        line += f"; most CPU {best['cpu_ms']:.1f} ms ({best['nodeid']})"
    return line


def pytest_kari_debug_run_finished(
    config: pytest.Config,
    run: dict[str, Any],
    tests: RunRecords,
    sections: dict[str, Any],
) -> None:
    """Write metrics.csv, the Prometheus file and the push; add the ``metrics`` section."""
    state = config.stash[STATE]
    settings = config.stash.get(METRICS_SETTINGS, None)
    with guard(config, "summarising metrics"):
        section = run_summary(tests)
        sections["metrics"] = section
        if section["extensions"]:
            state.summary_lines.append(_summary_line(section))
    if state.settings.csv_dir is not None:
        with guard(config, "writing metrics.csv"):
            write_run_csv(state, "metrics.csv", csv_rows(tests), CSV_COLUMNS, output="metrics csv")
    if settings is None:
        return
    if settings.prometheus_path is None and settings.pushgateway is None:
        return
    from ..exporters import prometheus

    if settings.prometheus_path is not None:
        with guard(config, "writing --kari-prometheus"):
            path = settings.prometheus_path
            try:
                prometheus.write_prometheus(path, tests, settings.prometheus_format)
                state.outputs["prometheus"] = str(path)
            except Exception as exc:
                state.output_failed(
                    "prometheus", path, f"{type(exc).__name__}: {exc}", shown="--kari-prometheus"
                )
    if settings.pushgateway is not None:
        with guard(config, "pushing to --kari-pushgateway"):
            try:
                pushed = prometheus.push(settings.pushgateway, tests)
            except ExportError as exc:
                state.output_failed("pushgateway", None, str(exc), shown="--kari-pushgateway")
            else:
                state.outputs["pushgateway"] = (
                    f"{len(pushed)} group(s) pushed, job {prometheus.JOB}, extension(s)"
                    f" {', '.join(pushed)}"
                )
