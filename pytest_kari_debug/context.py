"""The current debug session, carried by a context variable.

Every record made while a session is current carries that session's id, also from asyncio
tasks and from threads started with a copied context (``contextvars.copy_context().run``).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What components need to know of a running debug session."""

    session_id: str
    extension_id: str
    name: str
    started_at: float
    options: dict[str, Any] = field(default_factory=dict)


CURRENT_SESSION: ContextVar[SessionInfo | None] = ContextVar("kari_debug_session", default=None)


def current_session() -> SessionInfo | None:
    """Return the debug session current in this context, or ``None``."""
    return CURRENT_SESSION.get()


def current_session_id() -> str | None:
    """Return the id of the debug session current in this context, or ``None``."""
    session = CURRENT_SESSION.get()
    return None if session is None else session.session_id


#: Options a debug session accepts, with their types. Components may register more.
SESSION_OPTIONS: dict[str, type] = {
    "enable_profiling": bool,
    "enable_tracing": bool,
    "profile_memory": bool,
    "profile_cpu": bool,
    "enable_cprofile": bool,
}


def register_session_option(name: str, kind: type) -> None:
    """Let debug sessions accept option *name* of type *kind*."""
    SESSION_OPTIONS[name] = kind
