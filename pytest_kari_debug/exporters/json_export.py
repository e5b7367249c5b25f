"""The run's JSON document (validated by ``schemas/run.schema.json``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..model import RUN_FORMAT, SCHEMA_VERSION

FORMAT = RUN_FORMAT
VERSION = SCHEMA_VERSION
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "run.schema.json"


def build_run_document(
    run: dict[str, Any],
    tests: Sequence[dict[str, Any]],
    *,
    diagnostics: Sequence[str] = (),
    sections: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the JSON document of one run from its metadata and test records."""
    outcomes = Counter(test.get("outcome", "unknown") for test in tests)
    dropped: Counter[str] = Counter()
    for test in tests:
        for component, data in (test.get("collected_data") or {}).items():
            if isinstance(data, dict):
                dropped[component] += int(data.get("dropped", 0) or 0)
    return {
        "format": FORMAT,
        "version": VERSION,
        "run": run,
        "summary": {
            "tests": len(tests),
            "outcomes": dict(sorted(outcomes.items())),
            "extensions": sorted({test.get("extension_id", "") for test in tests}),
            "dropped": dict(sorted(dropped.items())),
        },
        "tests": list(tests),
        "diagnostics": list(diagnostics),
        "sections": sections or {},
    }


def write_run_json(path: str | Path, document: dict[str, Any]) -> Path:
    """Write *document* to *path* atomically."""
    text = json.dumps(document, default=repr, ensure_ascii=False, indent=1)
    return write_atomic(path, text)
