"""The ``kari-debug`` command line (also ``python -m pytest_kari_debug.cli``)."""

from __future__ import annotations

from . import flaky, history, live, records, serve, stored
from .app import cli, main

__all__ = ["cli", "main"]

# The command modules register their commands on ``cli`` when imported.
del flaky, history, live, records, serve, stored
