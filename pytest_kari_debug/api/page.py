"""The live dashboard page: ``report_templates/dashboard.html.j2``, rendered like the report.

It uses the HTML report's template loader (``report/templates.py``, the one jinja2 user) and
its stylesheet, so the dashboard and the report look alike. The page is self-contained: the
report's stylesheet, the dashboard's own rules and its script are inlined under the
response's CSP nonce; its data comes from the API.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ..report.templates import environment, page_script, templates_dir
from ..version import plugin_version

TEMPLATE = "dashboard.html.j2"
#: The report's stylesheet first (shared look), then the dashboard's own rules and script.
ASSETS = ("report.css", "dashboard.css", "figures.js", "dashboard.js")


@functools.lru_cache(maxsize=4)
def _assets(folder: str) -> dict[str, str]:
    found = {}
    for name in ASSETS:
        path = Path(folder) / name
        text = path.read_text(encoding="utf-8")
        lowered = text.lower()
        if "</script" in lowered or "</style" in lowered:
            msg = f"dashboard asset {str(path)!r} must not contain a closing script or style tag"
            raise ValueError(msg)
        found[name] = text
    return found


def render_page(
    *, extensions: list[dict[str, Any]], first: str | None, api_prefix: str, nonce: str
) -> str:
    """The dashboard page's HTML."""
    folder = str(templates_dir())
    assets = _assets(folder)
    boot = {
        "api": api_prefix,
        "extensions": extensions,
        "first": first,
        "version": plugin_version(),
    }
    return (
        environment(folder)
        .get_template(TEMPLATE)
        .render(
            boot=boot,
            nonce=nonce,
            version=plugin_version(),
            css=Markup(assets["report.css"] + "\n" + assets["dashboard.css"]),
            js=Markup(page_script(assets["figures.js"], assets["dashboard.js"])),
        )
    )
