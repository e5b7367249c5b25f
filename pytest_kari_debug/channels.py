"""Notification channels (log, webhook, e-mail) and the background dispatcher that feeds them.

A channel turns one notification (``{"event": "firing"|"resolved", "alert": {...}}``) into a
log line, a JSON POST or an e-mail. The :class:`NotificationDispatcher` delivers on one daemon
thread per channel with a bounded queue, retries with backoff, and records every outcome in a
:class:`Delivery`; nothing a channel does is ever raised into the caller. Secrets (webhook
URLs and headers, SMTP passwords) are :class:`Secret` values: their ``repr`` is ``<secret>``
and they are scrubbed from every recorded error.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import logging
import queue
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from .exceptions import ConfigurationError, KariDebugError
from .model import AlertSeverity
from .sharedmethods import dataclass
from .values import safe_str, truncate_text, writable_text

if TYPE_CHECKING:  # the senders import their libraries when they send
    import ssl
    from email.message import EmailMessage

    from typing_extensions import Unpack

ALERT_LOGGER = "pytest_kari_debug.alerts"
_LOG_LEVELS = {
    "low": logging.INFO,
    "medium": logging.WARNING,
    "high": logging.ERROR,
    "critical": logging.CRITICAL,
}


class Secret:
    """A value that is sent somewhere but never shown: its ``repr`` and ``str`` are ``<secret>``."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            msg = f"a secret must be a string, got {type(value).__name__}"
            raise ConfigurationError(msg)
        self._value = value

    def reveal(self) -> str:
        """The value itself, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # pickling would carry the value into other processes' logs
        msg = "a Secret cannot be pickled"
        raise TypeError(msg)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value (and its URL-quoted form) in *text* by ``<secret>``."""
    for value in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(value, "<secret>")
        quoted = urllib.parse.quote(value, safe="")
        if quoted != value:
            text = text.replace(quoted, "<secret>")
    return text


class DeliveryError(KariDebugError):
    """A channel could not deliver; ``retryable`` says whether trying again may help, and
    ``retry_after`` how long the server asked to wait first (seconds, or None)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        from email.utils import parsedate_to_datetime  # only for a server that sent a date

        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


@dataclass
class Delivery:
    """The outcome of sending one notification to one channel."""

    channel_id: str
    channel_kind: str
    event: str
    status: str = "pending"  # pending, sent, failed, dropped
    attempts: int = 0
    error: str | None = None
    queued_at: float = 0.0
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the delivery as JSON-able data."""
        return {
            "channel_id": self.channel_id,
            "channel": self.channel_kind,
            "event": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "queued_at": self.queued_at,
            "finished_at": self.finished_at,
        }


class DeliveryOptions(TypedDict, total=False):
    """The delivery options every channel takes as keywords, besides ``timeout`` and
    ``retries`` (see :class:`NotificationChannel`)."""

    severities: Iterable[AlertSeverity | str] | None
    send_resolved: bool
    backoff: float
    max_retry_after: float


class NotificationChannel:
    """Where alert notifications go. Subclasses implement :meth:`send`.

    *severities*, when given, limits the channel to those severities (the alert manager's
    ``severity_filters`` may narrow it further). *send_resolved* also sends a notification
    when an alert is resolved. Delivery makes ``1 + retries`` attempts at most, waiting
    ``backoff * 2**n`` seconds between them, for errors that may pass (connection refused,
    timeout, HTTP 5xx and 429, SMTP 4xx).
    """

    kind: ClassVar[str] = "channel"
    #: Whether delivery runs on the dispatcher's thread (False: inline, it cannot block).
    background: ClassVar[bool] = True

    def __init__(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        severities: Iterable[AlertSeverity | str] | None = None,
        send_resolved: bool = False,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_retry_after: float = 60.0,
    ) -> None:
        if not isinstance(channel_id, str) or not channel_id.strip():
            msg = f"channel_id must be a non-empty string, got {channel_id!r}"
            raise ConfigurationError(msg)
        _positive("timeout", timeout)
        _whole("retries", retries, 0)
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 0:
            msg = f"backoff must be a number of seconds >= 0, got {backoff!r}"
            raise ConfigurationError(msg)
        self.channel_id = channel_id
        self.name = name or channel_id
        self.severities = (
            None if severities is None else frozenset(AlertSeverity.parse(s) for s in severities)
        )
        self.send_resolved = bool(send_resolved)
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        _positive("max_retry_after", max_retry_after)
        self.max_retry_after = float(max_retry_after)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.channel_id!r}>"

    def send(self, notification: Mapping[str, Any]) -> None:
        """Deliver *notification* once; raise :class:`DeliveryError` (or any error) on failure."""
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Values that must never appear in a recorded error."""
        return []

    def describe(self) -> dict[str, Any]:
        """What the channel is, without secrets (for summaries and exports)."""
        return {
            "channel_id": self.channel_id,
            "name": self.name,
            "kind": self.kind,
            "send_resolved": self.send_resolved,
            "severities": sorted(s.value for s in self.severities) if self.severities else None,
        }

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether another attempt may succeed after *exc*."""
        if isinstance(exc, DeliveryError):
            return exc.retryable
        return isinstance(exc, (OSError, TimeoutError))

    def deliver(
        self, notification: Mapping[str, Any], delivery: Delivery, wait: Callable[[float], bool]
    ) -> None:
        """Send with retries, filling in *delivery*. *wait(seconds)* returns True to give up."""
        for attempt in range(self.retries + 1):
            delivery.attempts = attempt + 1
            try:
                self.send(notification)
            except Exception as exc:
                delivery.error = self.error_text(exc)
                if attempt >= self.retries or not self.is_retryable(exc):
                    break
                if wait(self.retry_delay(exc, attempt)):
                    delivery.error = f"{delivery.error} (gave up: dispatcher stopping)"
                    break
            else:
                delivery.status, delivery.error = "sent", None
                delivery.finished_at = time.time()
                return
        delivery.status = "failed"
        delivery.finished_at = time.time()

    def retry_delay(self, exc: BaseException, attempt: int) -> float:
        """Seconds before the next attempt: the backoff, or longer when the server said
        ``Retry-After`` (honoured up to :attr:`max_retry_after`)."""
        delay: float = min(self.backoff * (2**attempt), 30.0)
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, (int, float)) and asked > delay:
            delay = min(float(asked), self.max_retry_after)
        return delay

    def error_text(self, exc: BaseException) -> str:
        """A one-line description of *exc* with every secret scrubbed."""
        text = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        return scrub(text, self.secrets())[:500]


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        msg = f"{name} must be a number of seconds > 0, got {value!r}"
        raise ConfigurationError(msg)


def _whole(what: str, value: Any, least: int, most: int | None = None) -> int:
    """*value* when it is a whole number from *least* (to *most*); else a ConfigurationError
    naming *what*, the value and the range accepted."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < least
        or (most is not None and value > most)
    ):
        accepted = f">= {least}" if most is None else f"from {least} to {most}"
        msg = f"{what} must be a whole number {accepted}, got {value!r}"
        raise ConfigurationError(msg)
    return value


def _alert(notification: Mapping[str, Any]) -> Mapping[str, Any]:
    alert = notification.get("alert")
    return alert if isinstance(alert, Mapping) else {}


def summary_line(notification: Mapping[str, Any]) -> str:
    """``[HIGH] title: message`` of a notification, on one line."""
    alert = _alert(notification)
    event = notification.get("event", "firing")
    prefix = "RESOLVED " if event == "resolved" else ""
    severity = str(alert.get("severity", "")).upper()
    text = f"{prefix}[{severity}] {alert.get('title', '')}: {alert.get('message', '')}"
    return writable_text(" ".join(text.split()))


class LogNotificationChannel(NotificationChannel):
    """Writes each notification to the ``pytest_kari_debug.alerts`` logger and keeps the lines.

    The level follows the severity (low INFO, medium WARNING, high ERROR, critical CRITICAL);
    each alert is one line of at most *max_line_chars* characters. The other keywords are
    the :class:`DeliveryOptions`.
    """

    kind = "log"
    background = False

    def __init__(
        self,
        channel_id: str = "log",
        name: str = "Log",
        *,
        logger: logging.Logger | None = None,
        max_lines: int = 1000,
        max_line_chars: int = 500,
        timeout: float = 5.0,
        retries: int = 0,
        **options: Unpack[DeliveryOptions],
    ) -> None:
        super().__init__(channel_id, name, timeout=timeout, retries=retries, **options)
        #: Longest line written per alert; the rest is cut with a visible marker.
        self.max_line_chars = _whole("max_line_chars", max_line_chars, 80)
        self._logger = logger
        self.lines: deque[str] = deque(maxlen=_whole("max_lines", max_lines, 0))

    @property
    def logger(self) -> logging.Logger:
        """The logger written to (``pytest_kari_debug.alerts`` unless given), looked up at the
        first alert: a run without alerts adds no logger (pytest walks them all per phase)."""
        if self._logger is None:
            self._logger = logging.getLogger(ALERT_LOGGER)
        return self._logger

    @logger.setter
    def logger(self, logger: logging.Logger) -> None:
        self._logger = logger

    def send(self, notification: Mapping[str, Any]) -> None:
        line = truncate_text(summary_line(notification), self.max_line_chars)
        self.lines.append(line)
        level = _LOG_LEVELS.get(str(_alert(notification).get("severity")), logging.WARNING)
        self.logger.log(level, "%s", line)


#: Default largest webhook request body (256 KiB).
MAX_PAYLOAD_BYTES = 256 * 1024


def _json_body(document: Mapping[str, Any]) -> bytes:
    # ensure_ascii: any string, a lone surrogate too, is written as a JSON escape.
    return json.dumps(document, default=safe_str, separators=(",", ":")).encode("ascii")


def _host_port(parts: urllib.parse.SplitResult) -> str:
    """The netloc of *parts* without userinfo."""
    return parts.netloc.rpartition("@")[2]


class WebhookNotificationChannel(NotificationChannel):
    """POSTs each notification as JSON to a webhook URL.

    The URL and the header values are secrets: they are sent, never shown. The body is
    ``{"version": "1", "event", "extension_id", "alert": {...}}``. The other keywords are the
    :class:`DeliveryOptions` (``send_resolved`` is on by default here).
    """

    kind = "webhook"

    def __init__(
        self,
        channel_id: str,
        name: str,
        webhook_url: str | Secret,
        headers: Mapping[str, str | Secret] | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        *,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        **options: Unpack[DeliveryOptions],
    ) -> None:
        options.setdefault("send_resolved", True)
        super().__init__(channel_id, name, timeout=timeout, retries=retries, **options)
        #: Largest request body; longer alert texts are cut to fit (see :attr:`truncated`).
        self.max_payload_bytes = _whole(
            f"max_payload_bytes of channel {channel_id!r}", max_payload_bytes, 1024
        )
        #: How many payloads had to be cut to fit.
        self.truncated = 0
        url = Secret(webhook_url)
        try:
            parsed = urllib.parse.urlsplit(url.reveal())
            parsed.port  # noqa: B018 - a bad port raises here, not at the first alert
        except ValueError as exc:
            msg = f"webhook_url of channel {channel_id!r} is not a valid URL: {exc}"
            raise ConfigurationError(scrub(msg, [url.reveal()])) from None
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            msg = (
                f"webhook_url of channel {channel_id!r} must be an http:// or https:// URL"
                f" with a host (got scheme {parsed.scheme!r})"
            )
            raise ConfigurationError(msg)
        self._url = url
        #: The URL requests go to: without userinfo, which becomes basic auth instead.
        self._target = Secret(urllib.parse.urlunsplit(parsed._replace(netloc=_host_port(parsed))))
        self._auth: Secret | None = None
        if parsed.username is not None or parsed.password is not None:
            user = urllib.parse.unquote(parsed.username or "")
            password = urllib.parse.unquote(parsed.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._auth = Secret(f"Basic {token}")
        self._headers: dict[str, Secret] = {}
        for key, value in (headers or {}).items():
            if not isinstance(key, str) or not isinstance(value, (str, Secret)):
                msg = f"headers of channel {channel_id!r} must map strings to strings"
                raise ConfigurationError(msg)
            text = value.reveal() if isinstance(value, Secret) else value
            if any(c in key + text for c in "\r\n"):
                msg = f"header {key!r} of channel {channel_id!r} contains a line break"
                raise ConfigurationError(msg)
            self._headers[key] = Secret(value)

    @property
    def webhook_url(self) -> Secret:
        return self._url

    @property
    def headers(self) -> dict[str, Secret]:
        return dict(self._headers)

    def __repr__(self) -> str:
        names = ", ".join(sorted(self._headers))
        return f"<WebhookNotificationChannel {self.channel_id!r} url=<secret> headers=[{names}]>"

    def secrets(self) -> list[str]:
        url = self._url.reveal()
        parts = urllib.parse.urlsplit(url)
        found = [url, self._target.reveal(), parts.path, parts.query, parts.password or ""]
        found += [urllib.parse.unquote(parts.password or ""), parts.username or ""]
        if self._auth is not None:
            found += [self._auth.reveal(), self._auth.reveal().split(" ", 1)[1]]
        found += [v.reveal() for v in self._headers.values()]
        return [s for s in found if s and s != "/"]

    def describe(self) -> dict[str, Any]:
        data = super().describe()
        host = urllib.parse.urlsplit(self._url.reveal()).hostname
        data.update(url="<secret>", host=host, headers=sorted(self._headers))
        return data

    def payload(self, notification: Mapping[str, Any]) -> bytes:
        """The JSON body of *notification*, at most :attr:`max_payload_bytes` long.

        A body that is too long has its longest alert texts cut (each with a visible marker)
        until it fits; ``"truncated": {"characters": N, "fields": [...]}`` says what was cut.
        """
        document: dict[str, Any] = {"version": "1", **notification}
        body = _json_body(document)
        if len(body) <= self.max_payload_bytes:
            return body
        alert = dict(_alert(notification))
        cut: dict[str, int] = {}
        while len(body) > self.max_payload_bytes:
            texts = [(len(v), k) for k, v in alert.items() if isinstance(v, str) and len(v) > 64]
            if not texts:  # nothing left to cut: send the alert's identity only
                keep = ("alert_id", "alert_type", "severity", "title", "status", "rule")
                alert = {k: alert[k] for k in keep if k in alert and len(str(alert[k])) < 256}
                cut["[other fields]"] = cut.get("[other fields]", 0) + 1
                document = {**document, "alert": alert}
                body = _json_body(document)
                break
            size, key = max(texts)
            excess = len(body) - self.max_payload_bytes
            keep_chars = max(32, size - excess - 100, size // 2 if excess > size else 0)
            keep_chars = min(keep_chars, size - 1)
            alert[key] = truncate_text(alert[key], keep_chars)
            cut[key] = cut.get(key, 0) + size - keep_chars
            document = {
                **document,
                "alert": alert,
                "truncated": {"characters": sum(cut.values()), "fields": sorted(cut)},
            }
            body = _json_body(document)
        self.truncated += 1
        return body

    def send(self, notification: Mapping[str, Any]) -> None:
        import urllib.error
        import urllib.request

        body = self.payload(notification)
        headers = {"Content-Type": "application/json", "User-Agent": "pytest-kari-debug"}
        if self._auth is not None:
            headers["Authorization"] = self._auth.reveal()
        headers.update({k: v.reveal() for k, v in self._headers.items()})
        request = urllib.request.Request(
            self._target.reveal(), data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(65536)
        except urllib.error.HTTPError as exc:
            retryable = exc.code >= 500 or exc.code == 429
            retry_after = parse_retry_after(exc.headers.get("Retry-After")) if exc.headers else None
            exc.close()
            raise DeliveryError(
                f"HTTP {exc.code} {exc.reason}", retryable=retryable, retry_after=retry_after
            ) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            text = (
                f"{type(reason).__name__}: {reason}"
                if isinstance(reason, BaseException)
                else f"{reason}"
            )
            raise DeliveryError(f"connection failed: {text}", retryable=True) from None
        except TimeoutError as exc:
            raise DeliveryError(
                f"timed out after {self.timeout:g} s ({exc})", retryable=True
            ) from None
        except (ConnectionError, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from None


def _addresses(channel_id: str, sender: str, to_addresses: Iterable[str]) -> list[str]:
    """The recipients of an e-mail channel: one or more addresses, each plain (no line
    break, list separator or angle bracket that could add a header or a recipient)."""
    recipients = [to_addresses] if isinstance(to_addresses, str) else list(to_addresses)
    if not recipients or not all(isinstance(a, str) and "@" in a for a in recipients):
        msg = f"to_addresses of channel {channel_id!r} must be addresses, got {recipients!r}"
        raise ConfigurationError(msg)
    for address in [sender, *recipients]:
        if any(c in address for c in "\r\n,;<>"):
            msg = f"e-mail address {address!r} of channel {channel_id!r} is not a plain address"
            raise ConfigurationError(msg)
    return recipients


class EmailNotificationChannel(NotificationChannel):
    """Sends each notification as an e-mail with a plain-text and an HTML body over SMTP.

    ``use_starttls`` upgrades the connection before ``login`` (``use_ssl`` connects with TLS
    from the start); *ssl_context* defaults to the system's trusted CAs. The password is a
    secret. The other keywords are the :class:`DeliveryOptions`.
    """

    kind = "email"

    def __init__(
        self,
        channel_id: str,
        name: str,
        smtp_host: str,
        smtp_port: int = 25,
        from_address: str = "kari-debug@localhost",
        to_addresses: Iterable[str] = (),
        *,
        username: str | None = None,
        password: str | Secret | None = None,
        use_starttls: bool = False,
        use_ssl: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        subject_prefix: str = "[kari-debug]",
        timeout: float = 10.0,
        retries: int = 2,
        **options: Unpack[DeliveryOptions],
    ) -> None:
        super().__init__(channel_id, name, timeout=timeout, retries=retries, **options)
        recipients = _addresses(channel_id, from_address, to_addresses)
        if not isinstance(smtp_host, str) or not smtp_host:
            msg = f"smtp_host of channel {channel_id!r} must be a host name, got {smtp_host!r}"
            raise ConfigurationError(msg)
        if use_starttls and use_ssl:
            msg = f"channel {channel_id!r}: use_starttls and use_ssl exclude each other"
            raise ConfigurationError(msg)
        if (username is None) != (password is None):
            msg = f"channel {channel_id!r}: give both username and password, or neither"
            raise ConfigurationError(msg)
        self.smtp_host = smtp_host
        self.smtp_port = _whole(f"smtp_port of channel {channel_id!r}", smtp_port, 1, 65535)
        self.from_address = from_address
        self.to_addresses = recipients
        self.username = username
        self._password = None if password is None else Secret(password)
        self.use_starttls = use_starttls
        self.use_ssl = use_ssl
        self.ssl_context = ssl_context
        self.subject_prefix = subject_prefix

    def __repr__(self) -> str:
        login = f" user={self.username!r} password=<secret>" if self.username else ""
        where = f"{self.smtp_host}:{self.smtp_port}"
        return f"<EmailNotificationChannel {self.channel_id!r} {where}{login}>"

    def secrets(self) -> list[str]:
        return [self._password.reveal()] if self._password is not None else []

    def describe(self) -> dict[str, Any]:
        data = super().describe()
        data.update(
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            to=list(self.to_addresses),
            starttls=self.use_starttls,
            ssl=self.use_ssl,
            login=self.username is not None,
        )
        return data

    def build_message(self, notification: Mapping[str, Any]) -> EmailMessage:
        """The e-mail of *notification*: headers, a plain-text part and an HTML part."""
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        alert = _alert(notification)
        message = EmailMessage()
        subject = f"{self.subject_prefix} {summary_line(notification)}".strip()
        # A header must stay one line: alert text is user data.
        message["Subject"] = " ".join(subject.split())[:200]
        message["From"] = self.from_address
        message["To"] = ", ".join(self.to_addresses)
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="kari-debug.local")
        rows = [
            ("event", notification.get("event", "firing")),
            ("extension", notification.get("extension_id", "")),
            *((key, alert.get(key)) for key in _EMAIL_FIELDS),
        ]
        rows = [(k, v) for k, v in rows if v not in (None, "", [], {})]
        width = max(len(k) for k, _ in rows)
        plain = writable_text("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))
        message.set_content(plain + "\n")
        cells = writable_text(
            "".join(
                f"<tr><th align='left'>{html.escape(str(k))}</th>"
                f"<td>{html.escape(safe_str(v))}</td></tr>"
                for k, v in rows
            )
        )
        title = html.escape(summary_line(notification))
        message.add_alternative(
            f"<html><body><h3>{title}</h3><table>{cells}</table></body></html>\n", subtype="html"
        )
        return message

    def send(self, notification: Mapping[str, Any]) -> None:
        import smtplib
        import ssl

        message = self.build_message(notification)
        context = self.ssl_context or ssl.create_default_context()
        try:
            if self.use_ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.smtp_host, self.smtp_port, timeout=self.timeout, context=context
                )
            else:
                client = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout)
            with client:
                client.ehlo()
                if self.use_starttls:
                    client.starttls(context=context)
                    client.ehlo()
                if self.username is not None and self._password is not None:
                    client.login(self.username, self._password.reveal())
                client.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login refused ({exc.smtp_code})", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            retryable = 400 <= exc.smtp_code < 500
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryError(f"SMTP {exc.smtp_code}: {text}", retryable=retryable) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"SMTP recipients refused: {sorted(exc.recipients)}", retryable=False
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"SMTP server does not support it: {exc}", retryable=False
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from None


_EMAIL_FIELDS = ("severity", "title", "message", "rule", "metric_name", "current_value",
                 "threshold_value", "source", "status", "occurrences", "session_id", "labels",
                 "alert_id")  # fmt: skip


# Dispatching ---------------------------------------------------------------------------------
_STOP = object()


class _Worker:
    def __init__(self, dispatcher: NotificationDispatcher, channel: NotificationChannel) -> None:
        self.dispatcher = dispatcher
        self.channel = channel
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=dispatcher.queue_size)
        self.thread = threading.Thread(
            target=self.run, name=f"kari-notify-{channel.channel_id}", daemon=True
        )
        self.thread.start()

    def run(self) -> None:
        while True:
            job = self.queue.get()
            try:
                if job is _STOP:
                    return
                notification, delivery = job
                if self.dispatcher.stopped.is_set():
                    delivery.status, delivery.error = "dropped", "dispatcher stopped"
                    continue
                self.channel.deliver(notification, delivery, self.dispatcher.stopped.wait)
                self.dispatcher.finished(delivery)
            except Exception as exc:  # a broken channel must never kill the worker
                problem = self.channel.error_text(exc)
                self.dispatcher.diagnose(f"channel {self.channel.channel_id!r} raised {problem}")
            finally:
                self.dispatcher.done()


class NotificationDispatcher:
    """Delivers notifications off the caller's thread: one daemon worker per channel.

    Each worker has a bounded queue; a notification that finds it full is dropped and
    counted. :meth:`close` waits at most its timeout for queued deliveries, then gives up on
    the rest (they are marked dropped) and never keeps the process alive.
    """

    def __init__(
        self,
        queue_size: int = 1000,
        on_finished: Callable[[Delivery], None] | None = None,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.queue_size = queue_size
        self.stopped = threading.Event()
        self.dropped = 0
        #: Notifications not delivered (failed or dropped) since the last :meth:`flush`.
        self.undelivered = 0
        self._workers: dict[str, _Worker] = {}
        self._pending = 0
        self._idle = threading.Condition()
        self._on_finished = on_finished
        self._on_problem = on_problem
        self._lock = threading.Lock()

    def submit(
        self, channel: NotificationChannel, notification: Mapping[str, Any], delivery: Delivery
    ) -> None:
        """Deliver *notification* to *channel*; inline for channels that cannot block."""
        delivery.queued_at = time.time()
        if self.stopped.is_set():
            delivery.status, delivery.error = "dropped", "dispatcher stopped"
            self.dropped += 1
            self.undelivered += 1
            return
        if not channel.background:
            channel.deliver(notification, delivery, lambda _s: True)
            self.finished(delivery)
            return
        with self._lock:
            worker = self._workers.get(channel.channel_id)
            if worker is None or worker.channel is not channel or not worker.thread.is_alive():
                worker = self._workers[channel.channel_id] = _Worker(self, channel)
        with self._idle:
            self._pending += 1
        try:
            worker.queue.put_nowait((notification, delivery))
        except queue.Full:
            self.done()
            self.dropped += 1
            self.undelivered += 1
            delivery.status = "dropped"
            delivery.error = f"queue of channel {channel.channel_id!r} full ({self.queue_size})"

    def finished(self, delivery: Delivery) -> None:
        if delivery.status != "sent":
            with self._lock:
                self.undelivered += 1
        if self._on_finished is not None:
            self._on_finished(delivery)

    def diagnose(self, message: str) -> None:
        if self._on_problem is not None:
            self._on_problem(message)

    def done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending <= 0:
                self._idle.notify_all()

    @property
    def pending(self) -> int:
        """Notifications queued or being delivered."""
        return self._pending

    def flush(self, timeout: float) -> bool:
        """Wait up to *timeout* seconds for every queued delivery.

        True only when every notification since the last flush was delivered: False when
        one is still pending, failed or was dropped (their deliveries say why).
        """
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        with self._lock:
            delivered, self.undelivered = self.undelivered == 0, 0
        return delivered

    def close(self, timeout: float = 5.0) -> bool:
        """Let queued deliveries finish for at most *timeout* s, then stop every worker.

        Closing again returns at once.
        """
        if self.stopped.is_set():
            return self._pending <= 0
        finished = self.flush(timeout) if timeout > 0 else self._pending == 0
        self.stopped.set()
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            while True:  # whatever is still queued is dropped, not delivered
                try:
                    job = worker.queue.get_nowait()
                except queue.Empty:
                    break
                if job is not _STOP:
                    job[1].status, job[1].error = "dropped", "dispatcher stopped"
                    self.dropped += 1
                    self.undelivered += 1
                    self.done()
            with contextlib.suppress(queue.Full):
                worker.queue.put_nowait(_STOP)
        for worker in workers:
            worker.thread.join(0.2)
        return finished

    def restart(self) -> None:
        """Accept notifications again after :meth:`close`."""
        self.stopped.clear()
