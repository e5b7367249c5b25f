"""The log context of the current task: correlation, user and tenant ids."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from ..exceptions import ConfigurationError
from ..sharedmethods import dataclass


# Context ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogContext:
    """The correlation, user and tenant ids current in one thread or asyncio task."""

    correlation_id: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None


_EMPTY_CONTEXT = LogContext()
_LOG_CONTEXT: ContextVar[LogContext] = ContextVar("kari_log_context", default=_EMPTY_CONTEXT)


def current_log_context() -> LogContext:
    """The correlation/user/tenant context current in this thread or task."""
    return _LOG_CONTEXT.get()


def current_correlation_id() -> str | None:
    """The correlation id current in this thread or task, or ``None``."""
    return _LOG_CONTEXT.get().correlation_id


class _ContextBinding:
    """A ``with`` / ``async with`` block in which the log context is replaced."""

    __slots__ = ("_change", "_token", "value")

    def __init__(self, change: Callable[[LogContext], LogContext], yielded: Any) -> None:
        self._change = change
        self.value = yielded
        self._token: Token[LogContext] | None = None

    def __enter__(self) -> Any:
        self._token = _LOG_CONTEXT.set(self._change(_LOG_CONTEXT.get()))
        return self.value

    def __exit__(self, *exc: object) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            _LOG_CONTEXT.reset(token)
        except ValueError:  # left from another context than it was entered in
            old = token.old_value
            _LOG_CONTEXT.set(_EMPTY_CONTEXT if old is Token.MISSING else old)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


def correlation_context(correlation_id: str | None = None) -> _ContextBinding:
    """Tag records made inside the block with *correlation_id* (a fresh uuid4 hex if None).

    Usable as ``with`` and ``async with``; nestable; restored on exit; each thread and
    asyncio task sees only its own value.
    """
    if correlation_id is None:
        correlation_id = uuid.uuid4().hex
    elif not isinstance(correlation_id, str) or not correlation_id:
        msg = f"correlation_id must be a non-empty string or None, got {correlation_id!r}"
        raise ConfigurationError(msg)
    cid = correlation_id
    return _ContextBinding(lambda old: LogContext(cid, old.user_id, old.tenant_id), cid)


def user_context(user_id: str, tenant_id: str | None = None) -> _ContextBinding:
    """Tag records made inside the block with *user_id* and *tenant_id*."""
    if not isinstance(user_id, str) or not user_id:
        msg = f"user_id must be a non-empty string, got {user_id!r}"
        raise ConfigurationError(msg)
    if tenant_id is not None and not isinstance(tenant_id, str):
        msg = f"tenant_id must be a string or None, got {tenant_id!r}"
        raise ConfigurationError(msg)
    return _ContextBinding(lambda old: LogContext(old.correlation_id, user_id, tenant_id), None)
