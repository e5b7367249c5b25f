"""The run's sections: as the tests finish, in one pass over the journal, or one per section.

Writes N trivial tests' records (the shape ``--kari-debug`` records: four components, resource
figures) into a run journal, then builds the run's sections in rotated rounds, three ways, in
the same process:

- ``digest``: :class:`pytest_kari_debug.summaries.RunDigest` fed the records in memory (what
  the plugin does as each test is kept; its end reads no record) and asked for the sections;
- ``one pass``: :func:`pytest_kari_debug.summaries.run_sections` over the journal (what the
  plugin does when the digest missed a test: each record decoded and read once), which also
  builds the error groups, log counts and fired alerts;
- ``a pass per section``: ``metrics_section``, ``profiling_section`` and ``affected_tests``
  each iterating the journal (what the plugin did two steps before).

It prints the median milliseconds of each and their ratios (ratios in the same process and
rounds: what load from other processes disturbs least). The digest's figure is warm: between
real tests its per-test part runs colder (about 20 µs a test measured inside a run)::

    python benchmarks/run_sections.py [--tests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_kari_debug.journal import RunJournal
from pytest_kari_debug.storage import dumps
from pytest_kari_debug.summaries import (
    RunDigest,
    affected_tests,
    metrics_section,
    profiling_section,
    run_sections,
)


def record(n: int) -> dict[str, Any]:
    """A trivial test's record as ``--kari-debug`` writes it."""
    resources = {
        "cpu_user_s": 0.0021, "cpu_system_s": 0.0002, "cpu_ms": 2.3, "rss_start_bytes": 80510976,
        "rss_end_bytes": 80519168, "peak_rss_bytes": 80519168, "peak_rss_mb": 76.789,
        "io_read_bytes": 0, "io_write_bytes": 24576, "ctx_switches": 51,
        "ctx_switches_voluntary": 26, "ctx_switches_involuntary": 25,
    }  # fmt: skip
    return {
        "record_version": 2, "nodeid": f"test_gen.py::test_{n}", "extension_id": "suite",
        "extension_name": "suite", "outcome": "passed",
        "phases": {"setup": 0.3, "call": 0.1 + n % 7, "teardown": 0.06}, "duration_ms": 0.4,
        "cpu_ms": 0.85, "kari_overhead_ms": 0.2, "started_at": 1.0e9 + n,
        "finished_at": 1.0e9 + n + 0.01, "session_id": f"{n:032x}", "worker": None,
        "longrepr": None, "failure": None, "captured": [],
        "collected_data": {
            "logging": {"records": [], "dropped": 0},
            "metrics": {"records": [], "dropped": 0, "resources": resources, "samples": [],
                        "samples_dropped": 0},
            "error_tracking": {"records": [], "dropped": 0, "total": 0, "groups": []},
            "alerting": {"records": [], "dropped": 0},
        },
        "extra": {"logging": {"counts": {}, "records": 0, "dropped": 0}},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        journal = RunJournal(Path(tmp), {"uuid": "bench"})
        records = [record(n) for n in range(options.tests)]
        for test in records:
            journal.append(dumps(test))

        def digest() -> None:
            built = RunDigest()
            for test in records:
                built.add(test)
            built.sections()

        def one_pass() -> None:
            run_sections(journal)

        def per_section() -> None:
            metrics_section(journal)
            profiling_section(journal)
            affected_tests(journal)

        assert run_sections(journal).metrics == metrics_section(journal)
        ways = {"digest": digest, "one pass": one_pass, "a pass per section": per_section}
        times: dict[str, list[float]] = {name: [] for name in ways}
        names = list(ways)
        for round_no in range(options.rounds):
            for name in names[round_no % 3 :] + names[: round_no % 3]:
                started = time.process_time()
                ways[name]()
                times[name].append(time.process_time() - started)
        journal.remove()
    fed, one, per = (statistics.median(times[name]) * 1000 for name in names)
    print(
        f"{options.tests} trivial tests' records, {options.rounds} rotated rounds, CPU medians"
        f" (load {os.getloadavg()[0]:.1f}): digest {fed:.1f} ms"
        f" ({fed * 1000 / options.tests:.1f} µs per test), one pass {one:.1f} ms, a pass per"
        f" section {per:.1f} ms ({one / per:.2f}x; {(per - one) * 1000 / options.tests:.1f} µs"
        " per test saved)"
    )


if __name__ == "__main__":
    main()
