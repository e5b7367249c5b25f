"""Resolutions of error groups and alerts: what the store's one ``resolutions`` table keeps.

A resolution is kept per (kind, extension, key): an error group's fingerprint or an alert's
id. Its ``state`` is what the user (or a later occurrence) set: ``resolved``, ``regressed``
(the group occurred again after it was resolved) or ``open`` (reopened). :func:`status_of`
turns it into the status every surface shows, with one rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Statuses of an error group: never resolved (or reopened), resolved, seen again since.
OPEN, RESOLVED, REGRESSED = "open", "resolved", "regressed"
ERROR_STATUSES = (OPEN, REGRESSED, RESOLVED)
#: What a resolution row's ``state`` column holds.
STATES = (OPEN, RESOLVED, REGRESSED)
#: The kinds of things resolved.
ERROR_GROUP, ALERT = "error_group", "alert"
KINDS = (ERROR_GROUP, ALERT)


def status_of(resolution: Mapping[str, Any] | None, last_seen: float | None = None) -> str:
    """The status of a thing with *resolution* (or none) whose newest occurrence is *last_seen*.

    A resolved thing that occurred after its resolution has regressed, also when no store
    sync noted it yet (records a live manager wrote after the resolution).
    """
    if resolution is None:
        return OPEN
    state = resolution.get("state")
    if state == REGRESSED:
        return REGRESSED
    if state != RESOLVED:
        return OPEN
    resolved_at = resolution.get("resolved_at")
    if last_seen is not None and resolved_at is not None and float(last_seen) > resolved_at:
        return REGRESSED
    return RESOLVED


def resolution_of(group: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resolution a group that keeps its own state implies (a live tracker's group, a
    run's errors section): ``status`` resolved/unresolved plus a ``regressed`` flag."""
    regressed = bool(group.get("regressed"))
    resolved = group.get("status") == RESOLVED
    if not (regressed or resolved or group.get("notes")):
        return None
    state = REGRESSED if regressed else RESOLVED if resolved else OPEN
    return {"state": state, "resolved_at": group.get("resolved_at"), "notes": group.get("notes")}


def check_kind(kind: str) -> str:
    """*kind* when it is one the store resolves, else a ``ValueError`` naming those."""
    if kind not in KINDS:
        msg = f"resolution kind must be one of {', '.join(KINDS)}, got {kind!r}"
        raise ValueError(msg)
    return kind


__all__ = [
    "ALERT",
    "ERROR_GROUP",
    "ERROR_STATUSES",
    "KINDS",
    "OPEN",
    "REGRESSED",
    "RESOLVED",
    "STATES",
    "check_kind",
    "resolution_of",
    "status_of",
]
