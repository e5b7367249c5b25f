"""Whose frame is it: the user's, the test runner's or this package's."""

from __future__ import annotations

import os
import sys

_PROFILER_DIR = os.path.dirname(os.path.abspath(__file__))
_PACKAGE_DIR = os.path.dirname(_PROFILER_DIR)
_PYINSTRUMENT_DIR: list[str] = []


def _pyinstrument_dir() -> str:
    """pyinstrument's directory once it is imported (before, none of its frames can run)."""
    if not _PYINSTRUMENT_DIR:
        module = sys.modules.get("pyinstrument")
        file = getattr(module, "__file__", None)
        if not file:
            return ""
        _PYINSTRUMENT_DIR.append(os.path.dirname(os.path.abspath(file)))
    return _PYINSTRUMENT_DIR[0]


_FRAMEWORK_DIRS: list[str] = []
_OWNERS: dict[str, str] = {}


def _framework_dirs() -> list[str]:
    """The folders of pytest and pluggy: their frames are the test runner's, not the test's."""
    if not _FRAMEWORK_DIRS:
        for name in ("_pytest", "pytest", "pluggy"):
            module = sys.modules.get(name)
            file = getattr(module, "__file__", None)
            if file:
                _FRAMEWORK_DIRS.append(os.path.dirname(os.path.abspath(file)))
    return _FRAMEWORK_DIRS


def frame_owner(file: str | None) -> str:
    """``"package"`` for a frame of pytest_kari_debug (or pyinstrument), ``"framework"`` for
    one of pytest or pluggy, ``""`` for the user's (the code a profile is about)."""
    if not file:
        return ""
    owner = _OWNERS.get(file)
    if owner is None:
        path = os.path.abspath(file) if file.startswith(os.sep) else file
        instrument = _pyinstrument_dir()
        if path.startswith(_PACKAGE_DIR + os.sep) or bool(
            instrument and path.startswith(instrument + os.sep)
        ):
            owner = "package"
        elif any(path.startswith(folder + os.sep) for folder in _framework_dirs()):
            owner = "framework"
        else:
            owner = ""
        if len(_OWNERS) < 20000:
            _OWNERS[file] = owner
    return owner


def _ours(file: str | None) -> bool:
    if not file:
        return False
    path = os.path.abspath(file)
    if os.path.dirname(path) == _PROFILER_DIR:
        return True
    pyinstrument_dir = _pyinstrument_dir()
    return bool(pyinstrument_dir and path.startswith(pyinstrument_dir))
