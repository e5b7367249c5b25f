"""Rendering the report with jinja2 from ``report_templates/`` (the only jinja2 import)."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup, escape

from ..figures import UnknownFigure, display_rules, figure_spec, format_value
from .data import ReportError, ReportModel, jsonable

TEMPLATE = "report.html.j2"
STATIC_FILES = ("report.css", "figures.js", "report.js")
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


_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def script_json(value: Any) -> Markup:
    """*value* as JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` are written as ``\\u003c``... so no text in the data can close the
    script element or open a comment; U+2028/U+2029 are escaped for older parsers.
    """
    try:
        # NaN and infinities come out as null, as jsonable() makes them; dates and dataclasses
        # go the sanitising way, as with the json module
        text = orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        # objects, tuple keys, integers past 64 bits somewhere in the data: sanitise once
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
    """A duration in milliseconds for people (the catalogue's rule: ``850 ms``, ``12.3 s``)."""
    return format_value(value, "ms")


def fmt_bytes(value: Any) -> str:
    """A size in bytes for people, in binary units (the catalogue's rule)."""
    return format_value(value, "bytes")


def fmt_named(value: Any, name: Any) -> str:
    """The value of the figure (or metric) *name* in its catalogue unit; other values as
    :func:`cell` shows them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return cell(value)
    try:
        unit = figure_spec(str(name)).unit
    except UnknownFigure:
        unit = ""
    return format_value(value, unit)


def page_script(*texts: str) -> str:
    """One page script: the catalogue's display rules (``KARI_DISPLAY``), then *texts*."""
    rules = json.dumps(display_rules(), separators=(",", ":"))
    return "\n".join((f"var KARI_DISPLAY = {rules};", *texts))


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


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """jinja2's cache of compiled templates in the user's own temporary folder (checked by
    the template's source, so an edited template is compiled again): a report is written
    without compiling its template each run. A cache that cannot be read or written is
    passed by, never the report."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, ValueError, EOFError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _compiled_templates() -> jinja2.BytecodeCache | None:
    try:
        return _CompiledTemplates()
    except (OSError, RuntimeError):  # no private temporary folder of this user's
        return None


@functools.lru_cache(maxsize=4)
def environment(folder: str) -> jinja2.Environment:
    """The jinja2 environment over *folder*, autoescaping everything."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_compiled_templates(),
    )
    env.filters["script_json"] = script_json
    env.filters["ms"] = fmt_ms
    env.filters["bytes"] = fmt_bytes
    env.filters["cell"] = cell
    env.filters["figure"] = format_value
    env.filters["named"] = fmt_named
    env.filters["wrap_id"] = wrap_id
    env.filters["badge_class"] = badge_class
    return env


def render(model: ReportModel, folder: Path | None = None) -> str:
    """Render *model* to one self-contained HTML page."""
    where = str(folder or templates_dir())
    assets = _static(where)
    script = page_script(assets["figures.js"], assets["report.js"])
    try:
        template = environment(where).get_template(TEMPLATE)
        return template.render(
            model=model,
            css=Markup(assets["report.css"]),
            js=Markup(script),
            csp_style=_csp_hash(assets["report.css"]),
            csp_script=_csp_hash(script),
        )
    except jinja2.TemplateError as exc:
        msg = f"report template {TEMPLATE!r} in {where!r} failed: {type(exc).__name__}: {exc}"
        raise ReportError(msg) from exc
