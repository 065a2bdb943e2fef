"""`LocalPeer`: a git-annex repository on this machine served as a Peer, in pure Python.

What git-annex's `P2P/Annex.hs` does for the shell, done here without git-annex:
* content in `annex/objects` with git-annex's hash directories and modes (objectstore.py);
* receives resume from the partial file in `annex/tmp`, are hashed while they arrive (the partial
  prefix first) and are verified before the rename into the store;
* LOCKCONTENT / removal locks compatible with git-annex's own (locks.py);
* transfer information files while content moves (transfers.py);
* the location log changed through the journal, committed when the session ends;
* `hooks/annex-content` run after content arrived or was dropped.

The repository itself (`LocalRepo`, localrepo.py) is read cheaply: git config with one call,
dulwich only when the branch must be written.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from annextui.backend.keys import Key, hasher_for, known_variety
from annextui.proxycore.branchreads import SessionBranchReads
from annextui.proxycore.localrepo import LocalRepo
from annextui.proxycore.locks import ContentLocked, lock_content_shared, lock_for_removal
from annextui.proxycore.objectstore import (
    RepositoryGone,
    UnsafePath,
    UnstorableKey,
)
from annextui.proxycore.peer import (
    AlreadyHave,
    ContentLock,
    Incoming,
    Outcome,
    Outgoing,
    OutgoingSpan,
    Peer,
    PeerFatal,
    RequestRefused,
    Unreachable,
)
from annextui.proxycore.sessioncommit import commit_session_journal
from annextui.proxycore.transfers import (
    Direction,
    Transfer,
    TransferRecorder,
    downloads_in_progress,
)

if TYPE_CHECKING:
    from annextui.backend.catfile import CatFile
    from annextui.backend.journal import Journal
    from annextui.backend.keys import _Hasher
    from annextui.proxycore.worktree import WorkTree

_T = TypeVar("_T")
_HASH_BLOCK = 1 << 20


DEFAULT_DISK_RESERVE = 100 * 1000 * 1000  # git-annex: 100 megabytes


def disk_reserve(value: str | None) -> int:
    """`annex.diskreserve` in bytes (git-annex's size syntax); the default when unset or
    unparsable, as git-annex falls back."""
    if not value:
        return DEFAULT_DISK_RESERVE
    from annextui.backend.units import SizeError, parse_size

    try:
        return parse_size(value)
    except SizeError:
        return DEFAULT_DISK_RESERVE


def monotonic_seconds() -> int:
    """currentMonotonicTimestamp: CLOCK_BOOTTIME seconds (CLOCK_MONOTONIC where absent)."""
    clock = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
    return int(time.clock_gettime(clock))


def _stderr_warning(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class LocalPeer(Peer):
    """A local repository served to one client (`p2pstdio DIR CLIENTUUID`)."""

    def __init__(
        self,
        repo: LocalRepo,
        *,
        client_uuid: str,
        warn: Callable[[str], None] = _stderr_warning,
        gcrypt: bool = False,
        catfile: CatFile | None = None,
    ) -> None:
        """`gcrypt`: also serve a gcrypt repository, which has no UUID and so no location log
        (the legacy commands of gcrypt remotes). `catfile`: a `git cat-file --batch` of this
        repository that whoever opened the session owns, to read the branch through (else the
        peer starts its own at its first look, branchreads.py)."""
        uuid = repo.uuid or ""
        if not uuid and not (gcrypt and repo.gcrypt_id):
            raise PeerFatal("Not a git-annex or gcrypt repository.")
        if repo.version is not None and repo.version < 10:
            raise PeerFatal(
                f"repository version {repo.version} is not supported by annextui-shell; "
                "run git annex upgrade"
            )
        if repo.config_bool("annex.pidlock"):
            raise PeerFatal("annex.pidlock is set; annextui-shell cannot share git-annex's locks")
        self.repo = repo
        self.store = repo.store
        self.client_uuid = client_uuid
        self._uuid = uuid
        self._warn = warn
        self._journal: Journal | None = None
        self._changed = False
        self._verify = repo.config_bool("annex.verify", default=True)
        self._secure_only = repo.config_bool("annex.securehashesonly")
        self._disk_reserve = disk_reserve(repo.config_get("annex.diskreserve"))
        self._hook = self._find_hook()
        self._worktree: WorkTree | None = None
        self._branch = SessionBranchReads(repo, catfile)

    # -- Peer ----------------------------------------------------------------------------------
    @property
    def uuid(self) -> str:
        return self._uuid

    def check_present(self, key: Key) -> bool:
        try:
            return self._safe(lambda: self.store.present(key) is not None)
        except UnstorableKey:
            return False  # no file can have that name: it cannot be here

    def holds(self, key: Key) -> bool | None:
        try:
            return self.store.has_object(key)
        except (OSError, UnsafePath):  # UnstorableKey included: let the GET itself say so
            return None

    def lock_content(self, key: Key) -> ContentLock | None:
        def go() -> ContentLock | None:
            kp = self.store.present(key)
            if kp is None:
                return None
            return lock_content_shared(self.store, kp)

        try:
            return self._safe(go)
        except (OSError, UnstorableKey):
            return None

    def get(self, key: Key, offset: int, associated_file: str | None) -> Outgoing | None:
        try:
            return self._safe(lambda: self._get(key, offset, associated_file))
        except UnstorableKey:
            return None

    def _get(self, key: Key, offset: int, af: str | None) -> Outgoing | None:
        obj = self.store.present_object(key)
        if obj is None:
            return None
        try:
            fd = os.open(obj, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise UnsafePath(f"{obj} is not a regular file")
        if not self._sendable(key, obj, st):
            os.close(fd)
            return None  # as git-annex: DATA 0 and INVALID
        length = max(0, st.st_size - offset)

        def record() -> TransferRecorder | None:
            return self.upload_recorder(key, af, length)

        return LocalOutgoing(fd, obj, st, min(offset, st.st_size), length, record)

    def _sendable(self, key: Key, obj: str, st: os.stat_result) -> bool:
        """prepSendAnnex: in a repository with a work tree the object may be an unlocked file
        (annex.thin) edited in place; the keys database says (`WorkTree.sendable`). Opening it
        reconciles it with the index, as git-annex-shell's GET does. A database that cannot be
        opened has no caches to check (git-annex's DbUnavailable): the object is sent."""
        wt = self.worktree()
        if wt is None:
            return True
        import sqlite3  # loaded with the work tree's keys database anyway; not for a bare repo

        try:
            return wt.sendable(key, obj, st)
        except (OSError, sqlite3.Error) as exc:
            self._warn(f"unable to read the keys database: {exc}")
            return True

    def upload_recorder(self, key: Key, af: str | None, length: int) -> TransferRecorder | None:
        """The transfer record of a GET being served (nodepeer.NodePeer makes it lazy)."""
        return self.start_transfer(Direction.UPLOAD, self.client_uuid, key, af)

    def start_transfer(
        self, direction: Direction, uuid: str, key: Key, af: str | None
    ) -> TransferRecorder | None:
        """The transfer record of a transfer with `uuid` (its lock ignored when sending, as
        git-annex's alwaysRunTransfer); its directories are made only while the repository
        is still there (`ObjectStore.make_annex_dir`)."""
        store = self.store
        return TransferRecorder.start(
            store.annexdir,
            Transfer(direction, uuid, str(key)),
            associated_file=af,
            ignore_lock=direction is Direction.UPLOAD,
            mode=store.file_mode(),
            size=key.size,
            makedirs=store.make_annex_dir,
        )

    def put(self, key: Key, associated_file: str | None) -> Incoming | AlreadyHave:
        try:
            return self._safe(lambda: self._put(key, associated_file))
        except UnstorableKey as exc:
            raise RequestRefused(str(exc)) from exc

    def _put(self, key: Key, af: str | None) -> Incoming | AlreadyHave:
        self.store.check_root()  # a repository that is gone takes nothing, not even a record
        self.admit(key)
        if self.store.present(key) is not None:
            try:
                self._log_unlogged_copy(key)
            except Exception as exc:  # an unwritable journal, a broken branch: the answer stays
                self._warn(f"{key}: content present, but its location log was not fixed: {exc}")
            return AlreadyHave()
        return LocalIncoming(self, key, af, self.resume_offset(key))

    def _log_unlogged_copy(self, key: Key) -> None:
        """A PUT of content that is already here, while this repository's own log does not
        say so: a store killed between moving the object in and logging it (here or by
        git-annex, whose setPresent follows storeContent), or a "missing" line another process
        wrote wrongly. git-annex answers ALREADY-HAVE and logs nothing, so the copy goes
        uncounted (by this repository's own log) until a `git annex fsck` here. Log it
        present, as fsck would, only if the content is still here once the journal lock is
        held: a removal unlinks before it takes that lock to log "missing", so its line is
        written after ours and wins."""
        if self._listed_here(key):
            return  # the usual case, told by one read without any lock
        uuid = self._uuid

        def keep(data: bytes) -> bool:
            from annextui.backend.logs.presence import present_infos

            return uuid in present_infos(data) or self.store.present(key) is None

        self.log_presence(key, present=True, unless=keep)

    def admit(self, key: Key) -> None:
        """Refuse (RequestRefused) content this repository must not take in."""
        if not known_variety(key):
            raise RequestRefused(f"cannot verify {key.variety} keys; not accepting them")
        if key.is_chunk:
            raise RequestRefused("chunk keys cannot be stored in a git-annex repository")
        if self._secure_only and not key.secure and not self._external_secure(key):
            raise RequestRefused(
                f"annex.securehashesonly blocked adding {key.variety} key to annex objects"
            )

    @staticmethod
    def _external_secure(key: Key) -> bool:
        if not key.external:
            return False
        from annextui.proxycore.external_backend import is_secure

        return is_secure(key)

    def verify_file(self, key: Key, path: Path) -> bool:
        """Whether the complete file at `path` is the key's content (verifyKeyContent): hashed
        here for hashing backends, asked of its program for an external backend's key. Keys
        nothing can check (WORM, URL, GPGHMAC, an external backend without its program) pass,
        as git-annex passes them."""
        hasher = hasher_for(key)
        if hasher is None:
            if not key.external:
                return True
            from annextui.proxycore.external_backend import Verdict, verify_content

            return verify_content(key, path) is not Verdict.INVALID
        view = memoryview(bytearray(_HASH_BLOCK))
        with open(path, "rb", buffering=0) as fh:
            while n := fh.readinto(view):
                hasher.update(cast(bytes, view[:n]))  # hashlib takes any buffer
        from annextui.backend.keys import digest_matches

        return digest_matches(key, hasher.hexdigest())

    def resume_offset(self, key: Key) -> int:
        """Bytes of a partial receive to go on from, once the disk has room for the rest."""
        offset = self.store.tmp_size(key)
        if key.size is not None and offset > key.size:
            # Longer than the content can be: it cannot be resumed, start over.
            self.store.discard_tmp(key)
            offset = 0
        self._check_disk_space(key, offset)
        return offset

    def _check_disk_space(self, key: Key, already_there: int) -> None:
        """checkDiskSpaceToGet: refuse content that would eat into `annex.diskreserve`.

        As git-annex computes it: the key's size (1 when unknown) plus the reserve, minus the
        free space, minus the partial file being resumed, plus what other downloads into this
        repository still have to write. git-annex-shell answers FAILURE only after the body has
        been sent (and then misreads the unread body as protocol lines); refusing the `PUT`
        itself tells the client at once and moves no data in vain.
        """
        try:
            # annex/ may not exist yet in a fresh repository; its parent is on the same disk
            where = self.store.annexdir
            st = os.statvfs(where if where.is_dir() else where.parent)
        except OSError:
            return  # git-annex goes ahead when it cannot tell
        free = st.f_bavail * st.f_frsize
        need = (key.size if key.size is not None else 1) + self._disk_reserve - free
        need -= already_there
        if need <= 0:
            need += downloads_in_progress(self.store.annexdir, exclude=str(key))
        if need > 0:
            from annextui.backend.units import format_rough

            message = (
                f"not enough free space, need {format_rough(need, 2)} more "
                "(adjust annex.diskreserve of the receiving repository to change this check)"
            )
            # The client reports a refused PUT only as "Transfer failed"; git-annex's warning
            # on stderr is what reaches the user's terminal through ssh, so say it there too.
            self._warn(message)
            raise RequestRefused(message)

    def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        try:
            return self._safe(lambda: self._remove(key, before))
        except UnstorableKey:
            return Outcome(True)  # it cannot be here, so it is not

    def _remove(self, key: Key, before: int | None) -> Outcome:
        kp = self.store.present(key)
        if kp is None:
            try:
                self._forget_lost_copy(key)
            except Exception as exc:  # an unwritable journal, a broken branch: the answer stays
                self._warn(f"{key}: content missing, but its location log was not fixed: {exc}")
            return Outcome(True)  # as git-annex's RemoveContent: nothing here is success
        try:
            lock = lock_for_removal(self.store, kp)
        except ContentLocked as exc:
            raise PeerFatal(str(exc)) from exc
        except OSError as exc:
            if self.store.present(key) is None:
                self.log_missing(key)  # lockContentForRemoval's fallback, as RemoveContent's
                return Outcome(True)
            raise PeerFatal(f"failed to lock content: {exc}") from exc
        try:
            if before is not None and not monotonic_seconds() < before:
                return Outcome(False)
            self.store.unlink_object(kp)
            # RemoveContent logs inside lockContentForRemoval; logging before the work tree is
            # touched keeps the window in which a killed process leaves a phantom copy (the
            # object gone, the log saying "present") as short as it can be.
            self.log_missing(key)
            self.depopulate(key)
        finally:
            lock.release()
        self.content_changed()
        return Outcome(True)

    def _forget_lost_copy(self, key: Key) -> None:
        """A REMOVE of content that is not here, while this repository's own log still says it
        has the key: a removal killed between its unlink and its log line (here or by
        git-annex), or content lost otherwise. git-annex answers success and logs nothing, so
        the phantom copy stays until a `git annex fsck` in this repository ("expected to be
        present, but its content is missing"), and others count it meanwhile. Log it missing,
        as fsck would: under the content's removal lock, as git-annex removes (a LOCKCONTENT
        holder or another removal excludes this; fsck moving an object directory holds it),
        and only if the content is still absent once the journal lock is held."""
        if not self._listed_here(key):
            return  # the usual case (never here), told by one read without any lock
        try:
            lock = lock_for_removal(self.store, self.store.locate(key))
        except ContentLocked:
            return  # someone holds the content's lock: the log is theirs to change
        except OSError:
            lock = None  # no key directory, so no lock file; git-annex's fallback goes on too
        try:
            self.log_missing(key, only_if_listed=True)
        finally:
            if lock is not None:
                lock.release()

    def timestamp(self) -> int:
        return monotonic_seconds()

    def close(self) -> None:
        """Commit the journal (git-annex's shell commits at exit when annex.alwayscommit)."""
        self._branch.close()  # first: nothing below can keep its process and pipes open
        if self._worktree is not None:
            self._worktree.close()
        if "annextui.proxycore.external_backend" in sys.modules:
            from annextui.proxycore.external_backend import close_all

            close_all()
        repo = self.repo
        commit_session_journal(
            repo, lambda: self.journal, self._warn, apart=lambda: _journal_of(repo).commit()
        )

    def park(self) -> bool:
        """The session's end as `close` does it; then nothing of it is kept that is tied to
        the thread that served it (the journal's dulwich repository, the keys database's
        sqlite connection, the branch reader's process, ended by `close`), so another
        request's thread can use this peer."""
        self.close()
        self._journal = None
        self._worktree = None
        self._changed = False
        return True

    # -- helpers used by the transfer objects ------------------------------------------------------
    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = _journal_of(self.repo)
        return self._journal

    def _location_log(self, key: Key) -> str:
        from annextui.backend.keys import branch_hash_levels, location_log_path

        return location_log_path(key, branch_hash_levels(self.repo.config_bool))

    def _listed_here(self, key: Key) -> bool:
        """Whether this repository's own location log says it has `key` (journal included)."""
        if not self._uuid:
            return False
        from annextui.backend.logs.presence import present_infos

        return self._uuid in present_infos(self._branch.staged(self._location_log(key)))

    def log_presence(
        self, key: Key, *, present: bool, unless: Callable[[bytes], bool] | None = None
    ) -> None:
        """Log this repository's copy of `key` present or missing. `unless` is asked under the
        journal lock with the location log as it stands; True leaves the log alone."""
        if not self._uuid:
            return  # a gcrypt repository: git-annex logs nothing for NoUUID either
        from annextui.backend.clock import current_clock
        from annextui.backend.logs.presence import PresenceStatus, change_presence

        status = PresenceStatus.PRESENT if present else PresenceStatus.MISSING
        uuid = self._uuid

        def change(data: bytes) -> bytes | None:
            if unless is not None and unless(data):
                return None
            return change_presence(data, uuid, status, current_clock())

        self.journal.change(self._location_log(key), change)

    def log_missing(self, key: Key, *, only_if_listed: bool = False) -> None:
        """Log the key missing here, unless its content is here when the journal lock is held.

        Whoever stores content (our PUT, git-annex's moveAnnex) moves the object in before it
        takes the journal lock to log it present. So content absent under that lock means any
        "present" line still to come is written after ours and wins; content found means a
        store overtook this removal, and its "present" line must stand. A check before taking
        the lock would let such a line be overwritten. `only_if_listed`: and only when the log
        says this repository has it (a REMOVE of content that was never here logs nothing, as
        git-annex's)."""
        uuid = self._uuid

        def keep(data: bytes) -> bool:
            if only_if_listed:
                from annextui.backend.logs.presence import present_infos

                if uuid not in present_infos(data):
                    return True
            return self.store.present(key) is not None

        self.log_presence(key, present=False, unless=keep)

    def warn(self, message: str) -> None:
        self._warn(message)

    # -- unlocked files of a work tree (worktree.py; nothing of it is loaded for a bare repo) ----
    def worktree(self) -> WorkTree | None:
        if self.repo.bare:
            return None
        if self._worktree is None:
            from annextui.proxycore.worktree import WorkTree

            self._worktree = WorkTree(self.repo, verify=self.verify_file, warn=self._warn)
        return self._worktree

    def store_verified(self, key: Key, tmp: Path) -> None:
        """Move verified content in (moveAnnex), fill its unlocked files, log it, run the hook."""
        had = self.store.present(key) is not None
        kp = self.store.install(key, tmp)
        if not had:
            self.populate(key, kp.object)
        self.log_presence(key, present=True)
        self.content_changed()

    def populate(self, key: Key, obj: Path) -> None:
        """moveAnnex's populatePointerFile for each unlocked file of the key. The content is
        stored whatever happens here, so a failure is a warning, as git-annex's is."""
        wt = self.worktree()
        if wt is not None:
            self._in_worktree(lambda: wt.populate(key, obj))

    def depopulate(self, key: Key) -> None:
        """removeAnnex's resetpointer for each unlocked file of the key."""
        wt = self.worktree()
        if wt is not None:
            self._in_worktree(lambda: wt.depopulate(key))

    def _in_worktree(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # sqlite3.Error, OSError, git failing: the object is fine
            self._warn(f"unable to update the work tree: {exc}")

    @property
    def verify_enabled(self) -> bool:
        return self._verify

    def _find_hook(self) -> Path | None:
        hook = self.repo.gitdir / "hooks" / "annex-content"
        return hook if os.access(hook, os.X_OK) and hook.is_file() else None

    def content_changed(self) -> None:
        """Run `hooks/annex-content` (no arguments) after content was received or dropped."""
        self._changed = True
        if self._hook is None:
            return
        try:
            r = subprocess.run(
                [str(self._hook)],
                cwd=self.repo.top,
                stdin=subprocess.DEVNULL,
                stdout=sys.stderr.fileno(),  # never onto the protocol stream
            )
        except OSError as exc:
            self._warn(f"{self._hook} failed: {exc}")
            return
        if r.returncode != 0:
            self._warn(f"{self._hook} failed")

    @staticmethod
    def _safe(fn: Callable[[], _T]) -> _T:
        """A layout that would lead outside the annex ends the session (UnstorableKey passes)."""
        try:
            return fn()
        except UnstorableKey:
            raise
        except UnsafePath as exc:
            raise PeerFatal(f"refusing unsafe path: {exc}") from exc
        except RepositoryGone as exc:
            raise gone(exc) from exc


def _journal_of(repo: LocalRepo) -> Journal:
    from annextui.backend.journal import Journal

    return Journal(repo.full())


def gone(exc: RepositoryGone) -> Unreachable:
    """The Peer's error for a repository that vanished under it."""
    return Unreachable(f"{exc.filename}: {exc.strerror}; nothing is written there")


class LocalOutgoing(OutgoingSpan):
    """An object being sent (GET); see `peer.Outgoing`.

    The upload record (transfer info file and its locks: three files created and removed) is
    started once the transfer is known to last: after the first block of a large body, or once
    a small body has left and the client's answer is awaited. Creating it first would put those
    file operations between the client's GET and its DATA, which is most of a small GET's
    latency; a monitor still sees every transfer for as long as the client is busy with it.
    """

    def __init__(
        self,
        fd: int,
        path: str | Path,
        st: os.stat_result,
        offset: int,
        length: int,
        record: Callable[[], TransferRecorder | None] | None,
    ) -> None:
        super().__init__(offset, length)
        self._fd = fd
        self._path = path
        self._st = st
        self._pos = offset
        self._start_record = record if length > 0 else None
        self._recorder: TransferRecorder | None = None
        self._step = 1 << 62
        self._reported = offset
        self._closed = False

    def fileno(self) -> int | None:
        return self._fd

    def _record(self) -> None:
        start, self._start_record = self._start_record, None
        if start is not None:
            self._recorder = start()
            if self._recorder is not None:
                self._step = self._recorder.progress_step

    def readinto(self, buf: memoryview) -> int:
        want = min(len(buf), self._offset + self._length - self._pos)
        if want <= 0:
            return 0
        n = os.preadv(self._fd, [buf[:want]], self._pos)
        self.advance(n)
        return n

    def advance(self, n: int) -> None:
        self._pos += n
        if self._pos >= self._offset + self._length:
            return  # all read: the record (if any) is not worth rewriting now
        if self._start_record is not None:
            self._record()  # more than one block: a transfer a monitor should see
        if self._recorder is not None and self._pos - self._reported >= self._step:
            self._reported = self._pos
            self._recorder.progress(self._pos)

    def body_sent(self) -> None:
        self._record()

    def valid(self) -> bool:
        """The inode-cache check of prepSendAnnex: same file, size and mtime as when opened."""
        try:
            now = os.stat(self._path, follow_symlinks=False)
        except OSError:
            return False
        a, b = self._st, now
        return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)

    def close(self, acknowledged: Outcome | None) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self._fd)
        ok = acknowledged is not None and acknowledged.ok
        if not ok:
            self._record()  # a failed upload leaves its record in failed/, however short
        if self._recorder is not None:
            self._recorder.finish(ok)


class LocalIncoming:
    """An object being received (PUT); see `peer.Incoming`."""

    def __init__(self, peer: LocalPeer, key: Key, af: str | None, offset: int) -> None:
        self._peer = peer
        self._key = key
        self._af = af
        self._offset = offset
        self._fd = -1
        self._tmp: Path | None = None
        self._created = False
        self._hasher: _Hasher | None = None
        self._length = 0
        self._written = 0
        self._discarding = False
        self._recorder: TransferRecorder | None = None
        self._step = 1 << 62
        self._reported = 0
        self._spent = False

    @property
    def offset(self) -> int:
        return self._offset

    def begin(self, length: int) -> None:
        peer, key, store = self._peer, self._key, self._peer.store
        self._length = length
        try:
            rec = peer.start_transfer(Direction.DOWNLOAD, peer.client_uuid, key, self._af)
        except RepositoryGone as exc:
            self._spent = True
            raise gone(exc) from exc
        if rec is None:
            self._spent = True
            raise PeerFatal("transfer already in progress, or unable to take transfer lock")
        self._recorder = rec
        self._step = rec.progress_step
        if key.size is not None and self._offset + length > key.size:
            # More than the key can hold: take the bytes off the wire but store none of them.
            self._discarding = True
            return
        try:
            existed = store.tmp_path(key).exists()
            fd, tmp = store.open_tmp(key)
        except (UnsafePath, RepositoryGone) as exc:
            rec.finish(False)
            self._spent = True
            if isinstance(exc, RepositoryGone):
                raise gone(exc) from exc
            raise PeerFatal(f"refusing unsafe path: {exc}") from exc
        self._fd, self._tmp, self._created = fd, tmp, not existed
        size = os.fstat(fd).st_size
        if size > self._offset:
            os.ftruncate(fd, self._offset)
        self._hasher = hasher_for(key)
        if self._hasher is not None and self._offset:
            self._hash_prefix()
        os.lseek(fd, self._offset, os.SEEK_SET)
        self._reported = self._offset

    def _hash_prefix(self) -> None:
        """Resuming: feed what is already in the temp file to the hash first."""
        assert self._hasher is not None
        buf = bytearray(_HASH_BLOCK)
        view = memoryview(buf)
        pos = 0
        while pos < self._offset:
            n = os.preadv(self._fd, [view[: min(_HASH_BLOCK, self._offset - pos)]], pos)
            if n <= 0:
                break
            self._hasher.update(cast(bytes, view[:n]))  # hashlib takes any buffer
            pos += n

    def write(self, data: bytes | memoryview) -> None:
        n = len(data)
        if not self._discarding and n:
            view = memoryview(data)
            done = 0
            while done < n:
                done += os.write(self._fd, view[done:])
            if self._hasher is not None:
                self._hasher.update(cast(bytes, data))
        self._written += n
        if self._recorder is not None and self._written < self._length:
            pos = self._offset + self._written
            if pos - self._reported >= self._step:
                self._reported = pos
                self._recorder.progress(pos)

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def finish(self, valid: bool | None) -> Outcome:
        peer, key = self._peer, self._key
        self._spent = True
        rec = self._recorder
        try:
            self._close_fd()
            if self._written != self._length or self._tmp is None:
                if self._discarding:
                    peer.warn("Verification of content failed")
                return self._fail(keep=True)
            if valid is False and self._length == 0:
                # The sender had no content to send.
                return self._fail(keep=True)
            total = self._offset + self._written
            if key.size is not None and total != key.size:
                peer.warn("Verification of content failed")
                return self._fail(keep=False)
            resumed = self._offset > 0
            must_verify = resumed or valid is not True or peer.verify_enabled
            if self._hasher is not None and must_verify:
                from annextui.backend.keys import digest_matches

                if not digest_matches(key, self._hasher.hexdigest()):
                    peer.warn("Verification of content failed")
                    return self._fail(keep=False)
            elif must_verify and not peer.verify_file(key, self._tmp):
                peer.warn("Verification of content failed")
                return self._fail(keep=False)
            peer.store_verified(key, self._tmp)
            if rec is not None:
                rec.finish(True)
            return Outcome(True)
        except BaseException as exc:
            if rec is not None:
                rec.finish(False)
            if isinstance(exc, RepositoryGone):
                # The partial file stays where the repository went, to resume once it is back.
                raise gone(exc) from exc
            raise

    def _fail(self, *, keep: bool) -> Outcome:
        if not keep:
            self._peer.store.discard_tmp(self._key)
        elif self._created:
            self._peer.store.discard_tmp_if_empty(self._key)
        if self._recorder is not None:
            self._recorder.finish(False)
        return Outcome(False)

    def data_present(self) -> Outcome:
        self._spent = True
        if self._peer.store.present(self._key) is not None:
            self._peer.log_presence(self._key, present=True)
            return Outcome(True)
        return Outcome(False)

    def interrupt(self) -> None:
        """Local writes never block for long, and the file must not be closed under one."""

    def abort(self) -> None:
        """Connection lost or client gave up: keep what arrived for a resume."""
        if self._spent:
            return
        self._spent = True
        self._close_fd()
        if self._recorder is not None:
            self._fail(keep=True)
