"""Exceptions and warnings raised by pytest-kari-debug."""

from __future__ import annotations


class KariDebugError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(KariDebugError, ValueError):
    """A configuration value, option, marker argument or API argument is not acceptable."""


class SessionError(KariDebugError, LookupError):
    """A debug session id is unknown, or the session is already stopped."""


class StoreError(KariDebugError):
    """The store (a SQLite file or a PostgreSQL server) cannot be opened, read or written."""


class StoreTimeoutError(StoreError):
    """The store's server did not answer within the bound its caller set."""


class ExportError(KariDebugError):
    """An export could not be produced or written."""


class KariDebugAssertion(AssertionError):
    """A verdict the user asked for (alert, budget, gate) failed a test."""


class KariDebugWarning(UserWarning):
    """An internal problem of the plugin; the user's test results are unaffected."""
