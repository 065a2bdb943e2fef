"""A git-annex repository on disk: its git directory, git config and remotes.

Reading goes through dulwich (no subprocess on the shell's hot path); writing git config goes
through `git config`, which takes git's own `config.lock`.

Every object store a `Repository` opened that is still alive at exit has its pack files closed
then (`atexit`, while modules still exist). dulwich's object store outlives its `Repo` (it
sits in a reference cycle, freed only by the garbage collector), and left to the interpreter's
teardown its `__del__` closes the packs after an `import warnings` that, `sys.modules` being
emptied by then, needs the global import lock. A daemon thread stopped by the shutdown in the
middle of an import (annextui-shell's ssh-prewarm thread importing paramiko while a short
session ends) owns that lock for ever, and the exiting process waits on it for ever: the hang
of the two-gateway cluster test (py-spy: the main thread in `PackBasedObjectStore.__del__` ->
`_get_module_lock`; gdb: the import lock's owner was the ssh-prewarm thread, gone).
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import subprocess
import threading
import weakref
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from annextui.values import Value, value_field

if TYPE_CHECKING:
    from dulwich.object_store import BaseObjectStore
    from dulwich.repo import Repo


class NotAnnexRepository(Exception):
    """The path is not a git repository, or not a git-annex one."""


class GitConfigError(RuntimeError):
    """`git config` refused a change (e.g. it cannot take `config.lock`); nothing was written."""


def require_directory(path: str | os.PathLike[str]) -> Path:
    """`path` as a directory to start from, as `git -C` takes it: a missing one is an error.

    Searching upward from a path that does not exist would find the enclosing repository and
    act on it instead (a typo in `-C` must never change another repository).
    """
    p = Path(path)
    if not p.is_dir():
        reason = "Not a directory" if p.exists() else "No such file or directory"
        raise NotAnnexRepository(f"cannot change to '{path}': {reason}")
    return p


_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def local_path_of_url(url: str | None, base: Path | None = None) -> Path | None:
    """A remote URL as a path on this machine, or None when it names another host.

    As git reads it: `file://` and plain paths are local; a URL scheme, or a colon before the
    first slash (scp-like `host:path`), names another host. `~` is expanded as git-annex
    expands it. A relative path is relative to `base` (the repository's top), normalised.
    """
    if not url:
        return None
    if url.startswith("file://"):
        url = url[len("file://") :]
    elif _URL_SCHEME.match(url):
        return None
    elif ":" in url.split("/", 1)[0] and not url.startswith(("/", ".")):
        return None  # scp-like host:path
    p = Path(os.path.expanduser(url)) if url.startswith("~") else Path(url)
    if not p.is_absolute() and base is not None:
        p = Path(os.path.normpath(base / p))
    return p


class Remote(Value):
    name: str
    url: str | None
    uuid: str | None
    options: dict[str, str] = value_field(default_factory=dict)  # remote.NAME.* (lowercased keys)

    def option(self, name: str, default: str | None = None) -> str | None:
        return self.options.get(name.lower(), default)

    def flag(self, name: str) -> bool:
        return (self.option(name) or "").lower() in {"true", "yes", "on", "1"}

    @property
    def is_local_path(self) -> bool:
        return self.local_path() is not None

    def local_path(self, base: Path | None = None) -> Path | None:
        """The repository this remote's URL names on this machine, or None for a URL of
        another host (see `local_path_of_url`)."""
        return local_path_of_url(self.url, base)

    @property
    def cluster_nodes(self) -> list[str]:
        """Names of the clusters this remote is configured to be a node of."""
        return (self.option("annex-cluster-node") or "").split()

    @property
    def cluster_gateways(self) -> list[str]:
        return (self.option("annex-cluster-gateway") or "").split()

    @property
    def cost(self) -> float:
        text = self.option("annex-cost")
        if text:
            try:
                return float(text)
            except ValueError:
                pass
        return 100.0 if self.is_local_path else 200.0


_open_stores: weakref.WeakSet[BaseObjectStore] = weakref.WeakSet()
_open_stores_mutex = threading.Lock()
_closing_at_exit = False  # close_open_stores registered with atexit


def _close_at_exit(store: BaseObjectStore) -> None:
    global _closing_at_exit
    with _open_stores_mutex:
        if not _closing_at_exit:
            atexit.register(close_open_stores)
            _closing_at_exit = True
        _open_stores.add(store)


def close_open_stores() -> None:
    """Close the pack files of every object store still alive, whatever thread opened it (at
    exit: nothing reads them any more; a later read would reopen them)."""
    with _open_stores_mutex:
        stores = list(_open_stores)
    for store in stores:
        store.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _open_dulwich(path: str) -> Repo:
    from dulwich.repo import Repo

    repo = Repo(path)
    _close_at_exit(repo.object_store)
    return repo


class Repository:
    """A git(-annex) repository. Cheap to open; config is read once and cached."""

    _git: Repo | None  # dulwich's, opened by __init__ or at the first use of `git`

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            git = self._git = _open_dulwich(str(path))
        except Exception as exc:  # dulwich raises NotGitRepository and OSError variants
            raise NotAnnexRepository(f"{path}: not a git repository") from exc
        self.gitdir = Path(git.controldir()).resolve()
        self.bare = git.bare
        self.top = Path(git.path).resolve()

    @classmethod
    def from_layout(cls, gitdir: Path, top: Path, config: dict[str, list[str]]) -> Repository:
        """A repository whose layout and local git config the caller has read already (the
        shell's `LocalRepo`, from one `git config` run): dulwich, a third of a shell
        session's start-up to import, is opened only if refs or objects are read through
        it (`git`). `gitdir` and `top` are resolved; `top == gitdir` for a bare repository,
        as dulwich opens it. `config` is the local file's, as `config` reads it."""
        repo = cls.__new__(cls)
        repo._git = None
        repo.gitdir = gitdir
        repo.top = top
        repo.bare = top == gitdir
        repo.__dict__["config"] = config
        return repo

    @property
    def git(self) -> Repo:
        """The dulwich repository (opened at the first use by `from_layout`'s)."""
        git = self._git
        if git is None:
            git = self._git = _open_dulwich(str(self.top))
        return git

    def close_packs(self) -> None:
        """Close the pack files dulwich holds open, if it was opened at all (it reopens them
        at the next read)."""
        if self._git is not None:
            self._git.object_store.close()

    @classmethod
    def discover(cls, path: str | os.PathLike[str] = ".") -> Repository:
        """Open the repository containing the directory `path` (like git's own search upward)."""
        p = require_directory(path).resolve()
        for candidate in (p, *p.parents):
            if (candidate / ".git").exists() or (
                (candidate / "HEAD").is_file() and (candidate / "objects").is_dir()
            ):
                return cls(candidate)
        raise NotAnnexRepository(f"{path}: not a git repository")

    # -- paths -------------------------------------------------------------------------------
    @property
    def annexdir(self) -> Path:
        return self.gitdir / "annex"

    # -- git config --------------------------------------------------------------------------
    @cached_property
    def config(self) -> dict[str, list[str]]:
        """Local git config flattened to `section.subsection.key` -> values (git's key case)."""
        cfg = self.git.get_config()
        out: dict[str, list[str]] = {}
        for section in cfg.sections():
            names = [_text(s) for s in section]
            prefix = names[0].lower() + "".join("." + s for s in names[1:])
            for key, value in cfg.items(section):
                full = f"{prefix}.{_text(key).lower()}"
                out.setdefault(full, []).append(_text(value))
        return out

    def config_get(self, name: str, default: str | None = None) -> str | None:
        section, _, rest = name.partition(".")
        sub, _, key = rest.rpartition(".")
        full = f"{section.lower()}.{sub + '.' if sub else ''}{key.lower()}"
        values = self.config.get(full)
        return values[-1] if values else default

    def config_bool(self, name: str, default: bool = False) -> bool:
        value = self.config_get(name)
        if value is None:
            return default
        return value.lower() in {"true", "yes", "on", "1", ""}

    def config_set(self, name: str, value: str) -> None:
        self._git_config(name, value)

    def config_unset(self, name: str) -> None:
        self._git_config("--unset-all", name, ok_codes=(0, 5))

    def _git_config(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> None:
        proc = subprocess.run(
            ["git", "config", "--file", str(self.gitdir / "config"), *args],
            capture_output=True,
            text=True,
        )
        if proc.returncode not in ok_codes:
            detail = " ".join(proc.stderr.split())  # one line: it ends up in a one-line error
            raise GitConfigError(f"git config {' '.join(args)} failed: {detail}")
        self.__dict__.pop("config", None)
        self.__dict__.pop("remotes", None)

    def require_writable(self) -> None:
        """Raise PermissionError naming the first place a change would need to write but cannot.

        Checked before a command writes anything, so that a repository we may only read is
        refused as a whole instead of being left half-changed (git config written, journal not).
        The check uses the effective ids, as the writes themselves would.
        """
        effective = os.access in os.supports_effective_ids
        places = (
            self.gitdir,  # config.lock, packed-refs
            self.gitdir / "refs" / "heads",
            self.gitdir / "objects",
            self.annexdir,
            self.annexdir / "journal",
            self.annexdir / "othertmp",
            self.annexdir / "journal.lck",
            self.annexdir / "annextui",  # journal-base, caches
        )
        for place in places:
            if place.exists() and not os.access(place, os.W_OK, effective_ids=effective):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(place))

    def reload_config(self) -> None:
        self.__dict__.pop("config", None)
        self.__dict__.pop("remotes", None)

    # -- annex identity ----------------------------------------------------------------------
    @property
    def uuid(self) -> str | None:
        return self.config_get("annex.uuid") or None

    @property
    def is_annex(self) -> bool:
        return self.uuid is not None or b"refs/heads/git-annex" in self.git.refs

    def require_annex(self) -> str:
        u = self.uuid
        if not u:
            raise NotAnnexRepository(f"{self.top}: not a git-annex repository (no annex.uuid)")
        return u

    @property
    def version(self) -> int | None:
        v = self.config_get("annex.version")
        return int(v) if v and v.isdigit() else None

    # -- remotes -----------------------------------------------------------------------------
    @cached_property
    def remotes(self) -> dict[str, Remote]:
        out: dict[str, Remote] = {}
        prefix = "remote."
        grouped: dict[str, dict[str, str]] = {}
        for full, values in self.config.items():
            if not full.startswith(prefix):
                continue
            name, _, key = full[len(prefix) :].rpartition(".")
            if name:
                grouped.setdefault(name, {})[key] = values[-1]
        for name, opts in grouped.items():
            out[name] = Remote(
                name=name,
                url=opts.get("url"),
                uuid=opts.get("annex-uuid") or opts.get("annex-config-uuid"),
                options=opts,
            )
        return out

    def learn_local_remote_uuids(self) -> None:
        """Cache `remote.NAME.annex-uuid` for local path remotes, as git-annex does on first use."""
        for r in list(self.remotes.values()):
            if r.uuid or not r.url or not r.is_local_path:
                continue
            path = r.local_path(self.top)
            if path is None:
                continue
            try:
                other = Repository(path)
            except NotAnnexRepository:
                continue
            if other.uuid:
                self.config_set(f"remote.{r.name}.annex-uuid", other.uuid)

    @property
    def clusters(self) -> dict[str, str]:
        """Locally configured clusters: name -> cluster UUID (`annex.cluster.NAME`)."""
        out = {}
        for full, values in self.config.items():
            if full.startswith("annex.cluster."):
                out[full[len("annex.cluster.") :]] = values[-1]
        return out
