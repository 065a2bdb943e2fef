"""Prove that a balance plan converges before running it.

The plan's moves are applied to the modelled state (``Placement``); then, round after round,
every member's preferred content is evaluated again for every key, as ``git annex sync
--content`` or a rebalance run would on the next pass: a member that lacks a key it wants gets
it, a holder that no longer wants its copy drops it when enough other copies remain
(numcopies and mincopies, untrusted and dead copies not counted, as git-annex's drop safety
counts them). Sizes change as keys land and leave, so size-driven terms (``balanced`` with a
full node, ``sizebalanced``) see what a real run would see.

It stops when a round changes nothing (converged), when a state repeats (a cycle: the keys
involved move back and forth forever), or at the round limit. For a cycle the rounds of one
period are replayed with the engine's explanations, which name the term that decided each get
and drop -- the cause of the ping-pong.

Pure: nothing is read or written beyond the ``Placement``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from annextui.backend.balance.errors import BalanceError
from annextui.backend.balance.placement import Placement
from annextui.backend.preferred import Evaluator, KeyFacts, TrustLevel
from annextui.backend.uuids import is_cluster_uuid

__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "Decision",
    "Oscillation",
    "PlanMove",
    "Proof",
    "Round",
    "fixed_point_violations",
    "prove",
]

DEFAULT_MAX_ROUNDS = 50
_PROGRESS_EVERY = 1 << 12

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class PlanMove:
    """One move of a plan: ``target`` gets the key (None: no copy made), ``source`` drops its
    copy afterwards (None: nothing dropped). A copy is PlanMove(key, None, target)."""

    key: str
    source: str | None
    target: str | None


@dataclass(frozen=True, slots=True)
class Round:
    """What one round changed (round 0 is the plan itself, when one was given)."""

    number: int
    gets: int
    drops: int
    bytes_moved: int


@dataclass(frozen=True, slots=True)
class Decision:
    """One get or drop of an oscillating key, and the term of the member's expression that
    decided it (from the engine's explanation)."""

    key: str
    repo: str
    action: str  # "get" | "drop"
    term: str | None  # the deciding term's token, None when the expression is unconfigured
    expression: str  # the expression with [TRUE]/[FALSE] after each evaluated term
    reason: str


@dataclass(frozen=True, slots=True)
class Oscillation:
    """A cycle: the state after round ``start`` comes back after round ``start + period``."""

    start: int
    period: int
    keys: tuple[str, ...]
    decisions: tuple[Decision, ...]

    @property
    def terms(self) -> tuple[str, ...]:
        """The deciding terms, each once, in the order first met."""
        return tuple(dict.fromkeys(d.term for d in self.decisions if d.term is not None))


@dataclass(frozen=True, slots=True)
class Proof:
    """The outcome. converged: a round changed nothing (``rounds`` rounds moved something
    before it). Otherwise ``oscillation`` says which keys cycle and why, or, without one, the
    round limit was reached first."""

    converged: bool
    rounds: tuple[Round, ...]
    max_rounds: int
    oscillation: Oscillation | None
    final: Placement

    @property
    def moving_rounds(self) -> int:
        return sum(1 for r in self.rounds if r.gets or r.drops)


def prove(
    placement: Placement,
    plan: Iterable[PlanMove] | None = None,
    *,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    progress: Progress | None = None,
) -> Proof:
    """Apply ``plan`` (if given) to ``placement``, then re-evaluate until a fixed point, a
    repeated state or ``max_rounds`` rounds. ``progress(keys done, keys)`` is called as each
    round goes through the keys."""
    if max_rounds < 1:
        raise BalanceError("the round limit must be at least 1")
    run = _Run(placement)
    rounds: list[Round] = []
    if plan is not None:
        rounds.append(run.apply_plan(plan))
    seen: dict[tuple[frozenset[str], ...], int] = {tuple(run.holders): len(rounds)}
    oscillation = None
    converged = False
    for _ in range(max_rounds):
        rnd = run.round(len(rounds) + (0 if plan is not None else 1), progress)
        if not rnd.gets and not rnd.drops:
            converged = True
            break
        rounds.append(rnd)
        state = tuple(run.holders)
        if state in seen:
            start = seen[state]
            oscillation = run.explain_cycle(start, len(rounds) - start)
            break
        seen[state] = len(rounds)
    return Proof(converged, tuple(rounds), max_rounds, oscillation, run.placement())


def fixed_point_violations(placement: Placement) -> list[tuple[str, str, str]]:
    """(key, member, "get"|"drop") for every change a member would still make: empty iff the
    placement is a fixed point (what a converged proof ends in)."""
    run = _Run(placement)
    out: list[tuple[str, str, str]] = []
    for i, mk in enumerate(placement.keys):
        gets, drops = run.decide(i)
        out += [(mk.key, u, "get") for u in gets]
        out += [(mk.key, u, "drop") for u in drops]
    return out


class _Run:
    """The mutable state of one proof: holders per key and live sizes."""

    def __init__(self, placement: Placement) -> None:
        self.start = placement
        self.members = tuple(sorted(placement.members))
        self.member_set = frozenset(self.members)
        self.holders = list(placement.holders)
        self.live = dict(placement.sizes)
        self.ev = Evaluator(placement.world, live_sizes=self.live)
        self.index = {mk.key: i for i, mk in enumerate(placement.keys)}
        world = placement.world
        self.needed = max(world.global_numcopies(), world.mincopies or 0)
        self.changes: list[dict[int, tuple[frozenset[str], frozenset[str]]]] = []

    def placement(self) -> Placement:
        p = self.start
        return Placement(p.world, p.members, p.keys, tuple(self.holders), self.live, p.names)

    def _facts(self, i: int, locs: frozenset[str]) -> KeyFacts:
        mk = self.start.keys[i]
        return KeyFacts(mk.key, locations=locs, file=mk.file)

    def _safe_to_drop(self, u: str, locs: frozenset[str]) -> bool:
        trust = self.start.world.trust
        copies = sum(
            1
            for v in locs
            if v != u
            and not is_cluster_uuid(v)
            and trust(v) not in (TrustLevel.UNTRUSTED, TrustLevel.DEAD)
        )
        return copies >= self.needed

    def decide(self, i: int) -> tuple[list[str], list[str]]:
        """The members that get key ``i`` now, then the holders that drop it (each drop
        decided on the locations left by the gets and the drops before it)."""
        locs = self.holders[i]
        ev = self.ev
        facts = self._facts(i, locs)
        gets = [u for u in self.members if u not in locs and ev.wants_get(u, facts)]
        after = locs | frozenset(gets)
        if gets:
            facts = self._facts(i, after)
        drops: list[str] = []
        for u in self.members:
            if u not in after:
                continue
            # one KeyFacts per location set: the evaluator caches the key's state by identity
            if ev.wants_drop(u, facts) and self._safe_to_drop(u, after):
                drops.append(u)
                after = after - {u}
                facts = self._facts(i, after)
        return gets, drops

    def _move(self, i: int, gets: Sequence[str], drops: Sequence[str]) -> None:
        size = self.start.keys[i].size
        before = self.holders[i]
        self.holders[i] = (before | frozenset(gets)) - frozenset(drops)
        for u in gets:
            self.live[u] = self.live.get(u, 0) + size
        for u in drops:
            self.live[u] = self.live.get(u, 0) - size

    def round(self, number: int, progress: Progress | None = None) -> Round:
        gets_n = drops_n = moved = 0
        changed: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
        total = len(self.holders)
        for i in range(total):
            if progress is not None and i % _PROGRESS_EVERY == 0:
                progress(i, total)
            gets, drops = self.decide(i)
            if not gets and not drops:
                continue
            changed[i] = (frozenset(gets), frozenset(drops))
            self._move(i, gets, drops)
            gets_n += len(gets)
            drops_n += len(drops)
            moved += len(gets) * self.start.keys[i].size
        self.changes.append(changed)
        return Round(number, gets_n, drops_n, moved)

    def apply_plan(self, plan: Iterable[PlanMove]) -> Round:
        gets_n = drops_n = moved = 0
        for mv in plan:
            i = self.index.get(mv.key)
            if i is None:
                raise BalanceError(f"plan: {mv.key} is not one of the modelled keys")
            holders = self.holders[i]
            if mv.source is not None and mv.source not in holders:
                raise BalanceError(f"plan: {self.start.name(mv.source)} does not hold {mv.key}")
            for u in (mv.source, mv.target):
                if u is not None and u not in self.member_set:
                    raise BalanceError(f"plan: {self.start.name(u)} is not a member")
            gets = [mv.target] if mv.target is not None and mv.target not in holders else []
            drops = [mv.source] if mv.source is not None else []
            self._move(i, gets, drops)
            gets_n += len(gets)
            drops_n += len(drops)
            moved += len(gets) * self.start.keys[i].size
        self.changes.append({})
        return Round(0, gets_n, drops_n, moved)

    def explain_cycle(self, start: int, period: int) -> Oscillation:
        """The keys that changed during one period, and, replaying that period from the
        repeated state (the run is deterministic, so it makes the same decisions), the term
        behind each of their gets and drops."""
        cycling = sorted({i for ch in self.changes[start : start + period] for i in ch})
        decisions: list[Decision] = []
        for _ in range(period):
            for i in range(len(self.holders)):
                gets, drops = self.decide(i)
                if i in cycling:
                    decisions += self._explain(i, gets, drops)
                if gets or drops:
                    self._move(i, gets, drops)
        keys = tuple(self.start.keys[i].key for i in cycling)
        return Oscillation(start, period, keys, tuple(decisions))

    def _explain(self, i: int, gets: Sequence[str], drops: Sequence[str]) -> list[Decision]:
        out: list[Decision] = []
        locs = self.holders[i]
        key = self.start.keys[i].key
        for u in gets:
            out.append(self._decision(key, u, "get", self._facts(i, locs)))
        after = locs | frozenset(gets)
        for u in drops:
            out.append(self._decision(key, u, "drop", self._facts(i, after)))
            after = after - {u}
        return out

    def _decision(self, key: str, u: str, action: str, facts: KeyFacts) -> Decision:
        ex = self.ev.explain(u, facts, context="get" if action == "get" else "drop")
        term = ex.decided_by
        rendered = ex.files[-1].rendered if ex.files else ex.info.expression
        return Decision(
            key=key,
            repo=u,
            action=action,
            term=term.token if term is not None else None,
            expression=rendered,
            reason=ex.reason,
        )
