"""records.Record / FrozenRecord: fields declared once; what the model relied on from @dataclass."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import ClassVar

import pytest

import squidguard_bloom
from squidguard_bloom.core.config.model import Config, IPEntry, PassItem, Pos, Source
from squidguard_bloom.records import Factory, FrozenRecord, Record, field


def test_equality_is_by_class_and_fields() -> None:
    """Equal fields compare equal; another class with the same fields does not."""
    assert Pos("f", 2) == Pos("f", 2, 1)
    assert Pos("f", 2) != Pos("f", 2, 3)
    assert PassItem("x") != IPEntry("x", 0, 0)
    assert Pos("f", 1) != ("f", 1, 1)
    assert Source("s", Pos("f", 1)) == Source("s", Pos("f", 1))


def test_frozen_records_hash_and_refuse_assignment() -> None:
    """Frozen: hashable by value, and no field can be set or deleted after __init__."""
    assert {Pos("f", 1), Pos("f", 1)} == {Pos("f", 1)}
    pos = Pos("f", 1)
    with pytest.raises(AttributeError):
        pos.line = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del pos.file  # type: ignore[misc]
    with pytest.raises(AttributeError):
        pos.other = 1  # type: ignore[attr-defined]


def test_mutable_records_are_unhashable_and_keep_separate_defaults() -> None:
    """Mutable: fields can change, no hash; list defaults are not shared."""
    a, b = Source("a", Pos("f", 1)), Source("b", Pos("f", 2))
    a.ips.append(IPEntry("mask", 1, 1))
    assert b.ips == []
    assert Config("p", "d", "l").acls is not Config("p", "d", "l").acls
    with pytest.raises(TypeError):
        hash(a)


def test_repr_names_the_fields_in_order() -> None:
    """repr reads like a dataclass's."""
    assert repr(Pos("f", 1)) == "Pos(file='f', line=1, col=1)"
    assert repr(PassItem("ads", True)) == "PassItem(word='ads', negate=True)"


def _all_records() -> list[type[Record]]:
    """Every record class of the package (each module imported, subclasses walked)."""
    for info in pkgutil.walk_packages(squidguard_bloom.__path__, "squidguard_bloom."):
        if not info.name.endswith("__main__"):  # that one runs a program
            importlib.import_module(info.name)
    found: list[type[Record]] = []
    todo = [Record]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("squidguard_bloom.") and sub is not FrozenRecord:
                found.append(sub)
    return found


def test_every_record_declares_each_field_once_and_all_three_views_agree() -> None:
    """For each record: __slots__, the annotations and __init__'s parameters are the same
    fields in the same order, and __init__'s defaults are the declared ones."""
    found = _all_records()
    assert len(found) >= 30, [r.__name__ for r in found]
    for cls in found:
        # Annotations stay strings (``from __future__ import annotations``): read as written.
        own = [f for f, kind in inspect.get_annotations(cls).items()
               if not kind.startswith("ClassVar")]
        slots = [s for base in reversed(cls.__mro__) for s in base.__dict__.get("__slots__", ())]
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert [p.name for p in params] == list(cls._fields) == slots, cls
        assert list(cls._fields[-len(own):] if own else ()) == own, cls
        for p in params:
            declared = cls._defaults.get(p.name, inspect.Parameter.empty)
            if isinstance(declared, Factory):
                assert p.default is None, (cls, p.name)
            else:
                assert p.default is declared or p.default == declared, (cls, p.name)


class _Point(FrozenRecord):
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "point"


def test_generated_init_takes_positions_keywords_and_defaults() -> None:
    """__init__ reads like a dataclass's: names, defaults, fresh factory values, clear errors."""
    assert _Point(1) == _Point(x=1, y=0, tags=[])
    assert _Point(1, 2).y == 2
    assert _Point(1).tags is not _Point(1).tags
    assert _Point(1, tags=None).tags == []  # None stands for "make a new one"
    assert _Point.__slots__ == ("x", "y", "tags")
    assert _Point.kind == "point"
    assert _Point.__init__.__qualname__ == "_Point.__init__"
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        _Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        _Point(1, z=3)  # type: ignore[call-arg]


def test_a_field_without_default_after_one_with_is_refused() -> None:
    """As with dataclasses, the class itself is refused, naming the problem."""
    with pytest.raises(TypeError, match="Bad: a field without a default follows one with"):

        class Bad(Record):
            a: int = 1
            b: int


def test_fields_declared_as_slots_are_refused() -> None:
    """An old-style record (__slots__ and a hand-written __init__) is refused, naming the fix."""
    with pytest.raises(TypeError, match="Old: declare a record's fields as annotations"):

        class Old(Record):
            __slots__ = ("a",)

            def __init__(self, a: int) -> None:
                self.a = a
