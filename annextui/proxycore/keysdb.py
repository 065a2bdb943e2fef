"""git-annex's keys database (`GITDIR/annex/keysdb/db`), read and written as git-annex does.

Why we write it rather than only read it: git-annex-shell records the inode caches of the object
and of every work-tree file it populates (`Annex.Content.moveAnnex`) and forgets them when the
content is removed (`removeAnnex`). Those caches are what lets git-annex's clean filter (run by
`git update-index --refresh` when the index is restaged, and by every later `git status`) see
that a populated file is the annexed content without hashing it again, and what `isUnmodified`
trusts before dropping. Leaving them out would make every later git command re-hash the file.

The schema (Database/Keys/SQL.hs, created by persistent's migration) and the value encodings
(Database/Types.hs) are reproduced exactly: keys and file names are BLOBs, the inode cache is
`showInodeCache` text, the size a decimal string, the mtime integral seconds. The database is
in WAL mode, so sqlite's own locking serialises us with git-annex's processes; git-annex's
`keysdb.lck` (exclusive, blocking fcntl lock) is held while the database is opened, created and
brought up to date with the index (reconcile.py), exactly as `Database.Keys.openDb'` holds it.

sqlite3 is imported here only; the shell imports this module only for a non-bare repository.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

# persistent's migration output for the two entities, as `sqlite3 db .schema` shows it.
_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS "associated"("id" INTEGER PRIMARY KEY,"key" BLOB NOT NULL,'
    '"file" BLOB NOT NULL,CONSTRAINT "key_file_index" UNIQUE ("key","file"),'
    'CONSTRAINT "file_key_index" UNIQUE ("file","key"))',
    'CREATE TABLE IF NOT EXISTS "content"("id" INTEGER PRIMARY KEY,"key" BLOB NOT NULL,'
    '"inodecache" VARCHAR NOT NULL,"filesize" VARCHAR NOT NULL,"mtime" INTEGER NOT NULL,'
    'CONSTRAINT "key_inode_cache_index" UNIQUE ("key","inodecache"),'
    'CONSTRAINT "inode_cache_key_index" UNIQUE ("inodecache","key"))',
)

#: How long a statement waits for another writer (git-annex retries for 30-60 s too).
_BUSY_TIMEOUT = 60.0

_thread_guard = threading.Lock()
_thread_locks: dict[Path, threading.RLock] = {}


# -- inode caches (Utility/InodeCache.hs) ------------------------------------------------------


def show_inode_cache(st: os.stat_result) -> str:
    """showInodeCache of a regular file's stat: `INODE SIZE SECONDS FRACTION`.

    The fraction is Haskell's `show` of the picosecond mtime with trailing zeros chopped; a
    whole second shows no fraction at all, which leaves a trailing space after `unwords`.
    """
    secs, ns = divmod(st.st_mtime_ns, 1_000_000_000)
    frac = f"{ns:09d}".rstrip("0") if ns else ""
    return f"{st.st_ino} {st.st_size} {secs} {frac}"


def inode_cache(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str | None:
    """genInodeCache: the cache of a regular file (not following a symlink), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    import stat

    return show_inode_cache(st) if stat.S_ISREG(st.st_mode) else None


def _parse_cache(text: str) -> tuple[int, int, int, str | None] | None:
    w = text.split()
    try:
        if len(w) == 3:
            return int(w[0]), int(w[1]), int(w[2]), None
        if len(w) >= 4:
            return int(w[0]), int(w[1]), int(w[2]), w[3]
    except ValueError:
        return None
    return None


def same_inode_cache(a: str, b: str) -> bool:
    """compareStrong: inode, size and mtime equal; a low-resolution side compares seconds."""
    pa, pb = _parse_cache(a), _parse_cache(b)
    if pa is None or pb is None:
        return False
    if pa[:3] != pb[:3]:
        return False
    return pa[3] is None or pb[3] is None or pa[3] == pb[3]


def _cache_row(key: bytes, cache: str) -> tuple[bytes, str, str, int]:
    parsed = _parse_cache(cache)
    size, secs = (parsed[1], parsed[2]) if parsed else (0, 0)
    return key, cache, str(size), secs


# -- the database ------------------------------------------------------------------------------


class KeysDb:
    """One open connection to a repository's keys database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction (git-annex commits its queued writes the same way, all at once)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- associated files (AssociatedTable) ---------------------------------------------------
    def associated_files(self, key: bytes) -> list[bytes]:
        """Files once associated with the key, relative to the top (some may be gone since)."""
        rows = self._conn.execute('SELECT "file" FROM "associated" WHERE "key"=?', (key,))
        return [bytes(r[0]) for r in rows]

    def add_associated(self, key: bytes, file: bytes) -> None:
        """addAssociatedFile: upsert by (file, key), so an existing row is left as it is."""
        self._conn.execute(
            'INSERT OR IGNORE INTO "associated"("key","file") VALUES (?,?)', (key, file)
        )

    def remove_associated(self, key: bytes, file: bytes) -> None:
        self._conn.execute('DELETE FROM "associated" WHERE "key"=? AND "file"=?', (key, file))

    # -- inode caches (ContentTable) ----------------------------------------------------------
    def inode_caches(self, key: bytes) -> list[str]:
        rows = self._conn.execute('SELECT "inodecache" FROM "content" WHERE "key"=?', (key,))
        return [str(r[0]) for r in rows]

    def add_inode_caches(self, key: bytes, caches: list[str]) -> None:
        """addInodeCaches: insertUnique_ of each (an existing (key, cache) row is kept)."""
        self._conn.executemany(
            'INSERT OR IGNORE INTO "content"("key","inodecache","filesize","mtime") '
            "VALUES (?,?,?,?)",
            [_cache_row(key, c) for c in caches],
        )

    def remove_inode_caches(self, key: bytes) -> None:
        self._conn.execute('DELETE FROM "content" WHERE "key"=?', (key,))


def _thread_lock(path: Path) -> threading.RLock:
    with _thread_guard:
        return _thread_locks.setdefault(path, threading.RLock())


@contextlib.contextmanager
def keysdb_lock(annexdir: Path, mode: int) -> Iterator[None]:
    """git-annex's `keysdb.lck`, exclusive and blocking (withExclusiveLock); threads of this
    process (a gateway's connections) also take an RLock, since fcntl locks are per process."""
    lockfile = annexdir / "keysdb.lck"
    with _thread_lock(lockfile):
        annexdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lockfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _connect(db: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a read never holds a write lock.
    return sqlite3.connect(db, timeout=_BUSY_TIMEOUT, isolation_level=None)


def create(dbdir: Path, file_mode: int) -> None:
    """initDb: build the database in `keysdb.tmp`, WAL mode, then rename it into place, so no
    reader ever sees a database without its tables. Call with `keysdb.lck` held."""
    tmpdir = dbdir.with_name(dbdir.name + ".tmp")
    shutil.rmtree(tmpdir, ignore_errors=True)
    tmpdir.mkdir(parents=True)
    conn = _connect(tmpdir / "db")
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        for stmt in _SCHEMA:
            conn.execute(stmt)
    finally:
        conn.close()
    # sqlite ignores a less restrictive umask; git-annex sets the file's mode explicitly too.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmpdir / "db", file_mode & ~umask)
    shutil.rmtree(dbdir, ignore_errors=True)
    os.rename(tmpdir, dbdir)


def open_db(annexdir: Path, file_mode: int) -> KeysDb:
    """Open the database, creating it when missing (call with `keysdb.lck` held)."""
    dbdir = annexdir / "keysdb"
    if not (dbdir / "db").is_file():
        create(dbdir, file_mode)
    return KeysDb(_connect(dbdir / "db"))
