"""The live dashboard page: ``report_templates/dashboard.html.j2`` rendered with jinja2.

The one place of the API that touches jinja2, so it can move onto the HTML report's template
loader (``report/templates.py``) in one edit. The page is self-contained: its stylesheet and
script are inlined (with the response's CSP nonce); its data comes from the API.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__

TEMPLATE = "dashboard.html.j2"


def templates_dir() -> Path:
    """``report_templates/``: inside the installed package, or at the top of a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "report_templates", package.parent / "report_templates"):
        if (candidate / TEMPLATE).is_file():
            return candidate
    msg = f"the dashboard template {TEMPLATE!r} is not installed (looked beside {package})"
    raise FileNotFoundError(msg)


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=jinja2.select_autoescape(("html", "html.j2", "j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def json_for_script(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` are escaped."""
    text = json.dumps(data, default=repr, ensure_ascii=False, sort_keys=True)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_page(
    *, extensions: list[dict[str, Any]], first: str | None, api_prefix: str, nonce: str
) -> str:
    """The dashboard page's HTML."""
    boot = {
        "api": api_prefix,
        "extensions": extensions,
        "first": first,
        "version": __version__,
    }
    template = _environment().get_template(TEMPLATE)
    return template.render(boot_json=json_for_script(boot), nonce=nonce, version=__version__)
