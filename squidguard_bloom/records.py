"""Plain data classes, each field declared once, without the start-up cost of ``@dataclass``.

A record declares its fields as class annotations, with defaults where it
has them, as a dataclass does::

    class LogSpec(FrozenRecord):
        path: str
        anonymous: bool = False
        verbose: bool = False

and gets ``__slots__`` (the fields, in order), a typed ``__init__``
(positional or keyword, defaults as written), equality (same class, equal
fields) and a repr; :class:`FrozenRecord` adds hashing and refuses
assignment after ``__init__`` (an ``AttributeError``, as a frozen dataclass
raises).  A mutable default is written ``field(default_factory=list)``
(``None`` given for it also gets a new list).

Why not ``@dataclass(slots=True)``: it imports ``inspect`` and generates,
compiles and executes each class's methods from source at import, about
0.6 ms a class plus 7 ms for the import on the machine of
docs/benchmarks.md, and a helper start imports some thirty records.  Here
``__init__`` is a copy of a template for that number of fields (written
out below, so compiled with this module) whose code object gets the
class's field names as its parameter names and constants: about 3 µs a
class, and it runs as fast as a hand-written one (``object.__setattr__``
per field, which is what a frozen record needs).
Type checkers read the annotations through ``dataclass_transform``.
"""

from __future__ import annotations

from types import FunctionType

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, dataclass_transform
else:

    def dataclass_transform(**_kwargs: object) -> Callable[[type], type]:
        """At run time: nothing (type checkers read typing's)."""
        return lambda cls: cls


#: Sets one field of a record, past FrozenRecord's ``__setattr__``.
setfield = object.__setattr__


class Factory:
    """A mutable default: made anew for each record built without that field."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], Any]) -> Any:
    """A field whose default is ``default_factory()``, called for each new record."""
    return Factory(default_factory)


def _make_init(qualname: str, fields: tuple[str, ...], defaults: tuple[object, ...],
               factories: bool) -> Callable[..., None]:
    if len(fields) >= len(_TEMPLATES):
        raise TypeError(f"{qualname}: more than {len(_TEMPLATES) - 1} fields; add a template")
    code = _TEMPLATES[len(fields)].__code__
    consts = tuple(fields[int(c[2:])] if isinstance(c, str) and c.startswith("_f") else c
                   for c in code.co_consts)
    code = code.replace(co_varnames=("self", *fields), co_consts=consts,
                        co_name="__init__", co_qualname=f"{qualname}.__init__")
    init = FunctionType(code, _GLOBALS, "__init__", defaults or None)
    if not factories:
        return init

    def __init__(self: Record, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)
        self._fill_defaults()

    __init__.__qualname__ = init.__qualname__
    __init__.__wrapped__ = init  # type: ignore[attr-defined]  # what inspect.signature shows
    return __init__


class _RecordType(type):
    """Turns a record's annotations into ``__slots__``, ``_fields`` and ``__init__``."""

    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> _RecordType:
        own = tuple(f for f, kind in ns.get("__annotations__", {}).items()
                    if not str(kind).startswith("ClassVar"))
        inherited: tuple[str, ...] = ()
        defaults: dict[str, object] = {}
        for base in reversed(bases):
            inherited += tuple(f for f in getattr(base, "_fields", ()) if f not in inherited)
            defaults.update(getattr(base, "_defaults", {}))
        for f in own:
            if f in ns:
                defaults[f] = ns.pop(f)
        fields = inherited + tuple(f for f in own if f not in inherited)
        if ns.get("__slots__"):
            raise TypeError(f"{name}: declare a record's fields as annotations, not __slots__")
        ns["__slots__"] = tuple(f for f in own if f not in inherited)
        ns["_fields"] = fields
        ns["_defaults"] = defaults
        cls = super().__new__(mcs, name, bases, ns)
        if fields and "__init__" not in ns:
            required = [f for f in fields if f not in defaults]
            if fields[: len(required)] != tuple(required):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            values = tuple(defaults[f] for f in fields[len(required) :])
            factories = any(isinstance(v, Factory) for v in values)
            if factories:  # None in the signature, replaced by a new value in _fill_defaults
                values = tuple(None if isinstance(v, Factory) else v for v in values)
            cls.__init__ = _make_init(ns["__qualname__"], fields, values, factories)  # type: ignore[misc]
        return cls


@dataclass_transform(field_specifiers=(field,))
class Record(metaclass=_RecordType):  # noqa: PLW1641 - unhashable, as a mutable dataclass is
    """Fields from the annotations, in order; equality and repr over them."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]]  # set by _RecordType
    _defaults: ClassVar[dict[str, object]]

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def _fill_defaults(self) -> None:
        """Give each factory field left at None a new value (from __init__)."""
        for name, default in self._defaults.items():
            if isinstance(default, Factory) and getattr(self, name) is None:
                setfield(self, name, default.make())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__qualname__}({fields})"


class FrozenRecord(Record):
    """A :class:`Record` whose fields are set once, by ``__init__``."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of {self.__class__.__qualname__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of {self.__class__.__qualname__}")

    def __hash__(self) -> int:
        return hash(self._values())


# The __init__ templates, one per number of fields: parameter _k sets field "_fk", both
# renamed per class by _make_init.  Written out rather than made with exec so that they are
# compiled once, into this module's .pyc, instead of at every start of the helper.
_set = setfield
_GLOBALS = {"_set": setfield}


def _init_0(self: object) -> None:
    pass


def _init_1(self: object, _0: object) -> None:
    _set(self, "_f0", _0)


def _init_2(self: object, _0: object, _1: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)


def _init_3(self: object, _0: object, _1: object, _2: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)


def _init_4(self: object, _0: object, _1: object, _2: object, _3: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)
    _set(self, "_f3", _3)


def _init_5(self: object, _0: object, _1: object, _2: object, _3: object, _4: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)
    _set(self, "_f3", _3)
    _set(self, "_f4", _4)


def _init_6(self: object, _0: object, _1: object, _2: object, _3: object, _4: object, _5: object
) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)
    _set(self, "_f3", _3)
    _set(self, "_f4", _4)
    _set(self, "_f5", _5)


def _init_7(self: object, _0: object, _1: object, _2: object, _3: object, _4: object, _5: object,
            _6: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)
    _set(self, "_f3", _3)
    _set(self, "_f4", _4)
    _set(self, "_f5", _5)
    _set(self, "_f6", _6)


def _init_8(self: object, _0: object, _1: object, _2: object, _3: object, _4: object, _5: object,
            _6: object, _7: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)
    _set(self, "_f3", _3)
    _set(self, "_f4", _4)
    _set(self, "_f5", _5)
    _set(self, "_f6", _6)
    _set(self, "_f7", _7)


def _init_9(self: object, _0: object, _1: object, _2: object, _3: object, _4: object, _5: object,
            _6: object, _7: object, _8: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)
    _set(self, "_f3", _3)
    _set(self, "_f4", _4)
    _set(self, "_f5", _5)
    _set(self, "_f6", _6)
    _set(self, "_f7", _7)
    _set(self, "_f8", _8)


def _init_10(self: object, _0: object, _1: object, _2: object, _3: object, _4: object, _5: object,
             _6: object, _7: object, _8: object, _9: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)
    _set(self, "_f3", _3)
    _set(self, "_f4", _4)
    _set(self, "_f5", _5)
    _set(self, "_f6", _6)
    _set(self, "_f7", _7)
    _set(self, "_f8", _8)
    _set(self, "_f9", _9)


def _init_11(self: object, _0: object, _1: object, _2: object, _3: object, _4: object, _5: object,
             _6: object, _7: object, _8: object, _9: object, _10: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)
    _set(self, "_f3", _3)
    _set(self, "_f4", _4)
    _set(self, "_f5", _5)
    _set(self, "_f6", _6)
    _set(self, "_f7", _7)
    _set(self, "_f8", _8)
    _set(self, "_f9", _9)
    _set(self, "_f10", _10)


def _init_12(self: object, _0: object, _1: object, _2: object, _3: object, _4: object, _5: object,
             _6: object, _7: object, _8: object, _9: object, _10: object, _11: object) -> None:
    _set(self, "_f0", _0)
    _set(self, "_f1", _1)
    _set(self, "_f2", _2)
    _set(self, "_f3", _3)
    _set(self, "_f4", _4)
    _set(self, "_f5", _5)
    _set(self, "_f6", _6)
    _set(self, "_f7", _7)
    _set(self, "_f8", _8)
    _set(self, "_f9", _9)
    _set(self, "_f10", _10)
    _set(self, "_f11", _11)


_TEMPLATES = (_init_0, _init_1, _init_2, _init_3, _init_4, _init_5, _init_6, _init_7, _init_8,
              _init_9, _init_10, _init_11, _init_12)
