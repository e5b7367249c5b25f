"""The tracing decorator: a span around each call of a function, coroutine or generator."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .propagation import (
    _attach,
    _detach,
    _set_span_in_context,
)

if TYPE_CHECKING:
    from .spans import AnySpan
    from .tracer import ExtensionTracer

F = TypeVar("F", bound=Callable[..., Any])


# Decorator -----------------------------------------------------------------------------
class _Current:
    """A wrapped generator's span as the current one for each step of the generator (the
    span is current only while the generator runs, never while its consumer does)."""

    __slots__ = ("span", "token")

    def __init__(self, span: AnySpan) -> None:
        self.span = span
        self.token: Any = None

    def __enter__(self) -> None:
        self.token = _attach(_set_span_in_context(self.span))

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        _detach(self.token)


@contextlib.contextmanager
def _spanning(span: AnySpan) -> Iterator[_Current]:
    """A wrapped generator's span from its first step to its end: an exception that escapes
    the generator fails it."""
    try:
        yield _Current(span)
    except Exception as error:
        span.fail(error)
        raise
    finally:
        span.end()


def _decorate(tracer: ExtensionTracer, name: str | None, tags: dict[str, Any], func: F) -> F:
    span_name: str = name if name else getattr(func, "__qualname__", repr(func))
    tags = {"code.function": getattr(func, "__qualname__", span_name), **tags}
    module = getattr(func, "__module__", None)
    if module:
        tags.setdefault("code.namespace", module)
    start_span = tracer.start_span

    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = start_span(span_name, tags)
            agen = func(*args, **kwargs)
            to_send: Any = None
            to_throw: BaseException | None = None
            with _spanning(span) as current:
                while True:
                    with current:
                        try:
                            if to_throw is None:
                                item = await agen.asend(to_send)
                            else:
                                error, to_throw = to_throw, None
                                item = await agen.athrow(error)
                        except StopAsyncIteration:
                            return
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        await agen.aclose()
                        raise
                    except BaseException as error:  # thrown in by the consumer
                        to_throw = error

        return cast(F, async_gen_wrapper)

    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = start_span(span_name, tags)
            gen = func(*args, **kwargs)
            to_send: Any = None
            to_throw: BaseException | None = None
            with _spanning(span) as current:
                while True:
                    with current:
                        try:
                            if to_throw is None:
                                item = gen.send(to_send)
                            else:
                                error, to_throw = to_throw, None
                                item = gen.throw(error)
                        except StopIteration as stop:
                            return stop.value
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as error:  # thrown in by the consumer
                        to_throw = error

        return cast(F, gen_wrapper)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with start_span(span_name, tags):
                return await func(*args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with start_span(span_name, tags):
            return func(*args, **kwargs)

    return cast(F, wrapper)
