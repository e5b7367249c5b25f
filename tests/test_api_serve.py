"""Serving the API: ``pytest --kari-serve`` during a run, ``kari-debug serve`` and ``start``."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pytest_kari_debug.api import PREFIX
from pytest_kari_debug.exceptions import KariDebugWarning
from pytest_kari_debug.storage import Store

DEADLINE_S = 30.0
INNER = """
import json
import urllib.request

import pytest

from pytest_kari_debug.plugin.serve import SERVER_KEY

PREFIX = "/api/extensions/debugging"


@pytest.mark.kari_extension("served-ext")
def test_served_while_running(pytestconfig, kari_logger):
    kari_logger.warning("hello from the running test", step=1)
    server = pytestconfig.stash[SERVER_KEY]
    url = f"{server.url}{PREFIX}/dashboard/served-ext/logs?query=hello"
    with urllib.request.urlopen(url, timeout=10) as response:
        data = json.load(response)
    assert [r["message"] for r in data["records"]] == ["hello from the running test"]
    with urllib.request.urlopen(f"{server.url}{PREFIX}/managers", timeout=10) as response:
        managers = json.load(response)["managers"]
    assert [(m["extension_id"], m["source"]) for m in managers] == [("served-ext", "live")]
    page = urllib.request.urlopen(f"{server.url}/", timeout=10).read().decode()
    assert "kari-debug" in page
"""


def _refused(url: str) -> bool:
    host, port = url.split("//")[1].rstrip("/").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


def test_kari_serve_serves_the_live_run_and_stops_with_it(pytester: pytest.Pytester) -> None:
    """--kari-serve serves the run's live managers while it runs, on 127.0.0.1, then stops."""
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-v", "--kari-debug", "--kari-serve=0", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    line = next(x for x in result.outlines if x.startswith("kari-debug dashboard: "))
    url = line.split(": ", 1)[1].rstrip("/")
    assert url.startswith("http://127.0.0.1:")
    assert any(x.startswith("dashboard: http://127.0.0.1:") for x in result.outlines)
    assert _refused(url)


def test_kari_serve_needs_a_port_number(pytester: pytest.Pytester) -> None:
    """--kari-serve with something that is not a port is a usage error naming the fix."""
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--kari-serve=tests/")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--kari-serve takes a port number*got 'tests/'*--kari-serve=PORT*"]
    )


def test_kari_serve_on_a_busy_port_never_breaks_the_run(pytester: pytest.Pytester) -> None:
    """A port already in use is a warning and a diagnostic; the tests still run and pass."""
    pytester.makepyfile("def test_ok(kari_logger): kari_logger.info('fine')")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.warns(KariDebugWarning, match="cannot serve on"):
            result = pytester.runpytest(
                "--kari-debug", f"--kari-serve={port}", "-p", "no:cacheprovider"
            )
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"*--kari-serve: cannot serve on 127.0.0.1:{port}*"])


# The command line ---------------------------------------------------------------------
def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


def _lines(stream: object) -> queue.Queue[str]:
    found: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            found.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return found


def _wait_line(lines: queue.Queue[str], prefix: str) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if line.startswith(prefix):
            return line


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``kari-debug serve --port 0`` over a store holding records of extension cli-ext."""
    store = Store(tmp_path / "kari.db")
    store.write_records("log", "cli-ext", [{"ts": 1.0, "level": "ERROR", "message": "stored"}])
    store.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_kari_debug.cli", "--store", str(tmp_path / "kari.db"),
         "serve", "--port", "0"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    with process:  # closes the pipe at the end
        try:
            line = _wait_line(_lines(process.stdout), "kari-debug dashboard: ")
            yield process, line.split(": ", 1)[1].rstrip("/")
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


def test_cli_serve_serves_the_store_until_ctrl_c(
    serving: tuple[subprocess.Popen[str], str],
) -> None:
    """kari-debug serve shows the store's extensions, starts managers, and ends on SIGINT."""
    process, url = serving
    with httpx.Client(base_url=url, timeout=10) as client:
        managers = client.get(f"{PREFIX}/managers").json()["managers"]
        assert [(m["extension_id"], m["source"]) for m in managers] == [("cli-ext", "store")]
        logs = client.get(f"{PREFIX}/dashboard/cli-ext/logs").json()
        assert [r["message"] for r in logs["records"]] == ["stored"]
        started = client.post(f"{PREFIX}/managers/new-ext/start").json()
        assert (started["created"], started["running"]) == (True, True)
        assert client.get("/").status_code == 200
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=DEADLINE_S) == 0
    assert _refused(url)


def test_cli_serve_refuses_a_weak_token(tmp_path: Path) -> None:
    """A token too short to be safe is a usage error before anything is bound."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest_kari_debug.cli", "--store", str(tmp_path / "kari.db"),
         "serve", "--port", "0", "--token", "short"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("kari-debug: error: the API token must be printable text of")


def test_background_manager_serves_this_api(tmp_path: Path) -> None:
    """kari-debug start serves this package's API for its live manager by default."""
    command = [sys.executable, "-m", "pytest_kari_debug.cli", "--store", str(tmp_path / "kari.db"),
               "-e", "daemon-ext"]  # fmt: skip
    started = subprocess.run(
        [*command, "start", "--interval", "0.2"], cwd=tmp_path, env=_env(),
        capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.split("live API at ")[1].split()[0].rstrip(",")
        with httpx.Client(base_url=url, timeout=10) as client:
            status = client.get(f"{PREFIX}/managers/daemon-ext/status").json()
            assert (status["source"], status["running"]) == ("live", True)
            deadline = time.monotonic() + DEADLINE_S
            names: list[str] = []
            while "process_rss_bytes" not in names and time.monotonic() < deadline:
                names = client.get(f"{PREFIX}/dashboard/daemon-ext/metrics").json()["names"]
                time.sleep(0.1)
            assert "process_rss_bytes" in names
            health = client.post(f"{PREFIX}/health/daemon-ext/check").json()
            assert health["overall_status"] in ("healthy", "degraded")
            exported = client.get(f"{PREFIX}/export/daemon-ext/metrics?format=csv")
            assert exported.text.startswith("ts,name,value,unit")
            assert json.loads(client.get("/openapi.json").text)["info"]["title"] == (
                "pytest-kari-debug"
            )
    finally:
        subprocess.run([*command, "stop"], cwd=tmp_path, env=_env(), capture_output=True,
                       timeout=DEADLINE_S, check=False)  # fmt: skip
