"""Shared fixtures of the test suite."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from state_guard import no_global_state_left_behind  # noqa: F401  (autouse, every test)

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.manager import ExtensionDebugManager

REPO = Path(__file__).resolve().parent.parent

# Imported once here, so pytester's in-process runs find it imported (not imported anew).
with contextlib.suppress(ImportError):
    import psycopg  # noqa: F401


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


def read_json(pytester: pytest.Pytester, name: str = "run.json") -> dict[str, Any]:
    """The JSON document an inner run wrote (``--kari-json=run.json`` unless *name* says)."""
    document = json.loads((pytester.path / name).read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{name} holds {type(document).__name__}, not an object"
    return document


def run_with_json(
    pytester: pytest.Pytester, *args: str, subprocess: bool = False
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run pytest in *pytester* (in-process, or in a *subprocess*) with ``--kari-json=run.json``
    and *args*; return the result and the run's JSON document."""
    runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    result = runner("--kari-json=run.json", *args)
    return result, read_json(pytester)


@pytest.fixture
def manager() -> ExtensionDebugManager:
    """A fresh manager with every component on."""
    configuration = DebugConfiguration(profiling_enabled=True, tracing_enabled=True)
    return ExtensionDebugManager("test-ext", "Test Extension", configuration)


@pytest.fixture
def pytester_store(pytester: pytest.Pytester) -> Path:
    """Path of the store a pytester run writes by default."""
    return pytester.path / ".kari-debug" / "kari.db"


POSTGRES_URL_VARIABLE = "KARI_DEBUG_TEST_POSTGRES_URL"


def postgres_admin_url() -> str:
    """URL of the PostgreSQL server the store tests use (``.ci/postgres start`` starts one).

    Without one the PostgreSQL tests skip, unless CI demands every tool (then they fail).
    """
    url = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if not url:
        message = (
            f"no PostgreSQL server: set {POSTGRES_URL_VARIABLE} (export $(bash .ci/postgres start))"
        )
        if os.environ.get("KARI_DEBUG_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("psycopg")
    return url


@contextlib.contextmanager
def store_at_schema(location: str, version: int) -> Iterator[Any]:
    """A store at *location* migrated only up to schema *version* (an older release's), for a
    migration test to fill in one transaction; checked at that version and closed after."""
    from pytest_kari_debug.backends import open_backend
    from pytest_kari_debug.storage import MIGRATIONS

    backend = open_backend(location)
    try:
        backend.migrate(MIGRATIONS[:version])
        with backend.transaction() as db:
            yield db
        assert backend.schema_version() == version
    finally:
        backend.close()


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the test server; its URL (dropped afterwards)."""
    import psycopg

    admin = postgres_admin_url()
    name = f"kari_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a fresh store lives: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "kari.db")
        return
    with fresh_postgres_database() as url:
        yield url
