"""The pytest plugin (entry point ``kari_debug``): the core and one module per feature."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "pytest_kari_debug.plugin.core",
    "pytest_kari_debug.plugin.sharing",
    "pytest_kari_debug.plugin.logcapture",
    "pytest_kari_debug.plugin.errors",
    "pytest_kari_debug.plugin.tracing",
    "pytest_kari_debug.plugin.gates",
    "pytest_kari_debug.plugin.alerts",
    "pytest_kari_debug.plugin.metrics",
    "pytest_kari_debug.plugin.profiling",
    "pytest_kari_debug.plugin.report",
    "pytest_kari_debug.plugin.markdown",
    "pytest_kari_debug.plugin.junit",
    "pytest_kari_debug.plugin.serve",
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the ``pytest_kari_debug_*`` hook specifications."""
    from .. import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
