"""Repositories opened once per change of their git config, for a long-running server.

`LocalRepo.open` runs `git config` (about 25 ms with the fork): once per ssh session that is
nothing, but `annextui p2phttp` opens the served repository and every in-process cluster node
per request. A server installs a `RepoCache` (`share`); `open_repo` then returns the same
`LocalRepo` until the repository's config file changes (new remotes, `annex.*` settings).
Without one, `open_repo` is `LocalRepo.open`.
"""

from __future__ import annotations

import os
import threading

from annextui.proxycore.localrepo import LocalRepo

_shared: RepoCache | None = None


class RepoCache:
    def __init__(self) -> None:
        self._repos: dict[str, tuple[tuple[int, int, int] | None, LocalRepo]] = {}
        self._mutex = threading.Lock()

    def open(self, directory: str) -> LocalRepo:
        """The repository at `directory` (raises RepoError as LocalRepo.open does)."""
        stamp = _config_stamp(directory)
        with self._mutex:
            hit = self._repos.get(directory)
        if hit is not None and stamp is not None and hit[0] == stamp:
            return hit[1]
        repo = LocalRepo.open(directory)
        with self._mutex:
            self._repos[directory] = (stamp, repo)
        return repo


def share(cache: RepoCache | None) -> None:
    global _shared
    _shared = cache


def open_repo(directory: str) -> LocalRepo:
    cache = _shared
    return cache.open(directory) if cache is not None else LocalRepo.open(directory)


def _config_stamp(directory: str) -> tuple[int, int, int] | None:
    for path in (os.path.join(directory, ".git", "config"), os.path.join(directory, "config")):
        try:
            st = os.stat(path)
        except OSError:
            continue
        return (st.st_mtime_ns, st.st_size, st.st_ino)
    return None
