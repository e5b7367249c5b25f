"""``kari-debug import``, ``report`` and ``prune``, and ``--store`` URLs, on both backends."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pytest_kari_debug.cli import cli
from pytest_kari_debug.storage import Store

QUIET = ("-p", "no:cacheprovider", "-p", "no:asyncio")
SHARD_1 = """
def test_one(kari_logger): kari_logger.info("shard one")
def test_two(): assert 0, "shard one fails"
"""
SHARD_2 = """
def test_three(): pass
"""


def kari(store: str, *args: str) -> Result:
    """Run kari-debug in-process against *store*."""
    return CliRunner().invoke(cli, ["--store", store, *args])


@pytest.fixture
def shard_documents(pytester: pytest.Pytester) -> list[Path]:
    """Two shards' --kari-json documents of one run id ``ci-77`` (no store written)."""
    pytester.makepyfile(shard_1=SHARD_1, shard_2=SHARD_2)
    paths = []
    for number in (1, 2):
        result = pytester.runpytest(
            f"shard_{number}.py", "--kari-debug", "--kari-store=none", "--kari-run-id=ci-77",
            f"--kari-json=shard-{number}.json", *QUIET,
        )  # fmt: skip
        assert result.ret in (0, 1)
        paths.append(pytester.path / f"shard-{number}.json")
    return paths


def test_import_joins_shards_and_is_idempotent(
    shard_documents: list[Path], store_location: str
) -> None:
    """Shard documents of one run id import as one run; importing them again adds nothing."""
    first = kari(store_location, "import", *map(str, shard_documents))
    assert first.exit_code == 0, first.output
    assert re.search(r"shard-1\.json: run 'ci-77' \(new, store run \d+\): 2 test", first.stdout)
    assert re.search(r"shard-2\.json: run 'ci-77' \(joined, .*: 1 test\(s\) added", first.stdout)
    again = kari(store_location, "--format", "json", "import", *map(str, shard_documents))
    assert again.exit_code == 0, again.output
    assert [r["added"] for r in json.loads(again.stdout)["imported"]] == [0, 0]
    with contextlib.closing(Store(store_location)) as store:
        runs = store.run_summaries()
        assert len(runs) == 1
        assert runs[0]["outcomes"] == {"failed": 1, "passed": 2}
        assert [r["message"] for r in store.records("log")] == ["shard one"]
        groups = store.error_groups(run_id=runs[0]["id"])
        assert [(g["error_type"], g["run_count"]) for g in groups] == [("AssertionError", 1)]


def test_import_refuses_foreign_and_corrupt_files_by_name(
    shard_documents: list[Path], tmp_path: Path, store_location: str
) -> None:
    """A foreign, corrupt or missing file is named with its reason and nothing of it is
    imported; the good file beside it still is; exit status 1."""
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"format": "other-tool", "tests": []}))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(shard_documents[0].read_text()[:-40])
    bad_test = tmp_path / "bad-test.json"
    document = json.loads(shard_documents[1].read_text())
    document["tests"].append({"outcome": "passed"})
    bad_test.write_text(json.dumps(document))
    result = kari(
        store_location, "import", str(foreign), str(corrupt), str(bad_test),
        str(tmp_path / "missing.json"), str(shard_documents[0]),
    )  # fmt: skip
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert errors[0].startswith(f"kari-debug: error: {str(foreign)!r} not imported: not a pytest")
    assert "'other-tool'" in errors[0]
    assert f"{str(corrupt)!r} not imported: not JSON (" in errors[1]
    assert f"{str(bad_test)!r} not imported: test 1 has no node id" in errors[2]
    assert "missing.json' not imported: cannot read it" in errors[3]
    with contextlib.closing(Store(store_location)) as store:
        runs = store.run_summaries()
        assert [run["tests_count"] for run in runs] == [2]


def test_report_of_a_stored_run_holds_every_shard(
    shard_documents: list[Path], tmp_path: Path, store_location: str
) -> None:
    """`report --run ID --output FILE` writes the --kari-report page of all shards' tests."""
    assert kari(store_location, "import", *map(str, shard_documents)).exit_code == 0
    out = tmp_path / "report.html"
    result = kari(store_location, "report", "--run", "ci-77", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "report of run 'ci-77' (3 tests)" in result.stdout
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    for name in ("test_one", "test_two", "test_three", "shard one fails"):
        assert name in page
    last = kari(store_location, "report", "--output", str(tmp_path / "last.html"))
    assert last.exit_code == 0, last.output
    missing = kari(store_location, "report", "--run", "nope", "--output", str(out))
    assert missing.exit_code == 1
    assert "no run 'nope'" in missing.stderr


def test_report_is_the_page_the_plugin_writes(pytester: pytest.Pytester) -> None:
    """A run's report from the store has the sections the plugin's --kari-report page has."""
    pytester.makepyfile(shard_1=SHARD_1)
    pytester.runpytest("shard_1.py", "--kari-debug", "--kari-report=live.html", *QUIET)
    store = str(pytester.path / ".kari-debug" / "kari.db")
    result = kari(store, "report", "--output", str(pytester.path / "stored.html"))
    assert result.exit_code == 0, result.output
    live = (pytester.path / "live.html").read_text()
    stored = (pytester.path / "stored.html").read_text()

    def headings(page: str) -> list[str]:
        return re.findall(r"<h2[^>]*>([^<]+)</h2>", page)

    assert headings(live)
    assert headings(stored) == headings(live)
    assert len(stored) > 0.5 * len(live)


def test_prune_dry_run_then_prune(store_location: str) -> None:
    """prune --dry-run says what would go and removes nothing; prune removes it."""
    with contextlib.closing(Store(store_location)) as store:
        for n in range(4):
            run_id = store.begin_run({"uuid": f"r{n}", "started_at": float(n)})
            store.write_tests(run_id, [{"nodeid": f"t::{n}", "extension_id": "e"}])
    dry = kari(store_location, "prune", "--keep-runs", "1", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would remove 3 run(s), 3 test(s)" in dry.stdout
    done = kari(store_location, "--format", "json", "prune", "--keep-runs", "1")
    assert json.loads(done.stdout)["runs"] == 3
    with contextlib.closing(Store(store_location)) as store:
        assert [run["uuid"] for run in store.runs()] == ["r3"]
    nothing = kari(store_location, "prune")
    assert nothing.exit_code == 2
    assert "--keep-runs N and/or --older-than DAYS" in nothing.stderr
    asked = kari(store_location, "prune", "--keep-runs", "1", "--baselines")
    assert asked.exit_code == 2


def test_store_option_refuses_unknown_schemes_and_redacts() -> None:
    """--store with an unknown URL scheme is a usage error that never shows the password."""
    result = CliRunner().invoke(cli, ["--store", "mysql://root:hunter2@db/x", "runs", "list"])
    assert result.exit_code == 2
    assert "unknown store URL scheme 'mysql://'" in result.stderr
    assert "hunter2" not in result.output


def test_status_reads_a_postgresql_store(shard_documents: list[Path]) -> None:
    """status and runs read a PostgreSQL store; its URL's password is never printed."""
    from conftest import fresh_postgres_database

    with fresh_postgres_database() as url:
        assert kari(url, "import", *map(str, shard_documents)).exit_code == 0
        status = kari(url, "status")
        assert status.exit_code == 0, status.output
        password = url.split("@")[0].rsplit(":", 1)[1]
        assert password not in status.output
        assert "postgresql://" in status.stdout
        data = json.loads(kari(url, "--format", "json", "status").stdout)
        assert data["store"]["integrity"] == "ok"
        assert data["store"]["size_bytes"] > 0


MIXED_A = """
def test_a1(): raise ValueError("boom")
def test_a2(): raise ValueError("boom")
def test_a3(): pass
"""
MIXED_B = """
def test_b1(): raise ValueError("boom")
def test_b2(): raise KeyError("nope")
"""
MIXED_KILLED = """
import time

def test_k1(): raise ValueError("boom")
def test_k2():
    open("k2-started", "w").close()
    time.sleep(600)
"""


def _error_counts(store_location: str) -> tuple[dict[str, int], dict[str, int]]:
    """Errors per type of run 'mix-1' as the store counts them, and as its stored tests hold."""
    from pytest_kari_debug.views import run_error_groups

    with contextlib.closing(Store(store_location)) as store:
        run = store.get_run("mix-1")
        assert run is not None
        counted: dict[str, int] = {}
        for group in store.error_groups(run_id=run["id"]):
            assert group["count"] == group["run_count"]  # no other run has errors
            counted[group["error_type"]] = counted.get(group["error_type"], 0) + group["run_count"]
        held: dict[str, int] = {}
        for group in run_error_groups(store.tests(run["id"])):
            held[group["error_type"]] = held.get(group["error_type"], 0) + group["count"]
    return counted, held


def test_error_counts_agree_when_live_shards_imports_and_a_killed_shard_mix(
    pytester: pytest.Pytester, store_location: str
) -> None:
    """One run fed by a live shard, an imported shard, repeated imports and a shard killed
    mid-run: its error counts always equal the errors of the tests stored for it."""
    pytester.makepyfile(shard_a=MIXED_A, shard_b=MIXED_B, shard_k=MIXED_KILLED)
    shared = ("--kari-debug", "--kari-run-id=mix-1", *QUIET)
    pytester.runpytest(
        "shard_a.py", *shared, f"--kari-store={store_location}", "--kari-json=a.json"
    ).assert_outcomes(passed=1, failed=2)
    counted, held = _error_counts(store_location)
    assert counted == held == {"ValueError": 2}
    pytester.runpytest(
        "shard_b.py", *shared, "--kari-store=none", "--kari-json=b.json"
    ).assert_outcomes(failed=2)
    for _ in range(2):  # the live shard's own document and a second import change nothing
        done = kari(store_location, "import", "b.json", "a.json")
        assert done.exit_code == 0, done.output
        counted, held = _error_counts(store_location)
        assert counted == held == {"ValueError": 3, "KeyError": 1}
    killed = subprocess.Popen(
        [sys.executable, "-m", "pytest", "shard_k.py", *shared, f"--kari-store={store_location}"],
        cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (pytester.path / "k2-started").exists():
        assert killed.poll() is None, "shard k ended before k2"
        assert time.monotonic() < deadline, "shard k never got to k2"
        time.sleep(0.05)
    killed.kill()
    killed.wait(timeout=60)
    counted, held = _error_counts(store_location)
    assert held == {"ValueError": 4, "KeyError": 1}  # k1 was committed before k2 started
    # The next run on the store imports the killed shard's journal and recounts the run.
    pytester.makepyfile(test_next="def test_next(): pass")
    pytester.runpytest(
        "test_next.py", "--kari-debug", f"--kari-store={store_location}", *QUIET
    ).assert_outcomes(passed=1)
    counted, held = _error_counts(store_location)
    assert counted == held == {"ValueError": 4, "KeyError": 1}


def test_report_rebuilt_from_the_store_shows_todays_error_statuses(
    pytester: pytest.Pytester,
) -> None:
    """An error group resolved after its run shows as resolved in `kari-debug report`; the
    run's own --kari-report page keeps the status it had when the run ended."""
    pytester.makepyfile(shard_1=SHARD_1)
    pytester.runpytest("shard_1.py", "--kari-debug", "--kari-report=live.html", *QUIET)
    store = str(pytester.path / ".kari-debug" / "kari.db")
    shown = kari(store, "--format", "json", "errors", "show")
    assert shown.exit_code == 0, shown.output
    (group,) = json.loads(shown.stdout)
    assert group["status"] == "open"
    resolved = kari(store, "errors", "resolve", group["group"][:8], "--notes", "fixed later")
    assert resolved.exit_code == 0, resolved.output
    result = kari(store, "report", "--output", str(pytester.path / "stored.html"))
    assert result.exit_code == 0, result.output

    def statuses(page: str) -> list[str]:
        return re.findall(r'"status":\s*"(open|resolved|regressed|ignored)"', page)

    assert "resolved" in statuses((pytester.path / "stored.html").read_text())
    assert "resolved" not in statuses((pytester.path / "live.html").read_text())
    assert "open" in statuses((pytester.path / "live.html").read_text())
