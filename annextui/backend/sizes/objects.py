"""Reading git objects of the branch: a few in-process with dulwich (no subprocess start-up),
many in one ``git cat-file --batch`` (a large unmerged ref or diff costs one process, not a
dulwich read per key)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from typing import Any

from dulwich.objects import Blob, Commit, Tree

from annextui.backend.repo import Repository
from annextui.backend.sizes.errors import SizesError

__all__ = ["BLOBS_VIA_DULWICH", "git_command", "read_blobs", "read_objects", "tree_of", "walk_tree"]

BLOBS_VIA_DULWICH = 64  # up to this many blobs are read in-process, more with git cat-file


def git_command(repo: Repository, *args: str) -> list[str]:
    return ["git", f"--git-dir={repo.gitdir}", *args]


def tree_of(store: Any, commit: bytes) -> bytes:
    obj = store[commit]
    if not isinstance(obj, Commit):
        raise SizesError(f"{commit.decode()} is not a commit")
    tree: bytes = obj.tree
    return tree


def walk_tree(
    store: Any, tree_sha: bytes, prefix: bytes, depth: int
) -> Iterator[tuple[bytes, bytes]]:
    tree = store[tree_sha]
    if not isinstance(tree, Tree):
        return
    for entry in tree.iteritems():
        if entry.mode & 0o40000:
            if depth > 0:
                yield from walk_tree(store, entry.sha, prefix + entry.path + b"/", depth - 1)
        elif depth == 0:
            yield prefix + entry.path, entry.sha


def read_blobs(repo: Repository, shas: Iterable[bytes]) -> dict[bytes, bytes]:
    wanted = sorted(set(shas))
    found = read_objects(repo, [s.decode() for s in wanted])
    return {s: c or b"" for s, c in zip(wanted, found, strict=True)}


def read_objects(repo: Repository, names: list[str]) -> list[bytes | None]:
    """Contents of objects named by sha or ``REV:PATH``, in order (None: missing)."""
    if not names:
        return []
    if len(names) <= BLOBS_VIA_DULWICH:
        return [_read_object_dulwich(repo, n) for n in names]
    proc = subprocess.run(
        git_command(repo, "cat-file", "--batch=%(objectsize)"),
        input="".join(n + "\n" for n in names).encode("utf-8", "surrogateescape"),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise SizesError(f"git cat-file failed: {proc.stderr.decode(errors='replace').strip()}")
    data = proc.stdout
    out: list[bytes | None] = []
    pos = 0
    for _name in names:
        nl = data.index(b"\n", pos)
        header = data[pos:nl]
        if not header.isdigit():  # "<name> missing" / "ambiguous"
            out.append(None)
            pos = nl + 1
            continue
        size = int(header)
        out.append(data[nl + 1 : nl + 1 + size])
        pos = nl + 2 + size
    return out


def _read_object_dulwich(repo: Repository, name: str) -> bytes | None:
    store = repo.git.object_store
    try:
        if ":" in name:
            rev, path = name.split(":", 1)
            return _blob_in_tree(
                store, tree_of(store, rev.encode()), path.encode("utf-8", "surrogateescape")
            )
        obj = store[name.encode()]
    except (KeyError, SizesError):
        return None
    return obj.as_raw_string() if isinstance(obj, Blob) else None


def _blob_in_tree(store: Any, tree_sha: bytes, path: bytes) -> bytes | None:
    sha = tree_sha
    for part in path.split(b"/"):
        tree = store[sha]
        if not isinstance(tree, Tree):
            return None
        try:
            _mode, sha = tree[part]
        except KeyError:
            return None
    obj = store[sha]
    return obj.as_raw_string() if isinstance(obj, Blob) else None
