"""The entry points: ``repo_sizes`` (keys and bytes per repository) and ``key_locations``
(every key's present-set), and what they return."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from annextui.backend.branch import BranchView
from annextui.backend.repo import Repository
from annextui.backend.sizes.cache import read_snapshot, rewrite_snapshot
from annextui.backend.sizes.masks import bits
from annextui.backend.sizes.overlay import apply_overlay
from annextui.backend.sizes.paths import key_of_path, key_size_of_path, location_depth
from annextui.backend.sizes.refresh import cold, compute_base
from annextui.backend.sizes.scan import Progress
from annextui.backend.sizes.tables import KeyTable
from annextui.backend.state import AnnexState, load_state
from annextui.backend.uuids import is_cluster_uuid

__all__ = ["KeyLocations", "RepoSize", "Sizes", "key_locations", "repo_sizes"]


@dataclass(frozen=True, slots=True)
class RepoSize:
    uuid: str
    keys: int = 0
    size: int = 0
    dead: bool = False
    cluster: bool = False


@dataclass(frozen=True)
class Sizes:
    """Per-repository sizes. ``repos`` holds every known UUID (dead ones flagged).

    branch: the branch commit the cached part describes (None without a git-annex branch).
    source: ``cold`` (full scan), ``warm`` (cache hit), ``incremental`` (diffed from the cache).
    changed: location logs re-read by the incremental diff; overlaid: paths taken from the
    journal or unmerged refs; keys: location logs on the branch (before overlays).
    """

    branch: str | None
    repos: dict[str, RepoSize]
    source: str
    keys: int = 0
    changed: int = 0
    overlaid: int = 0
    seconds: float = 0.0

    def size_of(self, uuid: str) -> int:
        r = self.repos.get(uuid)
        return r.size if r is not None else 0

    def sizes(self) -> dict[str, int]:
        return {u: r.size for u, r in self.repos.items()}

    @property
    def total(self) -> int:
        """Combined size of the non-dead repositories (git-annex info's "combined annex size
        of all repositories")."""
        return sum(r.size for r in self.repos.values() if not r.dead)


def _known_uuids(repo: Repository, state: AnnexState) -> set[str]:
    known = set(state.descriptions)
    if repo.uuid:
        known.add(repo.uuid)
    return known


def repo_sizes(
    repo: Repository,
    *,
    view: BranchView | None = None,
    state: AnnexState | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> Sizes:
    """Keys and bytes per repository, as git-annex computes them (branch + journal + unmerged).

    Every UUID of uuid.log, this repository's own UUID and every UUID with a recorded maxsize
    is in the result (0 when empty), as is any other UUID some location log names present.
    """
    started = time.perf_counter()
    view = view or BranchView(repo)
    state = state if state is not None else load_state(view)
    base = compute_base(repo, view, use_cache=use_cache, keep_keys=False, progress=progress)
    overlay = apply_overlay(repo, view, base.masker, base.totals, location_depth(repo) - 1)
    totals = overlay.totals
    uuids = base.masker.uuids
    repos: dict[str, RepoSize] = {}
    names = _known_uuids(repo, state) | set(state.maxsize)
    for i, u in enumerate(uuids):
        count = totals.counts[i] if i < len(totals.counts) else 0
        if count or u in names:
            names.add(u)
    index = {u: i for i, u in enumerate(uuids)}
    for u in sorted(names):
        j = index.get(u)
        count = totals.counts[j] if j is not None and j < len(totals.counts) else 0
        size = totals.sizes[j] if j is not None and j < len(totals.sizes) else 0
        repos[u] = RepoSize(u, count, size, dead=state.is_dead(u), cluster=is_cluster_uuid(u))
    return Sizes(
        branch=view.head.decode() if view.head is not None else None,
        repos=repos,
        source=base.source,
        keys=base.totals.nkeys,
        changed=base.changed,
        overlaid=overlay.nkeys,
        seconds=time.perf_counter() - started,
    )


@dataclass
class KeyLocations:
    """Every key with a location log and the UUIDs it is present in (branch + overlays).

    ``uuids[i]`` is the repository of bit ``i`` in a mask. Iterate with ``items()``; masks make
    "is key K in node N" a bit test and let callers cache per distinct mask.
    """

    uuids: list[str]
    table: KeyTable
    branch: str | None = None
    source: str = "cold"

    def __len__(self) -> int:
        return len(self.table)

    def bit(self, uuid: str) -> int:
        try:
            return 1 << self.uuids.index(uuid)
        except ValueError:
            return 0

    def uuids_of(self, mask: int) -> frozenset[str]:
        return frozenset(self.uuids[i] for i in bits(mask))

    def items(self) -> Iterator[tuple[bytes, int]]:
        """(location-log path, present mask) per key."""
        return self.table.items()

    @staticmethod
    def key_of(path: bytes) -> str:
        return key_of_path(path)

    @staticmethod
    def size_of(path: bytes) -> int:
        return key_size_of_path(path)


def key_locations(
    repo: Repository,
    *,
    view: BranchView | None = None,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> KeyLocations:
    """Every key's present-set, from the cached snapshot (+ delta) or a cold scan."""
    view = view or BranchView(repo)
    base = compute_base(repo, view, use_cache=use_cache, keep_keys=True, progress=progress)
    slashes = location_depth(repo) - 1
    table = base.keys
    cache = base.cache
    if table is None and cache is not None and cache.snapshot is not None:
        table = read_snapshot(repo, cache.snapshot)
        if table is not None and cache.delta:
            table = table.apply(cache.delta)
            if use_cache and len(cache.delta) > max(10_000, len(table.ids) // 50):
                rewrite_snapshot(repo, cache, table)
    if table is None and view.head is not None:  # snapshot damaged or deleted: rebuild it
        base = cold(repo, view.head, location_depth(repo), True, progress, None, use_cache)
        table = base.keys
    if table is None:
        table = KeyTable()
    overlay = apply_overlay(repo, view, base.masker, base.totals, slashes)
    if overlay.masks:
        table = table.apply(dict(overlay.masks))
    return KeyLocations(
        list(base.masker.uuids),
        table,
        branch=view.head.decode() if view.head is not None else None,
        source=base.source,
    )
