"""Every ``--kari-*`` flag and its ini twin, the markers and fixture names: the plugin's
pytest surface, registered by the entry point before any feature is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..config import field_help, field_names
from ..exceptions import ConfigurationError
from ..optionspec import (
    CONFIRM_RUNS,
    FAIL_REGRESSION,
    MIN_CHANGE_MS,
    REPEAT,
    RETENTION_DAYS,
    RETENTION_RUNS,
    OptionSpec,
)

KARI_FIXTURES = frozenset(
    {"kari_debug", "kari_logger", "kari_metrics", "kari_errors", "kari_profiler", "kari_tracer",
     "kari_alerts"}
)  # fmt: skip
KARI_MARKERS = {
    "kari_extension": "kari_extension(id, name=None): the Kari extension this test exercises",
    "kari_alert": "kari_alert(rule, severity='high'): fail the test when the alert rule fires",
    "kari_budget": (
        "kari_budget(duration_ms=, cpu_ms=, peak_rss_mb=, allocated_mb=, errors=, log_errors=):"
        " fail the test when it uses more"
    ),
    "kari_profile": "kari_profile: profile this test's call phase (as --kari-profile does)",
    "kari_gate": "kari_gate(spec): this test's regression gates, overriding --kari-fail-regression",
    "kari_repeat": "kari_repeat(n): run this test's call phase n times for timing samples",
}
#: (name, metavar, help) of the flags that take one value, after the core ones.
VALUE_OPTIONS: tuple[tuple[str, str, str], ...] = (
    # tracing
    (
        "jaeger",
        "PATH",
        "Write the run's spans as Jaeger JSON (the UI's upload format); implies --kari-trace",
    ),
    ("otlp_json", "PATH", "Write the run's spans as one OTLP/JSON document; implies --kari-trace"),
    (
        "otlp_endpoint",
        "URL",
        "Send the run's spans over OTLP/HTTP to URL (default path /v1/traces); implies"
        " --kari-trace",
    ),
    (
        "otlp_timeout",
        "SECONDS",
        "Longest wait for the OTLP collector at the end of the run (default 10)",
    ),
    (
        "trace_parent",
        "TRACEPARENT",
        "W3C traceparent whose span becomes every test trace's parent (default: the"
        " TRACEPARENT environment variable)",
    ),
    # baselines and gates
    ("save_baseline", "NAME", "Save every test's figures as baseline NAME"),
    (
        "baseline_file",
        "PATH",
        "Baseline as a JSON file: written by --kari-save-baseline, read by --kari-compare",
    ),
    (
        "compare",
        "NAME|PATH|last",
        "Compare each test with baseline NAME, a baseline file, or the previous run",
    ),
    # metrics
    ("prometheus", "PATH", "Write the run's metrics to PATH in the Prometheus exposition format"),
    (
        "prometheus_format",
        "FORMAT",
        "Format of --kari-prometheus: text (default, version 0.0.4) or openmetrics",
    ),
    (
        "pushgateway",
        "URL",
        "Push the run's metrics to the Prometheus Pushgateway at URL (job kari_debug)",
    ),
    # profiles and the report
    (
        "profile_dir",
        "DIR",
        "Write each profiled test's pyinstrument HTML and speedscope JSON to DIR",
    ),
    (
        "report",
        "PATH",
        "Write the run's self-contained HTML report to PATH (implies --kari-debug)",
    ),
    (
        "markdown",
        "FILE",
        "Write a Markdown summary of the run (failures, regressions, alerts, slowest) to"
        " FILE (implies --kari-debug)",
    ),
    (
        "hang_dump",
        "SECONDS",
        "Record the stacks of every thread and asyncio task of a test running longer than"
        " SECONDS (again at 2x and 3x); implies --kari-debug",
    ),
)
#: Options defined in :mod:`~pytest_kari_debug.optionspec` (some shared with the CLI).
SPEC_OPTIONS = (FAIL_REGRESSION, REPEAT, MIN_CHANGE_MS, CONFIRM_RUNS)
SERVE_TOKEN_ENV = "KARI_DEBUG_TOKEN"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
RUN_ID_ENV = "KARI_RUN_ID"


def option_flag(name: str) -> str:
    """The command-line flag of option *name* (``fail_on`` -> ``--kari-fail-on``)."""
    return "--kari-" + name.replace("_", "-")


class _Registrar:
    """Adds options to pytest's parser and remembers every ini key's default."""

    __slots__ = ("group", "ini_defaults", "parser")

    def __init__(self, parser: pytest.Parser) -> None:
        self.parser = parser
        self.group = parser.getgroup(
            "kari-debug", "per-test logs, metrics, spans, profiles and alerts"
        )
        self.ini_defaults: dict[str, Any] = {}

    def ini(self, name: str, help: str, *, type: Any = None, default: Any = None) -> None:
        self.parser.addini(name, help, type=type, default=default)
        self.ini_defaults[name] = default

    def option(
        self,
        name: str,
        *,
        help: str,
        metavar: str | None = None,
        store_true: bool = False,
        default: Any = "",
    ) -> None:
        """Register ``--kari-<name>`` (dest ``kari_<name>``) and its ini twin.

        A *store_true* flag gets a bool ini key (default false); any other option takes one
        value (*metavar*) and its ini key defaults to *default*.
        """
        flag, dest = option_flag(name), f"kari_{name}"
        if store_true:
            self.group.addoption(flag, dest=dest, action="store_true", default=None, help=help)
            self.ini(dest, f"Default for {flag}", type="bool", default=False)
        else:
            self.group.addoption(flag, dest=dest, metavar=metavar, help=help)
            self.ini(dest, f"Default for {flag}", default=default)

    def spec(self, spec: OptionSpec) -> None:
        """Register the option *spec* defines (its ini key defaults to empty: not asked for)."""
        help = spec.help_with_default().replace("%", "%%")  # argparse formats help with %
        self.option(spec.name, metavar=spec.metavar, help=help)


def add_options(parser: pytest.Parser) -> dict[str, Any]:
    """Register every flag and ini key of the plugin; return the ini keys' defaults."""
    add = _Registrar(parser)
    add.option("debug", store_true=True, help="Wrap every test in a debug session of its extension")
    add.option(
        "store",
        metavar="PATH|URL",
        help="Store: a SQLite file (default .kari-debug/kari.db under the rootdir),"
        " postgresql://user@host:port/db, or 'none'",
    )
    add.option("json", metavar="PATH", help="Write the run as one JSON document to PATH")
    add.option(
        "csv", metavar="DIR", help="Write the run's records as CSV files (logs.csv...) in DIR"
    )
    add.option(
        "extension_id", metavar="ID", help="Extension id of tests without a kari_extension marker"
    )
    add.option(
        "strict_exports",
        store_true=True,
        help="Fail the run (exit status 1) when an output (report, JSON, CSV, store...)"
        " cannot be written",
    )
    add.option(
        "exit_freeze",
        store_true=True,
        help="At the end of the process, freeze the heap left after pytest's last garbage"
        " collection (gc.freeze): a faster exit; objects still in a reference cycle are then"
        " not finalised (a file in a cycle not flushed)",
    )
    add.option("profile", store_true=True, help="Profile every test's call phase")
    add.option(
        "trace", store_true=True, help="Record a trace per test, its root span being the test"
    )
    add.option("memory", store_true=True, help="Trace each test's allocations with tracemalloc")
    for name in field_names():
        if name != "memory_tracking":
            add.option(name, metavar="VALUE", help=field_help(name), default=None)
    for name, metavar, text in VALUE_OPTIONS:
        add.option(name, metavar=metavar, help=text)
    for spec in SPEC_OPTIONS:
        add.spec(spec)
    add.option(
        "run_id",
        metavar="ID",
        help=f"Add this run's tests to run ID (shards of one CI run share it; env {RUN_ID_ENV})",
    )
    add.spec(RETENTION_RUNS)
    add.spec(RETENTION_DAYS)
    add.option(
        "fail_on",
        metavar="SEVERITY",
        help="Fail a test whose run fires an alert of this severity or above:"
        " low, medium, high (default), critical, or none (only report)",
        default="high",
    )
    add.ini(
        "kari_alert_rules",
        "Alert rules checked on every test, one per line: FIGURE OP NUMBER [for N UNIT]"
        " [severity=S] [inhibits=NAMES], e.g. 'peak_rss_mb > 200 severity=critical'",
        type="linelist",
        default=[],
    )
    add.ini(
        "kari_step_summary",
        f"Append the Markdown summary to ${STEP_SUMMARY_ENV} when it is set (default true)",
        type="bool",
        default=True,
    )
    add.group.addoption(
        "--kari-serve",
        nargs="?",
        const="0",
        default=None,
        metavar="PORT",
        help="Serve the live dashboard and REST API of the run while it runs"
        " (PORT: default a free one; write --kari-serve=PORT)",
    )
    add.ini("kari_serve", "Default for --kari-serve (a port; 0 picks a free one)", default="")
    add.group.addoption(
        "--kari-serve-host",
        metavar="HOST",
        help="Address --kari-serve binds (default 127.0.0.1); another address needs a token:"
        f" {SERVE_TOKEN_ENV}, or one generated and printed at the start",
    )
    add.ini("kari_serve_host", "Default for --kari-serve-host", default="")
    return add.ini_defaults


def asked_for(config: pytest.Config, defaults: dict[str, Any]) -> bool:
    """Whether a ``--kari-*`` flag was given or a ``kari_*`` ini key differs from its default
    (*defaults*: what :func:`add_options` returned)."""
    for name in defaults:
        value = config.getoption(name, default=None)
        if value is not None and value != "":
            return True
    return any(config.getini(name) != default for name, default in defaults.items())


def option_source(config: pytest.Config, name: str) -> tuple[Any, str]:
    """Option *name*'s value from its flag, else (flag absent or empty) from its ini key,
    with where it came from (``--kari-<name>`` or ``ini kari_<name>``) for error messages."""
    dest = f"kari_{name}"
    value = config.getoption(dest, default=None)
    if value is None or value == "":
        return config.getini(dest), f"ini {dest}"
    return value, option_flag(name)


def option_value(config: pytest.Config, spec: OptionSpec) -> Any:
    """Option *spec*'s value, flag first, then ini, else its default; a bad value is a usage
    error naming where it came from and what is accepted."""
    raw, source = option_source(config, spec.name)
    try:
        return spec.parse(raw, source=source)
    except ConfigurationError as exc:
        raise pytest.UsageError(f"kari-debug: {exc}") from None


def option_text(config: pytest.Config, name: str) -> str:
    """Option *name* as stripped text, flag first, then ini (``""`` when neither is set)."""
    return str(option_source(config, name)[0] or "").strip()


def option_path(config: pytest.Config, name: str) -> Path | None:
    """Option *name* as a path (``None`` when not set): a relative one is taken from where
    pytest was started when given on the command line, from the rootdir when in the ini."""
    text = option_text(config, name)
    if not text:
        return None
    path = Path(text)
    if path.is_absolute():
        return path
    from_cli = bool(config.getoption(f"kari_{name}", default=None))
    return (Path(config.invocation_params.dir) if from_cli else config.rootpath) / path


def option_bool(config: pytest.Config, name: str) -> bool:
    """Whether the flag ``--kari-<name>`` was given or its ini key is true."""
    return bool(option_source(config, name)[0])
