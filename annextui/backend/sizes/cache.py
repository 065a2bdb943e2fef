"""The cache on disk: totals per UUID for one branch commit, and the per-key snapshot.

``GITDIR/annex/annextui/sizes.json`` (written atomically) holds the totals with the branch
commit they are for; a refresh diffs from that commit (refresh.py). Journal and unmerged-ref
overlays are never cached: they are applied on top of every result.

Per-key data
    ``key_locations`` (the balance report) needs every key's present-set. It is kept in a
    compact snapshot file (``sizes-keys-<sha>.bin``: mask ids as a uint32 array plus the paths)
    written by a cold scan on demand; later refreshes record only the changed keys (a delta in
    ``sizes.json``) until the delta is large enough to rewrite the snapshot.

A read-only repository still gets its sizes, just no cache: write failures are swallowed here.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annextui.backend.journal import atomic_write
from annextui.backend.repo import Repository
from annextui.backend.sizes.tables import KeyTable, Totals

__all__ = [
    "CACHE_FORMAT",
    "SNAPSHOT_DELTA_LIMIT",
    "CacheState",
    "cache_dir",
    "clear_cache",
    "load_cache",
    "read_snapshot",
    "rewrite_snapshot",
    "save_cache",
    "write_snapshot",
]

CACHE_FORMAT = 1
STATE_FILE = "sizes.json"
SNAPSHOT_PREFIX = "sizes-keys-"
SNAPSHOT_MAGIC = b"ANNEXTUI-SIZES-KEYS 1\n"
SNAPSHOT_DELTA_LIMIT = 200_000  # beyond this many changed keys the snapshot is dropped


def cache_dir(repo: Repository) -> Path:
    return repo.annexdir / "annextui"


def clear_cache(repo: Repository) -> None:
    d = cache_dir(repo)
    if not d.is_dir():
        return
    for f in d.iterdir():
        if f.name == STATE_FILE or f.name.startswith(SNAPSHOT_PREFIX):
            f.unlink(missing_ok=True)


@dataclass
class CacheState:
    branch: str
    depth: int
    uuids: list[str]
    totals: Totals
    snapshot: str | None = None  # file name of the per-key snapshot, if one is maintained
    snapshot_branch: str | None = None
    delta: dict[bytes, int | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "format": CACHE_FORMAT,
            "branch": self.branch,
            "depth": self.depth,
            "uuids": self.uuids,
            "counts": self.totals.counts,
            "sizes": self.totals.sizes,
            "keys": self.totals.nkeys,
            "snapshot": self.snapshot,
            "snapshot_branch": self.snapshot_branch,
            "delta": {
                p.decode("utf-8", "surrogateescape"): (None if m is None else format(m, "x"))
                for p, m in self.delta.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheState:
        if data.get("format") != CACHE_FORMAT:
            raise ValueError("other cache format")
        uuids = [str(u) for u in data["uuids"]]
        counts = [int(c) for c in data["counts"]]
        sizes = [int(s) for s in data["sizes"]]
        if len(counts) > len(uuids) or len(sizes) != len(counts):
            raise ValueError("inconsistent cache")
        delta_raw: dict[str, str | None] = data.get("delta") or {}
        return cls(
            branch=str(data["branch"]),
            depth=int(data["depth"]),
            uuids=uuids,
            totals=Totals(counts, sizes, int(data["keys"])),
            snapshot=data.get("snapshot"),
            snapshot_branch=data.get("snapshot_branch"),
            delta={
                p.encode("utf-8", "surrogateescape"): (None if m is None else int(m, 16))
                for p, m in delta_raw.items()
            },
        )


def load_cache(repo: Repository) -> CacheState | None:
    try:
        data = json.loads((cache_dir(repo) / STATE_FILE).read_bytes())
        return CacheState.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_cache(repo: Repository, st: CacheState) -> None:
    d = cache_dir(repo)
    try:
        atomic_write(d / STATE_FILE, json.dumps(st.to_json()).encode(), d)
        keep = st.snapshot
        for f in d.iterdir():
            if f.name.startswith(SNAPSHOT_PREFIX) and f.name != keep:
                f.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only repository still gets its sizes, just no cache


def write_snapshot(repo: Repository, branch: str, table: KeyTable) -> str:
    table = table.compacted()
    meta = json.dumps(
        {
            "branch": branch,
            "count": len(table.ids),
            "masks": [format(m, "x") for m in table.masks],
            "names": len(table.names),
        }
    ).encode()
    name = f"{SNAPSHOT_PREFIX}{branch}.bin"
    _atomic_write_parts(
        cache_dir(repo) / name, (SNAPSHOT_MAGIC, meta, b"\n", table.ids, table.names)
    )
    return name


def _atomic_write_parts(
    target: Path, parts: Iterable[bytes | bytearray | array.array[int]]
) -> None:
    """Like journal.atomic_write, without joining the parts into one big bytes object."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix="annextui.")
    try:
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_snapshot(repo: Repository, name: str) -> KeyTable | None:
    try:
        with open(cache_dir(repo) / name, "rb") as f:
            if f.readline() != SNAPSHOT_MAGIC:
                return None
            meta = json.loads(f.readline())
            count = int(meta["count"])
            ids = array.array("I")
            ids.frombytes(f.read(count * ids.itemsize))
            names = f.read()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(ids) != count or len(names) != int(meta["names"]) or names.count(b"\n") != count:
        return None
    masks = [int(m, 16) for m in meta["masks"]]
    if count and max(ids) >= len(masks):
        return None
    return KeyTable(names, ids, masks)


def rewrite_snapshot(repo: Repository, st: CacheState, table: KeyTable) -> None:
    """A new snapshot of `table` for `st.branch`, the delta folded in (and the state saved)."""
    try:
        st.snapshot = write_snapshot(repo, st.branch, table)
        st.snapshot_branch = st.branch
        st.delta = {}
        save_cache(repo, st)
    except OSError:
        pass
