"""annextui.values.Value behaves as `@dataclass(frozen=True, slots=True)` does, checked against
a real dataclass declared the same way."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from annextui.values import FrozenInstanceError, Value, value_field


class Point(Value):
    x: int
    y: int = 0
    tags: dict[str, str] = value_field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class DPoint:
    x: int
    y: int = 0
    tags: dict[str, str] = dataclasses.field(default_factory=dict)


class Point3(Point):
    z: int = 5


class Pair(Value):
    a: int
    b: str = ""


def test_construction_like_a_dataclass() -> None:
    for args, kwargs in (((1,), {}), ((1, 2), {}), ((), {"x": 3, "y": 4}), ((1,), {"tags": {}})):
        v, d = Point(*args, **kwargs), DPoint(*args, **kwargs)  # type: ignore[arg-type]
        assert (v.x, v.y, v.tags) == (d.x, d.y, d.tags)
    assert Point(1).tags is not Point(1).tags  # a fresh default each time
    for bad_args, bad_kwargs in (((), {}), ((1, 2, {}, 4), {}), ((1,), {"x": 2}), ((1,), {"q": 1})):
        with pytest.raises(TypeError):
            Point(*bad_args, **bad_kwargs)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            DPoint(*bad_args, **bad_kwargs)  # type: ignore[arg-type]


def test_value_semantics() -> None:
    a, b, c = Point(1, 2), Point(1, 2), Point(1, 3)
    assert a == b
    assert a != c
    p, q = Pair(1, "x"), Pair(1, "x")
    assert hash(p) == hash(q)
    assert len({p, q, Pair(2)}) == 2
    with pytest.raises(TypeError):  # a dict field makes it unhashable, as with dataclasses
        hash(a)
    with pytest.raises(TypeError):
        hash(DPoint(1, 2))
    assert Point(1) != Point3(1)  # another class is never equal, as with dataclasses
    assert repr(a) == "Point(x=1, y=2, tags={})"
    assert repr(Point3(1)) == "Point3(x=1, y=0, tags={}, z=5)"
    assert Point.__match_args__ == DPoint.__match_args__
    match Point3(7):
        case Point3(x, y, _, z):
            assert (x, y, z) == (7, 0, 5)
    assert not hasattr(a, "__dict__")


def test_frozen_and_copyable() -> None:
    a = Point(1, 2, {"k": "v"})
    with pytest.raises(FrozenInstanceError):
        a.x = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del a.y  # type: ignore[misc]
    assert isinstance(FrozenInstanceError(), AttributeError)
    for clone in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert clone == a
    assert copy.deepcopy(a).tags is not a.tags


def test_replace_changes_only_the_named_fields() -> None:
    from annextui.values import replace

    class Hop(Value):
        host: str
        port: int = 22
        via: str | None = None

    a = Hop("h", via="j")
    b = replace(a, port=2222)
    assert (b.host, b.port, b.via) == ("h", 2222, "j")
    assert a == Hop("h", 22, "j")  # the original is untouched
    with pytest.raises(TypeError, match="no field nope"):
        replace(a, nope=1)


class Normalised(Value):
    """`__post_init__` and identity, as `@dataclass(frozen=True, eq=False)` with one."""

    name: str
    aliases: tuple[str, ...] = ()

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name.lower())


@dataclasses.dataclass(frozen=True, eq=False)
class DNormalised:
    name: str
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name.lower())


def test_post_init_runs_last_and_identity_equality() -> None:
    for cls in (Normalised, DNormalised):
        a = cls("Node1", ("n1",))
        assert a.name == "node1"  # seen by __post_init__ after every field was set
        assert a.aliases == ("n1",)
        b = cls("node1", ("n1",))
        assert a != b  # eq=False: identity
        assert a == a
        assert len({a, b}) == 2
    from annextui.values import replace

    renamed = replace(Normalised("x"), name="Upper")
    assert renamed.name == "upper"  # replace builds anew, so __post_init__ runs again
