"""`balanced=` and `sizebalanced=` compiled to closures: candidates and picks (balanced.py)
for the key, cached per key since they do not depend on the deciding repository, the
stabilised form's `present` and enough-copies checks, and the detail an explanation shows."""

from __future__ import annotations

from annextui.backend.preferred.balanced import (
    Candidates,
    fully_balanced_candidates,
    size_balanced_candidates,
)
from annextui.backend.preferred.context import Ctx, Fn, KeyState
from annextui.backend.preferred.copies import copies_fn, have_for_numcopies, lacking_fn, present_fn
from annextui.backend.preferred.explain import BalancedDetail, TermResult
from annextui.backend.preferred.lookups import WorldLookups
from annextui.backend.preferred.terms import Balanced, LackingCopies


def balanced_fn(lookups: WorldLookups, uuid: str, term: Balanced) -> Fn:
    present = present_fn(lookups, uuid)
    enough_fn: Fn | None = None
    enough_negate = True
    if term.stabilised and term.enough is not None:
        if isinstance(term.enough, LackingCopies):
            enough_fn = lacking_fn(lookups, 1, False)
            enough_negate = False
        else:
            enough_fn = copies_fn(lookups, term.enough)
    members = lookups.group_members(term.group)
    sorted_members = tuple(sorted(members))
    any_maxsize = any(lookups.maxsize_of(u) is not None for u in members)
    rebalance = lookups.world.rebalance
    count = term.count
    sized = term.sized

    def fully(c: Ctx, detail: list[BalancedDetail] | None) -> bool:
        ks = c.ks
        if count is None:
            n = lookups.numcopies(c.file) - have_for_numcopies(lookups, c)
        else:
            n = count
        # candidates and picks do not depend on the deciding repository: cache per key
        cache_key = (sized, term.group, n)
        cached = ks.balanced.get(cache_key)
        if cached is None:
            cached = ks.balanced[cache_key] = balanced_picks(
                lookups, ks, term.group, sized, n, sorted_members, any_maxsize
            )
        cands, picks, picked = cached
        wanted = uuid in picked
        if detail is not None:
            detail.append(
                BalancedDetail(
                    term.kind,
                    term.group,
                    uuid,
                    cands.members,
                    n,
                    cands.candidates,
                    dict(cands.excluded),
                    picks,
                    wanted,
                    cands.size_rule,
                    cands.size_ranked,
                    rebalance=rebalance,
                )
            )
        return wanted

    def decide(
        c: Ctx, detail: list[BalancedDetail] | None
    ) -> tuple[bool, bool | None, bool | None]:
        if not term.stabilised or rebalance or enough_fn is None:
            return fully(c, detail), None, None
        p = present(c)
        if p:
            return True, True, None
        e = enough_fn(c)
        check = (not e) if enough_negate else e
        if not check:
            return False, False, check
        return fully(c, detail), False, check

    token = term.token

    def balanced(c: Ctx) -> bool:
        if c.trace is None:
            return decide(c, None)[0]
        detail: list[BalancedDetail] = []
        r, p, e = decide(c, detail)
        bd = None
        if detail:
            d0 = detail[0]
            bd = BalancedDetail(
                d0.kind, d0.group, d0.uuid, d0.members, d0.count, d0.candidates,
                d0.excluded, d0.picks, d0.picked, d0.size_rule, d0.size_ranked,
                present=p, enough_copies=e, rebalance=d0.rebalance,
            )  # fmt: skip
        elif p is not None or e is not None:
            bd = BalancedDetail(
                term.kind, term.group, uuid, sorted_members, term.count or 0, (), {}, (),
                False, present=p, enough_copies=e, rebalance=rebalance,
            )  # fmt: skip
        c.trace.append(TermResult(token, r, term, balanced=bd))
        return r

    return balanced


def balanced_picks(
    lookups: WorldLookups,
    ks: KeyState,
    group: str,
    sized: bool,
    n: int,
    members: tuple[str, ...],
    any_maxsize: bool,
) -> tuple[Candidates, tuple[str, ...], frozenset[str]]:
    keysize = ks.info.size or 0
    rebalance = lookups.world.rebalance
    cands: Candidates
    if sized:
        cands = size_balanced_candidates(
            n, keysize, ks.logged_set, members, lookups.maxsize_of, lookups.size_of
        )
    elif not any_maxsize and not (rebalance and n > 1):
        cands = Candidates(members, members, {})
    else:
        cands = fully_balanced_candidates(
            n,
            keysize,
            ks.logged_set,
            members,
            lookups.maxsize_of,
            lookups.size_of,
            rebalance=rebalance,
            threshold=lookups.world.fully_balanced_threshold,
        )
    picker = lookups.picker(group)
    picks: list[str] = []
    if cands.candidates and picker is not None and n > 0:
        picks = picker.pick(cands.candidates, ks.info.text, n)
    return cands, tuple(picks), frozenset(picks)
