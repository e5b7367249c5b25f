"""Text every writer can write: what UTF-8 cannot hold (a lone surrogate from a non-UTF-8 file
name, say) backslash-escaped. Shared by the value serializer and the store's backends."""

from __future__ import annotations


def encode_text(text: str) -> bytes:
    """*text* as UTF-8 for a writer: what UTF-8 cannot hold (surrogates) is backslash-escaped."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def writable_text(text: str) -> str:
    """*text* with what UTF-8 cannot hold backslash-escaped (unchanged when it can)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
