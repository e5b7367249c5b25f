"""A PostgreSQL store that hangs never holds the run beyond its bound nor changes an outcome.

Real servers on 127.0.0.1: a socket that accepts and never answers, a real PostgreSQL behind
a proxy that stops forwarding mid-run, and a real PostgreSQL whose table another session
holds locked. The bound is made short by the inner project's conftest (it is
``plugin.committer.COMMIT_WAIT_S``, 10 s by default).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from conftest import fresh_postgres_database, read_json
from tcp_proxy import TcpProxy

from pytest_kari_debug.storage import Store

pytest.importorskip("psycopg")

BOUND_S = 2.0
#: The inner run's conftest: a short bound (and connection timeout) for the store.
SHORT_BOUND = f"""
import pytest_kari_debug.backends as backends
import pytest_kari_debug.plugin.committer as committer

committer.COMMIT_WAIT_S = {BOUND_S}
backends.CONNECT_TIMEOUT_S = {int(BOUND_S)}
"""
#: Outer limit on an inner run: without a bound, a hung server would hold it for ever.
RUN_LIMIT_S = 90


def _run(pytester: pytest.Pytester, url: str) -> tuple[pytest.RunResult, float]:
    pytester.makeconftest(SHORT_BOUND)
    # The store in the ini file, not on the command line: another test looks for the test
    # server's password in every process's command line.
    pytester.makeini(f"[pytest]\nkari_store = {url}\n")
    began = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--kari-debug", "--kari-json=run.json", timeout=RUN_LIMIT_S
    )  # fmt: skip
    return result, time.monotonic() - began


def _stored(url: str) -> list[str]:
    with contextlib.closing(Store(url)) as store:
        return [t["nodeid"].split("::")[-1] for run in store.runs() for t in store.tests(run["id"])]


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_a_server_that_accepts_and_never_answers_disables_the_store_within_its_bound(
    pytester: pytest.Pytester,
) -> None:
    """The store is opened at the first test: it gives up after the connection's bound, the
    outcomes and the JSON are those of a run without a store, one diagnostic says why."""
    pytester.makepyfile("def test_ok(): pass\ndef test_bad(): assert 0\n")
    with _silent_server() as port:
        result, elapsed = _run(pytester, f"postgresql://kari:pw@127.0.0.1:{port}/kari")
    result.assert_outcomes(passed=1, failed=1, warnings=1)
    result.stdout.fnmatch_lines(["*store disabled: cannot connect to store*timeout*"])
    assert [t["outcome"] for t in read_json(pytester, "run.json")["tests"]] == [
        "passed",
        "failed",
    ]
    assert elapsed < RUN_LIMIT_S


@pytest.fixture
def proxied_database() -> Iterator[tuple[str, str, TcpProxy]]:
    """A fresh PostgreSQL database: its URL, and its URL through a proxy the test can hang."""
    with fresh_postgres_database() as url:
        parts = urlsplit(url)
        proxy = TcpProxy((parts.hostname or "127.0.0.1", int(parts.port or 5432)))
        netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}"
        try:
            yield url, urlunsplit(parts._replace(netloc=netloc)), proxy
        finally:
            proxy.close()


HANGS_MID_RUN = """
import socket

def _hang():
    with socket.create_connection(("127.0.0.1", {port}), timeout=10) as conn:
        conn.sendall(b"hang\\n")
        conn.recv(16)

def test_1(): pass
def test_2(): pass
def test_3(): _hang()
def test_4(): pass
def test_5(): assert 0
"""


def test_a_server_that_stops_answering_mid_run_is_given_up_after_its_bound(
    pytester: pytest.Pytester, proxied_database: tuple[str, str, TcpProxy]
) -> None:
    """The server stops answering after two tests (its kernel still accepts and acknowledges):
    the next call phase waits for the commit one bound at most, then the run goes on without
    the store. Outcomes unchanged, the wait not charged to any test, every test in the JSON,
    one diagnostic naming the tests not stored; the next run imports them from the journal."""
    direct, url, proxy = proxied_database
    pytester.makepyfile(test_hang=HANGS_MID_RUN.format(port=proxy.control_port))
    result, elapsed = _run(pytester, url)
    result.assert_outcomes(passed=4, failed=1, warnings=2)
    result.stdout.fnmatch_lines(
        [f"*store postgresql://postgres:***@127.0.0.1:*: gave up after {BOUND_S:g} s*"
         "the run goes on without the store*"]
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        ["*: StoreTimeoutError: *3 test(s) not stored: test_hang.py::test_3,"
         " test_hang.py::test_4, test_hang.py::test_5*"]
    )  # fmt: skip
    tests = read_json(pytester, "run.json")["tests"]
    assert [t["outcome"] for t in tests] == ["passed"] * 4 + ["failed"]
    waited = next(t for t in tests if t["nodeid"].endswith("test_4"))
    assert waited["kari_overhead_ms"] >= BOUND_S * 1000 * 0.9  # the plugin's wait...
    assert waited["phases"]["call"] < BOUND_S * 1000 / 2  # ...never the test's time
    assert elapsed < RUN_LIMIT_S
    assert _stored(direct) == ["test_1", "test_2"]
    proxy.restore()
    pytester.makepyfile(test_hang="def test_next(): pass\n")
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--kari-debug", timeout=RUN_LIMIT_S
    ).assert_outcomes(passed=1)  # fmt: skip
    assert sorted(_stored(direct)) == [f"test_{n}" for n in range(1, 6)] + ["test_next"]


LOCKED_MID_RUN = """
import psycopg

URL = {url!r}
_held = []

def test_1(): pass

def test_2():
    conn = psycopg.connect(URL)
    conn.execute("LOCK TABLE tests IN ACCESS EXCLUSIVE MODE")
    _held.append(conn)  # the transaction stays open: every insert into tests waits

def test_3(): pass
def test_4(): assert 0

def test_5():
    _held.pop().close()
"""


def test_a_table_locked_by_another_session_is_given_up_after_its_bound(
    pytester: pytest.Pytester,
) -> None:
    """Another session holds the tests table locked from test_2 on: the server ends the
    blocked insert (its lock timeout, within the bound), the run goes on without the store
    with its outcomes unchanged, and the tests not stored are named."""
    with fresh_postgres_database() as url:
        pytester.makepyfile(test_lock=LOCKED_MID_RUN.format(url=url))
        result, elapsed = _run(pytester, url)
        result.assert_outcomes(passed=4, failed=1, warnings=2)
        result.stdout.fnmatch_lines(
            [f"*gave up after {BOUND_S:g} s (*canceling statement due to * timeout); the run goes"
             " on without the store*"]
        )  # fmt: skip
        result.stdout.fnmatch_lines(["*4 test(s) not stored: test_lock.py::test_2,*"])
        assert [t["outcome"] for t in read_json(pytester, "run.json")["tests"]] == [
            "passed", "passed", "passed", "failed", "passed"
        ]  # fmt: skip
        assert elapsed < RUN_LIMIT_S
        assert _stored(url) == ["test_1"]
