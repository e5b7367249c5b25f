"""Markdown summaries for CI: a run (job summary, PR comment) and a gate comparison.

Data in, text out: the plugin and the CLI gather the records, this module only renders them,
escaping every user-given string (:mod:`markdown`) and capping every table.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from typing import Any

from ..figures import measure
from ..gates import UNITS, Comparison, show_value
from ..markdown import capped_table, first_line, inline
from ..sharedmethods import dataclass

#: GitHub refuses a job summary over 1 MiB; stay well below with room for other steps.
DEFAULT_MAX_CHARS = 100_000
FAILED_OUTCOMES = ("failed", "error", "xpassed")


@dataclass(frozen=True, slots=True)
class SummaryLimits:
    """How much of each part a summary shows (the rest is counted in a "N more" line)."""

    rows: int = 30
    slowest: int = 10
    max_chars: int = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        if self.rows < 1 or self.slowest < 0 or self.max_chars < 1000:
            msg = f"summary limits: rows >= 1, slowest >= 0, max_chars >= 1000; got {self!r}"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Failure:
    """Where and why a test failed: its crash message's first line and ``path:line``."""

    message: str
    location: str


@dataclass
class History:
    """What the store's earlier runs say about this run's tests."""

    new: list[str] = field(default_factory=list)
    flaky: list[tuple[str, str]] = field(default_factory=list)  # (nodeid, why)


def _ms(value: Any) -> str:
    return show_value(float(value), "ms") if isinstance(value, (int, float)) else "-"


class _Facts:
    """What one pass over the records keeps: bounded whatever the number of tests."""

    def __init__(self, limits: SummaryLimits) -> None:
        self.limits = limits
        self.total = 0
        self.outcomes: dict[str, int] = {}
        self.failed: list[dict[str, Any]] = []
        self.failed_count = 0
        self.slowest: list[tuple[float, int, str, str]] = []
        self.hangs: list[tuple[str, dict[str, Any]]] = []
        self.hang_count = 0

    def add(self, test: Mapping[str, Any]) -> None:
        self.total += 1
        outcome = str(test.get("outcome") or "unknown")
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        nodeid = str(test.get("nodeid") or "?")
        if outcome in FAILED_OUTCOMES:
            self.failed_count += 1
            if len(self.failed) < self.limits.rows:
                self.failed.append(
                    {"nodeid": nodeid, "outcome": outcome, "longrepr": test.get("longrepr")}
                )
        duration = measure("duration_ms", test).value
        if isinstance(duration, (int, float)) and self.limits.slowest:
            entry = (float(duration), -self.total, nodeid, outcome)
            if len(self.slowest) < self.limits.slowest:
                heapq.heappush(self.slowest, entry)
            else:
                heapq.heappushpop(self.slowest, entry)
        hang = (test.get("extra") or {}).get("hang_dump")
        if isinstance(hang, dict) and hang.get("dumps"):
            self.hang_count += 1
            if len(self.hangs) < self.limits.rows:
                self.hangs.append((nodeid, hang))


def _failure_of(test: Mapping[str, Any], failures: Mapping[str, Failure]) -> Failure:
    found = failures.get(str(test["nodeid"]))
    if found is not None:
        return found
    # Without the crash report (a record read back from a store): the longrepr's last
    # "path:line: Error" line is pytest's crash location.
    longrepr = str(test.get("longrepr") or "")
    location = ""
    for line in reversed(longrepr.splitlines()):
        head, sep, _ = line.partition(": ")
        if sep and ":" in head and head.rsplit(":", 1)[1].isdigit():
            location = head
            break
    message = next(
        (line[1:].strip() for line in longrepr.splitlines() if line.startswith("E ")), ""
    )
    return Failure(message or first_line(longrepr), location)


def run_summary(
    run: Mapping[str, Any],
    tests: Iterable[Mapping[str, Any]],
    sections: Mapping[str, Any],
    *,
    failures: Mapping[str, Failure] | None = None,
    outputs: Mapping[str, str] | None = None,
    history: History | None = None,
    limits: SummaryLimits = SummaryLimits(),
) -> str:
    """The Markdown summary of one run: counts, failures, regressions, alerts, hangs,
    slowest, new and flaky tests, and where the full outputs are."""
    facts = _Facts(limits)
    for test in tests:
        facts.add(test)
    failures = failures or {}
    lines = [f"## kari-debug: {facts.total} tests", ""]
    order = ("failed", "error", "xpassed", "passed", "skipped", "xfailed")
    counts = sorted(
        facts.outcomes.items(),
        key=lambda kv: (kv[0] not in order, order.index(kv[0]) if kv[0] in order else 0, kv[0]),
    )
    lines.append(" · ".join(f"**{n}** {inline(o)}" for o, n in counts) or "no test recorded")
    if run.get("duration_s") is not None:
        lines[-1] += f" · {float(run['duration_s']):.1f} s"
    lines.append("")
    if facts.failed:
        lines += [f"### Failing tests ({facts.failed_count})", ""]
        rows = []
        for test in facts.failed:
            failure = _failure_of(test, failures)
            rows.append(
                [
                    inline(test["nodeid"]),
                    inline(test["outcome"]),
                    inline(failure.message, 160),
                    inline(failure.location),
                ]
            )
        extra = facts.failed_count - len(rows)
        lines += capped_table(["Test", "Outcome", "Message", "Location"], rows, limits.rows)
        if extra > 0:
            lines += ["", f"_… and {extra} more failing tests_"]
        lines.append("")
    lines += _regressions(sections.get("comparison"), limits)
    lines += _alerts(sections.get("alerts"), limits)
    lines += _hangs(facts, limits)
    if history is not None:
        lines += _history(history, limits)
    if facts.slowest:
        ranked = sorted(facts.slowest, reverse=True)
        lines += [f"### Slowest tests ({len(ranked)})", ""]
        rows = [[inline(nodeid), _ms(ms), inline(outcome)] for ms, _, nodeid, outcome in ranked]
        lines += capped_table(["Test", "Duration", "Outcome"], rows, limits.slowest)
        lines.append("")
    if outputs:
        lines += ["### Outputs", ""]
        lines += [f"- {inline(label)}: {inline(path, 500)}" for label, path in outputs.items()]
        lines.append("")
    return _capped("\n".join(lines), limits.max_chars)


def _regressions(section: Any, limits: SummaryLimits) -> list[str]:
    if not isinstance(section, Mapping):
        return []
    changes = [c for c in section.get("changes") or () if c.get("verdict") == "regression"]
    changes += [c for c in section.get("totals") or () if c.get("verdict") == "regression"]
    if not changes:
        return []
    rows = [_change_row(change) for change in changes]
    lines = [
        f"### Regressions against {inline(section.get('baseline') or 'the baseline')}"
        f" ({len(changes)})",
        "",
    ]
    return [*lines, *capped_table(CHANGE_HEADERS, rows, limits.rows, what="regressions"), ""]


def _alerts(section: Any, limits: SummaryLimits) -> list[str]:
    if not isinstance(section, Mapping) or not section.get("alerts"):
        return []
    alerts = list(section["alerts"])
    rows = [
        [
            inline(a.get("severity")),
            inline(a.get("nodeid")),
            inline(a.get("name")),
            inline(first_line(a.get("message")), 160),
            "yes" if a.get("failed_test") else "no",
        ]
        for a in alerts
    ]
    lines = [f"### Alerts fired ({len(alerts)})", ""]
    return [
        *lines,
        *capped_table(
            ["Severity", "Test", "Rule", "Message", "Failed the test"],
            rows,
            limits.rows,
            what="alerts",
        ),
        "",
    ]


def _hangs(facts: _Facts, limits: SummaryLimits) -> list[str]:
    if not facts.hangs:
        return []
    lines = [f"### Hang dumps ({facts.hang_count})", ""]
    rows = []
    for nodeid, hang in facts.hangs:
        last = hang["dumps"][-1]
        threads = ", ".join(
            f"{t.get('name')} in {t.get('function')}" for t in last.get("threads") or ()
        )
        rows.append(
            [
                inline(nodeid),
                f"{float(last.get('after_s') or 0):.1f} s",
                inline(hang.get("reason") or "slow"),
                inline(threads, 300),
            ]
        )
    lines += capped_table(
        ["Test", "After", "Why", "Threads (innermost function)"],
        rows,
        limits.rows,
        what="hung tests",
    )
    if facts.hang_count > len(rows):
        lines += ["", f"_… and {facts.hang_count - len(rows)} more hung tests_"]
    lines += ["", "_Full stacks: the test's entry in the HTML report and the JSON._", ""]
    return lines


def _history(history: History, limits: SummaryLimits) -> list[str]:
    lines: list[str] = []
    if history.new:
        lines += [f"### New tests ({len(history.new)})", ""]
        shown = [inline(n) for n in history.new[: limits.rows]]
        lines += [f"- {n}" for n in shown]
        if len(history.new) > limits.rows:
            lines.append(f"- _… and {len(history.new) - limits.rows} more_")
        lines.append("")
    if history.flaky:
        lines += [f"### Flaky tests ({len(history.flaky)})", ""]
        rows = [[inline(nodeid), inline(why)] for nodeid, why in history.flaky]
        lines += [*capped_table(["Test", "History"], rows, limits.rows, what="flaky tests"), ""]
    return lines


def _capped(text: str, max_chars: int) -> str:
    """*text* cut at a line boundary to at most *max_chars*, saying how many lines were cut."""
    if len(text) <= max_chars:
        return text + "\n"
    lines = text.split("\n")
    kept: list[str] = []
    size = 0
    budget = max_chars - 100
    for line in lines:
        if size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    # A table cut mid-way must end before the note, or the note becomes a row.
    return "\n".join([*kept, "", f"_… and {len(lines) - len(kept)} more lines (size cap)_"]) + "\n"


# Comparison ------------------------------------------------------------------------------
CHANGE_HEADERS = ["Metric", "Test", "Base", "Head", "Change", "Note"]


def _change_row(change: Mapping[str, Any]) -> list[str]:
    metric = str(change.get("metric") or "")
    unit = UNITS.get(metric, "")
    base, head = change.get("baseline"), change.get("current")
    percent = change.get("percent")
    if (
        percent is None
        and isinstance(base, (int, float))
        and base
        and isinstance(head, (int, float))
    ):
        percent = (head - base) / abs(base) * 100.0
    return [
        inline(metric),
        inline(change.get("nodeid")),
        inline(show_value(base, unit) if isinstance(base, (int, float)) else "-"),
        inline(show_value(head, unit) if isinstance(head, (int, float)) else "-"),
        f"{percent:+.1f}%" if isinstance(percent, (int, float)) else "-",
        inline(change.get("note") or ""),
    ]


def comparison_markdown(
    comparison: Comparison,
    *,
    base_label: str,
    head_label: str,
    gates: Sequence[str],
    limit: int = 50,
) -> str:
    """The gate table for a PR comment: regressions first, then improvements, then how many
    comparisons were unchanged."""
    changes = [c.to_dict() for c in (*comparison.sorted(), *comparison.totals)]
    regressions = [c for c in changes if c["verdict"] == "regression"]
    faster = [c for c in changes if c["verdict"] == "faster"]
    unchanged = sum(1 for c in changes if c["verdict"] in ("ok", "unconfirmed"))
    verdict = f"❌ {len(regressions)} regression(s)" if regressions else "✅ no regression"
    lines = [
        f"## kari-debug compare: {verdict}",
        "",
        f"{inline(head_label)} against {inline(base_label)}: {comparison.compared_tests} tests,"
        f" gates {inline(', '.join(gates))}"
        + (
            f", machine slower ×{comparison.slowdown:.2f} (timings scaled back)"
            if comparison.slowdown > 1.0
            else ""
        ),
        "",
    ]
    if regressions:
        lines += [f"### Regressions ({len(regressions)})", ""]
        lines += capped_table(
            CHANGE_HEADERS, [_change_row(c) for c in regressions], limit, what="regressions"
        )
        lines.append("")
    if faster:
        lines += [f"### Improvements ({len(faster)})", ""]
        lines += capped_table(
            CHANGE_HEADERS, [_change_row(c) for c in faster], limit, what="improvements"
        )
        lines.append("")
    lines.append(f"**{unchanged}** comparisons unchanged.")
    for reason, names in comparison.left_out():
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        shown = ", ".join(inline(n) for n in names[:10])
        lines.append(f"{reason[:1].upper()}{reason[1:]}: {shown}{more}.")
    return "\n".join(lines) + "\n"
