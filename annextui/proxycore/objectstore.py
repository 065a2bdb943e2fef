"""git-annex's object store on disk: hash directories, temp files, modes, and path safety.

Layout (keys-and-objects.md §3-4): `GITDIR/annex/objects/H1/H2/KEYFILE/KEYFILE`, partial
transfers in `GITDIR/annex/tmp/KEYFILE`. Objects are frozen (file 0444, key directory 0555 in an
unshared repository); anything that changes a key directory thaws it first and freezes it after.

Keys reach this module from the network, so every path is built with `safe_key_file` and then
checked: the directories must resolve inside the annex directory, and neither the key directory
nor the object (nor a temp file) may be a symlink. A violation raises `UnsafePath`.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import functools
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from annextui.backend.keys import Key, KeyError_, hashdir_lower, hashdir_mixed, safe_key_file
from annextui.values import Value


class UnsafePath(Exception):
    """A key or a pre-existing file would make us touch something outside the annex."""


class UnstorableKey(UnsafePath):
    """A well-formed key that cannot be a file name here (too long for the file system)."""


class RepositoryGone(OSError):
    """The repository directory is no longer the one this store was opened on: renamed or
    removed (the path is gone), or its disk unmounted (the path is now another, empty
    directory). Nothing may be created there: a mkdir -p of annex/objects would rebuild the
    repository's skeleton at the old path, and fill the disk under a mount point."""


class SharedMode(enum.Enum):
    """`core.sharedRepository`, as git-annex's `Annex.Perms` reads it."""

    UNSHARED = "unshared"
    GROUP = "group"
    ALL = "all"
    UMASK = "umask"


class Sharing(Value):
    mode: SharedMode = SharedMode.UNSHARED
    umask_mode: int = 0  # the octal mode given for SharedMode.UMASK

    @classmethod
    def from_config(cls, value: str | None) -> Sharing:
        v = (value or "").strip().lower()
        if v in ("", "false", "umask", "0", "no", "off"):
            return cls()
        if v in ("true", "group", "1", "yes", "on"):
            return cls(SharedMode.GROUP)
        if v in ("all", "world", "everybody", "2"):
            return cls(SharedMode.ALL)
        try:
            return cls(SharedMode.UMASK, int(v, 8) & 0o7777)
        except ValueError:
            return cls()


_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
_READ_ALL = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def _require_directories(paths: Iterable[str | Path]) -> None:
    """Each existing path, outermost first, must be a real directory (not a symlink); the
    first that does not exist ends the check (we create the rest)."""
    for comp in paths:
        try:
            st = os.lstat(comp)
        except (FileNotFoundError, NotADirectoryError):
            return
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{comp} is not a directory")


@functools.lru_cache(maxsize=256)
def _hashdir_pair(key: Key, levels: int) -> tuple[str, str]:
    """A key's lower-case and mixed-case hash directories. Remembered for the last keys: a
    cluster GET looks one key up in the gateway's store and each local node's (two md5s and
    two serializations of the key each time otherwise)."""
    return hashdir_lower(key, levels), hashdir_mixed(key, levels)


# The key met last and its names: (key, hash levels, key file, (lower, mixed) hash dirs).
_last_names: tuple[Key, int, str, tuple[str, str]] | None = None


def _key_names(key: Key, levels: int) -> tuple[str, tuple[str, str]]:
    """A key's file name (`safe_key_file`) and hash directories. The key met last is known by
    identity: one GET asks for the same Key object (the protocol hands out one per key text)
    in the gateway's store, in each local node's, then to open it, and hashing a Key to look
    it up in `_hashdir_pair`'s cache costs more than comparing identities."""
    global _last_names
    last = _last_names
    if last is not None and last[0] is key and last[1] == levels:
        return last[2], last[3]
    try:
        kf = safe_key_file(key)
    except KeyError_ as exc:
        raise UnstorableKey(str(exc)) from exc
    pair = _hashdir_pair(key, levels)
    _last_names = (key, levels, kf, pair)
    return kf, pair


class KeyPaths(Value):
    """Where one key's object, its lock and retention files live in one hash layout."""

    keyfile: str
    dir: Path  # .../H1/H2/KEYFILE/

    @property
    def object(self) -> Path:
        return self.dir / self.keyfile

    @property
    def lck(self) -> Path:
        return self.dir / (self.keyfile + ".lck")

    @property
    def rtm(self) -> Path:
        return self.dir / (self.keyfile + ".rtm")

    @property
    def rtl(self) -> Path:
        return self.dir / (self.keyfile + ".rtl")


class ObjectStore:
    """The annex object store of one repository (`GITDIR/annex`)."""

    def __init__(
        self,
        gitdir: str | os.PathLike[str],
        *,
        bare: bool,
        hash_lower_only: bool = False,
        hash_levels: int = 2,
        sharing: Sharing | None = None,
    ) -> None:
        self.gitdir = Path(gitdir)
        self.annexdir = self.gitdir / "annex"
        self.objects = self.annexdir / "objects"
        self._objects_prefix = os.path.join(self.objects, "")
        self.tmpdir = self.annexdir / "tmp"
        self.othertmp = self.annexdir / "othertmp"
        self.bare = bare
        self.hash_lower_only = hash_lower_only
        self.hash_levels = 1 if hash_levels == 1 else 2
        self.sharing = sharing or Sharing()
        self._root = _identity(self.gitdir)

    # -- the repository itself -------------------------------------------------------------------
    def check_root(self) -> None:
        """Raise `RepositoryGone` unless the git directory is still the directory (device and
        inode) it was when the store was opened. Called before anything is created in the
        repository and before an object is renamed into place."""
        now = _identity(self.gitdir)
        if now is None or now != self._root:
            what = "no longer exists" if now is None else "is another directory now"
            raise RepositoryGone(
                errno.ESTALE, f"repository {what} (moved or unmounted)", str(self.gitdir)
            )

    # -- paths ---------------------------------------------------------------------------------
    def _names(self, key: Key) -> tuple[str, tuple[str, ...]]:
        """The key file and the hash directories to look in, in git-annex's order."""
        kf, (lower, mixed) = _key_names(key, self.hash_levels)
        if self.hash_lower_only:
            return kf, (lower,)
        return kf, ((lower, mixed) if self.bare else (mixed, lower))

    @staticmethod
    def _key_file(key: Key) -> str:
        try:
            return safe_key_file(key)
        except KeyError_ as exc:
            raise UnstorableKey(str(exc)) from exc

    def candidates(self, key: Key) -> list[KeyPaths]:
        """Every location git-annex would look at, the one for new content first."""
        kf, hashdirs = self._names(key)
        return [KeyPaths(kf, self.objects / h / kf) for h in hashdirs]

    def locate(self, key: Key) -> KeyPaths:
        """The location whose object exists, else the default for new content (gitAnnexLocation)."""
        cands = self.candidates(key)
        for c in cands:
            if os.path.lexists(c.object):
                self.check_key_dir(c)
                return c
        self.check_key_dir(cands[0])
        return cands[0]

    def tmp_path(self, key: Key) -> Path:
        path = self.tmpdir / self._key_file(key)
        self._check_under(path.parent, self.tmpdir)
        return path

    @staticmethod
    def _check_under(directory: Path, root: Path) -> None:
        """`directory` was built as `root/a/b…`: none of a, b, … may be a symlink.

        Hash directory names come from a fixed alphabet and key file names contain no `/`,
        so with real directories all the way down the path cannot leave `root`. The roots
        themselves may be symlinks (annex/objects moved to another disk). Existing components
        only: what does not exist yet is created by us.
        """
        parts: list[Path] = []
        d = directory
        while d != root:
            if d == d.parent:
                raise UnsafePath(f"{directory} is not below {root}")
            parts.append(d)
            d = d.parent
        _require_directories(reversed(parts))

    def check_key_dir(self, kp: KeyPaths) -> None:
        """The key directory and its parents stay inside the annex; no symlinked dir or object."""
        self._check_under(kp.dir.parent, self.objects)
        for p in (kp.dir, kp.object):
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                return
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePath(f"{p} is a symlink")

    # -- presence --------------------------------------------------------------------------------
    def present(self, key: Key) -> KeyPaths | None:
        """The paths of the key if its object is a regular file here (inAnnex)."""
        found = self._present(key)
        return None if found is None else KeyPaths(found[0], Path(found[1]))

    def present_object(self, key: Key) -> str | None:
        """`present`'s object path, as a string (a served GET opens it: no Path is built)."""
        found = self._present(key)
        return None if found is None else f"{found[1]}/{found[0]}"

    def _present(self, key: Key) -> tuple[str, str] | None:
        """`present` as (key file, key directory), with every check of the path."""
        kf, hashdirs = self._names(key)
        for h in hashdirs:  # plain strings: a served GET asks this every time
            kdir = f"{self._objects_prefix}{h}{kf}"
            try:
                dst = os.lstat(kdir)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if not stat.S_ISDIR(dst.st_mode):
                raise UnsafePath(f"{kdir} is not a directory")
            obj = f"{kdir}/{kf}"
            try:
                st = os.lstat(obj)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePath(f"{obj} is not a regular file")
            self._check_hashdir(h)
            return kf, kdir
        return None

    def _check_hashdir(self, hashdir: str) -> None:
        """`_check_under` for the hash directories `H1/H2/` below annex/objects."""
        prefix = self._objects_prefix
        inner = hashdir[:-1]  # "H1/H2" (or "H1")
        cut = inner.find("/")
        if cut < 0:
            _require_directories((prefix + inner,))
        else:
            _require_directories((prefix + inner[:cut], prefix + inner))

    def has_object(self, key: Key) -> bool:
        """Whether a regular file is at one of the key's locations: one lstat where it is
        (a hint for choosing a source; `present` does the checks a request relies on)."""
        kf, hashdirs = self._names(key)
        for h in hashdirs:  # plain strings: a cluster GET asks this of each node
            obj = f"{self._objects_prefix}{h}{kf}/{kf}"
            # Most places asked have no such file: `access` says so without raising (an
            # exception costs more than the system call); lstat only what exists.
            if not os.access(obj, os.F_OK, follow_symlinks=False):
                continue
            try:
                if stat.S_ISREG(os.lstat(obj).st_mode):
                    return True
            except (FileNotFoundError, NotADirectoryError):
                continue
        return False

    def content_size(self, key: Key) -> int | None:
        kp = self.present(key)
        if kp is None:
            return None
        try:
            return os.stat(kp.object).st_size
        except FileNotFoundError:
            return None

    def tmp_size(self, key: Key) -> int:
        """Bytes of a partial transfer already in `annex/tmp` (0 if none)."""
        path = self.tmp_path(key)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{path} is not a regular file")
        return st.st_size

    def open_tmp(self, key: Key) -> tuple[int, Path]:
        """Open (creating) the key's temp file for writing without truncating; never a symlink."""
        path = self.tmp_path(key)
        self.make_annex_dir(self.tmpdir)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, self.file_mode())
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(f"{path} is a symlink") from exc
            if exc.errno == errno.EACCES:
                # A temp file left frozen by an older writer (checkDiskSpaceToGet thaws it).
                with contextlib.suppress(OSError):
                    os.chmod(path, os.lstat(path).st_mode | stat.S_IWUSR, follow_symlinks=False)
                fd = os.open(path, flags, self.file_mode())
            else:
                raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafePath(f"{path} is not a regular file")
        return fd, path

    def discard_tmp(self, key: Key) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path(key))

    def discard_tmp_if_empty(self, key: Key) -> None:
        """Drop a temp file nothing was written to: there is nothing in it to resume."""
        path = self.tmp_path(key)
        with contextlib.suppress(OSError):
            if os.lstat(path).st_size == 0:
                os.unlink(path)

    # -- modes -----------------------------------------------------------------------------------
    def file_mode(self) -> int:
        """Mode for lock, retention and temp files (annexFileMode; the umask still applies)."""
        if self.sharing.mode is SharedMode.UMASK:
            return self.sharing.umask_mode & 0o666
        if self.sharing.mode is SharedMode.GROUP:
            return 0o664
        if self.sharing.mode is SharedMode.ALL:
            return 0o666
        return 0o666

    def make_annex_dir(self, path: Path) -> None:
        """mkdir -p under the annex directory, with git-annex's directory modes; never in a
        repository that is gone (`check_root`), and never the git directory itself."""
        if path.is_dir():
            return
        self.check_root()
        missing: list[Path] = []
        p = path
        while not p.exists():
            missing.append(p)
            if p == self.annexdir or p.parent == p:
                break
            p = p.parent
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                continue
            self._set_dir_perm(d)

    def _set_dir_perm(self, d: Path) -> None:
        s = self.sharing
        if s.mode is SharedMode.UNSHARED:
            return
        with contextlib.suppress(OSError):
            cur = stat.S_IMODE(os.lstat(d).st_mode)
            if s.mode is SharedMode.GROUP:
                os.chmod(d, cur | stat.S_IRWXG | stat.S_ISGID)
            elif s.mode is SharedMode.ALL:
                os.chmod(d, cur | stat.S_IRWXG | stat.S_IRWXO | stat.S_ISGID)
            else:
                os.chmod(d, _umask_dir(s.umask_mode))

    def freeze_object(self, path: Path) -> None:
        """freezeContent: remove write bits, add read bits (v10 repositories)."""
        s = self.sharing
        try:
            cur = stat.S_IMODE(os.lstat(path).st_mode)
            if s.mode is SharedMode.UNSHARED:
                new = (cur | stat.S_IRUSR) & ~_WRITE
            elif s.mode is SharedMode.GROUP:
                new = (cur | stat.S_IRUSR | stat.S_IRGRP) & ~_WRITE
            elif s.mode is SharedMode.ALL:
                new = (cur | _READ_ALL) & ~_WRITE
            else:
                new = s.umask_mode & ~_WRITE
            if new != cur:
                os.chmod(path, new, follow_symlinks=False)
        except OSError:
            if s.mode is SharedMode.UNSHARED:
                raise

    def freeze_dir(self, d: Path) -> None:
        """freezeContentDir: an unshared key directory loses its write bits."""
        s = self.sharing
        try:
            cur = stat.S_IMODE(os.lstat(d).st_mode)
            if s.mode is SharedMode.UNSHARED:
                new = cur & ~_WRITE
            elif s.mode in (SharedMode.GROUP, SharedMode.ALL):
                new = cur | stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP
            else:
                new = _umask_dir(s.umask_mode & ~stat.S_IWUSR)
            if new != cur:
                os.chmod(d, new)
        except FileNotFoundError:
            pass

    def thaw_dir(self, d: Path) -> None:
        s = self.sharing
        try:
            if s.mode is SharedMode.UMASK:
                os.chmod(d, s.umask_mode)
            else:
                cur = stat.S_IMODE(os.lstat(d).st_mode)
                if not cur & stat.S_IWUSR:
                    os.chmod(d, cur | stat.S_IWUSR)
        except FileNotFoundError:
            pass

    @contextlib.contextmanager
    def modifying(self, kp: KeyPaths, *, create: bool = False) -> Iterator[None]:
        """modifyContentDir / modifyContentDirWhenExists: thaw, act, freeze again."""
        self.check_key_dir(kp)
        if create and not kp.dir.is_dir():
            self.make_annex_dir(kp.dir.parent)
            with contextlib.suppress(FileExistsError):
                os.mkdir(kp.dir)
                self._set_dir_perm(kp.dir)
            self.check_key_dir(kp)
        self.thaw_dir(kp.dir)
        try:
            yield
        finally:
            self.freeze_dir(kp.dir)

    # -- storing and removing --------------------------------------------------------------------
    def install(self, key: Key, tmp: Path) -> KeyPaths:
        """moveAnnex: rename a verified temp file into place (or drop it if already present)."""
        existing = self.present(key)
        if existing is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            return existing
        kp = self.candidates(key)[0]
        with self.modifying(kp, create=True):
            if os.path.lexists(kp.object):
                os.unlink(tmp)
            else:
                self.check_root()  # the key directory may have existed: check here too
                os.rename(tmp, kp.object)
                self.freeze_object(kp.object)
        return kp

    def unlink_object(self, kp: KeyPaths) -> None:
        """Remove the object file (the caller holds the removal lock) and tidy directories."""
        self.check_key_dir(kp)
        with self.modifying(kp), contextlib.suppress(FileNotFoundError):
            os.unlink(kp.object)
        self.clean_dirs(kp)

    def clean_dirs(self, kp: KeyPaths) -> None:
        """cleanObjectDirs: remove the key directory and hash directories once they are empty."""
        d = kp.dir
        for _ in range(self.hash_levels + 1):
            if d == self.objects:
                return
            try:
                os.rmdir(d)
            except OSError:
                return
            d = d.parent


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _umask_dir(mode: int) -> int:
    """umaskSharedDirectory: a directory gets the x bit wherever the mode has r."""
    out = mode
    for r, x in (
        (stat.S_IRUSR, stat.S_IXUSR),
        (stat.S_IRGRP, stat.S_IXGRP),
        (stat.S_IROTH, stat.S_IXOTH),
    ):
        if mode & r:
            out |= x
    return out
