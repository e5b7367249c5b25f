"""What a failing test's record says about its failure: message, the test's own frame, output.

The report shows these first: the message, a few source lines at the test's own frame (not
pytest's or the plugin's), and what the test printed and logged per phase (pytest's
``report.sections``). A failed verdict (alert, budget, gate) is the user's rule, not an error
in their code: its report names the rule, the value and the threshold at the test's location,
without the plugin's frames.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..exceptions import KariDebugAssertion

#: Characters kept of one captured stream of one phase, and of the failure message.
CAPTURED_CHARS = 20_000
MESSAGE_CHARS = 4_000
#: Source lines shown above the failing line of the test's frame.
CONTEXT_LINES = 3
_PREFIX = "Captured "
_PHASES = frozenset(("setup", "call", "teardown"))
#: pytest's own streams: words that hold nothing to scrub.
_STREAMS = frozenset(("stdout", "stderr", "log"))


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters]"


def captured_sections(
    report: pytest.TestReport, kept: Callable[[str], str]
) -> list[dict[str, str]]:
    """The output pytest captured per phase, as kept: ``[{"phase", "stream", "text"}]``.

    pytest names its sections ``Captured stdout call``, ``Captured log setup``...; another
    plugin's section keeps its title as the stream and an empty phase. Each text (and a title
    that is not one of pytest's streams) goes through *kept* (cut, writable, scrubbed): once,
    as the section is read.
    """
    found: list[dict[str, str]] = []
    for title, content in report.sections:
        if not content:
            continue
        phase = ""
        stream = str(title)
        if stream.startswith(_PREFIX):
            words = stream[len(_PREFIX) :].rsplit(" ", 1)
            if len(words) == 2 and words[1] in _PHASES:
                stream, phase = words
        if stream not in _STREAMS:
            stream = kept(stream)
        text = kept(_cut(str(content), CAPTURED_CHARS))
        found.append({"phase": phase, "stream": stream, "text": text})
    return found


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _excerpt(path: Path, lineno: int, message: str) -> str:
    """A few source lines ending at *lineno* (1-based), marked like pytest marks them."""
    numbered = []
    for number in range(max(1, lineno - CONTEXT_LINES), lineno + 1):
        text = linecache.getline(str(path), number).rstrip("\n")
        if text.strip() or number == lineno:
            numbered.append((number, text))
    # the test body's own indentation says nothing: cut what every shown line shares
    indent = min((len(t) - len(t.lstrip()) for _, t in numbered if t.strip()), default=0)
    lines = [
        f"{'>' if number == lineno else ' '} {number:>4}  {text[indent:]}"
        for number, text in numbered
    ]
    lines.extend(f"E       {line}" for line in message.splitlines()[:12])
    return "\n".join(lines)


def _test_frame(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> int | None:
    """The 1-based line of the test file where the exception passed last, if it did."""
    path = getattr(item, "path", None)
    found = None
    for entry in excinfo.traceback:
        if path is not None and Path(entry.path) == path:
            found = entry.lineno + 1
    return found


def failure_summary(
    item: pytest.Item, call: pytest.CallInfo[Any], report: pytest.TestReport
) -> dict[str, Any]:
    """The failure of *report*: ``message``, ``location``, ``excerpt``, ``phase``, ``verdict``."""
    root = item.config.rootpath
    path, def_line, _ = item.location
    location = f"{path}:{(def_line or 0) + 1}"
    excinfo = call.excinfo
    if excinfo is None:
        lines = report.longreprtext.strip().splitlines()
        message = _cut(lines[-1] if lines else "", MESSAGE_CHARS)
        return {"phase": report.when, "message": message, "location": location, "excerpt": ""}
    verdict = isinstance(excinfo.value, KariDebugAssertion)
    if verdict:
        message = _cut(str(excinfo.value), MESSAGE_CHARS)
        return {
            "phase": report.when,
            "message": message,
            "location": location,
            "excerpt": "",
            "verdict": True,
        }
    message = _cut(excinfo.exconly().strip(), MESSAGE_CHARS)
    lineno = _test_frame(item, excinfo)
    excerpt = ""
    if lineno is not None:
        test_path = getattr(item, "path", None)
        if isinstance(test_path, Path):
            location = f"{_relative(test_path, root)}:{lineno}"
            excerpt = _excerpt(test_path, lineno, message)
    return {"phase": report.when, "message": message, "location": location, "excerpt": excerpt}


def verdict_longrepr(item: pytest.Item, message: str) -> str:
    """pytest's text for a failed verdict: where the test is and why, no plugin frames."""
    path, def_line, name = item.location
    return f"{message}\n\nkari-debug verdict of {name} at {path}:{(def_line or 0) + 1}"
