"""Alert rules: a small syntax (``"peak_rss_mb > 200 for 3 tests"``), figures and evaluation.

A rule compares one *figure* of a test (or of a monitored extension) with a threshold:

    duration_ms > 500                 test duration (setup + call) in ms
    peak_rss_mb > 200                 peak RSS of the process during the test, in MiB
    errors > 0                        error records of the test
    log.error > 0                     log records at ERROR or above
    span:db_query.p95_ms > 50         95th percentile of the spans named db_query
    metric:queue_size > 100 for 10s   a recorded metric above 100 for 10 s of points
    cpu_percent > 80 for 5 samples    resource samples above 80 % five times in a row
    errors > 0 for 3 tests            fires on the third test in a row with errors

Rules are parsed once; a bad rule raises :class:`~pytest_kari_debug.exceptions.ConfigurationError`
naming what is wrong and what is accepted. Figures come from a :class:`Figures` source:
:class:`SessionFigures` reads a debug manager's live session, :class:`RecordFigures` a finished
test record, :class:`StaticFigures` a plain mapping.
"""

from __future__ import annotations

import fnmatch
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field, replace
from typing import Any

from .exceptions import ConfigurationError
from .figures import (
    FIGURES,
    METRIC_AGGREGATES,
    SPAN_AGGREGATES,
    DataFigures,
    Figures,
    FigureSpec,
    Measurement,
    RecordFigures,
    SessionFigures,
    StaticFigures,
    figure_spec,
    known_figures,
)
from .model import LOG_LEVELS, MIB, OPERATORS, AlertSeverity
from .sharedmethods import dataclass


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# The figures and the vocabulary live in .figures and .model; rules read them from there.
__all__ = [
    "FIGURES", "LOG_LEVELS", "METRIC_AGGREGATES", "MIB", "OPERATORS", "SPAN_AGGREGATES",
    "AlertRule", "AlertSeverity", "DataFigures", "Evaluation", "FigureSpec", "FigureView",
    "Figures", "Measurement", "RecordFigures", "RuleStates", "SessionFigures", "StaticFigures",
    "budget_rules", "evaluate_rule", "evaluate_rules", "figure_spec", "known_figures",
    "parse_rule", "parse_rules",
]  # fmt: skip


# Rules -------------------------------------------------------------------------------------
_EXPRESSION = re.compile(
    r"""^\s*(?P<figure>[^\s<>=!]+)\s*
    (?P<op>>=|<=|==|!=|>|<)\s*
    (?P<threshold>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
    (?:\s+for\s+(?P<count>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]+))?\s*$""",
    re.X,
)
_TIME_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_COUNT_UNITS = {
    "sample": "samples",
    "samples": "samples",
    "test": "tests",
    "tests": "tests",
    "evaluation": "tests",
    "evaluations": "tests",
    "times": "tests",
}
RULE_OPTIONS = ("severity", "inhibits", "name", "cooldown_minutes")


@dataclass(frozen=True)
class AlertRule:
    """A rule that raises an alert when a figure crosses a threshold (or a predicate holds).

    ``for_count`` with ``for_unit`` "tests" needs that many consecutive evaluations in a row;
    with "samples" (or ``for_seconds``) it needs a time series figure to hold that long.
    ``inhibits`` lists rule names or figures (globs) this rule silences on the same session.
    """

    figure: str
    operator: str
    threshold: float
    severity: AlertSeverity = AlertSeverity.HIGH
    name: str = ""
    for_count: int | None = None
    for_unit: str | None = None
    for_seconds: float | None = None
    inhibits: tuple[str, ...] = ()
    cooldown_minutes: float | None = None
    origin: str = "api"
    predicate: Callable[[FigureView], Any] | None = field(default=None, compare=False)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.expression)

    @property
    def expression(self) -> str:
        """The rule in the rule syntax (without options)."""
        if self.predicate is not None:
            return self.name or getattr(self.predicate, "__name__", "predicate")
        text = f"{self.figure} {self.operator} {_fmt(self.threshold)}"
        if self.for_seconds is not None:
            text += f" for {_fmt(self.for_seconds)}s"
        elif self.for_count is not None:
            text += f" for {self.for_count} {self.for_unit}"
        return text

    @property
    def unit(self) -> str:
        return "" if self.predicate is not None else figure_spec(self.figure).unit

    def text(self) -> str:
        """The rule with its options, as it could be written in ``kari_alert_rules``."""
        parts = [self.expression, f"severity={self.severity.value}"]
        if self.inhibits:
            parts.append("inhibits=" + ",".join(self.inhibits))
        return " ".join(parts)

    def with_options(self, **changes: Any) -> AlertRule:
        """Return a copy with *changes* (severity, name, inhibits, cooldown_minutes, origin)."""
        if "severity" in changes:
            changes["severity"] = AlertSeverity.parse(changes["severity"])
        if "inhibits" in changes:
            changes["inhibits"] = _names(changes["inhibits"], "inhibits")
        rule = replace(self, **changes)
        if "name" not in changes and self.name == self.expression:
            object.__setattr__(rule, "name", rule.expression)
        return rule

    def inhibits_alert(self, name: str, figure: str | None) -> bool:
        """Whether this rule silences an alert of rule *name* on *figure*."""
        return any(
            fnmatch.fnmatchcase(name, pattern)
            or (figure is not None and fnmatch.fnmatchcase(figure, pattern))
            for pattern in self.inhibits
        )

    @classmethod
    def custom(
        cls,
        name: str,
        predicate: Callable[[FigureView], Any],
        severity: AlertSeverity | str = AlertSeverity.HIGH,
        *,
        description: str = "",
        inhibits: Iterable[str] | str = (),
        origin: str = "api",
    ) -> AlertRule:
        """A rule that fires when ``predicate(figures)`` is true.

        The predicate gets a :class:`FigureView` (``figures["errors"]``) and returns a truth
        value, or a ``(fired, value)`` pair whose value is shown in the message.
        """
        if not callable(predicate):
            msg = f"a custom rule needs a callable predicate, got {predicate!r}"
            raise ConfigurationError(msg)
        if not isinstance(name, str) or not name.strip():
            msg = f"a custom rule needs a non-empty name, got {name!r}"
            raise ConfigurationError(msg)
        return cls(
            figure="",
            operator="",
            threshold=math.nan,
            severity=AlertSeverity.parse(severity),
            name=name.strip(),
            inhibits=_names(inhibits, "inhibits"),
            origin=origin,
            predicate=predicate,
            description=description,
        )


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _names(value: Iterable[str] | str, what: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    names = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            msg = f"{what} must be names (comma-separated or a list of strings), got {value!r}"
            raise ConfigurationError(msg)
        names.append(item.strip())
    return tuple(names)


_PARSED: dict[str, AlertRule] = {}
_PARSED_LOCK = threading.Lock()


def parse_rule(
    text: str,
    severity: AlertSeverity | str | None = None,
    *,
    origin: str = "api",
    **options: Any,
) -> AlertRule:
    """Parse ``"FIGURE OP THRESHOLD [for N UNIT] [severity=S] [inhibits=a,b] [name=N]"``.

    *severity* and *options* given here override the ones written in *text*. Parsing is
    cached: the same text gives the same rule object (so ``for N tests`` streaks are shared).
    """
    if not isinstance(text, str) or not text.strip():
        msg = f"an alert rule must be a non-empty string, got {text!r}"
        raise ConfigurationError(msg)
    key = repr((text, severity, origin, sorted(options.items())))
    with _PARSED_LOCK:
        cached = _PARSED.get(key)
    if cached is not None:
        return cached
    rule = _parse(text.strip(), severity, origin, options)
    with _PARSED_LOCK:
        if len(_PARSED) > 10_000:
            _PARSED.clear()
        return _PARSED.setdefault(key, rule)


def _parse(
    text: str, severity: AlertSeverity | str | None, origin: str, options: dict[str, Any]
) -> AlertRule:
    tokens = text.split()
    written: dict[str, str] = {}
    while tokens and re.fullmatch(r"[a-z_]+=\S+", tokens[-1]):
        key, _, value = tokens.pop().partition("=")
        if key not in RULE_OPTIONS:
            msg = f"unknown option {key!r} in rule {text!r}; accepted: {', '.join(RULE_OPTIONS)}"
            raise ConfigurationError(msg)
        written[key] = value
    expression = " ".join(tokens)
    match = _EXPRESSION.match(expression)
    if match is None:
        msg = (
            f"cannot parse alert rule {text!r}: expected 'FIGURE OP NUMBER [for N UNIT]"
            f" [severity=S]', e.g. 'peak_rss_mb > 200' or 'errors > 0 for 3 tests'"
            f" (OP one of {' '.join(OPERATORS)})"
        )
        raise ConfigurationError(msg)
    figure = match["figure"]
    try:
        spec = figure_spec(figure)
    except ConfigurationError as exc:
        msg = f"in alert rule {text!r}: {exc}"
        raise ConfigurationError(msg) from None
    threshold = float(match["threshold"])
    for_count = for_unit = for_seconds = None
    if match["count"] is not None:
        unit = match["unit"]
        amount = float(match["count"])
        if unit in _TIME_UNITS:
            for_seconds = amount * _TIME_UNITS[unit]
            if not spec.series:
                msg = (
                    f"in alert rule {text!r}: 'for {match['count']}{unit}' needs a time series"
                    f" figure (cpu_percent, rss_mb, metric:<name>); per-test figures take"
                    f" 'for N tests'"
                )
                raise ConfigurationError(msg)
        elif unit in _COUNT_UNITS:
            for_unit = _COUNT_UNITS[unit]
            if not amount.is_integer() or amount < 1:
                msg = f"in alert rule {text!r}: 'for' needs a whole count >= 1, got {amount!r}"
                raise ConfigurationError(msg)
            for_count = int(amount)
            if for_unit == "samples" and not spec.series:
                msg = (
                    f"in alert rule {text!r}: 'for N samples' needs a time series figure"
                    f" (cpu_percent, rss_mb, metric:<name>); per-test figures take 'for N tests'"
                )
                raise ConfigurationError(msg)
        else:
            accepted = ", ".join([*_TIME_UNITS, "samples", "tests"])
            msg = f"in alert rule {text!r}: unknown 'for' unit {unit!r}; accepted: {accepted}"
            raise ConfigurationError(msg)
    merged: dict[str, Any] = {**written, **options}
    if severity is not None:
        merged["severity"] = severity
    unknown = sorted(set(merged) - set(RULE_OPTIONS))
    if unknown:
        msg = f"unknown rule option(s) {unknown!r}; accepted: {', '.join(RULE_OPTIONS)}"
        raise ConfigurationError(msg)
    cooldown = merged.get("cooldown_minutes")
    if cooldown is not None:
        try:
            cooldown = float(cooldown)
        except (TypeError, ValueError):
            cooldown = -1.0
        if not math.isfinite(cooldown) or cooldown < 0:
            msg = f"cooldown_minutes must be a number >= 0, got {merged['cooldown_minutes']!r}"
            raise ConfigurationError(msg)
    return AlertRule(
        figure=figure,
        operator=match["op"],
        threshold=threshold,
        severity=AlertSeverity.parse(merged.get("severity", AlertSeverity.HIGH)),
        name=str(merged.get("name") or ""),
        for_count=for_count,
        for_unit=for_unit,
        for_seconds=for_seconds,
        inhibits=_names(merged.get("inhibits", ()), "inhibits"),
        cooldown_minutes=cooldown,
        origin=origin,
    )


def parse_rules(lines: Iterable[str], *, origin: str = "ini") -> list[AlertRule]:
    """Parse one rule per non-empty line (``#`` starts a comment).

    Every bad line is reported at once, one per line of the error's message.
    """
    rules = []
    problems = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            rules.append(parse_rule(text, origin=origin))
        except ConfigurationError as exc:
            problems.append(f"line {number}: {exc}")
    if len(problems) == 1:
        raise ConfigurationError(problems[0])
    if problems:
        msg = f"{len(problems)} bad rules:\n  " + "\n  ".join(problems)
        raise ConfigurationError(msg)
    return rules


#: kari_budget keyword -> figure it bounds.
BUDGET_FIGURES = {
    "duration_ms": "duration_ms",
    "call_ms": "call_ms",
    "cpu_ms": "cpu_ms",
    "peak_rss_mb": "peak_rss_mb",
    "rss_growth_mb": "rss_growth_mb",
    "allocated_mb": "allocated_mb",
    "peak_memory_mb": "peak_memory_mb",
    "allocated_blocks": "allocated_blocks",
    "errors": "errors",
    "log_errors": "log.error",
    "log_warnings": "log.warning",
    "spans": "spans",
}


def budget_rules(
    budget: Mapping[str, Any], severity: AlertSeverity | str = AlertSeverity.HIGH
) -> list[AlertRule]:
    """One ``figure > limit`` rule per entry of a budget (``duration_ms=500, errors=0``)."""
    if not budget:
        msg = f"a budget needs at least one limit; accepted: {', '.join(BUDGET_FIGURES)}"
        raise ConfigurationError(msg)
    level = AlertSeverity.parse(severity)
    rules = []
    for key, limit in budget.items():
        figure = BUDGET_FIGURES.get(key)
        if figure is None:
            msg = f"unknown budget {key!r}; accepted: {', '.join(BUDGET_FIGURES)}"
            raise ConfigurationError(msg)
        number = _number(limit)
        if number is None or number < 0:
            msg = f"budget {key} must be a number >= 0, got {limit!r}"
            raise ConfigurationError(msg)
        rule = AlertRule(figure, ">", number, level, origin="kari_budget")
        rules.append(rule.with_options(name=f"kari_budget({key}={_fmt(number)})"))
    return rules


# Evaluation --------------------------------------------------------------------------------
class FigureView(Mapping[str, float]):
    """Read-only mapping view of a figure source for custom predicates (missing -> KeyError)."""

    def __init__(self, figures: Figures) -> None:
        self._figures = figures
        self.measured: dict[str, Measurement] = {}

    def __getitem__(self, name: str) -> float:
        measurement = self._figures.measure(name)
        self.measured[name] = measurement
        if measurement.value is None:
            raise KeyError(name)
        return measurement.value

    def __iter__(self) -> Any:
        return iter(FIGURES)

    def __len__(self) -> int:
        return len(FIGURES)


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one rule on one set of figures."""

    rule: AlertRule
    fired: bool
    value: float | None
    source: str
    missing: str | None = None
    detail: str = ""
    pending: bool = False
    inhibited_by: str | None = None

    @property
    def threshold(self) -> float | None:
        return None if self.rule.predicate is not None else self.rule.threshold

    @property
    def counts(self) -> bool:
        """Fired and not inhibited: this evaluation raises an alert that notifies."""
        return self.fired and self.inhibited_by is None

    def title(self) -> str:
        """One-line title of the alert this evaluation raises."""
        rule = self.rule
        if rule.origin == "kari_budget":
            return f"{rule.name} exceeded"
        return f"{rule.name} fired" if rule.name == rule.expression else f"{rule.name!r} fired"

    def message(self) -> str:
        """What was measured against what, pytest-assertion style."""
        rule = self.rule
        unit = f" {rule.unit}" if rule.unit in ("MiB", "%", "errors/s") else ""
        if self.missing is not None:
            return (
                f"{rule.figure or rule.name} was not measured: {self.missing}"
                f" (a rule on a missing figure fails rather than passing silently)"
            )
        if rule.predicate is not None:
            shown = "" if self.value is None else f" (value {_fmt(self.value)})"
            base = f"predicate {rule.name!r} is true{shown}"
            return base + (f"\n  where {self.detail}" if self.detail else "")
        value = _fmt(self.value)
        text = f"{rule.figure} = {value}{unit} {rule.operator} {_fmt(rule.threshold)}{unit}"
        if self.detail:
            text += f" {self.detail}"
        return f"{text}\n  where {rule.figure} = {value} is from {self.source}"

    def failure(self) -> str:
        """The verdict line of a test this evaluation fails."""
        rule = self.rule
        if rule.origin == "kari_budget":
            head, verb = rule.name, "exceeded"
        elif rule.origin in ("kari_alert", "kari_alert_rules"):
            head, verb = f"{rule.origin} {rule.name!r}", "fired"
        else:
            head, verb = f"alert rule {rule.name!r}", "fired"
        return f"{head} {verb} [{rule.severity.value}]: {self.message()}"


class RuleStates:
    """Consecutive-evaluation streaks of ``for N tests`` rules (thread-safe)."""

    def __init__(self) -> None:
        self._streaks: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def update(self, rule: AlertRule, key: str, holds: bool) -> int:
        """Count one more evaluation of *rule* for *key*; return the current streak."""
        with self._lock:
            ident = (id(rule), key)
            streak = self._streaks.get(ident, 0) + 1 if holds else 0
            self._streaks[ident] = streak
            if len(self._streaks) > 100_000:
                self._streaks.clear()
            return streak

    def reset(self) -> None:
        """Forget every streak."""
        with self._lock:
            self._streaks.clear()


def _longest_run(
    points: Sequence[tuple[float, float]],
    check: Callable[[float], bool],
    *,
    trailing: bool,
) -> tuple[int, float, float | None]:
    """(samples, seconds, last value) of the longest run of points satisfying *check*.

    With *trailing* only the run ending at the newest point counts (live monitoring).
    """
    best: tuple[int, float, float | None] = (0, 0.0, None)
    run_start: int | None = None
    for index, (ts, value) in enumerate(points):
        if check(value):
            if run_start is None:
                run_start = index
            length = index - run_start + 1
            seconds = ts - points[run_start][0]
            if (length, seconds) > best[:2]:
                best = (length, seconds, value)
        else:
            run_start = None
    if trailing:
        if run_start is None:
            return 0, 0.0, None
        return len(points) - run_start, points[-1][0] - points[run_start][0], points[-1][1]
    return best


def _extreme(points: Sequence[tuple[float, float]], op: str) -> float:
    values = [v for _, v in points]
    if op in (">", ">="):
        return max(values)
    if op in ("<", "<="):
        return min(values)
    return values[-1]


def evaluate_rule(
    rule: AlertRule,
    figures: Figures,
    states: RuleStates | None = None,
    *,
    key: str = "",
    trailing: bool = False,
) -> Evaluation:
    """Evaluate *rule* on *figures*.

    A series figure (samples, metric points) without ``for`` is judged by its most extreme
    point; with ``for N samples`` / ``for Ns`` by its longest run that satisfies the rule (the
    run ending now, with *trailing*). ``for N tests`` counts consecutive evaluations in
    *states* under *key*.
    """
    if rule.predicate is not None:
        return _evaluate_predicate(rule, figures, states, key)
    measurement = figures.measure(rule.figure)
    if measurement.missing is not None:
        return Evaluation(rule, True, None, measurement.source, missing=measurement.missing)
    check = OPERATORS[rule.operator]
    value = measurement.value
    detail = ""
    series = measurement.series
    if series is not None and (rule.for_unit == "samples" or rule.for_seconds is not None):
        count, seconds, last = _longest_run(
            series, lambda v: check(v, rule.threshold), trailing=trailing
        )
        if rule.for_seconds is not None:
            holds = count > 0 and seconds >= rule.for_seconds
            wanted = f"{_fmt(rule.for_seconds)} s"
        else:
            holds = count >= (rule.for_count or 1)
            wanted = f"{rule.for_count} samples"
        value = last if count else measurement.value
        detail = f"(held for {seconds:.1f} s over {count} samples; needs {wanted})"
        return Evaluation(
            rule, holds, value, measurement.source, detail=detail, pending=count > 0 and not holds
        )
    if series is not None:
        if not series:
            return Evaluation(rule, False, None, measurement.source, detail="(no points)")
        value = _extreme(series, rule.operator)
        detail = f"(most extreme of {len(series)} points)"
    if value is None:
        return Evaluation(rule, False, None, measurement.source, detail="(no observation)")
    holds = check(value, rule.threshold)
    if rule.for_unit == "tests" and rule.for_count:
        streak = (states or RuleStates()).update(rule, key, holds)
        fired = streak >= rule.for_count
        streak_text = f"(for {streak} consecutive evaluations; needs {rule.for_count})"
        detail = f"{detail} {streak_text}".strip()
        return Evaluation(
            rule, fired, value, measurement.source, detail=detail, pending=holds and not fired
        )
    return Evaluation(rule, holds, value, measurement.source, detail=detail)


def _evaluate_predicate(
    rule: AlertRule, figures: Figures, states: RuleStates | None, key: str
) -> Evaluation:
    view = FigureView(figures)
    assert rule.predicate is not None
    try:
        result = rule.predicate(view)
    except KeyError as exc:
        name = exc.args[0] if exc.args else "?"
        measured = view.measured.get(str(name))
        if measured is not None and measured.missing is not None:
            return Evaluation(rule, True, None, measured.source, missing=measured.missing)
        return Evaluation(rule, False, None, "custom predicate", detail=f"(no {name})")
    value = None
    if isinstance(result, tuple) and len(result) == 2:
        result, value = result
        value = _number(value)
    used = ", ".join(f"{n} = {_fmt(m.value)}" for n, m in view.measured.items())
    holds = bool(result)
    if rule.for_unit == "tests" and rule.for_count:
        holds = (states or RuleStates()).update(rule, key, holds) >= rule.for_count
    return Evaluation(rule, holds, value, "custom predicate", detail=used)


def evaluate_rules(
    rules: Iterable[AlertRule],
    figures: Figures,
    states: RuleStates | None = None,
    *,
    key: str = "",
    trailing: bool = False,
) -> list[Evaluation]:
    """Evaluate every rule, then mark alerts inhibited by another firing rule.

    Evaluations come back inhibitors first (in rule order otherwise), so an alert manager
    raising them in order sees the inhibiting alert before the one it silences.
    """
    evaluations = [
        evaluate_rule(rule, figures, states, key=key, trailing=trailing) for rule in rules
    ]
    firing = [e for e in evaluations if e.fired and e.rule.inhibits]
    result = []
    for evaluation in evaluations:
        if evaluation.fired:
            for source in firing:
                if source is evaluation:
                    continue
                if source.rule.inhibits_alert(evaluation.rule.name, evaluation.rule.figure or None):
                    evaluation = replace(evaluation, inhibited_by=source.rule.name)
                    break
        result.append(evaluation)
    result.sort(key=lambda e: 0 if e.fired and e.rule.inhibits and not e.inhibited_by else 1)
    return result
