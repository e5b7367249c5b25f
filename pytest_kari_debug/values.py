"""One serializer for every value that enters a record.

It never raises, calls user code (``__repr__``, ``__str__``) only under a time bound with its
result type-checked, and never keeps what a writer could not write: an integer past the
int-to-str limit, a lone surrogate, a cycle. What it cannot keep becomes a placeholder
``<unrepresentable T: reason>``. Writers use :func:`encode_text` so that any string they are
handed is written (surrogates escaped as ``\\udcff``), never a failure.
"""

from __future__ import annotations

import collections
import datetime as _dt
import enum
import json
import math
import threading
import types
import uuid
from collections.abc import Callable, Container, Mapping
from decimal import Decimal
from itertools import islice
from pathlib import PurePath
from typing import Any

from .text import encode_text, writable_text

#: Longest message or string field kept; longer text is cut with a visible marker.
MAX_TEXT_LENGTH = 32_768
#: Nesting depth at which containers are cut (cycles are cut where they close).
MAX_DEPTH = 8
#: Items kept per container; the rest is summarised.
MAX_ITEMS = 1000
#: Longest a user's ``__repr__`` / ``__str__`` may take before a placeholder stands in.
USER_CODE_TIMEOUT_S = 0.2
#: Integers longer than this many bits are not kept: ``str()`` of them fails or is slow
#: (Python refuses more than 4300 digits, about 14,284 bits, by default).
MAX_INT_BITS = 14_000


def placeholder(value: Any, reason: str) -> str:
    """``<unrepresentable T: reason>`` for *value* (the type's name never raises)."""
    try:
        kind = type(value).__name__
        if not isinstance(kind, str):
            kind = "object"
    except Exception:
        kind = "object"
    return f"<unrepresentable {kind}: {reason}>"


# Text ------------------------------------------------------------------------------------
def truncate_text(text: str, limit: int = MAX_TEXT_LENGTH) -> str:
    """Cut *text* to *limit* characters with a visible marker naming what was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [truncated {len(text) - limit} characters]"


def clean_text(text: str, limit: int = MAX_TEXT_LENGTH) -> str:
    """Cut *text* to *limit* and make it encodable (a lone surrogate becomes ``\\udcff``)."""
    if len(text) > limit:
        text = truncate_text(text, limit)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


# Calling user code under a bound ---------------------------------------------------------
class _BoundedCaller:
    """Runs a user's ``__repr__``/``__str__`` on a helper thread and waits at most a bound.

    A call that overruns is abandoned (Python cannot stop a thread) and its thread leaves
    once the call returns; while :attr:`max_stuck` calls are still running, no further user
    code is called at all, so a value that hangs forever costs a bounded number of threads.
    """

    max_stuck = 4
    idle_seconds = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self.stuck = 0

    def call(self, function: Callable[[Any], Any], value: Any, timeout: float) -> Any:
        """``function(value)``; raises ``TimeoutError`` past *timeout*, or what it raised."""
        with self._lock:
            if self.stuck >= self.max_stuck:
                msg = f"not called: {self.stuck} earlier calls still running"
                raise TimeoutError(msg)
            worker = self._idle.pop() if self._idle else None
        if worker is None or not worker.alive:
            worker = _Worker(self)
        job = _Job(function, value)
        worker.jobs.append(job)
        worker.wake.release()
        if not job.done.wait(timeout):
            with self._lock:
                if not job.done.is_set():
                    worker.abandoned = True
                    self.stuck += 1
                    msg = f"took longer than {timeout:g} s"
                    raise TimeoutError(msg)
        with self._lock:
            self._idle.append(worker)
        if job.error is not None:
            raise job.error
        return job.result

    def finished(self, worker: _Worker, done: threading.Event) -> bool:
        """Mark a job done; whether its *worker* was abandoned meanwhile and must leave."""
        with self._lock:
            done.set()
            if not worker.abandoned:
                return False
            worker.alive = False
            self.stuck -= 1
            return True

    def retire(self, worker: _Worker) -> bool:
        """Whether idle *worker* may leave (it is no longer handed jobs once it says yes)."""
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
                worker.alive = False
                return True
            return False


class _Job:
    __slots__ = ("done", "error", "function", "result", "value")

    def __init__(self, function: Callable[[Any], Any], value: Any) -> None:
        self.function = function
        self.value = value
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class _Worker:
    __slots__ = ("abandoned", "alive", "caller", "jobs", "wake")

    def __init__(self, caller: _BoundedCaller) -> None:
        self.caller = caller
        self.jobs: collections.deque[_Job] = collections.deque()
        self.wake = threading.Semaphore(0)
        self.abandoned = False
        self.alive = True
        threading.Thread(target=self._run, name="kari-debug-repr", daemon=True).start()

    def _run(self) -> None:
        _LOCAL.worker = _LOCAL.quiet = True
        while True:
            if not self.wake.acquire(timeout=self.caller.idle_seconds):
                if self.caller.retire(self):
                    return
                continue
            job = self.jobs.popleft()
            done = job.done
            try:
                job.result = job.function(job.value)
            except BaseException as exc:  # the caller re-raises it in its own thread
                job.error = exc
            del job
            if self.caller.finished(self, done):
                return


_CALLER = _BoundedCaller()


class _ThreadFlags(threading.local):
    """Flags of this thread (class defaults: reading a flag on any other thread is a plain
    lookup, not a missing attribute's exception)."""

    #: A helper running user code for the serializer.
    worker = False
    #: Log records made on this thread are not captured: while the capture files one (a
    #: ``__repr__`` that logs would recurse) and, for good, on the helpers. One flag for both:
    #: the capture handler's one check.
    quiet = False


_LOCAL = _ThreadFlags()
#: This thread's flags (read by the stdlib capture handler at every record).
THREAD_FLAGS = _LOCAL


def in_bounded_call() -> bool:
    """Whether this thread runs a user's repr/str for the serializer (records made here are
    the serializer's own side effects and must not be recorded: they would recurse)."""
    return _LOCAL.worker


#: Types whose repr runs no user code and is cheap: called inline.
_TRUSTED_REPR: frozenset[type] = frozenset(
    {
        object, int, float, complex, bool, bytes, bytearray, range, slice, type,
        types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType,
        _dt.datetime, _dt.date, _dt.time, _dt.timedelta, _dt.timezone, uuid.UUID, Decimal,
        type(None), type(Ellipsis), type(NotImplemented),
    }
)  # fmt: skip


_OBJECT_STR: Any = object.__str__
_OBJECT_REPR: Any = object.__repr__
_EXCEPTION_STR: Any = BaseException.__str__
_EXCEPTION_REPR: Any = BaseException.__repr__


#: Builtin exceptions whose own ``__str__`` shows only their args, as BaseException's does
#: (KeyError: the repr of its one arg; AttributeError, NameError: BaseException's; ImportError:
#: its ``msg`` when that is exactly a str), and OSError's, which also shows its filenames.
_ARGS_STR_OWNERS: frozenset[type] = frozenset(
    {KeyError, AttributeError, NameError, ImportError, OSError}
)
_FILENAME_TYPES: frozenset[type] = frozenset({str, bytes, int, type(None)})
_ERRNO_TYPES: frozenset[type] = frozenset({int, type(None)})
_STRERROR_TYPES: frozenset[type] = frozenset({str, type(None)})


def _builtin_exception_str(kind: Any, value: Any) -> bool:
    """Whether *kind*'s ``__str__`` is a builtin exception's that runs no user code beyond
    the ``repr``/``str`` of the args (checked by the caller)."""
    owner = getattr(kind.__str__, "__objclass__", None)
    if owner not in _ARGS_STR_OWNERS:
        return False
    if owner is OSError:  # it shows str(errno), str(strerror), repr(filename), repr(filename2)
        return (
            type(getattr(value, "filename", None)) in _FILENAME_TYPES
            and type(getattr(value, "filename2", None)) in _FILENAME_TYPES
            and type(getattr(value, "errno", None)) in _ERRNO_TYPES
            and type(getattr(value, "strerror", None)) in _STRERROR_TYPES
        )
    return True


def _trusted(value: Any, name: str) -> bool:
    """Whether ``repr``/``str`` of *value* runs no user code (then it is called inline)."""
    kind: Any = type(value)
    if kind in _TRUSTED_REPR:
        return True
    if name == "str" and kind.__str__ is not _OBJECT_STR:
        if kind.__str__ is not _EXCEPTION_STR and not _builtin_exception_str(kind, value):
            return False
    elif kind.__repr__ is not _OBJECT_REPR and kind.__repr__ is not _EXCEPTION_REPR:
        return False
    if isinstance(value, BaseException):  # the builtin str/repr shows the args
        return all(type(arg) in _TRUSTED_REPR or type(arg) is str for arg in value.args)
    return True


def _user_text(function: Callable[[Any], Any], value: Any, name: str, timeout: float) -> str:
    """``function(value)`` (``repr`` or ``str``) bounded in time and checked to be a str."""
    trusted = _trusted(value, name)
    text = function(value) if trusted else _CALLER.call(function, value, timeout)
    if not isinstance(text, str):
        msg = f"__{name}__ returned {type(text).__name__}, not str"
        raise TypeError(msg)
    return text


def bounded_call(
    function: Callable[[Any], Any], value: Any, timeout: float = USER_CODE_TIMEOUT_S
) -> Any:
    """``function(value)`` for user code: on a helper thread, ``TimeoutError`` past *timeout*."""
    return _CALLER.call(function, value, timeout)


def plain(value: Any) -> bool:
    """Whether ``str``/``repr`` of *value* is builtin work that runs no user code."""
    kind = type(value)
    return kind is str or kind in _TRUSTED_REPR or _trusted(value, "str")


def safe_repr(value: Any, limit: int = 2000, timeout: float = USER_CODE_TIMEOUT_S) -> str:
    """``repr(value)`` cut to *limit*; a failing, slow or non-str ``__repr__`` gives a
    placeholder. Never raises."""
    return _safe_text(repr, value, limit, timeout)


def safe_str(value: Any, limit: int = MAX_TEXT_LENGTH, timeout: float = USER_CODE_TIMEOUT_S) -> str:
    """``str(value)`` cut to *limit*; a failing, slow or non-str ``__str__`` gives a
    placeholder. Never raises."""
    if type(value) is str:
        return clean_text(value, limit)
    return _safe_text(str, value, limit, timeout)


def _safe_text(convert: Callable[[Any], str], value: Any, limit: int, timeout: float) -> str:
    name = convert.__name__  # repr or str
    try:
        text = _user_text(convert, value, name, timeout)
    except TimeoutError as exc:
        return clean_text(placeholder(value, f"{name} {exc}"), 500)
    except Exception as exc:
        reason = f"{name} raised {type(exc).__name__}: {_exception_text(exc)}"
        return clean_text(placeholder(value, reason), 500)
    return clean_text(text, limit)


def _exception_text(exc: BaseException) -> str:
    """The message of an exception raised by user code, without calling user code again."""
    args = getattr(exc, "args", ())
    if args and type(args) is tuple and type(args[0]) is str:
        return clean_text(args[0], 200)
    return ""


_INT_MIN, _INT_MAX = -(2**63), 2**64


def int_value(value: int) -> int | str:
    """*value* as an int any writer can write, or a placeholder when it is too long."""
    if _INT_MIN <= value < _INT_MAX:
        return value
    bits = value.bit_length()
    if bits > MAX_INT_BITS:
        return placeholder(value, f"integer of {bits} bits exceeds the int-to-str limit")
    return int(value)


def float_value(value: float) -> float | str:
    """A finite float as it is; NaN and the infinities as their repr text."""
    return value if math.isfinite(value) else repr(float(value))


def label_text(value: Any, limit: int = 1000) -> str:
    """A label value (metrics, alerts) as bounded, writable text. Never raises."""
    if type(value) is str and len(value) <= limit and value.isascii():
        return value
    return safe_str(value, limit)


# The serializer --------------------------------------------------------------------------
TextFilter = Callable[[str], str]


def plain_fields(
    fields: dict[Any, Any],
    kept_key: Callable[[Any], bool],
    plain_text: Callable[[str], bool],
    clean: Container[str] = (),
) -> bool:
    """Whether *fields* can be kept as it is: each key one *kept_key* keeps, each value a
    ``bool``, ``None``, an ``int`` of at most 64 bits, a finite ``float`` or a ``str`` in
    *clean* or that *plain_text* keeps. The one fast check of every serializer of fields (the
    logging hot path: a fresh ``**kwargs`` dict of plain values)."""
    for key, value in fields.items():
        if type(key) is not str or not kept_key(key):  # no user __eq__ in the lookup
            return False
        kind = type(value)
        if kind is str:
            if value not in clean and not plain_text(value):
                return False
        elif kind is int:
            if not _INT_MIN <= value < _INT_MAX:
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif kind is not bool and value is not None:
            return False
    return True


class ValueSerializer:
    """Turns any value into JSON data every writer can write (the one entry for records).

    Containers are walked to :attr:`max_depth` and :attr:`max_items`; cycles become a
    marker; strings are cut and cleaned; other objects become their bounded ``repr``.
    Subclasses redact by key (:meth:`field`) or rewrite text (:attr:`text_filter`).
    """

    def __init__(
        self,
        *,
        max_repr_length: int = 2000,
        max_text_length: int = MAX_TEXT_LENGTH,
        max_depth: int = MAX_DEPTH,
        max_items: int = MAX_ITEMS,
        text_filter: TextFilter | None = None,
        timeout: float = USER_CODE_TIMEOUT_S,
    ) -> None:
        self.max_repr_length = max_repr_length
        self.max_text_length = max_text_length
        self.max_depth = max_depth
        self.max_items = max_items
        self.text_filter = text_filter
        self.timeout = timeout

    # Public entries ----------------------------------------------------------------------
    def text(self, text: str, limit: int | None = None) -> str:
        """*text* (a str) cut, cleaned and filtered."""
        text = clean_text(text, self.max_text_length if limit is None else limit)
        return text if self.text_filter is None else self.text_filter(text)

    def mapping(self, mapping: Mapping[Any, Any] | None) -> dict[str, Any]:
        """A mapping of fields (log fields, tags, context) as JSON data. Never raises."""
        if not mapping:
            return {}
        try:
            return self._mapping(mapping, 0, set())
        except Exception as exc:  # a mapping whose own methods misbehave
            return {"[unreadable]": placeholder(mapping, type(exc).__name__)}

    def fields(self, fields: Mapping[Any, Any]) -> dict[str, Any]:
        """*fields* as :meth:`mapping` makes them; a dict of plain values that need no change
        is returned as it is (the hot path: a fresh ``**kwargs`` dict)."""
        if type(fields) is dict and plain_fields(fields, self.kept_key, self.plain_text):
            return fields
        return self.mapping(fields)

    def plain_text(self, text: str) -> bool:
        """Whether *text* is kept as it is."""
        return self.text(text) is text

    def kept_key(self, key: Any) -> bool:
        """Whether field *key* and its value are kept as they are (no redaction by name)."""
        return type(key) is str and len(key) <= 200 and key.isascii()

    def value(self, value: Any, depth: int = 0, seen: set[int] | None = None) -> Any:
        """One value as JSON data. Never raises."""
        try:
            return self._value(value, depth, set() if seen is None else seen)
        except RecursionError:
            return placeholder(value, "nested too deeply")
        except Exception as exc:
            return placeholder(value, f"{type(exc).__name__}: {_exception_text(exc)}")

    def field(self, key: str, value: Any, depth: int, seen: set[int]) -> Any:
        """The kept value of field *key* (a hook for redaction by name)."""
        return self.value(value, depth + 1, seen)

    def key(self, key: Any) -> str:
        """A mapping key as the text a record keeps."""
        name = key if type(key) is str else safe_str(key, self.max_repr_length, self.timeout)
        return clean_text(name, 200)

    # Walking -----------------------------------------------------------------------------
    def _value(self, value: Any, depth: int, seen: set[int]) -> Any:
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind is bool or value is None:
            return value
        if kind is int:
            return int_value(value)
        if kind is float:
            return float_value(value)
        if isinstance(value, (Mapping, list, tuple, set, frozenset, collections.deque)):
            return self._container(value, depth, seen)
        if isinstance(value, enum.Enum):
            return self.value(value.value, depth, seen)
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int_value(int(value))
        if isinstance(value, float):
            return float_value(float(value))
        if isinstance(value, str):
            return self.text(str.__str__(value))
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
            return value.isoformat()
        if isinstance(value, (uuid.UUID, Decimal, PurePath)):
            return self.text(safe_str(value, self.max_text_length, self.timeout))
        if isinstance(value, (bytes, bytearray, memoryview)):
            return safe_repr(bytes(value[: self.max_repr_length]), self.max_repr_length)
        if isinstance(value, BaseException):
            text = f"{type(value).__name__}: {safe_str(value, self.max_repr_length, self.timeout)}"
            return self.text(text, self.max_repr_length)
        return self.text(safe_repr(value, self.max_repr_length, self.timeout))

    def _container(self, value: Any, depth: int, seen: set[int]) -> Any:
        if depth >= self.max_depth:
            return f"[cut at depth {self.max_depth}: {type(value).__name__}]"
        marker = id(value)
        if marker in seen:
            return f"[cycle: {type(value).__name__}]"
        seen.add(marker)
        try:
            if isinstance(value, Mapping):
                return self._mapping(value, depth, seen)
            return self._sequence(value, depth, seen)
        finally:
            seen.discard(marker)

    def _mapping(self, mapping: Mapping[Any, Any], depth: int, seen: set[int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            items = list(islice(mapping.items(), self.max_items + 1))
        except Exception as exc:
            return {"[unreadable]": placeholder(mapping, type(exc).__name__)}
        for index, (key, value) in enumerate(items):
            if index >= self.max_items:
                out["[more]"] = f"{_size(mapping) - self.max_items} more items not kept"
                break
            name = self.key(key)
            out[name] = self.field(name, value, depth, seen)
        return out

    def _sequence(self, value: Any, depth: int, seen: set[int]) -> list[Any]:
        out: list[Any] = []
        limit = self.max_items
        iterator = iter(value)
        if isinstance(value, (set, frozenset)) and len(value) <= limit:
            try:  # a stable order for small sets of plain values
                iterator = iter(sorted(value))
            except Exception:
                iterator = iter(value)
        for index, item in enumerate(iterator):
            if index >= limit:
                more = _size(value) - limit
                out.append(f"[{more} more items not kept]" if more > 0 else "[more items]")
                break
            out.append(self.value(item, depth + 1, seen))
        return out


def _size(value: Any) -> int:
    try:
        return len(value)
    except Exception:
        return -1


#: The serializer with default limits, for values that have no configuration at hand.
DEFAULT_SERIALIZER = ValueSerializer()


def to_jsonable(value: Any) -> Any:
    """*value* as JSON data every writer can write, with the default limits. Never raises."""
    return DEFAULT_SERIALIZER.value(value)


def repair(value: Any, replaced: list[str] | None = None, path: str = "") -> Any:
    """A copy of the record *value* (JSON-like data) that every writer can write.

    Unlike :class:`ValueSerializer` it cuts nothing: records were bounded when their values
    entered. Text is made writable; each part that cannot be kept (an over-long integer, a
    non-finite float, an object) is replaced, and its path is added to *replaced*.
    """
    kind = type(value)
    if kind is str:
        return writable_text(value)
    if kind is bool or value is None:
        return value
    if kind is int:
        kept: Any = int_value(value)
        if type(kept) is int:
            return kept
    elif kind is float:
        if math.isfinite(value):
            return value
        kept = float_value(value)
    elif kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = writable_text(key) if type(key) is str else safe_str(key, 200)
            out[name] = repair(item, replaced, f"{path}.{name}" if path else name)
        return out
    elif kind is list or kind is tuple:
        return [repair(item, replaced, f"{path}[{index}]") for index, item in enumerate(value)]
    else:
        kept = DEFAULT_SERIALIZER.value(value)
    if replaced is not None and len(replaced) < 20:
        replaced.append(f"{path or 'value'}: {placeholder(value, 'replaced')}")
    return kept


def field_text(value: Any) -> str:
    """The text of a field value, as log filters match it and CSV cells show it: ``""`` for
    ``None``, ``true``/``false``, a number's repr, text as it is, anything else as JSON with
    sorted keys (through the one serializer; what cannot sort or write is repaired first)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=to_jsonable, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):  # an over-long integer, keys that do not sort
        return json.dumps(repair(value), default=to_jsonable, ensure_ascii=False)


__all__ = [
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_TEXT_LENGTH",
    "THREAD_FLAGS",
    "USER_CODE_TIMEOUT_S",
    "ValueSerializer",
    "bounded_call",
    "clean_text",
    "encode_text",
    "field_text",
    "float_value",
    "in_bounded_call",
    "int_value",
    "label_text",
    "placeholder",
    "plain",
    "repair",
    "safe_repr",
    "safe_str",
    "to_jsonable",
    "truncate_text",
    "writable_text",
]
