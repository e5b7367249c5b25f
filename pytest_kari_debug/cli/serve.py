"""``kari-debug serve``: the REST API and live dashboard over the store, in the foreground."""

from __future__ import annotations

import importlib
import signal
import threading
from typing import Any

import click

from ..backends import redact
from . import daemon
from .app import CliError, Env, cli, pass_env

#: The API sits beside the CLI in the layers, so it is loaded by name (like ``start --app``).
SERVER = "pytest_kari_debug.api.server"


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; any address other than loopback needs a token",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: a free one"
)
@click.option(
    "--token",
    envvar="KARI_DEBUG_TOKEN",
    metavar="TOKEN",
    help="Token every request must carry (prefer the KARI_DEBUG_TOKEN variable: a command line"
    " is visible to other users); generated and printed once when binding a non-loopback"
    " address without one",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Another host name clients reach this server by (checked against the Host header)",
)
@pass_env
def serve(env: Env, host: str, port: int, token: str | None, allow_hosts: tuple[str, ...]) -> int:
    """Serve the REST API and the live dashboard until Ctrl-C.

    Shows every extension recorded in the store, and live managers started through the API
    (POST /api/extensions/debugging/managers/ID/start). The dashboard is at the printed URL.

    \b
    Examples:
      kari-debug serve                       # http://127.0.0.1:8765/
      kari-debug --extension-id my-ext serve --port 0
      KARI_DEBUG_TOKEN=... kari-debug serve --host 0.0.0.0 --allow-host ci-box.example
    """
    reason = daemon.server_available(daemon.DEFAULT_APP)
    if reason is not None:
        raise CliError(f"cannot serve the API: {reason}", code=1)
    module = importlib.import_module(SERVER)
    try:
        server = module.ApiServer(
            host=host,
            port=port,
            token=token or None,
            store_path=env.store_path,
            extension_id=env.extension_id,
            allowed_hosts=allow_hosts,
        )
        server.start()
    except RuntimeError as exc:
        raise CliError(str(exc), code=1) from None
    stop = threading.Event()
    previous: dict[int, Any] = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        for line in server.announce():
            click.echo(line)
        click.echo(f"  store: {redact(env.store_path)}; Ctrl-C stops")
        while not stop.wait(0.5):
            if not server.running:
                raise CliError("the API server stopped unexpectedly", code=1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.stop()
    click.echo("kari-debug: server stopped", err=True)
    return 0
