"""The package's dataclasses, with ``__repr__``, ``__eq__`` and ``__hash__`` shared, not generated.

:func:`dataclasses.dataclass` writes each class's methods as source text and compiles it when the
class is defined: about 40 µs a method, five or six methods a class, every process. A
``--kari-debug`` run defines some fifty dataclasses before its first test, so a third of that
went to compiling the same ``__repr__``, ``__eq__`` and ``__hash__`` again and again. Here those
three are one function each, compiled once into the package's bytecode and reading a class's
fields through a getter made when it is defined: every class is still a real dataclass
(``fields``, ``replace``, ``asdict``, ``__match_args__``, frozen or slotted as asked), and its
repr, equality and hash are those the generated methods give (same texts, same truth, same hash
values: a hash over the same tuple of fields).
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # typing has it from Python 3.11; only type checkers read it

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda function: function


_T = TypeVar("_T", bound=type)

#: Per class: (repr field names, compare getter, hash getter); set when the class is defined.
_REPR_NAMES = "__kari_repr_names__"
_COMPARED = "__kari_compared__"
_HASHED = "__kari_hashed__"


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The fields *names* of an instance as one tuple (what the generated methods compare)."""
    if len(names) >= 2:
        return attrgetter(*names)  # a tuple for two names or more
    if len(names) == 1:
        single = attrgetter(names[0])
        return lambda obj: (single(obj),)
    return lambda obj: ()


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    cls = self.__class__
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in getattr(cls, _REPR_NAMES))
    return f"{cls.__qualname__}({shown})"


def _eq(self: Any, other: object) -> Any:  # a bool, or NotImplemented
    if other.__class__ is self.__class__:
        compared: Callable[[Any], tuple[Any, ...]] = getattr(self.__class__, _COMPARED)
        return compared(self) == compared(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(getattr(self.__class__, _HASHED)(self))


def _share_methods(cls: _T, *, repr: bool, eq: bool, frozen: bool, unsafe_hash: bool) -> _T:
    """Give dataclass *cls* the shared methods dataclass() was told not to write."""
    fields = dataclasses.fields(cls)
    if repr:
        setattr(cls, _REPR_NAMES, tuple(f.name for f in fields if f.repr))
        cls.__repr__ = _repr  # type: ignore[assignment]
    if eq:
        setattr(cls, _COMPARED, _getter(tuple(f.name for f in fields if f.compare)))
        cls.__eq__ = _eq  # type: ignore[assignment]
        if frozen or unsafe_hash:
            hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
            setattr(cls, _HASHED, _getter(hashed))
            cls.__hash__ = _hash  # type: ignore[assignment]
        else:
            cls.__hash__ = None  # type: ignore[assignment]  # as dataclass(): unhashable
    return cls


@overload
def dataclass(cls: _T, /) -> _T: ...


@overload
def dataclass(
    *, frozen: bool = False, slots: bool = False, kw_only: bool = False, repr: bool = True,
    eq: bool = True, unsafe_hash: bool = False, init: bool = True,
) -> Callable[[_T], _T]: ...  # fmt: skip


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def dataclass(
    cls: _T | None = None,
    /,
    *,
    frozen: bool = False,
    slots: bool = False,
    kw_only: bool = False,
    repr: bool = True,
    eq: bool = True,
    unsafe_hash: bool = False,
    init: bool = True,
) -> _T | Callable[[_T], _T]:
    """:func:`dataclasses.dataclass` with the shared ``__repr__``, ``__eq__`` and ``__hash__``.

    A class that defines one of them itself keeps its own (as with ``dataclass()``), and so does
    one whose ``__hash__`` ``dataclass()`` would leave alone.
    """

    def wrap(cls: _T) -> _T:
        own = cls.__dict__
        share_repr = repr and "__repr__" not in own
        # dataclass() keeps a __hash__ the class body defines, and one it leaves to eq=False.
        share_eq = eq and "__eq__" not in own and "__hash__" not in own
        made: type = dataclasses.dataclass(
            cls,
            init=init,
            repr=repr and not share_repr,
            eq=eq and not share_eq,
            unsafe_hash=unsafe_hash and not share_eq,
            frozen=frozen,
            slots=slots,
            kw_only=kw_only,
        )
        return _share_methods(
            cast(_T, made), repr=share_repr, eq=share_eq, frozen=frozen, unsafe_hash=unsafe_hash
        )

    return wrap if cls is None else wrap(cls)
