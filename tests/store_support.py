"""Helpers of the store tests that read a store as a user who may not write it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def without_root_powers() -> list[str]:
    """What runs a command as this user without the powers of root (which writes anything)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        if os.environ.get("CI"):
            pytest.fail("setpriv (util-linux) is needed to read a store as a mere user")
        pytest.skip("setpriv (util-linux) is needed to read a store as a mere user")
    return ["setpriv", "--bounding-set=-all"]


def chmod_tree(folder: Path, *, writable: bool) -> None:
    """Make *folder* and everything in it writable again, or read-only."""
    for item in (*folder.rglob("*"), folder):
        if item.is_dir():
            item.chmod(0o755 if writable else 0o555)
        else:
            item.chmod(0o644 if writable else 0o444)
