"""The modelled state a proof runs on: which repository holds which key, and the configuration
that decides where keys go.

A ``Placement`` is plain data (no repository, no I/O): the preferred-content ``World`` (groups,
expressions, maxsize, trust, numcopies/mincopies), the members whose preferred content moves
keys, every key with its size (and file, when decisions see one), the repositories holding each
key and the repositories' sizes at the start. ``placement_of_balance`` reads it from a
repository through ``Balance``; ``simfile`` builds it from a ``git annex sim`` script.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from annextui.backend.preferred import World

if TYPE_CHECKING:
    from annextui.backend.balance.simulation import Balance

__all__ = ["ModelKey", "Placement", "placement_of_balance"]


@dataclass(frozen=True, slots=True)
class ModelKey:
    """One key: its serialized form, size in bytes, and the file decisions see (None: key-only,
    as git-annex decides for a bare node or with ``--all``)."""

    key: str
    size: int
    file: str | None = None


@dataclass(frozen=True)
class Placement:
    """The state to prove a plan on.

    members: repositories whose preferred content gets and drops keys (a group's members or a
      cluster's nodes); other holders are sources that never get or drop.
    holders: per key (same order as ``keys``), the UUIDs holding it.
    sizes: each repository's size in bytes at the start (keys outside the model included).
    names: UUID -> name to print (never used as a path or command).
    """

    world: World
    members: tuple[str, ...]
    keys: tuple[ModelKey, ...]
    holders: tuple[frozenset[str], ...]
    sizes: Mapping[str, int] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.holders):
            raise ValueError("placement: one holder set per key is needed")
        object.__setattr__(self, "sizes", MappingProxyType(dict(self.sizes)))
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))

    def name(self, uuid: str) -> str:
        return self.names.get(uuid) or uuid


def placement_of_balance(balance: Balance) -> Placement:
    """The group's or cluster's keys as the location logs (journal included) place them now."""
    from annextui.backend.sizes import key_of_path, key_size_of_path

    kl = balance.locations()
    keys: list[ModelKey] = []
    holders: list[frozenset[str]] = []
    by_mask: dict[int, frozenset[str]] = {}
    for path, mask in kl.items():
        locs = by_mask.get(mask)
        if locs is None:
            locs = by_mask[mask] = kl.uuids_of(mask)
        keys.append(ModelKey(key_of_path(path), key_size_of_path(path)))
        holders.append(locs)
    sizes = {u: r.size for u, r in balance.sizes.repos.items()}
    return Placement(
        world=balance.world,
        members=tuple(balance.members),
        keys=tuple(keys),
        holders=tuple(holders),
        sizes=sizes,
        names=dict(balance.names),
    )
