"""Command line: `annextui [REPO]` opens the console; subcommands run headless.

Parsing only: every subcommand hands over to the backend and prints its `Outcome`. Heavy modules
are imported inside the handlers so that `annextui --help` and scripted calls start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from annextui import __version__
from annextui.backend.admin import Admin, Outcome
from annextui.backend.repo import Repository, require_directory
from annextui.failures import USER_ERRORS, report

Handler = Callable[[argparse.Namespace], int]


def _repo(args: argparse.Namespace) -> Repository:
    return Repository.discover(args.repo)


def _emit(args: argparse.Namespace, outcome: Outcome) -> int:
    if args.json:
        payload: dict[str, object] = {"command": outcome.command}
        payload.update(outcome.data)
        payload.setdefault("error-messages", [])
        payload["success"] = True
        print(json.dumps(payload, sort_keys=True))
    else:
        for line in outcome.lines:
            print(line)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).init(args.description))


def cmd_describe(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).describe(args.target, args.description))


def cmd_initcluster(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).initcluster(args.name, args.description))


def cmd_updatecluster(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).updatecluster())


def cmd_updateproxy(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).updateproxy())


def cmd_extendcluster(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).extendcluster(args.gateway, args.name))


def cmd_maxsize(args: argparse.Namespace) -> int:
    admin = Admin(_repo(args))
    if args.target is None:
        from annextui.backend.sizes_overview import maxsize_overview

        return _emit(args, maxsize_overview(admin.repo, bytes_=args.bytes))
    outcome = admin.maxsize(args.target, args.size)
    if args.size is None and args.bytes:
        value = outcome.data.get("maxsize")
        outcome.lines = ["" if value is None else str(value)]
    return _emit(args, outcome)


def cmd_group(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).group(args.target, args.group))


def cmd_ungroup(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).group(args.target, args.group, remove=True))


def cmd_wanted(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).wanted(args.target, args.expression))


def cmd_required(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).wanted(args.target, args.expression, required=True))


def cmd_groupwanted(args: argparse.Namespace) -> int:
    return _emit(args, Admin(_repo(args)).groupwanted(args.group, args.expression))


def cmd_merge(args: argparse.Namespace) -> int:
    from annextui.backend.journal import Journal

    repo = _repo(args)
    repo.require_annex()
    sha = Journal(repo).merge()
    return _emit(
        args,
        Outcome(
            "merge",
            [f"merge git-annex {'ok' if sha else 'ok (nothing to merge)'}"],
            {"commit": sha.decode() if sha else None},
            sha is not None,
        ),
    )


def cmd_info(args: argparse.Namespace) -> int:
    from annextui.backend.info import gather_info

    info = gather_info(_repo(args))
    if args.json:
        print(json.dumps(info.to_json(), sort_keys=True))
    else:
        print("\n".join(info.to_text()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from annextui.backend.demo import build_demo

    demo = build_demo(args.path, keys=args.keys)
    if args.json:
        print(json.dumps(demo.to_json(), sort_keys=True))
        return 0
    if args.no_console:
        for line in demo.summary():
            print(line)
        return 0
    return _open_console(str(demo.gateway), readonly=bool(getattr(args, "readonly", False)))


def _open_console(path: str, *, readonly: bool) -> int:
    from annextui.app import run_console

    return int(run_console(path, readonly=readonly))


def cmd_console(args: argparse.Namespace) -> int:
    """Open the console; with no git-annex repository at REPO it offers to open the demo."""
    return _open_console(args.repo, readonly=args.readonly)


def cmd_ssh_check(args: argparse.Namespace) -> int:
    from annextui.proxycore.sshcheck import ssh_check

    return ssh_check(_repo(args), args.node, as_json=args.json)


def cmd_p2phttp(args: argparse.Namespace) -> int:
    from annextui.p2phttp_command import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a -C given before the subcommand is not overwritten by this default.
    common.add_argument(
        "-C", "--repo", default=argparse.SUPPRESS, help="repository path (default: .)"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    p = argparse.ArgumentParser(
        prog="annextui",
        description="Console and admin commands for git-annex proxies and clusters.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--readonly", action="store_true", help="console: refuse every change")
    p.add_argument("-C", "--repo", default=".", help="repository to open (default: .)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, parents=[common], help=help_, description=help_)
        sp.set_defaults(handler=handler)
        return sp

    sp = add("init", cmd_init, "make this git repository a git-annex repository")
    sp.add_argument("description", nargs="?")
    sp = add("describe", cmd_describe, "change the description of a repository")
    sp.add_argument("target")
    sp.add_argument("description")
    sp = add("initcluster", cmd_initcluster, "create a cluster with this repository as gateway")
    sp.add_argument("name")
    sp.add_argument("description", nargs="?")
    add("updatecluster", cmd_updatecluster, "record the configured cluster nodes")
    add("updateproxy", cmd_updateproxy, "record the remotes this repository proxies for")
    sp = add("extendcluster", cmd_extendcluster, "make this repository a gateway of a cluster")
    sp.add_argument("gateway", help="remote that is already a gateway of the cluster")
    sp.add_argument("name", help="cluster name")
    sp = add("maxsize", cmd_maxsize, "show or set the maximum size of a repository")
    sp.add_argument("target", nargs="?", help="remote name, UUID, description or here")
    sp.add_argument("size", nargs="?")
    sp.add_argument("--bytes", action="store_true", help="show sizes in bytes")
    for name, handler, help_ in (
        ("group", cmd_group, "add a repository to a group, or list its groups"),
        ("ungroup", cmd_ungroup, "remove a repository from a group"),
    ):
        sp = add(name, handler, help_)
        sp.add_argument("target")
        sp.add_argument("group", nargs="?" if name == "group" else None)
    for name, handler, help_ in (
        ("wanted", cmd_wanted, "show or set the preferred content of a repository"),
        ("required", cmd_required, "show or set the required content of a repository"),
    ):
        sp = add(name, handler, help_)
        sp.add_argument("target")
        sp.add_argument("expression", nargs="?")
    sp = add("groupwanted", cmd_groupwanted, "show or set the preferred content of a group")
    sp.add_argument("group")
    sp.add_argument("expression", nargs="?")
    add("merge", cmd_merge, "merge other git-annex branches into ours (union merge)")
    add("info", cmd_info, "repositories, proxies, clusters and maxsize")
    sp = add("demo", cmd_demo, "build a demo gateway with a cluster and open the console")
    sp.add_argument("--path", default=None, help="where to build it (default: a temp dir)")
    sp.add_argument("--keys", type=int, default=300, help="number of annexed keys")
    sp.add_argument("--no-console", action="store_true", help="only build and describe it")
    sp = add("ssh-check", cmd_ssh_check, "how the gateway reaches an ssh node, and how fast")
    sp.add_argument("node", help="the node's remote name")
    sp = add("p2phttp", cmd_p2phttp, "serve the git-annex P2P protocol over HTTP")
    from annextui.p2phttp_command import add_options

    add_options(sp)
    _register_extensions(add)
    return p


def _register_extensions(add: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    """Subcommands contributed by other modules (sizes, balance, wanted-check)."""
    try:
        from annextui.commands import register
    except ImportError:
        return
    register(add)


def _repo_positional(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`annextui REPO` opens the console on REPO: rewrite it to `-C REPO`.

    A subcommand name always wins; another word must be an existing path (`-C` takes any), so
    a mistyped command is an error with a suggestion, not a console on a missing directory.
    """
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for i, word in enumerate(argv):
        if word.startswith("-"):
            if word in ("-C", "--repo"):
                return argv
            continue
        if word in sub.choices:
            return argv
        if not os.path.exists(word):
            parser.error(_unknown_word(word, sorted(sub.choices)))
        return [*argv[:i], "-C", word, *argv[i + 1 :]]
    return argv


def _unknown_word(word: str, commands: list[str]) -> str:
    import difflib

    # Options people type as words: `annextui version`, `annextui help`.
    spelled = {"version": "--version", "help": "--help"}
    close = difflib.get_close_matches(word, [*commands, *spelled], n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(spelled.get(c, c) for c in close)}?" if close else ""
    return (
        f"'{word}' is neither a command nor an existing path{hint} "
        "(a repository is opened with `annextui PATH` or `-C PATH`; `annextui -h` lists commands)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_repo_positional(parser, list(sys.argv[1:] if argv is None else argv)))
    handler: Handler | None = getattr(args, "handler", None)
    try:
        require_directory(args.repo)  # a mistyped -C is an error, not the enclosing repository
        if handler is None:
            return cmd_console(args)
        return handler(args)
    except BrokenPipeError:  # `annextui info | head`: the reader went away, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except USER_ERRORS as exc:  # the one place a failure becomes `annextui: ...`, exit 1
        report(args.command, exc, as_json=bool(getattr(args, "json", False)))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
