"""AlertManager: creating, deduplicating, cooling down, capping, inhibiting and resolving alerts."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from alert_servers import webhook_server

from pytest_kari_debug.alerting import (
    AlertingConfiguration,
    AlertManager,
    AlertSeverity,
    NotificationChannel,
    WebhookNotificationChannel,
)
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.manager import ExtensionDebugManager
from pytest_kari_debug.rules import StaticFigures, parse_rule

CONTRACT_KEYS = {"alert_id", "alert_type", "name", "rule", "severity", "level", "title",
                 "message", "metric_name", "current_value", "value", "threshold_value", "status",
                 "occurrences", "ts", "session_id", "source"}  # fmt: skip


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder(NotificationChannel):
    """A channel that keeps what it is sent (inline, so tests need no waiting)."""

    background = False

    def __init__(self, channel_id: str = "rec", kind: str = "webhook", **options: Any) -> None:
        super().__init__(channel_id, **options)
        self.kind = kind  # type: ignore[misc]
        self.sent: list[tuple[str, str]] = []

    def send(self, notification: Any) -> None:
        self.sent.append((notification["event"], notification["alert"]["alert_type"]))


def _manager(clock: Clock | None = None, **config: Any) -> tuple[AlertManager, Recorder]:
    alerts = AlertManager(
        "ext",
        alerting_configuration=AlertingConfiguration(**config),
        clock=clock or Clock(),
    )
    recorder = Recorder()
    alerts.add_notification_channel(recorder)
    return alerts, recorder


def _raise(alerts: AlertManager, alert_type: str = "high_cpu", **options: Any) -> Any:
    return alerts.raise_alert(
        alert_type, options.pop("severity", "high"), "High CPU", "85%", "cpu_percent", 85.0, 80.0,
        **options,
    )  # fmt: skip


def test_create_alert_as_in_the_seed() -> None:
    """await create_alert(...) returns an alert with id, timestamps, status and occurrences."""
    clock = Clock()
    alerts, recorder = _manager(clock)

    async def main() -> Any:
        return await alerts.create_alert(
            alert_type="high_cpu",
            severity=AlertSeverity.HIGH,
            title="High CPU Usage",
            message="CPU usage is 85% which exceeds threshold",
            metric_name="cpu_percent",
            current_value=85.0,
            threshold_value=80.0,
        )

    alert = asyncio.run(main())
    assert alert.alert_id
    assert alert.created_at == clock.now
    assert (alert.status, alert.occurrences, alert.severity) == ("active", 1, AlertSeverity.HIGH)
    data = alert.to_dict()
    assert set(data) >= CONTRACT_KEYS
    assert (data["value"], data["threshold_value"], data["level"]) == (85.0, 80.0, "high")
    json.dumps(data)
    assert recorder.sent == [("firing", "high_cpu")]
    assert alerts.get_active_alerts() == [alert]


def test_bad_arguments_are_refused() -> None:
    """A bad severity, type or value is a ConfigurationError naming it."""
    alerts, _ = _manager()
    with pytest.raises(ConfigurationError, match="unknown alert severity 'severe'"):
        _raise(alerts, severity="severe")
    with pytest.raises(ConfigurationError, match="alert_type"):
        _raise(alerts, alert_type=" ")
    with pytest.raises(ConfigurationError, match="current_value"):
        alerts.raise_alert("x", "low", "t", "m", "cpu", current_value="high")  # type: ignore[arg-type]


def test_same_active_alert_counts_occurrences_and_notifies_once() -> None:
    """Deduplication: the same key while active increments occurrences, without notifying."""
    alerts, recorder = _manager()
    first = _raise(alerts)
    second = alerts.raise_alert("high_cpu", "high", "High CPU", "91%", "cpu_percent", 91.0, 80.0)
    assert second is first
    assert (first.occurrences, first.current_value, first.message) == (2, 91.0, "91%")
    assert recorder.sent == [("firing", "high_cpu")]
    other = _raise(alerts, labels={"host": "b"})
    assert other is not first


def test_cooldown_per_rule_with_an_injected_clock() -> None:
    """Within the cooldown a new alert of the same type is recorded but not notified."""
    clock = Clock()
    alerts, recorder = _manager(clock, default_cooldown_minutes=5)
    _raise(alerts, labels={"test": "a"})
    cooled = _raise(alerts, labels={"test": "b"})
    assert cooled.notification == "suppressed: cooldown"
    assert _raise(alerts, alert_type="disk_full").notification == "sent"
    clock.advance(5 * 60)
    assert _raise(alerts, labels={"test": "c"}).notification == "sent"
    assert recorder.sent == [
        ("firing", "high_cpu"),
        ("firing", "disk_full"),
        ("firing", "high_cpu"),
    ]
    assert alerts.get_alert_statistics()["suppressed"] == {"cooldown": 1}
    per_rule = alerts.raise_alert("quick", "low", "t", "m", cooldown_minutes=0)
    again = alerts.raise_alert("quick", "low", "t", "m2", labels={"n": "2"}, cooldown_minutes=0)
    assert (per_rule.notification, again.notification) == ("sent", "sent")


def test_max_alerts_per_hour_caps_notifications() -> None:
    """Beyond max_alerts_per_hour alerts are still recorded, but not notified, for an hour."""
    clock = Clock()
    alerts, recorder = _manager(clock, default_cooldown_minutes=0, max_alerts_per_hour=2)
    made = [_raise(alerts, labels={"n": str(n)}) for n in range(4)]
    assert [a.notification for a in made] == ["sent", "sent"] + ["suppressed: rate_limit"] * 2
    assert len(alerts.get_active_alerts()) == 4
    clock.advance(3600)
    assert _raise(alerts, labels={"n": "late"}).notification == "sent"
    assert len(recorder.sent) == 3


def test_auto_resolve_after_hours_and_send_resolved() -> None:
    """An alert not seen for auto_resolve_after_hours resolves; send_resolved channels hear it."""
    clock = Clock()
    alerts, quiet = _manager(clock, auto_resolve_after_hours=2)
    loud = Recorder("loud", kind="email", send_resolved=True)
    alerts.add_notification_channel(loud)
    alert = _raise(alerts)
    clock.advance(3600)
    _raise(alerts)  # seen again: the clock restarts
    clock.advance(2 * 3600 - 1)
    assert alert.status == "active"
    assert alerts.get_active_alerts() == [alert]
    clock.advance(1)
    assert alerts.get_active_alerts() == []
    assert alert.status == "resolved"
    assert alert.resolution_notes == "auto-resolved: not seen for 2 h"
    assert loud.sent == [("firing", "high_cpu"), ("resolved", "high_cpu")]
    assert quiet.sent == [("firing", "high_cpu")]


def test_resolve_alert_and_statistics() -> None:
    """resolve_alert sets status and notes; statistics count by severity, type, status, MTTR."""
    clock = Clock()
    alerts, _ = _manager(clock, default_cooldown_minutes=0)
    cpu = _raise(alerts)
    disk = _raise(alerts, alert_type="disk", severity="critical")
    _raise(alerts, alert_type="disk", severity="low", labels={"host": "b"})
    clock.advance(30)
    alerts.resolve_alert(cpu.alert_id, "Fixed by restart")
    clock.advance(60)
    alerts.resolve_alert(disk.alert_id)
    assert (cpu.status, cpu.resolution_notes, cpu.resolved_at) == (
        "resolved",
        "Fixed by restart",
        clock.now - 60,
    )
    stats = alerts.get_alert_statistics()
    assert stats["by_severity"] == {"low": 1, "medium": 0, "high": 1, "critical": 1}
    assert stats["total_alerts"] == 3
    assert stats["by_type"] == {"disk": 2, "high_cpu": 1}
    assert stats["by_status"] == {"active": 1, "resolved": 2, "inhibited": 0}
    assert stats["mean_time_to_resolve_seconds"] == 60.0
    left = _raise(alerts, alert_type="in_session", session_id="s9")
    assert alerts.resolve_session("s9") == [left]
    assert left.resolution_notes == "session ended"
    with pytest.raises(KeyError, match="no alert 'nope'"):
        alerts.resolve_alert("nope")
    with pytest.raises(KeyError, match="no alert 'nope'"):
        alerts.reopen_alert("nope")
    recurring = _raise(alerts)
    assert recurring is not cpu
    assert recurring.occurrences == 1


def test_severity_filters_and_enabled_channels() -> None:
    """severity_filters (by channel id or kind) and notification_channels route notifications."""
    alerts, webhook = _manager(
        notification_channels=["log", "webhook", "pager"],
        severity_filters={"webhook": [AlertSeverity.HIGH, "critical"], "pager": ["critical"]},
        default_cooldown_minutes=0,
    )
    pager = Recorder("pager", kind="email")
    mail = Recorder("mail", kind="email")
    for channel in (pager, mail):
        alerts.add_notification_channel(channel)
    for severity in ("low", "high", "critical"):
        _raise(alerts, alert_type=f"a_{severity}", severity=severity)
    assert [t for _, t in webhook.sent] == ["a_high", "a_critical"]
    assert [t for _, t in pager.sent] == ["a_critical"]
    assert mail.sent == []  # neither "mail" nor "email" is in notification_channels
    assert next(iter(alerts.channels["log"].lines)).startswith("[LOW]")


def test_channel_level_severities() -> None:
    """A channel built with severities= only receives those."""
    alerts, _ = _manager(default_cooldown_minutes=0)
    only_critical = Recorder("crit", severities=["critical"])
    alerts.add_notification_channel(only_critical)
    _raise(alerts, alert_type="x", severity="high")
    _raise(alerts, alert_type="y", severity="critical")
    assert only_critical.sent == [("firing", "y")]


def test_inhibition_silences_alerts_on_the_same_session() -> None:
    """While a source alert is active, matching targets of the same session are inhibited."""
    alerts, recorder = _manager(default_cooldown_minutes=0)
    alerts.add_inhibition("memory_*", "latency*")
    alerts.raise_alert("memory_high", "high", "RSS", "too much", session_id="s1")
    silenced = alerts.raise_alert("latency", "medium", "slow", "600 ms", session_id="s1")
    elsewhere = alerts.raise_alert("latency", "medium", "slow", "600 ms", session_id="s2")
    assert (silenced.status, silenced.inhibited_by) == ("inhibited", "memory_high")
    assert silenced.notification == "suppressed: inhibited"
    assert elsewhere.status == "active"
    assert [t for _, t in recorder.sent] == ["memory_high", "latency"]
    assert silenced not in alerts.get_active_alerts()


def test_evaluate_rules_raises_alerts_with_rule_and_source() -> None:
    """evaluate() raises an alert per fired rule, carrying rule text, value, threshold, source."""
    alerts, recorder = _manager(default_cooldown_minutes=0)
    alerts.add_rule("peak_rss_mb > 200 inhibits=duration_ms", severity="critical")
    alerts.add_rule(parse_rule("duration_ms > 100"))
    alerts.add_rule("errors > 0")
    figures = StaticFigures({"peak_rss_mb": 300, "duration_ms": 150, "errors": 0}, "probe")
    evaluations = alerts.evaluate(figures, labels={"test": "t1"}, session_id="s1")
    assert [e.fired for e in evaluations] == [True, True, False]
    by_type = {a.alert_type: a for a in alerts.get_alerts()}
    memory, latency = by_type["peak_rss_mb > 200"], by_type["duration_ms > 100"]
    assert memory.rule == "peak_rss_mb > 200 severity=critical inhibits=duration_ms"
    assert (memory.current_value, memory.threshold_value, memory.source) == (300.0, 200.0, "probe")
    assert memory.severity is AlertSeverity.CRITICAL
    assert latency.status == "inhibited"
    assert [t for _, t in recorder.sent] == ["peak_rss_mb > 200"]


def test_live_monitoring_with_for_samples() -> None:
    """A 'for N samples' rule fires once the trailing run of points is long enough."""
    alerts, recorder = _manager()
    alerts.add_rule("metric:queue_size > 100 for 3 samples")
    points: list[tuple[float, float]] = []
    fired = []
    for ts, value in enumerate([150, 150, 50, 150, 150, 150]):
        points.append((float(ts), float(value)))
        evaluation = alerts.evaluate(StaticFigures({"metric:queue_size": list(points)}))[0]
        fired.append(evaluation.fired)
    assert fired == [False, False, False, False, False, True]
    assert len(recorder.sent) == 1


def test_disabled_alerting_records_nothing() -> None:
    """With alerting disabled, create_alert returns None and keeps nothing."""
    alerts = AlertManager("ext", alerting_configuration=AlertingConfiguration(enabled=False))
    assert _raise(alerts) is None
    off = AlertManager("ext", DebugConfiguration(alerting_enabled=False), enabled=False)
    assert _raise(off) is None
    assert alerts.get_alerts() == []
    assert off.get_alerts() == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("default_cooldown_minutes", -1, "default_cooldown_minutes must be a number >= 0"),
        ("max_alerts_per_hour", 0, "max_alerts_per_hour must be an integer >= 1"),
        ("auto_resolve_after_hours", "a day", "auto_resolve_after_hours"),
        ("notification_channels", "log", "notification_channels must be a list"),
        ("severity_filters", {"webhook": ["urgent"]}, "unknown alert severity 'urgent'"),
        ("enabled", "yes", "enabled must be true or false"),
    ],
)
def test_alerting_configuration_is_checked(field: str, value: Any, expected: str) -> None:
    """Every AlertingConfiguration field is checked at construction."""
    with pytest.raises(ConfigurationError, match=expected):
        AlertingConfiguration(**{field: value})


def test_seed_alerting_configuration() -> None:
    """The seed's AlertingConfiguration example builds and routes as written."""
    config = AlertingConfiguration(
        enabled=True,
        default_cooldown_minutes=5,
        max_alerts_per_hour=100,
        auto_resolve_after_hours=24,
        notification_channels=["log", "webhook"],
        severity_filters={"webhook": [AlertSeverity.HIGH, AlertSeverity.CRITICAL]},
    )
    alerts = AlertManager("ext", alerting_configuration=config)
    webhook = Recorder("slack", kind="webhook")
    alerts.add_notification_channel(webhook)
    _raise(alerts, alert_type="minor", severity="medium")
    _raise(alerts, alert_type="major", severity="high")
    assert webhook.sent == [("firing", "major")]


def test_alerts_are_bounded_by_max_alerts() -> None:
    """At most max_alerts alerts are kept; resolved ones are evicted first."""
    alerts = AlertManager(
        "ext",
        DebugConfiguration(max_alerts=3),
        alerting_configuration=AlertingConfiguration(default_cooldown_minutes=0),
    )
    first = _raise(alerts, labels={"n": "0"})
    alerts.resolve_alert(first.alert_id)
    for n in range(1, 5):
        _raise(alerts, labels={"n": str(n)})
    assert len(alerts.alerts) == 3
    assert first.alert_id not in alerts.alerts
    assert alerts.get_alert_statistics()["evicted"] == 2


def test_webhook_delivery_is_recorded_per_alert_and_keeps_secrets() -> None:
    """Delivery runs in the background; its outcome is on the alert; no export holds secrets."""
    with webhook_server("fail-first") as server:
        alerts, _ = _manager()
        alerts.add_notification_channel(
            WebhookNotificationChannel(
                "slack", "Slack", server.url, headers={"X-Token": "tok-XYZ"}, backoff=0.01
            )
        )
        alert = _raise(alerts)
        assert alerts.flush_notifications(10)
        alerts.stop()
    delivery = next(d for d in alert.deliveries if d.channel_id == "slack")
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert server.bodies()[-1]["alert"]["alert_id"] == alert.alert_id
    exported = json.dumps([alert.to_dict(), alerts.get_alert_statistics()])
    assert "SECRET-TOKEN" not in exported
    assert "tok-XYZ" not in exported
    assert alerts.get_alert_statistics()["deliveries"] == {"sent": 3}  # log, rec, slack


def test_failed_delivery_degrades_health_but_never_raises() -> None:
    """A dead endpoint leaves a failed delivery and a degraded check, not an exception."""
    alerts, _ = _manager()
    alerts.add_notification_channel(
        WebhookNotificationChannel("dead", "Dead", "http://127.0.0.1:9/x", retries=0, timeout=1)
    )
    alert = _raise(alerts)
    assert not alerts.flush_notifications(10)  # it says the truth: not delivered
    assert next(d for d in alert.deliveries if d.channel_id == "dead").status == "failed"
    assert alerts.check()[0] == "degraded"
    alerts.stop()


def test_session_records_carry_the_alerts(manager: ExtensionDebugManager) -> None:
    """Alerts raised in a debug session are in its collected data, in the contract's shape."""
    session_id = manager.start_debug_session()
    manager.get_alert_manager().raise_alert("x", "medium", "t", "m", "errors", 2, 0)
    session = manager.stop_debug_session(session_id)
    (record,) = session.collected_data["alerting"]["records"]
    assert set(record) >= CONTRACT_KEYS
    assert (record["session_id"], record["severity"], record["value"]) == (session_id, "medium", 2)


def test_overhead_above_its_limit_raises_a_low_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    """Self-monitoring: debug overhead above profiling_overhead_limit raises one LOW alert."""
    monkeypatch.setattr("pytest_kari_debug.manager.OVERHEAD_WINDOW_S", 0.0)
    manager = ExtensionDebugManager(
        "busy-ext", configuration=DebugConfiguration(profiling_overhead_limit=1.0)
    )
    for _ in range(12):
        session_id = manager.start_debug_session()
        manager.add_overhead(0.05)  # far more than 1 % of an empty session
        manager.stop_debug_session(session_id)
    (alert,) = manager.get_alert_manager().get_alerts()
    assert (alert.alert_type, alert.severity) == ("debug_overhead", AlertSeverity.LOW)
    assert alert.metric_name == "debug_overhead_percent"
    assert alert.current_value is not None
    assert alert.current_value > 1.0
    assert alert.threshold_value == 1.0
    assert alert.occurrences >= 1


def test_no_overhead_alert_below_the_limit() -> None:
    """A manager within its overhead limit raises no self-monitoring alert."""
    manager = ExtensionDebugManager(
        "calm-ext", configuration=DebugConfiguration(profiling_overhead_limit=100.0)
    )
    for _ in range(12):
        session_id = manager.start_debug_session()
        time.sleep(0.002)  # the session does work; the debugging costs a fraction of it
        manager.stop_debug_session(session_id)
    assert manager.get_alert_manager().get_alerts() == []
