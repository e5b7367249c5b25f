"""The package's dataclasses share __repr__, __eq__ and __hash__: they behave as generated ones."""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

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
