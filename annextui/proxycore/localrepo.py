"""`LocalRepo`: the few facts about a repository on this machine the shell needs, read cheaply.

Start-up cost matters (the shell runs once per ssh connection): git config is read with one
`git config` call (the repository's own settings told apart by their scope), and `full()`
hands that to `backend.repo.Repository`, which imports dulwich only when objects or refs are
read or written through it (a gateway's branch reads go through `git cat-file`).

In a long-running server (`keep_repositories()`), `full()` opens the dulwich repository once
per thread and keeps it: opening one (and parsing
its config) was half of a p2phttp cluster request. One per thread, because dulwich's object
store keeps an unlocked cache of open packs, refreshed (packs opened, closed and evicted) by
any read that misses: two threads sharing it could read a pack another has just closed. A
long-running server replaces the `LocalRepo` when the git config changes (repocache.py), so
the kept repositories never outlive the config they read, and calls `release_packs()` after
each request: the open pack files (four descriptors each) are closed, so descriptors do not
grow with the number of threads; the next read reopens what it needs.

Kept or not, their packs are closed at exit (backend/repo.py says why: the hang of the
two-gateway cluster test, with repositories kept in the shell).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from annextui.proxycore.objectstore import ObjectStore, Sharing

if TYPE_CHECKING:
    from annextui.backend.repo import Repository

_TRUE = {"true", "yes", "on", "1", ""}
_opened = threading.local()  # .repos: the dulwich repositories this thread keeps (full())
_keeping = False  # keep_repositories(): a long-running server


class RepoError(Exception):
    """The directory is not a usable git(-annex) repository; the message is git-annex's."""


def expand_repo_path(directory: str, home: str | None = None) -> str:
    """repoAbsPath: `~`, `~user`, `/~/` and `/~user/` expand to homes; relative is from home."""
    home = home or os.environ.get("HOME") or os.path.expanduser("~")
    d = directory
    if d.startswith("/~"):
        d = d[1:]
    if d.startswith("~"):
        name, sep, rest = d[1:].partition("/")
        if name:
            try:
                import pwd

                base = pwd.getpwnam(name).pw_dir
            except (KeyError, ImportError):
                return os.path.join(home, directory)
        else:
            base = home
        d = os.path.join(base, rest) if sep else base
    return os.path.join(home, d)


def _git_config(gitdir: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Every setting git applies to the repository, and those of its own config file (what
    `backend.repo.Repository.config` holds), from one `git config` run."""
    proc = subprocess.run(
        ["git", f"--git-dir={gitdir}", "config", "--null", "--list", "--show-scope"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    if proc.returncode != 0:
        raise RepoError(proc.stderr.decode(errors="replace").strip())
    out: dict[str, list[str]] = {}
    own: dict[str, list[str]] = {}
    items = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    # --show-scope: each setting is two NUL-terminated fields, its scope and `name\nvalue`
    for scope, item in zip(items[::2], items[1::2], strict=False):
        name, nl, value = item.partition("\n")
        key, value = _norm_key(name), value if nl else ""
        out.setdefault(key, []).append(value)
        if scope in _OWN_SCOPES:
            own.setdefault(key, []).append(value)
    return out, own


_OWN_SCOPES = frozenset({"local", "worktree"})  # the repository's config files


def _norm_key(name: str) -> str:
    section, _, rest = name.partition(".")
    sub, dot, key = rest.rpartition(".")
    return f"{section.lower()}.{sub + '.' if dot else ''}{key.lower()}"


class LocalRepo:
    """The few facts about a repository the shell needs, read cheaply."""

    def __init__(
        self,
        top: Path,
        gitdir: Path,
        config: dict[str, list[str]],
        own_config: dict[str, list[str]] | None = None,
    ) -> None:
        self.top = top
        self.gitdir = gitdir
        self.config = config
        # the repository's own config file alone (None: not read), for `full()`
        self._own_config = own_config
        self.bare = self.config_bool("core.bare", default=False) and top == gitdir
        self._store: ObjectStore | None = None
        self._per_thread = threading.local()  # .full: this thread's dulwich Repository

    @classmethod
    def open(cls, directory: str, home: str | None = None) -> LocalRepo:
        """Find the repository at `directory` as git-annex-shell does (fromAbsPath + config);
        `~` and relative paths from `home` (default $HOME)."""
        path = expand_repo_path(directory, home)
        canon = path.rstrip("/") or "/"
        if canon.endswith("/.git") and not os.path.isdir(os.path.join(canon, ".git")):
            path = os.path.dirname(canon)
        elif not os.path.isdir(path) and path == canon:
            path = canon + ".git"
        p = Path(path)
        gitdir: Path | None = None
        dotgit = p / ".git"
        if dotgit.is_dir():
            gitdir = dotgit
        elif dotgit.is_file():
            text = dotgit.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                g = Path(text[len("gitdir:") :].strip())
                gitdir = g if g.is_absolute() else (p / g)
        elif (p / "HEAD").is_file() and (p / "objects").is_dir():
            gitdir = p
        if gitdir is None or not gitdir.is_dir():
            raise RepoError(_unreadable(directory))
        gitdir = Path(os.path.realpath(gitdir))
        top = Path(os.path.realpath(p))
        try:
            config, own = _git_config(gitdir)
        except (RepoError, OSError) as exc:
            raise RepoError(_unreadable(directory)) from exc
        return cls(top if gitdir != top else gitdir, gitdir, config, own)

    # -- config --------------------------------------------------------------------------------
    def config_get(self, name: str, default: str | None = None) -> str | None:
        values = self.config.get(_norm_key(name))
        return values[-1] if values else default

    def config_bool(self, name: str, default: bool = False) -> bool:
        v = self.config_get(name)
        if v is None:
            return default
        return v.strip().lower() in _TRUE

    @property
    def uuid(self) -> str | None:
        return self.config_get("annex.uuid") or None

    @property
    def version(self) -> int | None:
        v = self.config_get("annex.version")
        return int(v) if v and v.isdigit() else None

    @property
    def gcrypt_id(self) -> str:
        return self.config_get("core.gcrypt-id") or ""

    @property
    def annexdir(self) -> Path:
        return self.gitdir / "annex"

    def has_annex_branch(self) -> bool:
        """Annex.Branch.hasSibling: a `git-annex` branch here or from any remote."""
        if (self.gitdir / "refs" / "heads" / "git-annex").exists():
            return True
        remotes = self.gitdir / "refs" / "remotes"
        with contextlib.suppress(OSError):
            for r in os.listdir(remotes):
                if (remotes / r / "git-annex").is_file():
                    return True
        packed = self.gitdir / "packed-refs"
        with contextlib.suppress(OSError):
            for line in packed.read_bytes().splitlines():
                name = line.split(b" ", 1)[-1]
                if name.endswith(b"/git-annex") and name.startswith(b"refs/"):
                    return True
        return False

    def is_initialized(self) -> bool:
        """isInitialized: annex.version set, or a git-annex branch to auto-initialise from."""
        return self.version is not None or self.has_annex_branch()

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            levels = 1 if self.config_bool("annex.tune.objecthash1") else 2
            crippled = self.config_bool("annex.crippledfilesystem")
            self._store = ObjectStore(
                self.gitdir,
                bare=self.bare or crippled,
                hash_lower_only=self.config_bool("annex.tune.objecthashlower"),
                hash_levels=levels,
                sharing=Sharing.from_config(self.config_get("core.sharedrepository")),
            )
        return self._store

    def full(self) -> Repository:
        """This thread's dulwich-backed `Repository` (imported on demand: it is slow to
        import); in a long-running server opened at the first call on the thread and kept
        (see the module's note)."""
        if not _keeping:
            return self._open_full()
        repo: Repository | None = getattr(self._per_thread, "full", None)
        if repo is None:
            repo = self._per_thread.full = self._open_full()
            kept: list[tuple[weakref.ref[LocalRepo], Repository]] | None = getattr(
                _opened, "repos", None
            )
            if kept is None:
                kept = _opened.repos = []
            kept.append((weakref.ref(self), repo))
        return repo

    def _open_full(self) -> Repository:
        from annextui.backend.repo import Repository

        if self._own_config is None:
            return Repository(self.gitdir if self.bare else self.top)
        # The layout and config are known: no dulwich until something reads objects with it.
        top = self.gitdir if self.bare else self.top
        return Repository.from_layout(
            self.gitdir, top, {k: list(v) for k, v in self._own_config.items()}
        )

    def reload(self) -> None:
        self.config, self._own_config = _git_config(self.gitdir)
        self._store = None
        self._per_thread = threading.local()  # the kept repositories read the old config


def keep_repositories() -> None:
    """From now on `full()` keeps its repository per thread (a long-running server). Not in
    annextui-shell: a session calls `full()` about once per repository (the gateway's state,
    each node's journal), so keeping saves nothing measurable there (bench_gateway --profile,
    200 x 4 KiB get: best 3.62 s kept, 3.39 s not, side by side)."""
    global _keeping
    _keeping = True


def release_packs() -> None:
    """Close the pack files of every repository this thread keeps (they stay usable: dulwich
    reopens packs on the next read). Those of `LocalRepo`s no longer in use are let go."""
    kept: list[tuple[weakref.ref[LocalRepo], Repository]] = getattr(_opened, "repos", None) or []
    for _, repo in kept:
        repo.close_packs()
    _opened.repos = [(owner, repo) for owner, repo in kept if owner() is not None]


def _unreadable(directory: str) -> str:
    host = os.uname().nodename or "unknown"
    return (
        f"failed to read git config of git repository in {host} on {directory}; "
        "perhaps this repository is not set up correctly or has moved"
    )
