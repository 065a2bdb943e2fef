"""`annextui p2phttp`: the options of `git annex p2phttp`, with git-annex's meanings, handed to
proxycore/http/server.py. Run in the repository to serve (or `-C PATH`), or with `--directory`.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--port", type=int, default=None, help="port to listen on (default 9417)")
    sp.add_argument("--bind", default=None, help="address to bind to (default: all)")
    sp.add_argument("--socket", default=None, help="listen on this unix domain socket instead")
    sp.add_argument("--certfile", default=None, help="TLS certificate file (HTTPS)")
    sp.add_argument("--privatekeyfile", default=None, help="TLS private key file (HTTPS)")
    sp.add_argument("--chainfile", action="append", default=[], help="TLS chain file")
    sp.add_argument(
        "--authenv", action="store_true", help="users from the environment (HTTPS only)"
    )
    sp.add_argument(
        "--authenv-http", action="store_true", help="users from the environment, also over HTTP"
    )
    sp.add_argument("--unauth-readonly", action="store_true", help="anonymous users may read")
    sp.add_argument(
        "--unauth-appendonly", action="store_true", help="anonymous users may read and store"
    )
    sp.add_argument(
        "--unauth-nolocking", action="store_true", help="anonymous users may not lock content"
    )
    sp.add_argument("--wideopen", action="store_true", help="anonymous users get full access")
    sp.add_argument(
        "--proxyconnections",
        type=_non_negative,
        default=1,
        metavar="N",
        help="idle connections kept open to each cluster node or proxied remote (default 1)",
    )
    sp.add_argument(
        "--clusterjobs",
        type=_positive,
        default=1,
        metavar="N",
        help="nodes of a cluster one request works on at once (default 1)",
    )
    sp.add_argument("--cpus", type=int, default=None, help="accepted for compatibility")
    sp.add_argument(
        "--lockedfiles", type=int, default=100, help="content files locked at once (100)"
    )
    sp.add_argument(
        "-J", "--jobs", default=None, help="concurrent requests (N or cpus; default annex.jobs)"
    )
    # annextui's own bounds (git-annex has none: excess requests wait without limit)
    sp.add_argument(
        "--max-connections",
        type=int,
        default=0,
        help="connections served at once; more get 503 (default 8 per job + --lockedfiles)",
    )
    sp.add_argument(
        "--max-queue",
        type=int,
        default=None,
        help="requests that may wait for a job slot; more get 503 (default 4 per job)",
    )
    sp.add_argument(
        "--commit-after",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="commit a repository's journal once it has been idle this long (default 1)",
    )
    sp.add_argument(
        "--relay-socket",
        default=None,
        metavar="PATH",
        help="also serve ssh connections handed over by annextui-relay on this unix socket "
        "(mode 0600); without --port, --bind or --socket, serve only those",
    )
    # Not documented: the tests' handles on the server's housekeeping (ssh transports
    # closed after --ssh-idle seconds unused, node and proxied-remote connections after
    # --proxy-idle seconds idle, both checked every --housekeeping seconds).
    sp.add_argument("--ssh-idle", type=_seconds, default=60.0, help=argparse.SUPPRESS)
    sp.add_argument("--proxy-idle", type=_seconds, default=10.0, help=argparse.SUPPRESS)
    sp.add_argument("--housekeeping", type=_seconds, default=5.0, help=argparse.SUPPRESS)
    sp.add_argument(
        "--directory",
        action="append",
        default=[],
        help="serve every git-annex repository below this directory (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    from annextui.proxycore.gateway import annex_jobs
    from annextui.proxycore.http.auth import AuthPolicy
    from annextui.proxycore.http.server import (
        DEFAULT_PORT,
        P2PHttpServer,
        ServerOptions,
        install_signals,
    )
    from annextui.proxycore.localrepo import LocalRepo, RepoError

    repositories: list[str] = []
    jobs_config: str | None = args.jobs
    if not args.directory:
        try:
            repo = LocalRepo.open(os.path.abspath(getattr(args, "repo", ".")))
        except RepoError:
            # as git-annex says outside a repository (its noRepo start)
            return _fail(
                "Use the --directory option to specify which git-annex repositories to serve."
            )
        if not repo.uuid:
            return _fail(
                "Use the --directory option to specify which git-annex repositories to serve."
            )
        repositories.append(str(repo.gitdir if repo.bare else repo.top))
        jobs_config = jobs_config or repo.config_get("annex.jobs")
    jobs = max(2, annex_jobs(jobs_config or "2"))
    policy = AuthPolicy(
        authenv=args.authenv,
        authenv_http=args.authenv_http,
        unauth_readonly=args.unauth_readonly,
        unauth_appendonly=args.unauth_appendonly,
        unauth_nolocking=args.unauth_nolocking,
        wideopen=args.wideopen,
        users=AuthPolicy.users_from_env(os.environ),
    )
    options = ServerOptions(
        repositories=repositories,
        directories=[os.path.abspath(d) for d in args.directory],
        port=DEFAULT_PORT if args.port is None else args.port,
        bind=args.bind,
        socket_path=args.socket,
        certfile=args.certfile,
        privatekeyfile=args.privatekeyfile,
        chainfiles=args.chainfile,
        policy=policy,
        jobs=jobs,
        lockedfiles=max(0, args.lockedfiles),
        max_connections=max(0, args.max_connections),
        commit_after=max(0.0, args.commit_after),
        json=bool(getattr(args, "json", False)),
        queue_limit=-1 if args.max_queue == 0 else max(0, args.max_queue or 0),
        relay_socket=args.relay_socket,
        http=not args.relay_socket
        or any(v is not None for v in (args.port, args.bind, args.socket)),
        proxy_connections=args.proxyconnections,
        cluster_jobs=args.clusterjobs,
        ssh_idle=args.ssh_idle,
        proxy_idle=args.proxy_idle,
        housekeeping=args.housekeeping,
    )
    server = P2PHttpServer(options)
    try:
        addresses = server.listen()
    except ValueError as exc:  # RelaySocketError included
        return _fail(str(exc))
    install_signals(server)
    served = ", ".join(sorted(server.repos.uuids())) or "(none yet)"
    server.log(f"p2phttp: listening on {' '.join(addresses)}; serving {served}")
    if args.relay_socket:
        from annextui.proxycore.relay import client

        server.log(f"p2phttp: relay forced command: {sys.executable} -I -S {client.__file__}")
    server.serve_forever()
    server.log("p2phttp: stopped")
    # Connections, nodes and journals are closed: end without the interpreter's teardown,
    # which a connection thread left by the shutdown's bounded join could crash.
    from annextui.proxycore.processexit import exit_process

    exit_process(0)


def _fail(message: str) -> int:
    sys.stderr.write(f"annextui p2phttp: {message}\n")
    return 1


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _seconds(text: str) -> float:
    """A positive number of seconds (a finite float: `nan` and `inf` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value
