"""Writing files so that readers never see a half-written one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _encode(text: str) -> bytes:
    # Any string is written: what UTF-8 cannot hold (a lone surrogate) is backslash-escaped,
    # as values.encode_text does (this module sits below it).
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def write_atomic(
    path: str | os.PathLike[str], data: str | bytes, *, make_folder: bool = True
) -> Path:
    """Write *data* to *path* through a temp file in the same folder, fsync and os.replace.

    Without *make_folder*, a missing folder is a ``FileNotFoundError`` rather than created.
    """
    payload = _encode(data) if isinstance(data, str) else data
    with open_atomic(path, make_folder=make_folder) as handle:
        handle.write(payload)
    return Path(path)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike[str], *, make_folder: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write *path* piece by piece: a temp file in the same folder, fsynced
    and moved over *path* when the block ends without an error (removed if it raises)."""
    target = Path(path)
    if make_folder:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 - umask).
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
