"""Tracing in the plugin: a trace per test, parent context from CI, Jaeger and OTLP outputs."""

from __future__ import annotations

import os
import platform
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..exceptions import ExportError
from ..journal import RunRecords
from ..model import Kind, records_of
from ..sharedmethods import dataclass
from ..summaries import RunSections, tracing_line, tracing_section
from .options import option_text
from .state import STATE, guard, register_once

if TYPE_CHECKING:
    from ..exporters.jaeger import SpanBatch

# The Jaeger and OTLP writers are imported by a run that asks for one of those outputs.


@dataclass
class TracingSettings:
    """What the tracing flags asked for."""

    jaeger: Path | None = None
    otlp_json: Path | None = None
    otlp_endpoint: str | None = None
    otlp_timeout: float = 10.0
    parent: str | None = None
    parent_source: str = ""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    provider_set: bool = False
    capture_provider: Any = None
    #: The global provider this run set (unset again at its end), if it set one.
    own_provider: Any = None


TRACING = pytest.StashKey[TracingSettings]()
FAILED_OUTCOMES = frozenset({"failed", "error"})


def _read_settings(config: pytest.Config) -> TracingSettings:
    settings = TracingSettings()
    jaeger = option_text(config, "jaeger")
    otlp_json = option_text(config, "otlp_json")
    endpoint = option_text(config, "otlp_endpoint")
    timeout = option_text(config, "otlp_timeout")
    settings.jaeger = Path(jaeger) if jaeger else None
    settings.otlp_json = Path(otlp_json) if otlp_json else None
    if endpoint:
        from ..exporters.otlp import check_endpoint, require_otlp_exporter

        try:
            settings.otlp_endpoint = check_endpoint(endpoint)
            require_otlp_exporter()
        except ExportError as exc:
            raise pytest.UsageError(f"kari-debug: --kari-otlp-endpoint: {exc}") from None
    if timeout:
        try:
            settings.otlp_timeout = float(timeout)
        except ValueError:
            settings.otlp_timeout = -1.0
        if not 0.0 < settings.otlp_timeout < 3600.0:
            msg = f"kari-debug: --kari-otlp-timeout {timeout!r} is not a number of seconds > 0"
            raise pytest.UsageError(msg)
    # OpenTelemetry comes with propagation and capture: only a run that traces or is given a
    # parent context imports them.
    parent = option_text(config, "trace_parent")
    if parent:
        from ..tracing import parse_traceparent

        try:
            settings.parent = parse_traceparent(parent).traceparent
        except ValueError as exc:
            raise pytest.UsageError(f"kari-debug: --kari-trace-parent: {exc}") from None
        settings.parent_source = "--kari-trace-parent"
    elif os.environ.get("TRACEPARENT"):
        from ..tracing import extract

        found = extract(os.environ)
        if found is None:
            settings.parent_source = "invalid TRACEPARENT"
        else:
            settings.parent = found.traceparent
            settings.parent_source = "TRACEPARENT"
    workerinput = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict):  # an xdist worker: the controller's context wins
        settings.run_id = str(workerinput.get("kari_trace_run_id") or settings.run_id)
        settings.parent = workerinput.get("kari_trace_parent") or settings.parent
    return settings


def pytest_configure(config: pytest.Config) -> None:
    """Read the tracing flags; an export flag switches tracing on."""
    state = config.stash.get(STATE, None)
    if state is None:
        return
    settings = _read_settings(config)
    config.stash[TRACING] = settings
    if settings.parent_source == "invalid TRACEPARENT":
        state.diagnose(
            f"TRACEPARENT {os.environ.get('TRACEPARENT', '')!r} is not a W3C traceparent;"
            " test traces start without a parent"
        )
    wants_output = settings.jaeger or settings.otlp_json or settings.otlp_endpoint
    if wants_output and not state.settings.trace:
        plugin = state.settings
        plugin.trace = True
        plugin.enabled = True
        plugin.configuration = plugin.configuration.replace(tracing_enabled=True)
    if state.settings.trace or state.settings.configuration.tracing_enabled:
        # Only a run that traces pays for the per-test hooks.
        register_once(config, "kari-debug-traced-tests", TracedTests)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: send the run id and the parent context to each worker."""
    settings = node.config.stash.get(TRACING, None)
    if settings is not None:
        node.workerinput["kari_trace_run_id"] = settings.run_id
        node.workerinput["kari_trace_parent"] = settings.parent or ""


def _tracing_on(config: pytest.Config) -> bool:
    state = config.stash.get(STATE, None)
    return bool(state is not None and state.settings.trace)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Make OpenTelemetry API spans of the code under test recordable, and capture them.

    A TracerProvider the user set (in conftest or a plugin, before the run) is kept and our
    span processor is added to it for the run; with none set, an SDK provider is set (see
    :func:`~pytest_kari_debug.tracing.ensure_tracer_provider`).
    """
    config = session.config
    settings = config.stash.get(TRACING, None)
    if settings is None or not _tracing_on(config):
        return
    with guard(config, "setting up OpenTelemetry capture"):
        from opentelemetry import trace

        from ..tracing import ensure_tracer_provider, install_opentelemetry_capture

        settings.provider_set = ensure_tracer_provider()
        provider = trace.get_tracer_provider()
        if settings.provider_set:
            settings.own_provider = provider
        if install_opentelemetry_capture(provider):
            settings.capture_provider = provider
        elif not isinstance(provider, trace.ProxyTracerProvider):
            config.stash[STATE].diagnose(
                f"the OpenTelemetry TracerProvider {type(provider).__name__} takes no span"
                " processors: spans made through the OpenTelemetry API are not captured"
            )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the span processor added for the run, and the global provider it set."""
    settings = config.stash.get(TRACING, None)
    if settings is not None and settings.capture_provider is not None:
        with guard(config, "removing OpenTelemetry capture"):
            from ..tracing import uninstall_opentelemetry_capture

            uninstall_opentelemetry_capture(settings.capture_provider)
            settings.capture_provider = None
    if settings is not None and settings.own_provider is not None:
        with guard(config, "unsetting the OpenTelemetry TracerProvider the run set"):
            from ..tracing import release_tracer_provider

            release_tracer_provider(settings.own_provider)
            settings.own_provider = None


class TracedTests:
    """The per-test hooks of a run that traces (registered at configure)."""

    def pytest_kari_debug_session_options(self, item: pytest.Item) -> dict[str, Any] | None:
        """The test's trace: its parent context and the tags of its root span."""
        config = item.config
        settings = config.stash.get(TRACING, None)
        if settings is None or not _tracing_on(config):
            return None
        tags: dict[str, Any] = {
            "test.nodeid": item.nodeid,
            "test.name": item.name,
            "code.filepath": str(item.path),
            "kari.run.id": settings.run_id,
        }
        worker = config.stash[STATE].worker_id
        if worker:
            tags["kari.worker"] = worker
        options: dict[str, Any] = {"trace_tags": tags}
        if settings.parent:
            options["trace_parent"] = settings.parent
        return options

    def pytest_kari_debug_test_record(self, item: pytest.Item, record: dict[str, Any]) -> None:
        """Put the outcome on the test's root span; note the trace under ``extra["tracing"]``."""
        with guard(item.config, "completing the test's root span"):
            data = (record.get("collected_data") or {}).get("tracing")
            if not isinstance(data, dict) or data.get("trace_id") is None:
                return
            root_id = data.get("root_span_id")
            root = next((s for s in data.get("records") or () if s.get("span_id") == root_id), None)
            outcome = record.get("outcome")
            if root is not None:
                tags = root.setdefault("tags", {})
                tags["test.outcome"] = outcome
                tags["kari.extension.id"] = record.get("extension_id")
                if outcome in FAILED_OUTCOMES and root.get("status") != "error":
                    root["status"] = "error"
                    root["status_message"] = f"test {outcome}" + _reason(record.get("longrepr"))
                    tags["error"] = True
            record.setdefault("extra", {})["tracing"] = {
                "trace_id": data.get("trace_id"),
                "root_span_id": root_id,
                "sampled": data.get("sampled"),
                "spans": len(data.get("records") or ()),
                "dropped": data.get("dropped", 0),
            }


def _reason(longrepr: str | None) -> str:
    """The first error line of a failure report (pytest's ``E`` lines), or its last line."""
    lines = (longrepr or "").strip().splitlines()
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    text = errors[0] if errors else (lines[-1].strip() if lines else "")
    return f": {text[:500]}" if text else ""


def _iter_spans(
    tests: Iterable[dict[str, Any]],
) -> Iterator[tuple[dict[str, Any], Mapping[str, Any]]]:
    for test in tests:
        for span in records_of(test, Kind.TRACING):
            yield test, span


def span_batches(tests: Iterable[dict[str, Any]], run_id: str) -> list[SpanBatch]:
    """The run's spans grouped by extension and worker (a Jaeger process / OTLP resource)."""
    from ..exporters.jaeger import SpanBatch

    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for test, span in _iter_spans(tests):
        key = (str(test.get("extension_id") or "unknown"), str(test.get("worker") or ""))
        groups.setdefault(key, []).append(span)
    host = socket.gethostname()
    batches = []
    for (extension_id, worker), spans in sorted(groups.items()):
        tags: dict[str, Any] = {
            "host.name": host,
            "process.runtime.version": platform.python_version(),
            "kari.run.id": run_id,
            "kari.extension.id": extension_id,
        }
        if worker:
            tags["kari.worker"] = worker
        batches.append(SpanBatch(extension_id, spans, tags))
    return batches


def pytest_kari_debug_run_finished(
    config: pytest.Config, tests: RunRecords, sections: dict[str, Any], built: RunSections
) -> None:
    """Write the Jaeger and OTLP outputs, send OTLP, and add the ``tracing`` section."""
    settings = config.stash.get(TRACING, None)
    state = config.stash[STATE]
    if settings is None or not state.settings.trace:
        return
    with guard(config, "summarising traces"):
        threshold = state.settings.configuration.slow_span_ms
        # built in the run's one pass over its tests; read again only if that pass failed
        figures = built.tracing if built.tracing is not None else tracing_section(tests, threshold)
        section: dict[str, Any] = {
            "run_id": settings.run_id,
            "parent": settings.parent,
            **figures,
            "sampling_rate": state.settings.configuration.sampling_rate,
            "opentelemetry_provider_set": settings.provider_set,
            "outputs": {},
        }
        sections["tracing"] = section
        state.summary_lines.append(tracing_line(section))
    if settings.jaeger is None and settings.otlp_json is None and not settings.otlp_endpoint:
        return
    from ..exporters.jaeger import write_jaeger
    from ..exporters.otlp import send_otlp, write_otlp_json

    batches = span_batches(tests, settings.run_id)
    for target, write, label, key, where in (
        (settings.jaeger, write_jaeger, "jaeger", "jaeger", "writing the Jaeger JSON"),
        (
            settings.otlp_json,
            write_otlp_json,
            "otlp-json",
            "otlp_json",
            "writing the OTLP/JSON file",
        ),
    ):
        if target is None:
            continue
        with guard(config, where):
            try:
                path = write(target, batches)
                state.outputs[label] = str(path)
                sections["tracing"]["outputs"][key] = str(path)
            except Exception as exc:
                state.output_failed(
                    label,
                    Path(target),
                    f"{type(exc).__name__}: {exc}",
                    shown=f"--kari-{label}",
                )
    if settings.otlp_endpoint:
        with guard(config, "sending OTLP"):
            try:
                sent = send_otlp(settings.otlp_endpoint, batches, timeout=settings.otlp_timeout)
                state.outputs["otlp"] = f"{sent} spans sent to {settings.otlp_endpoint}"
                sections["tracing"]["outputs"]["otlp_endpoint"] = settings.otlp_endpoint
                sections["tracing"]["outputs"]["otlp_sent"] = sent
            except ExportError as exc:
                state.output_failed("otlp", None, str(exc), shown="--kari-otlp-endpoint")
