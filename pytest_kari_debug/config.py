"""``DebugConfiguration``: what is collected, how often, and how much is kept."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigurationError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_REDACT_FIELDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "set-cookie",
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class DebugConfiguration:
    """Settings of one :class:`~pytest_kari_debug.manager.ExtensionDebugManager`.

    Every field can also be set from a pytest ini key ``kari_<field>`` and a flag
    ``--kari-<field>`` (underscores as dashes). Values are checked at construction.
    """

    # Component toggles
    logging_enabled: bool = True
    metrics_enabled: bool = True
    error_tracking_enabled: bool = True
    profiling_enabled: bool = False
    tracing_enabled: bool = False
    alerting_enabled: bool = True

    # Collection intervals (seconds)
    metrics_interval: float = 30.0
    health_check_interval: float = 60.0

    # Storage limits (records kept in memory per component)
    max_log_entries: int = 10000
    max_metrics: int = 50000
    max_errors: int = 1000
    max_traces: int = 1000

    # Performance settings
    sampling_rate: float = 1.0
    profiling_overhead_limit: float = 5.0

    # Beyond the seed
    log_level: str = "DEBUG"
    redact_fields: tuple[str, ...] = DEFAULT_REDACT_FIELDS
    max_repr_length: int = 2000
    max_stack_frames: int = 50
    memory_tracking: bool = False
    profile_interval: float = 0.001
    profile_min_percent: float = 1.0
    slow_span_ms: float = 100.0
    max_alerts: int = 1000
    max_sessions: int = 1000  # stopped debug sessions kept in memory per manager

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            _check_field(spec.name, getattr(self, spec.name))

    def replace(self, **changes: Any) -> DebugConfiguration:
        """Return a copy with *changes* applied (validated like the constructor)."""
        unknown = sorted(set(changes) - set(field_names()))
        if unknown:
            msg = f"unknown DebugConfiguration field(s) {unknown!r}; accepted: {field_names()}"
            raise ConfigurationError(msg)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "") -> DebugConfiguration:
        """Build a configuration from *values*, converting strings (ini text) to field types."""
        where = f" (from {source})" if source else ""
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            msg = (
                f"unknown DebugConfiguration field(s) {unknown!r}{where}; accepted: {field_names()}"
            )
            raise ConfigurationError(msg)
        converted = {
            name: parse_field(name, value, source=source) for name, value in values.items()
        }
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-able data."""
        data = dataclasses.asdict(self)
        data["redact_fields"] = list(self.redact_fields)
        return data


def field_names() -> list[str]:
    """Names of every :class:`DebugConfiguration` field, in declaration order."""
    return [spec.name for spec in dataclasses.fields(DebugConfiguration)]


def _kind(name: str) -> str:
    default = next(f.default for f in dataclasses.fields(DebugConfiguration) if f.name == name)
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, tuple):
        return "list"
    return "str"


def parse_field(name: str, value: Any, *, source: str = "") -> Any:
    """Convert *value* (often ini or command-line text) to the type of field *name*."""
    if not isinstance(value, str):
        return value
    kind = _kind(name)
    text = value.strip()
    where = f" (from {source})" if source else ""
    try:
        if kind == "bool":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "list":
            parts = text.replace("\n", ",").split(",")
            return tuple(part.strip() for part in parts if part.strip())
    except ValueError:
        msg = f"DebugConfiguration.{name}{where}: {value!r} is not {_ACCEPTED[kind]}"
        raise ConfigurationError(msg) from None
    return text


_ACCEPTED = {
    "bool": "a boolean (true/false, yes/no, on/off, 1/0)",
    "int": "a whole number",
    "float": "a number",
    "list": "a comma-separated list",
    "str": "text",
}


def _fail(name: str, value: Any, accepted: str) -> None:
    msg = f"DebugConfiguration.{name} must be {accepted}, got {value!r}"
    raise ConfigurationError(msg)


def _check_field(name: str, value: Any) -> None:
    kind = _kind(name)
    if kind == "bool":
        if not isinstance(value, bool):
            _fail(name, value, "True or False")
        return
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(name, value, "a whole number >= 0")
        if value < 0:
            _fail(name, value, "a whole number >= 0")
        return
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            _fail(name, value, "a number")
        _check_range(name, float(value))
        return
    if kind == "list":
        if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
            _fail(name, value, "a sequence of strings")
        return
    if name == "log_level" and (not isinstance(value, str) or value.upper() not in LOG_LEVELS):
        _fail(name, value, f"one of {', '.join(LOG_LEVELS)}")


def _check_range(name: str, value: float) -> None:
    if name == "sampling_rate":
        if not 0.0 <= value <= 1.0:
            _fail(name, value, "a number from 0.0 to 1.0")
    elif name == "metrics_interval":
        if not 0.01 <= value < math.inf:
            _fail(name, value, "a finite number of seconds >= 0.01")
    elif name in ("health_check_interval", "profile_interval"):
        if not 0.0 < value < math.inf:
            _fail(name, value, "a finite number of seconds > 0")
    elif name == "profile_min_percent":
        if not 0.0 <= value <= 100.0:
            _fail(name, value, "a percentage from 0 to 100")
    elif name == "profiling_overhead_limit":
        if not 0.0 < value <= 100.0:
            _fail(name, value, "a percentage > 0 and <= 100")
    elif value < 0 or math.isinf(value):
        _fail(name, value, "a finite number >= 0")


CONFIG_FIELDS: tuple[str, ...] = tuple(field_names())

__all__ = [
    "CONFIG_FIELDS",
    "DEFAULT_REDACT_FIELDS",
    "LOG_LEVELS",
    "DebugConfiguration",
    "field_names",
    "parse_field",
]
