"""``AlertManager``: alerts, their lifecycle, and notification channels."""

from __future__ import annotations

import enum
import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

from .component import Component
from .context import CURRENT_SESSION
from .exceptions import ConfigurationError


class AlertSeverity(enum.Enum):
    """How bad an alert is; severities are ordered LOW < MEDIUM < HIGH < CRITICAL."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: AlertSeverity) -> bool:
        if not isinstance(other, AlertSeverity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: AlertSeverity) -> bool:
        if not isinstance(other, AlertSeverity):
            return NotImplemented
        return self.rank <= other.rank

    @classmethod
    def parse(cls, value: str | AlertSeverity) -> AlertSeverity:
        """Return the severity named *value* (case-insensitive)."""
        if isinstance(value, AlertSeverity):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            accepted = ", ".join(s.name.lower() for s in cls)
            msg = f"unknown alert severity {value!r}; accepted: {accepted}"
            raise ConfigurationError(msg) from None


_RANK = {
    AlertSeverity.LOW: 1,
    AlertSeverity.MEDIUM: 2,
    AlertSeverity.HIGH: 3,
    AlertSeverity.CRITICAL: 4,
}


@dataclass
class Alert:
    """An alert and its lifecycle."""

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
    status: str = "active"
    occurrences: int = 1
    resolved_at: float | None = None
    resolution_notes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the alert as JSON-able data."""
        return {
            "alert_id": self.alert_id,
            "alert_type": self.alert_type,
            "name": self.alert_type,
            "severity": self.severity.value,
            "level": self.severity.value,
            "title": self.title,
            "message": self.message,
            "ts": self.created_at,
            "created_at": self.created_at,
            "session_id": self.session_id,
            "metric_name": self.metric_name,
            "current_value": self.current_value,
            "value": self.current_value,
            "threshold_value": self.threshold_value,
            "status": self.status,
            "occurrences": self.occurrences,
            "resolved_at": self.resolved_at,
            "resolution_notes": self.resolution_notes,
        }


@dataclass
class AlertingConfiguration:
    """Noise control and routing of alerts."""

    enabled: bool = True
    default_cooldown_minutes: float = 5
    max_alerts_per_hour: int = 100
    auto_resolve_after_hours: float = 24
    notification_channels: list[str] = field(default_factory=lambda: ["log"])
    severity_filters: dict[str, list[AlertSeverity]] = field(default_factory=dict)


class NotificationChannel:
    """Where alerts are sent."""

    def __init__(self, channel_id: str, name: str) -> None:
        self.channel_id = channel_id
        self.name = name
        self.deliveries: list[dict[str, Any]] = []

    def send(self, alert: Alert) -> None:
        """Deliver *alert*; raise on failure."""
        raise NotImplementedError


class LogNotificationChannel(NotificationChannel):
    """Keeps delivered alerts in memory, as log lines."""

    def __init__(self, channel_id: str = "log", name: str = "Log") -> None:
        super().__init__(channel_id, name)
        self.lines: list[str] = []

    def send(self, alert: Alert) -> None:
        self.lines.append(f"[{alert.severity.name}] {alert.title}: {alert.message}")


class WebhookNotificationChannel(NotificationChannel):
    """POSTs each alert as JSON to a webhook URL, off the caller's thread."""

    def __init__(
        self,
        channel_id: str,
        name: str,
        webhook_url: str,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(channel_id, name)
        self._url = webhook_url
        self._headers = dict(headers or {})
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"WebhookNotificationChannel({self.channel_id!r}, url=<secret>)"

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.to_dict()).encode()
        headers = {"Content-Type": "application/json", **self._headers}
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()


class AlertManager(Component):
    """Creates, deduplicates and resolves alerts, and notifies channels."""

    kind = "alerting"
    limit_field = "max_alerts"

    def __init__(
        self, *args: Any, alerting_configuration: AlertingConfiguration | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.alerting_configuration = alerting_configuration or AlertingConfiguration()
        self.channels: dict[str, NotificationChannel] = {"log": LogNotificationChannel()}
        self.alerts: dict[str, Alert] = {}
        self._lock = threading.Lock()

    def add_notification_channel(self, channel: NotificationChannel) -> None:
        """Send future alerts to *channel* too."""
        self.channels[channel.channel_id] = channel

    async def create_alert(
        self,
        alert_type: str,
        severity: AlertSeverity,
        title: str,
        message: str,
        metric_name: str | None = None,
        current_value: float | None = None,
        threshold_value: float | None = None,
    ) -> Alert | None:
        """Create an alert (or count another occurrence of the same active one)."""
        return self.raise_alert(
            alert_type, severity, title, message, metric_name, current_value, threshold_value
        )

    def raise_alert(
        self,
        alert_type: str,
        severity: AlertSeverity | str,
        title: str,
        message: str,
        metric_name: str | None = None,
        current_value: float | None = None,
        threshold_value: float | None = None,
    ) -> Alert | None:
        """Synchronous twin of :meth:`create_alert`."""
        if not (self.enabled and self.alerting_configuration.enabled):
            return None
        severity = AlertSeverity.parse(severity)
        session = CURRENT_SESSION.get()
        with self._lock:
            for alert in self.alerts.values():
                if alert.status == "active" and (alert.alert_type, alert.metric_name) == (
                    alert_type,
                    metric_name,
                ):
                    alert.occurrences += 1
                    alert.current_value = current_value
                    return alert
            alert = Alert(
                uuid.uuid4().hex[:12],
                alert_type,
                severity,
                title,
                message,
                time.time(),
                session.session_id if session else None,
                metric_name,
                current_value,
                threshold_value,
            )
            self.alerts[alert.alert_id] = alert
        self.records.append(alert, alert.session_id)
        for channel in list(self.channels.values()):
            try:
                channel.send(alert)
                channel.deliveries.append({"alert_id": alert.alert_id, "status": "sent"})
            except Exception as exc:
                channel.deliveries.append(
                    {"alert_id": alert.alert_id, "status": "failed", "error": type(exc).__name__}
                )
        return alert

    def resolve_alert(self, alert_id: str, notes: str | None = None) -> Alert:
        """Mark the alert *alert_id* resolved."""
        alert = self.alerts.get(alert_id)
        if alert is None:
            msg = f"no alert {alert_id!r}"
            raise KeyError(msg)
        alert.status = "resolved"
        alert.resolved_at = time.time()
        alert.resolution_notes = notes
        return alert

    def get_active_alerts(self) -> list[Alert]:
        """Return the alerts not yet resolved, newest first."""
        return sorted(
            (a for a in self.alerts.values() if a.status == "active"), key=lambda a: -a.created_at
        )
