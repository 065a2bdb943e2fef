"""Frozen value classes, declared like dataclasses, with one compiled method per class.

`class Key(Value): variety: str; size: int | None = None` gives what
`@dataclass(frozen=True, slots=True)` would: `__slots__`, an `__init__` taking the fields in
order (positional or by name, defaults last), `__repr__`, `__eq__` (same class, same fields),
`__hash__`, `__match_args__`, immutability and pickling, and a `__post_init__` called at the end
of `__init__` (it sets fields with `object.__setattr__`, as with a frozen dataclass). A class
that means identity, as `eq=False` does, says `__eq__ = object.__eq__` and `__hash__ =
object.__hash__`. Type checkers see dataclasses through `dataclass_transform`.

Why not `dataclasses`: it compiles several methods per class with `exec` (~0.5-0.8 ms a class on
the machines we run on) and imports `inspect`, and annextui-shell imports some twenty of these
classes at every client connection, where start-up is the one figure git-annex-shell beats us
on. Here only `__init__` is compiled per class (so construction is as fast as a dataclass's);
the other methods are shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast, dataclass_transform

_T = TypeVar("_T")


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a value (dataclasses raises its own class of the same name)."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def value_field(*, default_factory: Callable[[], _T]) -> _T:
    """A field whose default is made fresh for each instance (`field(default_factory=…)`)."""
    return cast(_T, _Factory(default_factory))


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


@dataclass_transform(frozen_default=True, eq_default=True, field_specifiers=(value_field,))
class _ValueMeta(type):
    def __new__(
        mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any], **kwargs: Any
    ) -> _ValueMeta:
        own = [n for n, a in ns.get("__annotations__", {}).items() if not _is_classvar(a)]
        defaults = {n: ns.pop(n) for n in own if n in ns}
        ns.setdefault("__slots__", tuple(own))
        cls = super().__new__(mcls, name, bases, ns, **kwargs)
        fields: tuple[str, ...] = (*getattr(cls, "_fields", ()), *own)
        inherited: dict[str, Any] = getattr(cls, "_defaults", {})
        type.__setattr__(cls, "_fields", fields)
        type.__setattr__(cls, "_defaults", {**inherited, **defaults})
        type.__setattr__(cls, "__match_args__", fields)
        if "__init__" not in ns:
            type.__setattr__(cls, "__init__", _make_init(cls, fields, {**inherited, **defaults}))
        return cls


def _make_init(cls: type, fields: tuple[str, ...], defaults: dict[str, Any]) -> Any:
    """One small compiled `__init__` per class (~0.06 ms; dataclasses compiles several methods
    and spends ~0.7 ms): constructing values stays as fast as a dataclass's."""
    params, body = [], []
    for name in fields:
        if name not in defaults:
            params.append(name)
        elif isinstance(defaults[name], _Factory):
            params.append(f"{name}=_FACTORY")
            body.append(f"    if {name} is _FACTORY: {name} = _defaults[{name!r}].make()")
        else:
            params.append(f"{name}=_defaults[{name!r}]")
        body.append(f"    _set(self, {name!r}, {name})")
    if callable(getattr(cls, "__post_init__", None)):  # as dataclasses call it: last
        body.append("    self.__post_init__()")
    src = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    ns: dict[str, Any] = {"_set": object.__setattr__, "_defaults": defaults, "_FACTORY": _Factory}
    exec(src, ns)  # field names are identifiers: the class statement has checked them
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


class Value(metaclass=_ValueMeta):
    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in self._fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._values())


_V = TypeVar("_V", bound=Value)


def replace(value: _V, **changes: Any) -> _V:
    """A copy of `value` with some fields changed (`dataclasses.replace`)."""
    fields = {n: getattr(value, n) for n in value._fields}
    unknown = changes.keys() - fields.keys()
    if unknown:
        raise TypeError(f"{type(value).__qualname__} has no field {', '.join(sorted(unknown))}")
    return type(value)(**{**fields, **changes})
