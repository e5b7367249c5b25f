"""Every code snippet of the seed README runs as written, with the import path rewritten.

The seed is kept verbatim in ``docs/seed-README.md``. Its Python snippets refer to names of the
user's own module (``my_queue``, ``risky_operation``, ``data``...): the prelude below defines
them, as the module around a snippet would, and nothing in a snippet is changed except
``src.core.extensions.debugging`` -> ``pytest_kari_debug``.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.storage import Store

SEED = Path(__file__).resolve().parent.parent / "docs" / "seed-README.md"
IMPORT_PATH = "src.core.extensions.debugging"

#: Snippets that cannot run yet: heading -> reason. Remove an entry when its capability lands.
NOT_YET: dict[str, str] = {}
#: Snippets that can never run as written, and why.
NOT_EXECUTABLE: dict[str, str] = {
    "Integration with Extension System": (
        "imports src.core.extensions.base (the Kari host, not this package) and decorates a"
        " method with @self.profiler at class scope, where self does not exist"
    ),
    "Testing": "names the seed's original test file; this project's test command is in README",
}


def _snippets() -> list[tuple[str, str, str]]:
    """(heading, language, code) of every fenced block of the seed, in order."""
    text = SEED.read_text(encoding="utf-8")
    found, heading = [], ""
    for match in re.finditer(r"^(#{2,4}) ([^\n]+)$|^```(\w+)\n(.*?)^```$", text, re.M | re.S):
        if match.group(1):
            heading = match.group(2).strip()
        else:
            found.append((heading, match.group(3), match.group(4)))
    return found


SNIPPETS = _snippets()


def _prelude() -> dict[str, Any]:
    """Names the seed's snippets use without defining: the user's own module."""
    import traceback
    from datetime import datetime, timedelta

    from pytest_kari_debug import AlertSeverity

    def risky_operation() -> None:
        raise RuntimeError("risky operation failed for id 42")

    return {
        "__name__": "seed_snippet",
        "traceback": traceback,
        "datetime": datetime,
        "timedelta": timedelta,
        "AlertSeverity": AlertSeverity,
        "my_queue": [1, 2, 3],
        "risky_operation": risky_operation,
        "process_large_dataset": lambda: sum(i * i for i in range(20_000)),
        "validate_user_input": lambda data: isinstance(data, dict),
        "process_request": lambda data: {"ok": True, **data},
        "data": {"query": "weather in Oslo"},
        "user_id": "user-7",
        "requests": None,
    }


def _run(code: str, namespace: dict[str, Any]) -> None:
    code = code.replace(IMPORT_PATH, "pytest_kari_debug")
    compiled = compile(code, "<seed>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    async def main() -> None:
        result = eval(compiled, namespace)
        if inspect.iscoroutine(result):
            await result

    asyncio.run(main())


def _check_logging(ns: dict[str, Any]) -> None:
    messages = [r.message for r in ns["logger"].get_logs()]
    assert "Processing user request" in messages
    assert "Extension started" in messages
    tagged = next(r for r in ns["logger"].get_logs() if r.message == "Processing user request")
    assert (tagged.correlation_id, tagged.user_id, tagged.tenant_id) == (
        "req-123",
        "user123",
        "tenant456",
    )


def _check_metrics(ns: dict[str, Any]) -> None:
    names = {p.name for p in ns["metrics"].get_metrics()}
    assert {"active_users", "response_time", "cache_hit_rate", "request_time"} <= names


def _check_errors(ns: dict[str, Any]) -> None:
    analysis = ns["analysis"]
    assert analysis.total_errors == 2
    assert analysis.unique_errors == 2
    assert analysis.error_rate > 0
    assert analysis.categories == {"validation": 1, "unknown": 1}
    [exception] = ns["error_tracker"].get_errors(category="unknown")
    assert exception.culprit == "test_seed_snippets in risky_operation"
    assert exception.context == {"operation": "risky_operation"}


def _check_sessions(ns: dict[str, Any]) -> None:
    assert ns["session"].duration_seconds >= 0
    assert set(ns["session"].collected_data) == set(
        ns["debug_manager"].get_debug_summary()["enabled_components"]
    )


def _check_tracing(ns: dict[str, Any]) -> None:
    spans = {s["name"]: s for s in ns["tracer"].get_trace(ns["context"].trace_id)}
    assert set(spans) == {"user_request", "validate_input", "process_request"}
    root_id = spans["user_request"]["span_id"]
    assert spans["validate_input"]["parent_id"] == root_id
    assert spans["process_request"]["tags"] == {"user_id": "user-7"}
    assert callable(ns["call_external_api"])


def _check_debugger(ns: dict[str, Any]) -> None:
    assert ns["health"].overall_status in ("healthy", "degraded", "unhealthy")


def _check_alerting(ns: dict[str, Any]) -> None:
    (alert,) = ns["alert_manager"].get_active_alerts()
    assert (alert.alert_type, alert.severity.value, alert.current_value) == (
        "high_cpu",
        "high",
        85.0,
    )
    channel = ns["alert_manager"].channels["slack"]
    assert channel is ns["webhook_channel"]
    assert "hooks.slack.com/services" not in repr(channel)


def _check_alerting_configuration(ns: dict[str, Any]) -> None:
    from pytest_kari_debug.alerting import AlertSeverity

    config = ns["alerting_config"]
    assert config.severity_filters == {"webhook": [AlertSeverity.HIGH, AlertSeverity.CRITICAL]}
    assert config.notification_channels == ["log", "webhook"]


def _check_profiling(ns: dict[str, Any]) -> None:
    session = ns["session"]
    assert session.duration_seconds > 0
    assert session.profile_memory
    assert session.enable_cprofile
    assert "peak_bytes" in session.memory
    timed = {b["name"] for b in ns["bottlenecks"] if b["kind"] == "timed"}
    assert "data_processing" in timed
    assert callable(ns["expensive_operation"])


def _check_dashboard(ns: dict[str, Any]) -> None:
    data = ns["dashboard_data"]
    assert {"overview", "health", "metrics", "logs", "errors", "alerts", "sessions"} <= set(data)
    assert data["overview"]["extension_id"] == ns["debug_manager"].extension_id
    realtime = ns["realtime_metrics"]
    assert list(realtime) == ["cpu_percent", "memory_mb", "response_time"]
    assert realtime["memory_mb"]["value"] > 0
    assert realtime["response_time"] is None  # never recorded in this snippet
    assert isinstance(ns["log_results"], list)
    assert all(r["level"] in ("ERROR", "CRITICAL") for r in ns["log_results"])
    ns["debug_manager"].get_logger().error("Upstream error: timeout")
    ns["debug_manager"].get_logger().warning("an error that is only a warning")
    again = ns["dashboard"].search_logs(query="error", level="error")
    assert [r["message"] for r in again] == ["Upstream error: timeout"]


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "Dashboard Integration": _check_dashboard,
    "Performance Profiling": _check_profiling,
    "Logging": _check_logging,
    "Metrics Collection": _check_metrics,
    "Error Tracking": _check_errors,
    "Distributed Tracing": _check_tracing,
    "Debug Sessions": _check_sessions,
    "Debug the Debugger": _check_debugger,
    "Alerting": _check_alerting,
    "Alerting Configuration": _check_alerting_configuration,
}


def _cases() -> list[Any]:
    cases = []
    for index, (heading, language, code) in enumerate(SNIPPETS):
        marks = []
        if heading in NOT_EXECUTABLE:
            marks.append(
                pytest.mark.skip(reason=f"not executable as written: {NOT_EXECUTABLE[heading]}")
            )
        elif heading in NOT_YET:
            marks.append(pytest.mark.skip(reason=NOT_YET[heading]))
        cases.append(
            pytest.param(heading, language, code, id=f"{index:02d}-{heading}", marks=marks)
        )
    return cases


def test_seed_has_every_section() -> None:
    """The seed copy holds the snippets this test expects (a truncated copy fails)."""
    headings = [heading for heading, _, _ in SNIPPETS]
    assert len(SNIPPETS) == 15
    assert "Basic Setup" in headings
    assert "Debug the Debugger" in headings


def _record_the_alert_the_seed_resolves(folder: Path) -> None:
    """Store alert ``alert-123`` of my-ext: `alerts resolve` of an id never recorded fails."""
    manager = ExtensionDebugManager("my-ext")
    alert = manager.get_alert_manager().raise_alert(
        "high_cpu", "medium", "High CPU Usage", "CPU usage is 85%", "cpu_percent", 85.0, 80.0
    )
    assert alert is not None
    store = Store(folder / ".kari-debug" / "kari.db")
    store.write_records("alert", "my-ext", [{**alert.to_dict(), "alert_id": "alert-123"}])
    store.close()
    manager.stop()


def _restore_sigint() -> None:
    """In the child: SIGINT raises KeyboardInterrupt as on a terminal (a suite started in the
    background ignores SIGINT, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    with stream:
        for line in stream:
            lines.put(line)


def _follow_until_ctrl_c(command: list[str], cwd: Path) -> None:
    """Run a --follow command, let it follow for a moment, press Ctrl-C: it ends cleanly."""
    follow = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_restore_sigint,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    pumps = [
        threading.Thread(target=_pump, args=(stream, lines), daemon=True)
        for stream in (follow.stdout, follow.stderr)
        if stream is not None
    ]
    for pump in pumps:
        pump.start()
    try:
        # Ctrl-C once it runs: its first line (a record, or that it waits for them) says so.
        lines.get(timeout=60)
        time.sleep(0.5)
        assert follow.poll() is None, ("--follow ended on its own", follow.returncode)
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=30)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
        for pump in pumps:
            pump.join(timeout=10)
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert follow.returncode in (0, 130), (command, rest)
    assert not any("Traceback" in line for line in rest)


@pytest.mark.parametrize(("heading", "language", "code"), _cases())
def test_seed_snippet_runs(heading: str, language: str, code: str, tmp_path: Path) -> None:
    """The snippet runs as written and does what the seed says it does."""
    if language == "bash":
        if heading == "CLI Usage":
            _record_the_alert_the_seed_resolves(tmp_path)
        started: list[list[str]] = []
        try:
            for line in code.splitlines():
                if line.strip() and not line.startswith("#"):
                    command = shlex.split(line.replace(IMPORT_PATH, "pytest_kari_debug"))
                    command[0] = sys.executable if command[0] == "python" else command[0]
                    if command[-1] == "start":  # a background manager: stopped at the end
                        started.append([*command[:-1], "stop"])
                    if "--follow" in command:  # runs until Ctrl-C, as `tail -f` does
                        _follow_until_ctrl_c(command, tmp_path)
                        continue
                    done = subprocess.run(
                        command, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                        check=False,
                    )  # fmt: skip
                    assert done.returncode == 0, (line, done.stdout, done.stderr)
        finally:
            for command in started:
                subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=60, check=False)
        if heading == "CLI Usage":
            store = Store(tmp_path / ".kari-debug" / "kari.db", create=False)
            resolved = store.resolutions("alert", extension_id="my-ext")
            store.close()
            assert "Fixed by restart" in repr(resolved)
        return
    namespace = _prelude()
    if heading != "Basic Setup":
        _run(SNIPPETS[0][2], namespace)
    _run(code, namespace)
    if heading in CHECKS:
        CHECKS[heading](namespace)
    if "debug_manager" in namespace:
        namespace["debug_manager"].stop()
