"""Performance regression gates: per-test figures, baselines, and noise-aware comparison.

The method (also in the README):

* **Timing figures** (``call_ms``, ``cpu_ms``) are noisy. Each side is summarised by the
  *minimum* over its samples (repeated runs of the call phase; the minimum is the estimate
  least disturbed by other load). A timing regression needs all of: the relative change of
  the minimum above the gate's threshold; an absolute change above ``min_change_ms``
  (default 0.25 ms, below which timer and scheduler noise dominate); and, when the baseline holds
  several samples, the new minimum above the baseline's *median* (a new best run no slower
  than a typical baseline run is not evidence). A candidate found on fewer than
  ``confirm_runs`` samples is not a verdict: the plugin re-runs the call phase to collect
  that many and decides on all of them. A baseline run takes ``confirm_runs`` samples too.
* **Deterministic figures** (``allocated_bytes``, ``allocated_blocks``, ``spans``, ``logs``,
  ``errors``) are compared exactly against the threshold, with no repeats.
* ``peak_rss_bytes`` is compared once, against its threshold (usually absolute, ``+50MB``).

A test missing from the baseline is ``new``, never a failure. :func:`compare_runs` (the
``kari-debug compare`` method, outside pytest) also judges each gate on the total over the tests
compared, and lists apart the tests found on one side only or not comparable (not passed).
Several runs merge into one baseline (:func:`merge_baselines`) whose per-test samples are the
per-run values, so the median rule sees the spread between runs.
"""

from __future__ import annotations

import json
import math
import platform
import re
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .exceptions import ConfigurationError, KariDebugError
from .figures import Figures, values
from .optionspec import CONFIRM_RUNS, MIN_CHANGE_MS
from .sharedmethods import dataclass

BASELINE_FORMAT = "pytest-kari-debug/baseline"
BASELINE_VERSION = 1
#: Outcomes whose figures are comparable (a failed test stops early; a skipped one never ran).
COMPARABLE_OUTCOMES = frozenset({"passed", "xpassed"})
#: Node id of the change judged on the sum over every compared test.
TOTAL = "(total)"

#: Gate names users write -> the figure they compare.
METRIC_ALIASES = {
    "duration": "call_ms",
    "call": "call_ms",
    "call_ms": "call_ms",
    "cpu": "cpu_ms",
    "cpu_ms": "cpu_ms",
    "allocated": "allocated_bytes",
    "allocated_bytes": "allocated_bytes",
    "blocks": "allocated_blocks",
    "allocated_blocks": "allocated_blocks",
    "peak_rss": "peak_rss_bytes",
    "peak_rss_bytes": "peak_rss_bytes",
    "memory": "peak_rss_bytes",
    "rss": "peak_rss_bytes",
    "spans": "spans",
    "logs": "logs",
    "errors": "errors",
}
TIMING = frozenset({"call_ms", "cpu_ms"})
DETERMINISTIC = frozenset({"allocated_bytes", "allocated_blocks", "spans", "logs", "errors"})
UNITS = {
    "call_ms": "ms",
    "cpu_ms": "ms",
    "allocated_bytes": "B",
    "allocated_blocks": "",
    "peak_rss_bytes": "B",
    "spans": "",
    "logs": "",
    "errors": "",
}
_SCALE = {
    "": 1.0,
    "ms": 1.0,
    "s": 1000.0,
    "us": 0.001,
    "b": 1.0,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "kib": 1024.0,
    "mib": 1024.0**2,
    "gib": 1024.0**3,
}
#: Figure names of alert rules that have no gate, and what to write instead.
_NO_GATE = {
    "log.": "gate 'logs' (every log record) or fail on it with an alert rule like 'log.error > 0'",
    "duration_ms": "gate 'duration' (the call phase) or an alert rule like 'duration_ms > 500'",
    "allocated_mb": "gate 'allocated' with a unit, e.g. allocated:+1MB",
    "peak_rss_mb": "gate 'peak_rss' with a unit, e.g. peak_rss:+50MB",
}
_GATE = re.compile(
    r"^\s*(?P<metric>[a-z_.]+)\s*:\s*\+?(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>%|[a-zA-Z]*)\s*$"
)


def _median(values: Iterable[float]) -> float:
    """The median of *values* (statistics is imported by the runs that compare)."""
    import statistics

    return float(statistics.median(values))


class BaselineError(KariDebugError):
    """A baseline is missing, unreadable or of an incompatible format."""


@dataclass(frozen=True)
class Gate:
    """One gate: fail when *metric* grows by more than *threshold* (percent or absolute)."""

    metric: str
    threshold: float
    relative: bool
    text: str

    def exceeded(self, base: float, new: float) -> bool:
        """True when *new* is over the gate compared with *base*."""
        if self.relative:
            if base == 0:
                return new > 0
            return (new - base) / abs(base) * 100.0 > self.threshold
        return new - base > self.threshold


def parse_gates(spec: str, *, source: str = "--kari-fail-regression") -> list[Gate]:
    """Parse ``"duration:+25%,allocated:+10%,peak_rss:+50MB"`` into gates."""
    gates = []
    for part in (p for p in str(spec).split(",") if p.strip()):
        match = _GATE.match(part)
        if match is None:
            msg = (
                f"{source}: cannot read gate {part.strip()!r}; write metric:+N% or metric:+N<unit>"
                f" (e.g. duration:+25%, peak_rss:+50MB)"
            )
            raise ConfigurationError(msg)
        name = match["metric"]
        metric = METRIC_ALIASES.get(name)
        if metric is None:
            msg = (
                f"{source}: unknown metric {name!r}; accepted: {', '.join(sorted(METRIC_ALIASES))}"
            )
            hint = next((h for key, h in _NO_GATE.items() if name.startswith(key)), None)
            if hint:
                msg += f" ({name} has no gate: use {hint})"
            raise ConfigurationError(msg)
        number, unit = float(match["number"]), match["unit"]
        if unit == "%":
            gates.append(Gate(metric, number, True, part.strip()))
            continue
        kind, lowered = UNITS[metric], unit.lower()
        fits = (
            unit == ""
            or (kind == "ms" and lowered in ("ms", "s", "us"))
            or (kind == "B" and lowered in ("b", "kb", "mb", "gb", "kib", "mib", "gib"))
        )
        if not fits:
            msg = f"{source}: unit {unit!r} does not fit metric {name!r} in {part.strip()!r}"
            raise ConfigurationError(msg)
        scale = _SCALE[lowered]
        gates.append(Gate(metric, number * scale, False, part.strip()))
    if not gates:
        msg = f"{source}: no gate in {spec!r}"
        raise ConfigurationError(msg)
    return gates


# Figures of one test ------------------------------------------------------------------------
#: A gate's figure -> the catalogue's figure it is (read in base units: bytes, not MiB).
GATE_FIGURES = {
    "call_ms": "call_ms",
    "cpu_ms": "cpu_ms",
    "peak_rss_bytes": "peak_rss_mb",
    "allocated_bytes": "allocated_mb",
    "allocated_blocks": "allocated_blocks",
    "spans": "spans",
    "logs": "logs",
    "errors": "errors",
}


def live_figures(source: Figures) -> dict[str, float]:
    """The gate figures a running test has after its first call (its timings aside)."""
    measured = values([n for k, n in GATE_FIGURES.items() if k not in TIMING], source, base=True)
    return {key: measured[name] for key, name in GATE_FIGURES.items() if name in measured}


def figures_of(record: Mapping[str, Any]) -> dict[str, float]:
    """The comparable figures of one test record (those that were measured).

    Figures the plugin measured at the test's first call (``extra.gates.figures``) win over
    those derived from the whole session, which repeats and teardown also fill.
    """
    gates = (record.get("extra") or {}).get("gates") or {}
    if gates.get("figures"):
        return {key: float(value) for key, value in gates["figures"].items()}
    measured = values(list(GATE_FIGURES.values()), record, base=True)
    figures = {key: measured[name] for key, name in GATE_FIGURES.items() if name in measured}
    samples = gates.get("samples") or {}
    for key in ("call_ms", "cpu_ms"):
        if samples.get(key):
            figures[key] = min(samples[key])
    return figures


def samples_of(record: Mapping[str, Any]) -> dict[str, list[float]]:
    """The repeated timing samples of one test record."""
    samples = (record.get("extra") or {}).get("gates", {}).get("samples", {})
    return {key: [float(v) for v in values] for key, values in samples.items() if values}


# Baselines ---------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """Where a baseline was measured (timings compare best on the same kind of machine)."""
    try:
        import psutil

        cpus, memory = psutil.cpu_count(), psutil.virtual_memory().total
    except Exception:  # pragma: no cover - psutil is a dependency; stay useful without it
        cpus, memory = None, None
    return {
        "host": socket.gethostname(),
        "platform": sys.platform,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": cpus,
        "memory_bytes": memory,
        "python": platform.python_version(),
    }


def build_baseline(
    name: str, tests: Iterable[Mapping[str, Any]], run: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A baseline document from the test records of a run (passed and xpassed tests only).

    The other tests are kept under ``excluded`` (node id -> outcome), so a comparison can
    tell a test that did not pass in the baseline from one that is new.
    """
    entries: dict[str, Any] = {}
    excluded: dict[str, str] = {}
    references: list[float] = []
    for record in tests:
        references.extend((record.get("extra") or {}).get("gates", {}).get("reference_ms") or [])
        if record.get("outcome") not in COMPARABLE_OUTCOMES:
            excluded[record["nodeid"]] = str(record.get("outcome"))
            continue
        entries[record["nodeid"]] = {
            "figures": figures_of(record),
            "samples": samples_of(record),
        }
        if record.get("extension_id") is not None:
            entries[record["nodeid"]]["extension_id"] = record["extension_id"]
    return {
        "format": BASELINE_FORMAT,
        "version": BASELINE_VERSION,
        "name": name,
        "created_at": time.time(),
        "run": {k: (run or {}).get(k) for k in ("uuid", "id", "git_commit", "git_branch")},
        "machine": machine_info(),
        "reference_ms": _median(references) if references else None,
        "tests": entries,
        "excluded": {k: v for k, v in excluded.items() if k not in entries},
    }


def merge_baselines(name: str, documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One baseline from the baselines of several runs (e.g. every run of an export).

    A test's timing samples become its per-run values and its timing figure their minimum,
    so the median rule sees how much the test varies between runs; its other figures are the
    median over the runs. A single document is returned as it is (its samples are repeats).
    """
    if not documents:
        msg = f"baseline {name!r}: no run to build it from"
        raise BaselineError(msg)
    if len(documents) == 1:
        return {**documents[0], "name": name}
    per_test: dict[str, list[Mapping[str, Any]]] = {}
    excluded: dict[str, str] = {}
    for document in documents:
        for nodeid, entry in document.get("tests", {}).items():
            per_test.setdefault(nodeid, []).append(entry)
        excluded.update(document.get("excluded") or {})
    entries: dict[str, Any] = {}
    for nodeid, found in per_test.items():
        values: dict[str, list[float]] = {}
        for entry in found:
            for metric, value in entry.get("figures", {}).items():
                values.setdefault(metric, []).append(float(value))
        figures = {
            metric: min(runs) if metric in TIMING else _median(runs)
            for metric, runs in values.items()
        }
        samples = {metric: runs for metric, runs in values.items() if metric in TIMING}
        entries[nodeid] = {"figures": figures, "samples": samples}
        extension = next((e["extension_id"] for e in found if e.get("extension_id")), None)
        if extension is not None:
            entries[nodeid]["extension_id"] = extension
    references = [float(d["reference_ms"]) for d in documents if d.get("reference_ms")]
    last_run = documents[-1].get("run") or {}
    return {
        "format": BASELINE_FORMAT,
        "version": BASELINE_VERSION,
        "name": name,
        "created_at": time.time(),
        "run": {**dict(last_run), "merged": [dict(d.get("run") or {}) for d in documents]},
        "machine": documents[-1].get("machine") or machine_info(),
        "reference_ms": _median(references) if references else None,
        "tests": entries,
        "excluded": {k: v for k, v in excluded.items() if k not in entries},
    }


def check_baseline(document: Any, *, source: str) -> dict[str, Any]:
    """Return *document* if it is a baseline this version reads; else raise BaselineError."""
    if not isinstance(document, dict) or document.get("format") != BASELINE_FORMAT:
        msg = f"{source} is not a pytest-kari-debug baseline (no format {BASELINE_FORMAT!r})"
        raise BaselineError(msg)
    version = document.get("version")
    if version != BASELINE_VERSION:
        msg = f"{source} has baseline version {version!r}; this version reads {BASELINE_VERSION}"
        raise BaselineError(msg)
    tests = document.get("tests")
    if not isinstance(tests, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("figures"), dict) for v in tests.values()
    ):
        msg = f"{source}: 'tests' must map each nodeid to its figures"
        raise BaselineError(msg)
    problems = [
        f"test {nodeid!r} {part} {name!r} is {value!r}"
        for nodeid, entry in tests.items()
        for part, name, value in _entry_values(entry)
        if not _is_figure(value)
    ]
    reference = document.get("reference_ms")
    if reference is not None and not _is_figure(reference):
        problems.insert(0, f"reference_ms is {reference!r}")
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        msg = f"{source}: figures must be finite numbers (or null): {shown}"
        raise BaselineError(msg)
    return document


def _entry_values(entry: Mapping[str, Any]) -> Iterable[tuple[str, str, Any]]:
    """``(part, name, value)`` of every figure and sample of one baseline entry."""
    for name, value in entry["figures"].items():
        yield "figure", name, value
    samples = entry.get("samples") or {}
    if not isinstance(samples, dict):
        yield "samples", "", samples
        return
    for name, runs in samples.items():
        if not isinstance(runs, list):
            yield "samples of", name, runs
            continue
        for value in runs:
            yield "sample of", name, value


def _is_figure(value: Any) -> bool:
    """Whether *value* is what a baseline may hold for a figure: a finite number or None."""
    if value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_baseline_file(path: str | Path) -> dict[str, Any]:
    """Read and check a baseline JSON file."""
    source = f"baseline file {str(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read {source}: {exc.strerror or exc}"
        raise BaselineError(msg) from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{source} is not valid JSON: {exc}"
        raise BaselineError(msg) from exc
    return check_baseline(document, source=source)


def write_baseline_file(path: str | Path, document: Mapping[str, Any]) -> Path:
    """Write a baseline JSON file atomically."""
    return write_atomic(path, json.dumps(document, indent=1, sort_keys=True))


# Comparison --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    """Tuning of the noise-aware comparison."""

    min_change_ms: float = MIN_CHANGE_MS.default
    confirm_runs: int = CONFIRM_RUNS.default
    faster_percent: float = 50.0
    #: Timing samples the baseline needs before a timing change is judged (1: any).
    base_runs: int = 1


@dataclass
class Change:
    """One figure of one test compared with its baseline."""

    nodeid: str
    metric: str
    baseline: float | None
    current: float | None
    verdict: str  # regression | faster | ok | new | unmeasured | unconfirmed
    gate: str = ""
    note: str = ""

    @property
    def percent(self) -> float | None:
        if self.baseline in (None, 0) or self.current is None:
            return None
        return (self.current - self.baseline) / abs(self.baseline) * 100.0

    def message(self) -> str:
        """One line for a failure message or the terminal summary."""
        unit = UNITS.get(self.metric, "")
        change = f"{self.percent:+.1f}%" if self.percent is not None else "n/a"
        return (
            f"regression gate {self.gate!r} on {self.nodeid}: {self.metric}"
            f" {show_value(self.baseline, unit)} -> {show_value(self.current, unit)} ({change})"
            + (f"; {self.note}" if self.note else "")
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "nodeid": self.nodeid,
            "metric": self.metric,
            "baseline": self.baseline,
            "current": self.current,
            "percent": self.percent,
            "verdict": self.verdict,
            "gate": self.gate,
            "note": self.note,
        }


SEVERITY = {"regression": 0, "unconfirmed": 1, "faster": 2, "new": 3, "ok": 4, "unmeasured": 5}


def show_value(value: float | None, unit: str) -> str:
    """*value* in *unit* for a message or a table: bytes as B or MB, ms with 3 decimals."""
    if value is None:
        return "-"
    if unit == "B":
        return f"{value / 1e6:.2f}MB" if abs(value) >= 1e5 else f"{value:.0f}B"
    if unit == "ms":
        return f"{value:.3f}ms"
    return f"{value:g}"


def compare_test(
    nodeid: str,
    current: Mapping[str, float],
    samples: Mapping[str, Sequence[float]],
    baseline_entry: Mapping[str, Any] | None,
    gates: Sequence[Gate],
    options: Options = Options(),
    *,
    slowdown: float = 1.0,
) -> list[Change]:
    """Compare one test's figures with its baseline entry under *gates*.

    *slowdown* is how much slower the machine runs a reference loop now than when the
    baseline was taken; above 1, timing figures are scaled back by it before judging.
    """
    if baseline_entry is None:
        return [Change(nodeid, gate.metric, None, current[gate.metric], "new", gate.text)
                for gate in gates if gate.metric in current]  # fmt: skip
    base_figures = baseline_entry.get("figures", {})
    base_samples = baseline_entry.get("samples", {})
    changes = []
    for gate in gates:
        metric = gate.metric
        base, new = base_figures.get(metric), current.get(metric)
        if base is None or new is None or (metric in TIMING and base <= 0):
            changes.append(Change(nodeid, metric, base, new, "unmeasured", gate.text))
            continue
        verdict, note = "ok", ""
        if metric in TIMING and slowdown > 1.0:
            new = new / slowdown
            new_samples = [value / slowdown for value in samples.get(metric) or []]
            samples = {**samples, metric: new_samples}
            note = f"scaled by machine slowdown x{slowdown:.2f}"
        if gate.exceeded(base, new):
            verdict = "regression"
            if metric in TIMING:
                verdict, why = _timing_verdict(
                    base, new, base_samples.get(metric) or [], samples.get(metric) or [], options
                )
                note = f"{why}; {note}" if note else why
        elif metric in TIMING and base > 0 and (base - new) / base * 100 > options.faster_percent:
            verdict, note = "faster", "much faster than the baseline: is the baseline stale?"
        changes.append(Change(nodeid, metric, base, new, verdict, gate.text, note))
    return changes


def _timing_verdict(
    base: float,
    new: float,
    base_samples: Sequence[float],
    new_samples: Sequence[float],
    options: Options,
) -> tuple[str, str]:
    if new - base <= options.min_change_ms:
        return "ok", f"change below the {options.min_change_ms:g} ms noise floor"
    if len(base_samples) >= 3 and new <= _median(base_samples):
        return "ok", "within the baseline's own spread"
    if (len(base_samples) or 1) < options.base_runs:  # no samples: the figure is one
        return "unconfirmed", (
            f"not enough samples: the baseline has {len(base_samples) or 1}, a timing verdict"
            f" needs {options.base_runs} (pytest --kari-repeat={options.confirm_runs})"
        )
    if len(new_samples) < options.confirm_runs:
        if options.base_runs > 1:
            return "unconfirmed", (
                f"not enough samples: head has {len(new_samples)}, a timing verdict needs"
                f" {options.confirm_runs} (pytest --kari-repeat={options.confirm_runs})"
            )
        return "unconfirmed", f"needs {options.confirm_runs} samples, has {len(new_samples)}"
    return "regression", f"min of {len(new_samples)} runs"


def needs_confirmation(changes: Iterable[Change]) -> bool:
    """True when a timing candidate waits for more samples."""
    return any(change.verdict == "unconfirmed" for change in changes)


def finite(value: float) -> bool:
    """True for a real, finite number."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def slowdown_of(references: Iterable[float], base_reference: float | None) -> float:
    """How much slower the reference loop runs now than in the baseline (1.0: unknown)."""
    found = [float(value) for value in references if finite(value) and value > 0]
    if not found or not base_reference:
        return 1.0
    return _median(found) / float(base_reference)


@dataclass
class Comparison:
    """Every change of a run, for the terminal table and the exports.

    ``totals`` holds one change per gate judged on the sum over the compared tests (node id
    ``"(total)"``); the lists name the tests found on one side only and those not comparable
    (not passed on a side).
    """

    baseline_name: str
    changes: list[Change] = field(default_factory=list)
    totals: list[Change] = field(default_factory=list)
    compared_tests: int = 0
    only_in_base: list[str] = field(default_factory=list)
    only_in_head: list[str] = field(default_factory=list)
    not_comparable: list[str] = field(default_factory=list)
    slowdown: float = 1.0

    def regressions(self) -> list[Change]:
        """The changes that fail their gate (per test, then totals)."""
        return [c for c in (*self.changes, *self.totals) if c.verdict == "regression"]

    def sorted(self) -> list[Change]:
        """Regressions first, then the biggest relative changes."""
        return sorted(
            self.changes, key=lambda c: (SEVERITY.get(c.verdict, 9), -abs(c.percent or 0.0))
        )

    def unmeasured(self) -> list[str]:
        """Metrics of a gate that some compared test lacks on one side."""
        return sorted({c.metric for c in self.changes if c.verdict == "unmeasured"})

    def left_out(self) -> list[tuple[str, list[str]]]:
        """The tests not compared, by why (``only in head``, ``only in the baseline``, ``not
        compared (not passed on a side)``): each reason that has tests, with their node ids."""
        reasons = (
            ("only in head", self.only_in_head),
            ("only in the baseline", self.only_in_base),
            ("not compared (not passed on a side)", self.not_comparable),
        )
        return [(reason, names) for reason, names in reasons if names]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with stable keys."""
        return {
            "baseline": self.baseline_name,
            "regressions": len(self.regressions()),
            "changes": [c.to_dict() for c in self.sorted()],
            "totals": [c.to_dict() for c in self.totals],
            "compared_tests": self.compared_tests,
            "only_in_base": self.only_in_base,
            "only_in_head": self.only_in_head,
            "not_comparable": self.not_comparable,
            "unmeasured": self.unmeasured(),
            "slowdown": self.slowdown,
        }


def compare_runs(
    base_tests: Mapping[str, Mapping[str, Any]],
    head_records: Iterable[Mapping[str, Any]],
    gates: Sequence[Gate],
    *,
    baseline_name: str = "baseline",
    options: Options = Options(),
    excluded: Iterable[str] = (),
    slowdown: float = 1.0,
) -> Comparison:
    """Compare recorded tests (*head_records*) with a baseline's ``tests`` mapping.

    Only passed (and xpassed) head tests are compared; the others, and the baseline's
    *excluded* node ids (tests that did not pass there), are listed as not comparable. A
    record's single measured call time counts as one sample. Outside pytest no re-runs are
    possible: with ``confirm_runs`` above the samples at hand a timing candidate stays
    ``unconfirmed`` and is not counted as a regression (pass ``Options(confirm_runs=1)`` to
    decide on what was recorded). Each gate is also judged on the total over the tests
    compared (see :func:`total_change`).
    """
    comparison = Comparison(baseline_name, slowdown=slowdown)
    not_comparable = set(excluded)
    seen: set[str] = set()
    compared: list[tuple[Mapping[str, Any], dict[str, float], dict[str, list[float]]]] = []
    for record in head_records:
        nodeid = record["nodeid"]
        if record.get("outcome") not in COMPARABLE_OUTCOMES:
            not_comparable.add(nodeid)
            continue
        seen.add(nodeid)
        if nodeid in not_comparable:
            continue  # did not pass in the baseline
        figures, samples = figures_of(record), samples_of(record)
        for metric in TIMING:
            if metric in figures and not samples.get(metric):
                samples[metric] = [figures[metric]]
        entry = base_tests.get(nodeid)
        comparison.changes.extend(
            compare_test(nodeid, figures, samples, entry, gates, options, slowdown=slowdown)
        )
        if entry is None:
            comparison.only_in_head.append(nodeid)
        else:
            compared.append((entry, figures, samples))
    comparison.only_in_head = sorted(set(comparison.only_in_head) - not_comparable)
    comparison.only_in_base = sorted(set(base_tests) - seen - not_comparable)
    comparison.not_comparable = sorted(not_comparable)
    comparison.compared_tests = len(compared)
    if len(compared) > 1:
        for gate in gates:
            total = total_change(gate, compared, options, slowdown=slowdown)
            if total is not None:
                comparison.totals.append(total)
    return comparison


def total_change(
    gate: Gate,
    compared: Sequence[
        tuple[Mapping[str, Any], Mapping[str, float], Mapping[str, Sequence[float]]]
    ],
    options: Options = Options(),
    *,
    slowdown: float = 1.0,
) -> Change | None:
    """Judge *gate* on the sum of its metric over the (baseline entry, figures, samples) given.

    A small slowdown spread over many tests shows in the total while every test stays under
    its gate. The per-test rules carry over: deterministic sums compare exactly; a timing
    total must clear the noise floor times the number of tests, and exceed the sum of the
    tests' typical baseline values (each one's median when it has three samples or more).
    ``peak_rss_bytes`` is a process-wide high-water mark and has no total (``None``).
    """
    metric = gate.metric
    if metric == "peak_rss_bytes":
        return None
    base_sum = new_sum = typical = 0.0
    samples_at_hand: list[int] = []
    base_at_hand: list[int] = []
    count = 0
    for entry, figures, samples in compared:
        base = entry.get("figures", {}).get(metric)
        new = figures.get(metric)
        if base is None or new is None or (metric in TIMING and base <= 0):
            continue
        count += 1
        base_samples = entry.get("samples", {}).get(metric) or []
        scale = slowdown if metric in TIMING and slowdown > 1.0 else 1.0
        base_sum += float(base)
        new_sum += float(new) / scale
        typical += _median(base_samples) if len(base_samples) >= 3 else float(base)
        samples_at_hand.append(len(samples.get(metric) or []))
        base_at_hand.append(len(base_samples) or 1)
    if count < 2:
        return None
    note = f"sum over {count} tests"
    if metric in TIMING and slowdown > 1.0:
        note += f"; scaled by machine slowdown x{slowdown:.2f}"
    verdict = "ok"
    if gate.exceeded(base_sum, new_sum):
        verdict = "regression"
        if metric in TIMING:
            floor = options.min_change_ms * count
            if new_sum - base_sum <= floor:
                verdict, why = "ok", f"change below the {floor:g} ms noise floor of {count} tests"
            elif new_sum <= typical:
                verdict, why = "ok", "within the baseline's own spread"
            elif min(base_at_hand) < options.base_runs:
                verdict, why = "unconfirmed", "not enough samples in the baseline"
            elif min(samples_at_hand) < options.confirm_runs:
                verdict, why = "unconfirmed", f"needs {options.confirm_runs} samples per test"
            else:
                why = "sum of each test's minimum"
            note = f"{note}; {why}"
    elif metric in TIMING and (base_sum - new_sum) / base_sum * 100 > options.faster_percent:
        verdict, note = "faster", f"{note}; much faster than the baseline: is the baseline stale?"
    return Change(TOTAL, metric, base_sum, new_sum, verdict, gate.text, note)
