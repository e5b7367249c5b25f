"""``DebugConfiguration``: what is collected, how often, and how much is kept."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from .exceptions import ConfigurationError
from .sharedmethods import dataclass

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
#: List fields given one item per line (ini and flags), not comma-separated.
LINE_LISTS = frozenset({"redact_patterns"})


def _field(default: Any, help: str) -> Any:
    """A dataclass field with its *help* text (the plugin's ``--kari-<field>`` help, the docs)."""
    return dataclasses.field(default=default, metadata={"help": help})


_Documented = TypeVar("_Documented", bound=type)


def documented(cls: _Documented) -> _Documented:
    """Check, when the dataclass *cls* is defined, that every field has its help text in its
    metadata (the plugin's ``--kari-<field>`` help, the docs): a field without one is a
    ``TypeError`` at import, never a ``KeyError`` when the help is first shown."""
    missing = [
        spec.name
        for spec in dataclasses.fields(cls)
        if not str(spec.metadata.get("help") or "").strip()
    ]
    if missing:
        msg = (
            f"{cls.__name__} field(s) {missing!r} have no help text: declare each with"
            " metadata={'help': ...}"
        )
        raise TypeError(msg)
    return cls


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@documented
@dataclass(frozen=True)
class DebugConfiguration:
    """Settings of one :class:`~pytest_kari_debug.manager.ExtensionDebugManager`.

    Every field can also be set from a pytest ini key ``kari_<field>`` and a flag
    ``--kari-<field>`` (underscores as dashes). Values are checked at construction.
    """

    # Component toggles
    logging_enabled: bool = _field(True, "Record structured logs (true/false)")
    metrics_enabled: bool = _field(True, "Record metrics and resource usage (true/false)")
    error_tracking_enabled: bool = _field(True, "Record and group errors (true/false)")
    profiling_enabled: bool = _field(False, "Enable the profiler component (true/false)")
    tracing_enabled: bool = _field(False, "Enable the tracer component (true/false)")
    alerting_enabled: bool = _field(True, "Evaluate alerts (true/false)")

    # Collection intervals (seconds)
    metrics_interval: float = _field(30.0, "Seconds between resource samples")
    health_check_interval: float = _field(60.0, "Seconds between health checks")

    # Storage limits (records kept in memory per component)
    max_log_entries: int = _field(10000, "Log records kept in memory per extension")
    max_metrics: int = _field(50000, "Metric points kept in memory per extension")
    max_errors: int = _field(1000, "Error records kept in memory per extension")
    max_traces: int = _field(1000, "Spans kept in memory per extension")

    # Performance settings
    sampling_rate: float = _field(1.0, "Share of traces recorded, 0.0 to 1.0")
    profiling_overhead_limit: float = _field(
        5.0, "Highest self-overhead in percent before sampling is reduced"
    )

    # Beyond the seed
    log_level: str = _field(
        "DEBUG", "Lowest log level captured (DEBUG, INFO, WARNING, ERROR, CRITICAL)"
    )
    redact_fields: tuple[str, ...] = _field(
        DEFAULT_REDACT_FIELDS, "Comma-separated field names whose values are redacted"
    )
    redact_patterns: tuple[str, ...] = _field(
        (),
        "Regular expressions (one per line) of secrets in messages, exception and failure"
        " text, beyond the built-in ones",
    )
    max_repr_length: int = _field(2000, "Longest repr kept for a value that is not JSON-able")
    max_stack_frames: int = _field(50, "Frames kept per stack trace")
    memory_tracking: bool = _field(
        False, "Trace allocations per test with tracemalloc (true/false)"
    )
    profile_interval: float = _field(0.001, "Seconds between profiler samples")
    profile_min_percent: float = _field(
        1.0, "Percent of a test's time a call-tree node needs to be kept"
    )
    profile_framework_frames: bool = _field(
        False, "Show pytest's and pluggy's frames in profiles and allocation sites (true/false)"
    )
    slow_span_ms: float = _field(100.0, "Spans longer than this are flagged as bottlenecks")
    max_alerts: int = _field(1000, "Alerts kept in memory per extension")
    max_sessions: int = _field(
        1000, "Stopped debug sessions kept in memory per extension (the store keeps all)"
    )

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
        data["redact_patterns"] = list(self.redact_patterns)
        return data


def is_positive_number(value: Any) -> bool:
    """Whether *value* is a finite int or float above zero (a bool is not a number here)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < math.inf


def compile_user_pattern(pattern: str) -> re.Pattern[str]:
    """Compile one ``redact_patterns`` entry, or raise a ConfigurationError saying why."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        msg = f"redact pattern {pattern!r} is not a regular expression: {exc}"
        raise ConfigurationError(msg) from None
    if compiled.match(""):
        msg = f"redact pattern {pattern!r} matches the empty text; it must match a secret"
        raise ConfigurationError(msg)
    return compiled


def field_names() -> list[str]:
    """Names of every :class:`DebugConfiguration` field, in declaration order."""
    return [spec.name for spec in dataclasses.fields(DebugConfiguration)]


def field_help(name: str) -> str:
    """The help text of :class:`DebugConfiguration` field *name*."""
    spec = next(f for f in dataclasses.fields(DebugConfiguration) if f.name == name)
    return str(spec.metadata["help"])


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
        if name in LINE_LISTS:  # regular expressions hold commas: one per line
            return tuple(line.strip() for line in text.splitlines() if line.strip())
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
        if name == "redact_patterns":
            for pattern in value:
                compile_user_pattern(pattern)
        return
    if name == "log_level":
        # Imported here: the plugin's entry point loads this module, and not the record model.
        from .model import LOG_LEVEL_NAMES

        if not isinstance(value, str) or value.upper() not in LOG_LEVEL_NAMES:
            _fail(name, value, f"one of {', '.join(LOG_LEVEL_NAMES)}")


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
    "DebugConfiguration",
    "documented",
    "field_help",
    "field_names",
    "is_positive_number",
    "parse_field",
]
