"""Rendering the report with jinja2 from ``report_templates/`` (the only jinja2 import)."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from .data import ReportError, ReportModel, jsonable

TEMPLATE = "report.html.j2"
STATIC_FILES = ("report.css", "report.js")
_PACKAGE = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """The folder of the report templates: inside the installed package, else the repository's."""
    for candidate in (_PACKAGE / "report_templates", _PACKAGE.parent / "report_templates"):
        if (candidate / TEMPLATE).is_file():
            return candidate
    msg = (
        f"report templates not found: looked for {TEMPLATE!r} in"
        f" {str(_PACKAGE / 'report_templates')!r} and {str(_PACKAGE.parent / 'report_templates')!r}"
    )
    raise ReportError(msg)


def script_json(value: Any) -> Markup:
    """*value* as JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` are written as ``\\u003c``... so no text in the data can close the
    script element or open a comment; U+2028/U+2029 are escaped for older parsers.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        # NaN, infinities or objects somewhere in the data: sanitise the whole value once
        try:
            text = json.dumps(
                jsonable(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False
            )
        except (TypeError, ValueError) as exc:
            msg = f"report data is not JSON-able: {exc}"
            raise ReportError(msg) from exc
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return Markup(text)


def fmt_ms(value: Any) -> str:
    """A duration in milliseconds for people: ``850 ms``, ``12.3 s``, ``4 min 05 s``."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    if value < 1:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"
    seconds = value / 1000.0
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def fmt_bytes(value: Any) -> str:
    """A size in bytes for people, in binary units."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024.0
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


def cell(value: Any) -> str:
    """A value of a generic table cell as text: JSON for containers, empty for None."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=repr)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


_ID_BREAKS = re.compile(r"(::|/)")


def wrap_id(value: Any) -> Markup:
    """A test id (or path) that a narrow column may wrap after ``/`` and ``::`` only.

    Each piece is a ``nowrap`` span (a ``-`` inside a parameter is no place to break); a
    ``<wbr>`` between pieces is where the line may end.
    """
    pieces = [p for p in _ID_BREAKS.split("" if value is None else str(value)) if p]
    joined: list[str] = []
    for piece in pieces:
        if piece in ("/", "::") and joined:
            joined[-1] += piece
        else:
            joined.append(piece)
    return Markup("<wbr>".join(f'<span class="seg">{escape(p)}</span>' for p in joined))


def badge_class(badge: str) -> str:
    """The CSS class of a history badge (``new failure``, ``fixed``, ``flaky (...)``)."""
    return "hb-" + badge.split(" ", 1)[0] if badge else "hb"


@functools.lru_cache(maxsize=4)
def _static(folder: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for name in STATIC_FILES:
        path = Path(folder) / name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"report asset {str(path)!r} cannot be read: {exc}"
            raise ReportError(msg) from exc
        if "</" in text and ("</script" in text.lower() or "</style" in text.lower()):
            msg = f"report asset {str(path)!r} must not contain a closing script or style tag"
            raise ReportError(msg)
        files[name] = text
    return files


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@functools.lru_cache(maxsize=4)
def environment(folder: str) -> jinja2.Environment:
    """The jinja2 environment over *folder*, autoescaping everything."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["script_json"] = script_json
    env.filters["ms"] = fmt_ms
    env.filters["bytes"] = fmt_bytes
    env.filters["cell"] = cell
    env.filters["wrap_id"] = wrap_id
    env.filters["badge_class"] = badge_class
    return env


def render(model: ReportModel, folder: Path | None = None) -> str:
    """Render *model* to one self-contained HTML page."""
    where = str(folder or templates_dir())
    assets = _static(where)
    try:
        template = environment(where).get_template(TEMPLATE)
        return template.render(
            model=model,
            css=Markup(assets["report.css"]),
            js=Markup(assets["report.js"]),
            csp_style=_csp_hash(assets["report.css"]),
            csp_script=_csp_hash(assets["report.js"]),
        )
    except jinja2.TemplateError as exc:
        msg = f"report template {TEMPLATE!r} in {where!r} failed: {type(exc).__name__}: {exc}"
        raise ReportError(msg) from exc
