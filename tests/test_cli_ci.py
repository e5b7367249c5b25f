"""The command line in CI: ``compare --format markdown``, follow, resolve, daemon stop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from markdown_support import body, parse
from test_cli import DEMO, QUIET, kari, one_error_line
from test_cli_live import (
    CLI_WITH_CTRL_C,
    DEADLINE_S,
    SECOND,
    _lines,
    _running,
    _status,
    _wait_for,
    manager_dir,
)
from test_cli_live import kari as kari_process

__all__ = ["manager_dir"]  # a fixture used here


@pytest.fixture
def store(pytester: pytest.Pytester, pytester_store: Path) -> Path:
    """A store holding one run of the demo tests of extension my-ext."""
    pytester.makepyfile(test_demo=DEMO)
    pytester.runpytest("--kari-debug", *QUIET).assert_outcomes(passed=2)
    return pytester_store


def _baseline(store: Path, tmp_path: Path, edits: dict[str, object]) -> Path:
    document = json.loads(kari(store, "--run", "last", "export", "--format", "json").stdout)
    run = document["runs"][0]
    for test in run["tests"]:
        edits[test["nodeid"]](test)  # type: ignore[operator]
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(run))
    return path


def test_compare_markdown_lists_regressions_then_improvements(store: Path, tmp_path: Path) -> None:
    """compare --format markdown: a regressions table, an improvements table, the count of
    unchanged comparisons, and the exit status of the table form."""

    def fewer_errors(test: dict) -> None:
        test["collected_data"]["error_tracking"]["records"] = []

    def much_slower(test: dict) -> None:
        test["phases"]["call"] = test["phases"]["call"] * 100 + 500

    baseline = _baseline(
        store,
        tmp_path,
        {"test_demo.py::test_api": fewer_errors, "test_demo.py::test_slow": much_slower},
    )
    result = kari(
        store, "compare", str(baseline), "--fail", "errors:+0,duration:+25%", "--format", "markdown"
    )
    assert result.exit_code == 1, result.output
    parsed = parse(result.stdout)
    assert parsed.headings[0] == "kari-debug compare: ❌ 2 regression(s)"
    assert parsed.headings[1:3] == ["Regressions (2)", "Improvements (2)"]
    regressions = body(parsed, "Regressions")
    assert [(r[0], r[1]) for r in regressions] == [
        ("errors", "test_demo.py::test_api"),
        ("errors", "(total)"),
    ]
    assert [(r[0], r[1]) for r in body(parsed, "Improvements")] == [
        ("call_ms", "test_demo.py::test_slow"),
        ("call_ms", "(total)"),
    ]
    assert "**2** comparisons unchanged." in result.stdout

    same = kari(store, "compare", "last", "last", "--format", "markdown")
    assert same.exit_code == 0
    assert parse(same.stdout).headings == ["kari-debug compare: ✅ no regression"]
    missing = kari(store, "compare", str(tmp_path / "nope.json"), "--format", "markdown")
    assert missing.exit_code == 2


def test_alerts_resolve_of_an_unknown_id_fails(store: Path, tmp_path: Path) -> None:
    """alerts and errors resolve of an id never recorded exit 2 with one clear line: with no
    store, with a store holding no alert, and with alerts but not that one."""
    nothing = kari(tmp_path / "none.db", "alerts", "resolve", "a-1")
    assert nothing.exit_code == 2
    assert "no alert 'a-1': nothing recorded yet (no store at" in one_error_line(nothing)
    assert not (tmp_path / "none.db").exists()
    no_group = kari(tmp_path / "none.db", "errors", "resolve", "3f2a")
    assert no_group.exit_code == 2
    assert "no error group '3f2a': nothing recorded yet" in one_error_line(no_group)
    unknown_group = kari(store, "errors", "resolve", "ffffffff")
    assert unknown_group.exit_code == 2
    assert "no error group 'ffffffff'" in one_error_line(unknown_group)
    unknown = kari(store, "alerts", "resolve", "a-1")
    assert unknown.exit_code == 2
    assert "no alert 'a-1'" in one_error_line(unknown)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "test_quiet.py").write_text("def test_quiet(kari_logger):\n    pass\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:asyncio",
            "--kari-store=kari.db",
            "test_quiet.py",
        ],
        cwd=empty,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    no_alerts = kari(empty / "kari.db", "alerts", "resolve", "a-1")
    assert no_alerts.exit_code == 2
    assert "no alert 'a-1': no alerts recorded for any extension yet" in one_error_line(no_alerts)


def test_follow_started_before_any_store_waits_for_records(tmp_path: Path) -> None:
    """logs show --follow in an empty folder waits (like tail -F); a pytest run in another
    process then records, and its log line is printed within 3 s of that run's end."""
    follow = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI_WITH_CTRL_C,
            "-e",
            "my-ext",
            "logs",
            "show",
            "--follow",
            "--poll",
            "0.1",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        errors: list[str] = []
        _wait_for(_lines(follow.stderr), "waiting for log records of 'my-ext'", errors)
        time.sleep(0.5)
        assert follow.poll() is None, "follow ended instead of waiting"
        (tmp_path / "test_later.py").write_text(SECOND)
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "pytest_kari_debug.plugin",
                "--kari-debug",
                "-p",
                "no:cacheprovider",
                "test_later.py",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        )
        assert run.returncode == 0, run.stdout + run.stderr
        ended = time.monotonic()
        lines: list[str] = []
        _wait_for(_lines(follow.stdout), "second run marker", lines)
        assert time.monotonic() - ended < 3.0
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=DEADLINE_S) in (0, 130)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
        for stream in (follow.stdout, follow.stderr):
            if stream:
                stream.close()


def test_manager_stops_when_its_store_folder_disappears(manager_dir: Path) -> None:
    """A background manager whose store folder is removed stops on its own and does not
    recreate the folder."""
    started = kari_process(
        "-e", "gone-ext", "start", "--interval", "0.1", "--no-server", cwd=manager_dir
    )
    assert started.returncode == 0, started.stderr
    pid = _status(manager_dir, "gone-ext")["managers"][0]["pid"]
    deadline = time.monotonic() + DEADLINE_S
    while (manager_dir / ".kari-debug").exists():  # the manager may add a file meanwhile
        shutil.rmtree(manager_dir / ".kari-debug", ignore_errors=True)
        assert time.monotonic() < deadline, "the store folder could not be removed"
    while _running(pid):
        assert time.monotonic() < deadline, "the manager kept running without its store"
        time.sleep(0.05)
    time.sleep(0.3)
    assert not (manager_dir / ".kari-debug").exists()
