"""Which repository serves a UUID, and the Peer that answers one request for it.

The Peers are the ssh gateway's own (gateway.py): the repository itself is a `LocalPeer`;
a proxied remote or a cluster is whatever `open_gateway` + `build_peer` make of it for an
`annextui-shell p2pstdio --uuid` connection (ProxiedPeer, ClusterPeer with its node choice
and GatewayRecords). The branch's state (`proxy.log`, `cluster.log`, ...) is re-read whenever the
branch tip, git config or a journalled top-level log changes, so an `updateproxy` or
`updatecluster` is served without a restart, and a UUID the branch stops listing is refused
(404) at once.

With `--directory`, the repositories are the git repositories found below the directories (not
through symlinks, as upstream); a UUID none of them serves triggers one rescan, so a repository
added while the server runs is found at its first request.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from annextui.proxycore.http.routes import HttpError
from annextui.proxycore.localrepo import LocalRepo, RepoError, keep_repositories
from annextui.proxycore.peer import Peer, PeerFatal
from annextui.proxycore.repocache import RepoCache, share

if TYPE_CHECKING:
    from annextui.backend.state import AnnexState
    from annextui.proxycore.gateway import ServerSide


class ServedRepos:
    def __init__(
        self,
        repositories: list[str],
        directories: list[str],
        server_side: ServerSide | None = None,
    ) -> None:
        self._fixed = repositories
        self._server_side = server_side
        self._directories = directories
        self._cache = RepoCache()
        share(self._cache)  # cluster nodes in this process are opened through it too
        keep_repositories()  # dulwich repositories kept per thread (localrepo.py)
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
        """The repository at `path` (re-read when its git config changes: repocache.py)."""
        try:
            repo = self._cache.open(path)
        except RepoError:
            return None
        return repo if repo.uuid else None

    # -- one request's Peer ---------------------------------------------------------------------
    def target(self, uuid: str, client_uuid: str) -> Callable[[], Peer]:
        """What makes the Peer for one request to `uuid`, found without opening anything
        (so a request refused by the permission check costs no node connection); HttpError
        404 when no repository here serves it. Calling it raises HttpError 502 when the
        proxied remote or cluster cannot be opened."""
        found = self._target(uuid, client_uuid)
        if found is None and self._directories:
            self.rescan()
            found = self._target(uuid, client_uuid)
        if found is None:
            raise HttpError(404)
        return found

    def _target(self, uuid: str, client_uuid: str) -> Callable[[], Peer] | None:
        with self._mutex:
            own = self._by_uuid.get(uuid)
            paths = list(self._by_uuid.values())
        if own is not None:
            repo = self._open(own)
            if repo is not None and repo.uuid == uuid:
                local: LocalRepo = repo
                return lambda: _local_peer(local, client_uuid)
        for path in paths:
            repo = self._open(path)
            if repo is None:
                continue
            proxied = _proxied_target(repo, uuid, client_uuid, self._server_side)
            if proxied is not None:
                return proxied
        return None


def _local_peer(repo: LocalRepo, client_uuid: str) -> Peer:
    from annextui.proxycore.local import LocalPeer

    try:
        return LocalPeer(repo, client_uuid=client_uuid)
    except PeerFatal as exc:
        raise HttpError(502, str(exc)) from exc


class _StateCache:
    """A repository's `AnnexState` (proxy.log, cluster.log, trust, preferred content, ...)
    for as long as its branch tip, git config and journalled top-level logs are unchanged:
    reading it costs more than the rest of a cluster request (11 of 18 ms)."""

    def __init__(self) -> None:
        self._cached: dict[str, tuple[tuple[object, ...], AnnexState]] = {}
        self._mutex = threading.Lock()

    def get(self, repo: LocalRepo) -> AnnexState:
        from annextui.backend.branch import BranchView
        from annextui.backend.state import load_state

        path = str(repo.gitdir)
        sig = _signature(repo.gitdir)
        with self._mutex:
            hit = self._cached.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        state = load_state(BranchView(repo.full()))
        with self._mutex:
            self._cached[path] = (sig, state)
        return state


_TOP_LOGS = (
    "proxy.log",
    "cluster.log",
    "uuid.log",
    "trust.log",
    "group.log",
    "preferred-content.log",
    "required-content.log",
    "group-preferred-content.log",
    "maxsize.log",
    "remote.log",
)


def _signature(gitdir: Path) -> tuple[object, ...]:
    """What the state is read from: the branch ref (loose or packed), git config, and the
    journal files of the top-level logs, by content or modification time."""
    branch, *stamped = _signature_paths(str(gitdir))
    out: list[object] = []
    for f in stamped:
        try:
            st = os.stat(f)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    try:
        with open(branch, "rb") as fh:
            out.append(fh.read())
    except OSError:
        out.append(None)
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _signature_paths(gitdir: str) -> tuple[str, ...]:
    """The files `_signature` reads, as strings, made once per repository (the signature is
    taken at every request)."""
    branch = os.path.join(gitdir, "refs", "heads", "git-annex")
    journal = os.path.join(gitdir, "annex", "journal")
    return (
        branch,
        branch,
        os.path.join(gitdir, "packed-refs"),
        os.path.join(gitdir, "config"),
        *(os.path.join(journal, name) for name in _TOP_LOGS),
    )


_states = _StateCache()


def branch_state(repo: LocalRepo) -> AnnexState:
    """The repository's branch state, read again only when its branch, config or journalled
    top-level logs changed (shared by HTTP requests and relayed ssh sessions)."""
    return _states.get(repo)


def _proxied_target(
    repo: LocalRepo, uuid: str, client_uuid: str, server_side: ServerSide | None
) -> Callable[[], Peer] | None:
    from annextui.proxycore.gateway import build_peer, open_gateway
    from annextui.proxycore.remote import NodeError
    from annextui.proxycore.targets import TargetRefused

    try:
        target = open_gateway(repo, uuid, client_uuid, _states.get(repo))
    except TargetRefused:
        return None
    if target is None:
        return None

    def make() -> Peer:
        try:
            return build_peer(target.gateway, target.target, server_side)
        except (NodeError, PeerFatal) as exc:
            raise HttpError(502, str(exc)) from exc

    return make


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
