"""git-annex's transfer information files: written while a transfer runs, read by monitors.

Layout (keys-and-objects.md §7, `Logs/Transfer.hs`), relative to `GITDIR/annex/transfer/`:

| direction | info file | lock files (exclusive fcntl, in this order) |
|---|---|---|
| upload to U | `upload/U/KEYFILE` | `upload/U/lck.KEYFILE` |
| download from U | `download/U/KEYFILE` | `download/lck/lck.KEYFILE`, `download/U/lck.KEYFILE` |
| failed | `failed/{upload,download}/U/KEYFILE` | none |

Info file: `STARTTIME[ BYTESDONE]\\nASSOCIATEDFILE\\n`, STARTTIME a POSIX time with an `s`
suffix. A transfer is live while its lock is held; unlocked info files are stale.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from annextui.backend.clock import Clock, ClockError, parse_clock
from annextui.backend.keys import KeyError_, file_key, key_file, parse_key
from annextui.proxycore.locks import POOL, LockHandle, lock_holder, now_clock
from annextui.values import Value

_UUID_OK = re.compile(r"[0-9A-Za-z-]+")


class Direction(enum.Enum):
    UPLOAD = "upload"
    DOWNLOAD = "download"


class Transfer(Value):
    direction: Direction
    uuid: str  # the *other* repository
    key: str  # serialized key


class TransferInfo(Value):
    started: Clock | None = None
    bytes_done: int | None = None
    associated_file: str | None = None


def format_transfer_info(info: TransferInfo) -> bytes:
    """writeTransferInfo (POSIX): header line, then the associated file (may be empty)."""
    head = info.started.format() if info.started is not None else ""
    if info.bytes_done is not None:
        head += f" {info.bytes_done}"
    af = info.associated_file or ""
    return (head + "\n" + af + "\n").encode("utf-8", "surrogateescape")


def parse_transfer_info(data: bytes) -> TransferInfo | None:
    """readTransferInfo: None when the header is unparsable."""
    text = data.decode("utf-8", "surrogateescape")
    first, _, rest = text.partition("\n")
    af = rest[:-1] if rest.endswith("\n") else rest
    bits = first.split(" ")
    done: int | None = None
    try:
        started = parse_clock(bits[0])  # an empty file (caught mid-rewrite) is no info either
    except ClockError:
        return None
    if len(bits) > 1:
        if not bits[1].isdigit():
            return None
        done = int(bits[1])
    return TransferInfo(started, done, af or None)


def uuid_dirname(uuid: str) -> str | None:
    """The directory name for a UUID (`/` removed by git-annex); None if unusable in a path."""
    name = uuid.replace("/", "")
    return name if _UUID_OK.fullmatch(name) else None


class TransferPaths(Value):
    info: Path
    lock: Path
    old_lock: Path | None  # download only: the per-UUID lock older git-annex takes
    failed: Path


def transfer_paths(annexdir: Path, t: Transfer) -> TransferPaths:
    u = uuid_dirname(t.uuid)
    if u is None:
        raise ValueError(f"unusable UUID {t.uuid!r}")
    kf = key_file(t.key)
    if "/" in kf or kf in (".", ".."):
        raise ValueError(f"unusable key {t.key!r}")
    base = os.path.join(annexdir, "transfer")  # str joins: this runs for every transfer
    d = t.direction.value
    td = os.path.join(base, d, u)
    failed = Path(base, "failed", d, u, kf)
    if t.direction is Direction.UPLOAD:
        return TransferPaths(Path(td, kf), Path(td, "lck." + kf), None, failed)
    return TransferPaths(
        Path(td, kf), Path(base, "download", "lck", "lck." + kf), Path(td, "lck." + kf), failed
    )


_made_dirs: set[str] = set()

MakeDirs = Callable[[Path], None]  # mkdir -p of a directory below the annex directory


def _mkdir_p(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)


def _ensure_dir(d: Path, makedirs: MakeDirs) -> None:
    key = os.fspath(d)
    if key not in _made_dirs:
        makedirs(d)
        _made_dirs.add(key)


class TransferRecorder:
    """The info and lock files of one running transfer (runTransfer in `Annex/Transfer.hs`).

    Progress is written as git-annex does: the file is rewritten in place when a progress report
    advanced by at least 1 % of the key size (100 KiB when unknown) since the previous report.
    """

    def __init__(
        self,
        paths: TransferPaths,
        info: TransferInfo,
        locks: list[LockHandle],
        mindelta: int,
        mode: int,
        makedirs: MakeDirs = _mkdir_p,
    ) -> None:
        self.paths = paths
        self._makedirs = makedirs
        self.info = info
        self._locks = locks
        self._mindelta = mindelta
        self._mode = mode
        self._last = 0
        self._done = False

    @classmethod
    def start(
        cls,
        annexdir: Path,
        transfer: Transfer,
        *,
        associated_file: str | None = None,
        ignore_lock: bool = False,
        mode: int = 0o666,
        size: int | None = None,
        makedirs: MakeDirs = _mkdir_p,
    ) -> TransferRecorder | None:
        """Take the transfer locks and write the info file.

        Returns None when the transfer is already in progress (its lock is held) — unless
        `ignore_lock` (alwaysRunTransfer, used for sending), in which case a recorder without
        files is returned so the caller can proceed the same way. Directories are made with
        `makedirs` (a repository's `ObjectStore.make_annex_dir` refuses to make them in a
        repository that is gone); files are only ever created in existing directories.
        """
        try:
            paths = transfer_paths(annexdir, transfer)
        except ValueError:
            return cls._inert(transfer, associated_file)
        info = TransferInfo(now_clock(), None, associated_file)
        if size is None:
            try:
                size = parse_key(transfer.key).size
            except KeyError_:
                size = None
        mindelta = size // 100 if size is not None else 100 * 1024
        locks: list[LockHandle] = []
        try:
            for lck in (paths.lock, paths.old_lock):
                if lck is None:
                    continue
                _ensure_dir(lck.parent, makedirs)
                try:
                    h = POOL.try_exclusive(lck, mode)
                except FileNotFoundError:  # removed behind our back: make it again
                    _made_dirs.discard(os.fspath(lck.parent))
                    _ensure_dir(lck.parent, makedirs)
                    h = POOL.try_exclusive(lck, mode)
                if h is None:
                    for held in locks:
                        held.release()
                    if ignore_lock:
                        return cls._inert(transfer, associated_file)
                    return None
                locks.append(h)
            rec = cls(paths, info, locks, mindelta, mode, makedirs)
            with contextlib.suppress(OSError):
                rec._write(info, atomic=True)
            return rec
        except PermissionError:
            # git-annex carries on without records (e.g. a read-only repository being served).
            for held in locks:
                held.release()
            return cls._inert(transfer, associated_file)
        except BaseException:  # e.g. the repository is gone: no lock may stay held
            for held in locks:
                held.release()
            raise

    @classmethod
    def _inert(cls, transfer: Transfer, associated_file: str | None) -> TransferRecorder:
        paths = TransferPaths(Path(), Path(), None, Path())
        rec = cls(paths, TransferInfo(now_clock(), None, associated_file), [], 1 << 62, 0)
        rec._done = True
        return rec

    def _write(self, info: TransferInfo, *, atomic: bool = False) -> None:
        """Create the info file atomically (writeLogFile); rewrite progress in place.

        In place means over the old bytes, cut only when shorter, never `O_TRUNC`: ext4 flushes
        a file truncated to zero when it is closed (auto_da_alloc), about 1 ms per rewrite
        against 5 us, and a transfer rewrites its record a hundred times."""
        data = format_transfer_info(info)
        target = self.paths.info
        if atomic:
            path = target.with_name(f"{target.name}.tmp{os.getpid()}")
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        else:
            path = target
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, self._mode)
        try:
            os.pwrite(fd, data, 0)
            if not atomic and os.fstat(fd).st_size > len(data):
                os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
        if atomic:
            os.replace(path, target)

    @property
    def progress_step(self) -> int:
        """Reports closer together than this are never written; callers may skip them."""
        return self._mindelta

    def progress(self, bytes_done: int) -> None:
        if self._done:
            return
        if bytes_done - self._last >= self._mindelta:
            self.info = TransferInfo(self.info.started, bytes_done, self.info.associated_file)
            with contextlib.suppress(OSError):
                self._write(self.info)
        self._last = bytes_done

    def finish(self, ok: bool) -> None:
        """Remove the info and lock files; record a failure in `failed/` (success clears it)."""
        if self._done:
            return
        self._done = True
        p = self.paths
        for f in (p.info, p.lock, p.old_lock):
            if f is not None:
                with contextlib.suppress(OSError):
                    os.unlink(f)
        for h in reversed(self._locks):
            h.release()
        with contextlib.suppress(OSError):
            if ok:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p.failed)
            else:
                self._makedirs(p.failed.parent)
                fd = os.open(
                    p.failed, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, self._mode
                )
                try:
                    os.write(fd, format_transfer_info(self.info))
                finally:
                    os.close(fd)


# -- reading (for monitors such as the console) ---------------------------------------------------


class LiveTransfer(Value):
    transfer: Transfer
    info: TransferInfo
    pid: int | None  # holder of the lock (None if held by this very process)
    bytes_done: int | None  # BYTESDONE, else for downloads the size of annex/tmp/KEYFILE
    total: int | None  # the key's size field


def _parse_transfer_file(direction: str, uuid: str, name: str) -> Transfer | None:
    if name.startswith("lck."):
        return None
    try:
        d = Direction(direction)
        key = file_key(name)
        parse_key(key)
    except (ValueError, KeyError_):
        return None
    return Transfer(d, uuid, key)


_DIRECTIONS = (Direction.UPLOAD, Direction.DOWNLOAD)


def _iter_info_files(base: str | Path, uuid: str | None = None) -> Iterator[tuple[Transfer, Path]]:
    # Plain strings until a file is found: a cluster GET asks this of one node every time.
    for direction in _DIRECTIONS:
        ddir = f"{base}/{direction.value}"
        if uuid is not None:
            # A missing directory found by `access`, without raising: an exception costs
            # more than the lookup itself, and mostly no transfer is in flight.
            if not os.access(f"{ddir}/{uuid}", os.F_OK):
                continue
            uuids = [uuid]
        else:
            try:
                uuids = sorted(os.listdir(ddir))
            except (FileNotFoundError, NotADirectoryError):
                continue
        for u in uuids:
            if direction is Direction.DOWNLOAD and u == "lck":
                continue
            udir = f"{ddir}/{u}"
            try:
                names = sorted(os.listdir(udir))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                t = _parse_transfer_file(direction.value, u, name)
                if t is not None:
                    yield t, Path(udir, name)


def list_transfers(annexdir: Path, uuid: str | None = None) -> list[LiveTransfer]:
    """Transfers running now in this repository (info files whose lock is held); with
    `uuid`, only those with that repository (its two directories are all that is read)."""
    out = []
    for t, f in _iter_info_files(f"{annexdir}/transfer", uuid):
        paths = transfer_paths(annexdir, t)
        # A lock this process holds is never probed: opening and closing the lock file here
        # would drop the process's POSIX lock on it (a long-running server's other transfer).
        held_here = POOL.holds(paths.lock) is not None
        pid = None if held_here else lock_holder(paths.lock)
        if pid is None and not held_here and paths.old_lock is not None:
            held_here = POOL.holds(paths.old_lock) is not None
            pid = None if held_here else lock_holder(paths.old_lock)
        if pid is None and not held_here:
            continue
        info = None
        for _ in range(3):  # git-annex truncates before it rewrites progress: look again
            try:
                info = parse_transfer_info(f.read_bytes())
            except OSError:
                break
            if info is not None:
                break
        if info is None:
            continue
        done = info.bytes_done
        if done is None and t.direction is Direction.DOWNLOAD:
            with contextlib.suppress(OSError):
                done = os.stat(annexdir / "tmp" / key_file(t.key)).st_size
        try:
            total = parse_key(t.key).size
        except KeyError_:
            total = None
        out.append(LiveTransfer(t, info, pid, done, total))
    return out


def failed_transfers(annexdir: Path) -> list[tuple[Transfer, TransferInfo]]:
    out = []
    for t, f in _iter_info_files(annexdir / "transfer" / "failed"):
        try:
            info = parse_transfer_info(f.read_bytes())
        except OSError:
            continue
        if info is not None:
            out.append((t, info))
    return out


def downloads_in_progress(annexdir: Path, *, exclude: str | None = None) -> int:
    """Bytes that running downloads into this repository still have to write
    (sizeOfDownloadsInProgress): key size minus bytes done, for every live download record
    except those of the key `exclude`; keys of unknown size count 0."""
    ddir = annexdir / "transfer" / Direction.DOWNLOAD.value
    try:
        with os.scandir(ddir) as entries:
            if next(entries, None) is None:
                return 0
    except (FileNotFoundError, NotADirectoryError):
        return 0
    total = 0
    for live in list_transfers(annexdir):
        t = live.transfer
        if t.direction is not Direction.DOWNLOAD or t.key == exclude or live.total is None:
            continue
        done = live.bytes_done or 0
        total += max(0, live.total - done)
    return total
