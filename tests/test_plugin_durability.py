"""Hard kills and Ctrl-C: every finished test reaches the store; runs say how they ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import read_json

from pytest_kari_debug.storage import Store

#: Ten tests; each notes its start in progress.txt, the sixth waits to be killed.
SUITE = """
import os, time

def _note(name):
    with open("progress.txt", "a") as handle:
        handle.write(name + "\\n")

{tests}
"""
STOP_AT = 5


def _suite(pytester: pytest.Pytester, stop: str) -> None:
    tests = []
    for n in range(10):
        body = f"    _note('test_{n}')\n"
        if n == STOP_AT:
            body += stop
        tests.append(f"def test_{n}(kari_logger):\n{body}    kari_logger.info('done', n={n})\n")
    pytester.makepyfile(test_kill=SUITE.format(tests="\n".join(tests)))


def _start(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kari-debug", *args],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_sigint_as_in_a_terminal,
    )


def _sigint_as_in_a_terminal() -> None:
    """An xdist worker's children inherit SIGINT ignored; Ctrl-C must reach pytest."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(pytester: pytest.Pytester, name: str, child: subprocess.Popen[bytes]) -> None:
    progress = pytester.path / "progress.txt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if progress.exists() and name in progress.read_text().split():
            time.sleep(0.2)  # inside the test's body
            return
        time.sleep(0.05)
    child.kill()
    pytest.fail(f"{name} never started: {child.communicate()[0].decode()}")


def _stored(pytester: pytest.Pytester) -> list[tuple[dict, list[str]]]:
    store = Store(pytester.path / ".kari-debug" / "kari.db", create=False)
    try:
        runs = sorted(store.runs(), key=lambda r: r["id"])
        return [
            (run, [t["nodeid"].split("::")[-1] for t in store.tests(run["id"])]) for run in runs
        ]
    finally:
        store.close()


FINISHED = [f"test_{n}" for n in range(STOP_AT)]


def test_sigkill_keeps_every_finished_test(pytester: pytest.Pytester) -> None:
    """SIGKILL mid-run: the run shows as crashed with every test that had finished."""
    _suite(pytester, "    time.sleep(600)\n")
    child = _start(pytester)
    _wait_for(pytester, f"test_{STOP_AT}", child)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    ((run, _),) = _stored(pytester)
    assert run["status"] == "crashed"  # no end recorded, its process gone
    (journal,) = (pytester.path / ".kari-debug" / "kari.db-runs").glob("*.jsonl")
    assert len(journal.read_text().splitlines()) == 1 + STOP_AT  # header + finished tests
    # The next run imports what the kill kept from the store.
    pytester.makepyfile(test_kill="def test_next():\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kari-debug").assert_outcomes(
        passed=1
    )
    (first, names), (second, later) = _stored(pytester)
    assert first["status"] == "crashed"
    assert names == FINISHED
    assert (second["status"], later) == ("finished", ["test_next"])
    assert not list((pytester.path / ".kari-debug" / "kari.db-runs").glob("*.jsonl"))


def test_os_exit_inside_a_test_keeps_the_finished_ones(pytester: pytest.Pytester) -> None:
    """A test calling os._exit ends the process at once: no hook runs after it."""
    _suite(pytester, "    os._exit(3)\n")
    child = _start(pytester)
    child.communicate(timeout=120)
    assert child.returncode == 3
    pytester.makepyfile(test_kill="def test_next():\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kari-debug")
    (first, names), _ = _stored(pytester)
    assert (first["status"], names) == ("crashed", FINISHED)


def test_ctrl_c_labels_the_run_interrupted_everywhere(pytester: pytest.Pytester) -> None:
    """SIGINT: pytest stops, the plugin writes every output and says the run was interrupted."""
    _suite(pytester, "    time.sleep(600)\n")
    child = _start(pytester, "--kari-json=run.json", "--kari-report=report.html")
    _wait_for(pytester, f"test_{STOP_AT}", child)
    child.send_signal(signal.SIGINT)
    output = child.communicate(timeout=120)[0].decode()
    assert child.returncode == pytest.ExitCode.INTERRUPTED, output
    ((run, names),) = _stored(pytester)
    assert run["status"] == "interrupted"
    assert names[:STOP_AT] == FINISHED
    document = read_json(pytester)
    assert document["run"]["status"] == "interrupted"
    assert [t["nodeid"].split("::")[-1] for t in document["tests"]][:STOP_AT] == FINISHED
    page = (pytester.path / "report.html").read_text()
    assert "interrupted" in page
    assert not (pytester.path / ".kari-debug" / "kari.db-runs").exists()


def test_a_store_without_journal_room_still_writes_every_output(pytester: pytest.Pytester) -> None:
    """No journal next to the store (a file sits where its folder goes): a temporary one."""
    pytester.makepyfile(test_a="def test_a(kari_logger):\n    kari_logger.info('x')\n")
    (pytester.path / ".kari-debug").mkdir()
    (pytester.path / ".kari-debug" / "kari.db-runs").write_text("in the way")
    result = pytester.runpytest("--kari-debug", "--kari-json=run.json")
    result.assert_outcomes(passed=1)
    assert len(read_json(pytester)["tests"]) == 1
    ((run, names),) = _stored(pytester)
    assert (run["status"], names) == ("finished", ["test_a"])


def test_the_store_off_still_streams_the_outputs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a():\n    pass\n\ndef test_b():\n    assert 0\n")
    result = pytester.runpytest("--kari-debug", "--kari-store=none", "--kari-json=run.json")
    result.assert_outcomes(passed=1, failed=1)
    document = read_json(pytester)
    assert [t["outcome"] for t in document["tests"]] == ["passed", "failed"]
    assert document["summary"]["outcomes"] == {"failed": 1, "passed": 1}
    assert not (pytester.path / ".kari-debug").exists()


#: Each test reads the store from a connection of its own: every test before it is there.
COMMITTED_SUITE = """
import os, time

from pytest_kari_debug.storage import Store

STORE = os.environ["KARI_TEST_STORE"]


def _stored():
    if "://" not in STORE and not os.path.exists(STORE):
        return []  # the first test: the run's row may not be written yet
    store = Store(STORE, create=False)
    try:
        runs = store.runs()
        assert len(runs) <= 1
        return [t["nodeid"].split("::")[-1] for run in runs for t in store.tests(run["id"])]
    finally:
        store.close()


def _note(name):
    with open("progress.txt", "a") as handle:
        handle.write(name + "\\n")

{tests}
"""


def test_every_finished_test_is_committed_before_the_next_call_and_survives_sigkill(
    pytester: pytest.Pytester, store_location: str
) -> None:
    """Every reader (here each test's own ``Store(...)``) sees every test that finished before
    the next one's call phase: SQLite's are committed by the run in groups a second apart at
    most, and opening the store first imports from the run's journal those not committed yet
    (a server's are each committed before the next call phase). SIGKILL mid-test leaves
    exactly the finished tests: the reader opening the store after the kill imports those the
    run had not committed, and finds the run crashed."""
    tests = []
    for n in range(STOP_AT + 1):
        body = f"    assert _stored() == {[f'test_{k}' for k in range(n)]!r}\n"
        body += f"    _note('test_{n}')\n"
        if n == STOP_AT:
            body += "    time.sleep(600)\n"
        tests.append(f"def test_{n}(kari_logger):\n{body}    kari_logger.info('done', n={n})\n")
    pytester.makepyfile(test_kill=COMMITTED_SUITE.format(tests="\n".join(tests)))
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kari-debug",
         f"--kari-store={store_location}"],
        cwd=pytester.path,
        env={**os.environ, "KARI_TEST_STORE": store_location},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    _wait_for(pytester, f"test_{STOP_AT}", child)
    child.send_signal(signal.SIGKILL)
    output = child.communicate(timeout=60)[0].decode()
    assert f"{STOP_AT} passed" not in output  # killed, no summary
    assert "FAILED" not in output, output
    store = Store(store_location, create=False)
    try:
        (run,) = store.runs()
        tests_stored = store.tests(run["id"])
    finally:
        store.close()
    assert [t["nodeid"].split("::")[-1] for t in tests_stored] == FINISHED
    assert [t["outcome"] for t in tests_stored] == ["passed"] * STOP_AT
    assert all(t["collected_data"]["logging"]["records"] for t in tests_stored)
    assert run["status"] == "crashed"  # no end recorded, its process on this host gone
