"""HEAD's commit and branch read from real repositories' files: what git itself prints."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_kari_debug.plugin.gitfiles import read_head
from pytest_kari_debug.plugin.githead import GitHead

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=trunk"]


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=folder, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _git_says(folder: Path) -> tuple[str | None, str | None]:
    """What ``git rev-parse HEAD --abbrev-ref HEAD`` answers in *folder* (as GitHead reads it)."""
    done = subprocess.run(
        ["git", "rev-parse", "HEAD", "--abbrev-ref", "HEAD"],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    head = done.stdout.split() if done.returncode == 0 else []
    return (head[0], head[1]) if len(head) == 2 else (None, None)


def _repository(path: Path, *, commit: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q")
    if commit:
        (path / "file.txt").write_text("one\n")
        _git(path, "add", ".")
        _git(path, "commit", "-qm", "one")
    return path


def _branch(tmp: Path) -> Path:
    return _repository(tmp / "repo")


def _slashed_branch(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "checkout", "-qb", "feature/one")
    return repo


def _packed(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "tag", "v1")
    _git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "trunk").exists()
    return repo


def _packed_then_moved(tmp: Path) -> Path:
    """A branch both packed (stale) and loose (newer): the loose file wins."""
    repo = _packed(tmp)
    (repo / "file.txt").write_text("two\n")
    _git(repo, "commit", "-qam", "two")
    return repo


def _detached(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "checkout", "-q", "--detach")
    return repo


def _worktree(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "pack-refs", "--all")
    _git(repo, "worktree", "add", "-q", "-b", "side", str(tmp / "side"))
    return tmp / "side"


def _worktree_detached(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "worktree", "add", "-q", "--detach", str(tmp / "side"))
    return tmp / "side"


def _separate_git_folder(tmp: Path) -> Path:
    """A ``.git`` file naming the git folder (as submodules have)."""
    repo = tmp / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", f"--separate-git-dir={tmp / 'gitdir'}")
    (repo / "file.txt").write_text("one\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    assert (repo / ".git").is_file()
    return repo


def _subfolder(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    (repo / "tests" / "unit").mkdir(parents=True)
    return repo / "tests" / "unit"


def _no_commit(tmp: Path) -> Path:
    return _repository(tmp / "repo", commit=False)


READ = [
    _branch, _slashed_branch, _packed, _packed_then_moved, _detached, _worktree,
    _worktree_detached, _separate_git_folder, _subfolder, _no_commit,
]  # fmt: skip


@pytest.mark.parametrize("make", READ, ids=lambda make: make.__name__.strip("_"))
def test_the_files_say_what_git_says(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    folder = make(tmp_path)
    expected = _git_says(folder)
    assert read_head(folder) == expected
    probe = GitHead(folder)
    assert probe.commit_and_branch() == expected
    assert probe._process is None  # no process started


def _tag_named_as_the_branch(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "tag", "trunk")
    return repo


def _packed_remote_named_as_the_branch(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "update-ref", "refs/remotes/trunk/HEAD", "HEAD")
    _git(repo, "pack-refs", "--all")
    return repo


def _branch_through_a_symbolic_ref(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/trunk")
    _git(repo, "symbolic-ref", "HEAD", "refs/heads/alias")
    return repo


def _head_a_symbolic_link(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "config", "core.preferSymlinkRefs", "true")
    _git(repo, "checkout", "-qb", "feature")
    assert (repo / ".git" / "HEAD").is_symlink()
    return repo


def _repository_extensions(tmp: Path) -> Path:
    repo = _repository(tmp / "repo")
    _git(repo, "config", "extensions.worktreeConfig", "true")
    return repo


ASK_GIT = [
    _tag_named_as_the_branch, _packed_remote_named_as_the_branch,
    _branch_through_a_symbolic_ref, _head_a_symbolic_link, _repository_extensions,
]  # fmt: skip


@pytest.mark.parametrize("make", ASK_GIT, ids=lambda make: make.__name__.strip("_"))
def test_where_the_files_may_not_say_git_is_asked(
    tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    """A short name another ref shares (git prints ``heads/trunk``), a nested symbolic ref, a
    HEAD that is a symbolic link, repository extensions: the files give no answer and git's own
    is recorded."""
    folder = make(tmp_path)
    assert read_head(folder) is None
    probe = GitHead(folder)
    assert probe.commit_and_branch() == _git_says(folder)
    assert probe._process is not None


def test_git_environment_variables_leave_it_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GIT_DIR`` (set in git's hooks) and the like change what git reads: git is asked."""
    repo = _repository(tmp_path / "repo")
    other = _repository(tmp_path / "other")
    _git(other, "checkout", "-qb", "elsewhere")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert read_head(repo) is None
    assert GitHead(repo).commit_and_branch() == (_git(other, "rev-parse", "HEAD"), "elsewhere")


def test_outside_a_repository_nothing_is_read(tmp_path: Path) -> None:
    if _git_says(tmp_path) != (None, None):
        pytest.skip("the temporary folder is inside a git repository")
    assert read_head(tmp_path) in ((None, None), None)  # None: a file system's boundary
    assert GitHead(tmp_path).commit_and_branch() == (None, None)


def test_without_git_nothing_is_recorded_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository but no ``git`` on PATH: the run records no commit, as when git was asked."""
    repo = _repository(tmp_path / "repo")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert GitHead(repo).commit_and_branch() == (None, None)
