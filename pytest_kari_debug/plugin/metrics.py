"""Metrics outputs of a run: ``metrics.csv``, a Prometheus exposition file, a Pushgateway push."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..exceptions import ExportError
from ..journal import RunRecords
from ..model import Kind, component_of
from ..sharedmethods import dataclass
from ..summaries import RunSections, metrics_line
from .options import option_text
from .state import STATE, guard, write_run_csv

CSV_COLUMNS = ("ts", "extension_id", "nodeid", "session_id", "kind", "name", "value", "unit",
               "labels")  # fmt: skip


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


def csv_rows(tests: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows of ``metrics.csv``: recorded points, then per-test resource and memory figures."""
    for test in tests:
        metrics = component_of(test, Kind.METRICS)
        if metrics is None:
            continue
        base = {
            "extension_id": test.get("extension_id"),
            "nodeid": test.get("nodeid"),
            "session_id": test.get("session_id"),
        }
        for point in metrics.records:
            yield {**base, "kind": "metric", **point, "labels": point.get("labels") or {}}
        ended = test.get("finished_at")
        for kind in ("resources", "memory"):
            for name, value in (metrics.details.get(kind) or {}).items():
                if _is_number(value):
                    yield {**base, "ts": ended, "kind": kind, "name": name,
                           "value": value, "unit": _unit(name), "labels": {}}  # fmt: skip
        for point in metrics.details.get("samples") or ():
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


def pytest_kari_debug_run_finished(
    config: pytest.Config, tests: RunRecords, sections: dict[str, Any], built: RunSections
) -> None:
    """Write metrics.csv, the Prometheus file and the push; add the ``metrics`` section."""
    state = config.stash[STATE]
    settings = config.stash.get(METRICS_SETTINGS, None)
    with guard(config, "summarising metrics"):
        section = built.metrics
        sections["metrics"] = section
        line = metrics_line(section)
        if line is not None:
            state.summary_lines.append(line)
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
