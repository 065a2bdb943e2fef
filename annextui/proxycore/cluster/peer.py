"""`ClusterPeer`: a client connected to a cluster (`--uuid <cluster uuid>`).

Request by request, as upstream's `Annex/Cluster.hs` + `P2P/Proxy.hs` do (proxy-and-cluster.md
§4-7, §10), except where marked *better*:

* nodes: the cluster's node remotes cheapest first (targets.cluster_node_remotes), computed
  after the client's optional `BYPASS`, connected lazily (a node never needed is never opened);
  each is offered the client's version and sent `BYPASS <client's ∪ ours>` when it speaks v2+.
* `PUT`: candidates = nodes the gateway's location log does not list; targets = candidates whose
  preferred content wants the key, else candidates, else all nodes. *Better*: preferred content
  is evaluated node after node assuming the earlier picks (no duplicate copies in `balanced`
  groups), and a tier whose every node fails to answer the PUT falls through to the next tier,
  so a node that is down never fails the upload while another could take it. The client's
  body is read once and streamed to every participant at once, each from its own `PUT-FROM`
  offset; a participant that fails mid-body is dropped and the others carry on. Reply:
  `SUCCESS-PLUS <uuids that stored it>` (v2+), `ALREADY-HAVE-PLUS <holders>` when every target
  had it, `FAILURE` when none stored it. Only what nodes reported is recorded.
* `GET`/`CHECKPRESENT`: only nodes the location log lists are asked. *Better than upstream's
  random pick*: the least busy node first (relayed transfers in flight, from every process of
  this gateway), then the cheapest; a node that errors before or *while* sending is replaced by
  the next one (`GET` resumed at the offset reached), so the client sees no failure.
  *Faster*: a GET skips the log when its answer is certain without it (`_certain_holder`: the
  gateway's own copy, or an idle in-process node of the lowest cost, holding the file, or,
  when no in-process node holds it, the cluster's one ssh node); the log is read only if that
  source fails, for the failover list.
* `REMOVE`/`REMOVE-BEFORE`: every node (the log may be stale), with the client's deadline
  translated into each node's clock from the last `GETTIMESTAMP`; PLUS replies as upstream.
* `GETTIMESTAMP`: one node → its answer; several → ask all, answer the gateway's own clock.
* `LOCKCONTENT`: always `FAILURE`; clients lock the nodes through their own proxied remotes.
* `annex.jobs` bounds how many nodes are worked on at once (connecting, requests, replies);
  a body streams to all of its participants concurrently, since each needs every byte.
* The gateway's own copy (*better*): when the gateway's preferred content is configured and
  wants the key, a PUT also stores it on the gateway, and `GET` serves it from there first.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from annextui.backend.keys import Key
from annextui.proxycore import protocol as p
from annextui.proxycore.cluster.get import ClusterOutgoing, Empty, Source
from annextui.proxycore.cluster.node import Failed, Node, NodeSpec
from annextui.proxycore.cluster.put import ClusterIncoming, Participant
from annextui.proxycore.peer import (
    AlreadyHave,
    ContentLock,
    Incoming,
    Outcome,
    Outgoing,
    Peer,
    PeerFatal,
    RequestRefused,
    Unreachable,
)
from annextui.proxycore.records import GatewayRecords, outcome_uuids

if TYPE_CHECKING:
    from concurrent.futures import Executor, ThreadPoolExecutor

_T = TypeVar("_T")
_R = TypeVar("_R")

# In-process nodes not opened yet are opened to ask whether they hold a key only from a
# session's WARM_GETS-th GET on: opening one reads its git config (a fork, 5-20 ms), which a
# batch of GETs repays at once (each saves a location-log lookup) and a single GET never does.
WARM_GETS = 4


class Preferences(Protocol):
    """Preferred content as the gateway's branch says (backend/preferred)."""

    def wants(
        self, uuid: str, key: Key, associated_file: str | None, present: frozenset[str]
    ) -> bool:
        """Whether repository `uuid` wants the key, assuming `present` hold it."""
        ...

    def configured(self, uuid: str) -> bool:
        """Whether `uuid` has preferred content set at all."""
        ...


def _warn(message: str) -> None:
    import sys

    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"annextui-shell: {message}\n")
        sys.stderr.flush()


class ClusterPeer(Peer):
    """A cluster served to one client connection."""

    def __init__(
        self,
        *,
        uuid: str,
        gateway_uuid: str,
        nodes: Callable[[frozenset[str]], Sequence[NodeSpec]],
        records: GatewayRecords,
        jobs: int = 1,
        executor: Executor | None = None,
        preferences: Preferences | None = None,
        own: Callable[[], Peer] | None = None,
        stored: Callable[[Key, Sequence[str]], None] | None = None,
        warn: Callable[[str], None] = _warn,
        rng: random.Random | None = None,
        pooled: bool = False,
    ) -> None:
        """`pooled`: nodes are leased from a long-running server's pool, so opening an
        in-process node is cheap from the first GET on (no `WARM_GETS` wait)."""
        self._uuid = uuid
        self.gateway_uuid = gateway_uuid
        self._node_specs = nodes
        self.records = records
        self.jobs = max(1, jobs)
        self.preferences = preferences
        self._own_factory = own
        self._own: Peer | None = None
        self._own_error: str | None = None
        self._gets = 0
        self._pooled = pooled
        self._stored = stored
        self.warn = warn
        self.rng = rng or random.Random()
        self.client_version = 0
        self._bypass: frozenset[str] = frozenset()
        self._bypass_set = frozenset({gateway_uuid})
        self._nodes: list[Node] | None = None
        self._executor = executor  # a server's one bounded pool; else this session's own
        self._pool: ThreadPoolExecutor | None = None
        self._timestamps: dict[str, int] = {}
        self._local_timestamp: int | None = None

    @property
    def uuid(self) -> str:
        return self._uuid

    # -- session ----------------------------------------------------------------------------------
    def negotiate_version(self, offered: int) -> int:
        """Answered without contacting any node (nodes may speak less; each is handled so)."""
        self.client_version = min(offered, p.MAX_VERSION)
        return self.client_version

    def bypass(self, uuids: tuple[str, ...]) -> None:
        """Only the BYPASS right after VERSION counts; later ones are ignored, as upstream."""
        if self._nodes is None:
            self._bypass = frozenset(uuids)
            self._bypass_set = self._bypass | {self.gateway_uuid}

    @property
    def bypass_set(self) -> frozenset[str]:
        """What the nodes are told to bypass: the client's set plus this gateway (made once:
        every request to a node asks for it)."""
        return self._bypass_set

    def nodes(self) -> list[Node]:
        if self._nodes is None:
            self._nodes = [Node(s) for s in self._node_specs(self._bypass)]
        return self._nodes

    def _peer(self, node: Node) -> Peer:
        return node.peer(self.client_version, self.bypass_set)

    def fan_out(self, items: Sequence[_T], fn: Callable[[_T], _R]) -> list[_R]:
        """fn over items, at most `jobs` at once, results in order."""
        if len(items) <= 1 or self.jobs <= 1:
            return [fn(i) for i in items]
        if self._executor is not None:
            return _waves(self._executor, self.jobs, items, fn)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # only with annex.jobs > 1

            self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="node")
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        try:
            if self._nodes:
                opened = [n for n in self._nodes if n.opened is not None]

                def shut(n: Node) -> None:
                    try:
                        n.close()
                    except Exception as exc:
                        self.warn(f"closing {n.name}: {exc}")

                if self._executor is not None:
                    # a server's nodes go back to its pool (closing, if any, is off this thread)
                    for n in opened:
                        shut(n)
                elif len(opened) > 1:
                    # Nodes commit their journals as they close: do it side by side.
                    from concurrent.futures import ThreadPoolExecutor

                    with ThreadPoolExecutor(max_workers=len(opened)) as ex:
                        list(ex.map(shut, opened))
                else:
                    for n in opened:
                        shut(n)
            if self._own is not None:
                self._own.close()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self.records.close()

    def note_stored(self, key: Key, uuids: Sequence[str]) -> None:
        """Live size accounting for the next preferred-content decisions."""
        if self._stored is not None and uuids:
            self._stored(key, uuids)

    # -- the gateway's own copy -------------------------------------------------------------------
    def _own_peer(self, *, quiet: bool = False) -> Peer | None:
        """The gateway's own repository; `quiet`: a look that warns of no failure (a GET's
        fast path asks whether it holds a key it may not even be logged to have)."""
        if self._own is None and self._own_factory is not None:
            try:
                self._own = self._own_factory()
            except Exception as exc:
                self._own_error = f"the gateway's own copy is unavailable: {exc}"
                self._own_factory = None
        if self._own_error is not None and not quiet:
            self.warn(self._own_error)
            self._own_error = None
        return self._own

    def _own_wants(self, key: Key, af: str | None, present: frozenset[str]) -> bool:
        prefs = self.preferences
        if self._own_factory is None or prefs is None or self.gateway_uuid in present:
            return False
        if not prefs.configured(self.gateway_uuid):
            return False
        return prefs.wants(self.gateway_uuid, key, af, present)

    # -- CHECKPRESENT / GET -----------------------------------------------------------------------
    def _holders(self, key: Key) -> list[Node | Peer]:
        """Where to read the key from, best first (the gateway's own copy, then least busy)."""
        locs = self.records.locations(key)
        order: list[Node | Peer] = []
        if self.gateway_uuid in locs:
            own = self._own_peer()
            if own is not None:
                order.append(own)
        nodes = [n for n in self.nodes() if n.uuid in locs and n.down is None]
        if len(nodes) > 1:
            busy = self.records.busy()
            ranked = [(busy.get(n.uuid, 0), n.cost, self.rng.random(), n) for n in nodes]
            ranked.sort(key=lambda t: t[:3])
            nodes = [t[3] for t in ranked]
        return order + nodes

    def _certain_holder(self, key: Key) -> Node | Peer | None:
        """Where `_holders` would send a GET, found without reading the location log, when
        that choice is certain: the gateway's own copy if its file is there (the log puts it
        first whenever logged), else an idle in-process node of the cluster's lowest cost
        whose object file is there (the log ranks holders by transfers in flight, then cost,
        then at random, so nothing could come before it), else, when no in-process node has
        the file, the cluster's one node behind another process (`_sole_remote`). None: the
        log decides."""
        self._gets += 1
        own = self._own_peer(quiet=True)
        own_holds = own.holds(key) if own is not None else False
        if own_holds:
            return own
        nodes = [n for n in self.nodes() if n.down is None]
        if not nodes:
            return None
        cheapest = min(n.cost for n in nodes)
        warm = self._pooled or self._gets >= WARM_GETS
        local = [
            n
            for n in nodes
            if n.spec.in_process and n.cost == cheapest and (warm or n.opened is not None)
        ]
        if len(local) > 1:
            self.rng.shuffle(local)  # ties are random, as in `_holders`
        lacking: set[str] = set()
        for n in local:
            try:
                held = self._holds(n, key)
            except PeerFatal as exc:
                self.warn(str(exc))  # now down: the log's choice skips it too
                continue
            if held and not self.records.busy(n.uuid):
                return n
            if held is False:
                lacking.add(n.uuid)
        if warm and own_holds is False:
            return self._sole_remote(key, nodes, lacking)
        return None

    def _holds(self, node: Node, key: Key) -> bool | None:
        """`Peer.holds` of an in-process node: by its spec's probe when it has one (a server's
        pooled node, not leased for a stat), else by its peer."""
        probe = node.spec.holds
        return probe(key) if probe is not None else self._peer(node).holds(key)

    def _sole_remote(self, key: Key, nodes: list[Node], lacking: set[str]) -> Node | None:
        """The cluster's one live node behind another process (an ssh node), when every
        in-process node says it has no file for the key (`lacking`: those already asked).
        Whatever the log says, no other place could send the content: a logged in-process
        node without the file would answer no content, and the log would then send the GET
        here (or nowhere, when it does not list this node: asking it anyway costs a node a
        round trip on a GET the client should not have sent, and serves a copy the log
        lost). So the log is read only if this node has no copy either."""
        remote = [n for n in nodes if not n.spec.in_process]
        if len(remote) != 1:
            return None
        for n in nodes:
            if not n.spec.in_process or n.uuid in lacking:
                continue
            try:
                if self._holds(n, key) is not False:
                    return None
            except PeerFatal as exc:
                self.warn(str(exc))
                return None
        return remote[0]

    def _source(self, place: Node | Peer) -> Peer:
        return self._peer(place) if isinstance(place, Node) else place

    def check_present(self, key: Key) -> bool:
        """Whether a node holds the key. The gateway's own copy does not count: it is logged
        under the gateway's UUID, and a client counting it for the cluster too would count one
        copy twice towards numcopies (it still serves GET, as any good copy may)."""
        last: str | None = None
        for place in self._holders(key):
            if not isinstance(place, Node):
                continue
            try:
                if self._source(place).check_present(key):
                    return True
            except RequestRefused as exc:
                last = str(exc)
            except PeerFatal as exc:
                self.warn(str(exc))
        if last is not None:
            raise RequestRefused(last)
        return False

    def lock_content(self, key: Key) -> ContentLock | None:
        return None

    def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
        first = self._certain_holder(key)
        refused: str | None = None
        if first is not None:
            out, _, refused = self.open_get([first], key, offset, associated_file)
            if out is not None:

                def rest() -> list[Node | Peer]:
                    # Read only if `first` fails: the failover list, as the log ranks it.
                    return [p for p in self._holders(key) if p is not first]

                return ClusterOutgoing(self, out, rest, key, offset, associated_file)
        places = [p for p in self._holders(key) if p is not first]
        out, later, last = self.open_get(places, key, offset, associated_file)
        if out is None:
            last = last or refused
            if last is not None:
                raise RequestRefused(last)
            return None
        return ClusterOutgoing(self, out, later, key, offset, associated_file)

    def open_get(
        self, places: list[Node | Peer], key: Key, offset: int, af: str | None
    ) -> tuple[Source | None, list[Node | Peer], str | None]:
        """The first place that sends the content from `offset`; the rest for failover."""
        last: str | None = None
        for i, place in enumerate(places):
            try:
                out = self._source(place).get(key, offset, af)
            except RequestRefused as exc:
                last = str(exc)
                continue
            except PeerFatal as exc:
                self.warn(str(exc))
                continue
            if out is None:
                continue
            if out.length == 0 and (key.size is None or offset < key.size):
                # DATA 0: nothing there (INVALID) or, for a key of unknown size, empty content.
                try:
                    ok = out.valid()
                    out.close(Outcome(ok))
                except PeerFatal:
                    ok = False
                if not ok:
                    continue
                return Source(place, Empty(offset)), places[i + 1 :], None
            return Source(place, out), places[i + 1 :], None
        return None, [], last

    # -- PUT --------------------------------------------------------------------------------------
    def _tiers(
        self, key: Key, af: str | None, locs: frozenset[str]
    ) -> tuple[list[list[Node]], list[Node]]:
        """The PUT targets in order of preference (the next tier is tried only when every node
        of a tier was unreachable or refused), and the nodes that want the key."""
        nodes = self.nodes()
        candidates = [n for n in nodes if n.uuid not in locs]
        wanted: list[Node] = []
        prefs = self.preferences
        if prefs is not None:
            assumed = set(locs)
            for n in candidates:
                if prefs.wants(n.uuid, key, af, frozenset(assumed)):
                    wanted.append(n)
                    assumed.add(n.uuid)
        else:
            wanted = list(candidates)
        tiers = [wanted, [n for n in candidates if n not in wanted]]
        tiers.append([n for n in nodes if n not in candidates])
        if not candidates:
            tiers = [nodes]
        return [t for t in tiers if t], wanted

    def _verified_holders(self, key: Key, locs: frozenset[str]) -> list[str]:
        """Logged holders that confirm they have the key (CHECKPRESENT)."""
        found = []
        for n in self.nodes():
            if n.uuid not in locs or n.down is not None:
                continue
            try:
                if self._peer(n).check_present(key):
                    found.append(n.uuid)
            except (RequestRefused, PeerFatal, OSError):
                continue
        return found

    def put(self, key: Key, associated_file: str | None) -> Incoming | AlreadyHave:
        locs = frozenset(self.records.locations(key))
        tiers, wanted = self._tiers(key, associated_file, locs)
        if not tiers:
            raise RequestRefused("the cluster has no nodes")
        if (
            self.preferences is not None
            and not wanted
            and locs & {n.uuid for n in self.nodes()}
            and not self._own_wants(key, associated_file, locs)
        ):
            # Better than upstream's fallback to every other node: the cluster already holds
            # the key and no node wants another copy (typically a client that lost a race with
            # another client's upload). Confirm it with the holders and say so.
            confirmed = [u for u in self._verified_holders(key, locs) if u != self._uuid]
            if confirmed:
                return AlreadyHave(tuple(confirmed))
        errors: list[str] = []
        participants: list[Participant] = []
        holders: list[str] = []
        for tier in tiers:
            live = [n for n in tier if n.down is None]
            results = self.fan_out(live, lambda n: self._start_put(n, key, associated_file))
            busy = False
            for n, res in zip(live, results, strict=True):
                if isinstance(res, Failed):
                    errors.append(f"{n.name}: {res.error or n.down or 'connection lost'}")
                    busy = busy or not res.elsewhere
                elif isinstance(res, AlreadyHave):
                    holders += [n.uuid, *(res.plus or ())]
                else:
                    participants.append(Participant(n.uuid, n.name, res, node=n))
            for n in tier:
                if n.down is not None and n not in live:
                    errors.append(n.down)
            if participants or holders or busy:
                break
        if holders:
            self.records.record(key, holders, present=True)
        if self._own_wants(key, associated_file, locs | frozenset(holders)):
            own = self._own_peer()
            if own is not None:
                try:
                    res = own.put(key, associated_file)
                except (RequestRefused, PeerFatal) as exc:
                    self.warn(f"the gateway's own copy: {exc}")
                else:
                    if isinstance(res, AlreadyHave):
                        holders.append(self.gateway_uuid)
                    else:
                        participants.append(Participant(self.gateway_uuid, "gateway", res))
        if not participants:
            if holders:
                return AlreadyHave(tuple(u for u in dict.fromkeys(holders) if u != self._uuid))
            raise RequestRefused(
                "no node of the cluster accepted the content ("
                + "; ".join(dict.fromkeys(errors))
                + ")"
            )
        return ClusterIncoming(self, key, associated_file, participants, holders)

    def _start_put(self, node: Node, key: Key, af: str | None) -> Incoming | AlreadyHave | Failed:
        try:
            peer = self._peer(node)
        except PeerFatal:
            return Failed(None)  # down: node.down says why
        try:
            return peer.put(key, af)
        except Unreachable as exc:
            node.mark_down(exc)  # its repository is gone: another node may take the key
            return Failed(None)
        except RequestRefused as exc:
            return Failed(str(exc))  # refused (e.g. full): another node may take it
        except (PeerFatal, OSError) as exc:
            # Reached, then it hung up on this PUT: git-annex-shell does that when another
            # transfer of the key holds its lock. Placing the key elsewhere would only make
            # an unwanted copy; the client retries later.
            self.warn(f"{node.name}: {exc}")
            return Failed(None, elsewhere=False)

    # -- REMOVE / GETTIMESTAMP --------------------------------------------------------------------
    def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        nodes = self.nodes()
        if not nodes:
            return Outcome(False)

        def one(n: Node) -> Outcome | Failed:
            deadline = before
            if before is not None and self._local_timestamp is not None:
                theirs = self._timestamps.get(n.uuid)
                if theirs is not None:
                    deadline = theirs + (before - self._local_timestamp)
            try:
                return self._peer(n).remove(key, before=deadline)
            except RequestRefused as exc:
                return Failed(str(exc))
            except PeerFatal as exc:
                self.warn(str(exc))
                return Failed(None)
            except OSError as exc:
                self.warn(f"{n.name}: {exc}")
                return Failed(None)

        results = self.fan_out(nodes, one)
        removed: list[str] = []
        for n, r in zip(nodes, results, strict=True):
            if isinstance(r, Outcome):
                removed += outcome_uuids(n.uuid, r)
        self.records.record(key, removed, present=False)
        nonplussed = self.client_version < 2 or all(u == self._uuid for u in removed)
        if all(isinstance(r, Outcome) and r.ok for r in results):
            return Outcome(True, None if nonplussed else tuple(removed))
        if nonplussed:
            errors = [r.error for r in results if isinstance(r, Failed) and r.error]
            if errors:
                raise RequestRefused(errors[0])
            return Outcome(False)
        return Outcome(False, tuple(removed))

    def timestamp(self) -> int:
        from annextui.proxycore.local import monotonic_seconds

        nodes = self.nodes()
        if len(nodes) == 1:
            self._timestamps, self._local_timestamp = {}, None
            try:
                return self._peer(nodes[0]).timestamp()
            except PeerFatal as exc:
                raise RequestRefused(str(exc)) from exc

        def one(n: Node) -> int | None:
            try:
                return self._peer(n).timestamp()
            except (RequestRefused, PeerFatal, OSError):
                return None

        times = self.fan_out(nodes, one)
        # The local clock read after the nodes': any delay shortens the allowed time.
        local = monotonic_seconds()
        self._timestamps = {n.uuid: t for n, t in zip(nodes, times, strict=True) if t is not None}
        self._local_timestamp = local
        return local


def _waves(executor: Executor, jobs: int, items: Sequence[_T], fn: Callable[[_T], _R]) -> list[_R]:
    """fn over items on a shared executor, `jobs` at a time: each wave's first item runs on
    the calling thread (which would only wait otherwise), the rest on the executor."""
    out: list[_R] = []
    for start in range(0, len(items), jobs):
        wave = items[start : start + jobs]
        futures = [executor.submit(fn, item) for item in wave[1:]]
        first = fn(wave[0])
        out.append(first)
        out.extend(f.result() for f in futures)
    return out
