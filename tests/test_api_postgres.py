"""The REST API, dashboard and CLI over a PostgreSQL store that two CI shards wrote at once."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import EXT, RUN, framework_client
from click.testing import CliRunner
from conftest import REPO, fresh_postgres_database

from pytest_kari_debug.api import PREFIX, create_app
from pytest_kari_debug.cli import cli
from pytest_kari_debug.storage import Store

SHARD_2 = """
import pytest

pytestmark = pytest.mark.kari_extension("store-ext")


def test_third(kari_errors):
    kari_errors.record_error("ValueError", "invalid input 9")
"""


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL store that two pytest processes (shards of run ``ci-5``) wrote at once."""
    folder = tmp_path_factory.mktemp("shards")
    (folder / "test_run.py").write_text(RUN)
    (folder / "test_third.py").write_text(SHARD_2)
    (folder / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "KARI_RUN_ID": "ci-5"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    with fresh_postgres_database() as url:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        shards = [
            subprocess.Popen(
                [*command, "--kari-debug", f"--kari-store={url}", name],
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for name in ("test_run.py", "test_third.py")
        ]
        outputs = [shard.communicate(timeout=180)[0] for shard in shards]
        assert [shard.returncode for shard in shards] == [0, 0], outputs
        for output in outputs:
            assert "run 'ci-5': store run" in output
            assert url.split("@")[0].rsplit(":", 1)[1] not in output  # the password
        yield url


@pytest.fixture
def client(shared_store: str) -> Iterator[Any]:
    """A test client of the app serving the shared PostgreSQL store."""
    app = create_app(store_path=shared_store, include_registry=False)
    with framework_client(app) as test_client:
        yield test_client


def test_two_concurrent_shards_are_one_run_with_summed_errors(shared_store: str) -> None:
    """Shards running at once wrote one run: three tests, errors of both in its groups."""
    with contextlib.closing(Store(shared_store)) as store:
        runs = store.run_summaries()
        assert [(run["uuid"], run["tests_count"]) for run in runs] == [("ci-5", 3)]
        assert runs[0]["data"]["shards"] == 2
        # Summed over the groups themselves: two groups may show the same newest message.
        counts = [g["run_count"] for g in store.error_groups(run_id=runs[0]["id"])]
        assert sum(counts) == 4


def test_dashboard_reads_and_resolves_in_the_shared_store(client: Any, shared_store: str) -> None:
    """The dashboard shows the stored extension; a resolution made there is what every
    other reader of the store (the CLI here) sees."""
    overview = client.get(f"{PREFIX}/dashboard/{EXT}").json()
    assert overview["source"] == "store"
    assert overview["overview"]["last_run"]["outcomes"] == {"passed": 3}
    errors = client.get(f"{PREFIX}/dashboard/{EXT}/errors").json()
    group = next(g for g in errors["analysis"]["top_groups"] if "timed out" in str(g))
    fingerprint = group["fingerprint"]
    answer = client.post(
        f"{PREFIX}/dashboard/{EXT}/errors/{fingerprint}/resolve", json={"notes": "fixed"}
    )
    assert answer.status_code == 200, answer.text
    shown = CliRunner().invoke(
        cli, ["--store", shared_store, "--extension-id", EXT, "errors", "show", "--unresolved"]
    )
    assert shown.exit_code == 0, shown.output
    assert "invalid input" in shown.stdout
    assert "timed out" not in shown.stdout
