"""Helpers of the dashboard and API tests: a store filled by a real run, live data, SSE parsing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager

REPO = Path(__file__).resolve().parent.parent
EXT = "store-ext"

#: Tests of extension "store-ext": logs at every level, metrics, errors and alerts.
RUN = """
import asyncio

import pytest

pytestmark = pytest.mark.kari_extension("store-ext")


def test_api(kari_logger, kari_metrics, kari_errors):
    kari_logger.info("extension started", version="1.0.0")
    kari_logger.debug("cache warm", entries=3)
    with kari_logger.correlation_context("req-123"):
        kari_logger.error("API request failed", status_code=500)
    for value in (100.0, 200.0, 300.0):
        kari_metrics.record_metric("response_time", value, "ms")
    kari_errors.record_error("ValueError", "invalid input 42", context={"operation": "parse"})


def test_slow(kari_logger, kari_errors, kari_alerts):
    kari_logger.warning("slow dependency", dependency="db")
    kari_logger.critical("=cmd|' /C calc'!A0 formula text")
    kari_errors.record_error("ValueError", "invalid input 7")
    kari_errors.record_error("TimeoutError", "upstream timed out after 30s")
    asyncio.run(
        kari_alerts.create_alert(
            alert_type="high_cpu", severity="medium", title="High CPU Usage",
            message="CPU usage is 85%", metric_name="cpu_percent", current_value=85.0,
            threshold_value=80.0,
        )
    )
    kari_alerts.raise_alert("queue_depth", "low", "Queue growing", "depth 12", "queue_size", 12.0)
"""


def record_store(folder: Path, source: str = RUN, *options: str) -> Path:
    """Run the RUN tests (or *source*) with ``pytest --kari-debug`` (and *options*) in
    *folder*; return the store's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_run.py").write_text(source)
    (folder / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kari-debug",
         *options, "test_run.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    store = folder / ".kari-debug" / "kari.db"
    assert store.exists(), done.stdout
    return store


#: A sampler fast enough to read CPU and RSS a few times during a 0.3 s test.
FAST_SAMPLER = ("--kari-metrics-interval=0.05",)


def copy_store(recorded: Path, folder: Path) -> Path:
    """A private copy of the SQLite store *recorded* (with its WAL files) in *folder*."""
    for suffix in ("", "-wal", "-shm"):
        source = recorded.with_name(recorded.name + suffix)
        if source.exists():
            shutil.copy(source, folder / ("kari.db" + suffix))
    return folder / "kari.db"


def record_two_runs(folder: Path) -> Path:
    """Two real runs of RUN into one store (runs #1 and #2); the second logs one more line
    ("second run only"), and test_api sleeps 0.3 s under a fast sampler in both."""
    started = 'kari_logger.info("extension started", version="1.0.0")'
    assert started in RUN
    sampled = RUN.replace("import asyncio", "import asyncio\nimport time").replace(
        started, started + "\n    time.sleep(0.3)"
    )
    record_store(folder, sampled, *FAST_SAMPLER)
    # The dashboard draws a pause of 2 s or more between samples as a gap: make the pause
    # between the runs one, however fast the machine starts the second run.
    time.sleep(2.5)
    second = sampled.replace(started, started + '\n    kari_logger.info("second run only")')
    return record_store(folder, second, *FAST_SAMPLER)


def live_manager(extension_id: str = "live-ext", **config: object) -> ExtensionDebugManager:
    """A started manager holding logs, a metric, an error and an active alert."""
    configuration = DebugConfiguration(**{"metrics_interval": 0.2, **config})  # type: ignore[arg-type]
    manager = ExtensionDebugManager(extension_id, "Live Extension", configuration)
    manager.start()
    logger = manager.get_logger()
    logger.info("live started", port=8080)
    logger.warning("disk almost full", percent=91)
    try:
        raise ConnectionError("database refused the connection")
    except ConnectionError:
        logger.exception("query failed")
    manager.get_metrics_collector().record_metric("queue_depth", 4.0, "count")
    manager.get_metrics_collector().record_metric("queue_depth", 6.0, "count")
    manager.get_alert_manager().raise_alert(
        "high_cpu", "high", "CPU high", "cpu at 90%", "cpu_percent", 90.0, 80.0
    )
    return manager


def framework_client(app: object, base_url: str = "http://127.0.0.1:8765") -> Any:
    """The framework's test client (starlette's), imported without its httpx notice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette asks for httpx2; httpx works the same
        from fastapi.testclient import TestClient
    return TestClient(app, base_url=base_url)  # type: ignore[arg-type]


@dataclass
class Event:
    """One server-sent event as a browser's EventSource sees it."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    comments: list[str] = field(default_factory=list)


def parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    """Events from text lines (without their line ends), per the HTML SSE parsing rules."""
    data: list[str] = []
    event, event_id, comments = "", None, []
    for line in lines:
        if line == "":
            if data:
                yield Event(event or "message", "\n".join(data), event_id, comments)
            elif comments:
                yield Event("comment", "", event_id, comments)
            data, event, comments = [], "", []
            continue
        if line.startswith(":"):
            comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\x00" not in value:
            event_id = value


def split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Text lines of a byte stream split at CRLF, CR or LF (as the SSE format says)."""
    pending = ""
    for chunk in chunks:
        pending += chunk.decode("utf-8")
        while True:
            ends = [i for i in (pending.find("\r"), pending.find("\n")) if i >= 0]
            if not ends:
                break
            cut = min(ends)
            if pending[cut] == "\r" and cut == len(pending) - 1:
                break  # a CR at the end may be the first half of a CRLF
            width = 2 if pending[cut : cut + 2] == "\r\n" else 1
            line, pending = pending[:cut], pending[cut + width :]
            yield line
