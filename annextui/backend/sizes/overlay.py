"""The journal and unmerged-ref overlay: what git-annex reads on top of the branch.

Journal files (public and private) and every unmerged ``*/git-annex`` ref change some location
logs; their contents are combined as `BranchView.read` combines them and applied to the branch
totals as differences of present-sets. Overlays are never cached (they change without a
commit): they are applied on top of every result.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from annextui.backend.branch import BranchView
from annextui.backend.journalpath import branch_path, journal_name
from annextui.backend.repo import Repository
from annextui.backend.sizes.diff import OverBudget, diff_trees, git_diff_trees
from annextui.backend.sizes.errors import SizesError
from annextui.backend.sizes.masks import Masker
from annextui.backend.sizes.objects import read_objects, tree_of, walk_tree
from annextui.backend.sizes.paths import is_location_path, key_size_of_path, location_depth
from annextui.backend.sizes.tables import Totals

__all__ = ["Overlay", "apply_overlay", "journal_location_paths"]


@dataclass
class Overlay:
    masks: dict[bytes, int]  # path -> resolved mask including journal / unmerged refs
    totals: Totals
    nkeys: int


def _overlay_plan(
    repo: Repository, view: BranchView, slashes: int
) -> tuple[set[bytes], list[dict[bytes, bytes | None]], dict[bytes, bytes | None]]:
    """Paths the journal or unmerged refs change, what each unmerged ref has at the paths where
    it differs from the branch, and the branch blob of the paths the diffs already revealed."""
    paths: set[bytes] = set()
    for d in (view.journal_dir, view.private_dir):
        if not d.is_dir():
            continue
        for f in d.iterdir():
            p = branch_path(f.name).encode("utf-8", "surrogateescape")
            if is_location_path(p, slashes):
                paths.add(p)
    per_ref: list[dict[bytes, bytes | None]] = []
    head_blobs: dict[bytes, bytes | None] = {}
    if view.unmerged:
        store = repo.git.object_store
        head_tree = tree_of(store, view.head) if view.head is not None else None
        for ref in view.unmerged:
            try:
                ref_tree = tree_of(store, ref.sha)
            except (KeyError, SizesError):
                continue
            try:
                changes = diff_trees(store, head_tree, ref_tree, slashes)
            except OverBudget:
                if view.head is None:
                    changes = [(p, None, s) for p, s in walk_tree(store, ref_tree, b"", slashes)]
                else:
                    changes = git_diff_trees(repo, view.head, ref.sha, slashes)
            per_ref.append({p: n for p, _o, n in changes})
            for p, o, n in changes:
                head_blobs[p] = o
                if n is not None:
                    paths.add(p)
    return paths, per_ref, head_blobs


def apply_overlay(
    repo: Repository, view: BranchView, masker: Masker, branch_totals: Totals, slashes: int
) -> Overlay:
    """Journal and unmerged refs on top of the branch totals, as `BranchView.read` combines
    them (journal, else branch; private journal; every unmerged ref), with the blobs read in
    one batch so that a large unmerged ref costs a `git cat-file`, not a dulwich walk per key."""
    paths, per_ref, head_blobs = _overlay_plan(repo, view, slashes)
    totals = branch_totals.copy()
    masks: dict[bytes, int] = {}
    if not paths:
        return Overlay(masks, totals, 0)
    head = view.head.decode() if view.head is not None else None
    # the branch blob of every path: known from the diffs, else looked up by name
    unknown = sorted(p for p in paths if p not in head_blobs)
    head_content: dict[bytes, bytes | None] = dict.fromkeys(unknown)
    if head is not None and unknown:
        names = [f"{head}:{p.decode('utf-8', 'surrogateescape')}" for p in unknown]
        head_content = dict(zip(unknown, read_objects(repo, names), strict=True))
    wanted = sorted(
        {s for p in paths for s in [head_blobs.get(p), *(r.get(p) for r in per_ref)] if s}
    )
    blobs = dict(zip(wanted, read_objects(repo, [s.decode() for s in wanted]), strict=True))
    for path in sorted(paths):
        text = path.decode("utf-8", "surrogateescape")
        if path in head_blobs:
            sha = head_blobs[path]
            branch_blob = blobs.get(sha) if sha is not None else None
        else:
            branch_blob = head_content.get(path)
        journalled = view.journal_content(text)
        parts = [branch_blob if journalled is None else journalled]
        with contextlib.suppress(FileNotFoundError):
            parts.append((view.private_dir / journal_name(text)).read_bytes())
        for ref in per_ref:
            if path in ref:  # the ref has its own version (None: deleted there)
                ref_sha = ref[path]
                parts.append(blobs.get(ref_sha) if ref_sha is not None else None)
            else:  # unchanged in that ref: the branch's blob
                parts.append(branch_blob)
        content = b"".join(_terminated(x) for x in parts if x)
        old = masker.mask(branch_blob) if branch_blob is not None else 0
        new = masker.mask(content)
        totals.change(old, new, key_size_of_path(path), len(masker.uuids))
        masks[path] = new
    return Overlay(masks, totals, len(paths))


def _terminated(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


def journal_location_paths(repo: Repository) -> list[str]:
    """Branch paths of the location logs currently in the journal (for the console)."""
    view = BranchView(repo, include_unmerged=False)
    slashes = location_depth(repo) - 1
    out = []
    for f in view.journal_files():
        p = branch_path(f.name)
        if is_location_path(p.encode("utf-8", "surrogateescape"), slashes):
            out.append(p)
    return out
