"""What the console shows, read from a repository: the console's backend (no textual, no rich).

`ConsoleBackend` is what `AnnexConsole` receives (as Harlequin receives its adapter). Every method
blocks and is called from a worker thread; each call opens the repository afresh, so nothing is
shared between threads but immutable snapshots.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from annextui.backend.branch import BranchView
from annextui.backend.info import ClusterEntry, RepositoryInfo, gather_info
from annextui.backend.repo import NotAnnexRepository, Remote, Repository
from annextui.backend.state import BUILTIN_DESCRIPTIONS, proxied_remotes, remote_names
from annextui.backend.trust import TrustLevel
from annextui.backend.uuids import is_cluster_uuid
from annextui.screens.edits import Edit, EditOutcome, Preview, apply_edits, preview_edits
from annextui.screens.sizes_source import SizesReport, repo_sizes
from annextui.screens.transfers_source import TransferTracker

if TYPE_CHECKING:
    from annextui.screens.balance_source import BalanceReport, WhatIf, WhatIfResult


class ReadOnlyError(Exception):
    """The console was opened with --readonly: nothing may change."""


def short_uuid(uuid: str) -> str:
    return uuid[:8]


@dataclass(frozen=True, slots=True)
class RepoRow:
    """A repository known to the branch, as this repository sees it."""

    uuid: str
    name: str  # remote name (configured or proxied), "here", or "" when not a remote
    description: str
    trust: TrustLevel
    groups: tuple[str, ...] = ()
    wanted: str | None = None
    required: str | None = None
    maxsize: int | None = None
    here: bool = False
    is_cluster: bool = False
    clusters: tuple[str, ...] = ()  # cluster UUIDs this repository is a node of
    proxied_by: str | None = None  # UUID of the proxy a client reaches it through
    url: str | None = None
    configured: bool = False  # a git remote of this repository (not instantiated from proxy.log)

    @property
    def label(self) -> str:
        if self.here:
            return self.description or "here"
        return self.name or self.description or short_uuid(self.uuid)

    @property
    def local_path(self) -> Path | None:
        return local_remote_path(self.url)


def local_remote_path(url: str | None, base: Path | None = None) -> Path | None:
    if not url:
        return None
    if url.startswith("file://"):
        url = url[len("file://") :]
    elif url.startswith(("ssh://", "annex+http", "http://", "https://", "git://")):
        return None
    elif ":" in url.split("/", 1)[0] and not url.startswith(("/", ".")):
        return None  # scp-like host:path
    p = Path(url)
    if not p.is_absolute() and base is not None:
        p = Path(os.path.normpath(base / p))
    return p


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the console needs from the branch and git config, read once."""

    path: Path
    uuid: str
    description: str
    role: str  # gateway, proxy, node, client (reaches proxied remotes) or repository
    info: RepositoryInfo
    repos: dict[str, RepoRow]
    remotes: dict[str, Remote]  # configured and proxied remotes by name
    configured: tuple[str, ...]  # names of configured git remotes
    local_clusters: dict[str, str]  # annex.cluster.NAME -> cluster UUID
    head: str | None
    bare: bool = False
    loaded_at: float = field(default_factory=time.time)

    def label(self, uuid: str) -> str:
        row = self.repos.get(uuid)
        if row is not None:
            return row.label
        return BUILTIN_DESCRIPTIONS.get(uuid, short_uuid(uuid))

    def cluster(self, uuid: str) -> ClusterEntry | None:
        for c in self.info.clusters:
            if c.uuid == uuid:
                return c
        return None

    def cluster_name(self, uuid: str) -> str:
        for name, cu in self.local_clusters.items():
            if cu == uuid:
                return name
        c = self.cluster(uuid)
        if c is not None and c.names:
            return c.names[0]
        return self.label(uuid)

    @property
    def node_uuids(self) -> list[str]:
        out: set[str] = set()
        for c in self.info.clusters:
            out.update(c.nodes)
        return sorted(out, key=self.label)

    def node_remote_name(self, uuid: str) -> str:
        """How a command names this repository: its remote name, else its UUID."""
        row = self.repos.get(uuid)
        if row is not None and row.here:
            return "here"
        if row is not None and row.name:
            return row.name
        return uuid

    def candidate_nodes(self, cluster_uuid: str) -> list[str]:
        """Configured remotes with a UUID that are not yet nodes of the cluster."""
        c = self.cluster(cluster_uuid)
        nodes = set(c.nodes) if c else set()
        out = []
        for name in self.configured:
            r = self.remotes[name]
            if r.uuid and r.uuid not in nodes and not is_cluster_uuid(r.uuid):
                out.append(name)
        return out

    def extend_candidates(self) -> list[tuple[str, str, str]]:
        """(gateway remote, cluster name, cluster UUID) this repository could become a gateway
        of: proxied remotes `GW-NAME` with a cluster UUID, reached through a configured `GW`."""
        out = []
        mine = set(self.local_clusters.values())
        for name, r in sorted(self.remotes.items()):
            if name in self.configured or not r.uuid or not is_cluster_uuid(r.uuid):
                continue
            if r.uuid in mine:
                continue
            for gw in self.configured:
                if name.startswith(gw + "-") and self.remotes[gw].uuid == r.option(
                    "annex-proxied-by"
                ):
                    out.append((gw, name[len(gw) + 1 :], r.uuid))
        return out


def load_snapshot(path: Path) -> Snapshot:
    repo = Repository(path)
    info = gather_info(repo)
    state = info.state
    own = info.uuid
    names = remote_names(repo, state)
    proxied = proxied_remotes(repo, state)
    remotes = dict(repo.remotes)
    remotes.update(proxied)
    by_uuid: dict[str, Remote] = {}
    for r in remotes.values():
        if r.uuid and r.uuid not in by_uuid:
            by_uuid[r.uuid] = r
    node_clusters = state.node_to_clusters()
    repos: dict[str, RepoRow] = {}
    for entry in info.repositories:
        u = entry.uuid
        rr = by_uuid.get(u)
        repos[u] = RepoRow(
            uuid=u,
            name="here" if u == own else names.get(u, ""),
            description=state.description(u),
            trust=entry.trust,
            groups=entry.groups,
            wanted=state.preferred.get(u),
            required=state.required.get(u),
            maxsize=entry.maxsize,
            here=u == own,
            is_cluster=is_cluster_uuid(u),
            clusters=tuple(sorted(node_clusters.get(u, set()))),
            proxied_by=rr.option("annex-proxied-by") if rr is not None else None,
            url=rr.url if rr is not None else None,
            configured=rr is not None and rr.name in repo.remotes,
        )
    head = BranchView(repo, include_unmerged=False).head
    role = info.role
    if role == "repository" and len(remotes) > len(repo.remotes):
        role = "client"  # it reaches proxied remotes through a proxy
    return Snapshot(
        path=repo.top,
        uuid=own,
        description=info.description,
        role=role,
        info=info,
        repos=repos,
        remotes=remotes,
        configured=tuple(sorted(repo.remotes)),
        local_clusters=dict(repo.clusters),
        head=head.decode() if head else None,
        bare=repo.bare,
    )


# -- reachability ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reachability:
    uuid: str
    state: str  # "reachable", "unreachable", "unknown"
    detail: str
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "reachable"


def check_reachability(snapshot: Snapshot, uuid: str, *, timeout: float = 5.0) -> Reachability:
    """Can this repository reach `uuid` now? Local paths are opened, ssh remotes asked for
    their UUID with git-annex-shell's `configlist`, HTTP remotes connected to."""
    start = time.monotonic()

    def done(state: str, detail: str) -> Reachability:
        return Reachability(uuid, state, detail, time.monotonic() - start)

    if uuid == snapshot.uuid:
        return done("reachable", "this repository")
    row = snapshot.repos.get(uuid)
    if row is not None and row.is_cluster:
        c = snapshot.cluster(uuid)
        if c is not None and snapshot.uuid in c.gateways:
            return done("reachable", "served by this gateway")
    remote: Remote | None = next(
        (r for n, r in snapshot.remotes.items() if r.uuid == uuid and n in snapshot.configured),
        None,
    )
    if remote is None:
        remote = next((r for r in snapshot.remotes.values() if r.uuid == uuid), None)
    if remote is None:
        return done("unknown", "no remote for it here")
    via = remote.option("annex-proxied-by")
    if via and remote.name not in snapshot.configured:
        proxy = check_reachability(snapshot, via, timeout=timeout)
        label = snapshot.label(via)
        if proxy.ok:
            return done("reachable", f"through {label}")
        return done(proxy.state, f"through {label}: {proxy.detail}")
    return _check_remote(snapshot.path, remote, timeout, done)


def _check_remote(
    base: Path, remote: Remote, timeout: float, done: Callable[[str, str], Reachability]
) -> Reachability:
    url = remote.option("annexurl") or remote.url or ""
    local = local_remote_path(url, base)
    if local is not None:
        try:
            other = Repository(local)
        except NotAnnexRepository:
            return done("unreachable", f"{local}: not a git repository")
        if other.uuid != remote.uuid:
            return done("unreachable", f"{local}: has UUID {other.uuid or 'none'}")
        return done("reachable", str(local))
    if url.startswith(("annex+http", "http://", "https://")):
        parts = urlsplit(url.removeprefix("annex+"))
        hport = parts.port or (443 if parts.scheme == "https" else 80)
        where = f"{parts.hostname}:{hport}"
        try:
            with socket.create_connection((parts.hostname or "localhost", hport), timeout=timeout):
                return done("reachable", where)
        except OSError as exc:
            return done("unreachable", f"{where}: {exc.strerror or exc}")
    host, port, path = _ssh_target(url)
    if host is None:
        return done("unknown", f"cannot check {url or 'a special remote'}")
    shell = remote.option("annex-shell") or "git-annex-shell"
    argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(max(1, timeout))}"]
    if port:
        argv += ["-p", str(port)]
    argv += shlex.split(remote.option("annex-ssh-options") or "")
    argv += [host, f"{shell} configlist {shlex.quote(path)}"]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout + 2, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return done("unreachable", f"{host}: {exc}")
    for line in proc.stdout.splitlines():
        if line.startswith("annex.uuid="):
            got = line.partition("=")[2]
            if got == remote.uuid:
                return done("reachable", host)
            return done("unreachable", f"{host}: has UUID {got}")
    err = proc.stderr.strip().splitlines()
    return done("unreachable", f"{host}: {err[-1] if err else f'exit {proc.returncode}'}")


def _ssh_target(url: str) -> tuple[str | None, int | None, str]:
    if url.startswith("ssh://"):
        parts = urlsplit(url)
        host = parts.hostname
        if host and parts.username:
            host = f"{parts.username}@{host}"
        path = parts.path
        if path.startswith("/~"):
            path = path[1:]
        return host, parts.port, path
    head, sep, path = url.partition(":")
    if sep and "/" not in head and head:
        return head, None, path
    return None, None, url


# -- the backend the app receives ----------------------------------------------------------


class ConsoleBackend:
    """The console's access to one repository. Methods block: call them from workers."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        repo = Repository.discover(path)
        if not repo.is_annex:
            raise NotAnnexRepository(f"{repo.top}: not a git-annex repository")
        self.path = repo.top
        self.readonly = readonly

    def snapshot(self) -> Snapshot:
        return load_snapshot(self.path)

    def signature(self) -> tuple[object, ...]:
        """Cheap to compute, and different whenever the snapshot could be (git config, the
        git-annex branch, the journal): the console polls it to refresh by itself."""
        repo = Repository(self.path)
        out: list[object] = []
        for p in (repo.gitdir / "config", repo.gitdir / "packed-refs", repo.annexdir / "journal"):
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        try:
            out.append(bytes(repo.git.refs[b"refs/heads/git-annex"]))
        except KeyError:
            out.append(None)
        return tuple(out)

    def sizes(
        self, snapshot: Snapshot, progress: Callable[[int, int | None], None] | None = None
    ) -> SizesReport:
        return repo_sizes(snapshot.path, progress)

    def balance(self, snapshot: Snapshot, sizes: SizesReport) -> BalanceReport:
        from annextui.screens.balance_source import balance_report

        return balance_report(snapshot, sizes)

    def what_if(self, snapshot: Snapshot, sizes: SizesReport, change: WhatIf) -> WhatIfResult:
        from annextui.screens.balance_source import what_if

        return what_if(snapshot, sizes, change)

    def transfers(self, snapshot: Snapshot) -> TransferTracker:
        """A sampler of live transfers here and in this repository's local-path remotes."""
        return TransferTracker(self.local_annexdirs(snapshot))

    def reachability(self, snapshot: Snapshot, uuids: Sequence[str]) -> list[Reachability]:
        return [check_reachability(snapshot, u) for u in uuids]

    def preview(self, edits: Sequence[Edit]) -> Preview:
        return preview_edits(self.path, edits)

    def apply(self, edits: Sequence[Edit]) -> list[EditOutcome]:
        if self.readonly:
            raise ReadOnlyError("the console is read-only (--readonly): nothing was changed")
        return apply_edits(self.path, edits)

    def local_annexdirs(self, snapshot: Snapshot) -> dict[str, Path]:
        """This repository's annex directory and those of its local-path remotes, by UUID."""
        out = {snapshot.uuid: Repository(self.path).annexdir}
        for name in snapshot.configured:
            r = snapshot.remotes[name]
            path = local_remote_path(r.url, self.path)
            if r.uuid and path is not None:
                with contextlib.suppress(NotAnnexRepository):
                    out.setdefault(r.uuid, Repository(path).annexdir)
        return out
