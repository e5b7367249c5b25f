"""``AlertManager``: alerts, their lifecycle, noise control and notification channels.

Noise control follows Prometheus Alertmanager: an alert with the same key (type, metric,
session and labels) as an active one counts another occurrence instead of notifying again;
each rule has a cooldown between notifications; notifications are capped per hour; channels
have severity filters and may be told when an alert resolves; an alert can inhibit another
on the same session; active alerts resolve by themselves after ``auto_resolve_after_hours``.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .channels import (
    Delivery,
    DeliveryOptions,
    EmailNotificationChannel,
    LogNotificationChannel,
    NotificationChannel,
    NotificationDispatcher,
    Secret,
    WebhookNotificationChannel,
)
from .component import Component, export_text
from .config import documented
from .context import CURRENT_SESSION
from .exceptions import ConfigurationError
from .lazy import lazy_exports
from .model import AlertSeverity
from .sharedmethods import dataclass
from .values import label_text, safe_str

if TYPE_CHECKING:
    # The rules are imported when a manager is given one (or asked to evaluate some): a run
    # without rules never builds their parser and classes.
    from .rules import AlertRule, Evaluation, Figures, RuleStates

__all__ = [
    "Alert",
    "AlertManager",
    "AlertRule",
    "AlertSeverity",
    "AlertingConfiguration",
    "DeliveryOptions",
    "EmailNotificationChannel",
    "InhibitRule",
    "LogNotificationChannel",
    "NotificationChannel",
    "Secret",
    "WebhookNotificationChannel",
]

ACTIVE, RESOLVED, INHIBITED = "active", "resolved", "inhibited"
CHANNEL_KINDS = ("log", "webhook", "email")


@dataclass
class Alert:
    """An alert and its lifecycle: occurrences, status, resolution and deliveries."""

    alert_id: str
    alert_type: str
    severity: AlertSeverity
    title: str
    message: str
    created_at: float
    session_id: str | None = None
    metric_name: str | None = None
    current_value: float | None = None
    threshold_value: float | None = None
    status: str = ACTIVE
    occurrences: int = 1
    last_seen: float = 0.0
    resolved_at: float | None = None
    resolution_notes: str | None = None
    rule: str | None = None
    source: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    inhibited_by: str | None = None
    notification: str = "pending"  # sent, suppressed: <reason>, none
    deliveries: list[Delivery] = field(default_factory=list)
    extension_id: str = ""

    @property
    def key(self) -> tuple[str, str | None, str | None, tuple[tuple[str, str], ...]]:
        """What makes two alerts the same (for deduplication): type, metric, session, labels."""
        labels = tuple(sorted(self.labels.items()))
        return self.alert_type, self.metric_name, self.session_id, labels

    @property
    def timestamp(self) -> float:
        return self.created_at

    def payload(self) -> dict[str, Any]:
        """The alert as sent to channels: JSON-able, without delivery bookkeeping."""
        data = self.to_dict()
        data.pop("deliveries", None)
        return data

    def to_dict(self) -> dict[str, Any]:
        """Return the alert as JSON-able data."""
        return {
            "alert_id": self.alert_id,
            "alert_type": self.alert_type,
            "name": self.alert_type,
            "rule": self.rule,
            "severity": self.severity.value,
            "level": self.severity.value,
            "title": self.title,
            "message": self.message,
            "metric_name": self.metric_name,
            "current_value": self.current_value,
            "value": self.current_value,
            "threshold_value": self.threshold_value,
            "status": self.status,
            "occurrences": self.occurrences,
            "ts": self.created_at,
            "created_at": self.created_at,
            "last_seen": self.last_seen,
            "session_id": self.session_id,
            "source": self.source,
            "labels": dict(self.labels),
            "inhibited_by": self.inhibited_by,
            "resolved_at": self.resolved_at,
            "resolution_notes": self.resolution_notes,
            "notification": self.notification,
            "deliveries": [d.to_dict() for d in list(self.deliveries)],
            "extension_id": self.extension_id,
        }


@documented
@dataclass
class AlertingConfiguration:
    """Noise control and routing of alerts (the seed's fields, checked at construction).

    Each field's help text is in its metadata (``dataclasses.fields(...)[i].metadata["help"]``).
    """

    enabled: bool = field(
        default=True, metadata={"help": "Create alerts at all (false: every alert is ignored)"}
    )
    default_cooldown_minutes: float = field(
        default=5,
        metadata={"help": "Least time between two notifications of one rule (0: none)"},
    )
    max_alerts_per_hour: int = field(
        default=100,
        metadata={"help": "Notifications sent per hour at most (alerts beyond it are recorded)"},
    )
    auto_resolve_after_hours: float = field(
        default=24,
        metadata={"help": "Hours after which an active alert not seen again resolves (0: never)"},
    )
    notification_channels: list[str] = field(
        default_factory=lambda: list(CHANNEL_KINDS),
        metadata={"help": "Channel ids or kinds (log, webhook, email) that get notifications"},
    )
    severity_filters: dict[str, list[AlertSeverity]] = field(
        default_factory=dict,
        metadata={"help": "Channel id or kind to the severities it receives (default: all)"},
    )
    notification_queue_size: int = field(
        default=1000,
        metadata={"help": "Notifications waiting per channel at most (more are dropped)"},
    )
    shutdown_timeout: float = field(
        default=5.0, metadata={"help": "Seconds queued notifications get at shutdown"}
    )

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            msg = f"enabled must be true or false, got {self.enabled!r}"
            raise ConfigurationError(msg)
        for name in ("default_cooldown_minutes", "auto_resolve_after_hours", "shutdown_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                msg = f"{name} must be a number >= 0, got {value!r}"
                raise ConfigurationError(msg)
        for name in ("max_alerts_per_hour", "notification_queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"{name} must be an integer >= 1, got {value!r}"
                raise ConfigurationError(msg)
        channels = self.notification_channels
        if isinstance(channels, str) or not all(isinstance(c, str) for c in channels):
            msg = f"notification_channels must be a list of channel ids or kinds, got {channels!r}"
            raise ConfigurationError(msg)
        self.notification_channels = list(channels)
        if not isinstance(self.severity_filters, Mapping):
            shown = self.severity_filters
            msg = f"severity_filters must map channel ids to severities, got {shown!r}"
            raise ConfigurationError(msg)
        filters: dict[str, list[AlertSeverity]] = {}
        for channel, severities in self.severity_filters.items():
            if isinstance(severities, (str, AlertSeverity)):
                severities = [severities]
            filters[str(channel)] = [AlertSeverity.parse(s) for s in severities]
        self.severity_filters = filters


@dataclass(frozen=True)
class InhibitRule:
    """While an active alert matches *source*, new alerts matching *target* are inhibited.

    *source* and *target* are globs over the alert type or metric name; the two alerts must
    agree on every label in *equal* (``session_id`` compares the debug session).
    """

    source: str
    target: str
    equal: tuple[str, ...] = ("session_id",)

    def matches(self, pattern: str, alert: Alert) -> bool:
        return fnmatch.fnmatchcase(alert.alert_type, pattern) or (
            alert.metric_name is not None and fnmatch.fnmatchcase(alert.metric_name, pattern)
        )

    def inhibits(self, source: Alert, target: Alert) -> bool:
        """Whether active *source* silences *target*."""
        if source is target or not self.matches(self.source, source):
            return False
        if not self.matches(self.target, target):
            return False
        return all(_label(source, name) == _label(target, name) for name in self.equal)


def _label(alert: Alert, name: str) -> Any:
    return alert.session_id if name == "session_id" else alert.labels.get(name)


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{what} must be a number or None, got {value!r}"
        raise ConfigurationError(msg)
    return float(value)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _awaitable(method: Callable[_P, _R], name: str) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """An ``async`` twin of *method*, named *name*: its signature, its docstring, its result."""

    @functools.wraps(method)
    async def twin(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return method(*args, **kwargs)

    twin.__name__ = name
    twin.__qualname__ = f"{method.__qualname__.rpartition('.')[0]}.{name}"
    return twin


class AlertManager(Component):
    """Creates, deduplicates, inhibits and resolves alerts, evaluates rules, notifies channels.

    *clock* (epoch seconds) drives timestamps, cooldowns, the hourly cap and auto-resolution;
    tests inject one. Notifications leave on a background dispatcher and never raise into the
    caller; each alert keeps the outcome per channel in ``deliveries``.
    """

    kind = "alerting"
    limit_field = "max_alerts"

    def __init__(
        self,
        *args: Any,
        alerting_configuration: AlertingConfiguration | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if alerting_configuration is not None and not isinstance(
            alerting_configuration, AlertingConfiguration
        ):
            shown = alerting_configuration
            msg = f"alerting_configuration must be an AlertingConfiguration, got {shown!r}"
            raise ConfigurationError(msg)
        self.alerting_configuration = alerting_configuration or AlertingConfiguration()
        self.clock = clock
        self.channels: dict[str, NotificationChannel] = {"log": LogNotificationChannel()}
        self.alerts: dict[str, Alert] = {}
        self.rules: list[AlertRule] = []
        self.inhibit_rules: list[InhibitRule] = []
        self._rule_states: RuleStates | None = None
        self.suppressed: dict[str, int] = {}
        self.evicted = 0
        self._active_by_key: dict[tuple[Any, ...], Alert] = {}
        self._last_notified: dict[str, float] = {}
        self._notified_times: deque[float] = deque()
        self._lock = threading.RLock()
        self.dispatcher = NotificationDispatcher(
            self.alerting_configuration.notification_queue_size,
            on_problem=self.add_diagnostic,
        )

    @property
    def rule_states(self) -> RuleStates:
        """The streaks of ``for N tests`` rules evaluated here (made at the first evaluation)."""
        states = self._rule_states
        if states is None:
            from .rules import RuleStates

            with self._lock:
                if self._rule_states is None:
                    self._rule_states = RuleStates()
                states = self._rule_states
        return states

    # Configuration ---------------------------------------------------------------------
    def configure(self, alerting_configuration: AlertingConfiguration) -> None:
        """Replace the noise-control settings."""
        if not isinstance(alerting_configuration, AlertingConfiguration):
            msg = f"expected an AlertingConfiguration, got {alerting_configuration!r}"
            raise ConfigurationError(msg)
        self.alerting_configuration = alerting_configuration

    def add_notification_channel(self, channel: NotificationChannel) -> None:
        """Send future notifications to *channel* too (replacing one with the same id)."""
        if not isinstance(channel, NotificationChannel):
            msg = f"expected a NotificationChannel, got {type(channel).__name__}"
            raise ConfigurationError(msg)
        self.channels[channel.channel_id] = channel

    def remove_notification_channel(self, channel_id: str) -> NotificationChannel | None:
        """Stop notifying the channel *channel_id*; return it (``None`` if unknown)."""
        return self.channels.pop(channel_id, None)

    def get_notification_channels(self) -> list[NotificationChannel]:
        """The channels, by id."""
        return [self.channels[k] for k in sorted(self.channels)]

    def add_rule(
        self, rule: AlertRule | str, severity: AlertSeverity | str | None = None, **options: Any
    ) -> AlertRule:
        """Evaluate *rule* (an AlertRule or rule text) in :meth:`evaluate`."""
        from .rules import AlertRule, parse_rule

        if isinstance(rule, str):
            rule = parse_rule(rule, severity, **options)
        elif not isinstance(rule, AlertRule):
            msg = f"expected an AlertRule or rule text, got {rule!r}"
            raise ConfigurationError(msg)
        elif severity is not None or options:
            rule = rule.with_options(
                **options, **({"severity": severity} if severity is not None else {})
            )
        self.rules.append(rule)
        return rule

    def add_inhibition(
        self, source: str, target: str, equal: Iterable[str] = ("session_id",)
    ) -> InhibitRule:
        """While an alert matching *source* is active, inhibit alerts matching *target*."""
        inhibit = InhibitRule(str(source), str(target), tuple(equal))
        self.inhibit_rules.append(inhibit)
        return inhibit

    # Creating alerts -------------------------------------------------------------------
    def raise_alert(
        self,
        alert_type: str,
        severity: AlertSeverity | str,
        title: str,
        message: str,
        metric_name: str | None = None,
        current_value: float | None = None,
        threshold_value: float | None = None,
        *,
        labels: Mapping[str, Any] | None = None,
        rule: str | None = None,
        source: str | None = None,
        session_id: str | None = None,
        cooldown_minutes: float | None = None,
        inhibited_by: str | None = None,
    ) -> Alert | None:
        """Create an alert (or count another occurrence of the same active one).

        *labels* (a dict) and the session are part of what makes two alerts the same; *rule*
        names the rule it came from, *source* what raised it; *cooldown_minutes* overrides
        the rule's cooldown between notifications. Returns ``None`` when alerting is disabled.
        """
        if not isinstance(alert_type, str) or not alert_type.strip():
            msg = f"alert_type must be a non-empty string, got {alert_type!r}"
            raise ConfigurationError(msg)
        level = AlertSeverity.parse(severity)
        value = _number(current_value, "current_value")
        threshold = _number(threshold_value, "threshold_value")
        if not (self.enabled and self.alerting_configuration.enabled):
            return None
        if session_id is None:
            session = CURRENT_SESSION.get()
            session_id = session.session_id if session else None
        now = self.clock()
        self._expire(now)
        with self._lock:
            candidate = Alert(
                alert_id=uuid.uuid4().hex[:16],
                alert_type=alert_type.strip(),
                severity=level,
                title=safe_str(title, 1000),
                message=safe_str(message),
                created_at=now,
                session_id=session_id,
                metric_name=metric_name,
                current_value=value,
                threshold_value=threshold,
                last_seen=now,
                rule=rule,
                source=source,
                labels={label_text(k, 200): label_text(v) for k, v in (labels or {}).items()},
                extension_id=self.extension_id,
            )
            existing = self._active_by_key.get(candidate.key)
            if existing is not None:
                existing.occurrences += 1
                existing.last_seen = now
                existing.current_value = value
                existing.message = candidate.message
                if level > existing.severity:
                    existing.severity = level
                return existing
            if inhibited_by is None:
                inhibited_by = self._inhibitor_of(candidate)
            if inhibited_by is not None:
                candidate.status = INHIBITED
                candidate.inhibited_by = inhibited_by
            self._keep(candidate)
            self.records.append(candidate, session_id)
            targets = self._route(candidate, now, cooldown_minutes)
        for channel in targets:
            self._send(channel, candidate, "firing")
        return candidate

    create_alert = _awaitable(raise_alert, "create_alert")
    """``await`` :meth:`raise_alert` (the seed's API): the same arguments and result."""

    def _inhibitor_of(self, candidate: Alert) -> str | None:
        for inhibit in self.inhibit_rules:
            for source in self._active_by_key.values():
                if source.status == ACTIVE and inhibit.inhibits(source, candidate):
                    return source.alert_type
        return None

    def _keep(self, alert: Alert) -> None:
        self.alerts[alert.alert_id] = alert
        if alert.status != RESOLVED:
            self._active_by_key[alert.key] = alert
        limit = max(1, self.configuration.max_alerts)
        while len(self.alerts) > limit:
            victim = next((a for a in self.alerts.values() if a.status == RESOLVED), None)
            if victim is None:
                victim = next(iter(self.alerts.values()))
            self.alerts.pop(victim.alert_id)
            if self._active_by_key.get(victim.key) is victim:
                del self._active_by_key[victim.key]
            self.evicted += 1

    def _suppress(self, alert: Alert, reason: str) -> list[NotificationChannel]:
        alert.notification = f"suppressed: {reason}"
        self.suppressed[reason] = self.suppressed.get(reason, 0) + 1
        return []

    def _route(
        self, alert: Alert, now: float, cooldown_minutes: float | None
    ) -> list[NotificationChannel]:
        """Apply inhibition, cooldown, the hourly cap and filters; return the channels to use."""
        config = self.alerting_configuration
        if alert.status == INHIBITED:
            return self._suppress(alert, "inhibited")
        cooldown = config.default_cooldown_minutes if cooldown_minutes is None else cooldown_minutes
        last = self._last_notified.get(alert.alert_type)
        if last is not None and cooldown > 0 and now - last < cooldown * 60.0:
            return self._suppress(alert, "cooldown")
        while self._notified_times and now - self._notified_times[0] >= 3600.0:
            self._notified_times.popleft()
        if len(self._notified_times) >= config.max_alerts_per_hour:
            return self._suppress(alert, "rate_limit")
        targets = [c for c in self.channels.values() if self._accepts(c, alert)]
        if not targets:
            alert.notification = "none: no channel accepts it"
            return []
        self._last_notified[alert.alert_type] = now
        self._notified_times.append(now)
        alert.notification = "sent"
        return targets

    def _accepts(self, channel: NotificationChannel, alert: Alert) -> bool:
        config = self.alerting_configuration
        enabled = set(config.notification_channels)
        if channel.channel_id not in enabled and channel.kind not in enabled:
            return False
        allowed = config.severity_filters.get(channel.channel_id)
        if allowed is None:
            allowed = config.severity_filters.get(channel.kind)
        if allowed is not None and alert.severity not in allowed:
            return False
        return channel.severities is None or alert.severity in channel.severities

    def _send(self, channel: NotificationChannel, alert: Alert, event: str) -> None:
        delivery = Delivery(channel.channel_id, channel.kind, event)
        alert.deliveries.append(delivery)
        notification = {"event": event, "extension_id": self.extension_id, "alert": alert.payload()}
        try:
            self.dispatcher.submit(channel, notification, delivery)
        except Exception as exc:  # never raised into the caller
            delivery.status, delivery.error = "failed", channel.error_text(exc)
            self.dispatcher.undelivered += 1
            self.add_diagnostic(
                f"notifying channel {channel.channel_id!r} failed: {delivery.error}"
            )

    # Rules -------------------------------------------------------------------------------
    def evaluate(
        self,
        figures: Figures,
        rules: Iterable[AlertRule] | None = None,
        *,
        labels: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        states: RuleStates | None = None,
        trailing: bool = True,
    ) -> list[Evaluation]:
        """Evaluate *rules* (default: the added ones) on *figures* and raise the alerts.

        Returns every evaluation; fired ones have raised (or re-counted) an alert, in
        inhibitor-first order so an inhibited alert is recorded as such.
        """
        from .rules import evaluate_rules

        chosen = list(self.rules if rules is None else rules)
        key = repr(sorted((labels or {}).items()))
        evaluations = evaluate_rules(
            chosen, figures, self.rule_states if states is None else states, key=key,
            trailing=trailing,
        )  # fmt: skip
        for evaluation in evaluations:
            if evaluation.fired:
                self.raise_for(evaluation, labels=labels, session_id=session_id)
        return evaluations

    def raise_for(
        self,
        evaluation: Evaluation,
        *,
        labels: Mapping[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Alert | None:
        """Raise the alert of a fired *evaluation*."""
        rule = evaluation.rule
        return self.raise_alert(
            rule.name,
            rule.severity,
            evaluation.title(),
            evaluation.message(),
            rule.figure or None,
            evaluation.value,
            evaluation.threshold
            if evaluation.threshold is None or math.isfinite(evaluation.threshold)
            else None,
            labels=labels,
            rule=rule.text(),
            source=evaluation.source,
            session_id=session_id,
            cooldown_minutes=rule.cooldown_minutes,
            inhibited_by=evaluation.inhibited_by,
        )

    # Lifecycle of alerts -----------------------------------------------------------------
    def resolve_alert(self, alert_id: str, notes: str | None = None) -> Alert:
        """Mark the alert *alert_id* resolved; channels with ``send_resolved`` are told."""
        with self._lock:
            alert = self._known(alert_id)
            if alert.status == RESOLVED:
                return alert
            was_notified = alert.notification == "sent"
            self._close(alert, self.clock(), notes)
        if was_notified:
            self._notify_resolved(alert)
        return alert

    def reopen_alert(self, alert_id: str) -> Alert:
        """Mark the resolved alert *alert_id* active again (undoes :meth:`resolve_alert`).

        Its next occurrence counts on it, unless another alert of its key is active by now.
        """
        with self._lock:
            alert = self._known(alert_id)
            if alert.status == RESOLVED:
                alert.status = ACTIVE
                alert.resolved_at = None
                alert.resolution_notes = None
                self._active_by_key.setdefault(alert.key, alert)
            return alert

    def _close(self, alert: Alert, now: float, notes: str | None) -> None:
        alert.status = RESOLVED
        alert.resolved_at = now
        alert.resolution_notes = notes
        if self._active_by_key.get(alert.key) is alert:
            del self._active_by_key[alert.key]

    def _notify_resolved(self, alert: Alert) -> None:
        notified = {d.channel_id for d in alert.deliveries if d.event == "firing"}
        for channel in list(self.channels.values()):
            if channel.send_resolved and channel.channel_id in notified:
                self._send(channel, alert, "resolved")

    def _expire(self, now: float) -> None:
        hours = self.alerting_configuration.auto_resolve_after_hours
        if hours <= 0:
            return
        expired = []
        with self._lock:
            for alert in list(self._active_by_key.values()):
                if now - alert.last_seen >= hours * 3600.0:
                    was_notified = alert.notification == "sent"
                    self._close(alert, now, f"auto-resolved: not seen for {hours:g} h")
                    if was_notified:
                        expired.append(alert)
        for alert in expired:
            self._notify_resolved(alert)

    def resolve_session(self, session_id: str, notes: str = "session ended") -> list[Alert]:
        """Resolve every active alert of *session_id*."""
        return [
            self.resolve_alert(a.alert_id, notes)
            for a in list(self.alerts.values())
            if a.session_id == session_id and a.status != RESOLVED
        ]

    def _known(self, alert_id: str) -> Alert:
        """The kept alert *alert_id*; a ``KeyError`` naming it when there is none."""
        alert = self.alerts.get(alert_id)
        if alert is None:
            msg = f"no alert {alert_id!r}"
            raise KeyError(msg)
        return alert

    # Queries -----------------------------------------------------------------------------
    def get_alert(self, alert_id: str) -> Alert | None:
        """The alert *alert_id*, or ``None``."""
        return self.alerts.get(alert_id)

    def get_alerts(
        self,
        *,
        status: str | None = None,
        severity: AlertSeverity | str | None = None,
        since: float | None = None,
        session_id: str | None = None,
    ) -> list[Alert]:
        """Alerts kept, newest first, filtered by status, least severity, time and session."""
        self._expire(self.clock())
        least = None if severity is None else AlertSeverity.parse(severity)
        found = [
            a
            for a in list(self.alerts.values())
            if (status is None or a.status == status)
            and (least is None or a.severity >= least)
            and (since is None or a.created_at >= since)
            and (session_id is None or a.session_id == session_id)
        ]
        return sorted(found, key=lambda a: -a.created_at)

    def export(self, format: str = "json", *, path: str | os.PathLike[str] | None = None) -> str:
        """The alerts kept, oldest first, with their statistics as ``json``, or as ``csv``;
        with *path*, also written there atomically."""
        fields = self.export_fields()
        fields["alerts"] = [alert.to_dict() for alert in reversed(self.get_alerts())]
        fields["alert_statistics"] = self.get_alert_statistics()
        return export_text("alerts", format, fields, path)

    def get_active_alerts(self) -> list[Alert]:
        """The alerts not yet resolved (inhibited ones excluded), newest first."""
        return self.get_alerts(status=ACTIVE)

    def session_alerts(self, session_id: str) -> list[Alert]:
        """Alerts raised (or re-counted) in the open session *session_id* so far."""
        return list(self.session_records(session_id))

    def get_alert_statistics(self) -> dict[str, Any]:
        """Counts by severity, type and status, mean time to resolve, notification outcomes."""
        self._expire(self.clock())
        alerts = list(self.alerts.values())
        by_severity = {s.value: 0 for s in AlertSeverity}
        by_type: dict[str, int] = {}
        by_status: dict[str, int] = {ACTIVE: 0, RESOLVED: 0, INHIBITED: 0}
        deliveries: dict[str, int] = {}
        resolve_times = []
        for alert in alerts:
            by_severity[alert.severity.value] += 1
            by_type[alert.alert_type] = by_type.get(alert.alert_type, 0) + 1
            by_status[alert.status] = by_status.get(alert.status, 0) + 1
            if alert.resolved_at is not None:
                resolve_times.append(alert.resolved_at - alert.created_at)
            for delivery in list(alert.deliveries):
                deliveries[delivery.status] = deliveries.get(delivery.status, 0) + 1
        mean = sum(resolve_times) / len(resolve_times) if resolve_times else None
        return {
            "total_alerts": len(alerts),
            "active_alerts": by_status[ACTIVE],
            "by_severity": by_severity,
            "by_type": dict(sorted(by_type.items())),
            "by_status": by_status,
            "occurrences": sum(a.occurrences for a in alerts),
            "mean_time_to_resolve_seconds": None if mean is None else round(mean, 3),
            "deliveries": deliveries,
            "suppressed": dict(self.suppressed),
            "dropped_notifications": self.dispatcher.dropped,
            "evicted": self.evicted,
        }

    # Component ---------------------------------------------------------------------------
    def flush_notifications(self, timeout: float = 5.0) -> bool:
        """Wait up to *timeout* s for queued notifications; True only when every notification
        since the last flush was delivered (False: one is pending, failed or was dropped)."""
        return self.dispatcher.flush(timeout)

    def start(self) -> None:
        self.dispatcher.restart()

    def stop(self) -> None:
        """Give queued notifications ``shutdown_timeout`` seconds, then drop the rest."""
        self.dispatcher.close(self.alerting_configuration.shutdown_timeout)

    def stats(self) -> dict[str, int]:
        data = super().stats()
        data["alerts"] = len(self.alerts)
        data["notifications_dropped"] = self.dispatcher.dropped
        return data

    def check(self) -> tuple[str, str]:
        status, detail = super().check()
        if status != "healthy" or not self.enabled:
            return status, detail
        failed = sum(
            1
            for a in list(self.alerts.values())
            for d in list(a.deliveries)
            if d.status == "failed"
        )
        if failed or self.dispatcher.dropped:
            return "degraded", (
                f"{failed} notification(s) failed, {self.dispatcher.dropped} dropped"
            )
        return status, f"{len(self.alerts)} alerts, {len(self.channels)} channels"


#: The rules' public names, which this module has always exported, imported on first use.
__getattr__, __dir__ = lazy_exports(
    __name__, {"AlertRule": "pytest_kari_debug.rules", "Evaluation": "pytest_kari_debug.rules"}
)
