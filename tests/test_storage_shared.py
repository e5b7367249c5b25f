"""A store shared by many processes: joined runs, imports, retention, both backends."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import fresh_postgres_database, postgres_admin_url

from pytest_kari_debug.backends import parse_location, redact
from pytest_kari_debug.exceptions import ConfigurationError, StoreError
from pytest_kari_debug.storage import Store


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    """A fresh store (a SQLite file, then a PostgreSQL database)."""
    with contextlib.closing(Store(store_location)) as opened:
        yield opened


def _test(nodeid: str, finished_at: float, outcome: str = "passed") -> dict[str, Any]:
    return {
        "nodeid": nodeid,
        "extension_id": "ext",
        "outcome": outcome,
        "started_at": finished_at - 0.5,
        "finished_at": finished_at,
        "duration_ms": 500.0,
        "phases": {"call": 400.0},
        "collected_data": {"logging": {"records": [{"ts": finished_at, "message": nodeid}]}},
    }


def _document(uuid: str, tests: list[dict[str, Any]], **run: Any) -> dict[str, Any]:
    return {
        "format": "pytest-kari-debug/run",
        "version": 1,
        "run": {"uuid": uuid, "started_at": 100.0, "finished_at": 200.0, "exit_status": 0, **run},
        "summary": {},
        "tests": tests,
        "diagnostics": [],
        "sections": {},
    }


def test_shards_with_one_run_id_form_one_run(store: Store) -> None:
    """Two shards of one uuid: one run, earliest start, latest end, summed tests, worst exit."""
    first, joined_first = store.join_run({"uuid": "ci-7", "started_at": 50.0})
    second, joined_second = store.join_run({"uuid": "ci-7", "started_at": 40.0})
    assert (first, joined_first, joined_second) == (second, False, True)
    store.write_tests(first, [_test("a.py::t1", 60.0)])
    store.write_tests(second, [_test("b.py::t2", 61.0, "failed"), _test("b.py::t3", 62.0)])
    store.finish_run(first, finished_at=90.0, exit_status=1, data={"diagnostics": ["x"]})
    store.finish_run(second, finished_at=80.0, exit_status=0, data={"diagnostics": ["y"]})
    run = store.get_run("ci-7")
    assert (run["started_at"], run["finished_at"], run["exit_status"]) == (40.0, 90.0, 1)
    assert run["data"]["shards"] == 2
    assert run["data"]["diagnostics"] == ["x", "y"]
    summary = store.run_summaries()[0]
    assert summary["outcomes"] == {"failed": 1, "passed": 2}


def test_import_joins_by_run_id_and_twice_changes_nothing(store: Store) -> None:
    """A shard's document joins the run of its uuid; importing it again adds nothing."""
    run_id, _ = store.join_run({"uuid": "ci-8", "started_at": 150.0})
    store.write_tests(run_id, [_test("a.py::live", 160.0)])
    document = _document("ci-8", [_test("b.py::t1", 170.0), _test("b.py::t2", 171.0)])
    result = store.import_run(document)
    assert (result.run_id, result.added, result.skipped, result.joined) == (run_id, 2, 0, True)
    again = store.import_run(document)
    assert (again.added, again.skipped) == (0, 2)
    assert len(store.tests(run_id)) == 3
    assert len(store.records("log", run_id=run_id)) == 3
    assert store.get_run("ci-8")["started_at"] == 100.0


def test_prune_keeps_newest_runs_baselines_and_resolutions(store: Store) -> None:
    """keep_runs drops the oldest runs with their tests and records; baselines stay."""
    ids = []
    for day in range(5):
        run_id = store.begin_run({"uuid": f"r{day}", "started_at": 1000.0 + day * 86400})
        store.write_tests(run_id, [_test(f"t.py::d{day}", 1001.0 + day * 86400)])
        ids.append(run_id)
    store.save_baseline("main", {"created_at": 1000.0, "tests": {}}, ids[0])
    store.resolve("alert", "ext", "a1", notes=None, at=1000.0)
    dry = store.prune(keep_runs=2, dry_run=True)
    assert (dry.runs, dry.tests, dry.records) == (ids[:3], 3, 3)
    assert len(store.runs()) == 5
    done = store.prune(keep_runs=2, protect=[ids[0]])
    assert done.runs == ids[1:3]
    assert [r["id"] for r in store.runs()] == [ids[4], ids[3], ids[0]]
    assert store.load_baseline("main") is not None
    assert store.resolutions("alert")
    aged = store.prune(older_than_days=1, now=1000.0 + 5 * 86400, baselines=True)
    assert aged.runs == [ids[0], ids[3]]
    assert aged.baselines == 1
    assert [r["id"] for r in store.runs()] == [ids[4]]
    assert store.resolutions("alert")  # not asked for: kept


def test_prune_stops_at_its_time_budget(store: Store) -> None:
    """With no time left, prune removes nothing now and says it is not complete."""
    for n in range(3):
        store.begin_run({"uuid": f"r{n}", "started_at": float(n)})
    result = store.prune(keep_runs=1, budget_s=-1.0)
    assert (result.runs, result.complete) == ([], False)
    assert len(store.runs()) == 3


def test_pruning_a_sqlite_store_shrinks_the_file(tmp_path: Path) -> None:
    """After pruning, reclaiming space makes the SQLite file smaller."""
    path = tmp_path / "kari.db"
    store = Store(path)
    for n in range(30):
        run_id = store.begin_run({"uuid": f"r{n}", "started_at": float(n)})
        big = [_test(f"t.py::t{k}", float(n)) for k in range(20)]
        for test in big:
            test["collected_data"]["logging"]["records"] *= 20
        store.write_tests(run_id, big)
    store.reclaim_space()
    before = path.stat().st_size
    store.prune(keep_runs=2)
    store.reclaim_space()
    after = path.stat().st_size
    store.close()
    assert after < before / 4


def test_password_is_redacted_and_unknown_schemes_are_refused() -> None:
    """A URL's password never shows; a scheme other than postgresql:// is a usage error."""
    url = "postgresql://kari:s3cr%40t@db.example:5433/ci?sslmode=require&password=other"
    shown = redact(url)
    assert "s3cr" not in shown
    assert "other" not in shown
    assert shown.startswith("postgresql://kari:***@db.example:5433/ci")
    assert parse_location(url) == url
    assert parse_location("out/kari.db") == Path("out/kari.db")
    with pytest.raises(
        ConfigurationError, match=r"unknown store URL scheme 'mysql://'.*postgresql"
    ):
        parse_location("mysql://root:hunter2@h/db")
    with pytest.raises(ConfigurationError) as caught:
        parse_location("mysql://root:hunter2@h/db")
    assert "hunter2" not in str(caught.value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refusing_server_is_a_store_error_without_the_password() -> None:
    """Nothing listening on the port: StoreError naming the store, password redacted."""
    pytest.importorskip("psycopg")
    url = f"postgresql://kari:topsecret@127.0.0.1:{_free_port()}/kari"
    with pytest.raises(StoreError, match=r"cannot connect to store 'postgresql://kari:\*\*\*@"):
        Store(url)
    with pytest.raises(StoreError) as caught:
        Store(url)
    assert "topsecret" not in str(caught.value)


def test_a_wrong_password_is_a_store_error_without_the_password() -> None:
    """A wrong password: StoreError naming the failed authentication, password redacted."""
    admin = postgres_admin_url()
    wrong = admin.replace("@", "x-wrong@", 1) if ":" in admin.split("@")[0][13:] else admin
    with pytest.raises(StoreError, match="password authentication failed") as caught:
        Store(wrong)
    assert "x-wrong" not in str(caught.value)


def test_a_database_without_permission_is_a_store_error() -> None:
    """A role that may not create tables: StoreError naming the permission problem."""
    import psycopg

    with fresh_postgres_database() as url, psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP ROLE IF EXISTS kari_reader")
        db.execute("CREATE ROLE kari_reader LOGIN PASSWORD 'reader-pw'")
        db.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        try:
            host = url.split("@", 1)[1]
            with pytest.raises(StoreError, match="permission denied") as caught:
                Store(f"postgresql://kari_reader:reader-pw@{host}")
            assert "reader-pw" not in str(caught.value)
        finally:
            db.execute("DROP OWNED BY kari_reader")
            db.execute("DROP ROLE kari_reader")


WRITER = textwrap.dedent(
    """
    import sys
    from pytest_kari_debug.storage import Store

    url, name = sys.argv[1], sys.argv[2]
    store = Store(url)
    run_id, _ = store.join_run({"uuid": "shared-run", "started_at": 1.0})
    for n in range(60):
        test = {"nodeid": f"{name}::t{n}", "extension_id": "ext", "outcome": "passed",
                "finished_at": float(n), "collected_data": {"logging": {"records": [
                {"ts": float(n), "message": "m"}]}}}
        store.write_tests(run_id, [test])
        store.sync_error_groups(run_id, [{"extension_id": "ext", "fingerprint": "f1",
                                          "error_type": "E", "count": 1}])
    store.save_baseline(name, {"created_at": 1.0}, run_id)
    store.finish_run(run_id, finished_at=2.0, exit_status=0, data={})
    store.close()
    """
)


def test_two_processes_write_one_postgresql_store_at_once(tmp_path: Path) -> None:
    """Two processes migrate, join one run and commit tests into one fresh database at once."""
    with fresh_postgres_database() as url:
        script = tmp_path / "writer.py"
        script.write_text(WRITER)
        procs = [
            subprocess.Popen([sys.executable, str(script), url, name], stderr=subprocess.PIPE)
            for name in ("w1", "w2")
        ]
        errors = [proc.communicate(timeout=120)[1].decode() for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], errors
        with contextlib.closing(Store(url)) as store:
            runs = store.runs()
            assert len(runs) == 1
            tests = store.tests(runs[0]["id"])
            assert len(tests) == 120
            assert len({t["id"] for t in tests}) == 120
            assert len(store.records("log", run_id=runs[0]["id"])) == 120
            assert {b["name"] for b in store.baselines()} == {"w1", "w2"}
            assert runs[0]["data"]["shards"] == 2
            assert len(store.error_groups()) == 1


def test_shards_add_their_errors_to_the_run(store: Store) -> None:
    """Shards of one run each syncing their errors add up (a single run's resync replaces)."""
    run_id, _ = store.join_run({"uuid": "ci-9", "started_at": 1.0})
    group = {"extension_id": "ext", "fingerprint": "f1", "error_type": "KeyError"}
    store.sync_error_groups(run_id, [{**group, "count": 2, "tests": 1, "last_ts": 5.0}],
                            accumulate=True)  # fmt: skip
    synced = store.sync_error_groups(
        run_id, [{**group, "count": 3, "tests": 2, "last_ts": 4.0}], accumulate=True
    )
    assert (synced[0]["run_count"], synced[0]["count"], synced[0]["runs_seen"]) == (5, 5, 1)
    history = store.error_group_history(synced[0]["id"])
    assert [(h["count"], h["tests"], h["last_ts"]) for h in history] == [(5, 3, 5.0)]
    again = store.sync_error_groups(run_id, [{**group, "count": 1}])
    assert (again[0]["run_count"], again[0]["count"]) == (1, 1)


def test_hostile_text_round_trips_on_both_backends(store: Store) -> None:
    """NUL characters and non-ASCII text in node ids, and lone surrogates in records, are
    stored and read back (PostgreSQL refuses NUL in text: the store escapes it)."""
    nodeid = "t.py::test[\x00-é]"
    test = _test(nodeid, 10.0, "failed")
    test["extension_id"] = "ext-ü"
    test["collected_data"]["logging"]["records"] = [
        {"ts": 10.0, "level": "ERROR", "message": "nul \x00 surrogate \udcff", "name": "n"}
    ]
    test["huge"] = 2**70  # written by the standard library's JSON
    run_id = store.begin_run({"uuid": "hostile\x00", "started_at": 1.0, "args": ["a\x00"]})
    store.write_tests(run_id, [test])
    stored = store.tests(run_id)
    assert len(stored) == 1
    assert stored[0]["collected_data"]["logging"]["records"][0]["message"].startswith("nul ")
    assert store.extensions() == ["ext-ü"]
    assert store.slim_tests(None, run_id=run_id)[0]["collected_data"]["logging"]["records"] == [
        {"level": "ERROR"}
    ]
    assert len(store.select_records("log", levels=["error"], nodeid="test[")) == 1
    assert store.run_summaries()[0]["outcomes"] == {"failed": 1}


#: A lone surrogate (a non-UTF-8 file name), NUL, non-ASCII and SQL in one string.
HOSTILE = "h\udcff\x00é🙂'; DROP TABLE runs; --"


def _kept(value: Any) -> None:
    """*value* is *HOSTILE* as the store keeps it: writable UTF-8, nothing else lost."""
    assert isinstance(value, str)
    value.encode("utf-8")  # no lone surrogate left
    assert value.startswith("h\\udcff")
    assert value.endswith("é🙂'; DROP TABLE runs; --")


def test_hostile_text_outside_test_records_is_kept_on_both_backends(store: Store) -> None:
    """Run metadata, progress, diagnostics, alerts, error groups, resolutions and their notes
    and baseline names take any text: stored, found again by the same text, read back."""
    run_id = store.begin_run(
        {"uuid": HOSTILE, "started_at": 1.0, "rootdir": HOSTILE, "args": [HOSTILE],
         "git_commit": HOSTILE, "git_branch": HOSTILE, "host": HOSTILE,
         "python_version": HOSTILE, "pytest_version": HOSTILE, "plugin_version": HOSTILE}
    )  # fmt: skip
    store.set_run_progress(run_id, {"collected": 1, "running": [{"nodeid": HOSTILE}]})
    store.finish_run(run_id, finished_at=2.0, exit_status=0, data={"diagnostics": [HOSTILE]})
    store.write_records(
        "alert", HOSTILE, [{"ts": 1.5, "name": HOSTILE, "level": HOSTILE, "message": HOSTILE,
                            "session_id": HOSTILE}], run_id=run_id,
    )  # fmt: skip
    columns = ("extension_id", "fingerprint", "error_type", "message", "template", "category")
    group = dict.fromkeys((*columns, "culprit"), HOSTILE)
    (synced,) = store.sync_error_groups(run_id, [{**group, "count": 2, "sample": {"m": HOSTILE}}])
    store.resolve_error_group(synced["id"], notes=HOSTILE)
    store.resolve("alert", HOSTILE, HOSTILE, notes=HOSTILE, at=3.0)
    store.save_baseline(HOSTILE, {"created_at": 4.0, "tests": {HOSTILE: {"call_ms": 1.0}}}, run_id)

    run = store.get_run(HOSTILE)  # found by the same text
    assert run is not None
    assert run["id"] == run_id
    for column in ("uuid", "rootdir", "git_commit", "git_branch", "host", "python_version"):
        _kept(run[column])
    _kept(run["args"][0])
    _kept(run["data"]["diagnostics"][0])
    _kept(run["data"]["progress"]["running"][0]["nodeid"])
    (alert,) = store.select_records("alert", extension_id=HOSTILE)
    for key in ("name", "level", "message", "session_id"):
        _kept(alert[key])
    (stored,) = store.error_groups(extension_id=HOSTILE)
    for key in ("fingerprint", "error_type", "message", "template", "category", "culprit"):
        _kept(stored[key])
    _kept(stored["notes"])
    assert stored["status"] == "resolved"
    _kept(stored["sample"]["m"])
    assert store.get_error_group(HOSTILE) is not None
    ((extension, key), resolution) = next(iter(store.resolutions("alert").items()))
    for text in (extension, key, resolution["notes"]):
        _kept(text)
    assert store.load_baseline(HOSTILE)["tests"]  # type: ignore[index]
    _kept(store.baselines()[0]["name"])
    assert len(store.runs()) == 1  # the SQL in the text stayed text
