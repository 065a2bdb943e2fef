"""What the terms look up in a `World`: group members, balanced pickers, sizes, numcopies.

One `WorldLookups` per `Evaluator`: the group index and the pickers are built once per world,
and sizes come from `live_sizes` when a simulation moves keys (read at every decision).
"""

from __future__ import annotations

from collections.abc import Mapping

from annextui.backend.preferred.balanced import BalancedPicker
from annextui.backend.preferred.model import World


class WorldLookups:
    def __init__(self, world: World, live_sizes: Mapping[str, int] | None = None) -> None:
        self.world = world
        self._live_sizes = live_sizes
        members: dict[str, set[str]] = {}
        for u, r in world.repos.items():
            for g in r.groups:
                members.setdefault(g, set()).add(u)
        self._members: dict[str, frozenset[str]] = {g: frozenset(s) for g, s in members.items()}
        self._pickers: dict[str, BalancedPicker] = {}

    def group_members(self, group: str) -> frozenset[str]:
        return self._members.get(group, frozenset())

    def picker(self, group: str) -> BalancedPicker | None:
        p = self._pickers.get(group)
        if p is None:
            m = self._members.get(group)
            if not m:
                return None
            p = self._pickers[group] = BalancedPicker(m)
        return p

    def maxsize_of(self, u: str) -> int | None:
        r = self.world.repos.get(u)
        return r.maxsize if r is not None else None

    def size_of(self, u: str) -> int | None:
        if self._live_sizes is not None:
            return self._live_sizes.get(u)
        r = self.world.repos.get(u)
        return r.size if r is not None else None

    def numcopies(self, file: str | None) -> int:
        if file is not None and self.world.file_numcopies is not None:
            n = self.world.file_numcopies(file)
            if n is not None:
                return n if n > 0 else 1
        return self.world.global_numcopies()
