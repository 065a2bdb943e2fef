"""The gateway: which Peer serves a `p2pstdio … --uuid U` connection, and how nodes are reached.

`open_gateway(repo, U)` decides as git-annex does (targets.select_target: own UUID, a proxied
remote permitted by local git config, or a cluster) and `GatewayTarget.serve()` runs the
protocol for it on stdin/stdout:

* a proxied remote → `ProxiedPeer` around the remote's peer;
* a cluster → `ClusterPeer` over the cluster's nodes.

Reaching a node or remote (`node_peer`):
* a path remote → `LocalPeer` on that repository, in this process (upstream spawns a
  `git-annex-shell` per local node; here there is no subprocess and no extra copy: bodies go
  from the client's pipe to the node's temp file, and from the node's object to the client's
  pipe with `sendfile`);
* an ssh remote, including another gateway's cluster or proxied remote → `RemotePeer` over a
  paramiko channel from one process-wide `SshPool` (one transport per host, `~/.ssh/config`,
  `annex-ssh-options` and known_hosts honoured, unknown or changed host keys refused), running
  `remote.NAME.annex-shell` (default `git-annex-shell`) `p2pstdio DIR <gateway uuid> --uuid U`.
  paramiko is imported only when such a node is first used; a host whose configuration only
  OpenSSH can follow (or GIT_SSH/GIT_SSH_COMMAND) gets the system's ssh instead (ssh.py);
* a special remote or an `annex+http` remote → `RemotePeer` over a local
  `git-annex-shell p2pstdio GATEWAY CLIENT --uuid U` (`_delegated_node`): git-annex knows every
  special remote type and the gateway's credentials for it.

Preferred content for cluster fan-out comes from `backend.preferred`, fed from the gateway's
branch (`BranchPreferences`), with live size accounting when a `maxsize` is recorded.
"""

from __future__ import annotations

import enum
import os
import random
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from annextui.backend.keys import Key
from annextui.proxycore import protocol as p
from annextui.proxycore.cluster import ClusterPeer, NodeSpec
from annextui.proxycore.peer import Peer
from annextui.proxycore.proxied import ProxiedPeer
from annextui.proxycore.records import GatewayRecords
from annextui.proxycore.remote import NodeError, RemotePeer
from annextui.values import Value, value_field

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from annextui.backend.branch import BranchView
    from annextui.backend.catfile import CatFile
    from annextui.backend.preferred import Evaluator, World
    from annextui.backend.repo import Remote, Repository
    from annextui.backend.state import AnnexState
    from annextui.proxycore.localrepo import LocalRepo
    from annextui.proxycore.nodepool import NodePool
    from annextui.proxycore.remote import ByteStream
    from annextui.proxycore.server import ServeResult, ServerMode
    from annextui.proxycore.ssh import SshPool
    from annextui.proxycore.targets import Target

DEFAULT_SHELL = "git-annex-shell"
DELEGATE_ENV = "ANNEXTUI_SHELL_DELEGATED"  # set for the git-annex-shell serving a special remote

_pool: SshPool | None = None
_pool_lock = threading.Lock()


def ssh_pool() -> SshPool:
    """The process-wide pool: every channel to one host shares one ssh transport."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from annextui.proxycore.ssh import SshPool

            _pool = SshPool()
        return _pool


def prune_ssh_pool(idle: float, keep: int) -> int:
    """A long-running server's housekeeping: close node transports idle for `idle` seconds or
    beyond `keep` idle ones (nothing happens, and nothing is imported, without a pool)."""
    with _pool_lock:
        pool = _pool
    return pool.prune(idle, keep) if pool is not None else 0


def close_ssh_pool() -> None:
    """Close every node transport (a server's shutdown)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def annex_jobs(value: str | None) -> int:
    """`annex.jobs`: a number, or `cpus` for the core count; 1 when unset or unparsable."""
    if not value:
        return 1
    if value.strip().lower() == "cpus":
        return os.cpu_count() or 1
    try:
        return max(1, int(value))
    except ValueError:
        return 1


class Gateway(Value):
    """The gateway repository as a session needs it."""

    local: LocalRepo
    repo: Repository
    state: AnnexState
    uuid: str
    client_uuid: str
    # A one-shot session's view of the branch (its state was read from it) and the batch
    # reader behind it, handed to the session's records (one peer per Gateway then); None:
    # the records make their own (a server, whose states are cached).
    view: BranchView | None = None
    catfile: CatFile | None = None

    @property
    def top(self) -> os.PathLike[str]:
        return self.repo.top


# -- reaching a node -----------------------------------------------------------------------------


def node_peer(
    gw: Gateway,
    remote: Remote,
    *,
    uuid: str | None = None,
    offer: int = 4,
    bypass: frozenset[str] = frozenset(),
) -> Peer:
    """A Peer for `remote` (which must answer as `uuid`, default its own annex-uuid)."""
    want = uuid or remote.uuid
    if not want:
        raise NodeError(f"{remote.name} has no known annex-uuid")
    how = _reached_by(remote)
    if how is _Reach.GIT_ANNEX_SHELL:
        return _delegated_node(gw, remote, want, offer=offer, bypass=bypass)
    if how is _Reach.IN_PROCESS:
        return _local_node(gw, remote, want)
    return _ssh_node(gw, remote, want, offer=offer, bypass=bypass)


class _Reach(enum.Enum):
    IN_PROCESS = "a path remote, served by LocalPeer here"
    SSH = "an ssh remote, through paramiko"
    GIT_ANNEX_SHELL = "a special or HTTP remote, through a local git-annex-shell"


def _reached_by(remote: Remote) -> _Reach:
    url = remote.url
    if not url or url.startswith(("annex+http", "http://", "https://")):
        return _Reach.GIT_ANNEX_SHELL
    if remote.is_local_path and not remote.option("annex-proxied-by"):
        return _Reach.IN_PROCESS
    return _Reach.SSH


def _delegated_node(
    gw: Gateway, remote: Remote, uuid: str, *, offer: int, bypass: frozenset[str]
) -> RemotePeer:
    """A special remote (or a remote reached over HTTP) served by git-annex's own shell.

    git-annex-shell proxies every remote type git-annex knows (S3, directory, rsync, external
    special remotes, exporttree with annexobjects, p2phttp), using the gateway's own
    configuration and credentials; a local `git-annex-shell p2pstdio GATEWAY CLIENT --uuid U`
    speaks the protocol for it, and this gateway relays to it as to any other node. The marker
    in its environment stops a git-annex-shell that is really annextui-shell from delegating
    back to itself.
    """
    import shutil

    from annextui.proxycore.remote import ProcessStream

    what = "a special remote" if not remote.url else f"reached over HTTP ({remote.url})"
    if os.environ.get(DELEGATE_ENV):
        raise NodeError(
            f"{remote.name} is {what}; it needs git-annex's own git-annex-shell, "
            f"but the one on PATH is annextui-shell"
        )
    program = shutil.which(DEFAULT_SHELL)
    if program is None:
        raise NodeError(f"{remote.name} is {what}; serving it needs git-annex-shell on PATH")
    local = gw.local
    directory = str(local.gitdir if local.bare else local.top)
    argv = [program, "p2pstdio", directory, gw.client_uuid or gw.uuid, "--uuid", uuid]
    env = {**os.environ, DELEGATE_ENV: "1"}

    def opener() -> ProcessStream:
        try:
            return ProcessStream(argv, cwd=directory, env=env)
        except OSError as exc:
            raise NodeError(f"{remote.name}: cannot run {program}: {exc}") from exc

    return RemotePeer(opener, uuid=uuid, name=remote.name, bypass=bypass, offer=offer)


def _local_node(gw: Gateway, remote: Remote, uuid: str) -> Peer:
    from annextui.proxycore.nodepeer import NodePeer

    return NodePeer(_local_repo(gw, remote, uuid), client_uuid=gw.uuid)


def _local_repo(gw: Gateway, remote: Remote, uuid: str) -> LocalRepo:
    from annextui.proxycore.localrepo import RepoError
    from annextui.proxycore.repocache import open_repo

    path = remote.local_path(gw.repo.top)
    assert path is not None  # only local-path remotes are served in-process
    try:
        node = open_repo(str(path))
    except RepoError as exc:
        raise NodeError(f"cannot reach {remote.name}: {exc}") from exc
    if node.uuid != uuid:
        raise NodeError(
            f"{remote.name}: expected repository UUID {uuid} but found UUID {node.uuid}"
        )
    return node


def leased_node_peer(
    gw: Gateway,
    remote: Remote,
    pool: NodePool,
    *,
    offer: int,
    bypass: frozenset[str],
    uuid: str | None = None,
) -> Peer:
    """`node_peer` through a server's pool of idle node connections (nodepool.py): the key is
    everything the connection is set up with, so a reused one is what a new one would be."""
    uuid = uuid or remote.uuid
    if not uuid:
        raise NodeError(f"{remote.name} has no known annex-uuid")
    how = _reached_by(remote)
    if how is _Reach.IN_PROCESS:
        # the LocalRepo in the key: a changed git config (a new LocalRepo) means new peers
        node = _local_repo(gw, remote, uuid)

        def local() -> Peer:
            from annextui.proxycore.nodepeer import NodePeer

            return NodePeer(node, client_uuid=gw.uuid)

        return pool.lease((how, node, gw.uuid), local)
    key = (
        how,
        remote.name,
        remote.url,
        uuid,
        tuple(sorted(remote.options.items())),
        gw.uuid,
        gw.client_uuid if how is _Reach.GIT_ANNEX_SHELL else "",
        offer,
        bypass,
    )
    return pool.lease(key, lambda: node_peer(gw, remote, uuid=uuid, offer=offer, bypass=bypass))


def leased_proxied_peer(gw: Gateway, remote: Remote, uuid: str, pool: NodePool) -> Peer:
    """A proxied remote's connection for a server's request: leased from the pool, as a
    cluster node's is, once the client's version is known (nodepool.LeasedWhenOpened)."""
    from annextui.proxycore.nodepool import LeasedWhenOpened

    def lease(offer: int, bypass: frozenset[str]) -> Peer:
        return leased_node_peer(gw, remote, pool, offer=offer, bypass=bypass, uuid=uuid)

    relays = _reached_by(remote) is not _Reach.IN_PROCESS
    return LeasedWhenOpened(lease, uuid=uuid, relays=relays)


def _ssh_node(
    gw: Gateway, remote: Remote, uuid: str, *, offer: int, bypass: frozenset[str]
) -> RemotePeer:
    from annextui.proxycore.ssh import SshOptions, parse_ssh_url, shell_command

    assert remote.url is not None
    target = parse_ssh_url(remote.url)
    if target is None:
        raise NodeError(f"{remote.name}: cannot reach {remote.url}")
    opts = SshOptions.parse(remote.option("annex-ssh-options"))
    program = remote.option("annex-shell") or DEFAULT_SHELL
    command = shell_command(program, "p2pstdio", target.remote_dir, gw.uuid, uuid=uuid)

    def opener() -> ByteStream:
        from annextui.proxycore.ssh import SshError

        try:
            return ssh_pool().open_stream(target, command, opts)
        except SshError as exc:
            raise NodeError(f"{remote.name}: {exc}") from exc

    return RemotePeer(
        opener,
        uuid=uuid,
        name=remote.name,
        bypass=bypass,
        offer=offer,
    )


def _ssh_remotes(remotes: Sequence[Remote]) -> list[Remote]:
    return [r for r in remotes if r.url and _reached_by(r) is _Reach.SSH]


def prewarm_ssh(remotes: Sequence[Remote]) -> None:
    """Import paramiko and bring up the ssh transports of these remotes' hosts in the
    background, while the client's requests are served. Only the transport (TCP, key exchange,
    authentication) is made early; node connections (channels) still open on first use."""
    wanted = [(r.url or "", r.option("annex-ssh-options")) for r in _ssh_remotes(remotes)]
    if not wanted:
        return

    def run() -> None:
        # ssh.py (and paramiko) are imported here, off the thread that answers the client.
        from annextui.proxycore.ssh import (
            SshOptions,
            parse_ssh_url,
            resolve_host,
            start_paramiko_import,
        )

        start_paramiko_import()  # while `ssh -G` runs (a subprocess: the GIL is free)
        pool = ssh_pool()
        for url, options in wanted:
            target = parse_ssh_url(url)
            if target is None:
                continue
            try:
                pool.transport(resolve_host(target, SshOptions.parse(options)))
            except Exception:  # the real connection attempt reports it
                continue

    threading.Thread(target=run, name="ssh-prewarm", daemon=True).start()


# The client's requests for a key: the second one starts a one-shot session's ssh pre-warm.
_KEY_REQUESTS = (p.Get, p.Put, p.CheckPresent, p.LockContent, p.Remove, p.RemoveBefore)


class PrewarmLater:
    """A one-shot cluster session's ssh pre-warm, started at the client's second request for
    a key (`on_request`, which the server calls with each message) instead of at the start.

    Started at the start, it cost a session whose one GET a node in this process serves (most
    one-file `git annex get`s) a fifth of its CPU and wall time: ssh.py's and paramiko's
    imports compete for the interpreter with the session's own work, for a connection it never
    uses. A first request that needs an ssh node opens it itself, no later than the pre-warm
    had it (the client's VERSION round trip was all the head start it got); from the second
    request on, the transport comes up while the session serves others, as before."""

    __slots__ = ("_remotes", "_seen")

    def __init__(self) -> None:
        self._remotes: list[Remote] = []
        self._seen = 0

    def remember(self, remotes: Sequence[Remote]) -> None:
        """What `prewarm_ssh` would warm now (build_peer's `warm`)."""
        self._remotes.extend(_ssh_remotes(remotes))

    @property
    def pending(self) -> bool:
        return bool(self._remotes)

    def on_request(self, message: object) -> None:
        if not self._remotes or not isinstance(message, _KEY_REQUESTS):
            return
        self._seen += 1
        if self._seen >= 2:
            remotes, self._remotes = self._remotes, []
            prewarm_ssh(remotes)


# -- preferred content ---------------------------------------------------------------------------


class BranchPreferences:
    """`cluster.Preferences` from the gateway's branch, with live sizes for `maxsize` users."""

    def __init__(self, gw: Gateway, records: GatewayRecords) -> None:
        self.gw = gw
        self.records = records
        self._sizes: dict[str, int] | None = None
        self._evaluator: Evaluator | None = None
        self._needs_sizes = bool(gw.state.maxsize)
        self._warned = False

    def configured(self, uuid: str) -> bool:
        st = self.gw.state
        return bool((st.preferred.get(uuid) or "").strip() or (st.required.get(uuid) or "").strip())

    def _world(self) -> World:
        # the console's balance report builds its World the same way (backend/world.py)
        from annextui.backend.world import build_world

        if not self._needs_sizes:
            return build_world(self.gw.repo, self.gw.state)
        sizes = self._live_sizes()
        return build_world(self.gw.repo, self.gw.state, lambda u: sizes.get(u, 0), sizes)

    def _live_sizes(self) -> dict[str, int]:
        if self._sizes is None:
            self._sizes = repo_sizes(self.gw.repo, self.gw.state)
        return self._sizes

    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            from annextui.backend.preferred import Evaluator

            self._evaluator = Evaluator(self._world())
        return self._evaluator

    def wants(
        self, uuid: str, key: Key, associated_file: str | None, present: frozenset[str]
    ) -> bool:
        try:
            return self._wants(self.evaluator(), uuid, key, associated_file, present)
        except Exception as exc:  # never fail an upload over a preferred-content problem
            if not self._warned:
                self._warned = True
                import sys

                sys.stderr.write(f"annextui-shell: preferred content not evaluated: {exc}\n")
            return True

    @staticmethod
    def _wants(
        ev: Evaluator, uuid: str, key: Key, associated_file: str | None, present: frozenset[str]
    ) -> bool:
        from annextui.backend.preferred import KeyFacts

        return ev.wants_get(
            uuid, KeyFacts(key, locations=present, file=associated_file), default=True
        )

    def stored(self, key: Key, uuids: Sequence[str]) -> None:
        """Live size accounting: content just stored counts towards those repositories."""
        if self._sizes is None or key.size is None or not uuids:
            return
        for u in uuids:
            self._sizes[u] = self._sizes.get(u, 0) + key.size
        self._evaluator = None


def repo_sizes(repo: Repository, state: AnnexState | None = None) -> dict[str, int]:
    """Bytes per repository, from the backend's one count of the location logs (branch,
    journal and unmerged refs; incremental from its cache), as the console counts them."""
    from annextui.backend.sizes import repo_sizes as count_sizes

    return {u: r.size for u, r in count_sizes(repo, state=state).repos.items()}


# -- building the peer for a target --------------------------------------------------------------


def cluster_nodes(
    gw: Gateway, cluster_uuid: str, pool: NodePool | None = None
) -> Callable[[frozenset[str]], list[NodeSpec]]:
    """The cluster's nodes after the client's BYPASS; with a pool, their peers are leased."""

    def specs(bypass: frozenset[str]) -> list[NodeSpec]:
        out = []
        for r in _node_remotes(gw, cluster_uuid, bypass):
            assert r.uuid is not None

            def connect(offer: int, bp: frozenset[str], r: Remote = r) -> Peer:
                if pool is not None:
                    return leased_node_peer(gw, r, pool, offer=offer, bypass=bp)
                return node_peer(gw, r, offer=offer, bypass=bp)

            local = _reached_by(r) is _Reach.IN_PROCESS
            probe = _object_probe(gw, r, r.uuid) if local and pool is not None else None
            out.append(NodeSpec(r.uuid, r.name, r.cost, connect, in_process=local, holds=probe))
        return out

    return specs


def _object_probe(gw: Gateway, remote: Remote, uuid: str) -> Callable[[Key], bool | None]:
    """`Peer.holds` of an in-process node without leasing its peer (`NodeSpec.holds`)."""

    def holds(key: Key) -> bool | None:
        from annextui.proxycore.objectstore import UnsafePath

        try:
            return _local_repo(gw, remote, uuid).store.has_object(key)
        except (NodeError, OSError, UnsafePath):  # the GET itself (or the log) decides
            return None

    return holds


_remotes_memo: dict[tuple[int, str, str, frozenset[str]], tuple[AnnexState, list[Remote]]] = {}
_memo_lock = threading.Lock()
_MEMO_SIZE = 64


def _node_remotes(gw: Gateway, cluster_uuid: str, bypass: frozenset[str]) -> list[Remote]:
    """targets.cluster_node_remotes, remembered per branch state (a long-running server keeps
    one `AnnexState` until the branch, git config or a top-level log changes; the entry holds
    that state, so its id is not reused while the entry lives)."""
    from annextui.proxycore.targets import cluster_node_remotes

    memo_key = (id(gw.state), str(gw.local.gitdir), cluster_uuid, bypass)
    with _memo_lock:
        hit = _remotes_memo.get(memo_key)
    if hit is not None and hit[0] is gw.state:
        return hit[1]
    remotes = cluster_node_remotes(gw.repo, gw.state, cluster_uuid, bypass)
    with _memo_lock:
        if len(_remotes_memo) >= _MEMO_SIZE:
            _remotes_memo.clear()
        _remotes_memo[memo_key] = (gw.state, remotes)
    return remotes


class ServerSide(Value):
    """How a long-running server (`annextui p2phttp`) builds cluster and proxied peers:
    connections to nodes and proxied remotes leased from its pool, the fan-out on its one
    bounded executor, `cluster_jobs` nodes at once per request (`--clusterjobs`), and no ssh
    pre-warming (pooled connections stay up)."""

    pool: NodePool
    cluster_jobs: int = 1
    executor: Executor | None = None
    # One generator for every request's random ties: a new `random.Random()` per request
    # reads the kernel's entropy and seeds a Mersenne Twister (2 per small cluster GET).
    rng: random.Random = value_field(default_factory=random.Random)


def build_peer(
    gw: Gateway,
    target: Target,
    server: ServerSide | None = None,
    *,
    warm: Callable[[Sequence[Remote]], None] = prewarm_ssh,
) -> Peer:
    """The Peer serving `target`; a one-shot session's cluster nodes over ssh are handed to
    `warm` (the pre-warm now, or `PrewarmLater.remember`)."""
    from annextui.proxycore.local import LocalPeer
    from annextui.proxycore.targets import ClusterTarget, LocalTarget, RemoteTarget

    if isinstance(target, LocalTarget):
        return LocalPeer(gw.local, client_uuid=gw.client_uuid)
    records = GatewayRecords(
        gw.repo,
        clusters=gw.state.clusters,
        file_mode=gw.local.store.file_mode(),
        kept_view=server is not None,
        view=gw.view,
        catfile=gw.catfile,
    )
    if isinstance(target, RemoteTarget):
        inner: Peer
        if server is None:
            prewarm_ssh([target.remote])
            inner = node_peer(gw, target.remote, uuid=target.uuid, offer=0)
        else:  # pooled connections stay up: nothing to pre-warm
            inner = leased_proxied_peer(gw, target.remote, target.uuid, server.pool)
        return ProxiedPeer(
            inner,
            uuid=target.uuid,
            name=target.remote.name,
            records=records,
            via=target.remote.option("annex-proxied-by") or None,
            gateway=gw.uuid,
        )
    assert isinstance(target, ClusterTarget)
    if server is None:
        warm(_node_remotes(gw, target.uuid, frozenset()))
    prefs = BranchPreferences(gw, records)

    def own() -> Peer:  # a one-shot session's reader of this repository is shared
        return LocalPeer(gw.local, client_uuid=gw.client_uuid, catfile=gw.catfile)

    return ClusterPeer(
        uuid=target.uuid,
        gateway_uuid=gw.uuid,
        nodes=cluster_nodes(gw, target.uuid, server.pool if server else None),
        records=records,
        jobs=server.cluster_jobs if server else annex_jobs(gw.repo.config_get("annex.jobs")),
        executor=server.executor if server else None,
        preferences=prefs,
        own=own,
        stored=prefs.stored,
        rng=server.rng if server else None,
        pooled=server is not None,
    )


class GatewayTarget(Value):
    """A `--uuid` that this gateway serves by proxying (not its own repository)."""

    gateway: Gateway
    target: Target

    def peer(self) -> Peer:
        """The Peer that serves this target for one session (a cluster's ssh nodes pre-warmed
        at once)."""
        return build_peer(self.gateway, self.target)

    def session(self) -> tuple[Peer, Callable[[p.Event], None] | None]:
        """The Peer for one client session, and what the server calls with each of the
        client's messages (None: nothing): a cluster's ssh pre-warm waits for the second
        request (`PrewarmLater`)."""
        later = PrewarmLater()
        peer = build_peer(self.gateway, self.target, warm=later.remember)
        return peer, later.on_request if later.pending else None

    def serve(self, *, mode: ServerMode, debug: bool = False) -> ServeResult:
        from annextui.proxycore.server import serve_stdio

        peer, on_request = self.session()
        return serve_stdio(peer, mode=mode, debug=debug, on_request=on_request)


def open_gateway(
    local: LocalRepo, uuid: str, client_uuid: str = "", state: AnnexState | None = None
) -> GatewayTarget | None:
    """None when `uuid` is the repository's own; the proxy target otherwise; raises
    `targets.TargetRefused` with git-annex's message when it may not be served. `state` is
    the branch's state when the caller has it already (a server caches it per branch tip)."""
    from annextui.backend.branch import BranchView
    from annextui.backend.state import load_state
    from annextui.proxycore.targets import LocalTarget, select_target

    full = local.full()
    if state is not None:
        target = select_target(full, state, uuid)
        if isinstance(target, LocalTarget):
            return None
        own = full.require_annex()
        return GatewayTarget(Gateway(local, full, state, own, client_uuid), target)
    # One session: its state and its GETs' location logs are read through one `git
    # cat-file` (no dulwich to import), from one view of the branch.
    from annextui.backend.catfile import CatFile, read_through

    view = BranchView(full)
    catfile = CatFile(full)
    read_through(view, catfile)
    try:
        state = load_state(view)
        target = select_target(full, state, uuid)
        if isinstance(target, LocalTarget):
            catfile.close()
            return None
        own = full.require_annex()
    except BaseException:
        catfile.close()
        raise
    return GatewayTarget(Gateway(local, full, state, own, client_uuid, view, catfile), target)
