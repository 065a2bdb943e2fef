"""Unlocked work-tree files of a non-bare repository, kept in step with the object store.

What git-annex-shell does around its object store in a repository with a work tree:
* after an object arrives (moveAnnex), every unlocked file associated with the key that is
  still a pointer to it is populated: hard-linked to the object with `annex.thin` (when the
  object has no other link), else copied with the object's mtime; its mode keeps the pointer
  file's execute bits and gains write permission (thawContent). The inode caches of the object
  and of the files are recorded in the keys database.
* after an object is removed (removeAnnex), every associated file that still holds the content
  (its inode cache is known, or it hashes to the key) is turned back into a pointer file with
  its old mode and mtime, and the key's inode caches are forgotten; a modified file is left.
* either way the files are restaged (Annex/Link.hs restagePointerFiles): recorded in
  `annex/restage.log`, then `git update-index --refresh` so `git status` stays clean.

Every work-tree file is replaced atomically: written under `annex/othertmp` and renamed over the
file (replaceWorkTreeFile).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from annextui.backend.keys import Key, serialize_key
from annextui.proxycore.keysdb import (
    KeysDb,
    inode_cache,
    keysdb_lock,
    open_db,
    same_inode_cache,
    show_inode_cache,
)
from annextui.proxycore.objectstore import SharedMode
from annextui.proxycore.pointer import format_pointer, pointer_file_key
from annextui.proxycore.reconcile import reconcile_staged

if TYPE_CHECKING:
    from annextui.proxycore.localrepo import LocalRepo

_EXEC = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH

UNABLE_TO_RESTAGE = (
    "git status will show some files to be modified, since content availability has changed "
    "and git-annex was unable to update the index. This is only a cosmetic problem affecting "
    "git status; git add, git commit, etc won't be affected. To fix the git status display, "
    "you can run: git-annex restage"
)


def _kb(key: Key) -> bytes:
    return serialize_key(key).encode("utf-8", "surrogateescape")


class WorkTree:
    """The work tree of one non-bare repository served by a LocalPeer."""

    def __init__(
        self,
        repo: LocalRepo,
        *,
        verify: Callable[[Key, Path], bool],
        warn: Callable[[str], None],
    ) -> None:
        self.repo = repo
        self.store = repo.store
        self._verify = verify
        self._warn = warn
        self._thin = repo.config_bool("annex.thin")
        self._db: KeysDb | None = None
        self._top = os.fsencode(repo.top)

    # -- the database, opened as git-annex opens it -----------------------------------------------
    @property
    def db(self) -> KeysDb:
        """Open (creating) the keys database and reconcile it with the index, under
        `keysdb.lck`, once per session (DbWasOpen: a reopen does not reconcile again)."""
        if self._db is None:
            annexdir = self.store.annexdir
            with keysdb_lock(annexdir, self.store.file_mode()):
                db = open_db(annexdir, self.store.file_mode())
                try:
                    changed = reconcile_staged(self.repo.gitdir, self.repo.top, db)
                    restage = [r for u in changed if (r := self._reconcile_file(db, u.key, u.file))]
                except BaseException:
                    db.close()
                    raise
            self._db = db
            self.restage(restage)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _path(self, file: bytes) -> bytes:
        return os.path.join(self._top, file)

    # -- prepSendAnnex ---------------------------------------------------------------------------
    def sendable(self, key: Key, obj: str, st: os.stat_result) -> bool:
        """Whether the object (`st`: its stat when opened for a GET) is still the key's content.
        With annex.thin it is also an unlocked work-tree file, which may have been edited in
        place: when the keys database has inode caches for the key and none matches, the content
        is verified, and the new cache recorded if it passes and the file did not change
        meanwhile (isUnmodified'). No caches: the object was never unlocked, it is sent."""
        db, kb = self.db, _kb(key)
        caches = db.inode_caches(kb)
        if not caches:
            return True
        ic = show_inode_cache(st)
        if any(same_inode_cache(ic, c) for c in caches):
            return True
        if not self._verify(key, Path(obj)):
            return False
        now = inode_cache(obj)
        if now is None or not same_inode_cache(ic, now):
            return False  # modified while it was being verified
        with db.writing():
            db.add_inode_caches(kb, [ic])
        return True

    # -- moveAnnex / removeAnnex ---------------------------------------------------------------
    def populate(self, key: Key, obj: Path) -> None:
        """Content of `key` arrived at `obj`: fill the pointer files that point at it."""
        db, kb = self.db, _kb(key)
        files = db.associated_files(kb)
        if not files:
            return
        objic = inode_cache(obj)
        caches = [objic] if objic else []
        restage: list[tuple[bytes, str]] = []
        for f in files:
            p = self._path(f)
            if pointer_file_key(p) != key:
                continue  # gone, modified, or now another key's: not ours to fill
            ic = self._populate_file(obj, p)
            if ic is not None:
                caches.append(ic)
                restage.append((f, ic))
        with db.writing():
            db.add_inode_caches(kb, caches)
        self.restage(restage)

    def depopulate(self, key: Key) -> None:
        """The object of `key` was removed: unmodified copies become pointer files again."""
        db, kb = self.db, _kb(key)
        files = db.associated_files(kb)
        caches = db.inode_caches(kb)
        restage: list[tuple[bytes, str]] = []
        for f in files:
            p = self._path(f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # a locked file's symlink, or nothing we would touch
            if not self._unmodified(key, p, st, caches):
                continue
            restage.append((f, self._depopulate_file(key, p, st)))
        if caches:
            with db.writing():
                db.remove_inode_caches(kb)
        self.restage(restage)

    def _unmodified(self, key: Key, path: bytes, st: os.stat_result, caches: list[str]) -> bool:
        """isUnmodified: the file's inode cache is known for the key, or it hashes to it."""
        ic = show_inode_cache(st)
        if any(same_inode_cache(ic, c) for c in caches):
            return True
        if key.size is not None and st.st_size != key.size:
            return False
        if pointer_file_key(path) is not None:
            return False  # already a pointer file
        return self._verify(key, Path(os.fsdecode(path)))

    def _reconcile_file(self, db: KeysDb, key: Key, file: bytes) -> tuple[bytes, str] | None:
        """reconcilepointerfile: a file the index now associates with `key` gets the content
        if the object is here (or loses it if the object is not)."""
        kb, p = _kb(key), self._path(file)
        caches = db.inode_caches(kb)
        kp = self.store.present(key)
        obj = kp.object if kp is not None else None
        objic = inode_cache(obj) if obj is not None else None
        file_ic = inode_cache(p)
        file_populated = file_ic is not None and any(same_inode_cache(file_ic, c) for c in caches)
        if obj is not None and objic is not None and not file_populated:
            if pointer_file_key(p) != key:
                return None
            ic = self._populate_file(obj, p)
            if ic is None:
                return None
            with db.writing():
                db.add_inode_caches(kb, [ic, objic])
            return (file, ic)
        if obj is None and file_populated:
            st = os.lstat(p)
            return (file, self._depopulate_file(key, p, st))
        return None

    # -- one file ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _replacing(self, path: bytes) -> Iterator[bytes]:
        """replaceWorkTreeFile: the caller writes the yielded temp file, which then replaces
        `path` in one rename; on failure the temp directory goes and `path` is untouched."""
        self.store.make_annex_dir(self.store.othertmp)
        tmpdir = tempfile.mkdtemp(dir=os.fsencode(self.store.othertmp), prefix=b"replace")
        try:
            tmp = os.path.join(tmpdir, b"f")
            yield tmp
            os.rename(tmp, path)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _populate_file(self, obj: Path, path: bytes) -> str | None:
        """populatePointerFile': link or copy the object over the pointer file; its cache."""
        try:
            destmode = stat.S_IMODE(os.stat(path).st_mode)
            with self._replacing(path) as tmp:
                self._link_or_copy(obj, tmp)
                _preserve_git_mode(tmp, destmode)
                self._thaw(tmp)
                ic = inode_cache(tmp)
        except OSError as exc:
            self._warn(f"unable to populate {os.fsdecode(path)}: {exc}")
            return None
        return ic

    def _link_or_copy(self, obj: Path, tmp: bytes) -> None:
        """linkOrCopy: a hard link with annex.thin unless the object is already linked
        elsewhere; otherwise a copy keeping the object's mode and timestamps (cp -p)."""
        st = os.stat(obj)
        if self._thin and st.st_nlink <= 1:
            try:
                os.link(obj, tmp)
                return
            except OSError:
                pass
        shutil.copyfile(obj, tmp)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))

    def _depopulate_file(self, key: Key, path: bytes, st: os.stat_result) -> str:
        """depopulatePointerFile: the pointer again, with the file's mode and old mtime (so git
        need not re-smudge it)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        with self._replacing(path) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            try:
                os.write(fd, format_pointer(key))
            finally:
                os.close(fd)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            os.utime(tmp, ns=(st.st_mtime_ns, st.st_mtime_ns))
            ic = inode_cache(tmp)
        assert ic is not None
        return ic

    def _thaw(self, path: bytes) -> None:
        """thawContent of a work-tree file, by core.sharedRepository."""
        s = self.store.sharing
        cur = stat.S_IMODE(os.stat(path).st_mode)
        if s.mode is SharedMode.UNSHARED:
            os.chmod(path, cur | stat.S_IWUSR)
        elif s.mode is SharedMode.UMASK:
            with contextlib.suppress(OSError):
                os.chmod(path, s.umask_mode)
        else:
            rw = stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP
            with contextlib.suppress(OSError):
                os.chmod(path, cur | rw)

    # -- restaging -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _restage_lock(self) -> Iterator[None]:
        lockfile = self.store.annexdir / "restage.lck"
        fd = os.open(lockfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, self.store.file_mode())
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def restage(self, entries: list[tuple[bytes, str]]) -> None:
        """writeRestageLog for each file, then restagePointerFiles."""
        if not entries:
            return
        annexdir = self.store.annexdir
        log = annexdir / "restage.log"
        with self._restage_lock(), open(log, "ab") as fh:
            for f, ic in entries:
                fh.write(ic.encode() + b":" + f + b"\n")
        self._restage_pending()

    def _restage_pending(self) -> None:
        """Refresh the index for the logged files still as we left them (streamRestageLog):
        the log moves to restage.old, which is removed only once the index was updated."""
        annexdir = self.store.annexdir
        log, old = annexdir / "restage.log", annexdir / "restage.old"
        with self._restage_lock():
            if log.exists():
                if old.exists():
                    with open(old, "ab") as out:
                        out.write(log.read_bytes())
                    log.unlink()
                else:
                    os.rename(log, old)
        try:
            lines = old.read_bytes().splitlines()
        except FileNotFoundError:
            return
        paths: list[bytes] = []
        for line in lines:
            ic, sep, f = line.partition(b":")
            if not sep:
                continue
            p = self._path(f)
            now = inode_cache(p)
            if now is not None and same_inode_cache(now, ic.decode(errors="replace")):
                paths.append(p)
        if paths and not self._update_index(paths):
            self._warn(UNABLE_TO_RESTAGE)
            return
        with contextlib.suppress(FileNotFoundError):
            old.unlink()

    def _update_index(self, paths: list[bytes]) -> bool:
        """`git update-index -q --refresh -z --stdin`: git re-reads those files' stat (running
        git-annex's clean filter, which recognises the content by the inode caches recorded)."""
        r = subprocess.run(
            [
                "git", f"--git-dir={self.repo.gitdir}", f"--work-tree={self.repo.top}",
                "-c", "core.safecrlf=false", "update-index", "-q", "--refresh", "-z", "--stdin",
            ],
            input=b"".join(p + b"\0" for p in paths),
            cwd=self.repo.top,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        return r.returncode == 0


def _preserve_git_mode(path: bytes, destmode: int) -> None:
    """preserveGitMode: git tracks only the execute bit; the file keeps the pointer's (any x
    bit makes it executable for all, none for nobody)."""
    cur = stat.S_IMODE(os.stat(path).st_mode)
    new = cur | _EXEC if destmode & _EXEC else cur & ~_EXEC
    if new != cur:
        os.chmod(path, new)
