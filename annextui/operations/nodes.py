"""The gateway and the peers of its nodes, for a job: opened as the gateway opens them
(``gateway.node_peer``: in process, over ssh, or through git-annex's own shell), checked for
reachability before a job starts, and closed together (each node commits its journal, the
gateway commits the location logs the job recorded)."""

from __future__ import annotations

from collections.abc import Iterable

from annextui.backend.branch import BranchView
from annextui.backend.repo import Remote, Repository
from annextui.backend.state import AnnexState, load_state
from annextui.proxycore.gateway import Gateway, node_peer
from annextui.proxycore.localrepo import LocalRepo, RepoError
from annextui.proxycore.peer import Peer, PeerFatal
from annextui.proxycore.records import GatewayRecords
from annextui.proxycore.targets import cluster_node_remotes, remotes_by_cost

__all__ = ["GatewayNodes", "NodeUnreachable"]

OFFER = 4  # the P2P protocol version offered to nodes (git-annex's current)


class NodeUnreachable(Exception):
    """A node the job needs cannot be reached; the message names every such node."""


class GatewayNodes:
    """One job's view of the gateway: its state, records and the node peers it opened."""

    def __init__(self, repo: Repository) -> None:
        try:
            local = LocalRepo.open(str(repo.top))
        except RepoError as exc:
            raise NodeUnreachable(str(exc)) from exc
        self.repo = repo
        self.state: AnnexState = load_state(BranchView(repo))
        self.gateway = Gateway(local, repo, self.state, repo.require_annex(), "")
        self.records = GatewayRecords(
            repo, clusters=self.state.clusters, file_mode=local.store.file_mode()
        )
        self._peers: dict[str, Peer] = {}

    def cluster_remotes(self, cluster_uuid: str) -> list[Remote]:
        """The cluster's node remotes on this gateway, cheapest first."""
        return cluster_node_remotes(self.repo, self.state, cluster_uuid)

    def remote_of(self, uuid: str) -> Remote | None:
        """The remote (configured or proxied) this gateway reaches `uuid` by, cheapest first."""
        return next((r for r in remotes_by_cost(self.repo, self.state) if r.uuid == uuid), None)

    def peer(self, uuid: str) -> Peer:
        peer = self._peers.get(uuid)
        if peer is None:
            remote = self.remote_of(uuid)
            if remote is None:
                raise NodeUnreachable(f"{self.name(uuid)}: no remote of this gateway reaches it")
            try:
                peer = node_peer(self.gateway, remote, offer=OFFER)
                peer.open(OFFER)
            except PeerFatal as exc:
                raise NodeUnreachable(str(exc)) from exc
            self._peers[uuid] = peer
        return peer

    def require_reachable(self, uuids: Iterable[str]) -> None:
        """Open every one of them now; refuse (naming each) if any cannot be reached."""
        down = []
        for u in uuids:
            try:
                self.peer(u)
            except NodeUnreachable as exc:
                down.append(str(exc))
        if down:
            raise NodeUnreachable("unreachable: " + "; ".join(down))

    def name(self, uuid: str) -> str:
        """A remote name, else the UUID (descriptions are untrusted and only displayed)."""
        remote = next((r for r in self.repo.remotes.values() if r.uuid == uuid), None)
        return remote.name if remote is not None else uuid

    def close(self) -> None:
        """Each node commits its journal; the gateway commits the job's location logs."""
        peers, self._peers = list(self._peers.values()), {}
        try:
            for p in peers:
                p.close()
        finally:
            self.records.close()
