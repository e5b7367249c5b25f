"""The current debug session, carried by a context variable.

Every record made while a session is current carries that session's id, also from asyncio
tasks and from threads started with a copied context (``contextvars.copy_context().run``).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import field
from typing import Any

from .sharedmethods import dataclass


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What components need to know of a running debug session."""

    session_id: str
    extension_id: str
    name: str
    started_at: float
    options: dict[str, Any] = field(default_factory=dict)


_new_info = object.__new__
_set_id, _set_extension, _set_name, _set_started, _set_options = (
    SessionInfo.__dict__[name].__set__
    for name in ("session_id", "extension_id", "name", "started_at", "options")
)


def session_info(
    session_id: str, extension_id: str, name: str, started_at: float, options: dict[str, Any]
) -> SessionInfo:
    """``SessionInfo(...)`` at a third of its cost (one a test): a frozen dataclass's own
    ``__init__`` sets each field through ``object.__setattr__``, this through its slot."""
    info = _new_info(SessionInfo)
    _set_id(info, session_id)
    _set_extension(info, extension_id)
    _set_name(info, name)
    _set_started(info, started_at)
    _set_options(info, options)
    return info


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
