"""Which repository serves a UUID, and the Peer that answers one request for it.

The Peers are the ssh gateway's own (gateway.py): the repository itself is a `LocalPeer`;
a proxied remote or a cluster is whatever `open_gateway` + `build_peer` make of it for an
`annextui-shell p2pstdio --uuid` connection (ProxiedPeer, ClusterPeer with its node choice
and GatewayRecords). `open_gateway` reads `proxy.log`/`cluster.log` from the branch at each
request, so an `updateproxy` or `updatecluster` is served without a restart, and a UUID the
branch stops listing is refused (404) at once.

With `--directory`, the repositories are the git repositories found below the directories (not
through symlinks, as upstream); a UUID none of them serves triggers one rescan, so a repository
added while the server runs is found at its first request.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from annextui.proxycore.http.routes import HttpError
from annextui.proxycore.localrepo import LocalRepo, RepoError
from annextui.proxycore.peer import Peer, PeerFatal


class ServedRepos:
    def __init__(self, repositories: list[str], directories: list[str]) -> None:
        self._fixed = repositories
        self._directories = directories
        self._repos: dict[str, tuple[float, LocalRepo]] = {}  # path -> (config mtime, repo)
        self._by_uuid: dict[str, str] = {}
        self._mutex = threading.Lock()
        self.rescan()

    # -- which repositories ------------------------------------------------------------------------
    def rescan(self) -> None:
        paths = list(self._fixed)
        for d in self._directories:
            paths.extend(find_repositories(Path(d)))
        by_uuid: dict[str, str] = {}
        for path in paths:
            repo = self._open(path)
            if repo is not None and repo.uuid:
                by_uuid.setdefault(repo.uuid, path)
        with self._mutex:
            self._by_uuid = by_uuid

    def paths(self) -> list[str]:
        with self._mutex:
            return list(self._by_uuid.values())

    def uuids(self) -> list[str]:
        with self._mutex:
            return list(self._by_uuid)

    def _open(self, path: str) -> LocalRepo | None:
        """The repository at `path`, re-read when its git config changed (new remotes)."""
        try:
            mtime = os.stat(_config_file(path)).st_mtime
        except OSError:
            mtime = 0.0
        with self._mutex:
            cached = self._repos.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            repo = LocalRepo.open(path)
        except RepoError:
            return None
        if not repo.uuid:
            return None
        with self._mutex:
            self._repos[path] = (mtime, repo)
        return repo

    # -- one request's Peer ---------------------------------------------------------------------
    def peer(self, uuid: str, client_uuid: str) -> Peer:
        """The Peer for one request to `uuid`; HttpError 404 when no repository here serves
        it, 502 when the proxied remote or cluster cannot be opened."""
        found = self._peer(uuid, client_uuid)
        if found is None and self._directories:
            self.rescan()
            found = self._peer(uuid, client_uuid)
        if found is None:
            raise HttpError(404)
        return found

    def _peer(self, uuid: str, client_uuid: str) -> Peer | None:
        from annextui.proxycore.local import LocalPeer

        with self._mutex:
            own = self._by_uuid.get(uuid)
            paths = list(self._by_uuid.values())
        if own is not None:
            repo = self._open(own)
            if repo is not None and repo.uuid == uuid:
                try:
                    return LocalPeer(repo, client_uuid=client_uuid)
                except PeerFatal as exc:
                    raise HttpError(502, str(exc)) from exc
        for path in paths:
            repo = self._open(path)
            if repo is None:
                continue
            peer = _proxied_peer(repo, uuid, client_uuid)
            if peer is not None:
                return peer
        return None


def _proxied_peer(repo: LocalRepo, uuid: str, client_uuid: str) -> Peer | None:
    from annextui.proxycore.gateway import build_peer, open_gateway
    from annextui.proxycore.remote import NodeError
    from annextui.proxycore.targets import TargetRefused

    try:
        target = open_gateway(repo, uuid, client_uuid)
    except TargetRefused:
        return None
    if target is None:
        return None
    try:
        return build_peer(target.gateway, target.target)
    except (NodeError, PeerFatal) as exc:
        raise HttpError(502, str(exc)) from exc


def _config_file(path: str) -> str:
    dotgit = os.path.join(path, ".git", "config")
    return dotgit if os.path.exists(dotgit) else os.path.join(path, "config")


def find_repositories(directory: Path) -> list[str]:
    """Git repositories in the subdirectories of `directory` (findRepos): a repository's own
    subdirectories are not searched, symlinks are never followed, unreadable ones skipped."""
    out: list[str] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return out
    for entry in entries:
        if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir()):
            out.append(str(path))
        else:
            out.extend(find_repositories(path))
    return out
