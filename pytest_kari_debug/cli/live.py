"""``start``, ``stop``, ``status`` and ``health``: the live manager and the store's state."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from ..config import DebugConfiguration
from ..manager import STATUS_ORDER
from ..model import dropped_of
from ..sources import StoreSource
from ..sources.store import run_check, store_check
from . import daemon
from .app import CliError, Env, cli, pass_env, require_extension
from .render import ago, paint, pairs, run_json, run_text, size


def _log_tail(path: Any, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


@cli.command()
@click.option(
    "--foreground", is_flag=True, help="Stay attached (until Ctrl-C) instead of detaching"
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=DebugConfiguration().metrics_interval,
    show_default=True,
    help="Seconds between resource samples",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="API port on 127.0.0.1 (0: a free one)",
)
@click.option(
    "--app",
    "app_spec",
    metavar="MODULE:ATTR",
    default=daemon.DEFAULT_APP,
    show_default=True,
    help="ASGI app (or factory) to serve as the live API",
)
@click.option("--no-server", is_flag=True, help="Sample only; serve no API")
@click.option("--store-url-file", type=click.Path(path_type=Path), hidden=True)
@pass_env
def start(
    env: Env,
    foreground: bool,
    interval: float,
    port: int,
    app_spec: str,
    no_server: bool,
    store_url_file: Path | None,
) -> int:
    """Start a debug manager for the extension in the background.

    It samples this machine's and its own resource usage into the store every INTERVAL
    seconds and, when the server extra is installed, serves the live API on 127.0.0.1.
    Returns at once with the process id and the URL; `stop` ends it. With a PostgreSQL
    store the URL reaches the manager in a file only you can read, deleted as it starts:
    its password is never on a command line.

    \b
    Examples:
      kari-debug --extension-id my-ext start
      kari-debug --extension-id my-ext start --interval 5 --port 8765
      kari-debug --extension-id my-ext start --foreground
      kari-debug --store postgresql://ci@db:5432/kari --extension-id my-ext start
    """
    extension = require_extension(env, "start")
    # The manager process of a PostgreSQL store: its URL comes in a file (see hand_over_url).
    location = daemon.take_url(store_url_file) if store_url_file else env.store_path
    files_path = env.files_path.resolve()
    if isinstance(location, Path):
        location = files_path
    daemon.create_store(location)  # or fail here, with a clear message
    status = daemon.manager_status(files_path, extension)
    if status.running:
        url = (status.state or {}).get("url")
        message = f"manager for {extension!r} is already running (pid {status.pid}"
        message += f", {url})" if url else ")"
        if env.json:
            env.emit({**status.to_dict(), "already_running": True})
        else:
            env.echo(message)
        return 0
    reason = "--no-server given" if no_server else daemon.server_available(app_spec)
    serve = None if reason else (app_spec, port)
    files = daemon.ManagerFiles.of(files_path, extension)
    if foreground:
        files.remove()
        return daemon.run_manager(
            location,
            extension,
            interval=interval,
            serve=serve,
            server_note=reason or "",
            echo=lambda text: click.echo(text, err=True),
            files_path=files_path,
        )
    files.remove()
    argv = [sys.executable, "-m", "pytest_kari_debug.cli", "--store", str(files_path)]
    argv += ["--extension-id", extension, "start", "--foreground", "--interval", str(interval)]
    argv += ["--port", str(port), "--app", app_spec]
    if serve is None:
        argv.append("--no-server")
    handed = daemon.hand_over_url(files, location) if isinstance(location, str) else None
    if handed is not None:
        argv += ["--store-url-file", str(handed)]
    try:
        pid = daemon.spawn_detached(argv, files.log)
        state = daemon.wait_ready(files, pid)
    finally:
        if handed is not None:
            handed.unlink(missing_ok=True)  # read by the manager as it started, or never
    if state is None:
        tail = _log_tail(files.log)
        msg = f"the manager for {extension!r} did not start (pid {pid}): {tail or 'no output'}"
        raise CliError(msg, code=1)
    if env.json:
        env.emit({**daemon.manager_status(files_path, extension).to_dict(), "note": reason})
        return 0
    line = f"manager for {extension!r} started: pid {pid}"
    line += f", live API at {state['url']}" if state.get("url") else f" (no live API: {reason})"
    env.echo(line)
    env.echo(f"stop it with: kari-debug --extension-id {extension} stop")
    return 0


@cli.command()
@pass_env
def stop(env: Env) -> int:
    """Stop the extension's background debug manager (SIGTERM, then SIGKILL after 10 s).

    \b
    Examples:
      kari-debug --extension-id my-ext stop
    """
    extension = require_extension(env, "stop")
    outcome, pid = daemon.stop_manager(env.files_path, extension)
    if env.json:
        env.emit({"extension_id": extension, "pid": pid or None, "outcome": outcome})
    elif outcome == "not-running":
        env.echo(f"no manager running for {extension!r}")
    elif outcome == "killed":
        env.echo(f"manager for {extension!r} (pid {pid}) did not stop in time and was killed")
    else:
        env.echo(f"manager for {extension!r} (pid {pid}) stopped")
    return 0


def _last_run(source: StoreSource) -> dict[str, Any] | None:
    runs = source.runs(limit=1)
    return runs[0] if runs else None


def _manager_text(status: daemon.ManagerStatus) -> str:
    if status.dead:
        return paint("died", "unhealthy") + f" (pid {status.pid}); `start` it again"
    if not status.running:
        return "not running (`kari-debug start` launches one)"
    state = status.state or {}
    text = (
        paint("running", "running") + f", pid {status.pid}, up {ago(state.get('started_at'))[:-4]}"
    )
    if status.stale:
        text += ", " + paint(f"last sample {ago(state.get('updated_at'))}", "degraded")
    if state.get("url"):
        text += f", {state['url']}"
    return text


@cli.command()
@pass_env
def status(env: Env) -> int:
    """Managers and whether they run, the last run, record counts and the store's health.

    \b
    Examples:
      kari-debug --extension-id my-ext status
      kari-debug --format json status
    """
    everything = env.source()
    if everything is None:
        return env.no_store_hint()
    extensions = everything.extensions()
    extension = env.extension_id
    if extension is None:
        extension = extensions[0] if len(extensions) == 1 else None
    managers = (
        [daemon.manager_status(env.files_path, extension)]
        if extension
        else daemon.all_statuses(env.files_path)
    )
    source = StoreSource(everything.store, extension)
    last = _last_run(source)
    counts = source.record_counts()
    health = source.store_health()
    if env.json:
        env.emit(
            {
                "extension_id": extension,
                "extensions": extensions,
                "managers": [m.to_dict() for m in managers],
                "last_run": run_json(last),
                "records": counts,
                "store": health,
            }
        )
        return 0
    items = [("extension", extension or f"all ({', '.join(extensions) or 'none yet'})")]
    for manager in managers or []:
        items.append(
            (
                f"manager {manager.extension_id}" if not extension else "manager",
                _manager_text(manager),
            )
        )
    if not managers:
        items.append(("managers", "none running (`kari-debug --extension-id ID start`)"))
    items.append(("last run", run_text(last) if last else "none yet (`pytest --kari-debug`)"))
    items.append(
        ("records", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none yet")
    )
    items.append(
        (
            "store",
            f"{health['path']} ({size(health['size_bytes'])}, schema {health['schema_version']},"
            f" {paint(health['integrity'], health['status'])})",
        )
    )
    env.echo(pairs(items))
    if not last and not counts:
        click.echo(
            f"kari-debug: no data yet for {extension or 'any extension'!r}; record some with"
            " `pytest --kari-debug`",
            err=True,
        )
    return 0


@cli.command()
@pass_env
def health(env: Env) -> int:
    """Run the health checks: store, live manager, last run's diagnostics and drops.

    Exit status 0 when healthy, 1 when degraded or unhealthy.

    \b
    Examples:
      kari-debug --extension-id my-ext health
      kari-debug --extension-id my-ext --format json health || echo "needs attention"
    """
    everything = env.source()
    extension = env.extension_id
    checks: list[dict[str, str]] = []
    if everything is None and not (
        extension and daemon.manager_status(env.files_path, extension).running
    ):
        return env.no_store_hint()
    if everything is not None:
        checks.append(store_check(everything.store_health()))
        if extension is None:
            known = everything.extensions()
            extension = known[0] if len(known) == 1 else None
    if extension:
        status_ = daemon.manager_status(env.files_path, extension)
        checks.extend(_manager_checks(status_))
    if everything is not None:
        source = StoreSource(everything.store, extension)
        last = _last_run(source)
        if last is not None:
            checks.extend(_run_checks(source, last))
    overall = max((c["status"] for c in checks), key=STATUS_ORDER.index, default="healthy")
    code = 0 if overall == "healthy" else 1
    if env.json:
        env.emit(
            {
                "extension_id": extension,
                "overall_status": overall,
                "checked_at": time.time(),
                "checks": checks,
            }
        )
        return code
    env.echo(f"{click.style('health', bold=True)}: {paint(overall)}")
    env.echo(
        "\n".join(
            f"  {paint(c['status'].ljust(9), c['status'])} {c['component']}: {c['detail']}"
            for c in checks
        )
    )
    return code


def _manager_checks(status: daemon.ManagerStatus) -> list[dict[str, str]]:
    if status.dead:
        return [
            {
                "component": "manager",
                "status": "degraded",
                "detail": f"the manager process (pid {status.pid}) died; `start` it again",
            }
        ]
    if not status.running:
        return [{"component": "manager", "status": "healthy", "detail": "not running"}]
    state = status.state or {}
    if status.stale:
        return [
            {
                "component": "manager",
                "status": "degraded",
                "detail": f"no sample since {ago(state.get('updated_at'))}",
            }
        ]
    checks = []
    report = state.get("diagnostics") or {}
    for check in report.get("checks", []):
        checks.append(
            {
                "component": f"manager.{check.get('component')}",
                "status": check.get("status", "healthy"),
                "detail": str(check.get("detail", "")),
            }
        )
    if state.get("records_lost"):
        checks.append(
            {
                "component": "manager.store",
                "status": "degraded",
                "detail": f"{state['records_lost']} records lost before reaching the store",
            }
        )
    return checks


def _run_checks(source: StoreSource, run: dict[str, Any]) -> list[dict[str, str]]:
    checks = [run_check(run)]
    dropped: Counter[str] = Counter()
    for test in source.run_records(int(run["id"])):
        dropped.update(dropped_of(test))
    dropped = +dropped  # only the components that dropped records
    if dropped:
        text = ", ".join(f"{kind} {n}" for kind, n in sorted(dropped.items()))
        checks.append(
            {
                "component": "buffers",
                "status": "degraded",
                "detail": f"records dropped at the buffer limit: {text}; raise the max_* limits",
            }
        )
    return checks
