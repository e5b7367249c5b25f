"""Errors of an extension: grouped by fingerprint, classified, with their stacks.

``grouping`` (fingerprints, message templates, :class:`ErrorGroup`, :func:`group_errors`),
``classify`` (categories and suggestions), ``capture`` (exception chains, traceback text) and
``tracker`` (:class:`ErrorTracker`). Every public name is importable from here.
"""

from __future__ import annotations

from .capture import StackFrame
from .classify import (
    CATEGORIES,
    DEFAULT_CLASSIFIER,
    SUGGESTIONS,
    CategoryRule,
    Classification,
    ErrorClassifier,
)
from .grouping import ErrorGroup, ErrorRecord, normalize_message, trend_direction
from .tracker import ErrorAnalysis, ErrorTracker

__all__ = [
    "CATEGORIES",
    "DEFAULT_CLASSIFIER",
    "SUGGESTIONS",
    "CategoryRule",
    "Classification",
    "ErrorAnalysis",
    "ErrorClassifier",
    "ErrorGroup",
    "ErrorRecord",
    "ErrorTracker",
    "StackFrame",
    "normalize_message",
    "trend_direction",
]
