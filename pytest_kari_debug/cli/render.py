"""Output for people: aligned tables, colour, human units and times; and time-value parsing."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from ..exceptions import ConfigurationError
from ..exporters.csv_export import iso_time

LEVEL_COLOURS = {
    "DEBUG": "bright_black",
    "INFO": "green",
    "WARNING": "yellow",
    "ERROR": "red",
    "CRITICAL": "magenta",
    "LOW": "bright_black",
    "MEDIUM": "yellow",
    "HIGH": "red",
    "HEALTHY": "green",
    "DEGRADED": "yellow",
    "UNHEALTHY": "red",
    "PASSED": "green",
    "FAILED": "red",
    "SKIPPED": "yellow",
    "OK": "green",
    "REGRESSED": "red",
    "RUNNING": "green",
    "ACTIVE": "red",
    "RESOLVED": "green",
    "OPEN": "red",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|hr|d|w)", re.I)
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "w": 604800,
}


def visible_len(text: str) -> int:
    """Length of *text* on screen (ANSI colour codes take no room)."""
    return len(_ANSI.sub("", text))


def paint(text: str, word: str | None = None, *, bold: bool = False) -> str:
    """Colour *text* after the status or level *word* (default: the text itself)."""
    colour = LEVEL_COLOURS.get(str(word if word is not None else text).upper())
    if colour is None and not bold:
        return text
    return click.style(text, fg=colour, bold=bold)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, max_width: int = 0) -> str:
    """Rows as aligned columns under bold headers; the last column is cut to *max_width*."""
    if not rows:
        return ""
    widths = [visible_len(h) for h in headers]
    for row in rows:
        for index, value in enumerate(row[:-1]):
            widths[index] = max(widths[index], visible_len(value))
    lines = []
    head = "  ".join(
        click.style(h.ljust(widths[i]) if i < len(headers) - 1 else h, bold=True)
        for i, h in enumerate(headers)
    )
    lines.append(head.rstrip())
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            if index < len(row) - 1:
                cells.append(value + " " * (widths[index] - visible_len(value)))
            else:
                used = sum(widths[:-1]) + 2 * (len(widths) - 1)
                room = max_width - used if max_width else 0
                cells.append(clip(value, room) if room > 20 else value)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def pairs(items: Sequence[tuple[str, str]]) -> str:
    """``key  value`` lines with the keys aligned."""
    width = max((len(key) for key, _ in items), default=0)
    return "\n".join(f"{click.style(key.ljust(width), bold=True)}  {value}" for key, value in items)


def clip(text: str, width: int) -> str:
    """*text* on one line, cut to *width* characters with an ellipsis."""
    flat = " ".join(str(text).split())
    if width <= 0 or visible_len(flat) <= width:
        return flat
    return flat[: max(1, width - 1)] + "…"


def ms(value: float | None) -> str:
    """A duration in milliseconds, in the unit that reads best."""
    if value is None:
        return "-"
    if value == 0:
        return "0 ms"
    if abs(value) < 1:
        return f"{value * 1000:.0f} µs"
    if abs(value) < 1000:
        return f"{value:.1f} ms"
    if abs(value) < 60_000:
        return f"{value / 1000:.2f} s"
    return f"{value / 60_000:.1f} min"


def size(value: float | None) -> str:
    """A byte count in binary units."""
    if value is None:
        return "-"
    number = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(number) < 1024 or unit == "GiB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{number:.1f} TiB"  # pragma: no cover - loop always returns


def percent(value: float | None) -> str:
    """A percentage already scaled to 0..100."""
    return "-" if value is None else f"{value:.1f}%"


def ago(ts: float | None, *, now: float | None = None) -> str:
    """A moment relative to now: ``12s ago``, ``3h ago``, ``2d ago``."""
    if ts is None:
        return "-"
    delta = (time.time() if now is None else now) - float(ts)
    if delta < 0:
        return "in the future"
    for limit, unit, seconds in ((60, "s", 1), (3600, "m", 60), (86400, "h", 3600)):
        if delta < limit:
            return f"{int(delta // seconds)}{unit} ago"
    return f"{int(delta // 86400)}d ago"


def clock(ts: float | None) -> str:
    """Local time of day (and date when not today) of *ts*."""
    if ts is None:
        return "-"
    moment = datetime.fromtimestamp(float(ts))
    if moment.date() == datetime.now().date():
        return moment.strftime("%H:%M:%S.%f")[:-3]
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def iso(ts: float | None) -> str | None:
    """*ts* as an ISO 8601 UTC timestamp (for JSON and CSV)."""
    return iso_time(ts)


def to_json(value: Any) -> str:
    """JSON text for machines: UTF-8, two-space indent, stable (insertion) key order."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=repr)


def parse_since(text: str, *, now: float | None = None) -> float:
    """Epoch seconds of a ``--since`` value: a duration back from now or an ISO date/time.

    Durations: ``30s``, ``10m``, ``2h``, ``1d``, ``1h30m``, ``1w``; dates:
    ``2024-05-01``, ``2024-05-01T10:00``, ``2024-05-01 10:00:00+02:00`` (local time when no
    offset is given).
    """
    raw = str(text).strip()
    current = time.time() if now is None else now
    if raw and _DURATION.sub("", raw).strip() == "" and _DURATION.search(raw):
        seconds = sum(
            float(amount) * _UNIT_SECONDS[unit.lower()] for amount, unit in _DURATION.findall(raw)
        )
        return current - seconds
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        msg = (
            f"--since {raw!r} is neither a duration (30s, 10m, 2h, 1d, 1h30m)"
            " nor an ISO date (2024-05-01 or 2024-05-01T10:00)"
        )
        raise ConfigurationError(msg) from None
    return moment.timestamp()


def run_text(run: dict[str, Any]) -> str:
    """One line about a stored run: id, age, outcomes, duration, branch@commit."""
    outcomes = ", ".join(
        paint(f"{n} {o}", o) for o, n in sorted(run["outcomes"].items(), key=lambda i: -i[1])
    )
    took = (run["finished_at"] - run["started_at"]) * 1000 if run.get("finished_at") else None
    return (
        f"#{run['id']} {ago(run['started_at'])}: {outcomes or 'no tests'}"
        f" ({ms(took) if took is not None else 'unfinished'})"
        + (f", {run['git_branch']}@{str(run['git_commit'])[:8]}" if run.get("git_commit") else "")
    )


def run_json(run: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stable JSON keys of a stored run (``None`` stays ``None``)."""
    if run is None:
        return None
    keys = (
        "id",
        "uuid",
        "started_at",
        "finished_at",
        "exit_status",
        "status",
        "git_branch",
        "git_commit",
        "host",
        "outcomes",
        "tests_count",
        "extensions",
    )
    return {key: run.get(key) for key in keys}
