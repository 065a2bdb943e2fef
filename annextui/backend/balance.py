"""Balance report for a group of nodes: who holds what, who wants what, and what-if scenarios.

The nodes are the members of a group (``group.log``) or the nodes of a cluster (by cluster
name, cluster remote name or cluster UUID). Per node the report shows, like Ceph's
``osd df``: keys and bytes held (location logs), maxsize, %use, VAR (use / mean use of the nodes
with a maxsize) -- and, from the preferred-content engine, the keys the node wants (want-get
context), the held keys it would drop (want-drop context) and the wanted keys it lacks.

Decisions are key-only (no work-tree file), as git-annex makes them for bare nodes or with
``--all``: ``include=``/``exclude=`` see no file. Every key with a location log is considered,
including keys no member holds yet.

What-if scenarios (add a node, remove a node, change a maxsize, change an expression) are
simulated: keys are visited in branch order, each node's size grows as keys land on it and
shrinks as it drops them, so size-driven expressions (``balanced`` with a full node,
``sizebalanced``) spread keys the way successive transfers would. The report lists the keys and
bytes that would move and from/to which node. A node added by a what-if gets a made-up UUID
(derived from its name); ``balanced`` picks depend on the UUIDs of all members, so the exact
keys that move depend on it, the amounts do not in expectation.

Everything is computed in one pass over the keys with one compiled ``Evaluator`` per world.
"""

from __future__ import annotations

import os
import time
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from annextui.backend.branch import BranchView
from annextui.backend.keys import (
    KeyError_,
    branch_hash_levels,
    hashdir_lower,
    hashdir_mixed,
    key_file,
    location_log_path,
    parse_key,
)
from annextui.backend.logs.presence import present_infos
from annextui.backend.preferred import (
    Evaluator,
    Explanation,
    ExpressionError,
    KeyFacts,
    Repo,
    TrustLevel,
    World,
    parse,
)
from annextui.backend.repo import Repository
from annextui.backend.sizes import (
    KeyLocations,
    Progress,
    Sizes,
    key_locations,
    key_of_path,
    key_size_of_path,
    repo_sizes,
)
from annextui.backend.sizes_overview import uuid_descriptions
from annextui.backend.state import AnnexState, load_state, proxied_remotes
from annextui.backend.units import SizeError, parse_size
from annextui.backend.uuids import is_cluster_uuid
from annextui.backend.world import build_world as world_of

__all__ = [
    "Balance",
    "BalanceError",
    "BalanceReport",
    "Move",
    "NodeRow",
    "Scenario",
    "ScenarioResult",
    "build_world",
    "key_facts",
    "parse_scenario",
    "resolve_members",
    "resolve_repo",
]


MoveKind = Literal["move", "copy", "drop", "get"]


class BalanceError(Exception):
    """Bad input: an unknown group or repository, a malformed scenario or expression."""


# ---------------------------------------------------------------------------------------------
# Resolving names


def resolve_repo(repo: Repository, state: AnnexState, ident: str) -> str:
    """A remote name, UUID, description or ``here`` -> UUID (as ``Remote.nameToUUID``)."""
    own = repo.uuid
    if ident in ("here", "."):
        if not own:
            raise BalanceError(f"{repo.top}: not a git-annex repository (no annex.uuid)")
        return own
    for r in list(repo.remotes.values()) + list(proxied_remotes(repo, state).values()):
        if r.name == ident and r.uuid:
            return r.uuid
    if ident in state.known_uuids() or ident == own or ident in state.maxsize:
        return ident
    matches = [u for u, d in state.descriptions.items() if d == ident]
    if len(matches) == 1:
        return matches[0]
    raise BalanceError(f'there is no available git remote named "{ident}"')


def _cluster_names(repo: Repository, state: AnnexState) -> dict[str, str]:
    """Cluster name -> cluster UUID: local config, proxy.log names and cluster remotes."""
    out: dict[str, str] = {}
    for ps in state.proxies.values():
        for p in ps:
            if is_cluster_uuid(p.uuid):
                out.setdefault(p.name, p.uuid)
    for name, cu in repo.clusters.items():
        out[name] = cu
    for r in proxied_remotes(repo, state).values():
        if r.uuid and is_cluster_uuid(r.uuid):
            out.setdefault(r.name, r.uuid)
    return out


def resolve_members(
    repo: Repository, state: AnnexState, name: str
) -> tuple[str, Literal["group", "cluster"], tuple[str, ...]]:
    """GROUP (from group.log) or cluster name/UUID -> (label, kind, member UUIDs, sorted)."""
    members = state.group_members(name)
    if members:
        return name, "group", tuple(sorted(members))
    cu = name if name in state.clusters else _cluster_names(repo, state).get(name)
    if cu is not None:
        nodes = state.clusters.get(cu, frozenset())
        if not nodes:
            raise BalanceError(f"cluster {name} has no nodes")
        return name, "cluster", tuple(sorted(nodes))
    raise BalanceError(f"{name} is neither a group with members nor a cluster")


# ---------------------------------------------------------------------------------------------
# The preferred-content world


def build_world(repo: Repository, state: AnnexState, sizes: Sizes | None) -> World:
    """A preferred-content ``World`` from the branch state and current repository sizes."""
    if sizes is None:
        return world_of(repo, state)
    return world_of(repo, state, sizes.size_of, sizes.repos)


def key_facts(repo: Repository, view: BranchView, key: str, *, file: str | None = None) -> KeyFacts:
    """One key's facts read straight from its location log (journal and unmerged refs too)."""
    try:
        parse_key(key)
    except KeyError_ as exc:
        raise BalanceError(str(exc)) from exc
    path = location_log_path(key, branch_hash_levels(repo.config_bool))
    locations = frozenset(u for u in present_infos(view.read(path)) if u)
    return KeyFacts(key, locations=locations, file=file, local_present=_locally_present(repo, key))


def _locally_present(repo: Repository, key: str) -> bool:
    kf = key_file(key)
    objects = repo.annexdir / "objects"
    return any(
        os.path.isfile(objects / h / kf / kf) for h in (hashdir_mixed(key), hashdir_lower(key))
    )


# ---------------------------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True, slots=True)
class Scenario:
    """One what-if: add NAME with maxsize; remove REPO; set REPO's maxsize or expression."""

    kind: Literal["add", "remove", "maxsize", "wanted"]
    target: str  # NAME for add, a repository (name, UUID, description, here) otherwise
    maxsize: int | None = None
    expression: str | None = None

    def describe(self) -> str:
        from annextui.backend.units import format_rough

        if self.kind == "add":
            if self.maxsize is None:
                return f"add node {self.target}"
            return f"add node {self.target} with maxsize {format_rough(self.maxsize, 2)}"
        if self.kind == "remove":
            return f"remove node {self.target}"
        if self.kind == "maxsize":
            return f"maxsize {self.target} {format_rough(self.maxsize or 0, 2)}"
        return f"wanted {self.target} {self.expression}"


def parse_scenario(text: str) -> Scenario:
    """``add:NAME:SIZE``, ``remove:REPO``, ``maxsize:REPO:SIZE``, ``wanted:REPO:EXPRESSION``."""
    kind, _, rest = text.partition(":")
    try:
        if kind == "add":
            name, _, size = rest.partition(":")
            if not name or ":" in name:
                raise BalanceError(f"what-if {text!r}: expected add:NAME:SIZE")
            return Scenario("add", name, maxsize=parse_size(size) if size else None)
        if kind == "remove":
            if not rest:
                raise BalanceError(f"what-if {text!r}: expected remove:REPO")
            return Scenario("remove", rest)
        if kind == "maxsize":
            target, _, size = rest.partition(":")
            if not target or not size:
                raise BalanceError(f"what-if {text!r}: expected maxsize:REPO:SIZE")
            return Scenario("maxsize", target, maxsize=parse_size(size))
        if kind == "wanted":
            target, _, expr = rest.partition(":")
            if not target:
                raise BalanceError(f"what-if {text!r}: expected wanted:REPO:EXPRESSION")
            try:
                parse(expr)
            except ExpressionError as exc:
                raise BalanceError(f"what-if {text!r}: {exc}") from exc
            return Scenario("wanted", target, expression=expr)
    except SizeError as exc:
        raise BalanceError(f"what-if {text!r}: unable to parse size") from exc
    raise BalanceError(
        f"what-if {text!r}: expected add:NAME:SIZE, remove:REPO, maxsize:REPO:SIZE "
        "or wanted:REPO:EXPRESSION"
    )


def added_uuid(name: str) -> str:
    """The made-up UUID of a node added by a what-if (stable for a name)."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"annextui-what-if:{name}"))


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class NodeRow:
    uuid: str
    name: str
    keys: int
    size: int
    maxsize: int | None
    use: float | None  # percent of maxsize
    var: float | None  # use / mean use (Ceph's VAR)
    configured: bool
    expression: str
    wanted_keys: int = 0
    wanted_bytes: int = 0
    drop_keys: int = 0  # held, and the node would drop it
    drop_bytes: int = 0
    missing_keys: int = 0  # wanted, not held
    missing_bytes: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "keys": self.keys,
            "size": self.size,
            "maxsize": self.maxsize,
            "use": self.use,
            "var": self.var,
            "configured": self.configured,
            "expression": self.expression,
            "wanted": {"keys": self.wanted_keys, "bytes": self.wanted_bytes},
            "would-drop": {"keys": self.drop_keys, "bytes": self.drop_bytes},
            "missing": {"keys": self.missing_keys, "bytes": self.missing_bytes},
        }


@dataclass(frozen=True, slots=True)
class Move:
    """Keys that would go from ``src`` to ``dst``.

    kind: ``move`` (src drops its copy once dst has one), ``copy`` (src keeps it), ``drop``
    (``dst`` None: src drops it, no new copy in the group), ``get`` (``src`` None: dst wants a
    key no repository is known to have).
    """

    src: str | None
    dst: str | None
    keys: int
    bytes: int
    kind: MoveKind = "copy"

    def to_json(self, names: dict[str, str]) -> dict[str, object]:
        return {
            "kind": self.kind,
            "from": self.src,
            "from-name": names.get(self.src, "") if self.src else None,
            "to": self.dst,
            "to-name": names.get(self.dst, "") if self.dst else None,
            "keys": self.keys,
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario | None  # None: the configuration as it is
    moves: tuple[Move, ...]
    after: dict[str, tuple[int, int]]  # node -> (keys, bytes) once the moves are done
    members: tuple[str, ...]
    maxsizes: dict[str, int | None]

    @property
    def moved_keys(self) -> int:
        return sum(m.keys for m in self.moves if m.dst is not None)

    @property
    def moved_bytes(self) -> int:
        return sum(m.bytes for m in self.moves if m.dst is not None)

    def to_json(self, names: dict[str, str]) -> dict[str, object]:
        return {
            "scenario": self.scenario.describe() if self.scenario else None,
            "moved": {"keys": self.moved_keys, "bytes": self.moved_bytes},
            "moves": [m.to_json(names) for m in self.moves],
            "after": [
                {
                    "uuid": u,
                    "name": names.get(u, ""),
                    "keys": self.after[u][0],
                    "size": self.after[u][1],
                    "maxsize": self.maxsizes.get(u),
                    "use": _use(self.after[u][1], self.maxsizes.get(u)),
                }
                for u in self.members
            ],
        }


@dataclass(frozen=True)
class BalanceReport:
    label: str
    kind: str
    members: tuple[str, ...]
    nodes: tuple[NodeRow, ...]
    names: dict[str, str]
    keys: int  # keys considered (every key with a location log)
    mean_use: float | None
    pending: ScenarioResult | None  # transfers the configuration itself would make
    scenarios: tuple[ScenarioResult, ...] = ()
    seconds: float = 0.0

    @property
    def min_var(self) -> float | None:
        vs = [n.var for n in self.nodes if n.var is not None]
        return min(vs) if vs else None

    @property
    def max_var(self) -> float | None:
        vs = [n.var for n in self.nodes if n.var is not None]
        return max(vs) if vs else None

    @property
    def stddev(self) -> float | None:
        uses = [n.use for n in self.nodes if n.use is not None]
        if not uses or self.mean_use is None:
            return None
        m = self.mean_use
        return float((sum((u - m) ** 2 for u in uses) / len(uses)) ** 0.5)

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.label,
            "kind": self.kind,
            "members": list(self.members),
            "keys": self.keys,
            "nodes": [n.to_json() for n in self.nodes],
            "mean-use": self.mean_use,
            "min-var": self.min_var,
            "max-var": self.max_var,
            "stddev": self.stddev,
            "pending": self.pending.to_json(self.names) if self.pending else None,
            "what-if": [
                s.to_json(self.names)
                | (
                    {
                        "vs-pending": {
                            "keys": s.moved_keys - self.pending.moved_keys,
                            "bytes": s.moved_bytes - self.pending.moved_bytes,
                        }
                    }
                    if self.pending is not None
                    else {}
                )
                for s in self.scenarios
            ],
        }

    def to_text(self, *, max_moves: int = 12) -> list[str]:
        from annextui.backend.units import format_rough

        def sz(n: int | None) -> str:
            return "-" if n is None else format_rough(n, 1)

        def pct(x: float | None, fmt: str = "{:.2f}") -> str:
            return "-" if x is None else fmt.format(x)

        lines = [f"{self.kind} {self.label}: {len(self.members)} nodes, {self.keys} keys"]
        head = (
            f"{'KEYS':>9} {'SIZE':>9} {'MAXSIZE':>9} {'%USE':>6} {'VAR':>5} "
            f"{'WANTED':>9} {'DROP':>7} {'MISSING':>8}  NODE"
        )
        lines.append(head)
        for n in self.nodes:
            w = str(n.wanted_keys) if n.configured else "-"
            d = str(n.drop_keys) if n.configured else "-"
            m = str(n.missing_keys) if n.configured else "-"
            lines.append(
                f"{n.keys:>9} {sz(n.size):>9} {sz(n.maxsize):>9} {pct(n.use):>6} "
                f"{pct(n.var):>5} {w:>9} {d:>7} {m:>8}  {n.uuid} -- {n.name}"
            )
        total_keys = sum(n.keys for n in self.nodes)
        total_size = sum(n.size for n in self.nodes)
        lines.append(f"{total_keys:>9} {sz(total_size):>9}  TOTAL")
        lines.append(
            f"MIN/MAX VAR: {pct(self.min_var)}/{pct(self.max_var)}  STDDEV: {pct(self.stddev)}"
        )
        results = ([self.pending] if self.pending else []) + list(self.scenarios)
        for res in results:
            title = res.scenario.describe() if res.scenario else "pending (current configuration)"
            lines.append("")
            lines.append(
                f"{title}: {res.moved_keys} keys, {format_rough(res.moved_bytes, 2)} to transfer"
            )
            for mv in res.moves[:max_moves]:
                src = self._label(mv.src) if mv.src else "(no known copy)"
                dst = self._label(mv.dst) if mv.dst else "(dropped)"
                lines.append(
                    f"  {mv.kind:<4} {src} -> {dst}: {mv.keys} keys, {format_rough(mv.bytes, 2)}"
                )
            if len(res.moves) > max_moves:
                rest = res.moves[max_moves:]
                lines.append(
                    f"  ... {len(rest)} more: {sum(m.keys for m in rest)} keys, "
                    f"{format_rough(sum(m.bytes for m in rest), 2)}"
                )
            if res.scenario is not None and self.pending is not None:
                dk = res.moved_keys - self.pending.moved_keys
                db = res.moved_bytes - self.pending.moved_bytes
                sign = "-" if db < 0 else "+"
                lines.append(
                    f"  compared with pending: {dk:+d} keys, {sign}{format_rough(abs(db), 2)}"
                )
            if res.scenario is not None:
                for u in res.members:
                    k, b = res.after[u]
                    use = _use(b, res.maxsizes.get(u))
                    lines.append(
                        f"  after: {self._label(u)}: {k} keys, {sz(b)}"
                        + (f", {use:.2f}% of {sz(res.maxsizes.get(u))}" if use is not None else "")
                    )
        return lines

    def _label(self, u: str) -> str:
        name = self.names.get(u)
        return f"{u} ({name})" if name else u


def _use(size: int, maxsize: int | None) -> float | None:
    if maxsize is None or maxsize <= 0:
        return None
    return size * 100 / maxsize


# ---------------------------------------------------------------------------------------------
# The engine


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
        stats = {u: [0, 0, 0, 0, 0, 0] for u in self.members}  # wanted k/b, drop k/b, missing k/b
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
                    use=_use(nbytes, maxsize),
                    var=None,
                    configured=info.status != "unconfigured",
                    expression=info.expression,
                    wanted_keys=st[0],
                    wanted_bytes=st[1],
                    drop_keys=st[2],
                    drop_bytes=st[3],
                    missing_keys=st[4],
                    missing_bytes=st[5],
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
                    repos[u] = replace(r, trust=TrustLevel.DEAD, groups=frozenset())
                    members.remove(u)
                    removed = u
                elif scenario.kind == "maxsize":
                    repos[u] = replace(r, maxsize=scenario.maxsize)
                else:
                    repos[u] = replace(r, preferred=scenario.expression)
        clusters = dict(self.world.clusters)
        if self.kind == "cluster" and scenario is not None:
            cu = next((c for c, n in clusters.items() if set(n) == set(self.members)), None)
            if cu is not None:
                clusters[cu] = frozenset(members)
        world = World(
            repos=repos,
            group_wanted=self.world.group_wanted,
            numcopies=self.world.numcopies,
            mincopies=self.world.mincopies,
            clusters=clusters,
            here=self.world.here,
            file_numcopies=self.world.file_numcopies,
            fully_balanced_threshold=self.world.fully_balanced_threshold,
            rebalance=self.world.rebalance,
            unused_keys=self.world.unused_keys,
        )
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
            sim.live[dst] = sim.live.get(dst, 0) + size
            h = sim.held.setdefault(dst, [0, 0])
            h[0] += 1
            h[1] += size
        for src in drops:
            if src in sources:  # no new copy took its place in this step
                sim.moves[(src, None, "drop")] += 1
                sim.move_bytes[(src, None, "drop")] += size
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


def replace_world(world: World, *, rebalance: bool) -> World:
    if world.rebalance == rebalance:
        return world
    return World(
        repos=world.repos,
        group_wanted=world.group_wanted,
        numcopies=world.numcopies,
        mincopies=world.mincopies,
        clusters=world.clusters,
        here=world.here,
        file_numcopies=world.file_numcopies,
        fully_balanced_threshold=world.fully_balanced_threshold,
        rebalance=rebalance,
        unused_keys=world.unused_keys,
    )


def wanted_check(
    repo: Repository,
    target: str,
    keys: Iterable[tuple[str, str | None]],
    *,
    drop: bool = False,
    view: BranchView | None = None,
    on_error: Callable[[str, Exception], None] | None = None,
) -> Iterable[tuple[str, str, bool]]:
    """(key, repository UUID, wanted) for each (key, file): want-get, or want-drop with drop.

    One World and one compiled Evaluator serve every key. A key that cannot be parsed is passed
    to ``on_error`` (or raises BalanceError).
    """
    view = view or BranchView(repo)
    state = load_state(view)
    u = resolve_repo(repo, state, target)
    sizes = repo_sizes(repo, view=view, state=state)
    ev = Evaluator(build_world(repo, state, sizes))
    for key, file in keys:
        try:
            facts = key_facts(repo, view, key, file=file)
        except BalanceError as exc:
            if on_error is None:
                raise
            on_error(key, exc)
            continue
        if u != repo.uuid:
            facts = replace(facts, local_present=None)
        yield key, u, ev.wants_drop(u, facts) if drop else ev.wants_get(u, facts)
