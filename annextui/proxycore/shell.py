"""`annextui-shell`: a drop-in for git-annex-shell serving the repository it is pointed at.

Runs once per ssh connection, so it imports only what the command needs: parsing and the
environment checks are pure, `configlist` costs one `git config` call, and `p2pstdio` loads the
protocol and the local peer (dulwich only once the git-annex branch must be written).

Errors are printed as git-annex-shell prints them: `<program>: <message>` and a blank line on
stderr, exit status 1, before any protocol output.

A session's environment and byte streams are a `ShellSession`: the process's own for an ssh
connection, or those a relay handed to the long-running server (proxycore/relay/), so the
`GIT_ANNEX_SHELL_*` restrictions are decided here and only here for both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn

from annextui.proxycore import shellargs

if TYPE_CHECKING:
    from annextui.backend.state import AnnexState
    from annextui.proxycore.gateway import GatewayTarget
    from annextui.proxycore.localrepo import LocalRepo

READONLY_ENV = "GIT_ANNEX_SHELL_READONLY"
APPENDONLY_ENV = "GIT_ANNEX_SHELL_APPENDONLY"
LIMITED_ENV = "GIT_ANNEX_SHELL_LIMITED"
DIRECTORY_ENV = "GIT_ANNEX_SHELL_DIRECTORY"


class ShellExit(Exception):
    """Stop with this message on stderr and exit status 1."""


class ShellSession:
    """What one shell session reads, writes and is restricted by: the environment its
    `GIT_ANNEX_SHELL_*` variables come from, the protocol's input and output descriptors, and
    where its own messages go. The default is this process's (an ssh connection)."""

    __slots__ = ("environ", "infd", "outfd", "stderr_fd")

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        infd: int = 0,
        outfd: int = 1,
        stderr_fd: int = 2,
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.infd = infd
        self.outfd = outfd
        self.stderr_fd = stderr_fd

    def warn(self, text: str) -> None:
        """Write `text` to the session's stderr (a client that is gone is not an error)."""
        if self.stderr_fd == 2:
            sys.stderr.write(text)
            sys.stderr.flush()
            return
        data = text.encode("utf-8", "surrogateescape")
        try:
            while data:
                data = data[os.write(self.stderr_fd, data) :]
        except OSError:
            pass

    @property
    def home(self) -> str | None:
        return self.environ.get("HOME") or None

    def open_repo(self, directory: str) -> LocalRepo:
        """The repository a command names (a long-running server keeps them open)."""
        from annextui.proxycore.localrepo import LocalRepo

        return LocalRepo.open(directory, home=self.home)

    def gateway_state(self, repo: LocalRepo) -> AnnexState | None:
        """The branch's state when the caller keeps it (a server caches it per branch tip);
        None: read it now."""
        return None

    def stop_fd(self) -> int | None:
        """A descriptor that becomes readable when the session must end (server shutdown)."""
        return None


def env_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """checkEnvSet: set and non-empty."""
    return bool((environ if environ is not None else os.environ).get(name))


def check_env(name: str, environ: Mapping[str, str] | None = None) -> None:
    if env_set(name, environ):
        raise ShellExit(f"Action blocked by {name}")


def check_directory(directory: str | None, environ: Mapping[str, str] | None = None) -> None:
    """GIT_ANNEX_SHELL_DIRECTORY: only that repository (literal, then home-normalised)."""
    env = environ if environ is not None else os.environ
    allowed = env.get(DIRECTORY_ENV)
    if allowed is None:
        return
    if directory is None:
        raise ShellExit(
            f"Only allowed to access {allowed} and could not determine directory from command line"
        )
    if os.path.normpath(allowed) == os.path.normpath(directory) and allowed.rstrip(
        "/"
    ) == directory.rstrip("/"):
        return
    home = env.get("HOME") or os.path.expanduser("~")
    a, d = _canondir(home, allowed), _canondir(home, directory)
    if a == d:
        return
    raise ShellExit(f"Only allowed to access {a} not {d}")


def _canondir(home: str, d: str) -> str:
    """canondir of Checks.hs: `~/x` and `/~/x` as given (~/x), else absolute, home-relative."""
    if d.startswith("~/"):
        return os.path.normpath(d)
    if d.startswith("/~/"):
        return os.path.normpath(d[1:])
    p = os.path.normpath(os.path.join(home, d))
    h = os.path.normpath(home)
    if p == h:
        return "~"
    if p.startswith(h.rstrip("/") + "/"):
        return "~/" + p[len(h.rstrip("/")) + 1 :]
    return p


def _program() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name and not name.startswith("-") and name != "__main__.py" else "annextui-shell"


def _fail(message: str) -> NoReturn:
    raise ShellExit(message)


def main(argv: list[str] | None = None) -> int:
    """The `annextui-shell` console script (no `argv`): serves `sys.argv` and ends the process
    itself with `os._exit` once everything it wrote is closed, never through the interpreter's
    teardown, which daemon threads (ssh pre-warm, paramiko) crash (processexit.py). With `argv`
    (tests, profiling): the exit status is returned."""
    if argv is not None:
        return run(argv, ShellSession(), _program())
    try:
        status = run(sys.argv[1:], ShellSession(), _program())
    except Exception:
        import traceback

        traceback.print_exc()  # a bug: reported, and status 1, as an uncaught exception is
        status = 1
    from annextui.proxycore.processexit import exit_process

    exit_process(status)


def run(args: list[str], session: ShellSession, prog: str) -> int:
    """One shell command line served on `session`; the exit status."""
    names = shellargs.PROGRAM_NAMES | {prog}
    try:
        try:
            cmd = shellargs.parse_argv(args, program_names=names)
        except shellargs.BadParameters:
            raise ShellExit("bad parameters\n\n" + shellargs.usage("git-annex-shell")) from None
        if isinstance(cmd, shellargs.Passthrough):
            return run_passthrough(cmd)
        return run_builtin(cmd, session)
    except shellargs.OptionError as exc:
        session.warn(f"{exc.message}\n\n{shellargs.option_usage(prog, exc.command)}\n")
        return 1
    except ShellExit as exc:
        session.warn(f"{prog}: {exc}\n\n")
        return 1
    except KeyboardInterrupt:
        return 130


def is_p2pstdio(args: list[str], prog: str = "annextui-shell") -> bool:
    """Whether this command line asks for a P2P session (`p2pstdio`): what a relay's server
    serves in its own process; every other command runs in an annextui-shell of its own."""
    try:
        cmd = shellargs.parse_argv(args, program_names=shellargs.PROGRAM_NAMES | {prog})
    except (shellargs.BadParameters, shellargs.OptionError):
        return False
    return isinstance(cmd, shellargs.Builtin) and cmd.command == "p2pstdio"


# -- git passthrough ------------------------------------------------------------------------------


def run_passthrough(cmd: shellargs.Passthrough) -> int:
    """Hand git's own traffic (`git-upload-pack '/path'` …) to git-shell, as git-annex does."""
    check_directory(cmd.directory)
    check_env(LIMITED_ENV)
    import subprocess

    try:
        rc = subprocess.call(["git-shell", "-c", *cmd.words])
    except OSError:
        rc = 127
    if rc != 0:
        raise ShellExit("git-shell failed")
    return 0


# -- built-ins ------------------------------------------------------------------------------------


def run_builtin(cmd: shellargs.Builtin, session: ShellSession | None = None) -> int:
    session = session or ShellSession()
    env = session.environ
    if cmd.command not in shellargs.READONLY_COMMANDS:
        check_env(READONLY_ENV, env)
    if cmd.command not in shellargs.APPENDONLY_COMMANDS:
        check_env(APPENDONLY_ENV, env)
    check_directory(cmd.directory, env)

    from annextui.proxycore.localrepo import RepoError

    try:
        repo = session.open_repo(cmd.directory)
    except RepoError as exc:
        raise ShellExit(str(exc)) from None
    proxy = None
    if cmd.uuid is not None:
        client = cmd.params[0] if cmd.command == "p2pstdio" and len(cmd.params) == 1 else ""
        proxy = check_target(repo, cmd.uuid, cmd.command, client, session.gateway_state(repo))
    if cmd.command == "configlist":
        return configlist(repo, cmd)
    if cmd.command == "gcryptsetup":  # dontCheck repoExists: it makes the repository one
        return run_legacy(repo, cmd)
    if not repo.is_initialized() and not repo.gcrypt_id:
        raise ShellExit("Not a git-annex or gcrypt repository.")
    if cmd.command == "p2pstdio":
        return p2pstdio(repo, cmd, proxy, session)
    if cmd.command == "notifychanges":
        if cmd.params:
            raise ShellExit("This command takes no parameters.")
        return notifychanges(repo)
    return run_legacy(repo, cmd)


def run_legacy(repo: LocalRepo, cmd: shellargs.Builtin) -> int:
    """inannex, sendkey, recvkey, dropkey, gcryptsetup: what gcrypt remotes use (legacy.py)."""
    from annextui.proxycore import legacy

    try:
        if cmd.command == "inannex":
            return legacy.inannex(repo, cmd.params)
        if cmd.command == "dropkey":
            options = legacy.DropkeyOptions(
                force="force" in cmd.flags,
                batch="batch" in cmd.flags,
                json="json" in cmd.flags,
                json_errors="json-error-messages" in cmd.flags,
            )
            return legacy.dropkey(repo, cmd.params, options)
        if cmd.command == "sendkey":
            return legacy.sendkey(repo, cmd.params, cmd.remote_uuid, cmd.rsync_options)
        if cmd.command == "recvkey":
            return legacy.recvkey(repo, cmd.params, cmd.remote_uuid, cmd.rsync_options)
        if cmd.command == "gcryptsetup":
            return legacy.gcryptsetup(repo, cmd.params)
    except legacy.LegacyError as exc:
        raise ShellExit(str(exc)) from None
    raise ShellExit(f"unknown command {cmd.command}")


def check_target(
    repo: LocalRepo,
    expected: str,
    command: str,
    client_uuid: str = "",
    state: AnnexState | None = None,
) -> GatewayTarget | None:
    """The `--uuid` check of git-annex-shell: our own UUID (None), a proxied remote or cluster
    this gateway may serve (p2pstdio only), else refuse as git-annex refuses."""
    own = repo.uuid
    if own is None:
        gid = repo.gcrypt_id
        if not gid:
            raise ShellExit(
                f"expected repository UUID {expected} but found uninitialized repository"
            )
        from annextui.proxycore.legacy import gcrypt_uuid

        found = gcrypt_uuid(gid)
        if found == expected:
            return None
        raise ShellExit(f"expected repository UUID {expected} but found UUID {found}")
    if expected == own:
        return None
    from annextui.proxycore.gateway import open_gateway
    from annextui.proxycore.targets import TargetRefused

    try:
        target = open_gateway(repo, expected, client_uuid, state)
    except TargetRefused as exc:
        raise ShellExit(str(exc)) from None
    if target is None:
        return None
    if command == "notifychanges":
        # Not marked notProxyable upstream: git-annex-shell watches the gateway's own refs,
        # which are the refs of every remote it proxies (a client's remotedaemon asks so).
        return None
    if command != "p2pstdio":
        raise ShellExit(f"Cannot proxy {command} command.")
    return target


def configlist(repo: LocalRepo, cmd: shellargs.Builtin) -> int:
    if cmd.params:
        raise ShellExit("This command takes no parameters.")
    uuid = repo.uuid
    if not uuid and (repo.has_annex_branch() or cmd.autoinit):
        check_env(READONLY_ENV)
        uuid = autoinit(repo)
    out = f"annex.uuid={uuid or ''}\ncore.gcrypt-id={repo.gcrypt_id}\n"
    sys.stdout.write(out)
    sys.stdout.flush()
    return 0


def autoinit(repo: LocalRepo) -> str | None:
    """Initialise the repository (configlist with a git-annex branch or `autoinit=1`)."""
    from annextui.backend.admin import Admin, AdminError

    full = repo.full()
    try:
        Admin(full).init()
    except AdminError as exc:
        raise ShellExit(str(exc)) from None
    repo.reload()
    return repo.uuid


def p2pstdio(
    repo: LocalRepo,
    cmd: shellargs.Builtin,
    proxy: GatewayTarget | None = None,
    session: ShellSession | None = None,
) -> int:
    session = session or ShellSession()
    env = session.environ
    if len(cmd.params) != 1:
        raise ShellExit("missing UUID parameter")
    if not repo.uuid:
        if repo.gcrypt_id:
            # Initialising it would give the gcrypt repository an annex UUID, and gcryptsetup
            # and the --uuid check refuse such a repository from then on.
            raise ShellExit(
                "this is a gcrypt repository: its content is reached through the gcrypt "
                "remote (inannex, sendkey, recvkey, dropkey), not p2pstdio"
            )
        if env_set(READONLY_ENV, env):
            raise ShellExit("Not a git-annex or gcrypt repository.")
        autoinit(repo)
    from annextui.proxycore.local import LocalPeer
    from annextui.proxycore.peer import PeerFatal
    from annextui.proxycore.server import FdTransport, ServerMode, serve_stdio

    if env_set(READONLY_ENV, env):
        mode = ServerMode.READONLY
    elif env_set(APPENDONLY_ENV, env):
        mode = ServerMode.APPENDONLY
    else:
        mode = ServerMode.READWRITE
    transport = FdTransport(session.infd, session.outfd, stop_fd=session.stop_fd())
    log = session.warn if session.stderr_fd != 2 else None
    on_request = None
    try:
        if proxy is not None:
            # A proxied remote or a cluster: the gateway relays (gateway.py).
            peer, on_request = proxy.session()
        else:
            peer = LocalPeer(repo, client_uuid=cmd.params[0])
    except PeerFatal as exc:
        raise ShellExit(str(exc)) from None
    result = serve_stdio(
        peer, mode=mode, debug=cmd.debug, transport=transport, warn=log, on_request=on_request
    )
    if result.error:
        # A failure inside the command is reported the way git-annex reports a failed command.
        session.warn(f"git-annex: {result.error}\np2pstdio: 1 failed\n")
        return 1
    return 0


# -- notifychanges --------------------------------------------------------------------------------


def notifychanges(repo: LocalRepo, *, use_inotify: bool = True) -> int:
    """`READY`, then `CHANGED <sha>…` whenever a ref under `refs/` is written (inotify; polled
    where that is unavailable), until stdin closes."""
    from annextui.proxycore.refwatch import changes, watch_refs

    refs = repo.gitdir / "refs"
    refs.mkdir(exist_ok=True)  # createDirectoryUnder: a repository may have no loose refs yet
    out = sys.stdout
    watcher = watch_refs(str(refs), use_inotify=use_inotify)
    try:
        out.write("READY\n")
        out.flush()
        for batch in changes(watcher, sys.stdin.fileno()):
            out.write("CHANGED " + " ".join(batch) + "\n")
            out.flush()
    except BrokenPipeError:
        pass
    finally:
        watcher.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
