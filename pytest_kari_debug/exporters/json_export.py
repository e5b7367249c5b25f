"""The run's JSON document (validated by ``schemas/run.schema.json``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..atomic import open_atomic, write_atomic
from ..model import RUN_FORMAT, SCHEMA_VERSION, AnyTest, dropped_of

FORMAT = RUN_FORMAT
VERSION = SCHEMA_VERSION
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "run.schema.json"
_TESTS = "\x00kari-tests\x00"


def run_summary(tests: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The ``summary`` of a run document: counts per outcome, extensions, drops per component."""
    outcomes: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    extensions: set[str] = set()
    count = 0
    for test in tests:
        count += 1
        outcomes[test.get("outcome", "unknown")] += 1
        extensions.add(test.get("extension_id", ""))
        add_dropped(dropped, test)
    return summary_of(count, outcomes, extensions, dropped)


def add_dropped(dropped: Counter[str], test: AnyTest) -> None:
    """Add *test*'s dropped records per component to *dropped*."""
    for key, count in dropped_of(test).items():  # (Counter.update: twice the time a test)
        dropped[key] = dropped.get(key, 0) + count


def summary_of(
    count: int, outcomes: Counter[str] | dict[str, int], extensions: Iterable[str],
    dropped: Counter[str] | dict[str, int],
) -> dict[str, Any]:  # fmt: skip
    """A run document's ``summary`` from counts kept while the run went on."""
    return {
        "tests": count,
        "outcomes": dict(sorted(outcomes.items())),
        "extensions": sorted(extensions),
        "dropped": dict(sorted(dropped.items())),
    }


def build_run_document(
    run: dict[str, Any],
    tests: Sequence[dict[str, Any]],
    *,
    diagnostics: Sequence[str] = (),
    sections: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the JSON document of one run from its metadata and test records."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "run": run,
        "summary": run_summary(tests),
        "tests": list(tests),
        "diagnostics": list(diagnostics),
        "sections": sections or {},
    }


def write_run_json(path: str | Path, document: dict[str, Any]) -> Path:
    """Write *document* to *path* atomically."""
    text = json.dumps(document, default=repr, ensure_ascii=False, indent=1)
    return write_atomic(path, text)


def stream_run_json(
    path: str | Path,
    run: dict[str, Any],
    summary: dict[str, Any],
    tests: Iterable[bytes],
    *,
    diagnostics: Sequence[str] = (),
    sections: dict[str, Any] | None = None,
) -> Path:
    """Write the run document to *path* atomically, its *tests* (each one test record's JSON
    text, UTF-8) copied in one by one: the run's records are never all in memory."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "run": run,
        "summary": summary,
        "tests": _TESTS,
        "diagnostics": list(diagnostics),
        "sections": sections or {},
    }
    text = json.dumps(document, default=repr, ensure_ascii=False, indent=1)
    head, tail = text.split(json.dumps(_TESTS), 1)
    with open_atomic(path) as out:
        out.write(head.encode("utf-8", "backslashreplace") + b"[")
        separator = b"\n"
        for test in tests:
            out.write(separator)
            out.write(test)
            separator = b",\n"
        out.write(b"\n]" + tail.encode("utf-8", "backslashreplace"))
    return Path(path)
