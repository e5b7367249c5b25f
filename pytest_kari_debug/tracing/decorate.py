"""The tracing decorator: a span around each call of a function, coroutine or generator."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .propagation import (
    _attach,
    _detach,
    _set_span_in_context,
)

if TYPE_CHECKING:
    from .tracer import ExtensionTracer

F = TypeVar("F", bound=Callable[..., Any])


# Decorator -----------------------------------------------------------------------------
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
            try:
                while True:
                    token = _attach(_set_span_in_context(span))
                    try:
                        if to_throw is None:
                            item = await agen.asend(to_send)
                        else:
                            error, to_throw = to_throw, None
                            item = await agen.athrow(error)
                    except StopAsyncIteration:
                        return
                    finally:
                        _detach(token)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        await agen.aclose()
                        raise
                    except BaseException as error:  # thrown in by the consumer
                        to_throw = error
            except Exception as error:
                span.fail(error)
                raise
            finally:
                span.end()

        return cast(F, async_gen_wrapper)

    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = start_span(span_name, tags)
            gen = func(*args, **kwargs)
            to_send: Any = None
            to_throw: BaseException | None = None
            try:
                while True:
                    token = _attach(_set_span_in_context(span))
                    try:
                        if to_throw is None:
                            item = gen.send(to_send)
                        else:
                            error, to_throw = to_throw, None
                            item = gen.throw(error)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        _detach(token)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as error:  # thrown in by the consumer
                        to_throw = error
            except Exception as error:
                span.fail(error)
                raise
            finally:
                span.end()

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
