"""Refresh the report screenshots of the docs and the README from a real run of the demo.

Usage: ``python docs/_generate/screenshot.py`` (needs Chromium: Debian's ``chromium``, as the
browser tests use). Runs the README's demo command into a temporary folder, opens the report
in headless Chromium and writes the top of the page to ``docs/images/report.png``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
CHROMIUM = "/usr/bin/chromium"


def run_demo(folder: Path) -> Path:
    """Run the demo's tests as the README says; return the report's path."""
    examples = folder / "examples"
    shutil.copytree(ROOT / "examples", examples)
    report = folder / "kari-report.html"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--kari-debug",
         f"--kari-report={report}", f"--kari-json={folder / 'kari-run.json'}", str(examples)],
        cwd=folder, check=False, capture_output=True, timeout=600,
    )  # fmt: skip
    if not report.is_file():
        msg = f"the demo run wrote no report at {report}"
        raise SystemExit(msg)
    return report


def screenshot(report: Path) -> None:
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(IMAGES / "report.png"))
        browser.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        screenshot(run_demo(Path(folder)))
    print(f"wrote {IMAGES / 'report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
