"""records.Record / FrozenRecord: what the configuration model relied on from @dataclass."""

from __future__ import annotations

import pytest

from squidguard_bloom.config.model import Config, IPEntry, PassItem, Pos, Source


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
