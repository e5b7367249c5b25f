"""Tests' histories across stored runs: new failures, fixed and flaky tests (history.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from api_support import framework_client

from pytest_kari_debug.api import PREFIX, create_app
from pytest_kari_debug.cli import main
from pytest_kari_debug.history import build_history, load_history
from pytest_kari_debug.storage import Store

FLIP_TEST = """
import os

def test_steady():
    pass

def test_flip():
    assert os.environ.get("KARI_FLIP") != "fail"
"""


def _history(*outcomes: str):
    rows = [(run, "t::a", o, 10.0 * run) for run, o in enumerate(outcomes, 1) if o]
    return build_history(list(range(1, len(outcomes) + 1)), rows).get("t::a")


def test_new_failure_needs_a_previous_pass() -> None:
    """A test failing now after a pass is a new failure; failing twice in a row is not."""
    assert _history("passed", "failed").new_failure
    assert not _history("failed", "failed").new_failure
    assert _history("passed", "failed").badges() == ["new failure"]


def test_first_run_has_no_badges() -> None:
    """With one run there is nothing to compare with: no new failure."""
    history = _history("failed")
    assert history is not None
    assert history.badges() == []


def test_a_new_test_failing_is_a_new_failure() -> None:
    """A test that did not run before and fails now (with older runs stored) is new."""
    assert _history("", "failed").new_failure


def test_fixed_after_a_failure_skips_ignored() -> None:
    """Passing now after a failure is 'fixed', looking past skipped runs."""
    assert _history("failed", "skipped", "passed").fixed
    assert not _history("passed", "passed").fixed


def test_flaky_counts_failures_of_the_window() -> None:
    """A test that flips at least twice is flaky, and says how often it failed."""
    history = _history("passed", "failed", "passed", "failed", "passed")
    assert history is not None
    assert history.flaky
    assert "flaky (failed 2 of last 5)" in history.badges()
    regression = _history("passed", "passed", "failed", "failed")
    assert regression is not None
    assert not regression.flaky  # one change is a regression, not flakiness


def test_rerun_in_one_run_counts_its_last_record() -> None:
    """A test recorded twice in a run counts once, with its last outcome."""
    rows = [(1, "t::a", "passed", 1.0), (2, "t::a", "failed", 1.0), (2, "t::a", "passed", 2.0)]
    history = build_history([1, 2], rows).get("t::a")
    assert history is not None
    assert history.outcomes == ("passed", "passed")
    assert history.durations == (1.0, 2.0)


def test_runs_must_be_positive(tmp_path: Path) -> None:
    """A window of zero runs is refused, naming the value."""
    store = Store(tmp_path / "kari.db")
    with pytest.raises(ValueError, match="runs must be a positive integer, got 0"):
        load_history(store, runs=0)
    store.close()


class CountingStore(Store):
    """A store that counts the SQL statements run through it."""

    statements = 0

    def _query(self, sql: str, params=()):  # type: ignore[no-untyped-def]
        CountingStore.statements += 1
        return super()._query(sql, params)


def test_history_of_many_tests_costs_two_queries(store_location: str) -> None:
    """The window's run ids and every test's outcomes come in two queries, not one per test."""
    store = CountingStore(store_location)
    for run in range(4):
        run_id = store.begin_run({"uuid": f"run-{run}", "started_at": float(run)})
        tests = [
            {"nodeid": f"t.py::test_{i}", "outcome": "failed" if (i + run) % 2 else "passed",
             "duration_ms": float(i)}
            for i in range(300)
        ]  # fmt: skip
        store.write_tests(run_id, tests)
    CountingStore.statements = 0
    history = load_history(store, runs=3)
    assert CountingStore.statements == 2
    assert len(history.run_ids) == 3
    assert len(history.tests) == 300
    assert history.get("t.py::test_0") is not None
    assert len(history.flaky()) == 300  # every test flips in the three runs
    store.close()


def test_three_pytester_runs_sharing_a_store(pytester: pytest.Pytester) -> None:
    """Passing, failing, passing again: new failure on run 2, fixed and flaky on run 3."""
    pytester.makepyfile(test_flip=FLIP_TEST)
    store = pytester.path / "kari.db"
    args = ["--kari-debug", f"--kari-store={store}", "--kari-report=report.html"]
    badges = []
    for flip in ("pass", "fail", "pass"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("KARI_FLIP", flip)
            pytester.runpytest(*args)
        html = (pytester.path / "report.html").read_text(encoding="utf-8")
        data = html.split('id="kari-data">', 1)[1].split("</script>", 1)[0]
        rows = {t["nodeid"]: t for t in json.loads(data)["tests"]}
        flip = rows["test_flip.py::test_flip"]
        badges.append(flip.get("hb", []))
    assert badges == [[], ["new failure"], ["fixed", "flaky (failed 1 of last 3)"]]
    assert flip["h"].split(" ")[0] == "PFP"  # oldest first, then the three durations
    assert len(flip["h"].split(" ")) == 4
    assert 'id="flaky"' in html
    assert "flaky (failed 1 of last 3)" in html
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def _flipping_store(path: Path) -> Path:
    """A store of four runs: test_flip passes, fails, passes, fails; test_steady passes."""
    store = Store(path)
    for run, outcome in enumerate(("passed", "failed", "passed", "failed")):
        run_id = store.begin_run({"uuid": f"run-{run}", "started_at": float(run)})
        store.write_tests(
            run_id,
            [
                {"nodeid": "t.py::test_flip", "outcome": outcome, "duration_ms": 10.0 + run},
                {"nodeid": "t.py::test_steady", "outcome": "passed", "duration_ms": 1.0},
            ],
        )
    store.close()
    return path


def test_cli_history_and_flaky(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kari-debug history NODEID` and `kari-debug flaky` read the store's histories."""
    store = str(_flipping_store(tmp_path / "kari.db"))
    assert main(["--store", store, "--no-color", "history", "t.py::test_flip"]) == 0
    out = capsys.readouterr().out
    assert "t.py::test_flip: last 4 run(s), oldest first ✓✗✓✗" in out
    assert "new failure, flaky (failed 2 of last 4)" in out
    assert main(["--store", store, "--format", "json", "history", "t.py::test_flip"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [r["outcome"] for r in document["runs"]] == ["passed", "failed", "passed", "failed"]
    assert document["flaky"] is True
    assert main(["--store", store, "--no-color", "flaky", "--runs", "3"]) == 0
    out = capsys.readouterr().out
    assert "1 flaky test(s) in the last 3 stored run(s)" in out
    assert "✗✓✗" in out
    assert "failed 2 of 3" in out
    assert "test_steady" not in out
    assert main(["--store", store, "history", "t.py::nope"]) == 0
    assert "no stored run has the test 't.py::nope'" in capsys.readouterr().err
    assert main(["--store", store, "flaky", "--runs", "0"]) == 2


def test_api_history_and_flaky(tmp_path: Path) -> None:
    """The REST API serves the same histories as the CLI."""
    store = _flipping_store(tmp_path / "kari.db")
    with framework_client(create_app(store_path=store, include_registry=False)) as client:
        flaky = client.get(f"{PREFIX}/history/flaky", params={"runs": 4}).json()
        assert flaky["runs"] == [1, 2, 3, 4]
        assert [h["nodeid"] for h in flaky["flaky"]] == ["t.py::test_flip"]
        assert flaky["new_failures"] == ["t.py::test_flip"]
        one = client.get(f"{PREFIX}/history/test", params={"nodeid": "t.py::test_steady"})
        assert one.status_code == 200
        assert one.json()["badges"] == []
        missing = client.get(f"{PREFIX}/history/test", params={"nodeid": "t.py::nope"})
        assert missing.status_code == 404
        assert "t.py::nope" in missing.json()["detail"]
        assert client.get(f"{PREFIX}/history/flaky", params={"runs": 0}).status_code == 422
    with framework_client(create_app(include_registry=False)) as client:
        assert client.get(f"{PREFIX}/history/flaky").json()["flaky"] == []  # nothing recorded
        assert client.get(f"{PREFIX}/runs/progress").json() == {"runs": []}
        response = client.get(f"{PREFIX}/history/test", params={"nodeid": "t.py::a"})
        assert response.status_code == 404
        assert "no store" in response.json()["detail"]
