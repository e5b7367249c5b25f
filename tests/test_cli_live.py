"""The ``kari-debug`` processes: following logs live, and the background debug manager."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner, Result

from pytest_kari_debug.cli import cli
from pytest_kari_debug.storage import Store

FIRST = """
import pytest

@pytest.mark.kari_extension("my-ext")
def test_first(kari_logger):
    kari_logger.info("first run marker")
"""
SECOND = """
import pytest

@pytest.mark.kari_extension("my-ext")
def test_second(kari_logger):
    kari_logger.error("second run marker", attempt=2)
"""
APP = """
import json


def create_app(extension_id):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = json.dumps({"extension_id": extension_id, "path": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    return app
"""
#: Upper bound for background work to show up; the tests wait for events, not for time.
DEADLINE_S = 30.0
#: `python -m pytest_kari_debug.cli` with SIGINT acting as a terminal's Ctrl-C. A suite started
#: as a background job of a script ignores SIGINT, and children inherit that: the SIGINT test
#: would then wait for a process that never sees it.
CLI_WITH_CTRL_C = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
    " runpy.run_module('pytest_kari_debug.cli', run_name='__main__', alter_sys=True)"
)


def kari(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m pytest_kari_debug.cli` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_kari_debug.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip


def _lines(stream: object) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], text: str, seen: list[str]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not any(text in line for line in seen):
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} never printed; got {seen!r}"
        try:
            seen.append(lines.get(timeout=left))
        except queue.Empty:
            continue


def test_logs_follow_prints_records_another_process_writes(pytester: pytest.Pytester) -> None:
    """logs show --follow prints what a second pytest process records, and stops on SIGINT."""
    store = pytester.path / "kari.db"
    pytester.makepyfile(test_first=FIRST)
    pytester.runpytest("--kari-debug", f"--kari-store={store}", "-p", "no:asyncio")
    follow = subprocess.Popen(
        [sys.executable, "-c", CLI_WITH_CTRL_C, "--store", str(store), "-e", "my-ext",
         "logs", "show", "--follow", "--poll", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines, seen = _lines(follow.stdout), []
        _wait_for(lines, "first run marker", seen)
        second = pytester.path / "second" / "test_second.py"
        second.parent.mkdir()
        second.write_text(SECOND)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "pytest_kari_debug.plugin", "--kari-debug",
             f"--kari-store={store}", "-p", "no:cacheprovider", str(second)],
            cwd=second.parent, capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # only this plugin: fast
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        _wait_for(lines, "second run marker", seen)
        printed = next(line for line in seen if "second run marker" in line)
        assert "ERROR" in printed
        assert "attempt=2" in printed
        assert "test_second" in printed
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=DEADLINE_S) in (0, 130)
        assert "Traceback" not in (follow.stderr.read() if follow.stderr else "")
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
        for stream in (follow.stdout, follow.stderr):
            if stream:
                stream.close()


@pytest.fixture
def manager_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder to start managers in; any manager left running is stopped afterwards."""
    yield tmp_path
    store = tmp_path / ".kari-debug" / "kari.db"
    for state in (tmp_path / ".kari-debug" / "managers").glob("*.json"):
        inline("--store", str(store), "-e", json.loads(state.read_text())["extension_id"], "stop")


def inline(*args: str) -> Result:
    """Run kari-debug in this process (reads are cheap this way)."""
    return CliRunner().invoke(cli, list(args))


def _status(cwd: Path, extension: str = "my-ext") -> dict:
    store = cwd / ".kari-debug" / "kari.db"
    done = inline("--store", str(store), "-e", extension, "--format", "json", "status")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_start_runs_a_background_manager_until_stop(manager_dir: Path) -> None:
    """start returns at once with the pid; the manager samples into the store until stop."""
    started = kari("-e", "my-ext", "start", "--interval", "0.2", "--no-server", cwd=manager_dir)
    assert started.returncode == 0, started.stderr
    assert "manager for 'my-ext' started: pid" in started.stdout
    pid = int(started.stdout.split("pid ")[1].split()[0].rstrip(","))
    assert psutil.pid_exists(pid)
    again = kari("-e", "my-ext", "start", cwd=manager_dir)
    assert again.returncode == 0
    assert "already running" in again.stdout
    deadline = time.monotonic() + DEADLINE_S
    while _status(manager_dir)["managers"][0]["samples"] < 3:
        assert time.monotonic() < deadline, "the manager never sampled three times"
        time.sleep(0.1)
    status = _status(manager_dir)
    assert status["managers"][0]["running"]
    assert status["managers"][0]["pid"] == pid
    store = Store(manager_dir / ".kari-debug" / "kari.db", create=False)
    names = {r["name"] for r in store.select_records("metric", extension_id="my-ext")}
    store.close()
    assert {"system_cpu_percent", "process_rss_bytes", "system_memory_percent"} <= names
    where = ("--store", str(manager_dir / ".kari-debug" / "kari.db"), "-e", "my-ext")
    healthy = inline(*where, "health")
    assert healthy.exit_code == 0
    assert "manager.metrics" in healthy.stdout
    current = json.loads(inline(*where, "--format", "json", "metrics", "current").stdout)
    assert current["managers"][0]["pid"] == pid
    assert current["managers"][0]["rss_bytes"] > 0
    stopped = kari("-e", "my-ext", "stop", cwd=manager_dir)
    assert stopped.returncode == 0
    assert f"(pid {pid}) stopped" in stopped.stdout
    assert not _running(pid)
    assert not list((manager_dir / ".kari-debug" / "managers").glob("*.pid"))
    assert _status(manager_dir)["managers"][0]["running"] is False
    log = (manager_dir / ".kari-debug" / "managers" / "my-ext.log").read_text()
    assert "stopped after" in log


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_manager_exits_when_its_pid_file_is_removed(manager_dir: Path) -> None:
    """A manager whose pid file disappears (its folder deleted, say) ends on its own."""
    started = kari("-e", "gone-ext", "start", "--interval", "0.1", "--no-server", cwd=manager_dir)
    assert started.returncode == 0, started.stderr
    pid = _status(manager_dir, "gone-ext")["managers"][0]["pid"]
    (manager_dir / ".kari-debug" / "managers" / "gone-ext.pid").unlink()
    deadline = time.monotonic() + DEADLINE_S
    while _running(pid):
        assert time.monotonic() < deadline, "the manager kept running without its pid file"
        time.sleep(0.05)
    assert not (manager_dir / ".kari-debug" / "managers" / "gone-ext.json").exists()
    assert _status(manager_dir, "gone-ext")["managers"][0]["running"] is False


def test_start_serves_the_live_api_on_localhost(manager_dir: Path) -> None:
    """With the server extra, start serves the API app on 127.0.0.1 and prints its URL."""
    pytest.importorskip("uvicorn")
    (manager_dir / "kari_test_api.py").write_text(APP)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(manager_dir), env.get("PYTHONPATH")]))
    started = kari(
        "-e", "api-ext", "start", "--app", "kari_test_api:create_app", cwd=manager_dir, env=env
    )
    assert started.returncode == 0, started.stderr
    assert "live API at http://127.0.0.1:" in started.stdout
    url = started.stdout.split("live API at ")[1].split()[0]
    with urllib.request.urlopen(f"{url}/api/ping", timeout=10) as response:
        body = json.loads(response.read())
    assert body == {"extension_id": "api-ext", "path": "/api/ping"}
    assert _status(manager_dir, "api-ext")["managers"][0]["url"] == url
    assert kari("-e", "api-ext", "stop", cwd=manager_dir).returncode == 0


def test_start_without_extension_or_api_module_says_so(manager_dir: Path) -> None:
    """start needs --extension-id; without the API module it samples and says why no URL."""
    missing = kari("start", cwd=manager_dir)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "kari-debug: error: start needs an extension: pass --extension-id ID before the command"
    )
    started = kari("-e", "my-ext", "start", "--app", "no_such_module:app", cwd=manager_dir)
    assert started.returncode == 0, started.stderr
    assert "(no live API: " in started.stdout
    assert "no_such_module" in started.stdout or "server extra" in started.stdout


def test_foreground_manager_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    """start --foreground stays attached and ends with exit status 0 on Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_kari_debug.cli", "-e", "fg-ext", "start", "--foreground",
         "--interval", "0.1", "--no-server"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines, seen = _lines(process.stderr), []
        _wait_for(lines, "running (pid", seen)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=DEADLINE_S) == 0
        _wait_for(lines, "stopped after", seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
    assert not (tmp_path / ".kari-debug" / "managers" / "fg-ext.pid").exists()


def test_start_with_a_postgresql_store_keeps_its_password_off_every_command_line(
    manager_dir: Path,
) -> None:
    """start with a PostgreSQL store: the manager samples into the database, serves the API,
    and its password is in no process's command line or environment, no log and no file."""
    from urllib.parse import urlsplit

    from conftest import POSTGRES_URL_VARIABLE, fresh_postgres_database

    # The test server's URL stays out of the environment the manager inherits.
    env = {k: v for k, v in os.environ.items() if k != POSTGRES_URL_VARIABLE}
    with fresh_postgres_database() as url:
        password = urlsplit(url).password
        assert password
        where = ("--store", url, "-e", "pg-ext")
        started = kari(*where, "start", "--interval", "0.2", cwd=manager_dir, env=env)
        assert started.returncode == 0, started.stderr
        assert "manager for 'pg-ext' started: pid" in started.stdout
        pid = int(started.stdout.split("pid ")[1].split()[0].rstrip(","))
        try:
            assert not list(manager_dir.rglob("*.store-url"))  # read and deleted at its start
            process = psutil.Process(pid)
            assert password not in " ".join(process.cmdline())
            assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
            assert password.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
            # The manager and what it started: other tests running beside this one (xdist)
            # may show the same test server's URL in their own command lines.
            ours = {str(pid), *(str(child.pid) for child in process.children(recursive=True))}
            listing = subprocess.run(
                ["ps", "-eo", "pid,args", "-ww"], capture_output=True, text=True, check=True
            ).stdout
            lines = [line for line in listing.splitlines() if line.split()[0] in ours]
            assert "--store-url-file" in next(line for line in lines if line.split()[0] == str(pid))
            assert password not in "\n".join(lines)
            deadline = time.monotonic() + DEADLINE_S
            while True:
                done = kari(*where, "--format", "json", "status", cwd=manager_dir, env=env)
                assert done.returncode == 0, done.stderr
                (manager,) = json.loads(done.stdout)["managers"]
                if manager.get("samples", 0) >= 3:
                    break
                assert time.monotonic() < deadline, "the manager never sampled three times"
                time.sleep(0.1)
            assert manager["running"]
            assert manager["pid"] == pid
            assert password not in done.stdout + started.stdout + started.stderr
            api = manager["url"] + "/api/extensions/debugging"
            with urllib.request.urlopen(f"{api}/health/pg-ext", timeout=10) as response:
                assert json.loads(response.read())["extension_id"] == "pg-ext"
            with urllib.request.urlopen(f"{api}/runs/progress", timeout=10) as response:
                assert json.loads(response.read())["runs"] == []  # read from the database
            store = Store(url, create=False)
            try:
                names = {r["name"] for r in store.select_records("metric", extension_id="pg-ext")}
            finally:
                store.close()
            assert {"system_cpu_percent", "process_rss_bytes"} <= names
        finally:
            stopped = kari(*where, "stop", cwd=manager_dir, env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert f"(pid {pid}) stopped" in stopped.stdout
        assert not _running(pid)
        written = [p for p in manager_dir.rglob("*") if p.is_file()]
        assert any(p.name == "pg-ext.log" for p in written)
        for path in written:
            assert password.encode() not in path.read_bytes(), path
