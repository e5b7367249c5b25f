"""The background debug manager of ``kari-debug start``: launch, run, find and stop it.

A manager process samples this machine's and its own resource usage through a live
:class:`ExtensionDebugManager` into the store, and serves the REST API on 127.0.0.1 when the
``server`` extra and the API module are installed. Its pid file and a state file (JSON,
rewritten atomically at every sample) live in ``<store folder>/managers/`` (for a PostgreSQL
store, beside the default store file's place); the CLI reads them
for ``status``, ``health`` and ``metrics current``. The process ends on SIGTERM or SIGINT, and
on its own when its pid file disappears or names another process, or when the store or its
folder is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from ..atomic import write_atomic
from ..backends import StoreLocation, is_url, redact
from ..config import DebugConfiguration
from ..exceptions import StoreError
from ..manager import ExtensionDebugManager
from ..sharedmethods import dataclass
from ..storage import RECORD_KINDS, Store

DEFAULT_APP = "pytest_kari_debug.api:create_app"
#: A state file older than this many sampling intervals (plus a grace) means a stuck process.
STALE_INTERVALS = 3
STALE_GRACE_S = 15.0
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def managers_dir(store_path: Path) -> Path:
    """The folder of the pid, state and log files, beside the store."""
    return store_path.resolve().parent / "managers"


def _stem(extension_id: str) -> str:
    safe = _SAFE.sub("_", extension_id)[:60]
    if safe != extension_id:
        safe += "-" + hashlib.sha1(extension_id.encode()).hexdigest()[:8]
    return safe


@dataclass(frozen=True)
class ManagerFiles:
    """The pid, state and log file of one extension's manager process."""

    pid: Path
    state: Path
    log: Path

    @classmethod
    def of(cls, store_path: Path, extension_id: str) -> ManagerFiles:
        folder = managers_dir(store_path)
        stem = _stem(extension_id)
        return cls(folder / f"{stem}.pid", folder / f"{stem}.json", folder / f"{stem}.log")

    def remove(self) -> None:
        """Remove the pid and state files (the log stays, for post-mortems)."""
        for path in (self.pid, self.state):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def hand_over_url(files: ManagerFiles, url: str) -> Path:
    """Write a store URL (its password with it) for the manager process to read at start.

    The URL never goes on the process's command line, where ``ps`` shows it to every user: a
    file only its owner may read (mode 0600, made exclusively) carries it, and the manager
    deletes the file as it reads it (:func:`take_url`).
    """
    path = files.pid.with_suffix(".store-url")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(url)
    return path


def take_url(path: Path) -> str:
    """The store URL :func:`hand_over_url` wrote, read once: the file is gone afterwards."""
    try:
        return path.read_text(encoding="utf-8").strip()
    finally:
        path.unlink(missing_ok=True)


def read_state(path: Path) -> dict[str, Any] | None:
    """The manager's last state document, or ``None`` when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int, created: float | None) -> bool:
    """Whether *pid* is a live (non-zombie) process started at *created* (pid reuse guard)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return created is None or abs(process.create_time() - created) < 2.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


@dataclass
class ManagerStatus:
    """What the files say about an extension's manager process."""

    extension_id: str
    running: bool
    pid: int | None
    state: dict[str, Any] | None
    stale: bool = False
    dead: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with stable keys."""
        state = self.state or {}
        return {
            "extension_id": self.extension_id,
            "running": self.running,
            "responding": self.running and not self.stale,
            "pid": self.pid,
            "url": state.get("url"),
            "started_at": state.get("started_at"),
            "updated_at": state.get("updated_at"),
            "interval_s": state.get("interval_s"),
            "samples": state.get("samples", 0),
            "died": self.dead,
        }


def manager_status(store_path: Path, extension_id: str) -> ManagerStatus:
    """Find out whether the manager of *extension_id* runs (from its pid and state files)."""
    files = ManagerFiles.of(store_path, extension_id)
    pid = _read_pid(files.pid)
    state = read_state(files.state)
    if pid is None:
        return ManagerStatus(extension_id, False, None, state)
    created = state.get("process_created") if state and state.get("pid") == pid else None
    if not _alive(pid, created):
        return ManagerStatus(extension_id, False, pid, state, dead=True)
    stale = False
    if state is not None:
        interval = float(state.get("interval_s") or 30.0)
        age = time.time() - float(state.get("updated_at") or 0.0)
        stale = age > STALE_INTERVALS * interval + STALE_GRACE_S
    return ManagerStatus(extension_id, True, pid, state, stale=stale)


def all_statuses(store_path: Path) -> list[ManagerStatus]:
    """The status of every manager with files beside the store."""
    found = []
    for state_path in sorted(managers_dir(store_path).glob("*.json")):
        state = read_state(state_path)
        if state and isinstance(state.get("extension_id"), str):
            found.append(manager_status(store_path, state["extension_id"]))
    return found


# Launching and stopping -----------------------------------------------------------------
def spawn_detached(argv: list[str], log_path: Path) -> int:
    """Start *argv* in a new session, detached from this terminal; return its pid.

    On POSIX ``os.posix_spawn`` leaves no ``Popen`` object behind (whose finaliser would warn
    about a child still running): the manager outlives this command by design.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "posix_spawn"):
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            return os.posix_spawn(
                argv[0],
                argv,
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                    (os.POSIX_SPAWN_CLOSE, log_fd),
                ],
                setsid=True,
            )
        except NotImplementedError:  # no setsid support in this libc: fall back to Popen
            pass
        finally:
            os.close(log_fd)
    flags = 0
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=sys.platform != "win32",
            creationflags=flags,
            close_fds=True,
        )
    process.returncode = 0  # detached on purpose: never waited for here
    return process.pid


def wait_ready(files: ManagerFiles, pid: int, timeout: float = 20.0) -> dict[str, Any] | None:
    """Wait until process *pid* wrote its first state; ``None`` when it died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(files.state)
        if state is not None and state.get("pid") == pid and state.get("ready"):
            return state
        if not _alive(pid, None):
            _reap(pid)
            return None
        time.sleep(0.05)
    return None


def _reap(pid: int) -> None:
    """Collect the exit status of our own child *pid*, so that it leaves no zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_manager(store_path: Path, extension_id: str, timeout: float = 10.0) -> tuple[str, int]:
    """End the manager of *extension_id*: ``("stopped"|"killed"|"not-running", pid)``."""
    files = ManagerFiles.of(store_path, extension_id)
    status = manager_status(store_path, extension_id)
    if not status.running or status.pid is None:
        files.remove()
        return "not-running", status.pid or 0
    pid = status.pid
    process = psutil.Process(pid)
    outcome = "stopped"
    with contextlib.suppress(psutil.NoSuchProcess):
        process.terminate()
        if not _wait_gone(pid, timeout):
            process.kill()
            _wait_gone(pid, 5.0)
            outcome = "killed"
    files.remove()
    return outcome, pid


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until *pid* exited; a zombie counts as gone (its new parent may reap it late)."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        _reap(pid)
        if not _alive(pid, None):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# The manager process ---------------------------------------------------------------------
class _Sampler:
    """Resource samples of this machine and of the manager process."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        psutil.cpu_percent(None)

    def sample(self) -> list[tuple[str, float, str]]:
        memory = psutil.virtual_memory()
        points = [
            ("system_cpu_percent", psutil.cpu_percent(None), "%"),
            ("system_memory_percent", memory.percent, "%"),
            ("system_memory_used_bytes", float(memory.total - memory.available), "bytes"),
            ("process_cpu_percent", self.process.cpu_percent(None), "%"),
            ("process_rss_bytes", float(self.process.memory_info().rss), "bytes"),
            ("process_threads", float(self.process.num_threads()), "count"),
        ]
        if hasattr(os, "getloadavg"):
            points.append(("system_load_1m", os.getloadavg()[0], ""))
        with contextlib.suppress(Exception):  # not every platform exposes the counters
            disk = psutil.disk_io_counters()
            if disk is not None:
                points.append(("system_disk_read_bytes", float(disk.read_bytes), "bytes"))
                points.append(("system_disk_write_bytes", float(disk.write_bytes), "bytes"))
        with contextlib.suppress(Exception):
            net = psutil.net_io_counters()
            points.append(("system_net_sent_bytes", float(net.bytes_sent), "bytes"))
            points.append(("system_net_recv_bytes", float(net.bytes_recv), "bytes"))
        return points


class _Flusher:
    """Writes the records a live manager's components gained since the last flush."""

    def __init__(self, manager: ExtensionDebugManager, store: Store) -> None:
        self.manager = manager
        self.store = store
        self.seen = dict.fromkeys(manager.components, 0)
        self.written = 0
        self.lost = 0

    def flush(self) -> int:
        count = 0
        for kind, component in self.manager.components.items():
            buffer = component.records
            total = buffer.total
            new = total - self.seen[kind]
            if new <= 0:
                continue
            kept = buffer.snapshot()[-new:] if new else []
            self.lost += new - len(kept)
            self.seen[kind] = total
            records = [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in kept]
            try:
                self.store.write_records(
                    RECORD_KINDS.get(kind, kind), self.manager.extension_id, records
                )
            except StoreError:
                self.lost += len(records)
                raise
            count += len(records)
        self.written += count
        return count


def _load_app(spec: str, manager: ExtensionDebugManager, store_path: StoreLocation) -> Any:
    """The ASGI app named ``module:attribute`` (a factory is called with what it accepts)."""
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    target = getattr(module, attribute or "app")
    if inspect.isclass(target) or not callable(target) or _is_asgi_app(target):
        return target
    offered = {
        "manager": manager,
        "managers": [manager],
        "store_path": store_path,
        "extension_id": manager.extension_id,
    }
    parameters = inspect.signature(target).parameters
    return target(**{k: v for k, v in offered.items() if k in parameters})


def _is_asgi_app(target: Any) -> bool:
    """An object with ``scope, receive, send`` call parameters is an app, not a factory."""
    try:
        parameters = list(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return False
    return parameters[:3] == ["scope", "receive", "send"]


def server_available(app_spec: str) -> str | None:
    """Why the live API cannot be served (``None`` when it can)."""
    if importlib.util.find_spec("uvicorn") is None:
        return "install the server extra: pip install 'pytest-kari-debug[server]'"
    module_name = app_spec.partition(":")[0]
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        return f"the API module {module_name!r} is not installed"
    return None


class _Server:
    """uvicorn serving an app on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections: no ~40 ms delayed-ACK wait per response.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.bind(("127.0.0.1", port))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="auto")
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive():
            if time.monotonic() > deadline:
                msg = f"the API server did not start within {timeout:.0f}s"
                raise RuntimeError(msg)
            time.sleep(0.02)
        if not self.server.started:
            msg = "the API server stopped while starting (see the manager log)"
            raise RuntimeError(msg)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5.0)
        self.socket.close()


def create_store(location: StoreLocation) -> None:
    """Create the store a manager will write (a clear error here if it cannot be)."""
    Store(location).close()


def run_manager(
    store_path: StoreLocation,
    extension_id: str,
    *,
    interval: float,
    serve: tuple[str, int] | None,
    server_note: str = "",
    echo: Callable[[str], None] = print,
    files_path: Path | None = None,
) -> int:
    """Run the manager of *extension_id* in this process until SIGTERM/SIGINT; return 0.

    *store_path* is a SQLite file or a PostgreSQL URL; the pid, state and log files go beside
    *files_path* (by default the SQLite file).
    """
    if files_path is None:
        if is_url(store_path):
            msg = "a manager of a PostgreSQL store needs files_path: where its files go"
            raise ValueError(msg)
        files_path = Path(store_path)
    files = ManagerFiles.of(files_path, extension_id)
    label = redact(store_path) if is_url(store_path) else str(Path(store_path).resolve())
    store = Store(store_path)
    configuration = DebugConfiguration(metrics_interval=interval)
    manager = ExtensionDebugManager(extension_id, configuration=configuration)
    manager.start()
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    server: _Server | None = None
    if serve is not None:
        app_spec, port = serve
        server = _Server(_load_app(app_spec, manager, store_path), port)
        server.start()
    me = psutil.Process()
    files.pid.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(files.pid, f"{os.getpid()}\n")
    sampler = _Sampler()
    flusher = _Flusher(manager, store)
    started = time.time()
    samples = 0
    problem = ""
    last: dict[str, float] = {}
    try:
        while True:
            if _store_gone(store_path, files):
                echo(f"store {label!r} or its folder disappeared: stopping")
                break
            for name, value, unit in sampler.sample():
                manager.metrics.record_metric(name, value, unit, source="manager")
                last[name] = value
            manager.metrics.collect_custom()
            try:
                flusher.flush()
            except StoreError as exc:  # a server away: say so once, sample on, retry later
                if problem != str(exc):
                    problem = str(exc)
                    echo(f"cannot write the store: {problem}")
            samples += 1
            report = manager.diagnose().to_dict()
            if not _write_state(
                files.state,
                json.dumps(
                    {
                        "extension_id": extension_id,
                        "pid": os.getpid(),
                        "process_created": me.create_time(),
                        "ready": True,
                        "store": label,
                        "url": server.url if server else None,
                        "server_note": server_note,
                        "started_at": started,
                        "updated_at": time.time(),
                        "interval_s": interval,
                        "samples": samples,
                        "records_written": flusher.written,
                        "records_lost": flusher.lost,
                        "last_sample": last,
                        "diagnostics": report,
                        "summary": {
                            k: v
                            for k, v in manager.get_debug_summary().items()
                            if k in ("counts", "dropped", "sessions", "debug_overhead_ms")
                        },
                    }
                ),
            ):
                echo(f"store folder of {label!r} disappeared: stopping")
                break
            if samples == 1:
                echo(f"manager for {extension_id!r} running (pid {os.getpid()})")
            if stop.wait(interval) or _read_pid(files.pid) != os.getpid():
                break
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if server is not None:
            server.stop()
        manager.stop()
        with contextlib.suppress(Exception):
            flusher.flush()
        store.close()
        owner = _read_pid(files.pid)
        mine = (read_state(files.state) or {}).get("pid") == os.getpid()
        if owner == os.getpid() or (owner is None and mine):
            files.remove()  # a newer manager's files (another pid) stay untouched
        echo(f"manager for {extension_id!r} stopped after {samples} sample(s)")
    return 0


def _write_state(path: Path, text: str) -> bool:
    """Rewrite the state file; False when its folder is gone (never recreated: see below)."""
    try:
        write_atomic(path, text, make_folder=False)
    except FileNotFoundError:
        return False
    return True


def _store_gone(store_path: StoreLocation, files: ManagerFiles) -> bool:
    """Whether the store file or the managers folder was removed (``rm -rf .kari-debug``).

    Writing on would recreate the folder, a state file naming a store that is not there. (A
    server's database going away is a failing write, retried by the reconnecting store.)
    """
    if not is_url(store_path) and not Path(store_path).exists():
        return True
    return not files.pid.parent.is_dir()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
