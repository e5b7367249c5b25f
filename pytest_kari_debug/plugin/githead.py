"""The commit and branch of the run's rootdir: read from the repository's files at start-up,
or asked of git in the background where only git can tell (see ``gitfiles``)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest

from .gitfiles import NO_ANSWER, read_head

#: How long the run's metadata waits for git's answer (seconds).
GIT_TIMEOUT = 3.0


class GitHead:
    """What ``git rev-parse HEAD --abbrev-ref HEAD`` prints in *rootdir*: read from the
    repository's files (a few reads, no process), or else asked of git at once: git runs while
    the plugin's features import (one process for both answers; each spawn is milliseconds of
    pytest's thread on a busy machine), and the first recorded test reads its answer."""

    def __init__(self, rootdir: Path) -> None:
        self._answer: tuple[str | None, str | None] | None = None
        self._process: subprocess.Popen[str] | None = None
        if shutil.which("git") is None:
            self._answer = NO_ANSWER  # what a run without git has always recorded
            return
        self._answer = read_head(rootdir)
        if self._answer is not None:
            return
        try:
            self._process = subprocess.Popen(
                ["git", "rev-parse", "HEAD", "--abbrev-ref", "HEAD"],
                cwd=rootdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except (OSError, ValueError, subprocess.SubprocessError):
            self._answer = NO_ANSWER

    def commit_and_branch(self) -> tuple[str | None, str | None]:
        """HEAD's commit and branch (``(None, None)`` outside a repository or without git)."""
        if self._answer is None and self._process is not None:
            out = ""
            try:
                out, _ = self._process.communicate(timeout=GIT_TIMEOUT)
            except (OSError, ValueError, subprocess.SubprocessError):
                self.close()
            head = out.split() if self._process.returncode == 0 else []
            self._answer = (head[0], head[1]) if len(head) == 2 else (None, None)
        return self._answer or (None, None)

    def close(self) -> None:
        """End git if it still runs (a run that recorded no test never asked) and reap it."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(OSError):
                process.kill()
        with contextlib.suppress(OSError, ValueError, subprocess.SubprocessError):
            process.communicate(timeout=GIT_TIMEOUT)


GIT_HEAD = pytest.StashKey[GitHead]()


def start_git_head(config: pytest.Config) -> None:
    """Ask git now for the run's metadata, on the process that records the run (not on an
    xdist worker: its controller records the run)."""
    if GIT_HEAD not in config.stash and not hasattr(config, "workerinput"):
        config.stash[GIT_HEAD] = GitHead(config.rootpath)


def git_head(config: pytest.Config) -> tuple[str | None, str | None]:
    """The run's commit and branch, from git's answer (asked now if it was not yet)."""
    probe = config.stash.get(GIT_HEAD, None)
    if probe is None:
        probe = config.stash[GIT_HEAD] = GitHead(config.rootpath)
    return probe.commit_and_branch()
