"""Atomic writes: whole files only, with the permissions a plain open() would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pytest_kari_debug.atomic import write_atomic


def test_file_is_written_whole_with_umask_permissions(tmp_path: Path) -> None:
    """The file holds the data, no temp file is left, and its mode is 0666 minus the umask."""
    path = write_atomic(tmp_path / "sub" / "out.txt", "héllo")
    assert path.read_text(encoding="utf-8") == "héllo"
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When replacing fails, the previous file stays and the temp file is removed."""
    target = tmp_path / "out.txt"
    target.write_text("old")

    def broken_replace(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
