"""The wheel: the plugin entry point, the templates and the typing marker are inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_ships_entry_point_templates_schema_and_py_typed(tmp_path: Path) -> None:
    """A built wheel declares pytest11 and holds report_templates, the JSON schema, the figures'
    catalogue and py.typed."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("pytest_kari_debug-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "pytest_kari_debug/py.typed" in names
    assert "pytest_kari_debug/schemas/run.schema.json" in names
    assert "pytest_kari_debug/figures/catalogue.json" in names
    assert any(n.startswith("pytest_kari_debug/report_templates/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[pytest11]" in text
    assert "kari_debug = pytest_kari_debug.plugin" in text


def test_version_is_the_installed_distributions() -> None:
    """``__version__`` is read from the installed metadata, so it never disagrees with it."""
    from importlib.metadata import version

    import pytest_kari_debug

    assert pytest_kari_debug.__version__ == version("pytest-kari-debug")
    assert f'version = "{pytest_kari_debug.__version__}"' in (REPO / "pyproject.toml").read_text()
