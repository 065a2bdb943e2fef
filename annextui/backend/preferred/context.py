"""The calling convention of compiled matchers: a closure per term, called with a `Ctx`.

`KeyState` is what every term of every repository's expression reads of one key, computed
once per key (locations with clusters added and dead repositories removed, the key's
variety and size, folded metadata, balanced picks); `Ctx` adds what one decision assumes
(repositories taken as not holding the key, the file asked about, the trace being recorded
for an explanation). `MatchFailure` is a decision git-annex cannot make (a glob it cannot
compile).
"""

from __future__ import annotations

from collections.abc import Callable

from annextui.backend.preferred.balanced import Candidates
from annextui.backend.preferred.explain import TermResult
from annextui.backend.preferred.keyinfo import key_info
from annextui.backend.preferred.model import KeyFacts, World
from annextui.backend.trust import TrustLevel
from annextui.backend.uuids import is_cluster_uuid


class MatchFailure(Exception):
    pass


class KeyState:
    __slots__ = (
        "balanced", "facts", "info", "locs", "locs_noncluster", "locs_set", "logged_set",
        "metadata",
    )  # fmt: skip

    def __init__(self, world: World, facts: KeyFacts) -> None:
        self.facts = facts
        self.info = key_info(facts.key)
        logged = set(facts.locations)
        for cluster, nodes in world.clusters.items():
            if cluster not in logged and not nodes.isdisjoint(facts.locations):
                logged.add(cluster)
        self.logged_set = frozenset(logged)
        trust = world.trust
        self.locs = tuple(u for u in sorted(logged) if trust(u) is not TrustLevel.DEAD)
        self.locs_set = frozenset(self.locs)
        self.locs_noncluster = tuple(u for u in self.locs if not is_cluster_uuid(u))
        self.balanced: dict[
            tuple[bool, str, int], tuple[Candidates, tuple[str, ...], frozenset[str]]
        ] = {}
        self.metadata: dict[str, list[str]] | None = None

    def meta_values(self, fieldname_folded: str) -> list[str]:
        if self.metadata is None:
            folded: dict[str, list[str]] = {}
            for f, vals in self.facts.metadata.items():
                folded.setdefault(f.casefold(), []).extend(sorted(vals))
            self.metadata = folded
        return self.metadata.get(fieldname_folded, [])


class Ctx:
    __slots__ = ("file", "ks", "notpresent", "trace")

    def __init__(
        self,
        ks: KeyState,
        notpresent: frozenset[str],
        file: str | None,
        trace: list[TermResult] | None,
    ) -> None:
        self.ks = ks
        self.notpresent = notpresent
        self.file = file
        self.trace = trace


Fn = Callable[[Ctx], bool]


def always(_c: Ctx) -> bool:
    return True


def never(_c: Ctx) -> bool:
    return False
