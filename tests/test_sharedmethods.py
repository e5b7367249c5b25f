"""The package's dataclasses share __repr__, __eq__ and __hash__: they behave as generated ones."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
import types
from dataclasses import InitVar, field
from typing import Any, ClassVar

import pytest

from pytest_kari_debug import sharedmethods

SHAPES: list[dict[str, Any]] = [
    {},
    {"frozen": True},
    {"frozen": True, "slots": True},
    {"slots": True},
    {"unsafe_hash": True},
    {"eq": False},
    {"repr": False},
    {"frozen": True, "eq": False},
    {"kw_only": True, "frozen": True},
]


def _pair(options: dict[str, Any]) -> tuple[type, type]:
    """The same class made by dataclasses.dataclass and by sharedmethods.dataclass."""
    made = []
    for decorate in (dataclasses.dataclass, sharedmethods.dataclass):

        class Point:
            """A point (a docstring: its __init__ is generated at first use)."""

            x: int
            label: str = "p"
            hidden: list[int] = dataclasses.field(default_factory=list, repr=False)
            loose: float = dataclasses.field(default=0.0, compare=False)
            unhashed: int = dataclasses.field(default=0, hash=False)

        made.append(decorate(**options)(Point))
    return made[0], made[1]


def _hash_or_error(value: object) -> object:
    try:
        found = hash(value)
    except TypeError as exc:
        return str(exc)
    return "identity" if found == object.__hash__(value) else found


def _observed(cls: type) -> tuple[object, ...]:
    """What a user sees of *cls*'s instances: repr, hash, equality in every direction."""
    kwargs = {"x": 1, "label": "a", "hidden": [1], "loose": 2.5, "unhashed": 3}
    value = cls(**kwargs)
    same = cls(**{**kwargs, "loose": 9.0, "unhashed": 4})  # differs only where not compared
    other = cls(**{**kwargs, "x": 2})
    copied = copy.deepcopy(value)
    return (
        re.sub(" at 0x[0-9a-f]+", "", repr(value)),
        _hash_or_error(value),
        value == same,
        value == other,
        value != other,
        value == copied,
        value.__eq__("text"),
        value == value,
        dataclasses.asdict(value),
        dataclasses.replace(value, x=5).x,
        cls.__match_args__,
        [f.name for f in dataclasses.fields(cls)],
    )


@pytest.mark.parametrize("options", SHAPES, ids=lambda o: ",".join(o) or "plain")
def test_repr_eq_and_hash_are_those_of_a_generated_dataclass(options: dict[str, Any]) -> None:
    """Same repr text, same equality (compare=False fields ignored, NotImplemented for other
    types), the same hash value or the same unhashable error, and still a dataclass."""
    generated, shared = _pair(options)
    assert dataclasses.is_dataclass(shared)
    assert _observed(shared) == _observed(generated)
    assert shared(x=1) != generated(x=1)  # another class, however equal its fields


def test_a_frozen_class_still_refuses_assignment_and_is_a_set_member() -> None:
    @sharedmethods.dataclass(frozen=True, slots=True)
    class Key:
        name: str
        size: int = 0

    value = Key("a", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.size = 2  # type: ignore[misc]
    assert {value, Key("a", 1)} == {Key("a", 1)}
    assert hash(value) == hash(("a", 1))
    assert not hasattr(value, "__dict__")


def _frozen_pair(slots: bool) -> tuple[type, type]:
    """A frozen class made by both decorators (the shared __setattr__/__delattr__ apply)."""
    made = []
    for decorate in (dataclasses.dataclass, sharedmethods.dataclass):

        class Frozen:
            """Frozen."""

            x: int
            y: list[int] = field(default_factory=list)

        made.append(decorate(frozen=True, slots=slots)(Frozen))
    return made[0], made[1]


def _outcome(action: Any) -> str:
    try:
        action()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "done"


def _frozen_observed(cls: type) -> list[object]:
    """What assigning and deleting do on *cls*, a plain subclass of it, and its dataclass
    subclasses; the state pickling keeps, and what copying gives back."""
    value = cls(1, [2])

    class Sub(cls):  # type: ignore[valid-type, misc]
        pass

    sub = Sub(3)
    seen: list[object] = [
        _outcome(lambda: setattr(value, "x", 2)),
        _outcome(lambda: setattr(value, "other", 2)),
        _outcome(lambda: delattr(value, "x")),
        _outcome(lambda: delattr(value, "other")),
        _outcome(lambda: setattr(sub, "x", 2)),
        _outcome(lambda: setattr(sub, "other", 2)),
        _outcome(lambda: delattr(sub, "other")),
        _outcome(lambda: dataclasses.dataclass(type("Loose", (cls,), {"__annotations__": {}}))),
        _outcome(lambda: dataclasses.dataclass(frozen=True)(type("Also", (cls,), {}))(4).x),
        value.__reduce_ex__(4)[2],  # the state pickle and copy keep
        dataclasses.astuple(copy.copy(value)),
        dataclasses.astuple(copy.deepcopy(value)),
        cls.__dataclass_params__.frozen,  # type: ignore[attr-defined]
        vars(cls)["__setattr__"].__qualname__,
        vars(cls)["__delattr__"].__qualname__,
        sorted(n for n in ("__getstate__", "__setstate__") if n in vars(cls)),
    ]
    return seen


@pytest.mark.parametrize("slots", [False, True], ids=["plain", "slots"])
def test_a_frozen_class_refuses_as_a_generated_one_does(slots: bool) -> None:
    """The shared ``__setattr__``/``__delattr__``: the same errors for fields and other names,
    the same fallback for a subclass, the same checks on dataclass subclasses, the same
    pickled state and copies."""
    generated, shared = _frozen_pair(slots)
    assert _frozen_observed(shared) == _frozen_observed(generated)


def test_frozen_classes_share_their_setattr_code() -> None:
    """Two frozen classes compile no ``__setattr__``/``__delattr__`` of their own."""
    first, second = _frozen_pair(False)[1], _frozen_pair(True)[1]
    for name in ("__setattr__", "__delattr__"):
        assert vars(first)[name].__code__ is vars(second)[name].__code__


def test_a_recursive_value_shows_an_ellipsis_as_a_generated_repr_does() -> None:
    generated, shared = _pair({})
    one, two = generated(1), shared(1)
    one.hidden, two.hidden = [one], [two]
    one.label, two.label = one, two  # type: ignore[assignment]
    assert repr(two) == repr(one)
    assert repr(two).endswith("Point(x=1, label=..., loose=0.0, unhashed=0)")


def test_methods_the_class_defines_itself_are_kept() -> None:
    @sharedmethods.dataclass(frozen=True)
    class Own:
        x: int

        def __repr__(self) -> str:
            return "own"

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return 7

    assert (repr(Own(1)), Own(1) == 5, hash(Own(1))) == ("own", True, 7)


def test_a_subclass_compares_and_shows_its_own_fields() -> None:
    @sharedmethods.dataclass(frozen=True)
    class Base:
        x: int

    @sharedmethods.dataclass(frozen=True)
    class Child(Base):
        y: int = 0

    assert (
        repr(Child(1, 2))
        == "test_a_subclass_compares_and_shows_its_own_fields.<locals>.Child(x=1, y=2)"
    )
    assert Child(1, 2) != Child(1, 3)
    assert Base(1) != Child(1, 0)
    assert hash(Child(1, 2)) == hash((1, 2))


def _init_pair(options: dict[str, Any]) -> tuple[type, type]:
    """A class with every kind of field ``__init__`` handles, made by both decorators."""
    made = []
    for decorate in (dataclasses.dataclass, sharedmethods.dataclass):

        class Shape:
            """A shape."""

            self: int  # __init__ names its own first parameter otherwise
            size: InitVar[int] = 2
            kind: ClassVar[str] = "shape"
            tags: list[str] = field(default_factory=list)
            area: int = field(init=False, default=0)
            extra: int = field(default=1, kw_only=True)

            def __post_init__(self, size: int) -> None:
                object.__setattr__(self, "area", self.self * size)

        made.append(decorate(**options)(Shape))
    return made[0], made[1]


def _made_by_init(cls: type) -> tuple[object, ...]:
    """What ``__init__`` does: its signature, the fields it sets, the errors it raises."""
    errors = []
    for args, kwargs in (((), {}), ((1, 2, [], 3), {}), ((1,), {"nope": 1})):
        try:
            cls(*args, **kwargs)
        except TypeError as exc:
            errors.append(str(exc))
    return (
        str(inspect.signature(cls)),
        cls.__init__.__qualname__,
        dataclasses.asdict(cls(self=3)),
        dataclasses.asdict(cls(self=3, size=4, tags=["t"], extra=5)),
        dataclasses.asdict(dataclasses.replace(cls(self=3), self=4, size=1)),
        errors,
    )


@pytest.mark.parametrize("options", SHAPES, ids=lambda o: ",".join(o) or "plain")
def test_init_is_that_of_a_generated_dataclass(options: dict[str, Any]) -> None:
    """Same signature, defaults, factories, init-only values, __post_init__ and errors."""
    if "eq" in options or "repr" in options or "unsafe_hash" in options:
        pytest.skip("the same __init__ as the plain shape")
    generated, shared = _init_pair(options)
    assert _made_by_init(shared) == _made_by_init(generated)


def test_init_is_generated_at_the_first_use_of_the_class() -> None:
    """A class never instantiated never compiles its __init__; the first use puts the
    generated function in the class, for itself and for subclasses that are not dataclasses."""

    @sharedmethods.dataclass(frozen=True)
    class Base:
        """A base."""

        x: int

    @sharedmethods.dataclass(frozen=True)
    class Child(Base):
        """A child."""

        y: int = 0

    class Plain(Base):
        def __init__(self, x: int) -> None:
            super().__init__(x * 2)

    assert not isinstance(vars(Base)["__init__"], types.FunctionType)
    assert not isinstance(vars(Child)["__init__"], types.FunctionType)
    assert Child(1, 2).y == 2
    assert isinstance(vars(Child)["__init__"], types.FunctionType)
    assert not isinstance(vars(Base)["__init__"], types.FunctionType)
    assert Plain(2).x == 4
    assert isinstance(vars(Base)["__init__"], types.FunctionType)
    assert Base.__dataclass_params__.init  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Base(1).x = 2  # type: ignore[misc]


def test_init_is_generated_at_once_where_waiting_could_differ() -> None:
    """Without a docstring (dataclass() writes the signature as one), with an __init__ of its
    own, or slotted with a default that only __init__ sets: as dataclass() does."""

    @sharedmethods.dataclass
    class Undocumented:
        x: int

    @sharedmethods.dataclass(slots=True)
    class Slotted:
        """Slotted."""

        x: int
        y: int = field(init=False, default=3)

    assert isinstance(vars(Undocumented)["__init__"], types.FunctionType)
    assert Undocumented.__doc__ == "Undocumented(x: 'int')"
    assert isinstance(vars(Slotted)["__init__"], types.FunctionType)
    assert Slotted(1).y == 3
