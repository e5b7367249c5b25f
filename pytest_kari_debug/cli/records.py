"""``logs``, ``metrics``, ``errors`` and ``alerts``: what the tests and managers recorded.

The records come from the scope's :class:`~pytest_kari_debug.sources.StoreSource`, as the
dashboard's and the API's do (their figures, statuses and filters are the same); this module
picks what to show and prints it.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import psutil

from .. import views
from ..alerting import AlertSeverity
from ..backends import redact
from ..exceptions import StoreError
from ..logger import LogQuery
from ..model import ALERT_SEVERITIES, LOG_LEVEL_NAMES
from ..resolutions import ALERT, ERROR_GROUP
from ..sources import StoreSource
from . import daemon
from .app import CliError, Env, Scope, cli, pass_env
from .figures import UNITS, figures_of, shown
from .render import (
    ago,
    clip,
    clock,
    iso,
    paint,
    pairs,
    parse_since,
    percent,
    size,
    table,
)

#: Most log records --follow reads at once (it reads again at once when there were more).
FOLLOW_BATCH = 5000


def _since(text: str | None) -> float | None:
    return parse_since(text) if text else None


def _grep(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        msg = f"--grep {pattern!r} is not a regular expression ({exc}); escape special characters"
        raise CliError(msg) from None


def short_test(nodeid: str | None) -> str:
    """A node id without its folders: ``test_api.py::test_get``."""
    if not nodeid:
        return "-"
    path, sep, rest = nodeid.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


def _answered_without_table(env: Env, found: list[dict[str, Any]], what: str) -> bool:
    """Emit *found* as JSON, or say on stderr that no *what* match: whether either was done."""
    if env.json:
        env.emit(found)
        return True
    if not found:
        click.echo(f"kari-debug: no {what} match", err=True)
        return True
    return False


def _width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 0


def _print_table(env: Env, headers: list[str], rows: list[list[str]]) -> int:
    """Print *rows* under *headers*, the last column cut to the terminal's width; exit 0."""
    env.echo(table(headers, rows, max_width=_width()))
    return 0


# logs --------------------------------------------------------------------------------------
@cli.group()
def logs() -> None:
    """Log records of the extension's tests and live manager."""


def stable(record: dict[str, Any], keys: Iterable[str], **given: Any) -> dict[str, Any]:
    """*record* for JSON output: *keys* in their order, each the record's field of that name
    (``test``: its test's node id; ``time``: ``ts`` in ISO 8601), or its value in *given*."""
    fields = {"test": "nodeid"}
    found = {}
    for key in keys:
        if key in given:
            found[key] = given[key]
        elif key == "time":
            found[key] = iso(record.get("ts"))
        else:
            found[key] = record.get(fields.get(key, key))
    return found


LOG_KEYS = ("record_id", "ts", "time", "level", "logger", "message", "extension_id", "test",
            "run_id", "session_id", "correlation_id", "user_id", "tenant_id", "fields",
            "exception")  # fmt: skip


def log_dict(record: dict[str, Any]) -> dict[str, Any]:
    """A log record for JSON output, with stable keys."""
    logger = record.get("logger") or record.get("name")
    return stable(record, LOG_KEYS, logger=logger, fields=record.get("fields") or {})


def log_line(record: dict[str, Any]) -> str:
    """One log record on one line: time, level, test, message, fields, context."""
    level = str(record.get("level") or "").upper()
    fields = record.get("fields") or {}
    extra = " ".join(f"{k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
    context = [
        f"{key}={record[key]}"
        for key in ("correlation_id", "user_id", "tenant_id")
        if record.get(key)
    ]
    exception = record.get("exception")
    text = str(record.get("message") or "")
    if extra:
        text += "  " + click.style(clip(extra, 160), dim=True)
    if context:
        text += "  " + click.style("[" + " ".join(context) + "]", fg="cyan")
    if isinstance(exception, dict) and exception.get("type"):
        text += f"  ({exception['type']}: {clip(str(exception.get('message') or ''), 120)})"
    return "  ".join(
        [
            clock(record.get("ts")),
            paint(level.ljust(8), level),
            short_test(record.get("nodeid")),
            text,
        ]
    )


@logs.command("show")
@click.option(
    "--level",
    type=click.Choice(LOG_LEVEL_NAMES, case_sensitive=False),
    help="Lowest level shown (that level and above)",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest N records"
)
@click.option("--since", metavar="WHEN", help="Only since then: 30s, 10m, 2h, 1d or an ISO date")
@click.option(
    "--grep",
    metavar="REGEX",
    help="Only records whose message, logger, exception or field values match REGEX (any case)",
)
@click.option("--test", metavar="TEXT", help="Only tests whose node id contains TEXT")
@click.option("--correlation-id", metavar="ID", help="Only records of this correlation id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new records until Ctrl-C")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between looks for new records with --follow",
)
@pass_env
def logs_show(
    env: Env,
    level: str | None,
    limit: int,
    since: str | None,
    grep: str | None,
    test: str | None,
    correlation_id: str | None,
    follow: bool,
    poll: float,
) -> int:
    """Show log records, oldest first, the newest LIMIT of them.

    \b
    Examples:
      kari-debug --extension-id my-ext logs show --level error --limit 50
      kari-debug --extension-id my-ext logs show --since 1h --grep "timeout|refused"
      kari-debug --extension-id my-ext logs show --test test_api.py --correlation-id req-123
      kari-debug --extension-id my-ext logs show --follow
    """
    start = _since(since)
    _grep(grep)  # a bad pattern gets the option's name in its message
    # The dashboard's and the API's log search: one filter, applied the same way.
    filters = LogQuery(
        level=level,
        since=start,
        regex=f"(?i){grep}" if grep else None,
        correlation_id=correlation_id or None,
    )
    if follow and not _has_logs(env):
        # Like `tail -F`: wait for the store and the extension's first record, print from there.
        found_scope = _wait_for_store(env, poll)
        if found_scope is None:
            return 0
        return _follow(env, found_scope, filters, test, poll, cursor=0)
    scope = env.scope()
    if scope is None:
        return 0
    cursor = scope.source.newest_record_id()
    found = scope.source.logs(filters, limit=limit, nodeid=test)
    records = [r for r in reversed(found) if r["record_id"] <= cursor]
    if not records and not follow:
        if env.json:
            env.emit([])
            return 0
        click.echo("kari-debug: no log records match", err=True)
        return 0
    if env.json and not follow:
        env.emit([log_dict(r) for r in records])
        return 0
    _print_logs(env, records)
    if not follow:
        return 0
    return _follow(env, scope, filters, test, poll, cursor=cursor)


def _has_logs(env: Env) -> bool:
    """Whether the store exists and holds log records of the extension asked for."""
    try:
        source = env.source(env.extension_id)
        return source is not None and bool(source.record_counts().get("log"))
    except (StoreError, sqlite3.DatabaseError):  # a store another process is creating
        env.close()
        return False


def _wait_for_store(env: Env, poll: float) -> Scope | None:
    """Wait until the store exists and holds the extension asked for; None on Ctrl-C."""
    who = repr(env.extension_id) if env.extension_id else "any extension"
    click.echo(
        f"kari-debug: waiting for log records of {who} in {redact(env.store_path)!r}"
        " (Ctrl-C to stop)",
        err=True,
    )
    try:
        while True:
            try:
                store = env.open_store()
                if store is not None and (
                    env.extension_id is None or StoreSource(store).has_extension(env.extension_id)
                ):
                    return Scope(store, env.extension_id, None, None)
            except (StoreError, sqlite3.DatabaseError):  # not fully created yet: look again
                env.close()
            time.sleep(poll)
    except KeyboardInterrupt:
        return None


def _follow(
    env: Env, scope: Scope, filters: LogQuery, test: str | None, poll: float, *, cursor: int
) -> int:
    """Print the log records written after record *cursor*, as they come, until Ctrl-C."""
    source, after = scope.source, f"s:{cursor}"
    try:
        while True:
            batch = source.logs_after(after, filters, backlog=0, limit=FOLLOW_BATCH, nodeid=test)
            _print_logs(env, batch.records)
            if batch.cursor == after:  # nothing new: look again after a pause
                time.sleep(poll)
            after = batch.cursor
    except KeyboardInterrupt:
        return 0


def _print_logs(env: Env, records: Iterable[dict[str, Any]]) -> None:
    for record in records:
        if env.json:
            click.echo(to_line_json(log_dict(record)))
        else:
            env.echo(log_line(record))


def to_line_json(data: Any) -> str:
    """One compact JSON document per line (JSON Lines), for streams."""
    return json.dumps(data, ensure_ascii=False, default=repr, separators=(",", ":"))


# metrics -----------------------------------------------------------------------------------
@cli.group()
def metrics() -> None:
    """Metric aggregates from the store and live resource usage."""


@metrics.command("show")
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True),
    default=24.0,
    show_default=True,
    help="Look back this many hours",
)
@click.option("--name", "name_filter", metavar="REGEX", help="Only metrics whose name matches")
@pass_env
def metrics_show(env: Env, hours: float, name_filter: str | None) -> int:
    """Aggregate every metric (count, min, mean, p50, p95, max, last) over the last HOURS.

    Per-test figures (test.duration_ms, test.cpu_ms, test.peak_rss_mb...) come from the test
    records; the other rows from the recorded metric points (custom metrics and the live
    manager's resource samples).

    \b
    Examples:
      kari-debug --extension-id my-ext metrics show --hours 2
      kari-debug --extension-id my-ext --run last metrics show --name "duration|cpu"
    """
    pattern = _grep(name_filter)
    scope = env.scope()
    if scope is None:
        return 0
    since = time.time() - hours * 3600.0
    source = scope.source
    recorded = views.metric_aggregates(source.metric_rows(since=since))
    rows = [{**stats, "source": "metric"} for stats in recorded.values()]
    figures: list[views.MetricRow] = []
    for test in source.tests(since=since, slim=True):
        ts = float(test.get("finished_at") or 0.0)
        for figure, value in figures_of(test).items():
            figures.append((f"test.{figure}", UNITS.get(figure, ""), ts, value))
    rows += [{**stats, "source": "tests"} for stats in views.metric_aggregates(figures).values()]
    if pattern is not None:
        rows = [row for row in rows if pattern.search(row["name"])]
    if env.json:
        env.emit(
            {"since": since, "hours": hours, "extension_id": scope.extension_id, "metrics": rows}
        )
        return 0
    if not rows:
        click.echo(f"kari-debug: no metrics recorded in the last {hours:g} hour(s)", err=True)
        return 0
    env.echo(
        table(
            ["metric", "count", "min", "mean", "p95", "max", "last", "seen"],
            [
                [
                    row["name"],
                    str(row["count"]),
                    shown(row["min"], row["unit"]),
                    shown(row["mean"], row["unit"]),
                    shown(row["p95"], row["unit"]),
                    shown(row["max"], row["unit"]),
                    shown(row["last"], row["unit"]),
                    ago(row["last_ts"]),
                ]
                for row in rows
            ],
        )
    )
    return 0


def machine_usage(path: Path) -> dict[str, Any]:
    """This machine's resource usage now (CPU over a short window)."""
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    folder = path.parent if path.parent.exists() else Path.cwd()
    disk = psutil.disk_usage(str(folder))
    usage: dict[str, Any] = {
        "cpu_percent": psutil.cpu_percent(interval=0.2),
        "cpu_count": psutil.cpu_count(),
        "load_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "memory_percent": memory.percent,
        "memory_used_bytes": memory.total - memory.available,
        "memory_total_bytes": memory.total,
        "swap_percent": swap.percent,
        "disk_path": str(folder),
        "disk_percent": disk.percent,
        "disk_free_bytes": disk.free,
        "processes": len(psutil.pids()),
    }
    try:
        net = psutil.net_io_counters()
        usage["net_sent_bytes"] = net.bytes_sent
        usage["net_recv_bytes"] = net.bytes_recv
    except Exception:  # some containers expose no counters
        pass
    return usage


def manager_usage(status: daemon.ManagerStatus) -> dict[str, Any]:
    """A manager process's live usage, with its last sample."""
    data = status.to_dict()
    if status.running and status.pid:
        try:
            process = psutil.Process(status.pid)
            with process.oneshot():
                data["rss_bytes"] = process.memory_info().rss
                data["threads"] = process.num_threads()
            data["cpu_percent"] = process.cpu_percent(interval=0.1)
        except psutil.Error:
            pass
    data["last_sample"] = (status.state or {}).get("last_sample", {})
    return data


@metrics.command("current")
@pass_env
def metrics_current(env: Env) -> int:
    """Live resource usage of this machine and of the running debug manager(s).

    \b
    Examples:
      kari-debug --extension-id my-ext metrics current
      kari-debug --format json metrics current
    """
    machine = machine_usage(env.files_path)
    if env.extension_id:
        statuses = [daemon.manager_status(env.files_path, env.extension_id)]
    else:
        statuses = daemon.all_statuses(env.files_path)
    managers = [manager_usage(s) for s in statuses if s.running or s.dead]
    if env.json:
        env.emit({"machine": machine, "managers": managers})
        return 0
    items = [
        (
            "cpu",
            f"{percent(machine['cpu_percent'])} of {machine['cpu_count']} CPUs"
            + (f", load {machine['load_1m']:.2f}" if machine["load_1m"] is not None else ""),
        ),
        (
            "memory",
            f"{size(machine['memory_used_bytes'])} of {size(machine['memory_total_bytes'])}"
            f" ({percent(machine['memory_percent'])}), swap {percent(machine['swap_percent'])}",
        ),
        (
            "disk",
            f"{percent(machine['disk_percent'])} used, {size(machine['disk_free_bytes'])} free"
            f" ({machine['disk_path']})",
        ),
        ("processes", str(machine["processes"])),
    ]
    env.echo(click.style("this machine", bold=True))
    env.echo(pairs(items))
    for manager in managers:
        env.echo()
        env.echo(click.style(f"manager of {manager['extension_id']}", bold=True))
        if not manager["running"]:
            env.echo(paint("not running", "unhealthy") + f" (pid {manager['pid']} died)")
            continue
        env.echo(
            pairs(
                [
                    (
                        "pid",
                        f"{manager['pid']}, up {ago(manager['started_at']).replace(' ago', '')}",
                    ),
                    ("cpu", percent(manager.get("cpu_percent"))),
                    ("memory", size(manager.get("rss_bytes"))),
                    ("samples", f"{manager['samples']}, last {ago(manager['updated_at'])}"),
                    ("api", manager["url"] or "-"),
                ]
            )
        )
    if not managers:
        who = f" for {env.extension_id!r}" if env.extension_id else ""
        env.echo(f"\nno debug manager running{who}; start one with `kari-debug start`")
    return 0


# errors ------------------------------------------------------------------------------------
@cli.group()
def errors() -> None:
    """Recorded errors, their groups (patterns) and their resolution."""


ERROR_KEYS = ("record_id", "ts", "time", "group", "error_type", "error_message", "category",
              "severity", "suggestion", "extension_id", "test", "run_id", "session_id", "status",
              "stack_trace", "context")  # fmt: skip


def error_dict(record: dict[str, Any], status: str) -> dict[str, Any]:
    """An error record for JSON output, with stable keys."""
    return stable(
        record, ERROR_KEYS, group=record.get("fingerprint"), severity=record.get("level"),
        status=status, context=record.get("context") or {},
    )  # fmt: skip


@errors.command("show")
@click.option("--unresolved", is_flag=True, help="Only errors of groups not resolved")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--since", metavar="WHEN", help="Only since then: 30s, 10m, 2h, 1d or an ISO date")
@click.option("--test", metavar="TEXT", help="Only tests whose node id contains TEXT")
@pass_env
def errors_show(env: Env, unresolved: bool, limit: int, since: str | None, test: str | None) -> int:
    """Show recorded errors, newest first.

    \b
    Examples:
      kari-debug --extension-id my-ext errors show --unresolved
      kari-debug --extension-id my-ext errors show --since 2h --test test_api.py
    """
    start = _since(since)
    scope = env.scope()
    if scope is None:
        return 0
    source = scope.source
    states = source.error_states()

    def status(record: dict[str, Any]) -> str:
        return states.state(
            str(record.get("extension_id")),
            str(record.get("fingerprint")),
            float(record.get("ts") or 0.0),
        )[0]

    keep = (lambda r: status(r) != "resolved") if unresolved else None
    found = source.records("error", limit=limit, since=start, nodeid=test, keep=keep)
    if env.json:
        env.emit([error_dict(r, status(r)) for r in found])
        return 0
    if not found:
        click.echo("kari-debug: no errors match", err=True)
        return 0
    width = _width()
    env.echo(
        table(
            ["time", "group", "status", "test", "error"],
            [
                [
                    clock(r.get("ts")),
                    str(r.get("fingerprint") or "-")[:12],
                    paint(status(r)),
                    short_test(r.get("nodeid")),
                    f"{r.get('error_type')}: {r.get('error_message')}",
                ]
                for r in found
            ],
            max_width=width,
        )
    )
    return 0


@errors.command("patterns")
@click.option("--unresolved", is_flag=True, help="Only groups not resolved (or seen again since)")
@click.option("--since", metavar="WHEN", help="Only errors since then: 2h, 1d or an ISO date")
@pass_env
def errors_patterns(env: Env, unresolved: bool, since: str | None) -> int:
    """Error groups (same type and message shape): counts, first/last seen, suggestion.

    \b
    Examples:
      kari-debug --extension-id my-ext errors patterns
      kari-debug --extension-id my-ext --format json errors patterns --unresolved
    """
    start = _since(since)
    scope = env.scope()
    if scope is None:
        return 0
    groups = scope.source.error_groups(since=start)
    groups = [g for g in groups if not unresolved or g["status"] != "resolved"]
    if _answered_without_table(env, groups, "error groups"):
        return 0
    rows = []
    for g in groups:
        detail = f"{g['error_type']}: {g['message']}"
        if g["suggestion"]:
            detail += click.style(f"  → {g['suggestion']}", fg="cyan")
        rows.append(
            [
                str(g["group"] or "-")[:12],
                paint(g["status"]),
                str(g["count"]),
                str(g["tests"]),
                ago(g["first_seen"]),
                ago(g["last_seen"]),
                g["category"] or "-",
                detail,
            ]
        )
    headers = ["group", "status", "count", "tests", "first", "last", "category", "error"]
    return _print_table(env, headers, rows)


def _unique(candidates: list[dict[str, Any]], key: str, wanted: str, what: str) -> dict[str, Any]:
    exact = [c for c in candidates if str(c[key]) == wanted]
    found = exact or [c for c in candidates if str(c[key]).startswith(wanted)]
    if len(found) == 1:
        return found[0]
    if not found:
        msg = f"no {what} {wanted!r}"
        raise CliError(msg)
    names = ", ".join(sorted({str(c[key]) for c in found})[:5])
    msg = f"{what} {wanted!r} is ambiguous (matches {names}); give more characters"
    raise CliError(msg)


def _resolve_scope(env: Env, what: str) -> Scope:
    """The scope of a `resolve` command: an error (exit 1) when nothing was recorded yet."""
    store = env.open_store()
    if store is None:
        msg = f"no {what}: nothing recorded yet (no store at {redact(env.store_path)!r})"
        raise CliError(msg)
    scope = Scope(store, env.extension_id, None, None)
    if env.run is not None:
        run = StoreSource(store, env.extension_id).find_run(env.run)
        if run is None:
            raise CliError(f"run {env.run!r} not found; see `kari-debug runs list`")
        scope.run_id = run["id"]
    return scope


def _own(scope: Scope, found: dict[str, Any]) -> StoreSource:
    """The records of *found*'s own extension: where the API resolves and reopens it too."""
    return StoreSource(scope.store, str(found["extension_id"]))


@errors.command("resolve")
@click.argument("group")
@click.option("--notes", metavar="TEXT", help="How it was fixed (kept with the resolution)")
@pass_env
def errors_resolve(env: Env, group: str, notes: str | None) -> int:
    """Mark error GROUP (its id, or a unique prefix of it) resolved.

    A resolved group that occurs again shows as "regressed".

    \b
    Examples:
      kari-debug --extension-id my-ext errors resolve 3f2a9c --notes "retry on timeout"
    """
    scope, found = _find_group(env, group)
    _own(scope, found).resolve(ERROR_GROUP, str(found["group"]), notes)
    result = {
        "group": found["group"],
        "extension_id": found["extension_id"],
        "notes": notes,
        "count": found["count"],
        "status": "resolved",
    }
    return env.answer(
        result,
        f"resolved error group {found['group']} ({found['error_type']}, {found['count']}"
        f" occurrence(s)){': ' + notes if notes else ''}",
    )


def _find_group(env: Env, group: str) -> tuple[Scope, dict[str, Any]]:
    """The error group *group* names (its id or a unique prefix), and the scope it is in."""
    scope = _resolve_scope(env, f"error group {group!r}")
    groups = scope.source.error_groups()
    if not groups:
        who = repr(scope.extension_id) if scope.extension_id else "any extension"
        raise CliError(f"no error group {group!r}: no errors recorded for {who} yet")
    try:
        return scope, _unique(groups, "group", group, "error group")
    except CliError as exc:
        raise CliError(f"{exc}; see `kari-debug errors patterns`") from None


@errors.command("reopen")
@click.argument("group")
@pass_env
def errors_reopen(env: Env, group: str) -> int:
    """Mark error GROUP (its id, or a unique prefix of it) open again: undoes `errors resolve`.

    \b
    Examples:
      kari-debug --extension-id my-ext errors reopen 3f2a9c
    """
    scope, found = _find_group(env, group)
    _own(scope, found).reopen(ERROR_GROUP, str(found["group"]))
    result = {"group": found["group"], "extension_id": found["extension_id"],
              "count": found["count"], "status": "open"}  # fmt: skip
    return env.answer(
        result,
        f"reopened error group {found['group']} ({found['error_type']})",
    )


# alerts ------------------------------------------------------------------------------------
@cli.group()
def alerts() -> None:
    """Alerts fired during tests and by live managers, and their resolution."""


ALERT_KEYS = ("record_id", "alert_id", "ts", "time", "severity", "alert_type", "title", "message",
              "metric_name", "current_value", "threshold_value", "occurrences", "group",
              "first_seen", "last_seen", "runs", "extension_id", "test", "run_id", "status",
              "resolved_at", "resolution_notes")  # fmt: skip


def alert_dict(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert (:func:`pytest_kari_debug.views.alert_view`) for JSON output, with stable keys."""
    return stable(alert, ALERT_KEYS, test=alert.get("test"))


@alerts.command("show")
@click.option(
    "--severity",
    type=click.Choice(ALERT_SEVERITIES, case_sensitive=False),
    help="Lowest severity shown (that severity and above)",
)
@click.option("--unresolved", is_flag=True, help="Only alerts not resolved")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--since", metavar="WHEN", help="Only since then: 30s, 10m, 2h, 1d or an ISO date")
@pass_env
def alerts_show(
    env: Env, severity: str | None, unresolved: bool, limit: int, since: str | None
) -> int:
    """Show alerts, one per rule and test across runs (with occurrences), newest first.

    \b
    Examples:
      kari-debug --extension-id my-ext alerts show --severity high
      kari-debug --extension-id my-ext alerts show --unresolved --since 1d
    """
    start = _since(since)
    scope = env.scope()
    if scope is None:
        return 0
    floor = AlertSeverity.parse(severity).rank if severity else 0

    def keep(alert: dict[str, Any]) -> bool:
        if views.severity_rank(alert["severity"]) < floor:
            return False
        return not unresolved or alert["status"] != "resolved"

    groups = scope.source.alert_groups(since=start)
    found = [alert_dict(alert) for alert in groups if keep(alert)][:limit]
    if _answered_without_table(env, found, "alerts"):
        return 0
    rows = []
    for a in found:
        value = ""
        if a["current_value"] is not None:
            value = f"{a['metric_name'] or 'value'} {a['current_value']:g}"
            if a["threshold_value"] is not None:
                value += f" > {a['threshold_value']:g}"
        rows.append(
            [
                clock(a["last_seen"] or a["ts"]),
                str(a["alert_id"] or "-")[:12],
                str(a["occurrences"] or 1),
                paint(str(a["severity"] or "-"), str(a["severity"] or "")),
                paint(a["status"]),
                short_test(a["test"]),
                value or "-",
                str(a["title"] or a["message"] or ""),
            ]
        )
    headers = ["last seen", "id", "n", "severity", "status", "test", "value", "title"]
    return _print_table(env, headers, rows)


@alerts.command("resolve")
@click.argument("alert_id", metavar="ID")
@click.option("--notes", metavar="TEXT", help="How it was handled (kept with the resolution)")
@pass_env
def alerts_resolve(env: Env, alert_id: str, notes: str | None) -> int:
    """Mark alert ID (or a unique prefix of it) resolved; kept in the store.

    \b
    Examples:
      kari-debug --extension-id my-ext alerts resolve alert-123 --notes "Fixed by restart"
    """
    scope = _resolve_scope(env, f"alert {alert_id!r}")
    who = repr(env.extension_id) if env.extension_id else "any extension"
    candidates = scope.source.alerts()
    if not candidates:
        msg = f"no alert {alert_id!r}: no alerts recorded for {who} yet"
        raise CliError(msg)
    try:
        found = _unique(candidates, "alert_id", alert_id, "alert")
    except CliError as exc:
        raise CliError(f"{exc}; see `kari-debug alerts show`") from None
    _own(scope, found).resolve(ALERT, str(found["alert_id"]), notes)
    return env.answer(
        {
            "alert_id": found["alert_id"],
            "extension_id": found["extension_id"],
            "notes": notes,
            "status": "resolved",
        },
        f"resolved alert {found['alert_id']} ({found.get('title') or found.get('alert_type')})"
        f"{': ' + notes if notes else ''}",
    )


@alerts.command("reopen")
@click.argument("alert_id", metavar="ID")
@pass_env
def alerts_reopen(env: Env, alert_id: str) -> int:
    """Mark alert ID (or a unique prefix of it) active again: undoes `alerts resolve`.

    The alert's group (its rule and test, across runs) is reopened with it.

    \b
    Examples:
      kari-debug --extension-id my-ext alerts reopen alert-123
    """
    scope = _resolve_scope(env, f"alert {alert_id!r}")
    groups = scope.source.alert_groups()
    candidates = [{**group, "id": key} for group in groups
                  for key in (group["group"], *group["alert_ids"])]  # fmt: skip
    if not candidates:
        who = repr(env.extension_id) if env.extension_id else "any extension"
        raise CliError(f"no alert {alert_id!r}: no alerts recorded for {who} yet")
    try:
        found = _unique(candidates, "id", alert_id, "alert")
    except CliError as exc:
        raise CliError(f"{exc}; see `kari-debug alerts show`") from None
    _own(scope, found).reopen(ALERT, str(found["group"]))
    result = {"alert_id": found["id"], "group": found["group"],
              "extension_id": found["extension_id"], "status": "active"}  # fmt: skip
    return env.answer(
        result,
        f"reopened alert {found['id']} ({found.get('title') or found.get('alert_type')};"
        f" {len(found['alert_ids'])} occurrence(s) of its rule and test)",
    )
