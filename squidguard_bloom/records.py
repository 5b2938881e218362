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
``__init__`` is made from a template per number of fields (compiled once
per arity, at the first class that needs it) whose code object is copied
with the class's field names as its parameter names and constants, about
3 µs a class, and it runs as fast as a hand-written one
(``object.__setattr__`` per field, which is what a frozen record needs).
Type checkers read the annotations through ``dataclass_transform``.
"""

from __future__ import annotations

from types import FunctionType

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType
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


_TEMPLATES: dict[tuple[int, bool], CodeType] = {}
_GLOBALS = {"_set": setfield}


def _template(arity: int, factories: bool) -> CodeType:
    """The code of ``__init__(self, _0, …)`` setting fields ``_f0``, … (renamed per class)."""
    key = (arity, factories)
    code = _TEMPLATES.get(key)
    if code is None:
        params = "".join(f", _{i}" for i in range(arity))
        body = "".join(f"    _set(self, '_f{i}', _{i})\n" for i in range(arity))
        if factories:
            body += "    self._fill_defaults()\n"
        namespace: dict[str, Any] = {}
        exec(f"def __init__(self{params}):\n{body or '    pass'}\n", _GLOBALS, namespace)
        code = _TEMPLATES[key] = namespace["__init__"].__code__
    return code


def _make_init(qualname: str, fields: tuple[str, ...], defaults: tuple[object, ...],
               factories: bool) -> Callable[..., None]:
    code = _template(len(fields), factories)
    consts = tuple(fields[int(c[2:])] if isinstance(c, str) and c.startswith("_f") else c
                   for c in code.co_consts)
    code = code.replace(co_varnames=("self", *fields), co_consts=consts,
                        co_name="__init__", co_qualname=f"{qualname}.__init__")
    return FunctionType(code, _GLOBALS, "__init__", defaults or None)


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
        ns["__slots__"] = tuple(f for f in own if f not in inherited) + tuple(
            ns.get("__slots__", ()))
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
