"""HEAD's commit and branch read from the repository's own files, as git would print them.

``git rev-parse HEAD --abbrev-ref HEAD`` finds the repository above a folder (a ``.git``
folder, or a ``.git`` file naming a worktree's or a submodule's git folder), reads ``HEAD``
and the branch it names (a loose ref file, else ``packed-refs``), and shortens the branch's
name when no tag, remote or other ref has the same short name. :func:`read_head` does the same
with a few file reads and no process; wherever git might answer otherwise (its environment
variables, another owner's repository, reftable or other repository extensions, a short name
that another ref shares, a nested symbolic ref, anything unexpected) it gives no answer, and
the caller asks git itself.
"""

from __future__ import annotations

import os
import re

#: Environment variables that change where git looks or what it reads.
GIT_ENVIRONMENT = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_NAMESPACE", "GIT_REF_PARANOIA", "GIT_CONFIG",
)  # fmt: skip
_EXTENSIONS = re.compile(rb"^\s*\[\s*extensions\b", re.MULTILINE | re.IGNORECASE)
_BRANCHES = "refs/heads/"
#: What git's answer is outside a repository or on a branch without a commit.
NO_ANSWER = (None, None)


class _AskGit(Exception):
    """The files alone do not say what git would answer."""


def read_head(folder: str | os.PathLike[str]) -> tuple[str | None, str | None] | None:
    """``(commit, branch)`` of the repository *folder* is in, as git prints them (``"HEAD"``
    for a detached HEAD; ``(None, None)`` outside a repository or before the first commit),
    or ``None`` when only git can tell."""
    if any(name in os.environ for name in GIT_ENVIRONMENT) or any(
        name.startswith("GIT_CONFIG") for name in os.environ
    ):
        return None
    try:
        found = _discover(os.path.realpath(folder))
        if found is None:
            return NO_ANSWER
        return _head(*found)
    except (_AskGit, OSError, UnicodeError):
        return None


def _discover(start: str) -> tuple[str, str] | None:
    """(the git folder, its common folder) of the repository above *start*; None if none."""
    device = os.stat(start).st_dev
    folder = start
    while True:
        dotgit = os.path.join(folder, ".git")
        if os.path.isdir(dotgit):
            _own(folder, dotgit)
            return _git_folder(dotgit)
        if os.path.isfile(dotgit):
            with open(dotgit, "rb") as handle:
                text = handle.read().decode()
            if not text.startswith("gitdir: "):
                raise _AskGit
            gitdir = os.path.join(folder, text[len("gitdir: ") :].strip())
            _own(folder, dotgit, gitdir)
            return _git_folder(gitdir)
        if os.path.lexists(dotgit) or os.path.exists(os.path.join(folder, "HEAD")):
            raise _AskGit  # something else named .git, or maybe a bare repository
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        if os.stat(parent).st_dev != device:
            raise _AskGit  # git stops at a file system's boundary
        folder = parent


def _own(*paths: str) -> None:
    """Git refuses a repository another user owns unless ``safe.directory`` allows it."""
    uid = os.geteuid()
    if uid == 0 and "SUDO_UID" in os.environ:
        raise _AskGit
    if any(os.stat(path).st_uid != uid for path in paths):
        raise _AskGit


def _git_folder(gitdir: str) -> tuple[str, str]:
    """*gitdir* and its common folder (a linked worktree's refs live in the main one's)."""
    common = gitdir
    named = _read(os.path.join(gitdir, "commondir"))
    if named is not None:
        common = os.path.join(gitdir, os.fsdecode(named.strip()))
    elif not os.path.isdir(os.path.join(gitdir, "objects")):
        raise _AskGit
    with open(os.path.join(common, "config"), "rb") as handle:
        if _EXTENSIONS.search(handle.read()):
            raise _AskGit  # reftable, worktree config, object formats: git's to read
    return gitdir, common


def _head(gitdir: str, common: str) -> tuple[str | None, str | None]:
    """HEAD's commit and its branch's short name."""
    head_path = os.path.join(gitdir, "HEAD")
    if os.path.islink(head_path):
        raise _AskGit  # core.preferSymlinkRefs: a link to the branch's ref, read as its commit
    head = _read(head_path)
    if head is None:
        raise _AskGit
    if not head.startswith(b"ref: "):
        return _object_id(head), "HEAD"  # detached
    name = head[len(b"ref: ") :].strip().decode("ascii")
    if not name.startswith(_BRANCHES) or len(name) == len(_BRANCHES):
        raise _AskGit
    packed = _read(os.path.join(common, "packed-refs")) or b""
    commit = _ref(common, name, packed)
    if commit is None:
        return NO_ANSWER  # a branch without a commit yet: git fails
    short = name[len(_BRANCHES) :]
    others = (short, f"refs/{short}", f"refs/tags/{short}", f"refs/remotes/{short}",
              f"refs/remotes/{short}/HEAD")  # fmt: skip
    for other in others:
        if any(os.path.lexists(os.path.join(f, other)) for f in (gitdir, common)) or (
            _packed(packed, other) is not None
        ):
            raise _AskGit  # git would print a longer, unambiguous name
    return commit, short


def _ref(common: str, name: str, packed: bytes) -> str | None:
    """The object id ref *name* points to: its loose file, else its line in packed-refs."""
    loose = _read(os.path.join(common, name))
    if loose is not None:
        return _object_id(loose)
    return _packed(packed, name)


def _packed(packed: bytes, name: str) -> str | None:
    """The object id of *name* in the packed-refs file's text *packed*."""
    needle = f" {name}\n".encode()
    text = packed if packed.endswith(b"\n") else packed + b"\n"
    at = text.find(needle)
    while at != -1:
        line = text[text.rfind(b"\n", 0, at) + 1 : at]
        if _is_object_id(line):
            return line.decode()
        at = text.find(needle, at + 1)
    return None


def _object_id(text: bytes) -> str:
    """The object id a ref file holds (a symbolic ref inside a ref is git's to follow)."""
    text = text.strip()
    if not _is_object_id(text):
        raise _AskGit
    return text.decode()


def _is_object_id(text: bytes) -> bool:
    """Whether *text* is a SHA-1 or SHA-256 object id in lowercase hex."""
    return len(text) in (40, 64) and not text.strip(b"0123456789abcdef")


def _read(path: str) -> bytes | None:
    """A file's bytes; None if there is no such file."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise _AskGit from exc
