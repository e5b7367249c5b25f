"""Debugging and monitoring for Kari extensions, and a pytest plugin built on it.

The public names are imported on first use (module ``__getattr__``): pytest imports this
package for its plugin in every run, asked for or not, and pays for none of the components.
Its modules load as outside pytest, not under pytest's assertion rewriter
(PYTEST_DONT_REWRITE): see ``plugin.OwnModulesFinder``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

if TYPE_CHECKING:
    __version__: str

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

#: Public name -> the module that defines it.
_PUBLIC = {
    "AlertManager": "alerting",
    "AlertSeverity": "alerting",
    "AlertingConfiguration": "alerting",
    "ConfigurationError": "exceptions",
    "DebugConfiguration": "config",
    "DebugSession": "manager",
    "DiagnosticsReport": "manager",
    "ErrorTracker": "errors",
    "ExtensionDebugManager": "manager",
    "ExtensionLogger": "logger",
    "ExtensionTracer": "tracing",
    "KariDebugAssertion": "exceptions",
    "KariDebugError": "exceptions",
    "KariDebugWarning": "exceptions",
    "MetricsCollector": "metrics",
    "PerformanceProfiler": "profiler",
    "SessionError": "exceptions",
    "StoreError": "exceptions",
    "get_manager": "manager",
    "list_managers": "manager",
}

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


def _version() -> str:
    from .version import plugin_version

    return plugin_version()


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, {"__version__": _version})
