"""Webhook delivery against a real HTTP server on 127.0.0.1: userinfo, Retry-After, size caps."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from alert_servers import webhook_server

from pytest_kari_debug.alerting import AlertingConfiguration, AlertManager
from pytest_kari_debug.channels import (
    Delivery,
    LogNotificationChannel,
    NotificationChannel,
    WebhookNotificationChannel,
    parse_retry_after,
)
from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.exceptions import ConfigurationError


def _note(message: str = "CPU usage is 85%", **alert: Any) -> dict[str, Any]:
    return {
        "event": "firing",
        "extension_id": "ext",
        "alert": {"alert_id": "a1", "severity": "high", "title": "High CPU", "message": message,
                  **alert},
    }  # fmt: skip


def _deliver(channel: NotificationChannel, note: dict[str, Any] | None = None) -> Delivery:
    delivery = Delivery(channel.channel_id, channel.kind, "firing")
    channel.deliver(note or _note(), delivery, lambda seconds: False)
    return delivery


def _with_userinfo(url: str, userinfo: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{userinfo}@{rest}"


def test_userinfo_becomes_basic_auth_and_is_never_shown() -> None:
    """user:password@ in the URL is sent as an Authorization header, not as the host (case H);
    neither the repr, describe() nor a delivery error shows it."""
    with webhook_server() as server:
        url = _with_userinfo(server.url, "ops-bot:p%40ss-w0rd-XYZ")
        channel = WebhookNotificationChannel("ops", "Ops", url, retries=0)
        delivery = _deliver(channel)
        assert (delivery.status, delivery.error) == ("sent", None)
        [request] = server.requests
    expected = base64.b64encode(b"ops-bot:p@ss-w0rd-XYZ").decode()
    assert request["headers"]["Authorization"] == f"Basic {expected}"
    assert request["path"] == "/hooks/T000/SECRET-TOKEN"
    shown = repr(channel) + json.dumps(channel.describe())
    assert "w0rd" not in shown
    assert "ops-bot" not in shown
    assert "SECRET-TOKEN" not in shown


def test_a_delivery_error_hides_the_userinfo() -> None:
    """A failing delivery to a URL with userinfo names neither the user nor the password."""
    with webhook_server("status:401") as server:
        url = _with_userinfo(server.url, "ops-bot:p%40ss-w0rd-XYZ")
        delivery = _deliver(WebhookNotificationChannel("ops", "Ops", url, retries=0))
    assert delivery.status == "failed"
    assert delivery.error is not None
    assert "HTTP 401" in delivery.error
    assert "w0rd" not in delivery.error
    assert "ops-bot" not in delivery.error


def test_flush_notifications_reports_delivery_truthfully() -> None:
    """flush_notifications() is True when every notification was delivered, False when one
    failed (it used to say True after a failure)."""
    with webhook_server() as good, webhook_server("status:500") as bad:
        alerts = AlertManager(
            "ext",
            DebugConfiguration(),
            alerting_configuration=AlertingConfiguration(
                notification_channels=["ok", "broken"], default_cooldown_minutes=0
            ),
        )
        alerts.add_notification_channel(WebhookNotificationChannel("ok", "Ok", good.url))
        alerts.raise_alert("first", "high", "t", "m", "errors", 1, 0)
        assert alerts.flush_notifications(10) is True
        alerts.add_notification_channel(
            WebhookNotificationChannel("broken", "Broken", bad.url, retries=0)
        )
        alert = alerts.raise_alert("second", "high", "t", "m", "errors", 1, 0)
        assert alerts.flush_notifications(10) is False
        alerts.stop()
    assert {d.channel_id: d.status for d in alert.deliveries} == {"ok": "sent", "broken": "failed"}


def test_retry_after_on_429_is_honoured() -> None:
    """A 429 with Retry-After: 1 makes the next attempt wait about a second, not the backoff."""
    with webhook_server("retry-after:1") as server:
        channel = WebhookNotificationChannel("w", "W", server.url, retries=1, backoff=0.01)
        waits: list[float] = []
        delivery = Delivery("w", "webhook", "firing")

        def wait(seconds: float) -> bool:
            waits.append(seconds)
            return False

        channel.deliver(_note(), delivery, wait)
        assert delivery.status == "sent"
        assert len(server.requests) == 2
    assert waits == [1.0]


def test_retry_after_is_capped() -> None:
    """A server asking for an hour is waited on only up to max_retry_after."""
    with webhook_server("retry-after:3600") as server:
        channel = WebhookNotificationChannel(
            "w", "W", server.url, retries=1, backoff=0.01, max_retry_after=0.3
        )
        waits: list[float] = []
        delivery = Delivery("w", "webhook", "firing")
        channel.deliver(_note(), delivery, lambda s: waits.append(s) or False)  # type: ignore[func-returns-value]
        assert delivery.status == "sent"
    assert waits == [0.3]


def test_parse_retry_after_reads_seconds_and_dates() -> None:
    """Retry-After holds delta seconds or an HTTP date; anything else is ignored."""
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_payloads_are_capped_with_a_truncation_count() -> None:
    """A 1 MB alert message is cut so the body fits max_payload_bytes; the body says how many
    characters were cut and the channel counts the truncated payloads."""
    with webhook_server() as server:
        channel = WebhookNotificationChannel("w", "W", server.url, max_payload_bytes=4096)
        assert _deliver(channel, _note("x" * 1_000_000)).status == "sent"
        assert _deliver(channel, _note("short")).status == "sent"
        first, second = server.bodies()
        sizes = [len(r["body"].encode()) for r in server.requests]
    assert sizes[0] <= 4096
    assert first["alert"]["message"].startswith("xxx")
    assert "[truncated" in first["alert"]["message"]
    assert first["truncated"]["fields"] == ["message"]
    assert first["truncated"]["characters"] > 990_000
    assert "truncated" not in second
    assert channel.truncated == 1


def test_the_default_payload_cap_is_256_kib() -> None:
    """Without max_payload_bytes a body is cut at 256 KiB; a bad cap is refused at entry."""
    channel = WebhookNotificationChannel("w", "W", "http://127.0.0.1:9/x")
    assert channel.max_payload_bytes == 256 * 1024
    assert len(channel.payload(_note("y" * 2_000_000))) <= 256 * 1024
    with pytest.raises(ConfigurationError, match="max_payload_bytes"):
        WebhookNotificationChannel("w", "W", "http://127.0.0.1:9/x", max_payload_bytes=10)


def test_any_string_is_sent(tmp_path: Any) -> None:
    """A lone surrogate in an alert message is sent escaped, not a failed delivery."""
    with webhook_server() as server:
        channel = WebhookNotificationChannel("w", "W", server.url, retries=0)
        assert _deliver(channel, _note("bad file report-\udcff.csv")).status == "sent"
        [body] = server.bodies()
    assert body["alert"]["message"] == "bad file report-\udcff.csv"


def test_the_log_channel_prints_one_bounded_line_per_alert(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 1 MB alert message with newlines becomes one line of at most max_line_chars."""
    channel = LogNotificationChannel()
    with caplog.at_level(logging.DEBUG, logger="pytest_kari_debug.alerts"):
        _deliver(channel, _note("line\n" * 200_000))
    [record] = caplog.records
    text = record.getMessage()
    assert "\n" not in text
    assert len(text) <= 500 + len("… [truncated 1000000 characters]")
    assert text.endswith("characters]")
