"""Running the real git and git-annex in tests.

Everything here works on an explicit environment (``env``): a fixed git identity, ``HOME``
pointed at a temp dir with a minimal ``.gitconfig`` and ``PATH`` starting with a directory of
direct links to the git-annex binary (the PyPI launcher costs ~40 ms per call, a pyenv shim
~120 ms; the binary itself ~5 ms). ``AnnexEnv`` bundles such an environment with the helpers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support import procs

if TYPE_CHECKING:
    import pytest

    from tests.support.sshd import Sshd

StrPath = str | os.PathLike[str]

DEFAULT_TIMEOUT = 180.0
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "annextui test",
    "GIT_AUTHOR_EMAIL": "test@annextui.invalid",
    "GIT_COMMITTER_NAME": "annextui test",
    "GIT_COMMITTER_EMAIL": "test@annextui.invalid",
}
ANNEX_PROGRAMS = ("git-annex", "git-annex-shell", "git-remote-annex", "git-remote-tor-annex")

# inherited variables that would change how git, git-annex or ssh behave
_SCRUB_PREFIXES = ("GIT_", "SSH_", "GNUPG", "GPG_")
_SCRUB = {"EMAIL", "DISPLAY", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "MAGIC"}

GITCONFIG = """\
[user]
\tname = annextui test
\temail = test@annextui.invalid
[init]
\tdefaultBranch = main
[annex]
\tsshcaching = {sshcaching}
[advice]
\tdetachedHead = false
\tskippedCherryPicks = false
[gc]
\tauto = 0
\tautoDetach = false
[maintenance]
\tauto = false
[commit]
\tgpgsign = false
[tag]
\tgpgsign = false
[pull]
\trebase = false
[color]
\tui = false
[protocol "file"]
\tallow = always
[safe]
\tdirectory = *
"""


class CommandFailed(AssertionError):
    """A command exited non-zero (or timed out); the message carries its output."""

    def __init__(
        self,
        argv: Sequence[str],
        cwd: StrPath | None,
        returncode: int | None,
        stdout: str,
        stderr: str,
        note: str = "",
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        status = note or f"exit status {returncode}"
        super().__init__(
            f"command failed ({status}): {_shell_join(argv)}\n"
            f"  cwd: {cwd or os.getcwd()}\n"
            f"--- stdout ---\n{_tail(stdout)}\n--- stderr ---\n{_tail(stderr)}"
        )


def _tail(text: str, limit: int = 12000) -> str:
    text = text.rstrip("\n")
    if len(text) > limit:
        return f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]
    return text or "(empty)"


def _shell_join(argv: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Locating git-annex


def find_git_annex() -> Path | None:
    """The git-annex program to use: the PyPI wheel's binary, else `git-annex` on PATH."""
    try:
        import git_annex  # type: ignore[import-not-found]

        exe = Path(git_annex.__file__).parent / "git-annex"
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
    except ImportError:
        pass
    found = shutil.which("git-annex")
    return Path(found) if found else None


def make_fast_bin(dest: Path, exe: Path) -> Path:
    """A directory of links named git-annex, git-annex-shell, ... to the multi-call binary."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ANNEX_PROGRAMS:
        link = dest / name
        if not link.exists():
            link.symlink_to(exe)
    return dest


def magic_db(exe: Path) -> Path | None:
    """The libmagic database the PyPI launcher would export as $MAGIC."""
    db = exe.resolve().parent / "magic.mgc"
    return db if db.is_file() else None


# ---------------------------------------------------------------------------------------------
# Environments


def write_gitconfig(home: Path, *, sshcaching: bool = False, extra: str = "") -> Path:
    """A minimal ~/.gitconfig (identity, init.defaultBranch=main, annex.sshcaching, no gc)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / ".gitconfig"
    path.write_text(GITCONFIG.format(sshcaching="true" if sshcaching else "false") + extra)
    return path


def default_path(bin_dirs: Iterable[StrPath] = (), base: str | None = None) -> str:
    """`bin_dirs`, this interpreter's scripts directory, then the inherited PATH."""
    parts = [str(d) for d in bin_dirs]
    parts.append(str(Path(sys.executable).parent))
    parts.extend((base if base is not None else os.environ.get("PATH", "")).split(os.pathsep))
    seen: set[str] = set()
    out = []
    for p in parts:
        if p and p not in seen:
            seen.add(p)
            out.append(p)
    return os.pathsep.join(out)


def base_env(
    home: Path,
    *,
    bin_dirs: Iterable[StrPath] = (),
    vector_clock: int | str | None = None,
    magic: Path | None = None,
    inherit: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment for git/git-annex: inherited minus GIT_*/SSH_* plus the test settings."""
    src = os.environ if inherit is None else inherit
    env = {k: v for k, v in src.items() if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB}
    env.update(GIT_IDENTITY)
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    env["PATH"] = default_path(bin_dirs, src.get("PATH", ""))
    if magic is not None:
        env["MAGIC"] = str(magic)
    if vector_clock is not None:
        env["GIT_ANNEX_VECTOR_CLOCK"] = str(vector_clock)
    return env


# ---------------------------------------------------------------------------------------------
# Running commands


def run(
    cmd: Sequence[StrPath],
    cwd: StrPath | None = None,
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    env_extra: Mapping[str, str | None] | None = None,
    input: str | bytes | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd`, capturing text output; raise CommandFailed (with both outputs) on failure.

    The command runs in its own session with stdin from /dev/null unless `input` is given;
    on timeout its whole process group is killed. `env_extra` values of None unset a variable.
    """
    res = run_bytes(
        cmd, cwd, check=False, env=env, env_extra=env_extra, input=input, timeout=timeout
    )
    out = subprocess.CompletedProcess(
        res.args, res.returncode, _decode(res.stdout), _decode(res.stderr)
    )
    if check and res.returncode != 0:
        raise CommandFailed(res.args, cwd, res.returncode, out.stdout, out.stderr)
    return out


def run_bytes(
    cmd: Sequence[StrPath],
    cwd: StrPath | None = None,
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    env_extra: Mapping[str, str | None] | None = None,
    input: str | bytes | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """Like run() but stdout/stderr stay bytes."""
    argv = [os.fspath(c) for c in cmd]
    full_env = dict(os.environ if env is None else env)
    for k, v in (env_extra or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise CommandFailed(argv, cwd, None, "", str(exc), note=f"cannot start: {exc}") from None
    with proc:
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # a descendant in another session holds a pipe
                proc.kill()
                out, err = b"", b""
            raise CommandFailed(
                argv,
                cwd,
                proc.returncode,
                _decode(out),
                _decode(err),
                note=f"timed out after {timeout}s",
            ) from None
        except BaseException:
            # pytest-timeout's failure, an interrupt: Popen's exit would wait for the command
            # without a bound
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
    res = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise CommandFailed(argv, cwd, proc.returncode, _decode(out), _decode(err))
    return res


def git(repo: StrPath, *args: StrPath, env: Mapping[str, str] | None = None, **kw: Any) -> str:
    """`git -C repo ARGS`; returns stdout with the final newline stripped."""
    return run(["git", "-C", repo, *args], env=env, **kw).stdout.removesuffix("\n")


def git_annex(
    repo: StrPath, *args: StrPath, env: Mapping[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """`git annex ARGS` in `repo`."""
    return run(["git", "annex", *args], cwd=repo, env=env, **kw)


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    """One JSON object per non-empty line (git-annex --json output)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise AssertionError(f"line {n} is not JSON ({exc}): {line!r}\n{text}") from None
    return out


def git_annex_json(
    repo: StrPath,
    *args: StrPath,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    **kw: Any,
) -> list[dict[str, Any]]:
    """`git annex ARGS --json --json-error-messages` in `repo`, one dict per output line.

    With check=True a non-zero exit raises CommandFailed (use check=False to inspect
    "success": false records).
    """
    argv = [os.fspath(a) for a in args]
    end = argv.index("--") if "--" in argv else len(argv)  # options go before a "--"
    for opt in ("--json-error-messages", "--json"):
        if opt not in argv[:end]:
            argv.insert(end, opt)
    res = git_annex(repo, *argv, env=env, check=check, **kw)
    return parse_json_lines(res.stdout)


# ---------------------------------------------------------------------------------------------
# Repositories


def make_annex_repo(
    path: StrPath,
    uuid: str | None = None,
    description: str | None = None,
    *,
    bare: bool = False,
    env: Mapping[str, str] | None = None,
    config: Mapping[str, str] | None = None,
) -> Path:
    """`git init` + optional `git config annex.uuid UUID` (+ `config`) + `git annex init`."""
    p = Path(path)
    run(["git", "init", "-q", *(["--bare"] if bare else []), p], env=env)
    _configure(p, uuid, config, env)
    git_annex(p, "init", "-q", *([description] if description else []), env=env)
    return p


def _configure(
    repo: Path, uuid: str | None, config: Mapping[str, str] | None, env: Mapping[str, str] | None
) -> None:
    settings = dict(config or {})
    if uuid:
        settings["annex.uuid"] = uuid
    for k, v in settings.items():
        run(["git", "-C", repo, "config", k, v], env=env)


def clone(
    src: StrPath,
    dest: StrPath,
    *,
    uuid: str | None = None,
    description: str | None = None,
    annex_init: bool = True,
    bare: bool = False,
    origin: str | None = None,
    config: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """`git clone SRC DEST` (ssh:// URLs work through the sshd fixture), then `git annex init`."""
    d = Path(dest)
    argv: list[StrPath] = ["git", "clone", "-q"]
    if bare:
        argv.append("--bare")
    if origin:
        argv += ["--origin", origin]
    run([*argv, os.fspath(src), d], env=env)
    _configure(d, uuid, config, env)
    if annex_init:
        git_annex(d, "init", "-q", *([description] if description else []), env=env)
    return d


def write_files(repo: StrPath, files: Mapping[str, bytes | str]) -> list[str]:
    """Create/overwrite files (parents made as needed); returns the relative names."""
    root = Path(repo)
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():  # an annexed (locked) file: replace the link
            target.unlink()
        if isinstance(content, str):
            content = content.encode()
        target.write_bytes(content)
    return list(files)


def add_files(
    repo: StrPath,
    files: Mapping[str, bytes | str],
    *,
    annex: bool = True,
    commit: bool = True,
    message: str = "add files",
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Write `files`, `git annex add` them (or `git add` with annex=False) and commit.

    Returns {file: key} for annexed files (empty with annex=False).
    """
    names = write_files(repo, files)
    keys: dict[str, str] = {}
    if not names:
        return keys
    if annex:
        # --force-large: annex even if annex.largefiles would put them in git
        for rec in git_annex_json(repo, "add", "--force-large", "--", *names, env=env):
            if rec.get("key") and rec.get("file"):
                keys[rec["file"]] = rec["key"]
    else:
        run(["git", "-C", repo, "add", "--", *names], env=env)
    if commit:
        run(["git", "-C", repo, "commit", "-q", "-m", message], env=env)
    return keys


def add_unlocked_files(
    repo: StrPath,
    files: Mapping[str, bytes | str],
    *,
    executable: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Write `files` (`executable` ones mode 0755), `git annex add` them unlocked and commit;
    returns {file: key}. A second commit records the x bits: git annex add stages 100644."""
    write_files(repo, files)
    for name in executable:
        os.chmod(Path(repo) / name, 0o755)
    recs = git_annex_json(
        repo, "add", "-c", "annex.addunlocked=true", "--force-large", "--", *files, env=env
    )
    run(["git", "-C", repo, "commit", "-q", "-m", "unlocked files"], env=env)
    if executable:
        run(["git", "-C", repo, "commit", "-q", "-a", "-m", "x bits"], env=env)
    return {r["file"]: r["key"] for r in recs if r.get("key") and r.get("file")}


# ---------------------------------------------------------------------------------------------
# The per-test bundle


@dataclass
class AnnexEnv:
    """A test's environment for real git/git-annex runs; methods use `self.env`.

    root: the test's temp dir (repos go below it); home: HOME with a minimal .gitconfig.
    """

    root: Path
    home: Path
    env: dict[str, str]
    bin_dir: Path | None = None
    _sshd_roots: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        bin_dir: Path | None = None,
        magic: Path | None = None,
        sshcaching: bool = False,
        vector_clock: int | str | None = None,
    ) -> AnnexEnv:
        home = root / ".home"
        write_gitconfig(home, sshcaching=sshcaching)
        env = base_env(
            home, bin_dirs=[bin_dir] if bin_dir else [], vector_clock=vector_clock, magic=magic
        )
        return cls(root=root, home=home, env=env, bin_dir=bin_dir)

    # -- environment ------------------------------------------------------------------------
    @property
    def git_annex_shell(self) -> str:
        """The real git-annex-shell beside the git-annex this environment runs."""
        assert self.bin_dir is not None, "made without git-annex's directory (bin_dir)"
        return str(self.bin_dir / "git-annex-shell")

    @property
    def vector_clock(self) -> str | None:
        return self.env.get("GIT_ANNEX_VECTOR_CLOCK")

    @vector_clock.setter
    def vector_clock(self, value: int | str | None) -> None:
        """Fix git-annex's branch timestamps (GIT_ANNEX_VECTOR_CLOCK); None: real time."""
        if value is None:
            self.env.pop("GIT_ANNEX_VECTOR_CLOCK", None)
        else:
            self.env["GIT_ANNEX_VECTOR_CLOCK"] = str(value)

    def fix_git_dates(self, epoch: int | None) -> None:
        """Fix GIT_AUTHOR_DATE/GIT_COMMITTER_DATE (for reproducible commit shas); None unsets."""
        for k in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
            if epoch is None:
                self.env.pop(k, None)
            else:
                self.env[k] = f"@{epoch} +0000"

    def global_config(self, key: str, value: str) -> None:
        """`git config --global KEY VALUE` in this env's HOME (e.g. annex.sshcaching true)."""
        run(["git", "config", "--global", key, value], env=self.env)

    def prepend_path(self, *dirs: StrPath) -> None:
        self.env["PATH"] = os.pathsep.join([*(os.fspath(d) for d in dirs), self.env["PATH"]])

    def use_ssh(self, sshd: Sshd) -> None:
        """Route `ssh` (git, git-annex, rsync) through the sshd fixture's config and hosts.

        Leftover ssh processes naming this test's root are killed at teardown.
        """
        self.env = sshd.env(self.env)
        self._sshd_roots.append(str(sshd.root))

    def cleanup(self) -> None:
        """Kill ssh processes (ControlMasters) left behind by this test's runs.

        Those are ssh clients naming this test's root, or naming the sshd fixture's root (the
        wrapper's -F) while running in a directory below this test's root (git-annex passes
        its ControlPath relative to the repository).
        """
        if not self._sshd_roots:
            return
        root = str(self.root)

        def ours(p: procs.ProcInfo) -> bool:
            if p.exe_name != "ssh":
                return False
            if root in p.cmdline:
                return True
            if any(r in p.cmdline for r in self._sshd_roots):
                where = procs.cwd(p.pid)
                return where is not None and procs.under(where, root)
            return False

        procs.kill_pids(p.pid for p in procs.find(ours))

    # -- running ----------------------------------------------------------------------------
    def run(
        self,
        cmd: Sequence[StrPath],
        cwd: StrPath | None = None,
        *,
        check: bool = True,
        env_extra: Mapping[str, str | None] | None = None,
        input: str | bytes | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        return run(
            cmd, cwd, check=check, env=self.env, env_extra=env_extra, input=input, timeout=timeout
        )

    def git(self, repo: StrPath, *args: StrPath, **kw: Any) -> str:
        return git(repo, *args, env=self.env, **kw)

    def annex(self, repo: StrPath, *args: StrPath, **kw: Any) -> subprocess.CompletedProcess[str]:
        return git_annex(repo, *args, env=self.env, **kw)

    def annex_json(self, repo: StrPath, *args: StrPath, **kw: Any) -> list[dict[str, Any]]:
        return git_annex_json(repo, *args, env=self.env, **kw)

    # -- repositories -----------------------------------------------------------------------
    def _path(self, path: StrPath) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def make_annex_repo(
        self,
        path: StrPath,
        uuid: str | None = None,
        description: str | None = None,
        *,
        bare: bool = False,
        config: Mapping[str, str] | None = None,
    ) -> Path:
        """Relative paths are below `root`."""
        return make_annex_repo(
            self._path(path), uuid, description, bare=bare, env=self.env, config=config
        )

    def clone(
        self,
        src: StrPath,
        dest: StrPath,
        *,
        uuid: str | None = None,
        description: str | None = None,
        annex_init: bool = True,
        bare: bool = False,
        origin: str | None = None,
        config: Mapping[str, str] | None = None,
    ) -> Path:
        return clone(
            src,
            self._path(dest),
            uuid=uuid,
            description=description,
            annex_init=annex_init,
            bare=bare,
            origin=origin,
            config=config,
            env=self.env,
        )

    def add_files(
        self,
        repo: StrPath,
        files: Mapping[str, bytes | str],
        *,
        annex: bool = True,
        commit: bool = True,
        message: str = "add files",
    ) -> dict[str, str]:
        return add_files(repo, files, annex=annex, commit=commit, message=message, env=self.env)


@contextlib.contextmanager
def ssh_world(
    factory: pytest.TempPathFactory, name: str, git_annex_bin: Path, sshd: Sshd
) -> Iterator[tuple[Path, AnnexEnv]]:
    """A fresh directory and an `AnnexEnv` in it whose git-annex reaches the shared sshd's
    hosts, for a module-scoped fixture: host aliases added inside are removed again and the
    env's processes cleaned up at the end, whatever happens."""
    root = Path(os.path.realpath(factory.mktemp(name)))
    env = AnnexEnv.create(root, bin_dir=git_annex_bin.parent, magic=magic_db(git_annex_bin))
    env.use_ssh(sshd)
    before = sshd.snapshot_hosts()
    try:
        yield root, env
    finally:
        env.cleanup()
        sshd.restore_hosts(before)
