"""Sanitising log fields: secret names redacted, URLs scrubbed, exceptions as text."""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from ..scrub import DEFAULT_SCRUBBER, TextScrubber
from ..values import (
    MAX_TEXT_LENGTH,
    ValueSerializer,
    bounded_call,
    clean_text,
    plain,
    plain_fields,
    safe_str,
)

REDACTED = "[REDACTED]"


# Sanitising ------------------------------------------------------------------------------
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")


def normalise_field_name(name: str) -> str:
    """``X-Api-Key`` / ``apiKey`` / ``API_KEY`` -> ``x_api_key`` / ``api_key`` / ``api_key``."""
    return _CAMEL.sub(r"\1_\2", name).lower().replace("-", "_").replace(" ", "_")


class Redactor(ValueSerializer):
    """The serializer of log fields: redacts secret-named fields (nested too), secrets in
    URLs and secrets in text; cuts what is unbounded.

    A field is secret when its normalised name (camelCase and dashes become ``_``, lower
    case) equals one of *names* or ends with ``_<name>``: ``password``, ``db_password``,
    ``X-Api-Key`` and ``accessToken`` match ``password``, ``api_key`` and ``token``;
    ``max_tokens`` does not.
    """

    def __init__(
        self,
        names: Iterable[str],
        *,
        max_repr_length: int = 2000,
        scrubber: TextScrubber | None = None,
    ) -> None:
        self.scrubber = scrubber or DEFAULT_SCRUBBER
        super().__init__(max_repr_length=max_repr_length, text_filter=self.scrub_text)
        self.names = frozenset(normalise_field_name(n) for n in names if n)
        self.suffixes = tuple("_" + n for n in self.names)
        self._secret_keys: dict[str, bool] = {}
        #: The known names that are not secret (a set: the hot path's check is a C call).
        self._plain_keys: set[str] = set()

    def is_secret(self, key: str) -> bool:
        """Whether field *key* holds a secret."""
        known = self._secret_keys.get(key)
        if known is None:
            name = normalise_field_name(key)
            known = name in self.names or name.endswith(self.suffixes)
            if len(self._secret_keys) < 10_000:
                self._secret_keys[key] = known
                if not known:
                    self._plain_keys.add(key)
        return known

    def scrub_text(self, text: str) -> str:
        """*text* without URL userinfo, secret query values and secrets the scrubber finds."""
        if "://" in text:
            text = self.url_text(text)
        return self.scrubber.scrub(text)

    def kept_key(self, key: Any) -> bool:
        """Whether field *key* is kept as it is: a known name that is not secret."""
        return key in self._plain_keys

    def fields(self, fields: Mapping[Any, Any]) -> dict[str, Any]:
        """Return *fields* safe to store: redacted, JSON-able, bounded."""
        if type(fields) is dict and plain_fields(
            fields, self._plain_keys.__contains__, self.plain_text, self.scrubber.known_clean
        ):
            return fields
        return self.mapping(fields)

    def plain_text(self, text: str) -> bool:
        """Whether *text* is kept as it is: short ASCII without a URL or a secret."""
        return text in self.scrubber.known_clean or not (
            len(text) > MAX_TEXT_LENGTH
            or "://" in text
            or not text.isascii()
            or self.scrubber.maybe_secret(text)
        )

    def field(self, key: str, value: Any, depth: int, seen: set[int]) -> Any:
        """A secret-named field's value is :data:`REDACTED`; others are serialized."""
        return REDACTED if self.is_secret(key) else self.value(value, depth + 1, seen)

    def url_text(self, text: str) -> str:
        """*text* with every URL's userinfo removed and its secret query values redacted."""
        if "://" not in text:
            return text
        return _URL.sub(lambda match: self.url(match.group(0)), text)

    def url(self, url: str) -> str:
        """One URL without userinfo and with the values of secret query keys redacted."""
        scheme, sep, rest = url.partition("://")
        if not sep:
            return url
        end = len(rest)
        for stop in "/?#":
            found = rest.find(stop)
            if found != -1:
                end = min(end, found)
        authority, tail = rest[:end], rest[end:]
        if "@" in authority:
            authority = authority.rpartition("@")[2]
        path, qmark, query = tail.partition("?")
        fragment = ""
        if qmark:
            query, hashmark, frag = query.partition("#")
            fragment = hashmark + frag
            parts = []
            for pair in query.split("&"):
                key, eq, _value = pair.partition("=")
                if eq and self.is_secret(_unquote(key)):
                    parts.append(f"{key}={REDACTED}")
                else:
                    parts.append(pair)
            query = "&".join(parts)
        return f"{scheme}://{authority}{path}{qmark}{query}{fragment}"


def _unquote(text: str) -> str:
    from urllib.parse import unquote_plus

    try:
        return unquote_plus(text)
    except Exception:
        return text


def _stdlib_message(record: logging.LogRecord) -> Any:
    """``record.getMessage()``; bounded in time when its arguments are not plain values."""
    args = record.args
    if type(record.msg) is str or plain(record.msg):
        if not args:
            return record.getMessage()
        if type(args) is tuple:
            for arg in args:  # (a loop, not all(): this runs for every captured record)
                if type(arg) is not str and not plain(arg):
                    break
            else:
                return record.getMessage()
    return bounded_call(logging.LogRecord.getMessage, record)


def exception_info(
    exc_info: Any, *, limit: int | None = None, scrubber: TextScrubber = DEFAULT_SCRUBBER
) -> dict[str, str] | None:
    """``{type, message, traceback}`` of an exception, an ``exc_info`` tuple or ``True``;
    secrets in the message and traceback are scrubbed."""
    if exc_info is None or exc_info is False:
        return None
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[1] is None:
        return None
    kind, value, tb = exc_info
    try:
        name = kind.__qualname__
        module = getattr(kind, "__module__", "builtins")
        if module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
    except Exception:
        name = "Exception"
    try:
        job = (kind, value, tb, limit)
        chained = value.__cause__ is not None or value.__context__ is not None
        if plain(value) and not chained:
            text = "".join(_format_exception(job))
        else:
            text = "".join(bounded_call(_format_exception, job, 2.0))
    except Exception as exc:  # a broken or slow __str__ inside the chain, say
        text = f"<traceback unavailable: {type(exc).__name__}: {exc}>"
    return {
        "type": clean_text(name, 500),
        "message": scrubber.scrub(safe_str(value)),
        "traceback": scrubber.scrub(clean_text(text)),
    }


def _format_exception(args: tuple[Any, Any, Any, int | None]) -> list[str]:
    kind, value, tb, limit = args
    return traceback.format_exception(kind, value, tb, limit=limit)
