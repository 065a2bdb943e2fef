"""The branch part of the sizes: the cached totals when the branch has not moved, refreshed
incrementally when it has, or a cold scan.

Incremental refresh
    When the branch moves, the old and new trees are diffed (diff.py); for each changed
    location log the old and new blobs are read and the difference of their present-sets
    applied, so the cost follows the size of the change, not of the branch. A per-key snapshot,
    when one is kept, gets the changed keys as a delta (cache.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from annextui.backend.branch import BranchView
from annextui.backend.repo import Repository
from annextui.backend.sizes.cache import (
    SNAPSHOT_DELTA_LIMIT,
    CacheState,
    load_cache,
    save_cache,
    write_snapshot,
)
from annextui.backend.sizes.diff import OverBudget, diff_trees, git_diff_trees
from annextui.backend.sizes.errors import SizesError
from annextui.backend.sizes.masks import Masker
from annextui.backend.sizes.objects import read_blobs, tree_of
from annextui.backend.sizes.paths import key_size_of_path, location_depth
from annextui.backend.sizes.scan import Progress, ScanJob, cold_scan
from annextui.backend.sizes.tables import KeyTable, Totals

__all__ = ["Base", "cold", "compute_base"]


@dataclass
class Base:
    """The branch part: cached, or freshly computed; masks use `masker`'s bit numbering."""

    masker: Masker
    totals: Totals
    cache: CacheState | None
    source: str
    changed: int = 0
    keys: KeyTable | None = None  # set by a cold scan that kept the keys


def compute_base(
    repo: Repository,
    view: BranchView,
    *,
    use_cache: bool,
    keep_keys: bool,
    progress: Progress | None,
) -> Base:
    """The branch's totals: warm from the cache, refreshed from it, or a cold scan (which also
    keeps the per-key table when `keep_keys` and no snapshot is maintained yet)."""
    depth = location_depth(repo)
    slashes = depth - 1
    head = view.head
    cached = load_cache(repo) if use_cache else None
    if cached is not None and cached.depth != depth:
        cached = None
    if head is None:
        return Base(Masker(), Totals(), None, "cold")
    head_s = head.decode()
    if cached is not None and cached.branch == head_s:
        masker = Masker(cached.uuids)
        if keep_keys and cached.snapshot is None:
            return cold(repo, head, depth, keep_keys, progress, cached, use_cache)
        return Base(masker, cached.totals, cached, "warm")
    if cached is not None:
        try:
            base = _incremental(repo, head, cached, slashes)
        except (KeyError, SizesError, ValueError, OSError):
            base = None  # the old commit is gone (gc after a history rewrite) or unreadable
        if base is not None:
            if keep_keys and base.cache is not None and base.cache.snapshot is None:
                return cold(repo, head, depth, keep_keys, progress, cached, use_cache)
            if use_cache and base.cache is not None:
                save_cache(repo, base.cache)
            return base
    return cold(repo, head, depth, keep_keys, progress, cached, use_cache)


def cold(
    repo: Repository,
    head: bytes,
    depth: int,
    keep_keys: bool,
    progress: Progress | None,
    previous: CacheState | None,
    use_cache: bool,
) -> Base:
    """A cold scan of `head`, saved as the new cache (and snapshot, with the keys) if allowed."""
    masker = Masker()
    estimate = previous.totals.nkeys if previous is not None else None
    scan = cold_scan(ScanJob(repo, head, masker, depth - 1, keep_keys, progress, estimate))
    st = CacheState(head.decode(), depth, masker.uuids, scan.totals)
    if use_cache and scan.keys is not None:
        try:
            st.snapshot = write_snapshot(repo, st.branch, scan.keys)
            st.snapshot_branch = st.branch
        except OSError:
            st.snapshot = None
    if use_cache:
        save_cache(repo, st)
    return Base(masker, scan.totals, st, "cold", keys=scan.keys)


def _incremental(repo: Repository, head: bytes, cached: CacheState, slashes: int) -> Base:
    store = repo.git.object_store
    old = cached.branch.encode()
    try:
        changes = diff_trees(store, tree_of(store, old), tree_of(store, head), slashes)
    except OverBudget:
        changes = git_diff_trees(repo, old, head, slashes)
    masker = Masker(cached.uuids)
    totals = cached.totals.copy()
    blobs = read_blobs(repo, [s for _p, o, n in changes for s in (o, n) if s is not None])
    delta = dict(cached.delta)
    for path, ob, nb in changes:
        old_mask = masker.mask(blobs.get(ob, b"")) if ob is not None else 0
        new_mask = masker.mask(blobs.get(nb, b"")) if nb is not None else 0
        size = key_size_of_path(path)
        totals.change(old_mask, new_mask, size, len(masker.uuids))
        if ob is None and nb is not None:
            totals.nkeys += 1
        elif nb is None and ob is not None:
            totals.nkeys -= 1
        if cached.snapshot is not None:
            delta[path] = new_mask if nb is not None else None
    st = CacheState(
        head.decode(),
        cached.depth,
        masker.uuids,
        totals,
        snapshot=cached.snapshot,
        snapshot_branch=cached.snapshot_branch,
        delta=delta,
    )
    if st.snapshot is not None and len(delta) > SNAPSHOT_DELTA_LIMIT:
        st.snapshot = st.snapshot_branch = None
        st.delta = {}
    return Base(masker, totals, st, "incremental", changed=len(changes))
