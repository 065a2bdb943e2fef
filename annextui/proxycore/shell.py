"""`annextui-shell`: a drop-in for git-annex-shell serving the repository it is pointed at.

Runs once per ssh connection, so it imports only what the command needs: parsing and the
environment checks are pure, `configlist` costs one `git config` call, and `p2pstdio` loads the
protocol and the local peer (dulwich only once the git-annex branch must be written).

Errors are printed as git-annex-shell prints them: `<program>: <message>` and a blank line on
stderr, exit status 1, before any protocol output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn

from annextui.proxycore import shellargs

if TYPE_CHECKING:
    from annextui.proxycore.gateway import GatewayTarget
    from annextui.proxycore.localrepo import LocalRepo

READONLY_ENV = "GIT_ANNEX_SHELL_READONLY"
APPENDONLY_ENV = "GIT_ANNEX_SHELL_APPENDONLY"
LIMITED_ENV = "GIT_ANNEX_SHELL_LIMITED"
DIRECTORY_ENV = "GIT_ANNEX_SHELL_DIRECTORY"


class ShellExit(Exception):
    """Stop with this message on stderr and exit status 1."""


def env_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """checkEnvSet: set and non-empty."""
    return bool((environ if environ is not None else os.environ).get(name))


def check_env(name: str) -> None:
    if env_set(name):
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
    args = sys.argv[1:] if argv is None else argv
    prog = _program()
    names = shellargs.PROGRAM_NAMES | {prog}
    try:
        try:
            cmd = shellargs.parse_argv(args, program_names=names)
        except shellargs.BadParameters:
            raise ShellExit("bad parameters\n\n" + shellargs.usage("git-annex-shell")) from None
        if isinstance(cmd, shellargs.Passthrough):
            return run_passthrough(cmd)
        return run_builtin(cmd)
    except shellargs.OptionError as exc:
        sys.stderr.write(f"{exc.message}\n\n{shellargs.option_usage(prog, exc.command)}\n")
        sys.stderr.flush()
        return 1
    except ShellExit as exc:
        sys.stderr.write(f"{prog}: {exc}\n\n")
        sys.stderr.flush()
        return 1
    except KeyboardInterrupt:
        return 130


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


def run_builtin(cmd: shellargs.Builtin) -> int:
    if cmd.command not in shellargs.READONLY_COMMANDS:
        check_env(READONLY_ENV)
    if cmd.command not in shellargs.APPENDONLY_COMMANDS:
        check_env(APPENDONLY_ENV)
    check_directory(cmd.directory)

    from annextui.proxycore.localrepo import LocalRepo, RepoError

    try:
        repo = LocalRepo.open(cmd.directory)
    except RepoError as exc:
        raise ShellExit(str(exc)) from None
    proxy = None
    if cmd.uuid is not None:
        client = cmd.params[0] if cmd.command == "p2pstdio" and len(cmd.params) == 1 else ""
        proxy = check_target(repo, cmd.uuid, cmd.command, client)
    if cmd.command == "configlist":
        return configlist(repo, cmd)
    if cmd.command == "gcryptsetup":  # dontCheck repoExists: it makes the repository one
        return run_legacy(repo, cmd)
    if not repo.is_initialized() and not repo.gcrypt_id:
        raise ShellExit("Not a git-annex or gcrypt repository.")
    if cmd.command == "p2pstdio":
        return p2pstdio(repo, cmd, proxy)
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
    repo: LocalRepo, expected: str, command: str, client_uuid: str = ""
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
        target = open_gateway(repo, expected, client_uuid)
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


def p2pstdio(repo: LocalRepo, cmd: shellargs.Builtin, proxy: GatewayTarget | None = None) -> int:
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
        if env_set(READONLY_ENV):
            raise ShellExit("Not a git-annex or gcrypt repository.")
        autoinit(repo)
    from annextui.proxycore.local import LocalPeer
    from annextui.proxycore.peer import PeerFatal
    from annextui.proxycore.server import ServerMode, serve_stdio

    if env_set(READONLY_ENV):
        mode = ServerMode.READONLY
    elif env_set(APPENDONLY_ENV):
        mode = ServerMode.APPENDONLY
    else:
        mode = ServerMode.READWRITE
    if proxy is not None:
        # A proxied remote or a cluster: the gateway relays (gateway.py).
        try:
            result = proxy.serve(mode=mode, debug=cmd.debug)
        except PeerFatal as exc:
            raise ShellExit(str(exc)) from None
    else:
        try:
            peer = LocalPeer(repo, client_uuid=cmd.params[0])
        except PeerFatal as exc:
            raise ShellExit(str(exc)) from None
        result = serve_stdio(peer, mode=mode, debug=cmd.debug)
    if result.error:
        # A failure inside the command is reported the way git-annex reports a failed command.
        sys.stderr.write(f"git-annex: {result.error}\np2pstdio: 1 failed\n")
        sys.stderr.flush()
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
