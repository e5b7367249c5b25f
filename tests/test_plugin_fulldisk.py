"""A real full file system (a small tmpfs mounted for the test): outcomes stand, nothing is
lost, no stale or half-written file is left, and the diagnostics say what happened.

Mounting needs root with CAP_SYS_ADMIN (CI here runs as root; a container without that
capability cannot mount, and these tests then skip, saying so: the ENOSPC simulations of
``test_atomic.py`` and ``test_plugin_durability.py`` still run there).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pytest_kari_debug.cli import cli
from pytest_kari_debug.storage import Store

#: Twenty tests that log (one fails); FILL fills the disk at the given test, FREE frees it.
SUITE = """
import os
import pytest

FILLER = os.environ["KARI_TEST_FILLER"]


def _fill():
    try:  # closing the file flushes what its buffer holds: it may find the disk full too
        with open(FILLER, "wb") as handle:
            while True:
                handle.write(b"\\0" * 65536)
                handle.flush()
    except OSError:
        pass


@pytest.mark.parametrize("n", range(20))
def test_many(kari_logger, n):
    if n == int(os.environ.get("KARI_TEST_FILL_AT", "-1")):
        _fill()
    if n == int(os.environ.get("KARI_TEST_FREE_AT", "-1")):
        os.remove(FILLER)
    for i in range(20):
        kari_logger.info("line %d of test %d %s" % (i, n, "x" * 200))
    assert n != 7
"""
SIZE = "4m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own, unmounted afterwards (skips where mounting is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(path: Path) -> None:
    with path.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()


def _run(project: Path, disk: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # A journal in a temporary folder goes to a folder the test can check is left empty.
    temp = project / "tmp"
    temp.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kari-debug",
         f"--kari-store={disk / 'kari.db'}", *args],
        cwd=project, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "TMPDIR": str(temp), "KARI_TEST_FILLER": str(disk / "filler"),
             **env},
    )  # fmt: skip


def _project(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_suite=SUITE)
    # Each test committed as it is kept (no group): the store meets the full disk mid-run.
    pytester.makeconftest(
        "import pytest_kari_debug.plugin.committer as c\nc.GROUP_COMMIT_S = 0.0\n"
    )
    return pytester.path


def _stored(disk: Path) -> list[tuple[str, list[str]]]:
    with contextlib.closing(Store(disk / "kari.db", create=False)) as store:
        runs = sorted(store.runs(), key=lambda run: run["id"])
        return [(run["status"], [t["outcome"] for t in store.tests(run["id"])]) for run in runs]


OUTCOMES = ["passed"] * 7 + ["failed"] + ["passed"] * 12


def test_a_full_disk_before_the_run(pytester: pytest.Pytester, small_disk: Path) -> None:
    """The store's disk is full when the run starts: outcomes stand, the store is named in
    one diagnostic, the stale report on that disk is removed, the JSON elsewhere holds every
    test, no journal is left behind, and `kari-debug import` stores the run once there is
    room again."""
    project = _project(pytester)
    first = _run(project, small_disk, "-k", "many and 0")  # the store exists, with a run
    assert first.returncode == 0, first.stdout
    (small_disk / "report.html").write_text("<html>an earlier run's report</html>")
    _fill(small_disk / "filler")
    done = _run(project, small_disk, "--kari-json=run.json", f"--kari-report={small_disk}/r.html")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 19 passed" in done.stdout
    assert f"store disabled: cannot open store '{small_disk / 'kari.db'}'" in done.stdout
    assert "its file system is full" in done.stdout
    assert "No space left on device" in done.stdout  # the report
    assert not (small_disk / "r.html").exists()
    document = json.loads((project / "run.json").read_text())
    assert [t["outcome"] for t in document["tests"]] == OUTCOMES
    assert not list(small_disk.glob("kari.db-runs/*"))  # no empty journal for the next run
    # nor a temporary one (the report's compiled template is a cache kept for the next run)
    left = [p.name for p in (project / "tmp").iterdir()]
    assert not [name for name in left if not name.startswith("_jinja2-cache-")], left
    (small_disk / "filler").unlink()
    imported = CliRunner().invoke(cli, ["--store", str(small_disk / "kari.db"), "import",
                                        str(project / "run.json")])  # fmt: skip
    assert imported.exit_code == 0, imported.output
    assert _stored(small_disk) == [("finished", ["passed", "passed"]), ("finished", OUTCOMES)]


def test_a_disk_filling_up_mid_run_then_freed(pytester: pytest.Pytester, small_disk: Path) -> None:
    """The disk fills during the run (test 4 fills it, test 12 frees it): the tests finished
    meanwhile are kept and written once there is room, every one is in the store, and one
    diagnostic says the store failed for a while."""
    project = _project(pytester)
    done = _run(project, small_disk, KARI_TEST_FILL_AT="4", KARI_TEST_FREE_AT="12")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 19 passed" in done.stdout
    assert "failed during the run" in done.stdout, done.stdout
    assert "every test was written once it answered again" in done.stdout
    assert _stored(small_disk) == [("finished", OUTCOMES)]
    assert not (small_disk / "kari.db-runs").exists()
    assert not list((project / "tmp").iterdir())


def test_a_disk_full_to_the_end_names_the_tests_not_stored(
    pytester: pytest.Pytester, small_disk: Path
) -> None:
    """The disk fills during the run and stays full: outcomes stand, the diagnostic names the
    tests the store lacks, and the next run (with room again) imports them from the journal."""
    project = _project(pytester)
    done = _run(project, small_disk, KARI_TEST_FILL_AT="4")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 19 passed" in done.stdout, done.stdout
    assert "test(s) not stored: test_suite.py::test_many[" in done.stdout, done.stdout
    (small_disk / "filler").unlink()
    ((status, stored),) = _stored(small_disk)
    # Its end could not be written either: without a recorded end, its process gone, it
    # reads as crashed (the JSON and the terminal said how it ended).
    assert status == "crashed"
    assert stored == OUTCOMES[: len(stored)]
    assert len(stored) < 20
    journal = next((small_disk / "kari.db-runs").glob("*.jsonl"))
    kept = journal.read_bytes().count(b"\n") - 1  # its complete lines, after the header
    assert kept >= len(stored)
    again = _run(project, small_disk, "-k", "many and 0")
    assert again.returncode == 0, again.stdout
    assert "imported the journal of 1 " in again.stdout
    (_, outcomes), _ = _stored(small_disk)
    assert outcomes == OUTCOMES[:kept]
