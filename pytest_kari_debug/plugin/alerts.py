"""Alerts as test assertions: ``kari_alert_rules``, ``kari_alert`` / ``kari_budget`` markers.

Rules are parsed at start-up (ini) and at collection (markers): a bad one is a usage error.
After a passing call phase every rule of the test is evaluated on its live debug session;
an alert at or above ``--kari-fail-on`` (rule, budget, or raised by the test through
``kari_alerts``) fails the test with a message naming the rule, the measured value, the
threshold and where the value came from. Fired alerts go to the store (as records), the JSON
export (a section), ``alerts.csv`` with ``--kari-csv`` and the terminal summary.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

from ..alerting import ACTIVE, Alert, AlertManager
from ..exceptions import ConfigurationError
from ..journal import RunRecords
from ..manager import ExtensionDebugManager
from ..model import AlertSeverity
from ..sharedmethods import dataclass
from ..summaries import RunSections
from .options import option_source
from .state import (
    STATE,
    add_test_steps,
    checked_marker,
    guard,
    internal_error,
    kari_markers,
    register_once,
    write_run_csv,
)

if TYPE_CHECKING:
    # The rules are imported by a run that has some (ini, kari_alert, kari_budget).
    from ..rules import AlertRule, Evaluation, RuleStates

MEMORY_FIGURES = frozenset({"allocated_mb", "peak_memory_mb", "allocated_blocks"})
FAIL_ON_CHOICES = ("low", "medium", "high", "critical", "none")
SUMMARY_LIMIT = 20
ALERT_CSV_COLUMNS = ("nodeid", "extension_id", "name", "rule", "severity", "status", "value",
                     "threshold", "source", "failed_test", "occurrences", "notification",
                     "message", "alert_id", "ts")  # fmt: skip


@dataclass
class AlertsState:
    """What this plugin keeps for one run."""

    fail_on: AlertSeverity | None
    ini_rules: list[AlertRule]
    #: The streaks of ``for N tests`` rules (made when a test first has rules).
    states: RuleStates | None = None


ALERTS = pytest.StashKey[AlertsState]()
_RULES: pytest.StashKey[list[AlertRule]] = pytest.StashKey()
_RESULT = pytest.StashKey[dict[str, Any]]()


def _fail_on(config: pytest.Config) -> AlertSeverity | None:
    raw, source = option_source(config, "fail_on")
    raw = raw or "high"
    text = str(raw).strip().lower()
    if text == "none":
        return None
    try:
        return AlertSeverity.parse(text)
    except ConfigurationError:
        accepted = ", ".join(FAIL_ON_CHOICES)
        msg = f"kari-debug: {source}: unknown severity {raw!r}; accepted: {accepted}"
        raise pytest.UsageError(msg) from None


def pytest_configure(config: pytest.Config) -> None:
    """Parse ``--kari-fail-on`` and ``kari_alert_rules``; ini rules put every test in a session."""
    fail_on = _fail_on(config)
    lines = config.getini("kari_alert_rules")
    try:
        rules = _parse_rules(lines) if lines else []
    except ConfigurationError as exc:
        raise pytest.UsageError(f"kari-debug: ini kari_alert_rules: {exc}") from None
    config.stash[ALERTS] = AlertsState(fail_on, rules)
    state = config.stash.get(STATE, None)
    if rules and state is not None:
        # Rules the user wrote for every test must see every test.
        state.wrap_every_test()


def _parse_rules(lines: list[str]) -> list[AlertRule]:
    from ..rules import parse_rules

    return parse_rules(lines, origin="kari_alert_rules")


# Markers -----------------------------------------------------------------------------------
def _usage(marker: str, item: pytest.Item, problem: str) -> pytest.UsageError:
    return pytest.UsageError(f"kari-debug: marker {marker} on {item.nodeid}: {problem}")


def _alert_marker_rule(item: pytest.Item, marker: pytest.Mark) -> AlertRule:
    from ..rules import RULE_OPTIONS, AlertRule, parse_rule

    args, kwargs = list(marker.args), dict(marker.kwargs)
    if "rule" in kwargs:
        args.insert(0, kwargs.pop("rule"))
    unknown = sorted(set(kwargs) - set(RULE_OPTIONS))
    if unknown:
        accepted = ", ".join(("rule", *RULE_OPTIONS))
        raise _usage("kari_alert", item, f"unknown argument(s) {unknown!r}; accepted: {accepted}")
    if len(args) != 1:
        problem = (
            "takes one rule, a string such as 'errors > 0' or a callable taking the figures,"
            f" got {tuple(args)!r}"
        )
        raise _usage("kari_alert", item, problem)
    rule = args[0]
    try:
        if callable(rule):
            name = kwargs.get("name") or getattr(rule, "__name__", "") or "custom rule"
            return AlertRule.custom(
                str(name),
                rule,
                kwargs.get("severity", AlertSeverity.HIGH),
                inhibits=kwargs.get("inhibits", ()),
                origin="kari_alert",
            )
        if not isinstance(rule, str):
            problem = f"the rule must be a string or a callable, got {rule!r}"
            raise _usage("kari_alert", item, problem)
        severity = kwargs.pop("severity", None)
        return parse_rule(rule, severity, origin="kari_alert", **kwargs)
    except ConfigurationError as exc:
        raise _usage("kari_alert", item, str(exc)) from None


def _budget_marker_rules(item: pytest.Item) -> list[AlertRule]:
    from ..rules import budget_rules

    limits: dict[str, Any] = {}
    severity: Any = AlertSeverity.HIGH
    for marker in reversed(list(item.iter_markers("kari_budget"))):  # the closest wins
        if marker.args:
            problem = (
                f"takes keyword arguments only (duration_ms=..., errors=...), got {marker.args!r}"
            )
            raise _usage("kari_budget", item, problem)
        kwargs = dict(marker.kwargs)
        severity = kwargs.pop("severity", severity)
        limits.update(kwargs)
    if not limits and item.get_closest_marker("kari_budget") is None:
        return []
    try:
        return budget_rules(limits, severity)
    except ConfigurationError as exc:
        raise _usage("kari_budget", item, str(exc)) from None


def item_rules(item: pytest.Item) -> list[AlertRule]:
    """The rules of *item*: ini rules, then its kari_alert markers, then its budget."""
    state = item.config.stash[ALERTS]
    rules = list(state.ini_rules)
    markers = kari_markers(item)
    if "kari_alert" in markers:
        for marker in reversed(list(item.iter_markers("kari_alert"))):
            rules.append(_alert_marker_rule(item, marker))
    if "kari_budget" in markers:
        rules.extend(_budget_marker_rules(item))
    return rules


@pytest.hookimpl(trylast=True)  # after every plugin and conftest added its markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Parse every test's kari_alert and kari_budget markers: a bad one is a usage error (or,
    in a run that did not ask for the plugin, a failure of its test)."""
    ruled = False
    ini_rules = config.stash[ALERTS].ini_rules  # a test without kari markers has these only
    for item in items:
        if kari_markers(item):
            rules = item.stash[_RULES] = checked_marker(item, item_rules, [])
        else:
            rules = item.stash[_RULES] = ini_rules  # shared: rules are read, never changed
        ruled = ruled or bool(rules)
    if ruled:  # only a run with rules pays for timing the phases the rules read
        register_once(config, "kari-debug-ruled-tests", RuledTests)


# Measuring and judging ---------------------------------------------------------------------
class RuledTests:
    """The per-test hooks of a run with alert rules (registered at the end of collection)."""

    def pytest_kari_debug_session_options(self, item: pytest.Item) -> dict[str, Any] | None:
        """Trace allocations in tests whose rules read tracemalloc figures."""
        rules = item.stash.get(_RULES, None) or []
        if any(rule.figure in MEMORY_FIGURES for rule in rules):
            return {"profile_memory": True}
        return None


def pytest_exception_interact(
    node: pytest.Item | pytest.Collector, call: pytest.CallInfo[Any], report: Any
) -> None:
    """Evaluate the rules of a test whose call failed, for its record (no verdict then)."""
    if call.when != "call" or not isinstance(node, pytest.Item) or _RESULT in node.stash:
        return
    with guard(node.config, "evaluating alert rules of a failed test"):
        test = _core_test(node)
        if test is not None:
            _evaluate(node, *test, judge=False)


def _core_test(item: pytest.Item) -> tuple[ExtensionDebugManager, str] | None:
    from .core import session_of  # the core's per-test state: manager and session id

    return session_of(item)


def _alert_verdicts(
    item: pytest.Item, manager: ExtensionDebugManager, session_id: str
) -> list[str] | None:
    """Failure messages of the alerts at or above --kari-fail-on fired by this test's run (a
    step of the core's call wrapper: no pluggy dispatch at every test)."""
    try:  # (a try, not a guard: this runs at every test)
        return _evaluate(item, manager, session_id, judge=True)
    except Exception as exc:
        internal_error(item.config, "evaluating alert rules", exc)
    return None


def _evaluate(
    item: pytest.Item, manager: ExtensionDebugManager, session_id: str, *, judge: bool
) -> list[str]:
    state = item.config.stash[ALERTS]
    rules = item.stash.get(_RULES, None)
    if rules is None:
        rules = item.stash[_RULES] = item_rules(item)
    alert_manager = manager.get_alert_manager()
    if not rules and not alert_manager.session_records(session_id):
        return []  # no rule and no alert raised: nothing to judge or to note
    from .core import own_figures  # the test's own work, timed by the core's clock

    phases, own = own_figures(item) or ({}, {})
    evaluations: list[Evaluation] = []
    raised: set[str] = set()
    if rules:
        from ..rules import RuleStates, SessionFigures, evaluate_rules

        if state.states is None:
            state.states = RuleStates()
        figures = SessionFigures(manager, session_id, phases, own)
        evaluations = evaluate_rules(rules, figures, state.states)
        for evaluation in evaluations:
            if evaluation.fired:
                alert = alert_manager.raise_for(
                    evaluation, labels={"test": item.nodeid}, session_id=session_id
                )
                if alert is not None:
                    raised.add(alert.alert_id)
    others = [a for a in alert_manager.session_alerts(session_id) if a.alert_id not in raised]
    verdicts = []
    fail_on = state.fail_on
    fired = []
    for evaluation in evaluations:
        if not evaluation.fired:
            continue
        fails = judge and fail_on is not None and evaluation.counts
        fails = fails and evaluation.rule.severity >= fail_on
        if fails:
            verdicts.append(evaluation.failure())
        fired.append(_fired_entry(evaluation, fails))
    for alert in others:
        fails = judge and fail_on is not None and alert.status == ACTIVE
        fails = fails and alert.severity >= fail_on
        if fails:
            verdicts.append(_alert_failure(alert))
        fired.append(_alert_entry(alert, fails))
    if not rules and not fired:
        return verdicts
    item.stash[_RESULT] = {
        "fail_on": fail_on.value if fail_on else "none",
        "rules": [rule.text() for rule in rules],
        "fired": fired,
        "pending": [e.rule.name for e in evaluations if e.pending],
        "verdicts": verdicts,
    }
    return verdicts


def _fired_entry(evaluation: Evaluation, failed: bool) -> dict[str, Any]:
    rule = evaluation.rule
    return {
        "name": rule.name,
        "rule": rule.text(),
        "origin": rule.origin,
        "severity": rule.severity.value,
        "value": evaluation.value,
        "threshold": evaluation.threshold,
        "source": evaluation.source,
        "missing": evaluation.missing,
        "inhibited_by": evaluation.inhibited_by,
        "status": "inhibited" if evaluation.inhibited_by else "active",
        "message": evaluation.message(),
        "failed_test": failed,
    }


def _alert_entry(alert: Alert, failed: bool) -> dict[str, Any]:
    return {
        "name": alert.alert_type,
        "rule": alert.rule,
        "origin": "raised",
        "severity": alert.severity.value,
        "value": alert.current_value,
        "threshold": alert.threshold_value,
        "source": alert.source,
        "missing": None,
        "inhibited_by": alert.inhibited_by,
        "status": alert.status,
        "message": f"{alert.title}: {alert.message}",
        "failed_test": failed,
    }


def _alert_failure(alert: Alert) -> str:
    measured = ""
    if alert.current_value is not None or alert.threshold_value is not None:
        name = alert.metric_name or "value"
        measured = (
            f"\n  where {name} = {alert.current_value!r}, threshold {alert.threshold_value!r}"
        )
    return (
        f"alert {alert.alert_type!r} raised during the test [{alert.severity.value}]:"
        f" {alert.title}: {alert.message}{measured}"
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Judge each test's alerts and put the results in its record (a run where some test has
    a session)."""
    add_test_steps(
        session.config,
        "kari-debug-alerts-record",
        recording=_record_alerts,
        judging=_alert_verdicts,
    )


def _record_alerts(item: pytest.Item, record: dict[str, Any]) -> None:
    """Put the test's rules, fired alerts and verdicts under ``record["extra"]["alerts"]``."""
    result = item.stash.get(_RESULT, None)
    if result is not None:
        record.setdefault("extra", {})["alerts"] = result


# End of the run ----------------------------------------------------------------------------
def _live_alerts(managers: dict[str, ExtensionDebugManager]) -> dict[str, Alert]:
    """This process's alerts, once their notifications are out (or shutdown_timeout passed)."""
    found: dict[str, Alert] = {}
    alert_managers: list[AlertManager] = [m.get_alert_manager() for m in managers.values()]
    limit = max((a.alerting_configuration.shutdown_timeout for a in alert_managers), default=0)
    deadline = time.monotonic() + limit
    for alert_manager in alert_managers:
        # Every test is over: stop the senders now, so a hanging endpoint costs the run its
        # shutdown timeout once, not again when the managers stop.
        alert_manager.dispatcher.close(max(0.0, deadline - time.monotonic()))
        found.update(alert_manager.alerts)
    return found


def pytest_kari_debug_run_finished(
    config: pytest.Config, tests: RunRecords, sections: dict[str, Any], built: RunSections
) -> None:
    """Gather fired alerts: JSON section ``alerts``, ``alerts.csv`` and summary lines."""
    with guard(config, "summarising alerts"):
        _summarise(config, tests, sections, built)


def _summarise(
    config: pytest.Config, tests: RunRecords, sections: dict[str, Any], built: RunSections
) -> None:
    state = config.stash[STATE]
    alerts_state = config.stash[ALERTS]
    live = _live_alerts(state.managers)

    def amend(test: dict[str, Any]) -> None:
        """Delivery outcomes known since the test ended, in the records every output reads."""
        collected = (test.get("collected_data") or {}).get("alerting") or {}
        for record in collected.get("records") or ():
            if isinstance(record, dict) and record.get("alert_id") in live:
                record.update(live[record["alert_id"]].to_dict())

    if live:
        tests.transforms.append(amend)
    # Built as the tests were kept: only the deliveries known since are added here.
    rows: list[dict[str, Any]] = []
    for test in built.alerted_tests:
        records: dict[Any, Mapping[str, Any]] = {}
        for found in test.records:  # as amend() leaves them in every output's records
            alert_id = found.get("alert_id")
            if isinstance(found, dict) and alert_id in live:
                found = {**found, **live[alert_id].to_dict()}
            records[alert_id] = found
        by_name = {r.get("name"): r for r in records.values()}
        for entry in test.fired:
            record = by_name.get(entry["name"], {})
            rows.append(
                {
                    "nodeid": test.nodeid,
                    "extension_id": test.extension_id,
                    **entry,
                    "alert_id": record.get("alert_id"),
                    "occurrences": record.get("occurrences"),
                    "notification": record.get("notification"),
                    "deliveries": record.get("deliveries", []),
                    "ts": record.get("ts"),
                }
            )
    manager_alerts = [alert.to_dict() for alert in live.values() if alert.session_id is None]
    if not (built.alerts_judged or rows or manager_alerts or alerts_state.ini_rules):
        return  # no rule, no alert: nothing to report
    counts = {s.value: 0 for s in AlertSeverity}
    for row in rows:
        counts[row["severity"]] = counts.get(row["severity"], 0) + 1
    failed = sorted({row["nodeid"] for row in rows if row["failed_test"]})
    channels = {
        channel.channel_id: channel.describe()
        for manager in state.managers.values()
        for channel in manager.get_alert_manager().get_notification_channels()
    }
    sections["alerts"] = {
        "fail_on": alerts_state.fail_on.value if alerts_state.fail_on else "none",
        "rules": [rule.text() for rule in alerts_state.ini_rules],
        "counts": counts,
        "failed_tests": failed,
        "alerts": rows,
        "manager_alerts": manager_alerts,
        "channels": list(channels.values()),
    }
    if rows or manager_alerts:
        write_run_csv(state, "alerts.csv", rows, ALERT_CSV_COLUMNS, output="alerts csv")
    state.summary_lines.extend(_summary_lines(rows, manager_alerts, failed, alerts_state))


def _summary_lines(
    rows: list[dict[str, Any]],
    manager_alerts: list[dict[str, Any]],
    failed: list[str],
    alerts_state: AlertsState,
) -> list[str]:
    if not rows and not manager_alerts:
        return []
    fail_on = alerts_state.fail_on.value if alerts_state.fail_on else "none"
    by_severity: dict[str, int] = {}
    for row in rows:
        by_severity[row["severity"]] = by_severity.get(row["severity"], 0) + 1
    shown = ", ".join(
        f"{by_severity[s.value]} {s.value}"
        for s in reversed(AlertSeverity)
        if s.value in by_severity
    )
    lines = [
        f"alerts: {len(rows)} fired in tests ({shown or 'none'}); {len(failed)} test(s) failed"
        f" by alerts (--kari-fail-on {fail_on})"
    ]
    ordered = sorted(rows, key=lambda r: (-AlertSeverity.parse(r["severity"]).rank, r["nodeid"]))
    for row in ordered[:SUMMARY_LIMIT]:
        mark = "FAILED " if row["failed_test"] else ""
        status = " (inhibited)" if row["status"] == "inhibited" else ""
        first = str(row["message"]).splitlines()[0] if row["message"] else ""
        lines.append(f"  {mark}[{row['severity']}] {row['nodeid']}: {row['name']}{status}: {first}")
    if len(rows) > SUMMARY_LIMIT:
        lines.append(f"  ... and {len(rows) - SUMMARY_LIMIT} more (see the JSON export)")
    for alert in manager_alerts[:5]:
        lines.append(
            f"  [{alert['severity']}] {alert['extension_id']} (self-monitoring):"
            f" {alert['alert_type']}: {alert['message']}"
        )
    lines.extend(_delivery_lines([*rows, *manager_alerts]))
    return lines


def _delivery_lines(alerts: list[dict[str, Any]]) -> list[str]:
    """One line of notification outcomes, and one per failed channel (errors are scrubbed).

    Nothing when no channel but the built-in log channel is configured.
    """
    outcomes: dict[str, int] = {}
    failures: dict[str, str] = {}
    for alert in alerts:
        for delivery in alert.get("deliveries") or ():
            if delivery.get("channel") == "log":
                continue  # the built-in log channel notifies no one: not a notification
            outcomes[delivery["status"]] = outcomes.get(delivery["status"], 0) + 1
            if delivery["status"] in ("failed", "dropped"):
                failures.setdefault(delivery["channel_id"], str(delivery.get("error")))
    if not outcomes:
        return []
    shown = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items()))
    lines = [f"alert notifications: {shown}"]
    lines += [f"  channel {cid!r}: {error}" for cid, error in sorted(failures.items())[:5]]
    return lines
