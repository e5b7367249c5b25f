"""The run's commit and branch: read at start-up (or git asked in the background), once."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import psutil
import pytest

from pytest_kari_debug.plugin import githead
from pytest_kari_debug.plugin.githead import GitHead

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=trunk"]


def _repository(path: Path) -> str:
    """A git repository at *path* with one commit; its commit id."""
    (path / "file.txt").write_text("one\n")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run([*GIT, *args], cwd=path, check=True, capture_output=True)
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def test_the_answer_is_the_commit_and_branch_and_is_asked_once(tmp_path: Path) -> None:
    commit = _repository(tmp_path)
    probe = GitHead(tmp_path)
    assert probe.commit_and_branch() == (commit, "trunk")
    (tmp_path / "file.txt").write_text("two\n")
    subprocess.run([*GIT, "commit", "-qam", "two"], cwd=tmp_path, check=True)
    assert probe.commit_and_branch() == (commit, "trunk")  # the run's start, read once


def test_outside_a_repository_or_without_git_there_is_no_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = subprocess.run(["git", "rev-parse"], cwd=tmp_path, capture_output=True)
    if outside.returncode == 0:
        pytest.skip("the temporary folder is inside a git repository")
    assert GitHead(tmp_path).commit_and_branch() == (None, None)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert GitHead(tmp_path).commit_and_branch() == (None, None)


def _slow_git(folder: Path) -> None:
    """A ``git`` on PATH that answers nothing for a minute."""
    folder.mkdir()
    script = folder / "git"
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_a_git_that_hangs_is_given_up_and_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hung git costs the run its timeout, then the answer is empty and git is ended."""
    _slow_git(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / ".git"))  # git is asked, not the files
    monkeypatch.setattr(githead, "GIT_TIMEOUT", 0.5)
    probe = GitHead(tmp_path)
    assert probe.commit_and_branch() == (None, None)
    assert probe._process is not None
    assert probe._process.returncode is not None


def _git_children() -> list[psutil.Process]:
    """This process's git children, zombies included."""
    found = []
    for child in psutil.Process().children():
        try:
            if child.name() in ("git", "sh", "sleep"):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_a_run_that_records_no_test_reaps_git(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--collect-only`` records nothing, so nothing reads git's answer: the run still ends
    (kills and reaps) the git it started, leaving no child process behind, even a hung one."""
    _slow_git(pytester.path / "bin")
    monkeypatch.setenv("PATH", f"{pytester.path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GIT_DIR", str(pytester.path / ".git"))  # git is asked, not the files
    pytester.makepyfile("def test_a():\n    pass\n")
    before = {child.pid for child in _git_children()}
    result = pytester.runpytest("-p", "no:cacheprovider", "--kari-debug", "--collect-only")
    assert result.ret == 0
    left = [child for child in _git_children() if child.pid not in before]
    assert left == []
