"""Can this repository reach another one now? Local paths are opened, ssh remotes asked for
their UUID (git-annex-shell `configlist`), HTTP remotes connected to."""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from annextui.backend.repo import NotAnnexRepository, Remote, Repository, local_path_of_url
from annextui.console.snapshot import Snapshot


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
    local = local_path_of_url(url, base)
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
