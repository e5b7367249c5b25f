"""Pushing to a real Prometheus Pushgateway started on 127.0.0.1 at a free port."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool
from prometheus_client.parser import text_string_to_metric_families
from test_prometheus import HOSTILE, make_test

from pytest_kari_debug.exceptions import ExportError
from pytest_kari_debug.exporters.prometheus import push


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Pushgateway (in-memory, no persistence) running for this module's tests."""
    binary = require_tool("prometheus-pushgateway")
    port = free_port()
    log = tmp_path_factory.mktemp("pushgateway") / "log.txt"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Pushgateway did not start: {log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gateway_samples(url: str) -> list[Any]:
    """Every sample the Pushgateway exposes on /metrics, parsed by prometheus_client."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode("utf-8")
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def wipe(url: str, extension: str) -> None:
    """Delete the group of *extension* (so tests do not see each other's pushes)."""
    request = urllib.request.Request(
        f"{url}/metrics/job/kari_debug/extension/{extension}", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def test_push_reaches_the_gateway(pushgateway: str) -> None:
    """Pushed per-test metrics are served by the Pushgateway with job and extension labels."""
    records = [
        make_test("weather", "tests/test_w.py::test_a", [("response_time", 250.0, "ms", {})]),
        make_test("weather", "tests/test_w.py::test_b", [("response_time", 50.0, "ms", {})]),
        make_test("search", "tests/test_s.py::test_c", [("hits", 7.0, "count", {})]),
    ]
    assert push(pushgateway, records) == ["search", "weather"]
    samples = gateway_samples(pushgateway)
    sums = {
        (s.labels["extension"], s.labels["test"]): s.value
        for s in samples
        if s.name == "kari_metric_response_time_seconds_sum"
    }
    assert sums == {
        ("weather", "tests/test_w.py::test_a"): pytest.approx(0.25),
        ("weather", "tests/test_w.py::test_b"): pytest.approx(0.05),
    }
    hits = [s for s in samples if s.name == "kari_metric_hits_sum"]
    assert [(h.labels["job"], h.labels["extension"], h.value) for h in hits] == [
        ("kari_debug", "search", 7.0)
    ]
    groups = {s.labels["extension"] for s in samples if s.name == "push_time_seconds"}
    assert {"weather", "search"} <= groups
    wipe(pushgateway, "weather")
    wipe(pushgateway, "search")


def test_push_replaces_the_extensions_group(pushgateway: str) -> None:
    """A second push of an extension replaces its first one (HTTP PUT semantics)."""
    push(pushgateway, [make_test("repl", "t::old", [("m", 1.0, "", {})])])
    push(pushgateway, [make_test("repl", "t::new", [("m", 2.0, "", {})])])
    tests = {
        s.labels["test"] for s in gateway_samples(pushgateway) if s.name == "kari_metric_m_sum"
    }
    assert tests == {"t::new"}
    wipe(pushgateway, "repl")


def test_hostile_label_values_survive_the_gateway(pushgateway: str) -> None:
    """Quotes, backslashes, newlines and unicode in label values come back unchanged."""
    records = [make_test("hostile", f"t::x[{HOSTILE}]", [("m", 1.0, "", {"path": HOSTILE})])]
    push(pushgateway, records)
    found = [s for s in gateway_samples(pushgateway) if s.name == "kari_metric_m_sum"]
    assert [(s.labels["path"], s.labels["test"]) for s in found] == [(HOSTILE, f"t::x[{HOSTILE}]")]
    wipe(pushgateway, "hostile")


def test_push_failure_names_extension_and_gateway() -> None:
    """A gateway that is not there gives an ExportError naming the extension and host."""
    port = free_port()
    with pytest.raises(ExportError, match=rf"extension 'e' to http://127.0.0.1:{port} failed"):
        push(f"http://127.0.0.1:{port}", [make_test("e", "t::x", [])], timeout=5)


def test_plugin_pushes_at_the_end_of_the_run(pushgateway: str, pytester: pytest.Pytester) -> None:
    """--kari-pushgateway pushes every test's metrics once the run is over."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kari_extension("plugin-push")
        def test_push(kari_metrics):
            kari_metrics.record_metric("payload_size", 512, "bytes")
        """
    )
    result = pytester.runpytest("-v", "--kari-store=none", f"--kari-pushgateway={pushgateway}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pushgateway: 1 group(s) pushed, job kari_debug*plugin-push"])
    found = [
        s for s in gateway_samples(pushgateway) if s.name == "kari_metric_payload_size_bytes_sum"
    ]
    assert [(s.labels["extension"], s.labels["test"], s.value) for s in found] == [
        ("plugin-push", "test_plugin_pushes_at_the_end_of_the_run.py::test_push", 512.0)
    ]
    wipe(pushgateway, "plugin-push")


def test_plugin_push_failure_is_a_warning(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """An unreachable gateway becomes a warning and a diagnostic; the tests still pass."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile("def test_ok(kari_metrics): kari_metrics.record_metric('x', 1)")
    port = free_port()
    result = pytester.runpytest("--kari-store=none", f"--kari-pushgateway=127.0.0.1:{port}")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([f"*push of extension * to http://127.0.0.1:{port} failed*"])
    assert result.ret == 0
