"""Secrets in free text (messages, exception texts, failure text) replaced before storage.

Built-in patterns find bearer/basic credentials, JWTs, AWS access key ids, ``password=``-style
assignments, private key blocks and URLs with userinfo; a user adds regular expressions with
``kari_redact_patterns`` (one per line). Field *names* are redacted by the logger's redactor;
this module looks at *text*.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from .config import compile_user_pattern
from .selfcost import first_use

REDACTED = "[REDACTED]"

_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA")
_ASSIGNED = ("password", "passwd", "pwd", "secret", "api_key", "api-key", "apikey",
             "access_key", "access-key", "accesskey", "token")  # fmt: skip

#: ``(name, pattern)`` of the built-in secrets. The first group of a pattern, when it has
#: one, is the secret part replaced; otherwise the whole match is.
BUILTIN_PATTERNS: tuple[tuple[str, str], ...] = (
    ("private key block",
     r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----((?:.|\n)*?)"
     r"(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)"),
    ("bearer or basic credentials",
     r"(?i)\b(?:bearer|basic|token)[ \t]+([A-Za-z0-9\-._~+/]{8,}=*)"),
    ("JSON web token", r"\b(eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)"),
    ("AWS access key id", rf"\b((?:{'|'.join(_AWS_PREFIXES)})[A-Z0-9]{{16}})\b"),
    ("password-like assignment",
     r"(?i)(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|token)"
     r"[\"']?[ \t]*[=:][ \t]*(?!\[REDACTED\])(\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&\"'<>)}\]]+)"),
    ("URL userinfo", r"://([^\s/@:\"'<>]*(?::[^\s/@\"'<>]*)?)@"),
)  # fmt: skip


class _Compiled:
    """The built-in patterns, compiled (a third of a millisecond each) when a scrubber first
    looks at a text: many runs scrub none."""

    __slots__ = ("assignment", "aws", "aws_hint", "credentials", "jwt", "key", "userinfo")

    def __init__(self) -> None:
        self.key, self.credentials, self.jwt, self.aws, self.assignment, self.userinfo = (
            re.compile(source) for _, source in BUILTIN_PATTERNS
        )
        #: What an AWS key id needs: its first and fourth letters are both "A".
        self.aws_hint = re.compile(r"A[A-Z]{2}A[A-Z0-9]{16}")


_compiled: _Compiled | None = None


def _compile() -> _Compiled:
    global _compiled
    if _compiled is None:
        with first_use():  # often inside a test (its first log line): not the test's time
            _compiled = _Compiled()
    return _compiled


def _builtin_candidates(text: str) -> list[re.Pattern[str]]:
    """The built-in patterns worth trying on *text*: cheap substring tests first."""
    patterns = _compiled or _compile()
    found = []
    if "-----" in text:
        found.append(patterns.key)
    if "eyJ" in text:
        found.append(patterns.jwt)
    if "://" in text:
        found.append(patterns.userinfo)
    if patterns.aws_hint.search(text) is not None:
        found.append(patterns.aws)
    assigned = "=" in text or ":" in text
    low = text.lower()
    if "bearer" in low or "basic" in low or "token" in low:
        found.append(patterns.credentials)
        if assigned:
            found.append(patterns.assignment)
    elif assigned and (
        "pass" in low or "pwd" in low or "secret" in low or "api" in low or "access" in low
    ):  # (what every word of _ASSIGNED holds: most texts skip the loop)
        for word in _ASSIGNED:  # (a loop, not any(): no generator per scrubbed text)
            if word in low:
                found.append(patterns.assignment)
                break
    return found


class TextScrubber:
    """Replaces the secrets its patterns find in a text with :data:`REDACTED`."""

    __slots__ = ("_builtin", "_user", "known_clean", "sources")

    def __init__(self, extra_patterns: Iterable[str] = (), *, builtin: bool = True) -> None:
        self._builtin = builtin
        #: Texts seen to hold no secret (log messages repeat): a bounded set, reset when full.
        self.known_clean: set[str] = set()
        self._user = tuple(compile_user_pattern(pattern) for pattern in extra_patterns)
        chosen = BUILTIN_PATTERNS if builtin else ()
        self.sources = tuple(source for _, source in chosen) + tuple(p.pattern for p in self._user)

    def _active(self, text: str) -> list[re.Pattern[str]]:
        found = _builtin_candidates(text) if self._builtin else []
        if self._user:
            found.extend(self._user)
        return found

    def maybe_secret(self, text: str) -> bool:
        """Whether *text* holds something :meth:`scrub` would replace."""
        if text in self.known_clean:
            return False
        if any(pattern.search(text) is not None for pattern in self._active(text)):
            return True
        self._remember(text)
        return False

    def scrub(self, text: str) -> str:
        """*text* with every secret the patterns find replaced by :data:`REDACTED`."""
        if text in self.known_clean:
            return text
        scrubbed = text
        for pattern in self._active(text):
            scrubbed = pattern.sub(_replace, scrubbed)
        if scrubbed is text or scrubbed == text:
            self._remember(text)
            return text
        return scrubbed

    def scrub_once(self, text: str) -> str:
        """:meth:`scrub` for a text unlikely to come again (a test's captured output or failure
        text, unique by its line numbers): a clean one is not remembered, so it never pushes
        out the log messages that repeat."""
        if text in self.known_clean:
            return text
        scrubbed = text
        for pattern in self._active(text):
            scrubbed = pattern.sub(_replace, scrubbed)
        return text if scrubbed == text else scrubbed

    def _remember(self, text: str) -> None:
        if len(text) <= 512:
            clean = self.known_clean
            if len(clean) >= 4096:
                clean.clear()
            clean.add(text)


def _replace(match: re.Match[str]) -> str:
    if match.re.groups == 0 or match.start(1) < 0:
        return REDACTED
    whole, start, end = match.group(0), match.start(1), match.end(1)
    offset = match.start(0)
    return whole[: start - offset] + REDACTED + whole[end - offset :]


@functools.lru_cache(maxsize=32)
def scrubber_for(patterns: tuple[str, ...]) -> TextScrubber:
    """The scrubber with the built-in patterns plus *patterns* (shared per pattern set)."""
    return TextScrubber(patterns)


DEFAULT_SCRUBBER = scrubber_for(())


def scrub_text(text: str, patterns: tuple[str, ...] = ()) -> str:
    """*text* with the secrets of the built-in patterns and *patterns* replaced."""
    return scrubber_for(patterns).scrub(text)


__all__ = [
    "BUILTIN_PATTERNS",
    "DEFAULT_SCRUBBER",
    "REDACTED",
    "TextScrubber",
    "compile_user_pattern",
    "scrub_text",
    "scrubber_for",
]
