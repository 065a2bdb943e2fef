"""The `annextui cluster ACTION` command group: `rename OLD NEW`, `delete NAME`.

One subcommand per action, each in `_ACTIONS`; a new action (drain, say) adds one entry. Output
is the backend's `Outcome` (text or --json); a name git-annex would refuse is a usage error
(exit 2), anything else refused exits 1 (reported by annextui.cli.main).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annextui.backend.admin import Outcome
    from annextui.backend.repo import Repository

Handler = Callable[[argparse.Namespace], int]
Add = Callable[[str, Handler, str], argparse.ArgumentParser]

EXIT_USAGE = 2


def register(add: Add) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The group and its actions; returns the actions so that jobcommands adds `drain`."""
    group = add("cluster", _missing_action, "rename or delete a cluster, or drain one of its nodes")
    group.set_defaults(cluster_parser=group)
    actions = group.add_subparsers(dest="cluster_action", metavar="ACTION")
    for name, handler, help_, arguments in _ACTIONS:
        sp = actions.add_parser(name, help=help_, description=help_)
        # -C/--json after the action too; SUPPRESS keeps a value given before it.
        sp.add_argument("-C", "--repo", default=argparse.SUPPRESS, help="gateway repository")
        sp.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
        )
        arguments(sp)
        sp.set_defaults(handler=handler)
    return actions


def _missing_action(args: argparse.Namespace) -> int:
    import sys

    args.cluster_parser.print_usage(sys.stderr)
    print(
        "annextui cluster: an action is required: rename OLD NEW, delete NAME, drain NODE",
        file=sys.stderr,
    )
    return EXIT_USAGE


def _gateway_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="PATH",
        help=(
            "another gateway of the cluster on this machine (a path, or a remote of this "
            "gateway with a local url) to change too (repeatable); gateways not given are "
            "listed with the command to run there"
        ),
    )


def _rename_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("old", help="the cluster's current name")
    sp.add_argument("new", help="its new name (a valid git remote name)")
    _gateway_option(sp)


def _delete_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("name", help="the cluster to delete (its nodes and content stay)")
    _gateway_option(sp)


def cmd_rename(args: argparse.Namespace) -> int:
    from annextui.backend.clusteradmin import rename_on_gateways

    def run() -> Outcome:
        repo = _gateway(args)
        return rename_on_gateways(repo, args.old, args.new, _others(args, repo))

    return _run(args, run)


def cmd_delete(args: argparse.Namespace) -> int:
    from annextui.backend.clusteradmin import delete_on_gateways

    def run() -> Outcome:
        repo = _gateway(args)
        return delete_on_gateways(repo, args.name, _others(args, repo))

    return _run(args, run)


_ACTIONS: list[tuple[str, Handler, str, Callable[[argparse.ArgumentParser], None]]] = [
    ("rename", cmd_rename, "rename a cluster (git config, proxy.log, uuid.log)", _rename_arguments),
    ("delete", cmd_delete, "delete a cluster; its nodes and their content stay", _delete_arguments),
]


def _gateway(args: argparse.Namespace) -> Repository:
    from annextui.backend.repo import Repository

    return Repository.discover(args.repo)


def _others(args: argparse.Namespace, repo: Repository) -> list[Repository]:
    """The --gateway repositories: paths, or remotes of this gateway with a local url."""
    from annextui.backend.repo import Repository, require_directory

    out = []
    for given in args.gateway:
        remote = repo.remotes.get(given)
        path = remote.local_path(repo.top) if remote is not None else None
        if remote is not None and path is None:
            from annextui.backend.admin import AdminError

            raise AdminError(
                f"Remote {given} is not a local path: run the command on that gateway instead."
            )
        out.append(Repository(require_directory(path or given)))
    return out


def _run(args: argparse.Namespace, run: Callable[[], Outcome]) -> int:
    from annextui.backend.clusteradmin import ClusterNameError
    from annextui.failures import report

    try:
        outcome = run()
    except ClusterNameError as exc:
        report("cluster", exc, as_json=bool(getattr(args, "json", False)))
        return EXIT_USAGE
    as_json = bool(getattr(args, "json", False))
    if as_json or outcome.lines:
        print(outcome.render(as_json=as_json))
    return 0
