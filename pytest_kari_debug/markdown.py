"""Markdown text that user data cannot break: escaped inline text, tables, size caps.

Test ids, messages and metric names come from users (and from their test parameters); in a
GitHub job summary or a PR comment an unescaped ``|`` splits a table cell, a backtick opens
code, and ``<details>`` is live HTML. Everything user-given passes :func:`inline`.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Punctuation with an inline meaning in GitHub Markdown (emphasis, code, links, tables,
#: strike-through, math, mentions, issue references): each is backslash-escaped.
_PUNCTUATION = frozenset("\\`*_{}[]()#!|~$@")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def inline(value: object, limit: int = 200) -> str:
    """*value* as one line of literal Markdown text, at most *limit* characters of it.

    Line breaks become spaces (a table row is one line); HTML-significant characters become
    entities; every other Markdown punctuation is backslash-escaped; a lone surrogate (text
    decoded from bytes that were not UTF-8) becomes "?", so any writer can write it.
    """
    text = " ".join(str(value).encode("utf-8", "replace").decode("utf-8").split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    out: list[str] = []
    for char in text:
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _PUNCTUATION:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def first_line(value: object) -> str:
    """The first non-blank line of *value* (a failure message's headline)."""
    for line in str(value or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a GitHub-flavoured Markdown table; cells must already be escaped."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(cell or " " for cell in row) + " |" for row in rows)
    return lines


def capped_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], limit: int, *, what: str = "rows"
) -> list[str]:
    """:func:`table` of the first *limit* rows, followed by a "N more" line when cut."""
    lines = table(headers, rows[:limit])
    if len(rows) > limit:
        lines += ["", f"_… and {len(rows) - limit} more {what}_"]
    return lines
