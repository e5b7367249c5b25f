"""Notification channels against real servers on 127.0.0.1: webhook, SMTP, log; the dispatcher."""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from alert_servers import free_port, self_signed_certificate, smtp_server, webhook_server
from conftest import require_tool

from pytest_kari_debug.channels import (
    Delivery,
    DeliveryError,
    EmailNotificationChannel,
    LogNotificationChannel,
    NotificationChannel,
    NotificationDispatcher,
    Secret,
    WebhookNotificationChannel,
    scrub,
)
from pytest_kari_debug.exceptions import ConfigurationError
from pytest_kari_debug.model import AlertSeverity


def _note(severity: str = "high", title: str = "High CPU Usage", **alert: Any) -> dict[str, Any]:
    return {
        "event": "firing",
        "extension_id": "ext",
        "alert": {
            "alert_id": "a1",
            "severity": severity,
            "title": title,
            "message": "CPU usage is 85% which exceeds threshold",
            "metric_name": "cpu_percent",
            "current_value": 85.0,
            "threshold_value": 80.0,
            **alert,
        },
    }


def _deliver(channel: NotificationChannel, note: dict[str, Any] | None = None) -> Delivery:
    delivery = Delivery(channel.channel_id, channel.kind, "firing")
    channel.deliver(note or _note(), delivery, lambda seconds: False)
    return delivery


def test_secret_never_shows_its_value() -> None:
    """A Secret's repr and str are <secret>, it refuses pickling, and reveal() gives the value."""
    import pickle

    secret = Secret("hunter2")
    assert repr(secret) == str(secret) == "<secret>"
    assert f"{secret}" == "<secret>"
    assert secret.reveal() == "hunter2"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_scrub_removes_raw_and_url_quoted_secrets() -> None:
    """scrub() replaces a secret and its URL-quoted form."""
    text = "failed for https://x/a b and https://x/a%20b"
    assert scrub(text, ["https://x/a b", "a b"]) == "failed for <secret> and https://x/<secret>"


def test_webhook_posts_json_with_headers() -> None:
    """The webhook channel POSTs the notification as JSON with the configured headers."""
    with webhook_server() as server:
        channel = WebhookNotificationChannel(
            "slack", "Slack", server.url, headers={"Authorization": "Bearer tok-123"}
        )
        delivery = _deliver(channel)
        assert (delivery.status, delivery.attempts) == ("sent", 1)
        (request,) = server.requests
    body = server.bodies()[0]
    assert body["event"] == "firing"
    assert body["alert"]["title"] == "High CPU Usage"
    assert body["alert"]["current_value"] == 85.0
    assert request["headers"]["Authorization"] == "Bearer tok-123"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["path"] == "/hooks/T000/SECRET-TOKEN"


def test_webhook_retries_a_5xx_then_succeeds() -> None:
    """A server answering 500 then 200 gets the notification on the second attempt."""
    with webhook_server("fail-first") as server:
        channel = WebhookNotificationChannel("w", "W", server.url, retries=2, backoff=0.01)
        delivery = _deliver(channel)
        assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 2, None)
        assert len(server.requests) == 2


def test_webhook_does_not_retry_a_4xx() -> None:
    """A 404 is final: one attempt, delivery failed with the status."""
    with webhook_server("status:404") as server:
        channel = WebhookNotificationChannel("w", "W", server.url, retries=3, backoff=0.01)
        delivery = _deliver(channel)
        assert (delivery.status, delivery.attempts) == ("failed", 1)
        assert "HTTP 404" in (delivery.error or "")
        assert len(server.requests) == 1


def test_webhook_to_a_closed_port_fails_after_retries_without_leaking_the_url() -> None:
    """Connection refused is retried, then recorded as failed; the URL never shows."""
    url = f"http://127.0.0.1:{free_port()}/hooks/very-secret-path"
    channel = WebhookNotificationChannel("w", "W", url, retries=2, backoff=0.0)
    delivery = _deliver(channel)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "connection failed" in (delivery.error or "")
    assert "very-secret-path" not in (delivery.error or "")
    assert "very-secret-path" not in repr(channel)
    assert "very-secret-path" not in str(channel.describe())


def test_webhook_that_never_answers_times_out() -> None:
    """A hanging endpoint costs the channel its timeout, then the delivery is failed."""
    with webhook_server("hang") as server:
        channel = WebhookNotificationChannel("w", "W", server.url, timeout=0.3, retries=0)
        delivery = _deliver(channel)
    assert delivery.status == "failed"
    assert "timed out" in (delivery.error or "")


def test_webhook_rejects_bad_urls_and_headers() -> None:
    """A non-http URL or a header with a line break is refused at construction."""
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        WebhookNotificationChannel("w", "W", "ftp://example.com/x")
    with pytest.raises(ConfigurationError, match="line break"):
        WebhookNotificationChannel("w", "W", "http://h/x", headers={"X": "a\r\nInjected: 1"})
    with pytest.raises(ConfigurationError, match="retries"):
        WebhookNotificationChannel("w", "W", "http://h/x", retries=-1)


def test_webhook_header_secrets_hidden_from_repr() -> None:
    """repr shows header names, never their values."""
    channel = WebhookNotificationChannel(
        "w", "W", "https://hooks.example.com/T/B/xyz", headers={"X-Token": "s3cr3t-value"}
    )
    assert "s3cr3t-value" not in repr(channel)
    assert "X-Token" in repr(channel)
    assert "xyz" not in repr(channel)


def _parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_email_sends_plain_and_html_bodies() -> None:
    """The e-mail channel sends one message with a text and an HTML part to every recipient."""
    with smtp_server() as server:
        channel = EmailNotificationChannel(
            "mail",
            "Mail",
            server.host,
            server.port,
            "kari@example.com",
            ["dev@example.com", "ops@example.com"],
            retries=0,
        )
        delivery = _deliver(channel, _note(title="<b>CPU</b> & more"))
        assert delivery.status == "sent", delivery.error
        (message,) = server.wait_for(1)
    assert message["to"] == ["dev@example.com", "ops@example.com"]
    parsed = _parsed(message["data"])
    assert parsed["Subject"].startswith("[kari-debug] [HIGH] <b>CPU</b> & more")
    plain = parsed.get_body(preferencelist=("plain",)).get_content()
    html_part = parsed.get_body(preferencelist=("html",)).get_content()
    assert "cpu_percent" in plain
    assert "&lt;b&gt;CPU&lt;/b&gt; &amp; more" in html_part
    assert "<b>CPU</b>" not in html_part


def test_email_subject_cannot_inject_headers() -> None:
    """Line breaks in alert text stay out of the e-mail headers."""
    with smtp_server() as server:
        channel = EmailNotificationChannel(
            "mail", "Mail", server.host, server.port, "k@example.com", ["d@example.com"]
        )
        delivery = _deliver(channel, _note(title="x\r\nBcc: victim@example.com"))
        assert delivery.status == "sent", delivery.error
        (message,) = server.wait_for(1)
    parsed = _parsed(message["data"])
    assert parsed["Bcc"] is None
    assert message["to"] == ["d@example.com"]


def test_email_starttls_and_login(tmp_path: Path) -> None:
    """With STARTTLS and login the message arrives; the password never shows in repr."""
    cert, key = self_signed_certificate(tmp_path, require_tool("openssl"))
    context = ssl.create_default_context(cafile=str(cert))
    with smtp_server(tls=(cert, key), users={"kari": "pa55-word"}) as server:
        channel = EmailNotificationChannel(
            "mail", "Mail", server.host, server.port, "k@example.com", ["d@example.com"],
            username="kari", password="pa55-word", use_starttls=True, ssl_context=context,
        )  # fmt: skip
        delivery = _deliver(channel)
        assert delivery.status == "sent", delivery.error
        assert server.wait_for(1)
        assert server.logins == ["kari"]
        wrong = EmailNotificationChannel(
            "mail2", "Mail", server.host, server.port, "k@example.com", ["d@example.com"],
            username="kari", password="not-the-pa55", use_starttls=True, ssl_context=context,
            retries=3,
        )  # fmt: skip
        refused = _deliver(wrong)
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert "login refused" in (refused.error or "")
    assert "not-the-pa55" not in (refused.error or "")
    assert "pa55-word" not in repr(channel)
    assert "pa55-word" not in str(channel.describe())


def test_email_to_a_closed_port_fails() -> None:
    """No SMTP server: the delivery is retried and then failed, never raised."""
    channel = EmailNotificationChannel(
        "mail", "Mail", "127.0.0.1", free_port(), "k@example.com", ["d@example.com"],
        retries=1, backoff=0.0,
    )  # fmt: skip
    delivery = _deliver(channel)
    assert (delivery.status, delivery.attempts) == ("failed", 2)


def test_email_rejects_bad_settings() -> None:
    """Bad addresses, half a login or both TLS modes are refused at construction."""
    with pytest.raises(ConfigurationError, match="addresses"):
        EmailNotificationChannel("m", "M", "h", 25, "a@b", [])
    with pytest.raises(ConfigurationError, match="plain address"):
        EmailNotificationChannel("m", "M", "h", 25, "a@b", ["x@y\r\nBcc: z@w"])
    with pytest.raises(ConfigurationError, match="username and password"):
        EmailNotificationChannel("m", "M", "h", 25, "a@b", ["x@y"], username="u")
    with pytest.raises(ConfigurationError, match="exclude"):
        EmailNotificationChannel("m", "M", "h", 25, "a@b", ["x@y"], use_starttls=True, use_ssl=True)
    for port in (0, 65536, True, "25"):
        with pytest.raises(ConfigurationError, match=f"smtp_port .* from 1 to 65535, got {port!r}"):
            EmailNotificationChannel("m", "M", "h", port, "a@b", ["x@y"])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="plain address"):
        EmailNotificationChannel("m", "M", "h", 25, "Eve <a@b>", ["x@y"])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"retries": -1}, "retries must be a whole number >= 0, got -1"),
        ({"retries": 1.5}, "retries must be a whole number >= 0, got 1.5"),
        ({"max_line_chars": 79}, "max_line_chars must be a whole number >= 80, got 79"),
        ({"max_line_chars": "500"}, "max_line_chars must be a whole number >= 80, got '500'"),
        ({"max_lines": -1}, "max_lines must be a whole number >= 0, got -1"),
        ({"max_lines": None}, "max_lines must be a whole number >= 0, got None"),
    ],
)
def test_log_channel_rejects_bad_numbers_naming_them(options: dict, expected: str) -> None:
    """Bad whole-number options are refused at construction, naming option, value and range."""
    with pytest.raises(ConfigurationError) as caught:
        LogNotificationChannel(**options)
    assert str(caught.value) == expected


def test_log_channel_logs_at_the_severity_level(caplog: pytest.LogCaptureFixture) -> None:
    """The log channel writes one line per notification at the level of the severity."""
    channel = LogNotificationChannel()
    with caplog.at_level(logging.DEBUG, logger="pytest_kari_debug.alerts"):
        _deliver(channel, _note("critical"))
        _deliver(channel, _note("low", title="minor"))
    assert [r.levelno for r in caplog.records] == [logging.CRITICAL, logging.INFO]
    assert channel.lines[0].startswith("[CRITICAL] High CPU Usage")


class _GatedChannel(NotificationChannel):
    """A channel whose send blocks until the test opens the gate."""

    kind = "gated"

    def __init__(self) -> None:
        super().__init__("gated", retries=0)
        self.gate = threading.Event()
        self.sent: list[str] = []

    def send(self, notification: Any) -> None:
        self.gate.wait(10)
        self.sent.append(notification["alert"]["alert_id"])


def test_dispatcher_delivers_off_thread_and_drops_when_full() -> None:
    """submit() returns while delivery blocks; beyond the queue bound, notifications drop."""
    dispatcher = NotificationDispatcher(queue_size=2)
    channel = _GatedChannel()
    deliveries = [Delivery("gated", "gated", "firing") for _ in range(5)]
    for number, delivery in enumerate(deliveries):
        dispatcher.submit(channel, _note(alert_id=f"a{number}"), delivery)
    # One is being delivered (blocked), two wait in the queue, the rest are dropped.
    statuses = [d.status for d in deliveries]
    assert statuses.count("dropped") >= 2
    assert statuses.count("pending") <= 3
    assert dispatcher.dropped == statuses.count("dropped")
    channel.gate.set()
    assert not dispatcher.flush(10)  # every one finished, but some were dropped: not True
    assert all(d.status in ("sent", "dropped") for d in deliveries)
    assert len(channel.sent) == 5 - dispatcher.dropped
    dispatcher.close(1)


def test_dispatcher_close_gives_up_on_a_hanging_endpoint() -> None:
    """close() waits at most its timeout; what is still queued is marked dropped."""
    with webhook_server("hang") as server:
        dispatcher = NotificationDispatcher()
        channel = WebhookNotificationChannel("w", "W", server.url, timeout=5, retries=0)
        first, second = Delivery("w", "webhook", "firing"), Delivery("w", "webhook", "firing")
        dispatcher.submit(channel, _note(), first)
        dispatcher.submit(channel, _note(), second)
        server.wait_for(1)
        assert dispatcher.close(timeout=0.1) is False
        assert second.status == "dropped"
        assert first.status == "pending"  # its request is still in flight on a daemon thread
        late = Delivery("w", "webhook", "firing")
        dispatcher.submit(channel, _note(), late)
        assert late.status == "dropped"


def test_delivery_error_from_send_is_recorded_not_raised() -> None:
    """A channel raising anything leaves a failed delivery, never an exception."""

    class Broken(NotificationChannel):
        kind = "broken"

        def send(self, notification: Any) -> None:
            raise DeliveryError("nope, token=abc123", retryable=False)

        def secrets(self) -> list[str]:
            return ["abc123"]

    delivery = _deliver(Broken("b"))
    assert delivery.status == "failed"
    assert delivery.error == "nope, token=<secret>"


@pytest.mark.parametrize(
    ("make", "send_resolved", "timeout", "retries"),
    [
        (lambda **o: LogNotificationChannel(**o), False, 5.0, 0),
        (lambda **o: WebhookNotificationChannel("w", "W", "http://h/x", **o), True, 5.0, 2),
        (lambda **o: EmailNotificationChannel("m", "M", "h", 25, "a@b", ["x@y"], **o),
         False, 10.0, 2),
    ],
)
def test_every_channel_takes_the_delivery_options(
    make: Any, send_resolved: bool, timeout: float, retries: int
) -> None:
    """Each channel has its own defaults and passes the DeliveryOptions keywords on."""
    default = make()
    assert (default.send_resolved, default.timeout, default.retries) == (
        send_resolved,
        timeout,
        retries,
    )
    assert (default.severities, default.backoff, default.max_retry_after) == (None, 0.5, 60.0)
    given = make(severities=["high"], send_resolved=not send_resolved, backoff=0.1,
                 max_retry_after=5)  # fmt: skip
    assert given.severities == frozenset({AlertSeverity.HIGH})
    assert (given.send_resolved, given.backoff, given.max_retry_after) == (
        not send_resolved,
        0.1,
        5.0,
    )
    with pytest.raises(ConfigurationError, match="max_retry_after"):
        make(max_retry_after=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        make(sevrities=["high"])
