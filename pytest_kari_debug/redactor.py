"""Redaction by field name: the one rule for log fields, span tags and event attributes.

A field whose normalised name is secret keeps :data:`REDACTED` instead of its value; URLs
lose their userinfo and secret query values; text goes through the scrubber's patterns.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping
from typing import Any

from .scrub import DEFAULT_SCRUBBER, TextScrubber
from .values import MAX_DEPTH, MAX_ITEMS, MAX_TEXT_LENGTH, ValueSerializer, plain_fields

REDACTED = "[REDACTED]"


# Sanitising ------------------------------------------------------------------------------
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")


def normalise_field_name(name: str) -> str:
    """``X-Api-Key`` / ``apiKey`` / ``db.password`` -> ``x_api_key`` / ``api_key`` /
    ``db_password`` (dots separate words too: OpenTelemetry names attributes that way)."""
    name = _CAMEL.sub(r"\1_\2", name).lower()
    return name.replace("-", "_").replace(" ", "_").replace(".", "_")


class Redactor(ValueSerializer):
    """The serializer of log fields, span tags and event attributes: redacts secret-named
    fields (nested too), secrets in URLs and secrets in text; cuts what is unbounded.

    A field is secret when its normalised name (camelCase, dashes and dots become ``_``,
    lower case) equals one of *names* or ends with ``_<name>``: ``password``,
    ``db_password``, ``X-Api-Key``, ``accessToken`` and ``http.request.header.authorization``
    match ``password``, ``api_key``, ``token`` and ``authorization``; ``max_tokens`` does not.
    """

    def __init__(
        self,
        names: Iterable[str],
        *,
        max_repr_length: int = 2000,
        max_text_length: int = MAX_TEXT_LENGTH,
        max_depth: int = MAX_DEPTH,
        max_items: int = MAX_ITEMS,
        scrubber: TextScrubber | None = None,
    ) -> None:
        self.scrubber = scrubber or DEFAULT_SCRUBBER
        super().__init__(
            max_repr_length=max_repr_length,
            max_text_length=max_text_length,
            max_depth=max_depth,
            max_items=max_items,
            text_filter=self.scrub_text,
        )
        self.names = frozenset(normalise_field_name(n) for n in names if n)
        self.suffixes = tuple("_" + n for n in self.names)
        self._secret_keys: dict[str, bool] = {}
        #: The known names that are not secret (a set: the hot path's check is a C call).
        self._plain_keys: set[str] = set()
        #: Texts the scrubber found clean (at most 512 characters), kept as they are unless
        #: this serializer cuts text shorter than that.
        self._clean: Container[str] = self.scrubber.known_clean if max_text_length >= 512 else ()

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

    def tag(self, key: str, value: Any) -> Any:
        """The kept value of one field *key* (a span tag): :data:`REDACTED` when secret."""
        if key in self._plain_keys or not self.is_secret(key):
            return self.value(value)
        return REDACTED

    def scrub_text(self, text: str) -> str:
        """*text* without URL userinfo, secret query values and secrets the scrubber finds."""
        if "://" in text:
            text = self.url_text(text)
        return self.scrubber.scrub(text)

    def fields(self, fields: Mapping[Any, Any]) -> dict[str, Any]:
        """Return *fields* safe to store: redacted, JSON-able, bounded."""
        if type(fields) is dict and plain_fields(
            fields, self._plain_keys.__contains__, self.plain_text, self._clean
        ):
            return fields
        return self.mapping(fields)

    def plain_text(self, text: str) -> bool:
        """Whether *text* is kept as it is: short ASCII without a URL or a secret."""
        return text in self._clean or not (
            len(text) > self.max_text_length
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
