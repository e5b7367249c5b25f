"""The CLI's run-to-run comparison (to be folded into pytest_kari_debug.gates).

The comparison is a pure function over test records (the plugin's per-test dicts, as stored
in the ``tests`` table and in the run's JSON document), so the CLI's ``compare`` and the
plugin's gates can share it. A baseline may hold several samples per test (several runs):
the centre is their median and the spread their scaled median absolute deviation.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigurationError

MIB = 1024.0 * 1024.0

#: Figure names accepted in a gate spec -> canonical per-test figure name.
FIGURE_ALIASES: dict[str, str] = {
    "duration": "duration_ms",
    "duration_ms": "duration_ms",
    "call": "call_ms",
    "call_ms": "call_ms",
    "cpu": "cpu_ms",
    "cpu_ms": "cpu_ms",
    "memory": "peak_rss_mb",
    "rss": "peak_rss_mb",
    "peak_rss": "peak_rss_mb",
    "peak_rss_mb": "peak_rss_mb",
    "allocated": "allocated_mb",
    "allocated_mb": "allocated_mb",
    "blocks": "allocated_blocks",
    "allocated_blocks": "allocated_blocks",
    "errors": "errors",
    "log.error": "log.error",
    "log.warning": "log.warning",
    "spans": "spans",
}
#: Unit of each canonical figure, for messages.
UNITS: dict[str, str] = {
    "duration_ms": "ms",
    "call_ms": "ms",
    "cpu_ms": "ms",
    "peak_rss_mb": "MiB",
    "allocated_mb": "MiB",
    "allocated_blocks": "blocks",
    "errors": "",
    "log.error": "",
    "log.warning": "",
    "spans": "",
}
#: Smallest increase that can count as a regression: below it, timer and allocator noise.
NOISE_FLOORS: dict[str, float] = {
    "duration_ms": 5.0,
    "call_ms": 5.0,
    "cpu_ms": 5.0,
    "peak_rss_mb": 1.0,
    "allocated_mb": 0.05,
    "allocated_blocks": 50.0,
    "errors": 0.0,
    "log.error": 0.0,
    "log.warning": 0.0,
    "spans": 0.0,
}
#: How many scaled MADs of the baseline's own spread an increase must exceed.
SPREAD_FACTOR = 3.0
#: Outcomes whose figures are comparable (a failed test stops early; a skipped one never ran).
COMPARABLE_OUTCOMES = frozenset({"passed", "xpassed"})
_LOG_RANK = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_RULE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*:\s*\+?\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class GateRule:
    """One gate: *figure* may grow by at most *limit* (a fraction when *relative*)."""

    figure: str
    limit: float
    relative: bool
    text: str

    def threshold(self, base: float) -> float:
        """The highest head value this rule allows for a baseline of *base*."""
        return base * (1.0 + self.limit) if self.relative else base + self.limit


def parse_gate_spec(text: str) -> list[GateRule]:
    """Parse ``"duration:+25%,allocated:+10%,errors:+0"`` into rules.

    ``+N%`` allows growth by N percent of the baseline, ``+N`` by N in the figure's unit.
    """
    rules = []
    for part in (p for p in str(text).split(",") if p.strip()):
        match = _RULE.match(part)
        if match is None:
            msg = (
                f"gate {part.strip()!r} is not FIGURE:+N% or FIGURE:+N"
                ' (e.g. "duration:+25%,allocated:+10%")'
            )
            raise ConfigurationError(msg)
        name, number, percent = match.groups()
        figure = FIGURE_ALIASES.get(name.lower())
        if figure is None:
            accepted = ", ".join(sorted(FIGURE_ALIASES))
            msg = f"unknown gate figure {name!r}; accepted: {accepted}"
            raise ConfigurationError(msg)
        value = float(number)
        rules.append(
            GateRule(figure, value / 100.0 if percent else value, bool(percent), part.strip())
        )
    if not rules:
        msg = f"no gate in {text!r}; write e.g. 'duration:+25%,allocated:+10%'"
        raise ConfigurationError(msg)
    return rules


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def figures_of(record: Mapping[str, Any]) -> dict[str, float]:
    """The per-test figures of one test record (only those it measured)."""
    figures: dict[str, float] = {}
    precomputed = record.get("figures")
    if isinstance(precomputed, Mapping):  # a baseline file's test: figures already computed
        for name, value in precomputed.items():
            number = _number(value)
            if number is not None:
                figures[FIGURE_ALIASES.get(str(name), str(name))] = number
        return figures
    for name, value in (
        ("duration_ms", record.get("duration_ms")),
        ("call_ms", (record.get("phases") or {}).get("call")),
    ):
        number = _number(value)
        if number is not None:
            figures[name] = number
    collected = record.get("collected_data") or {}
    metrics = collected.get("metrics") if isinstance(collected, Mapping) else None
    if isinstance(metrics, Mapping):
        resources = metrics.get("resources") or {}
        cpu = _number(resources.get("cpu_ms"))
        if cpu is not None:
            figures["cpu_ms"] = cpu
        peak = _number(resources.get("peak_rss_bytes"))
        if peak is not None:
            figures["peak_rss_mb"] = peak / MIB
        memory = metrics.get("memory") or {}
        allocated = _number(memory.get("allocated_bytes"))
        if allocated is not None:
            figures["allocated_mb"] = allocated / MIB
        blocks = _number(memory.get("allocated_blocks"))
        if blocks is not None:
            figures["allocated_blocks"] = blocks
    for kind, figure in (("error_tracking", "errors"), ("tracing", "spans")):
        data = collected.get(kind) if isinstance(collected, Mapping) else None
        if isinstance(data, Mapping) and isinstance(data.get("records"), list):
            figures[figure] = float(len(data["records"]))
    logging = collected.get("logging") if isinstance(collected, Mapping) else None
    if isinstance(logging, Mapping) and isinstance(logging.get("records"), list):
        ranks = [_LOG_RANK.get(str(r.get("level", "")).upper(), 0) for r in logging["records"]]
        figures["log.error"] = float(sum(rank >= 40 for rank in ranks))
        figures["log.warning"] = float(sum(rank >= 30 for rank in ranks))
    return figures


@dataclass(frozen=True)
class GateResult:
    """The verdict of one rule on one test (or on the total over common tests)."""

    nodeid: str
    figure: str
    rule: str
    base: float
    head: float
    threshold: float
    regressed: bool
    base_samples: int = 1
    head_samples: int = 1

    @property
    def change(self) -> float | None:
        """Relative change of head against base (``None`` when base is 0)."""
        return (self.head - self.base) / self.base if self.base else None

    def message(self) -> str:
        """One line naming the rule, the measured value and the threshold."""
        unit = UNITS.get(self.figure, "")
        change = f" ({self.change:+.1%})" if self.change is not None else ""
        return (
            f"{self.nodeid}: {self.figure} {self.head:.3f}{unit} against baseline"
            f" {self.base:.3f}{unit}{change}, gate {self.rule!r} allows {self.threshold:.3f}{unit}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with stable keys."""
        return {
            "nodeid": self.nodeid,
            "figure": self.figure,
            "rule": self.rule,
            "base": self.base,
            "head": self.head,
            "change": self.change,
            "threshold": self.threshold,
            "regressed": self.regressed,
            "base_samples": self.base_samples,
            "head_samples": self.head_samples,
        }


@dataclass
class Comparison:
    """Every verdict of a comparison and the tests it could not compare."""

    results: list[GateResult] = field(default_factory=list)
    compared_tests: int = 0
    only_in_base: list[str] = field(default_factory=list)
    only_in_head: list[str] = field(default_factory=list)
    not_comparable: list[str] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[GateResult]:
        return [result for result in self.results if result.regressed]

    @property
    def ok(self) -> bool:
        return not self.regressions

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with stable keys."""
        return {
            "ok": self.ok,
            "compared_tests": self.compared_tests,
            "regressions": [r.to_dict() for r in self.regressions],
            "results": [r.to_dict() for r in self.results],
            "only_in_base": self.only_in_base,
            "only_in_head": self.only_in_head,
            "not_comparable": self.not_comparable,
            "unmeasured": self.unmeasured,
        }


def _samples(runs: Iterable[Sequence[Mapping[str, Any]]]) -> tuple[dict, set[str]]:
    """nodeid -> figure -> values over every run; and the node ids seen in a bad outcome."""
    samples: dict[str, dict[str, list[float]]] = {}
    bad: set[str] = set()
    for tests in runs:
        for record in tests:
            nodeid = str(record.get("nodeid", ""))
            outcome = record.get("outcome", "passed")
            if outcome not in COMPARABLE_OUTCOMES:
                bad.add(nodeid)
                continue
            per_test = samples.setdefault(nodeid, {})
            for figure, value in figures_of(record).items():
                per_test.setdefault(figure, []).append(value)
    return samples, bad


def _spread(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    centre = statistics.median(values)
    return 1.4826 * statistics.median(abs(v - centre) for v in values)


def _verdict(
    nodeid: str, rule: GateRule, base: Sequence[float], head: Sequence[float]
) -> GateResult:
    centre = statistics.median(base)
    measured = statistics.median(head)
    threshold = max(
        rule.threshold(centre),
        centre + NOISE_FLOORS.get(rule.figure, 0.0),
        centre + SPREAD_FACTOR * _spread(base),
    )
    return GateResult(
        nodeid=nodeid,
        figure=rule.figure,
        rule=rule.text,
        base=centre,
        head=measured,
        threshold=threshold,
        regressed=measured > threshold,
        base_samples=len(base),
        head_samples=len(head),
    )


def compare_runs(
    base_runs: Sequence[Sequence[Mapping[str, Any]]],
    head_runs: Sequence[Sequence[Mapping[str, Any]]],
    rules: Sequence[GateRule],
) -> Comparison:
    """Apply *rules* to every test found (passing) in both the baseline and the head runs.

    Each rule is applied per test and to the total over the common tests (reported with node
    id ``"(total)"``), so a small slowdown spread over many tests is caught as well. A head
    value regresses when it exceeds the rule's threshold over the baseline median, the
    figure's noise floor and three scaled MADs of the baseline's samples, whichever is
    highest.
    """
    base, base_bad = _samples(base_runs)
    head, head_bad = _samples(head_runs)
    comparison = Comparison()
    comparison.only_in_base = sorted(set(base) - set(head) - head_bad)
    comparison.only_in_head = sorted(set(head) - set(base) - base_bad)
    comparison.not_comparable = sorted(base_bad | head_bad)
    common = sorted(set(base) & set(head))
    comparison.compared_tests = len(common)
    unmeasured: set[str] = set()
    for rule in rules:
        totals_base: list[float] = []
        totals_head: list[float] = []
        for nodeid in common:
            base_values = base[nodeid].get(rule.figure)
            head_values = head[nodeid].get(rule.figure)
            if not base_values or not head_values:
                unmeasured.add(rule.figure)
                continue
            comparison.results.append(_verdict(nodeid, rule, base_values, head_values))
            totals_base.append(statistics.median(base_values))
            totals_head.append(statistics.median(head_values))
        if len(totals_base) > 1:
            comparison.results.append(
                _verdict("(total)", rule, [sum(totals_base)], [sum(totals_head)])
            )
    comparison.unmeasured = sorted(unmeasured)
    return comparison
