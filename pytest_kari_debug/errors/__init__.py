"""Errors of an extension: grouped by fingerprint, classified, with their stacks.

``grouping`` (fingerprints, message templates, :class:`ErrorGroup`, :func:`group_errors`),
``classify`` (categories and suggestions), ``capture`` (exception chains, traceback text) and
``tracker`` (:class:`ErrorTracker`). Every public name is importable from here, imported on
first use: a run that records no error imports neither the stack reading nor the classifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
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

#: Public name -> the module that defines it.
_PUBLIC = {
    "CATEGORIES": "classify",
    "DEFAULT_CLASSIFIER": "classify",
    "SUGGESTIONS": "classify",
    "CategoryRule": "classify",
    "Classification": "classify",
    "ErrorAnalysis": "tracker",
    "ErrorClassifier": "classify",
    "ErrorGroup": "grouping",
    "ErrorRecord": "grouping",
    "ErrorTracker": "tracker",
    "StackFrame": "capture",
    "normalize_message": "grouping",
    "trend_direction": "grouping",
}

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
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
