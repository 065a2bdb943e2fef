"""Repository sizes: keys and bytes per repository UUID, from the location logs.

size(U) = sum of the ``-s`` sizes of the keys whose location log says "present in U"
(``sizes-and-maxsize.md`` §2): every location log of the ``git-annex`` branch, then the journal
(public and private) and the unmerged ``*/git-annex`` refs on top, each log resolved as git-annex
resolves presence logs (greatest clock wins, the earlier line on equal clocks). Every UUID in
``uuid.log`` (and this repository's own) starts at 0; dead repositories are computed and flagged;
cluster UUIDs stay 0 because they are never written to location logs.

Cold scan -- measured, then chosen
    A million-key branch has about two million objects (one tree per second-level hash
    directory plus one blob per key). Reading them with dulwich costs ~50 us per key before any
    parsing (100,000 keys: 5.1 s; ``git annex maxsize`` needs 3.0 s for the whole job), so the
    cold scan uses git plumbing instead: ``git ls-tree -r -z --format='%(objectname) %(path)'``
    piped straight into ``git cat-file -z --batch='%(objectsize) %(rest)' --buffer``. The two git
    processes walk trees and inflate blobs in C on their own cores while this process reads one
    stream with exact framing (header line, then ``read(size + 1)``), about 2 us per key.
    When git-annex's own index of the branch (``annex/index``) is proven to hold exactly the
    branch commit's tree, ``git ls-files`` on it replaces ``git ls-tree -r``: one file read
    instead of a million tree objects (see ``_index_snapshot``). The scan falls back to dulwich
    only when the pipeline cannot run (git older than 2.36).

    Per record the hot loop does no clock parsing: a line's ``STATUS UUID`` tail is looked up in
    a small dict giving the UUID's bit, and a mask of present UUIDs is OR-ed together. Only a
    record that names some UUID twice (clocks decide), or has an unusual clock or CR bytes, goes
    through full resolution. Totals are accumulated per distinct mask and expanded at the end.

Incremental refresh
    The totals are cached in ``GITDIR/annex/annextui/sizes.json`` (written atomically) with the
    branch commit they are for. When the branch moves, the old and new trees are diffed,
    descending only into subtrees whose sha changed; for each changed location log the old and
    new blobs are read and the difference of their present-sets applied, so the cost follows the
    size of the change, not of the branch. Small changes (at most ``DIFF_DULWICH_DIRS`` changed
    top-level directories) are diffed in-process with dulwich; larger ones by
    ``git diff-tree -r`` + ``git cat-file``, which measured 4x faster from about a thousand
    keys on (100,000-key branch, 1,000 changed: 55 ms vs 210 ms). Journal and unmerged-ref
    overlays are never cached: they are applied on top of every result.

Per-key data
    ``key_locations`` (the balance report) needs every key's present-set. It is kept in a
    compact snapshot file (``sizes-keys-<sha>.bin``: mask ids as a uint32 array plus the paths)
    written by a cold scan on demand; later refreshes record only the changed keys (a delta in
    ``sizes.json``) until the delta is large enough to rewrite the snapshot.

The backend never prints: long scans report through ``progress(done, total)`` (``total`` is an
estimate from the previous scan, or None), and the CLI draws the bar.
"""

from __future__ import annotations

import array
import contextlib
import gc
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dulwich.objects import Blob, Commit, Tree

from annextui.backend.branch import BranchView, branch_path, journal_name
from annextui.backend.journal import atomic_write
from annextui.backend.keys import file_key
from annextui.backend.logs.presence import present_infos
from annextui.backend.repo import Repository
from annextui.backend.state import AnnexState, load_state
from annextui.backend.uuids import is_cluster_uuid

__all__ = [
    "CACHE_FORMAT",
    "DIFF_OBJECT_BUDGET",
    "KeyLocations",
    "Progress",
    "RepoSize",
    "Sizes",
    "SizesError",
    "cache_dir",
    "clear_cache",
    "key_locations",
    "key_size_of_path",
    "location_depth",
    "mask_of_log",
    "repo_sizes",
]

Progress = Callable[[int, "int | None"], None]

CACHE_FORMAT = 1
STATE_FILE = "sizes.json"
SNAPSHOT_PREFIX = "sizes-keys-"
SNAPSHOT_MAGIC = b"ANNEXTUI-SIZES-KEYS 1\n"
# dulwich diffs small changes in-process (no subprocess start-up); when more than
# DIFF_DULWICH_DIRS top-level directories differ, `git diff-tree` + `git cat-file` are faster
# (measured: 1,000 changed keys of 100,000 take 210 ms through dulwich, 55 ms through git).
DIFF_DULWICH_DIRS = 24
DIFF_OBJECT_BUDGET = 2_000  # backstop: trees dulwich may read before git diff-tree takes over
BLOBS_VIA_DULWICH = 64  # up to this many blobs are read in-process, more with git cat-file
SNAPSHOT_DELTA_LIMIT = 200_000  # beyond this many changed keys the snapshot is dropped
PROGRESS_EVERY = 1 << 15
_S = 115  # ord("s")


class SizesError(Exception):
    """The sizes cannot be computed (git failed, the repository is damaged)."""


# ---------------------------------------------------------------------------------------------
# Results


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


# ---------------------------------------------------------------------------------------------
# Location-log paths


def location_depth(repo: Repository) -> int:
    """Path components of a location log: 3 (``aaa/bbb/KEY.log``), 2 with branchhash1."""
    return 2 if repo.config_bool("annex.tune.branchhash1") else 3


def _is_location_path(path: bytes, slashes: int) -> bool:
    return path.endswith(b".log") and path.count(b"/") == slashes and b"--" in path


def key_size_of_path(path: bytes) -> int:
    """The ``-s`` field of the key a location-log path names (0 when absent)."""
    base = path[path.rfind(b"/") + 1 :]
    d = base.find(b"--")
    i = base.find(b"-s", 0, d) if d > 0 else -1
    if i < 0:
        return 0
    j = base.find(b"-", i + 2)
    digits = base[i + 2 : j]
    return int(digits) if digits.isdigit() else 0


def key_of_path(path: bytes) -> str:
    """The serialized key a location-log path names."""
    base = path[path.rfind(b"/") + 1 : -4]
    return file_key(base.decode("utf-8", "surrogateescape"))


# ---------------------------------------------------------------------------------------------
# Present-set masks


class _Masker:
    """UUIDs as bits, and location-log contents as masks of present UUIDs."""

    def __init__(self, uuids: Iterable[str] = ()) -> None:
        self.uuids: list[str] = []
        self.bits: dict[bytes, int] = {}
        # b"STATUS INFO" -> +bit (present), -bit (not present), 0 (a line git-annex skips)
        self.tails: dict[bytes, int] = {}
        for u in uuids:
            self.bit(u.encode("utf-8", "surrogateescape"))

    def bit(self, info: bytes) -> int:
        b = self.bits.get(info)
        if b is None:
            b = self.bits[info] = 1 << len(self.uuids)
            self.uuids.append(info.decode("utf-8", "surrogateescape"))
        return b

    def tail(self, rest: bytes) -> int | None:
        """+bit / -bit / 0 for ``STATUS INFO``; None when it holds a CR (git-annex splits lines
        at CR too): the caller then resolves the whole log with `exact`. None is never cached,
        so the hot loops need no per-record CR test."""
        v = self.tails.get(rest)
        if v is None:
            if b"\r" in rest:
                return None
            status = rest[:1]
            if rest[1:2] != b" " or status not in (b"0", b"1", b"X") or len(rest) < 3:
                v = 0
            else:
                b = self.bit(rest[2:])
                v = b if status == b"1" else -b
            self.tails[rest] = v
        return v

    def mask(self, content: bytes) -> int:
        """Mask of the UUIDs `content` (a whole location log) says are present."""
        if not content:
            return 0
        tget = self.tails.get
        mask = seen = 0
        for line in content.split(b"\n"):
            if not line:
                continue
            sp = line.find(b" ")
            if sp < 2 or line[sp - 1] != _S or not line[: sp - 1].isdigit():
                return self.slow(content)
            rest = line[sp + 1 :]
            v = tget(rest)
            if v is None:
                v = self.tail(rest)
                if v is None:
                    return self.exact(content)
            b = v if v >= 0 else -v
            if seen & b:
                return self.slow(content)
            seen |= b
            if v > 0:
                mask |= v
        return mask

    def slow(self, content: bytes) -> int:
        """Full resolution with integer clocks; unusual clocks go to `exact`."""
        tget = self.tails.get
        clocks: dict[int, int] = {}  # bit -> winning clock
        winners: dict[int, int] = {}  # bit -> winning signed bit
        for line in content.split(b"\n"):
            if not line:
                continue
            sp = line.find(b" ")
            if sp < 2 or line[sp - 1] != _S:
                return self.exact(content)
            clock_text = line[: sp - 1]
            if not clock_text.isdigit():
                return self.exact(content)
            rest = line[sp + 1 :]
            v = tget(rest)
            if v is None:
                v = self.tail(rest)
                if v is None:
                    return self.exact(content)
            if not v:
                continue
            clock = int(clock_text)
            b = v if v > 0 else -v
            old = clocks.get(b)
            if old is None or clock > old:  # equal clocks: the earlier line stays
                clocks[b] = clock
                winners[b] = v
        mask = 0
        for v in winners.values():
            if v > 0:
                mask |= v
        return mask

    def exact(self, content: bytes) -> int:
        """The project's reference presence-log semantics (any clock form, CR line breaks)."""
        mask = 0
        for info in present_infos(content):
            if info:
                mask |= self.bit(info.encode("utf-8", "surrogateescape"))
        return mask

    def uuids_of(self, mask: int) -> list[str]:
        out = []
        while mask:
            low = mask & -mask
            out.append(self.uuids[low.bit_length() - 1])
            mask ^= low
        return out


def mask_of_log(content: bytes, uuids: list[str]) -> set[str]:
    """UUIDs a location log says are present (the fast resolver; for tests and tools)."""
    m = _Masker(uuids)
    return set(m.uuids_of(m.mask(content)))


def _bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


# ---------------------------------------------------------------------------------------------
# Totals


@dataclass
class _Totals:
    """Per-bit key counts and byte sums (bit i = masker.uuids[i])."""

    counts: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    nkeys: int = 0

    def _grow(self, n: int) -> None:
        if len(self.counts) < n:
            extra = n - len(self.counts)
            self.counts.extend([0] * extra)
            self.sizes.extend([0] * extra)

    def add_masks(self, per_mask: dict[int, list[int]], nuuids: int) -> None:
        self._grow(nuuids)
        for mask, (count, nbytes) in per_mask.items():
            for i in _bits(mask):
                self.counts[i] += count
                self.sizes[i] += nbytes

    def change(self, old: int, new: int, size: int, nuuids: int) -> None:
        if old == new:
            return
        self._grow(nuuids)
        for i in _bits(old & ~new):
            self.counts[i] -= 1
            self.sizes[i] -= size
        for i in _bits(new & ~old):
            self.counts[i] += 1
            self.sizes[i] += size

    def copy(self) -> _Totals:
        return _Totals(list(self.counts), list(self.sizes), self.nkeys)


# ---------------------------------------------------------------------------------------------
# Per-key table


DELETED = 0xFFFFFFFF  # mask id of a key whose location log is gone


@dataclass
class _KeyTable:
    """Every key's location-log path and present mask, compactly: one bytes buffer of
    ``PATH\\n`` records, a uint32 mask id per key and the table of distinct masks (a million
    keys take ~100 MB instead of ~300 MB as lists of objects)."""

    names: bytes | bytearray = b""
    ids: array.array[int] = field(default_factory=lambda: array.array("I"))
    masks: list[int] = field(default_factory=list)
    _mask_ids: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids) - self.ids.count(DELETED)

    def mask_id(self, mask: int) -> int:
        mid = self._mask_ids.get(mask)
        if mid is None:
            if not self._mask_ids and self.masks:
                self._mask_ids = {m: i for i, m in enumerate(self.masks)}
                mid = self._mask_ids.get(mask)
                if mid is not None:
                    return mid
            mid = self._mask_ids[mask] = len(self.masks)
            self.masks.append(mask)
        return mid

    def items(self) -> Iterator[tuple[bytes, int]]:
        names = self.names
        masks = self.masks
        find = names.find
        start = 0
        for mid in self.ids:
            end = find(b"\n", start)
            if mid != DELETED:
                yield bytes(names[start:end]), masks[mid]
            start = end + 1

    def apply(self, delta: dict[bytes, int | None]) -> _KeyTable:
        """A copy with `delta` applied (path -> new mask, None: the log is gone)."""
        out = _KeyTable(self.names, array.array("I", self.ids), list(self.masks))
        todo = dict(delta)
        if todo:
            names = self.names
            find = names.find
            start = 0
            ids = out.ids
            for i in range(len(ids)):
                end = find(b"\n", start)
                path = bytes(names[start:end])
                if path in todo:
                    m = todo.pop(path)
                    ids[i] = DELETED if m is None else out.mask_id(m)
                    if not todo:
                        break
                start = end + 1
        added = [(p, m) for p, m in sorted(todo.items()) if m is not None]
        if added:
            out.names = bytes(self.names) + b"".join(p + b"\n" for p, _m in added)
            for _p, m in added:
                out.ids.append(out.mask_id(m))
        return out

    def compacted(self) -> _KeyTable:
        if DELETED not in self.ids:
            return self
        out = _KeyTable()
        buf = bytearray()
        for path, mask in self.items():
            buf += path
            buf += b"\n"
            out.ids.append(out.mask_id(mask))
        out.names = bytes(buf)
        return out


# ---------------------------------------------------------------------------------------------
# Cold scan


@dataclass
class _Scan:
    totals: _Totals
    keys: _KeyTable | None


def _git(repo: Repository, *args: str) -> list[str]:
    return ["git", f"--git-dir={repo.gitdir}", *args]


@dataclass(frozen=True)
class _ScanJob:
    """One cold scan: the branch `commit`, its location logs `slashes` deep, read into `masker`;
    every key's path and mask kept too when `keep_keys`; `total` is the expected key count."""

    repo: Repository
    commit: bytes
    masker: _Masker
    slashes: int
    keep_keys: bool
    progress: Progress | None
    total: int | None


def _cold_scan(job: _ScanJob) -> _Scan:
    try:
        return _pipeline_scan(job)
    except _PipelineUnavailable:
        return _dulwich_scan(job)


class _PipelineUnavailable(Exception):
    pass


INDEX_SNAPSHOT_PREFIX = "index-snapshot."


class _IndexDiffers(Exception):
    """git-annex's index turned out not to hold the scanned commit's tree."""


def _index_snapshot(repo: Repository, commit: bytes) -> Path | None:
    """A hard link to git-annex's own index of the branch (``annex/index``), taken while it
    claims to be synced with `commit` -- else None. The caller unlinks it.

    Listing that index with ``git ls-files`` reads one file instead of walking a million tree
    objects (1M keys: 0.3 s of CPU instead of 2.7 s). ``index.lck`` (the commit git-annex last
    synced the index with) alone proves nothing: git-annex union-merges a moved branch into the
    index, so it can hold lines the branch does not; ``git diff-index --cached --quiet COMMIT``
    proves it, and `_pipeline_scan` runs that proof beside the scan, on this same snapshot.
    git-annex changes the index only under ``journal.lck`` and always by renaming a new file
    over it (git's lockfile protocol), so a link taken under that lock is a stable copy of the
    index for as long as we need it, and the lock is held for microseconds, not for the scan.
    """
    index = repo.annexdir / "index"
    if not index.is_file():
        return None
    from annextui.backend.journal import JournalError, journal_lock

    d = cache_dir(repo)
    try:
        d.mkdir(parents=True, exist_ok=True)
        _remove_stale_snapshots(d)
        snap = d / f"{INDEX_SNAPSHOT_PREFIX}{os.getpid()}.{os.urandom(4).hex()}"
        with journal_lock(repo):
            try:
                recorded = (repo.annexdir / "index.lck").read_bytes().strip()
            except OSError:
                return None
            if recorded != commit:
                return None  # not synced with this commit: it cannot match
            try:
                os.link(index, snap)
            except OSError:  # no hard links here: a copy, still under the lock
                import shutil

                shutil.copyfile(index, snap)
    except (JournalError, OSError):
        return None
    return snap


def _remove_stale_snapshots(d: Path) -> None:
    """Snapshots left by scans that were killed (their process is gone)."""
    for f in d.glob(INDEX_SNAPSHOT_PREFIX + "*"):
        pid_text = f.name[len(INDEX_SNAPSHOT_PREFIX) :].split(".", 1)[0]
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue


def _index_proof(repo: Repository, snapshot: Path, commit: bytes) -> subprocess.Popen[bytes]:
    """``git diff-index`` exiting 0 when the snapshot holds exactly `commit`'s tree (it compares
    every entry, skipping unchanged subtrees through the index's cache-tree: ~0.3 s of CPU for
    1M keys)."""
    return subprocess.Popen(
        _git(repo, "diff-index", "--cached", "--quiet", commit.decode(), "--"),
        env={**os.environ, "GIT_INDEX_FILE": str(snapshot)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def index_matches_branch(repo: Repository, commit: bytes) -> bool:
    """Whether the cold scan of `commit` can list the branch from git-annex's index."""
    snap = _index_snapshot(repo, commit)
    if snap is None:
        return False
    try:
        return _index_proof(repo, snap, commit).wait() == 0
    finally:
        snap.unlink(missing_ok=True)


def _pipeline_scan(job: _ScanJob) -> _Scan:
    snapshot = _index_snapshot(job.repo, job.commit)
    try:
        if snapshot is not None:
            try:
                return _run_pipeline(job, snapshot)
            except (_IndexDiffers, _PipelineUnavailable):
                pass  # a stale index, or a git without ls-files --format: walk the tree
        return _run_pipeline(job, None)
    finally:
        if snapshot is not None:
            snapshot.unlink(missing_ok=True)


def _run_pipeline(job: _ScanJob, snapshot: Path | None) -> _Scan:
    """``git ls-files`` on the index snapshot (or ``git ls-tree -r``) | ``git cat-file``, read
    here; with a snapshot, its proof runs beside them and the scan is refused if it fails."""
    repo, commit = job.repo, job.commit
    tree_r, tree_w = os.pipe()
    out_r, out_w = os.pipe()
    # Bigger pipes (Linux) mean fewer wake-ups of the processes: ~30% less wall time.
    for fd in (tree_w, out_w):
        _grow_pipe(fd)
    lister_name = "ls-tree" if snapshot is None else "ls-files"
    lister: subprocess.Popen[bytes] | None = None
    catfile: subprocess.Popen[bytes] | None = None
    proof: subprocess.Popen[bytes] | None = None
    try:
        if snapshot is None:
            lister = subprocess.Popen(
                _git(
                    repo, "ls-tree", "-r", "-z", "--format=%(objectname) %(path)", commit.decode()
                ),
                stdout=tree_w,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
        else:
            lister = subprocess.Popen(
                _git(repo, "ls-files", "-z", "--format=%(objectname) %(path)"),
                env={**os.environ, "GIT_INDEX_FILE": str(snapshot)},
                stdout=tree_w,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            proof = _index_proof(repo, snapshot, commit)
        catfile = subprocess.Popen(
            _git(repo, "cat-file", "-z", "--batch=%(objectsize) %(rest)", "--buffer"),
            stdin=tree_r,
            stdout=out_w,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        os.close(out_r)
        for p in (lister, proof):
            if p is not None:
                p.kill()
                p.wait()
        raise _PipelineUnavailable(str(exc)) from exc
    finally:
        for fd in (tree_r, tree_w, out_w):
            os.close(fd)
    stdout = os.fdopen(out_r, "rb", buffering=1 << 20)
    errors: dict[str, bytes] = {}

    def drain(name: str, stream: IO[bytes] | None) -> None:
        if stream is not None:
            errors[name] = stream.read()

    drains = [
        threading.Thread(target=drain, args=("cat-file", catfile.stderr), daemon=True),
        threading.Thread(target=drain, args=(lister_name, lister.stderr), daemon=True),
    ]
    for t in drains:
        t.start()
    try:
        scan = _read_stream(stdout, job)
    finally:
        stdout.close()
        rc_cat = catfile.wait()
        rc_ls = lister.wait()
        rc_proof = proof.wait() if proof is not None else 0
        for t in drains:
            t.join()
    if rc_proof != 0:
        raise _IndexDiffers
    if rc_ls != 0:
        msg = errors.get(lister_name, b"").decode(errors="replace").strip()
        if "format" in msg or "unknown option" in msg or "usage:" in msg:
            raise _PipelineUnavailable(msg)
        raise SizesError(f"git {lister_name} failed: {msg}")
    if rc_cat != 0:
        msg = errors.get("cat-file", b"").decode(errors="replace").strip()
        if "usage:" in msg or "unknown switch" in msg:
            raise _PipelineUnavailable(msg)
        raise SizesError(f"git cat-file failed: {msg}")
    return scan


def _grow_pipe(fd: int, size: int = 1 << 20) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except (ImportError, OSError):
        pass  # not Linux, or above /proc/sys/fs/pipe-max-size: default pipes work too


def _read_stream(stream: IO[bytes], job: _ScanJob) -> _Scan:
    """The hot loop: `SIZE PATH` header, then exactly SIZE bytes and a newline, per blob."""
    masker, slashes, keep_keys = job.masker, job.slashes, job.keep_keys
    progress, total = job.progress, job.total
    readline = stream.readline
    read = stream.read
    tget = masker.tails.get
    tail = masker.tail
    slow = masker.slow
    exact = masker.exact
    per_mask: dict[int, list[int]] = {}
    pget = per_mask.get
    table = _KeyTable()
    names = bytearray()
    keep_id = table.ids.append
    mask_id = table.mask_id
    n = 0
    next_report = PROGRESS_EVERY
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived objects; the cyclic GC only slows this loop down
    try:
        while True:
            header = readline()
            if not header:
                break
            sp = header.find(b" ")
            try:
                size = int(header[:sp])
            except ValueError:
                continue  # "<sha> missing": nothing follows
            content = read(size + 1)
            path = header[sp + 1 : -1]
            if not path.endswith(b".log") or path.count(b"/") != slashes:
                continue
            base = path.rfind(b"/") + 1
            d = path.find(b"--", base)
            if d < 0:
                continue  # not a key: git-annex ignores it
            # -- the present mask (see _Masker.mask, inlined) --
            first = content.find(b"\n")
            if first == size - 1:  # one line: the usual case after compaction
                ls = content.find(b" ")
                if 1 < ls < first and content[ls - 1] == _S and content[: ls - 1].isdigit():
                    rest = content[ls + 1 : first]
                    v = tget(rest)
                    if v is None:
                        v = tail(rest)
                    if v is None:  # a CR in the line
                        mask = exact(content[:-1])
                    else:
                        mask = v if v > 0 else 0
                else:
                    mask = slow(content[:-1])
            else:
                mask = seen = 0
                for line in content.split(b"\n"):
                    if not line:
                        continue
                    ls = line.find(b" ")
                    if ls < 2 or line[ls - 1] != _S or not line[: ls - 1].isdigit():
                        mask = slow(content[:-1])
                        break
                    rest = line[ls + 1 :]
                    v = tget(rest)
                    if v is None:
                        v = tail(rest)
                        if v is None:  # a CR in the line
                            mask = exact(content[:-1])
                            break
                    b = v if v >= 0 else -v
                    if seen & b:  # a UUID named twice: the clocks decide
                        mask = slow(content[:-1])
                        break
                    seen |= b
                    if v > 0:
                        mask |= v
            # -- the key size: "-s" between the last "/" and the first "--" --
            i = path.find(b"-s", base, d)
            ks = 0
            if i > 0:
                digits = path[i + 2 : path.find(b"-", i + 2)]
                if digits.isdigit():
                    ks = int(digits)
            acc = pget(mask)
            if acc is None:
                per_mask[mask] = [1, ks]
            else:
                acc[0] += 1
                acc[1] += ks
            if keep_keys:
                names += header[sp + 1 :]  # the path and its newline
                keep_id(mask_id(mask))
            n += 1
            if progress is not None and n >= next_report:
                next_report += PROGRESS_EVERY
                progress(n, total)
    finally:
        if gc_was_enabled:
            gc.enable()
    totals = _Totals(nkeys=n)
    totals.add_masks(per_mask, len(masker.uuids))
    if progress is not None:
        progress(n, n)
    table.names = names
    return _Scan(totals, table if keep_keys else None)


def _dulwich_scan(job: _ScanJob) -> _Scan:
    """The same scan through dulwich (about ten times slower; used when git is too old)."""
    masker, slashes, keep_keys = job.masker, job.slashes, job.keep_keys
    progress, total = job.progress, job.total
    repo, commit = job.repo, job.commit
    store = repo.git.object_store
    per_mask: dict[int, list[int]] = {}
    table = _KeyTable()
    names = bytearray()
    n = 0
    for path, sha in _walk_tree(store, _tree_of(store, commit), b"", slashes):
        if not _is_location_path(path, slashes):
            continue
        blob = store[sha]
        mask = masker.mask(blob.as_raw_string() if isinstance(blob, Blob) else b"")
        ks = key_size_of_path(path)
        acc = per_mask.setdefault(mask, [0, 0])
        acc[0] += 1
        acc[1] += ks
        if keep_keys:
            names += path + b"\n"
            table.ids.append(table.mask_id(mask))
        n += 1
        if progress is not None and n % PROGRESS_EVERY == 0:
            progress(n, total)
    totals = _Totals(nkeys=n)
    totals.add_masks(per_mask, len(masker.uuids))
    if progress is not None:
        progress(n, n)
    table.names = names
    return _Scan(totals, table if keep_keys else None)


def _tree_of(store: Any, commit: bytes) -> bytes:
    obj = store[commit]
    if not isinstance(obj, Commit):
        raise SizesError(f"{commit.decode()} is not a commit")
    tree: bytes = obj.tree
    return tree


def _walk_tree(
    store: Any, tree_sha: bytes, prefix: bytes, depth: int
) -> Iterator[tuple[bytes, bytes]]:
    tree = store[tree_sha]
    if not isinstance(tree, Tree):
        return
    for entry in tree.iteritems():
        if entry.mode & 0o40000:
            if depth > 0:
                yield from _walk_tree(store, entry.sha, prefix + entry.path + b"/", depth - 1)
        elif depth == 0:
            yield prefix + entry.path, entry.sha


# ---------------------------------------------------------------------------------------------
# Tree diffs


class _OverBudget(Exception):
    pass


Change = tuple[bytes, "bytes | None", "bytes | None"]  # path, old blob, new blob


def _diff_trees(
    store: Any,
    old_tree: bytes | None,
    new_tree: bytes | None,
    slashes: int,
    budget: int,
    max_dirs: int | None = None,
) -> list[Change]:
    """Changed location logs between two trees, descending only where subtree shas differ."""
    out: list[Change] = []
    reads = [0]
    if max_dirs is None:
        max_dirs = DIFF_DULWICH_DIRS

    def entries(sha: bytes | None) -> dict[bytes, tuple[int, bytes]]:
        if sha is None:
            return {}
        reads[0] += 1
        if reads[0] > budget:
            raise _OverBudget
        tree = store[sha]
        if not isinstance(tree, Tree):
            return {}
        return {e.path: (e.mode, e.sha) for e in tree.iteritems()}

    def walk(old: bytes | None, new: bytes | None, prefix: bytes, level: int) -> None:
        o = entries(old)
        n = entries(new)
        names = sorted(o.keys() | n.keys())
        if level == 0 and sum(o.get(x) != n.get(x) for x in names) > max_dirs:
            raise _OverBudget
        for name in names:
            oe = o.get(name)
            ne = n.get(name)
            if oe == ne:
                continue
            odir = oe[1] if oe is not None and oe[0] & 0o40000 else None
            ndir = ne[1] if ne is not None and ne[0] & 0o40000 else None
            if level < slashes:
                if odir != ndir:
                    walk(odir, ndir, prefix + name + b"/", level + 1)
                continue
            ob = oe[1] if oe is not None and odir is None else None
            nb = ne[1] if ne is not None and ndir is None else None
            path = prefix + name
            if ob != nb and _is_location_path(path, slashes):
                out.append((path, ob, nb))

    walk(old_tree, new_tree, b"", 0)
    return out


def _git_diff_trees(repo: Repository, old: bytes, new: bytes, slashes: int) -> list[Change]:
    """`git diff-tree -r` between two commits: the same result for large changes."""
    proc = subprocess.run(
        _git(repo, "diff-tree", "-r", "-z", "--no-renames", old.decode(), new.decode()),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise SizesError(f"git diff-tree failed: {proc.stderr.decode(errors='replace').strip()}")
    fields = proc.stdout.split(b"\0")
    out: list[Change] = []
    zero = b"0" * 40
    for i in range(0, len(fields) - 1, 2):
        meta, path = fields[i], fields[i + 1]
        parts = meta.split(b" ")
        if len(parts) < 5 or not _is_location_path(path, slashes):
            continue
        old_mode, new_mode, old_sha, new_sha = parts[0][1:], parts[1], parts[2], parts[3]
        ob = old_sha if old_sha != zero and old_mode.startswith(b"100") else None
        nb = new_sha if new_sha != zero and new_mode.startswith(b"100") else None
        if ob != nb:
            out.append((path, ob, nb))
    return out


def _read_blobs(repo: Repository, shas: Iterable[bytes]) -> dict[bytes, bytes]:
    wanted = sorted(set(shas))
    found = _read_objects(repo, [s.decode() for s in wanted])
    return {s: c or b"" for s, c in zip(wanted, found, strict=True)}


# ---------------------------------------------------------------------------------------------
# The cache on disk


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
class _CacheState:
    branch: str
    depth: int
    uuids: list[str]
    totals: _Totals
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
    def from_json(cls, data: dict[str, Any]) -> _CacheState:
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
            totals=_Totals(counts, sizes, int(data["keys"])),
            snapshot=data.get("snapshot"),
            snapshot_branch=data.get("snapshot_branch"),
            delta={
                p.encode("utf-8", "surrogateescape"): (None if m is None else int(m, 16))
                for p, m in delta_raw.items()
            },
        )


def _load_cache(repo: Repository) -> _CacheState | None:
    try:
        data = json.loads((cache_dir(repo) / STATE_FILE).read_bytes())
        return _CacheState.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_cache(repo: Repository, st: _CacheState) -> None:
    d = cache_dir(repo)
    try:
        atomic_write(d / STATE_FILE, json.dumps(st.to_json()).encode(), d)
        keep = st.snapshot
        for f in d.iterdir():
            if f.name.startswith(SNAPSHOT_PREFIX) and f.name != keep:
                f.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only repository still gets its sizes, just no cache


def _write_snapshot(repo: Repository, branch: str, table: _KeyTable) -> str:
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


def _read_snapshot(repo: Repository, name: str) -> _KeyTable | None:
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
    return _KeyTable(names, ids, masks)


# ---------------------------------------------------------------------------------------------
# Putting it together


@dataclass
class _Base:
    """The branch part: cached, or freshly computed; masks use `masker`'s bit numbering."""

    masker: _Masker
    totals: _Totals
    cache: _CacheState | None
    source: str
    changed: int = 0
    keys: _KeyTable | None = None  # set by a cold scan that kept the keys


def _compute_base(
    repo: Repository,
    view: BranchView,
    *,
    use_cache: bool,
    keep_keys: bool,
    progress: Progress | None,
) -> _Base:
    depth = location_depth(repo)
    slashes = depth - 1
    head = view.head
    cached = _load_cache(repo) if use_cache else None
    if cached is not None and cached.depth != depth:
        cached = None
    if head is None:
        return _Base(_Masker(), _Totals(), None, "cold")
    head_s = head.decode()
    if cached is not None and cached.branch == head_s:
        masker = _Masker(cached.uuids)
        if keep_keys and cached.snapshot is None:
            return _cold(repo, head, depth, keep_keys, progress, cached, use_cache)
        return _Base(masker, cached.totals, cached, "warm")
    if cached is not None:
        try:
            base = _incremental(repo, head, cached, slashes)
        except (KeyError, SizesError, ValueError, OSError):
            base = None  # the old commit is gone (gc after a history rewrite) or unreadable
        if base is not None:
            if keep_keys and base.cache is not None and base.cache.snapshot is None:
                return _cold(repo, head, depth, keep_keys, progress, cached, use_cache)
            if use_cache and base.cache is not None:
                _save_cache(repo, base.cache)
            return base
    return _cold(repo, head, depth, keep_keys, progress, cached, use_cache)


def _cold(
    repo: Repository,
    head: bytes,
    depth: int,
    keep_keys: bool,
    progress: Progress | None,
    previous: _CacheState | None,
    use_cache: bool,
) -> _Base:
    masker = _Masker()
    estimate = previous.totals.nkeys if previous is not None else None
    scan = _cold_scan(_ScanJob(repo, head, masker, depth - 1, keep_keys, progress, estimate))
    st = _CacheState(head.decode(), depth, masker.uuids, scan.totals)
    if use_cache and scan.keys is not None:
        try:
            st.snapshot = _write_snapshot(repo, st.branch, scan.keys)
            st.snapshot_branch = st.branch
        except OSError:
            st.snapshot = None
    if use_cache:
        _save_cache(repo, st)
    return _Base(masker, scan.totals, st, "cold", keys=scan.keys)


def _incremental(repo: Repository, head: bytes, cached: _CacheState, slashes: int) -> _Base:
    store = repo.git.object_store
    old = cached.branch.encode()
    try:
        changes = _diff_trees(
            store, _tree_of(store, old), _tree_of(store, head), slashes, DIFF_OBJECT_BUDGET
        )
    except _OverBudget:
        changes = _git_diff_trees(repo, old, head, slashes)
    masker = _Masker(cached.uuids)
    totals = cached.totals.copy()
    blobs = _read_blobs(repo, [s for _p, o, n in changes for s in (o, n) if s is not None])
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
    st = _CacheState(
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
    return _Base(masker, totals, st, "incremental", changed=len(changes))


@dataclass
class _Overlay:
    masks: dict[bytes, int]  # path -> resolved mask including journal / unmerged refs
    totals: _Totals
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
            if _is_location_path(p, slashes):
                paths.add(p)
    per_ref: list[dict[bytes, bytes | None]] = []
    head_blobs: dict[bytes, bytes | None] = {}
    if view.unmerged:
        store = repo.git.object_store
        head_tree = _tree_of(store, view.head) if view.head is not None else None
        for ref in view.unmerged:
            try:
                ref_tree = _tree_of(store, ref.sha)
            except (KeyError, SizesError):
                continue
            try:
                changes = _diff_trees(store, head_tree, ref_tree, slashes, DIFF_OBJECT_BUDGET)
            except _OverBudget:
                if view.head is None:
                    changes = [(p, None, s) for p, s in _walk_tree(store, ref_tree, b"", slashes)]
                else:
                    changes = _git_diff_trees(repo, view.head, ref.sha, slashes)
            per_ref.append({p: n for p, _o, n in changes})
            for p, o, n in changes:
                head_blobs[p] = o
                if n is not None:
                    paths.add(p)
    return paths, per_ref, head_blobs


def _apply_overlay(repo: Repository, view: BranchView, base: _Base, slashes: int) -> _Overlay:
    """Journal and unmerged refs on top of the branch totals, as `BranchView.read` combines
    them (journal, else branch; private journal; every unmerged ref), with the blobs read in
    one batch so that a large unmerged ref costs a `git cat-file`, not a dulwich walk per key."""
    paths, per_ref, head_blobs = _overlay_plan(repo, view, slashes)
    totals = base.totals.copy()
    masks: dict[bytes, int] = {}
    if not paths:
        return _Overlay(masks, totals, 0)
    masker = base.masker
    head = view.head.decode() if view.head is not None else None
    # the branch blob of every path: known from the diffs, else looked up by name
    unknown = sorted(p for p in paths if p not in head_blobs)
    head_content: dict[bytes, bytes | None] = dict.fromkeys(unknown)
    if head is not None and unknown:
        names = [f"{head}:{p.decode('utf-8', 'surrogateescape')}" for p in unknown]
        head_content = dict(zip(unknown, _read_objects(repo, names), strict=True))
    wanted = sorted(
        {s for p in paths for s in [head_blobs.get(p), *(r.get(p) for r in per_ref)] if s}
    )
    blobs = dict(zip(wanted, _read_objects(repo, [s.decode() for s in wanted]), strict=True))
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
    return _Overlay(masks, totals, len(paths))


def _terminated(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


def _read_objects(repo: Repository, names: list[str]) -> list[bytes | None]:
    """Contents of objects named by sha or ``REV:PATH``, in order (None: missing)."""
    if not names:
        return []
    if len(names) <= BLOBS_VIA_DULWICH:
        return [_read_object_dulwich(repo, n) for n in names]
    proc = subprocess.run(
        _git(repo, "cat-file", "--batch=%(objectsize)"),
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
                store, _tree_of(store, rev.encode()), path.encode("utf-8", "surrogateescape")
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
    base = _compute_base(repo, view, use_cache=use_cache, keep_keys=False, progress=progress)
    overlay = _apply_overlay(repo, view, base, location_depth(repo) - 1)
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


# ---------------------------------------------------------------------------------------------
# Per-key locations (balance report)


@dataclass
class KeyLocations:
    """Every key with a location log and the UUIDs it is present in (branch + overlays).

    ``uuids[i]`` is the repository of bit ``i`` in a mask. Iterate with ``items()``; masks make
    "is key K in node N" a bit test and let callers cache per distinct mask.
    """

    uuids: list[str]
    table: _KeyTable
    branch: str | None = None
    source: str = "cold"

    def __len__(self) -> int:
        return len(self.table)

    def bit(self, uuid: str) -> int:
        try:
            return 1 << self.uuids.index(uuid)
        except ValueError:
            return 0

    def mask_of(self, uuids: Iterable[str]) -> int:
        m = 0
        for u in uuids:
            m |= self.bit(u)
        return m

    def uuids_of(self, mask: int) -> frozenset[str]:
        return frozenset(self.uuids[i] for i in _bits(mask))

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
    base = _compute_base(repo, view, use_cache=use_cache, keep_keys=True, progress=progress)
    slashes = location_depth(repo) - 1
    table = base.keys
    cache = base.cache
    if table is None and cache is not None and cache.snapshot is not None:
        table = _read_snapshot(repo, cache.snapshot)
        if table is not None and cache.delta:
            table = table.apply(cache.delta)
            if use_cache and len(cache.delta) > max(10_000, len(table.ids) // 50):
                _rewrite_snapshot(repo, cache, table)
    if table is None and view.head is not None:  # snapshot damaged or deleted: rebuild it
        base = _cold(repo, view.head, location_depth(repo), True, progress, None, use_cache)
        table = base.keys
    if table is None:
        table = _KeyTable()
    overlay = _apply_overlay(repo, view, base, slashes)
    if overlay.masks:
        table = table.apply(dict(overlay.masks))
    return KeyLocations(
        list(base.masker.uuids),
        table,
        branch=view.head.decode() if view.head is not None else None,
        source=base.source,
    )


def _rewrite_snapshot(repo: Repository, st: _CacheState, table: _KeyTable) -> None:
    try:
        st.snapshot = _write_snapshot(repo, st.branch, table)
        st.snapshot_branch = st.branch
        st.delta = {}
        _save_cache(repo, st)
    except OSError:
        pass


def journal_location_paths(repo: Repository) -> list[str]:
    """Branch paths of the location logs currently in the journal (for the console)."""
    view = BranchView(repo, include_unmerged=False)
    slashes = location_depth(repo) - 1
    out = []
    for f in view.journal_files():
        p = branch_path(f.name)
        if _is_location_path(p.encode("utf-8", "surrogateescape"), slashes):
            out.append(p)
    return out
