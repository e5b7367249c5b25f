"""Classification of errors into categories with a suggestion, and user rules."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import urllib.error

import pytest

from pytest_kari_debug.config import DebugConfiguration
from pytest_kari_debug.errors import ErrorTracker
from pytest_kari_debug.errors.classify import CATEGORIES, SUGGESTIONS, ErrorClassifier


class UpstreamTimeout(Exception):
    """A third-party-looking exception named after a timeout."""


class ValidationError(ValueError):
    """Like pydantic's: a ValueError subclass."""


class QuotaExceededError(Exception):
    """A resource limit reached."""


def _json_error() -> json.JSONDecodeError:
    try:
        json.loads("{nope")
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("json.loads accepted bad JSON")


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (ValueError("bad value"), "validation"),
        (ValidationError("field x"), "validation"),
        (_json_error(), "validation"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "validation"),
        (ConnectionRefusedError("refused"), "network"),
        (socket.gaierror("name resolution"), "network"),
        (urllib.error.URLError("down"), "network"),
        (TimeoutError("slow"), "timeout"),
        (subprocess.TimeoutExpired("cmd", 1.0), "timeout"),
        (UpstreamTimeout("late"), "timeout"),
        (PermissionError("denied"), "permission"),
        (MemoryError(), "resource"),
        (QuotaExceededError("too much"), "resource"),
        (OSError(errno.ENOSPC, "No space left on device"), "resource"),
        (OSError(errno.ECONNRESET, "reset"), "network"),
        (FileNotFoundError("settings.toml"), "configuration"),
        (ModuleNotFoundError("No module named 'yaml'"), "dependency"),
        (ImportError("cannot import name x"), "dependency"),
        (AssertionError("assert 1 == 2"), "assertion"),
        (TypeError("unsupported operand"), "programming"),
        (AttributeError("'NoneType' object has no attribute 'x'"), "programming"),
        (KeyError("user"), "programming"),
        (IndexError("list index out of range"), "programming"),
        (RecursionError("maximum recursion depth exceeded"), "programming"),
        (RuntimeError("connection reset by peer"), "network"),
        (RuntimeError("request timed out after 5s"), "timeout"),
        (RuntimeError("permission denied for tenant"), "permission"),
        (RuntimeError("environment variable KARI_TOKEN_URL not configured"), "configuration"),
        (RuntimeError("something odd"), "unknown"),
        (Exception("field must be positive"), "validation"),
    ],
)
def test_exceptions_are_classified_by_hierarchy_errno_and_message(
    exc: BaseException, category: str
) -> None:
    """Each exception lands in the category its type hierarchy, errno or message says."""
    found = ErrorClassifier().classify(type(exc).__name__, str(exc), exc)
    assert found.category == category
    assert found.suggestion == SUGGESTIONS[category]


@pytest.mark.parametrize(
    ("error_type", "message", "category"),
    [
        ("ValidationError", "Invalid input data", "validation"),
        ("httpx.ConnectTimeout", "", "timeout"),
        ("requests.exceptions.ConnectionError", "", "network"),
        ("AuthenticationFailed", "", "permission"),
        ("ConfigError", "", "configuration"),
        ("RateLimitExceeded", "", "resource"),
        ("CustomError", "HTTP 503 service unavailable", "network"),
        ("CustomError", "no module named 'numpy'", "dependency"),
        ("CustomError", "", "unknown"),
    ],
)
def test_type_names_without_a_class_are_classified(
    error_type: str, message: str, category: str
) -> None:
    """record_error's type names (no class at hand) are classified by name and message."""
    assert ErrorClassifier().category_of(error_type, message) == category


def test_every_category_has_a_suggestion() -> None:
    """Every built-in category names what to check first."""
    assert set(CATEGORIES) == set(SUGGESTIONS)
    assert all(len(text) > 20 for text in SUGGESTIONS.values())


def test_user_rules_come_first_and_can_add_categories() -> None:
    """A user rule overrides the built-in classification and may add its own category."""
    classifier = ErrorClassifier()
    classifier.add_rule(
        "billing", patterns=[r"invoice \d+"], suggestion="check the billing service"
    )
    classifier.add_rule("network", types=[KeyError])
    classifier.add_rule("network", names=["UpstreamTimeout"])
    assert classifier.classify("ValueError", "invoice 12 rejected").category == "billing"
    assert classifier.classify("ValueError", "invoice 12").suggestion == "check the billing service"
    assert classifier.category_of("KeyError", "x", KeyError("x")) == "network"
    assert classifier.category_of("x", "", UpstreamTimeout()) == "network"
    assert "billing" in classifier.categories
    classifier.set_suggestion("network", "ping the gateway first")
    assert classifier.classify("ConnectionError").suggestion == "ping the gateway first"


def test_bad_user_rules_are_refused_with_clear_messages() -> None:
    """Rules without matchers, bad patterns and new categories without suggestion fail early."""
    classifier = ErrorClassifier()
    with pytest.raises(ValueError, match="needs types, names or patterns"):
        classifier.add_rule("network")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        classifier.add_rule("network", patterns=["("])
    with pytest.raises(ValueError, match="new category 'billing' needs a suggestion"):
        classifier.add_rule("billing", names=["BillingError"])
    with pytest.raises(TypeError, match="types must be exception classes"):
        classifier.add_rule("network", types=[str])  # type: ignore[list-item]


def test_tracker_classifier_is_extensible_per_tracker() -> None:
    """Rules added to one tracker's classifier classify its records, not other trackers'."""
    first = ErrorTracker("one", DebugConfiguration())
    second = ErrorTracker("two", DebugConfiguration())
    first.classifier.add_rule("billing", names=["InvoiceError"], suggestion="check billing")
    a = first.record_error("InvoiceError", "rejected")
    b = second.record_error("InvoiceError", "rejected")
    assert a is not None
    assert b is not None
    assert (a.category, a.suggestion) == ("billing", "check billing")
    assert b.category == "unknown"
