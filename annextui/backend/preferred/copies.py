"""The terms about where a key is: `present`, `copies=`, `lackingcopies=` (and the part of
`balanced=` that counts copies), compiled to closures over a key's locations."""

from __future__ import annotations

from collections.abc import Callable

from annextui.backend.preferred.context import Ctx, Fn
from annextui.backend.preferred.lookups import WorldLookups
from annextui.backend.preferred.terms import Copies
from annextui.backend.trust import TrustLevel


def present_fn(lookups: WorldLookups, uuid: str) -> Fn:
    if uuid == lookups.world.here:

        def present_here(c: Ctx) -> bool:
            lp = c.ks.facts.local_present
            return lp if lp is not None else uuid in c.ks.locs_set

        return present_here
    return lambda c: uuid in c.ks.locs_set


def copies_fn(lookups: WorldLookups, term: Copies) -> Fn:
    n = term.count
    trust = lookups.world.trust
    good: Callable[[str], bool] | None
    if term.group is not None:
        members = lookups.group_members(term.group)
        good = members.__contains__
    elif term.trust is not None:
        level = term.trust
        if term.trust_or_higher:
            good = lambda u: level <= trust(u)  # noqa: E731
        else:
            good = lambda u: trust(u) is level  # noqa: E731
    else:
        good = None

    def copies(c: Ctx) -> bool:
        locs = c.ks.locs_noncluster
        np = c.notpresent
        if good is None:
            if not np:
                return len(locs) >= n
            return sum(1 for u in locs if u not in np) >= n
        return sum(1 for u in locs if u not in np and good(u)) >= n

    return copies


def have_for_numcopies(lookups: WorldLookups, c: Ctx) -> int:
    trust = lookups.world.trust
    np = c.notpresent
    return sum(
        1 for u in c.ks.locs_noncluster if u not in np and trust(u) is not TrustLevel.UNTRUSTED
    )


def lacking_fn(lookups: WorldLookups, needed: int, approx: bool) -> Fn:
    def lacking(c: Ctx) -> bool:
        numcopies = lookups.world.global_numcopies() if approx else lookups.numcopies(c.file)
        return numcopies - have_for_numcopies(lookups, c) >= needed

    return lacking
