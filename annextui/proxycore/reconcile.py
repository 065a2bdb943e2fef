"""Bring the keys database up to date with the git index (Database.Keys.reconcileStaged).

git-annex does this whenever it opens the keys database, with `keysdb.lck` held: the index is
written as a tree (`git write-tree`), diffed against the tree recorded in
`refs/annex/last-index`, and every changed annexed file is re-associated with its key; the new
tree is then recorded. Files committed or checked out without git-annex (a `git merge` with the
filters bypassed, a pull by plain git) are found this way, so a PUT served right after still
populates them. Unlocked files seen in the diff are returned for the caller to populate or
depopulate (reconcilepointerfile).

Each run costs a `git write-tree` (and nothing more when the index is unchanged).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from annextui.backend.keys import Key, serialize_key
from annextui.proxycore.keysdb import KeysDb
from annextui.proxycore.pointer import MAX_POINTER, parse_pointer

LAST_INDEX = "refs/annex/last-index"
#: bypassSmudgeConfig: git must not run git-annex's filters while we hold the database lock.
_BYPASS = ("-c", "filter.annex.smudge=", "-c", "filter.annex.clean=", "-c", "filter.annex.process=")
_SYMLINK_MODE = b"120000"


class Unlocked:
    """An unlocked file (relative to the top) the diff associated with a key."""

    __slots__ = ("file", "key")

    def __init__(self, file: bytes, key: Key) -> None:
        self.file = file
        self.key = key


def _git(
    gitdir: Path, top: Path, args: Sequence[str], feed: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", f"--git-dir={gitdir}", f"--work-tree={top}", *_BYPASS, *args],
        input=feed,
        capture_output=True,
        cwd=top,
    )


def reconcile_staged(gitdir: Path, top: Path, db: KeysDb) -> list[Unlocked]:
    """Update the associated files from the staged changes; the unlocked files changed."""
    wrote = _git(gitdir, top, ["write-tree"])
    newtree = wrote.stdout.strip().decode() if wrote.returncode == 0 else None
    old = _git(gitdir, top, ["rev-parse", "--verify", "-q", LAST_INDEX + "^{tree}"])
    oldtree = old.stdout.strip().decode() if old.returncode == 0 else _empty_tree(gitdir, top)
    if newtree is not None and newtree == oldtree:
        return []
    # Without a tree (index locked, merge conflict) compare the index itself, and record
    # nothing: the next opener diffs again, as git-annex does.
    target = [newtree] if newtree is not None else ["--cached"]
    diff = _git(
        gitdir,
        top,
        [
            "-c", "diff.external=", "diff", oldtree, *target, "--raw", "-z", "--no-abbrev",
            "-G/annex/objects/", "--no-renames", "--ignore-submodules=all", "--no-textconv",
            "--no-ext-diff",
        ],
    )  # fmt: skip
    if diff.returncode != 0:
        return []
    changes = _parse_raw(diff.stdout)
    keys = _blob_keys({sha for c in changes for sha in (c[2], c[3])}, gitdir, top)
    unlocked: list[Unlocked] = []
    with db.writing():
        for dstmode, file, srcsha, dstsha, status in changes:
            oldkey = keys.get(srcsha)
            if oldkey is not None and status != b"U":
                db.remove_associated(_kb(oldkey), file)
            newkey = keys.get(dstsha)
            if newkey is not None:
                db.add_associated(_kb(newkey), file)
                if dstmode != _SYMLINK_MODE:
                    unlocked.append(Unlocked(file, newkey))
    if newtree is not None:
        _git(gitdir, top, ["update-ref", LAST_INDEX, newtree])
    return unlocked


def _kb(key: Key) -> bytes:
    return serialize_key(key).encode("utf-8", "surrogateescape")


def _empty_tree(gitdir: Path, top: Path) -> str:
    r = _git(gitdir, top, ["hash-object", "-t", "tree", "--stdin"])
    return r.stdout.strip().decode()


def _parse_raw(out: bytes) -> list[tuple[bytes, bytes, bytes, bytes, bytes]]:
    """`git diff --raw -z`: (dstmode, file, srcsha, dstsha, status) of each change."""
    parts = out.split(b"\0")
    changes = []
    i = 0
    while i + 1 < len(parts):
        info, file = parts[i], parts[i + 1]
        i += 2
        words = info.split()
        if not info.startswith(b":") or len(words) != 5:
            break  # parse failed: git-annex stops here too
        _srcmode, dstmode, srcsha, dstsha, status = words
        changes.append((dstmode, file, srcsha, dstsha, status))
    return changes


def _blob_keys(shas: set[bytes], gitdir: Path, top: Path) -> dict[bytes, Key]:
    """The key each small blob points at (catObjectStream with the size prefilter)."""
    wanted = sorted(s for s in shas if s.strip(b"0"))
    if not wanted:
        return {}
    r = _git(gitdir, top, ["cat-file", "--batch"], b"".join(s + b"\n" for s in wanted))
    out, pos, keys = r.stdout, 0, {}
    for sha in wanted:
        nl = out.find(b"\n", pos)
        if nl < 0:
            break
        header = out[pos:nl].split()
        pos = nl + 1
        if len(header) != 3:
            continue  # "<sha> missing"
        size = int(header[2])
        body = out[pos : pos + size]
        pos += size + 1
        if header[1] == b"blob" and size <= MAX_POINTER:
            key = parse_pointer(body)
            if key is not None:
                keys[sha] = key
    return keys
