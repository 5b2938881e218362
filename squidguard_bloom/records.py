"""Plain data classes without the start-up cost of ``@dataclass``.

``@dataclass(frozen=True, slots=True)`` generates and compiles its methods
when the module is imported: about 0.7 ms a class on the machine of
docs/benchmarks.md, and the configuration model alone has sixteen, a large
part of a helper start that Squid waits for.  These two bases give what the
model relied on: equality (same class, equal fields) and a repr, both over
``__slots__``; :class:`FrozenRecord` adds hashing and refuses assignment
after ``__init__`` (an ``AttributeError``, as a frozen dataclass raises).
A subclass declares ``__slots__`` (the field order, so not sorted),
annotations for the type checker, and a typed ``__init__``.
"""

from __future__ import annotations


class Record:  # noqa: PLW1641 - unhashable, as a mutable dataclass is
    """Fields in ``__slots__`` (in that order); equality and repr over them."""

    __slots__ = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{self.__class__.__qualname__}({fields})"


#: Sets one field of a :class:`FrozenRecord` from its ``__init__``: the
#: cheapest way past its ``__setattr__``, for records made per request.
setfield = object.__setattr__


class FrozenRecord(Record):
    """A :class:`Record` whose fields are set once, by ``__init__`` through :meth:`_set`."""

    __slots__ = ()

    def _set(self, **fields: object) -> None:
        for name, value in fields.items():
            setfield(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of {self.__class__.__qualname__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of {self.__class__.__qualname__}")

    def __hash__(self) -> int:
        return hash(self._values())
