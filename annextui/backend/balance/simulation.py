"""The engine: one pass over the keys computes the per-node table and simulates every world.

What-if scenarios (scenario.py) and the configuration as it is ("pending") are simulated: keys
are visited in branch order, each node's size grows as keys land on it and shrinks as it drops
them, so size-driven expressions (``balanced`` with a full node, ``sizebalanced``) spread keys
the way successive transfers would. The result lists the keys and bytes that would move and
from/to which node.

Every key with a location log is considered, including keys no member holds yet; everything is
computed in one pass over the keys with one compiled ``Evaluator`` per world.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from annextui import values
from annextui.backend.balance.errors import BalanceError
from annextui.backend.balance.members import resolve_members, resolve_repo
from annextui.backend.balance.report import (
    BalanceReport,
    KeyMove,
    Move,
    MoveKind,
    NodeRow,
    ScenarioResult,
    use_percent,
)
from annextui.backend.balance.scenario import Scenario, added_uuid
from annextui.backend.balance.wanted import build_world, key_facts, replace_world
from annextui.backend.branch import BranchView
from annextui.backend.preferred import (
    Evaluator,
    Explanation,
    KeyFacts,
    Repo,
    TrustLevel,
    World,
)
from annextui.backend.repo import Repository
from annextui.backend.sizes import (
    KeyLocations,
    Progress,
    key_locations,
    key_of_path,
    key_size_of_path,
    repo_sizes,
)
from annextui.backend.sizes_overview import uuid_descriptions
from annextui.backend.state import load_state
from annextui.backend.uuids import is_cluster_uuid

__all__ = ["Balance"]


@dataclass
class _Sim:
    """One world being simulated: live sizes and the moves made so far."""

    scenario: Scenario | None
    world: World
    members: tuple[str, ...]
    ev: Evaluator
    live: dict[str, int]
    held: dict[str, list[int]]  # node -> [keys, bytes]
    removed: str | None = None
    moves: Counter[tuple[str | None, str | None, MoveKind]] = field(default_factory=Counter)
    move_bytes: Counter[tuple[str | None, str | None, MoveKind]] = field(default_factory=Counter)
    keyed: list[KeyMove] | None = None  # every key's own moves, when a plan is asked for


class Balance:
    """Balance state of one group or cluster; compute with `report()`.

    ``progress(done, total)`` is called while keys are visited (and during a cold size scan).
    """

    def __init__(
        self,
        repo: Repository,
        group: str,
        *,
        rebalance: bool = False,
        progress: Progress | None = None,
        view: BranchView | None = None,
    ) -> None:
        self.repo = repo
        self.view = view or BranchView(repo)
        self.state = load_state(self.view)
        self.label, self.kind, self.members = resolve_members(repo, self.state, group)
        self.rebalance = rebalance
        self.progress = progress
        self.sizes = repo_sizes(repo, view=self.view, state=self.state, progress=progress)
        self.world = replace_world(build_world(repo, self.state, self.sizes), rebalance=rebalance)
        self.evaluator = Evaluator(self.world)
        self.names = uuid_descriptions(repo, self.state)
        self._locations: KeyLocations | None = None

    # -- public ---------------------------------------------------------------------------
    def locations(self) -> KeyLocations:
        if self._locations is None:
            self._locations = key_locations(self.repo, view=self.view, progress=self.progress)
        return self._locations

    def report(self, scenarios: Sequence[Scenario] = (), *, pending: bool = True) -> BalanceReport:
        """The per-node table, the pending transfers (the configuration as it is, simulated) and
        each scenario's transfers, in one pass over the keys. pending=False skips the pending
        simulation (the table alone is about twice as fast)."""
        started = time.perf_counter()
        kl = self.locations()
        sims = ([self._sim(None)] if pending else []) + [self._sim(s) for s in scenarios]
        base = self.evaluator
        stats = {u: [0, 0, 0, 0, 0, 0] for u in self.members}  # want-get, to drop, to get: k/b
        member_bits = {u: kl.bit(u) for u in self.members}
        loc_cache: dict[int, frozenset[str]] = {}
        total = len(kl)
        every = 1 << 12
        for n, (path, mask) in enumerate(kl.items()):
            locs = loc_cache.get(mask)
            if locs is None:
                locs = loc_cache[mask] = kl.uuids_of(mask)
            key = key_of_path(path)
            size = key_size_of_path(path)
            facts = KeyFacts(key, locations=locs)
            for u in self.members:
                held = bool(mask & member_bits[u])
                st = stats[u]
                if base.wants_get(u, facts):
                    st[0] += 1
                    st[1] += size
                    if not held:
                        st[4] += 1
                        st[5] += size
                if held and base.wants_drop(u, facts):
                    st[2] += 1
                    st[3] += size
            for sim in sims:
                self._step(sim, key, size, locs, facts)
            if self.progress is not None and n % every == every - 1:
                self.progress(n + 1, total)
        rows = self._rows(kl, stats)
        uses = [r.use for r in rows if r.use is not None]
        mean = sum(uses) / len(uses) if uses else None
        rows = [replace(r, var=r.use / mean if r.use is not None and mean else None) for r in rows]
        results = [self._result(sim) for sim in sims]
        pending_result = results.pop(0) if pending else None
        return BalanceReport(
            label=self.label,
            kind=self.kind,
            members=self.members,
            nodes=tuple(rows),
            names=self.names | {s.target_uuid: s.target for s in self._added(scenarios)},
            keys=total,
            mean_use=mean,
            pending=pending_result,
            scenarios=tuple(results),
            seconds=time.perf_counter() - started,
        )

    def explain(
        self,
        key: str,
        uuid: str | None = None,
        *,
        context: Literal["get", "drop"] = "get",
        file: str | None = None,
    ) -> list[Explanation]:
        """The engine's reasoning for each node (or one repository) about one key."""
        facts = key_facts(self.repo, self.view, key, file=file)
        targets = [resolve_repo(self.repo, self.state, uuid)] if uuid else list(self.members)
        return [self.evaluator.explain(u, facts, context=context) for u in targets]

    def plan(self) -> list[KeyMove]:
        """The pending simulation's moves key by key, in the order they are decided: what
        ``git annex move --rebalance`` would do (with ``rebalance=True``), for executing it."""
        sim = self._sim(None)
        sim.keyed = []
        kl = self.locations()
        loc_cache: dict[int, frozenset[str]] = {}
        for path, mask in kl.items():
            locs = loc_cache.get(mask)
            if locs is None:
                locs = loc_cache[mask] = kl.uuids_of(mask)
            key = key_of_path(path)
            self._step(sim, key, key_size_of_path(path), locs, KeyFacts(key, locations=locs))
        return sim.keyed

    # -- internals ------------------------------------------------------------------------
    def _added(self, scenarios: Iterable[Scenario]) -> list[_Added]:
        return [_Added(added_uuid(s.target), s.target) for s in scenarios if s.kind == "add"]

    def _rows(self, kl: KeyLocations, stats: dict[str, list[int]]) -> list[NodeRow]:
        rows = []
        for u in self.members:
            info = self.evaluator.matcher_info(u)
            size = self.sizes.repos.get(u)
            maxsize = self.state.maxsize.get(u)
            st = stats[u]
            nbytes = size.size if size else 0
            rows.append(
                NodeRow(
                    uuid=u,
                    name=self.names.get(u, ""),
                    keys=size.keys if size else 0,
                    size=nbytes,
                    maxsize=maxsize,
                    use=use_percent(nbytes, maxsize),
                    var=None,
                    configured=info.status != "unconfigured",
                    expression=info.expression,
                    want_get_keys=st[0],
                    want_get_bytes=st[1],
                    to_drop_keys=st[2],
                    to_drop_bytes=st[3],
                    to_get_keys=st[4],
                    to_get_bytes=st[5],
                )
            )
        return rows

    def _sim(self, scenario: Scenario | None) -> _Sim:
        repos = dict(self.world.repos)
        members = list(self.members)
        removed = None
        if scenario is not None:
            if scenario.kind == "add":
                u = added_uuid(scenario.target)
                if u in repos:
                    raise BalanceError(f"what-if: {scenario.target} already exists")
                repos[u] = Repo(
                    u,
                    groups=frozenset({self.label}) if self.kind == "group" else frozenset(),
                    description=scenario.target,
                    preferred=self._typical_expression(),
                    maxsize=scenario.maxsize,
                    size=0,
                )
                members.append(u)
            else:
                u = resolve_repo(self.repo, self.state, scenario.target)
                if u not in self.members:
                    raise BalanceError(f"what-if: {scenario.target} is not a node of {self.label}")
                r = repos.get(u) or Repo(u)
                if scenario.kind == "remove":
                    repos[u] = values.replace(r, trust=TrustLevel.DEAD, groups=frozenset())
                    members.remove(u)
                    removed = u
                elif scenario.kind == "maxsize":
                    repos[u] = values.replace(r, maxsize=scenario.maxsize)
                else:
                    repos[u] = values.replace(r, preferred=scenario.expression)
        clusters = dict(self.world.clusters)
        if self.kind == "cluster" and scenario is not None:
            cu = next((c for c, n in clusters.items() if set(n) == set(self.members)), None)
            if cu is not None:
                clusters[cu] = frozenset(members)
        world = values.replace(
            self.world, repos=repos, clusters=clusters
        )  # a new World: new caches
        live = {u: (r.size or 0) for u, r in repos.items() if r.size is not None}
        held = {
            u: [self.sizes.repos[u].keys, self.sizes.repos[u].size]
            if u in self.sizes.repos
            else [0, 0]
            for u in members
        }
        if removed is not None:
            held[removed] = [self.sizes.repos[removed].keys, self.sizes.repos[removed].size]
        return _Sim(
            scenario,
            world,
            tuple(sorted(members)),
            Evaluator(world, live_sizes=live),
            live,
            held,
            removed=removed,
        )

    def _typical_expression(self) -> str | None:
        if self.kind == "group" and self.label in self.state.group_preferred:
            return "groupwanted"
        exprs = Counter(
            self.state.preferred[u] for u in self.members if self.state.preferred.get(u)
        )
        return exprs.most_common(1)[0][0] if exprs else None

    def _step(self, sim: _Sim, key: str, size: int, locs: frozenset[str], facts: KeyFacts) -> None:
        ev = sim.ev
        holders = [u for u in sim.members if u in locs]
        gets = [u for u in sim.members if u not in locs and ev.wants_get(u, facts)]
        after = KeyFacts(key, locations=locs | frozenset(gets)) if gets else facts
        drops = [u for u in holders if ev.wants_drop(u, after)]
        if sim.removed is not None and sim.removed in locs:
            drops.append(sim.removed)
        if not gets and not drops:
            return
        sources = list(drops)
        for dst in gets:
            kind: MoveKind = "move"
            if sources:
                src: str | None = sources.pop(0)
            elif holders:
                src, kind = holders[0], "copy"
            else:
                outside = sorted(u for u in locs if not is_cluster_uuid(u))
                src, kind = (outside[0], "copy") if outside else (None, "get")
            sim.moves[(src, dst, kind)] += 1
            sim.move_bytes[(src, dst, kind)] += size
            if sim.keyed is not None:
                sim.keyed.append(KeyMove(key, size, src, dst, kind))
            sim.live[dst] = sim.live.get(dst, 0) + size
            h = sim.held.setdefault(dst, [0, 0])
            h[0] += 1
            h[1] += size
        for src in drops:
            if src in sources:  # no new copy took its place in this step
                sim.moves[(src, None, "drop")] += 1
                sim.move_bytes[(src, None, "drop")] += size
                if sim.keyed is not None:
                    sim.keyed.append(KeyMove(key, size, src, None, "drop"))
            sim.live[src] = sim.live.get(src, 0) - size
            h = sim.held.setdefault(src, [0, 0])
            h[0] -= 1
            h[1] -= size

    def _result(self, sim: _Sim) -> ScenarioResult:
        order = sorted(sim.moves, key=lambda k: (-sim.move_bytes[k], str(k)))
        moves = tuple(
            Move(s, d, sim.moves[(s, d, k)], sim.move_bytes[(s, d, k)], k) for s, d, k in order
        )
        members = sim.members + ((sim.removed,) if sim.removed else ())
        return ScenarioResult(
            scenario=sim.scenario,
            moves=moves,
            after={u: (sim.held[u][0], sim.held[u][1]) for u in members},
            members=members,
            maxsizes={u: sim.world.repo(u).maxsize for u in members},
        )


@dataclass(frozen=True, slots=True)
class _Added:
    target_uuid: str
    target: str
