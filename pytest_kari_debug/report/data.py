"""The report's model: a compact JSON payload for the page and the summary it shows without JS.

Error groups (with their status), alerts (with theirs) and metric aggregates are the shared
views of :mod:`pytest_kari_debug.views`, computed from the run's test records: the dashboard
and the CLI show the same figures for the same data.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, TypedDict

from .. import figures as figures_catalogue
from .. import views
from ..errors.grouping import OccurrenceGrouping, occurrences_of_test
from ..exceptions import KariDebugError
from ..history import RunHistory
from ..model import Kind, RecordView, component_parts, dropped_of, records_of
from ..sharedmethods import dataclass
from ..sources import MAX_RECORDS, RunSource
from ..storage import Store

if TYPE_CHECKING:
    from typing_extensions import Unpack

FORMAT = "pytest-kari-debug/report"
VERSION = 1

#: Outcomes in the order the summary lists them (others follow alphabetically).
OUTCOME_ORDER = ("failed", "error", "xpassed", "passed", "skipped", "xfailed")
FAILING_OUTCOMES = frozenset({"failed", "error"})
#: Keys of ``sections`` (filled by other features) that hold a regression comparison.
REGRESSION_KEYS = ("regressions", "comparison", "gates", "baseline")
#: Record keys that repeat what the test row already says, left out of the page.
_PER_TEST_KEYS = frozenset({"session_id", "extension_id"})
#: Keys left out of a record when they only repeat one of these keys' value.
_REPEATS = {
    "ts": ("start", "created_at"),
    "value": ("duration_ms", "current_value", "wall_ms"),
    "logger": ("name",),
    "level": ("severity",),
    "name": ("error_type", "alert_type"),
}
#: Epoch-seconds keys the page stores as milliseconds since the test started.
TIME_KEYS = frozenset({"ts", "start", "end", "created_at", "resolved_at"})
_MAX_DEPTH = 40


#: The payload's ``tests`` when the rows went to a sink: the writer puts them there.
TESTS_PLACEHOLDER = "\x00kari-report-tests\x00"


class ReportError(KariDebugError):
    """The HTML report could not be built or written."""


@dataclass(frozen=True)
class ReportLimits:
    """Caps that keep one page bounded whatever the run recorded."""

    records_per_kind: int = 2000
    call_tree_nodes: int = 4000
    static_failures: int = 200
    top: int = 10
    text_chars: int = 50_000
    #: Rows of the summary's alert and metric tables.
    alerts: int = 50
    metrics: int = 50

    def __post_init__(self) -> None:
        for name in (
            "records_per_kind", "call_tree_nodes", "static_failures", "top", "alerts", "metrics",
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                msg = f"report limit {name} must be a positive integer, got {value!r}"
                raise ReportError(msg)


class ReportOptions(TypedDict, total=False):
    """What a report is made of besides its run and tests (keywords of
    :func:`build_report_model`, ``render_report`` and ``write_report``)."""

    #: The features' sections of the run (errors, metrics, regressions...).
    sections: Mapping[str, Any] | None
    #: The plugin's internal problems, shown in the report's diagnostics.
    diagnostics: Iterable[str]
    limits: ReportLimits | None
    #: The page's title (default: the rootdir's name).
    title: str | None
    #: Each test's stored history (:func:`pytest_kari_debug.history.load_history`).
    history: RunHistory | None


@dataclass
class ReportModel:
    """Everything the template renders: the embedded payload and the static summary."""

    payload: dict[str, Any]
    title: str
    meta: list[tuple[str, str]]
    outcomes: list[tuple[str, int]]
    total: int
    duration_s: float | None
    tests_ms: float
    alerts_by_severity: list[tuple[str, int]]
    error_groups: list[dict[str, Any]]
    slowest: list[dict[str, Any]]
    peak_memory: list[dict[str, Any]]
    regressions: list[dict[str, Any]]
    regressions_key: str | None
    regressions_note: str
    regression_links: dict[str, int]
    failures: list[dict[str, Any]]
    failures_total: int
    diagnostics: list[str]
    dropped: list[tuple[str, int]]
    generated_at: str
    extensions: list[str] = field(default_factory=list)
    #: Every alert of the run once (newest first), with its status.
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: Aggregates of each recorded metric over the run, by name.
    metrics: list[dict[str, Any]] = field(default_factory=list)
    #: Flaky tests of the stored history (``index`` is the test's row, None if it did not run).
    flaky: list[dict[str, Any]] = field(default_factory=list)
    #: How many stored runs the history looked at (0: no store).
    history_runs: int = 0


# JSON hygiene ---------------------------------------------------------------------------
def _status_text(status: Any) -> str:
    """The run's status for the header: only a run that did not complete is labelled."""
    if status == "interrupted":
        return "interrupted: only the tests that finished before the interruption are here"
    if status == "crashed":
        return "crashed: the run did not finish; the tests that finished are here"
    return str(status or "")


def jsonable(value: Any, depth: int = 0, text_chars: int = 50_000) -> Any:
    """Return *value* as data ``JSON.parse`` accepts: no NaN, no infinities, no objects.

    Non-finite floats become ``None``; unknown objects their ``repr``; long strings are cut.
    """
    kind = type(value)
    if kind is str:
        if len(value) > text_chars:
            return value[:text_chars] + f"\n[... {len(value) - text_chars} more characters]"
        return value
    if value is None or kind is int or kind is bool:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if depth >= _MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1, text_chars) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1, text_chars) for v in value]
    if isinstance(value, (str, int, float)):  # subclasses: enums, numpy-like scalars
        return jsonable(str(value) if isinstance(value, str) else float(value), depth, text_chars)
    return jsonable(repr(value), depth + 1, text_chars)


def _slim_record(record: Any, text_chars: int, t0: float | None) -> Any:
    """A record as the page stores it: smaller, and restored by the page's script.

    Keys the test row already carries, empty values and keys that only repeat another key
    of the same record (``ts`` of a span is its ``start``) are left out; timestamps become
    milliseconds since the test started (*t0*), durations are rounded to the microsecond.
    """
    if not isinstance(record, Mapping):
        return jsonable(record, 1, text_chars)
    out: dict[str, Any] = {}
    get = record.get
    for k, v in record.items():
        if v is None or k in _PER_TEST_KEYS or ((v == "" or not v) and type(v) in _EMPTY):
            continue
        repeats = _REPEATS.get(k)
        if repeats is not None and any(get(other) == v for other in repeats):
            continue
        kind = type(v)
        if kind is float or kind is int:
            if k in TIME_KEYS and t0 is not None and v > 1e8 and math.isfinite(v):
                if k == "end":
                    # a span's end is its start plus its duration: kept only if they disagree
                    start, span_ms = get("start"), get("duration_ms")
                    if (
                        _is_epoch(start)
                        and isinstance(span_ms, (int, float))
                        and abs((v - start) * 1000.0 - span_ms) < 0.002
                    ):
                        continue
                out[k] = round((v - t0) * 1000.0, 3)
                continue
            if kind is float and k.endswith("_ms") and math.isfinite(v):
                out[k] = round(v, 3)
                continue
        if kind is str:
            if len(v) > text_chars:
                v = v[:text_chars] + f"\n[... {len(v) - text_chars} more characters]"
        elif kind is not int and kind is not float and kind is not bool:
            # nested values stay as they are: the page's JSON encoder sanitises them only if
            # they need it (NaN, objects), which is rare and would cost every record a walk
            v = v if kind in (dict, list) else jsonable(v, 1, text_chars)
        out[k if type(k) is str else str(k)] = v
    return out


_EMPTY = frozenset({str, dict, list, tuple})


def _is_epoch(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 1e8
    )


def _name_test(record: Any, nodeid: str) -> Any:
    """A record named after its test (the test's root span) stores the name as ``0``."""
    if nodeid and isinstance(record, dict) and record.get("name") == nodeid:
        record["name"] = 0
    return record


def _columns(samples: list[Any]) -> Any:
    """Sampler points as one list per key (``{"ts": [...], "rss_bytes": [...]}``)."""
    if not all(isinstance(s, dict) for s in samples):
        return samples
    keys: list[str] = []
    for sample in samples:
        keys.extend(k for k in sample if k not in keys)
    return {k: [s.get(k) for s in samples] for k in keys}


def _link_parents(records: list[Any]) -> list[Any]:
    """Point each span at its parent by position (``parent``) instead of a 16-hex ``parent_id``."""
    where = {
        r["span_id"]: i for i, r in enumerate(records) if isinstance(r, dict) and r.get("span_id")
    }
    if not where:
        return records
    for record in records:
        if isinstance(record, dict) and record.get("parent_id") in where:
            record["parent"] = where[record.pop("parent_id")]
    return records


def _factor(records: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Move the keys whose value is the same in every record into one ``common`` dict."""
    if len(records) < 2 or not all(isinstance(r, dict) for r in records):
        return records, {}
    first = records[0]
    common = {
        k: v
        for k, v in first.items()
        if k not in TIME_KEYS and all(k in r and r[k] == v for r in records[1:])
    }
    if not common:
        return records, {}
    return [{k: v for k, v in r.items() if k not in common} for r in records], common


def _prune_tree(root: Any, limit: int, text_chars: int) -> tuple[Any, int]:
    """Copy a profile call tree, keeping at most *limit* nodes, hottest first.

    Returns the copy and how many nodes were left out. A node that lost children gets
    ``pruned`` (their count) so the page can say so.
    """
    if not isinstance(root, Mapping):
        return None, 0
    kept = 0
    dropped = 0

    def total(node: Mapping[str, Any]) -> int:
        children = node.get("children") or []
        return 1 + sum(total(c) for c in children if isinstance(c, Mapping))

    def copy(node: Mapping[str, Any], depth: int) -> dict[str, Any]:
        nonlocal kept, dropped
        kept += 1
        out = {str(k): jsonable(v, 1, text_chars) for k, v in node.items() if k != "children"}
        children = [c for c in node.get("children") or [] if isinstance(c, Mapping)]
        children.sort(key=lambda c: -_num(c.get("time_s")))
        kids = []
        for child in children:
            if kept >= limit or depth >= _MAX_DEPTH:
                lost = total(child)
                dropped += lost
                out["pruned"] = int(out.get("pruned", 0) or 0) + lost
                continue
            kids.append(copy(child, depth + 1))
        if kids:
            out["children"] = kids
        return out

    return copy(root, 0), dropped


def _num(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return 0.0


def _slim_collected(
    record: RecordView,
    limits: ReportLimits,
    truncated: Counter[str],
    t0: float | None,
) -> dict[str, Any]:
    """Each component's data as the page keeps it (see :func:`_slim_component`)."""
    out: dict[str, Any] = {}
    parts = [(k.value, (d.records, d.dropped, d.details)) for k, d in record.collected.items()]
    for key, data in record.other_data.items():  # a newer plugin's components
        if isinstance(data, Mapping):
            parts.append((str(key), component_parts(data)))
            continue
        value = jsonable(data, 1, limits.text_chars)
        if value not in (None, {}, [], ""):
            out[str(key)] = value
    for kind, (records, dropped, details) in parts:
        slim = _slim_component(
            kind, records, dropped, details, limits, truncated, t0, record.nodeid
        )
        if slim:
            out[kind] = slim
    return out


def _slim_component(
    kind: str,
    records: Sequence[Mapping[str, Any]],
    dropped: int,
    details: Mapping[str, Any],
    limits: ReportLimits,
    truncated: Counter[str],
    t0: float | None,
    nodeid: str,
) -> dict[str, Any]:
    """One component's data for the page: its newest records (slim, parents linked, common
    keys factored out, as columns), drops, samples as columns, a pruned call tree."""
    slim: dict[str, Any] = {}
    if len(records) > limits.records_per_kind:
        cut = len(records) - limits.records_per_kind
        truncated[kind] += cut
        slim["omitted"] = cut
        records = records[-limits.records_per_kind :]
    if records:
        rows, common = _factor(
            _link_parents(
                [_name_test(_slim_record(r, limits.text_chars, t0), nodeid) for r in records]
            )
        )
        slim["records"] = _columns(rows)
        if common:
            slim["common"] = common
    if dropped:
        slim["dropped"] = dropped
    for key, value in details.items():
        if key == "samples" and isinstance(value, list):
            if value:
                slim["samples"] = _columns([_slim_record(r, limits.text_chars, t0) for r in value])
        elif key == "call_tree":
            tree, lost = _prune_tree(value, limits.call_tree_nodes, limits.text_chars)
            if tree is not None:
                slim["call_tree"] = tree
            if lost:
                truncated[f"{kind}.call_tree"] += lost
        elif value not in (None, {}, [], ""):
            slim[str(key)] = jsonable(value, 1, limits.text_chars)
    return slim


# Per-test figures ------------------------------------------------------------------------
_ERROR_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL"})
#: Error-level log records shown with a failing test.
ERROR_LOGS_SHOWN = 10


def _captured(test: Mapping[str, Any], text_chars: int) -> list[dict[str, str]]:
    """The output pytest captured for the test, per phase and stream."""
    found = test.get("captured")
    if not isinstance(found, list):
        return []
    return [
        {
            "phase": str(c.get("phase") or ""),
            "stream": str(c.get("stream") or "output"),
            "text": jsonable(str(c.get("text") or ""), 0, text_chars),
        }
        for c in found
        if isinstance(c, Mapping) and c.get("text")
    ]


def _error_logs(test: Mapping[str, Any], text_chars: int) -> list[dict[str, str]]:
    """The test's log records at ERROR and above (the first few)."""
    shown = []
    for record in records_of(test, Kind.LOGGING):
        logger = str(record.get("name") or record.get("logger") or "")
        if logger.startswith("pytest_kari_debug"):
            continue  # the plugin's own lines (an alert's log line) repeat the verdict
        if str(record.get("level") or "").upper() in _ERROR_LEVELS:
            shown.append(
                {
                    "level": str(record.get("level")).upper(),
                    "logger": logger,
                    "message": jsonable(str(record.get("message") or ""), 0, text_chars),
                }
            )
            if len(shown) >= ERROR_LOGS_SHOWN:
                break
    return shown


def _failure_facts(
    test: Mapping[str, Any], alerts: Sequence[Mapping[str, Any]], text_chars: int
) -> dict[str, Any]:
    """The message, location and source excerpt of a failure; a failed verdict's rules."""
    failure = test.get("failure")
    if not isinstance(failure, Mapping):
        text = str(test.get("longrepr") or "").strip()
        lines = [line for line in text.splitlines() if line.startswith("E ")]
        message = lines[0][1:].strip() if lines else (text.splitlines() or [""])[-1]
        return {"message": jsonable(message, 0, text_chars), "location": "", "excerpt": ""}
    facts: dict[str, Any] = {
        "message": jsonable(str(failure.get("message") or ""), 0, text_chars),
        "location": str(failure.get("location") or ""),
        "excerpt": jsonable(str(failure.get("excerpt") or ""), 0, text_chars),
        "phase": str(failure.get("phase") or ""),
    }
    if failure.get("verdict"):
        facts["verdicts"] = [
            {
                "rule": str(a.get("name") or a.get("alert_type") or a.get("rule") or ""),
                "metric": str(a.get("metric_name") or ""),
                "value": a.get("current_value"),
                "threshold": a.get("threshold_value"),
                "severity": str(a.get("severity") or ""),
            }
            for a in alerts
        ]
    return facts


_PHASE_NAMES = ("setup", "call", "teardown")


def _page_phases(phases: Any) -> Any:
    """The phase durations: ``[setup, call, teardown]`` (rounded to the µs) when those are all
    there are, else as given."""
    if isinstance(phases, Mapping) and set(phases) == set(_PHASE_NAMES):
        values = [phases[name] for name in _PHASE_NAMES]
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return [round(float(v), 3) for v in values]
    return jsonable(phases or {})


def _history_of(history: RunHistory | None, nodeid: str) -> dict[str, Any] | None:
    """A test's stored history as the page keeps it, compactly (the page decodes it).

    ``h``: the outcome letters and the durations in ms, space-separated (``"PPF 12 11 40"``,
    ``-`` for unknown); ``hb``: its badges; ``hr``: its run ids, only when they are not the
    newest of the page's ``historyRuns``.
    """
    if history is None:
        return None
    past = history.get(nodeid)
    if past is None or past.runs < 2:
        return None
    durations = " ".join(_short_ms(d) for d in past.durations)
    found: dict[str, Any] = {"h": f"{past.letters()} {durations}"}
    badges = past.badges()
    if badges:
        found["hb"] = badges
    if past.run_ids != history.run_ids[-past.runs :]:
        found["hr"] = list(past.run_ids)
    return found


def _short_ms(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return str(round(value)) if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def _page_group(
    group: Mapping[str, Any], states: views.ErrorStates, run: Mapping[str, Any]
) -> dict[str, Any]:
    """An error group as the page keeps it: short keys, the indexes of its tests."""
    details = states.details(group["extension_id"], group["fingerprint"])
    if "new" in details:
        new = bool(details["new"])  # the errors section says so
    else:
        new = details.get("first_seen_run") is not None and details["first_seen_run"] == run.get(
            "id"
        )
    page = {
        "key": group["fingerprint"],
        "type": group["error_type"],
        "message": group["message"] or "",
        "category": group["category"],
        "suggestion": group["suggestion"],
        "count": group["count"],
        "tests": group["test_indexes"],
        "status": group["status"],
        "new": new or None,
    }
    return {k: v for k, v in page.items() if v is not None}


def _ordered(counts: Counter[str], order: Sequence[str]) -> list[tuple[str, int]]:
    known = [(k, counts[k]) for k in order if counts.get(k)]
    rest = sorted((k, n) for k, n in counts.items() if k not in order and n)
    return known + rest


def _fmt_ts(ts: Any) -> str:
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _regressions(
    sections: Mapping[str, Any],
) -> tuple[str | None, list[dict[str, Any]], str]:
    """The regression-like section another feature filled: its label, rows and a count line.

    The gates feature's ``comparison`` (``{"baseline", "regressions", "changes": [...]}``)
    shows its changes other than ``ok`` and ``unmeasured``, worst first; another shape is shown
    as it is (its first list of rows).
    """
    for key in REGRESSION_KEYS:
        value = sections.get(key)
        if value in (None, {}, []):
            continue
        if isinstance(value, Mapping) and isinstance(value.get("changes"), list):
            changes = [c for c in value["changes"] if isinstance(c, Mapping)]
            verdicts = Counter(str(c.get("verdict") or "unknown") for c in changes)
            note = ", ".join(f"{n} {v}" for v, n in verdicts.most_common())
            flagged = [c for c in changes if c.get("verdict") not in ("ok", "unmeasured")]
            label = f"{key}: {value['baseline']}" if value.get("baseline") else key
            return label, [jsonable(c) for c in flagged[:200]], note
        rows: Any = value
        if isinstance(value, Mapping):
            rows = next(
                (
                    value[k]
                    for k in ("regressions", "rows", "tests", "results")
                    if isinstance(value.get(k), list)
                ),
                [value],
            )
        if isinstance(rows, list):
            return (
                key,
                [
                    jsonable(r) if isinstance(r, Mapping) else {"value": jsonable(r)}
                    for r in rows[:200]
                ],
                "",
            )
    return None, [], ""


def _self_monitoring(sections: Mapping[str, Any] | None) -> list[str]:
    """The plugin's alerts about itself (debug overhead above its limit...), as diagnostics."""
    alerts = ((sections or {}).get("alerts") or {}).get("manager_alerts") or ()
    return [
        f"self-monitoring alert [{a.get('severity')}] {a.get('title')}: {a.get('message')}"
        for a in alerts
        if isinstance(a, Mapping)
    ]


def _overhead_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The plugin's own time in the tests' windows (kari_overhead_ms), run total and mean."""
    values = [float(r["overhead"]) for r in rows if r.get("overhead") is not None]
    if not values:
        return ""
    total = sum(values)
    return (
        f"{total:.1f} ms in {len(values)} tests ({total / len(values):.2f} ms per test;"
        " kari_overhead_ms, not part of any test's figures)"
    )


#: The per-test figures of the report, read from the figures catalogue (MiB ones in bytes).
REPORT_FIGURES = ("duration_ms", "cpu_ms", "peak_rss_mb", "peak_memory_mb", "kari_overhead_ms")


def _section_states(sections: Mapping[str, Any], store: Store | None) -> views.ErrorStates | None:
    """Without a store, the group states the run's ``errors`` section kept at its end."""
    if store is not None:
        return None
    section = sections.get("errors")
    tracked = section.get("groups") if isinstance(section, Mapping) else None
    return views.ErrorStates.of_groups(tracked if isinstance(tracked, list) else ())


def _alerts_only(test: Mapping[str, Any], raised: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What :class:`~pytest_kari_debug.sources.RunSource` reads of a test for its alerts."""
    return {
        "nodeid": test.get("nodeid"),
        "extension_id": test.get("extension_id"),
        "collected_data": {Kind.ALERTING.value: {"records": list(raised)}},
    }


# The model -------------------------------------------------------------------------------
def build_report_model(
    run: Mapping[str, Any],
    tests: Iterable[Mapping[str, Any]],
    *,
    store: Store | None = None,
    row_sink: Callable[[dict[str, Any]], None] | None = None,
    **options: Unpack[ReportOptions],
) -> ReportModel:
    """Assemble the report of one run from its metadata, test records and sections.

    Error groups, alerts and metrics are read through a
    :class:`~pytest_kari_debug.sources.RunSource` of *tests*. A group's or alert's status comes
    from the *store*'s resolutions (a report rebuilt from the store shows later ones), else
    from the run's ``errors`` section (the store's state when the run ended) and the alert
    records. *history*
    (:func:`pytest_kari_debug.history.load_history`) adds each test's recent outcomes,
    its badges (new failure, fixed, flaky) and the flaky tests.


    *tests* is iterated once per view (a run's journal reads it from disk each time). With
    *row_sink*, each test's page row goes to it as soon as it is made and the payload's
    ``tests`` is :data:`TESTS_PLACEHOLDER`: the page's rows are never all in memory.
    """
    unknown = options.keys() - ReportOptions.__optional_keys__
    if unknown:
        msg = (
            f"unknown report option(s) {', '.join(sorted(unknown))}; accepted: store, row_sink,"
            f" {', '.join(sorted(ReportOptions.__optional_keys__))}"
        )
        raise TypeError(msg)
    limits = options.get("limits") or ReportLimits()
    sections = options.get("sections") or {}
    history = options.get("history")
    truncated: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    ext_index: dict[str, int] = {}
    summary_rows: list[dict[str, Any]] = []
    extension_names: dict[str, str] = {}
    failures: list[dict[str, Any]] = []
    failures_total = 0
    tests_ms = 0.0
    # The error groups and alerts are gathered in the same pass: *tests* may be a journal,
    # decoded from disk at each pass.
    grouping = OccurrenceGrouping()
    alerting: list[dict[str, Any]] = []

    for index, test in enumerate(tests):
        outcome = str(test.get("outcome") or "unknown")
        outcomes[outcome] += 1
        error_count = 0
        # The test's dict read as a TestRecord reads it, each part only when asked.
        record = RecordView(test)
        for occurrence in occurrences_of_test(record, test_key=index):
            grouping.add(occurrence)
            error_count += occurrence.count
        test_alerts = record.records(Kind.ALERTING)
        if test_alerts:  # only what RunSource reads of the test for its alerts
            alerting.append(_alerts_only(test, test_alerts))
        measured = figures_catalogue.values(
            REPORT_FIGURES, figures_catalogue.RecordFigures(record), base=True
        )
        duration = measured.get("duration_ms", 0.0)
        tests_ms += duration
        dropped.update(dropped_of(test))
        t0 = _num(test.get("started_at")) or None
        counts = {
            "logs": len(record.records(Kind.LOGGING)),
            "errors": error_count,
            "spans": len(record.records(Kind.TRACING)),
            "alerts": len(test_alerts),
        }
        figures = {
            "rss": measured.get("peak_rss_mb"),
            "cpu": measured.get("cpu_ms"),
            "alloc": measured.get("peak_memory_mb"),
            "overhead": measured.get("kari_overhead_ms"),
        }
        row: dict[str, Any] = {
            "nodeid": str(test.get("nodeid") or f"test #{index}"),
            "outcome": outcome,
            "ext": str(test.get("extension_id") or ""),
            "duration": round(duration, 3),
            "phases": _page_phases(record.phases),
            "t0": t0,
            **figures,
            "counts": {k: n for k, n in counts.items() if n},
            "data": _slim_collected(record, limits, truncated, t0),
        }
        row = {k: v for k, v in row.items() if v is not None}
        for key in ("rss", "alloc"):
            if isinstance(row.get(key), float) and row[key].is_integer():
                row[key] = int(row[key])
        # the page reads these from the test's resources when they are the same figure
        resources = (row["data"].get("metrics") or {}).get("resources") or {}
        for key, source in (("rss", "peak_rss_bytes"), ("cpu", "cpu_ms")):
            if key in row and resources.get(source) == row[key]:
                del row[key]
        summary_rows.append(
            {"nodeid": row["nodeid"], "outcome": outcome, "duration": duration, **figures}
        )
        name = test.get("extension_name")
        if name and name != row["ext"]:
            extension_names[row["ext"]] = str(name)
        if test.get("worker"):
            row["worker"] = str(test["worker"])
        if test.get("crashed"):
            row["crashed"] = True
        extra = test.get("extra")
        if isinstance(extra, Mapping) and extra:
            row["extra"] = jsonable(extra, 0, limits.text_chars)
        longrepr = test.get("longrepr")
        if longrepr:
            text = jsonable(str(longrepr), 0, limits.text_chars)
            if outcome in FAILING_OUTCOMES and len(failures) < limits.static_failures:
                # Shown once, in the static HTML; the page's script reads it from there.
                row["longreprRef"] = f"fail-{index}"
            else:
                row["longrepr"] = text
        captured = _captured(test, limits.text_chars)
        past = _history_of(history, row["nodeid"])
        if past:
            row.update(past)
        if outcome in FAILING_OUTCOMES:
            failures_total += 1
            if len(failures) < limits.static_failures:
                failures.append(
                    {
                        "index": index,
                        "nodeid": row["nodeid"],
                        "outcome": outcome,
                        "duration": duration,
                        "ext": row["ext"],
                        "longrepr": jsonable(str(longrepr or ""), 0, limits.text_chars),
                        **_failure_facts(test, test_alerts, limits.text_chars),
                        "captured": captured,
                        "error_logs": _error_logs(test, limits.text_chars),
                        "history": {"b": past.get("hb", [])} if past else None,
                    }
                )
        elif captured:
            row["captured"] = captured
        # The page names a test's extension by its index in "extensions" (first seen first).
        row["ext"] = ext_index.setdefault(row["ext"], len(ext_index))
        if row_sink is None:
            rows.append(row)
        else:
            row_sink(row)

    records = RunSource(tests, store=store, error_states=_section_states(sections, store))
    states = records.error_states
    page_groups = [
        _page_group(g, states, run) for g in views.error_group_views(grouping.ordered(), states)
    ]
    resolutions = records.alert_resolutions
    raised_in = RunSource(alerting, error_states=states, alert_resolutions=resolutions)
    alerts = [jsonable(a, 0, limits.text_chars) for a in raised_in.alerts(limit=MAX_RECORDS)]
    # The run's metrics section (pytest_kari_debug.summaries): the JSON's same statistics;
    # computed here the same way (views.metric_stats) only for sections without one.
    metrics_section = sections.get("metrics")
    by_name = metrics_section.get("metrics") if isinstance(metrics_section, Mapping) else None
    if isinstance(by_name, Mapping):
        metrics = [dict(m) for m in by_name.values() if isinstance(m, Mapping)]
    else:
        metrics = list(views.metric_aggregates(records.metric_rows()).values())
    figures_of = summary_rows
    count = len(summary_rows)
    slowest = sorted(range(count), key=lambda i: -figures_of[i]["duration"])[: limits.top]
    # Tracemalloc's peak (where measured) says more about one test than the process's RSS.
    with_rss = [i for i in range(count) if figures_of[i]["rss"] or figures_of[i]["alloc"]]
    with_rss.sort(key=lambda i: (-(figures_of[i]["alloc"] or 0.0), -(figures_of[i]["rss"] or 0.0)))
    regressions_key, regressions, regressions_note = _regressions(sections)
    index_of = {r["nodeid"]: i for i, r in enumerate(summary_rows)}
    regression_links = {
        str(r["nodeid"]): index_of[str(r["nodeid"])]
        for r in regressions
        if str(r.get("nodeid")) in index_of
    }
    diagnostics = [str(d) for d in options.get("diagnostics", ())] + _self_monitoring(sections)
    dropped_rows = [(k, n) for k, n in sorted(dropped.items()) if n]
    dropped_rows += [(f"{k} (left out of this page)", n) for k, n in sorted(truncated.items())]

    def test_ref(i: int) -> dict[str, Any]:
        r = figures_of[i]
        return {"index": i, "nodeid": r["nodeid"], "outcome": r["outcome"]}

    payload = {
        "format": FORMAT,
        "version": VERSION,
        "run": jsonable(dict(run)),
        "tests": rows if row_sink is None else TESTS_PLACEHOLDER,
        "errorGroups": page_groups,
        "sections": jsonable(dict(sections), 0, limits.text_chars),
        "diagnostics": diagnostics,
        "dropped": dict(dropped_rows),
        "extensions": list(ext_index),
        "extensionNames": extension_names,
        "historyRuns": list(history.run_ids) if history is not None else [],
        # units and meanings for the detail panes: one catalogue for every surface
        "figures": {
            spec.name: {"unit": spec.unit, "about": spec.description}
            for spec in figures_catalogue.catalogue()
        },
    }
    meta = [
        (label, value)
        for label, value in (
            ("Started", _fmt_ts(run.get("started_at"))),
            ("Finished", _fmt_ts(run.get("finished_at"))),
            ("Root", str(run.get("rootdir") or "")),
            ("Arguments", " ".join(str(a) for a in run.get("args") or [])),
            ("Git", " ".join(str(run.get(k)) for k in ("git_branch", "git_commit") if run.get(k))),
            ("Host", str(run.get("host") or "")),
            ("Python", str(run.get("python_version") or "")),
            ("pytest", str(run.get("pytest_version") or "")),
            ("pytest-kari-debug", str(run.get("plugin_version") or "")),
            ("Platform", str(run.get("platform") or "")),
            ("Workers", str(run.get("workers") or "") if run.get("workers") else ""),
            ("Exit status", "" if run.get("exit_status") is None else str(run["exit_status"])),
            ("Plugin overhead", _overhead_text(summary_rows)),
            ("Status", _status_text(run.get("status"))),
        )
        if value
    ]
    flaky = []
    if history is not None:
        for shaky in history.flaky():
            flaky.append(
                {
                    "index": index_of.get(shaky.nodeid),
                    "nodeid": shaky.nodeid,
                    "badge": shaky.badges()[-1],
                    "letters": shaky.letters(),
                    "outcome": shaky.outcomes[-1],
                }
            )
    root = str(run.get("rootdir") or "").rstrip("/").rsplit("/", 1)[-1]
    return ReportModel(
        payload=payload,
        title=options.get("title")
        or (f"kari-debug report: {root}" if root else "kari-debug report"),
        meta=meta,
        outcomes=_ordered(outcomes, OUTCOME_ORDER),
        total=count,
        duration_s=_num(run.get("duration_s")) if run.get("duration_s") is not None else None,
        tests_ms=tests_ms,
        alerts_by_severity=[(k, n) for k, n in views.severity_counts(alerts).items() if n],
        error_groups=[
            {**g, "tests_total": len(g["tests"]), "tests": [test_ref(i) for i in g["tests"][:5]]}
            for g in page_groups[: limits.top]
        ],
        slowest=[test_ref(i) | {"duration": figures_of[i]["duration"]} for i in slowest],
        peak_memory=[
            test_ref(i) | {"rss": figures_of[i]["rss"], "alloc": figures_of[i]["alloc"]}
            for i in with_rss[: limits.top]
        ],
        regressions=regressions,
        regressions_key=regressions_key,
        regressions_note=regressions_note,
        regression_links=regression_links,
        failures=failures,
        failures_total=failures_total,
        diagnostics=diagnostics,
        dropped=dropped_rows,
        generated_at=_fmt_ts(time.time()),
        extensions=sorted(ext_index),
        alerts=[a | {"index": index_of.get(str(a.get("test")))} for a in alerts[: limits.alerts]],
        metrics=metrics[: limits.metrics],
        flaky=flaky[: limits.alerts],
        history_runs=len(history.run_ids) if history is not None else 0,
    )
