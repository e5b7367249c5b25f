"""``--kari-serve[=PORT]``: the run's REST API and live dashboard, served while it runs.

The xdist controller (or the only process) serves the live managers of the run and the store
it writes on 127.0.0.1 from a daemon thread, and stops it when the run ends. Under xdist the
managers live in the workers: the controller shows what the store receives, about once a
second. A server that cannot start is a warning and a diagnostics line, never a failed run.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest

from ..sharedmethods import dataclass
from .options import SERVE_TOKEN_ENV
from .state import STATE, guard

TOKEN_ENV = SERVE_TOKEN_ENV
#: The API sits beside the plugin in the layers, so it is loaded by name (as the CLI does).
SERVER = "pytest_kari_debug.api.server"


@dataclass(frozen=True)
class ServeSettings:
    """What ``--kari-serve`` and ``--kari-serve-host`` asked for."""

    port: int
    host: str


SERVE = pytest.StashKey[ServeSettings | None]()
SERVER_KEY = pytest.StashKey[Any]()


def _option(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(name, default=None)
    if value is None or value == "":
        value = config.getini(name) or None
    return None if value is None else str(value).strip()


def pytest_configure(config: pytest.Config) -> None:
    """Check ``--kari-serve``: a port that is not a number is a usage error."""
    text = _option(config, "kari_serve")
    if text is None:
        config.stash[SERVE] = None
        return
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        msg = (
            f"kari-debug: --kari-serve takes a port number from 0 to 65535, got {text!r};"
            " write --kari-serve=PORT (a bare --kari-serve before a test path takes the path)"
        )
        raise pytest.UsageError(msg)
    host = _option(config, "kari_serve_host") or "127.0.0.1"
    config.stash[SERVE] = ServeSettings(int(text), host)


def _say(config: pytest.Config, lines: list[str]) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        for line in lines:
            reporter.write_line(line)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the server on the controller (never on an xdist worker)."""
    config = session.config
    settings = config.stash.get(SERVE, None)
    state = config.stash.get(STATE, None)
    if settings is None or state is None or state.is_worker:
        return
    with guard(config, "starting the --kari-serve server"):
        try:
            module = importlib.import_module(SERVER)
        except ImportError as exc:
            state.diagnose(
                f"--kari-serve needs the server extra (pip install 'pytest-kari-debug[server]'):"
                f" {exc}"
            )
            return
        server = module.ApiServer(
            host=settings.host,
            port=settings.port,
            token=os.environ.get(TOKEN_ENV) or None,
            managers=lambda: state.managers,
            store_path=state.settings.store_path,
            extension_id=state.settings.extension_id,
            include_registry=False,
        )
        try:
            server.start()
        except RuntimeError as exc:
            state.diagnose(f"--kari-serve: {exc}")
            return
        config.stash[SERVER_KEY] = server
        state.outputs["dashboard"] = f"{server.url}/ (served during the run)"
        _say(config, server.announce())


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the server (open log streams end within a poll interval)."""
    server = config.stash.get(SERVER_KEY, None)
    if server is not None:
        with guard(config, "stopping the --kari-serve server"):
            server.stop()
        del config.stash[SERVER_KEY]
