"""Reading Markdown back with markdown-it-py: headings and tables as plain text."""

from __future__ import annotations

from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token


@dataclass
class Parsed:
    """A Markdown document's headings, tables (rows of cell texts) and the token kinds seen."""

    headings: list[str] = field(default_factory=list)
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    token_types: set[str] = field(default_factory=set)
    text: str = ""


def _plain(token: Token) -> str:
    parts = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append("\n")
    return "".join(parts)


def parse(text: str) -> Parsed:
    """Parse GitHub-flavoured Markdown; each table is keyed by the heading above it."""
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = md.parse(text)
    parsed = Parsed(text=text)
    heading = ""
    rows: list[list[str]] | None = None
    row: list[str] = []
    in_heading = False
    for token in tokens:
        parsed.token_types.add(token.type)
        for child in token.children or ():
            parsed.token_types.add(child.type)
        if token.type == "heading_open":
            in_heading = True
        elif token.type == "inline" and in_heading:
            heading = _plain(token)
            parsed.headings.append(heading)
            in_heading = False
        elif token.type == "table_open":
            rows = parsed.tables.setdefault(heading, [])
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and rows is not None:
            row.append(_plain(token))
        elif token.type == "tr_close" and rows is not None:
            rows.append(row)
        elif token.type == "table_close":
            rows = None
    return parsed


def body(parsed: Parsed, heading_start: str) -> list[list[str]]:
    """The rows (header row excluded) of the table under the heading starting *heading_start*."""
    for heading, rows in parsed.tables.items():
        if heading.startswith(heading_start):
            return rows[1:]
    raise AssertionError(f"no table under a heading {heading_start!r}: {list(parsed.tables)}")
