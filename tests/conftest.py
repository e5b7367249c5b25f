"""Shared fixtures of the test suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager

REPO = Path(__file__).resolve().parent.parent


def require_tool(path_or_name: str) -> str:
    """Return the path of an external tool; skip the test without it, unless CI demands it.

    ``.ci/run`` installs every tool and sets ``KARI_DEBUG_REQUIRE_TOOLS=1``, so in CI a
    missing tool fails instead of skipping.
    """
    found = path_or_name if os.path.isabs(path_or_name) else shutil.which(path_or_name)
    if found and os.path.exists(found):
        return found
    message = f"{path_or_name} is not installed (Debian package; .ci/run installs it)"
    if os.environ.get("KARI_DEBUG_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _quiet_inner_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester runs: set pytest-asyncio's loop scope so it does not warn in every inner run."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS when it starts
        monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")


@pytest.fixture
def manager() -> ExtensionDebugManager:
    """A fresh manager with every component on."""
    configuration = DebugConfiguration(profiling_enabled=True, tracing_enabled=True)
    return ExtensionDebugManager("test-ext", "Test Extension", configuration)


@pytest.fixture
def pytester_store(pytester: pytest.Pytester) -> Path:
    """Path of the store a pytester run writes by default."""
    return pytester.path / ".kari-debug" / "kari.db"
