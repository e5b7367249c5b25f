"""Options shared by the pytest plugin and the ``kari-debug`` CLI, each defined once.

An :class:`OptionSpec` holds an option's name, help, default and accepted values; the plugin
renders it as ``--kari-<name>`` with the ini twin ``kari_<name>``, the CLI as a click option
(as pytest-benchmark's ``cli.py`` feeds its pytest plugin and its command line). Parsing is
here too, so a bad value gets the same message wherever it is given.
"""

from __future__ import annotations

import math
from typing import Any

from .exceptions import ConfigurationError
from .sharedmethods import dataclass


@dataclass(frozen=True)
class OptionSpec:
    """One option: what it is called, what it takes and its default (``None``: unset)."""

    #: The plugin's ``--kari-<name>`` and ``kari_<name>``, the CLI's ``--<name>`` (dashes).
    name: str
    metavar: str
    #: One phrase, capitalised, no final period; the default is added where it is shown.
    help: str = ""
    default: Any = None
    #: ``str``, ``int`` or ``float``: numbers are checked against *minimum* (and *maximum*).
    kind: type = str
    minimum: float | None = None
    maximum: float | None = None
    #: The CLI's flag when it differs from ``--<name>`` (``compare --fail``, ``prune``'s).
    cli_flag: str = ""
    #: What a value means beyond its type, appended to a bad-value message and the help.
    accepted: str = ""

    def __post_init__(self) -> None:
        if not self.help.strip():
            msg = f"option {self.name!r} has no help text"
            raise TypeError(msg)

    @property
    def flag(self) -> str:
        """The plugin's flag: ``--kari-<name>``."""
        return "--kari-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        """The plugin's ini key: ``kari_<name>``."""
        return f"kari_{self.name}"

    @property
    def cli(self) -> str:
        """The CLI's flag."""
        return self.cli_flag or "--" + self.name.replace("_", "-")

    def help_with_default(self) -> str:
        """The help text naming the default (pytest's ``--help`` shows no defaults itself)."""
        if self.default is None:
            return self.help
        shown = f"{self.default:g}" if self.kind is not str else str(self.default)
        return (
            f"{self.help} (default {shown}; {self.accepted})"
            if self.accepted
            else (f"{self.help} (default {shown})")
        )

    def parse(self, value: Any, *, source: str = "") -> Any:
        """*value* (text from a flag or an ini key) as this option's type; the default when it
        is empty. A bad value is a :class:`ConfigurationError` naming *source* (default: the
        plugin's flag) and what is accepted."""
        text = str(value if value is not None else "").strip()
        if not text:
            return self.default
        if self.kind is str:
            return text
        try:
            number = self.kind(text)
        except ValueError:
            number = None
        if (
            number is None
            or not math.isfinite(number)
            or (self.minimum is not None and number < self.minimum)
            or (self.maximum is not None and number > self.maximum)
        ):
            raise ConfigurationError(
                f"{source or self.flag} must be {self.accepts()}, got {text!r}"
            )
        return number

    def accepts(self) -> str:
        """What a valid value is, in words."""
        words = "a whole number" if self.kind is int else "a number"
        if self.minimum is not None:
            words += f" >= {self.minimum:g}"
        if self.maximum is not None:
            words += f" and <= {self.maximum:g}"
        return f"{words} ({self.accepted})" if self.accepted else words


FAIL_REGRESSION = OptionSpec(
    "fail_regression",
    "GATES",
    "Fail tests over these regression gates: METRIC:+N% or METRIC:+N<unit>, comma-separated,"
    " e.g. 'duration:+25%,allocated:+10%,peak_rss:+50MB'",
    cli_flag="--fail",
)
MIN_CHANGE_MS = OptionSpec(
    "min_change_ms",
    "MS",
    "Timing changes below this many milliseconds (per test) are noise",
    default=0.25,
    kind=float,
    minimum=0,
)
CONFIRM_RUNS = OptionSpec(
    "confirm_runs",
    "N",
    "Samples a timing regression needs before it is declared",
    default=5,
    kind=int,
    minimum=1,
)
REPEAT = OptionSpec(
    "repeat", "N", "Run each test's call phase N times (timing samples)", kind=int, minimum=1
)
RETENTION_RUNS = OptionSpec(
    "retention_runs",
    "N",
    "Keep the newest N runs in the store",
    default=200,
    kind=int,
    minimum=0,
    accepted="0: all",
    cli_flag="--keep-runs",
)
RETENTION_DAYS = OptionSpec(
    "retention_days",
    "DAYS",
    "Remove runs older than DAYS from the store",
    default=90.0,
    kind=float,
    minimum=0,
    accepted="0: never",
    cli_flag="--older-than",
)
