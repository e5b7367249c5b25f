"""A griffe extension: the docstrings' reStructuredText roles and literals as Markdown.

The package's docstrings use Sphinx roles (``:class:`~pytest_kari_debug.x.Name```) and double
backticks; mkdocstrings renders Markdown, so ``mkdocs.yml`` loads this to rewrite them to
inline code before the docstrings are parsed.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":[a-z]+:`~?([^`]*?)`")


def markdown(text: str) -> str:
    """*text* with roles as inline code of the last dotted part, and ````x```` as ```x```."""
    text = ROLE.sub(lambda match: f"`{match.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`")


class ReStructuredRoles(griffe.Extension):
    """Rewrites every object's docstring once it is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
