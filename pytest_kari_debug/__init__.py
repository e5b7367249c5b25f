"""Debugging and monitoring for Kari extensions, and a pytest plugin built on it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .alerting import AlertingConfiguration, AlertManager, AlertSeverity
from .config import DebugConfiguration
from .errors import ErrorTracker
from .exceptions import (
    ConfigurationError,
    KariDebugAssertion,
    KariDebugError,
    KariDebugWarning,
    SessionError,
    StoreError,
)
from .logger import ExtensionLogger
from .manager import (
    DebugSession,
    DiagnosticsReport,
    ExtensionDebugManager,
    get_manager,
    list_managers,
)
from .metrics import MetricsCollector
from .profiler import PerformanceProfiler
from .tracing import ExtensionTracer

try:
    __version__ = version("pytest-kari-debug")
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0+unknown"
del PackageNotFoundError, version

__all__ = [
    "AlertManager",
    "AlertSeverity",
    "AlertingConfiguration",
    "ConfigurationError",
    "DebugConfiguration",
    "DebugSession",
    "DiagnosticsReport",
    "ErrorTracker",
    "ExtensionDebugManager",
    "ExtensionLogger",
    "ExtensionTracer",
    "KariDebugAssertion",
    "KariDebugError",
    "KariDebugWarning",
    "MetricsCollector",
    "PerformanceProfiler",
    "SessionError",
    "StoreError",
    "__version__",
    "get_manager",
    "list_managers",
]
