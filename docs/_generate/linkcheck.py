"""Check the internal links of a built site: every page, file and anchor they name exists.

Usage: ``python docs/_generate/linkcheck.py site/`` (exit status 1 and one line per broken
link when some are broken). Pages are read with the standard library's HTML parser; links to
other sites (a scheme or ``//host``) are not followed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src"}


@dataclass
class Page:
    """What one HTML page links to and which anchors it defines."""

    links: list[str] = field(default_factory=list)
    anchors: set[str] = field(default_factory=set)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("id", "name") if tag == "a" else ("id",):
            if values.get(name):
                self.page.anchors.add(str(values[name]))
        wanted = LINK_ATTRIBUTES.get(tag)
        target = values.get(wanted) if wanted else None
        if target:
            self.page.links.append(target)


def parse_page(path: Path) -> Page:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser.page


def _target_file(site: Path, page: Path, path: str) -> Path:
    base = site if path.startswith("/") else page.parent
    target = (base / unquote(path.lstrip("/"))).resolve()
    return target / "index.html" if target.is_dir() else target


def broken_links(site: Path) -> list[str]:
    """``page: link (why)`` for every internal link of the site at *site* that goes nowhere."""
    site = site.resolve()
    pages = {path.resolve(): parse_page(path) for path in site.rglob("*.html")}
    problems = []
    for page_path, page in sorted(pages.items()):
        shown = page_path.relative_to(site)
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue
            target = _target_file(site, page_path, parts.path) if parts.path else page_path
            if not target.is_file():
                problems.append(f"{shown}: {link} (no file {target.relative_to(site)})")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                anchors = pages[target].anchors if target in pages else set()
                if fragment not in anchors:
                    problems.append(f"{shown}: {link} (no anchor #{fragment})")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: linkcheck.py SITE_DIR", file=sys.stderr)
        return 2
    site = Path(argv[0])
    if not (site / "index.html").is_file():
        print(f"linkcheck: error: no built site at {str(site)!r}", file=sys.stderr)
        return 2
    problems = broken_links(site)
    for line in problems:
        print(line)
    pages = sum(1 for _ in site.rglob("*.html"))
    print(f"linkcheck: {pages} pages, {len(problems)} broken internal links")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
