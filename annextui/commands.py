"""Subcommands `sizes`, `balance` and `wanted-check` (registered into annextui's CLI).

Each handler parses its options, calls the backend and prints; backend errors become a message on
stderr (or a ``success: false`` JSON record) and exit status 1; 2 is argparse's, for a command
line that does not parse (a bad ``--what-if`` included), and wanted-check's "cannot decide" (its 1
means "not wanted"). The only
terminal decoration is a progress bar for long size scans, drawn with rich on stderr when stderr
is a terminal (or with ``--progress``); rich is imported here, never by the backend modules.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from annextui.backend.repo import NotAnnexRepository, Repository

if TYPE_CHECKING:
    from annextui.backend.balance import Balance

Handler = Callable[[argparse.Namespace], int]
Add = Callable[[str, Handler, str], argparse.ArgumentParser]
ProgressFn = Callable[[int, "int | None"], None]

EXIT_OK = 0
EXIT_NO = 1
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2


class _BadInput(Exception):
    """Input that cannot be used (exit status 2)."""


def register(add: Add) -> None:
    from annextui import cluster_commands, jobcommands

    # the `cluster` group (rename, delete) gains `drain`; `rebalance` and `jobs` at the top
    jobcommands.register(add, cluster_commands.register(add))

    sp = add(
        "sizes", cmd_sizes, "keys and bytes held by every repository, with maxsize and percent full"
    )
    sp.add_argument("--bytes", action="store_true", help="show sizes in bytes")
    sp.add_argument("--all", action="store_true", help="also list dead repositories")
    _progress_option(sp)

    sp = add(
        "balance",
        cmd_balance,
        "how the keys of a group or cluster are spread over its nodes, and what-if scenarios",
    )
    sp.add_argument("group", help="group name (group.log), or cluster name, remote or UUID")
    sp.add_argument(
        "--what-if",
        action="append",
        type=_scenario,
        default=[],
        metavar="SCENARIO",
        help=(
            "simulate a change (repeatable): add:NAME:SIZE (a new node with that maxsize), "
            "remove:REPO, maxsize:REPO:SIZE, wanted:REPO:EXPRESSION; REPO is a remote name, "
            "UUID, description or 'here'"
        ),
    )
    sp.add_argument(
        "--rebalance",
        action="store_true",
        help="decide as with git-annex --rebalance (balanced behaves as fullybalanced)",
    )
    sp.add_argument("--explain", metavar="KEY", help="show the engine's reasoning for one key")
    sp.add_argument(
        "--prove",
        action="store_true",
        help=(
            "prove the plan converges: apply it to the modelled state and re-evaluate every "
            "node's preferred content until nothing changes; exit 0 if it converges, 1 if keys "
            "move back and forth (the proof names them and the terms that cause it) or the "
            "round limit is reached"
        ),
    )
    sp.add_argument(
        "--max-rounds",
        type=int,
        default=None,
        metavar="N",
        help="round limit of --prove (default 50)",
    )
    _progress_option(sp)

    sp = add(
        "wanted-check",
        cmd_wanted_check,
        "does a repository want a key? exit 0 if it does, 1 if not (like matchexpression)",
    )
    sp.add_argument(
        "--target",
        "--remote",
        dest="target",
        default="here",
        metavar="REPO",
        help=(
            "the repository whose preferred content decides: remote name, UUID, description or "
            "'here' (default). Not to be confused with -C/--repo, the repository to read"
        ),
    )
    sp.add_argument(
        "--drop",
        action="store_true",
        help="ask the drop question instead: would REPO drop its copy? (exit 0 if it would)",
    )
    what = sp.add_mutually_exclusive_group(required=True)
    what.add_argument("--key", help="a git-annex key")
    what.add_argument("--file", help="an annexed file (its path also feeds include=/exclude=)")
    what.add_argument(
        "--batch",
        action="store_true",
        help='read keys from stdin, print {"key": ..., "repo": UUID, "wanted": ...} per line',
    )


def _scenario(text: str) -> object:
    """A `--what-if` that does not parse is a usage error (exit 2), reported by argparse."""
    from annextui.backend.balance import BalanceError, parse_scenario

    try:
        return parse_scenario(text)
    except BalanceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _progress_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr for long scans (default: when stderr is a terminal)",
    )


# ---------------------------------------------------------------------------------------------
# Plumbing shared by the handlers


def _open(args: argparse.Namespace) -> Repository:
    repo = Repository.discover(args.repo)
    if not repo.is_annex:
        raise NotAnnexRepository(f"{repo.top}: not a git-annex repository")
    return repo


def _fail(args: argparse.Namespace, command: str, exc: BaseException, code: int) -> int:
    from annextui.failures import report

    report(command, exc, as_json=bool(getattr(args, "json", False)))
    return code


def _guard(command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from annextui.backend.balance import BalanceError
    from annextui.backend.sizes import SizesError
    from annextui.failures import USER_ERRORS

    try:
        return run(args)
    except BrokenPipeError:
        raise  # the reader went away: annextui.cli.main's business
    except USER_ERRORS as exc:
        if command != "wanted-check":
            raise  # reported by annextui.cli.main: exit 1
        return _fail(args, command, exc, EXIT_BAD_INPUT)  # its 1 means "not wanted"
    except _BadInput as exc:
        return _fail(args, command, exc, EXIT_BAD_INPUT)
    except BalanceError as exc:
        # wanted-check's exit 1 means "not wanted": it cannot also mean "could not decide".
        code = EXIT_BAD_INPUT if command == "wanted-check" else EXIT_ERROR
        return _fail(args, command, exc, code)
    except SizesError as exc:
        return _fail(args, command, exc, EXIT_ERROR)


@contextmanager
def _progress(args: argparse.Namespace, label: str) -> Iterator[ProgressFn | None]:
    enabled = args.progress if args.progress is not None else sys.stderr.isatty()
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


# ---------------------------------------------------------------------------------------------
# sizes


def cmd_sizes(args: argparse.Namespace) -> int:
    return _guard("sizes", _sizes, args)


def _sizes(args: argparse.Namespace) -> int:
    from annextui.backend.branch import BranchView
    from annextui.backend.sizes import repo_sizes
    from annextui.backend.sizes_overview import uuid_descriptions
    from annextui.backend.state import load_state
    from annextui.backend.units import format_percentage, format_rough

    repo = _open(args)
    try:
        view = BranchView(repo)
        state = load_state(view)
        with _progress(args, "scanning location logs") as progress:
            sizes = repo_sizes(repo, view=view, state=state, progress=progress)
        names = uuid_descriptions(repo, state)
        rows = [r for r in sizes.repos.values() if args.all or not r.dead]
        rows.sort(key=lambda r: (-r.size, -r.keys, r.uuid))
        if args.json:
            print(
                json.dumps(
                    {
                        "command": "sizes",
                        "branch": sizes.branch,
                        "source": sizes.source,
                        "keys": sizes.keys,
                        "repositories": [
                            {
                                "uuid": r.uuid,
                                "description": names.get(r.uuid, ""),
                                "here": r.uuid == repo.uuid,
                                "dead": r.dead,
                                "cluster": r.cluster,
                                "keys": r.keys,
                                "size": r.size,
                                "maxsize": state.maxsize.get(r.uuid),
                            }
                            for r in rows
                        ],
                        "error-messages": [],
                        "success": True,
                    },
                    sort_keys=True,
                )
            )
            return EXIT_OK

        def fmt(n: int | None) -> str:
            if n is None:
                return ""
            return str(n) if args.bytes else format_rough(n, 2)

        print(f"{'keys':>9} {'size':>10} {'maxsize':>10} {'%full':>6}  repository")
        for r in rows:
            ms = state.maxsize.get(r.uuid)
            full = (
                "" if ms is None else (format_percentage(r.size, ms) if r.size <= ms else ">100%")
            )
            desc = names.get(r.uuid, "")
            if r.uuid == repo.uuid:
                desc = f"{desc} [here]" if desc else "[here]"
            flags = " (dead)" if r.dead else ""
            label = f"{r.uuid} -- {desc}" if desc else r.uuid
            print(f"{r.keys:>9} {fmt(r.size):>10} {fmt(ms):>10} {full:>6}  {label}{flags}")
        return EXIT_OK
    finally:
        repo.git.close()


# ---------------------------------------------------------------------------------------------
# balance


def cmd_balance(args: argparse.Namespace) -> int:
    return _guard("balance", _balance, args)


def _balance(args: argparse.Namespace) -> int:
    from annextui.backend.balance import Balance

    scenarios = args.what_if  # parsed by argparse (_scenario)
    repo = _open(args)
    try:
        with _progress(args, "balance") as progress:
            bal = Balance(repo, args.group, rebalance=args.rebalance, progress=progress)
            if args.prove:
                return _prove(args, bal, progress)
            if args.explain:
                explanations = bal.explain(args.explain)
                if args.json:
                    print(
                        json.dumps(
                            {
                                "command": "balance",
                                "key": args.explain,
                                "explanations": [
                                    {
                                        "uuid": e.uuid,
                                        "wanted": e.decision,
                                        "reason": e.reason,
                                        "text": e.describe(),
                                    }
                                    for e in explanations
                                ],
                                "error-messages": [],
                                "success": True,
                            },
                            sort_keys=True,
                        )
                    )
                else:
                    for e in explanations:
                        print(e.describe())
                return EXIT_OK
            report = bal.report(scenarios)
        if args.json:
            payload: dict[str, object] = {"command": "balance", **report.to_json()}
            payload["error-messages"] = []
            payload["success"] = True
            print(json.dumps(payload, sort_keys=True))
        else:
            print("\n".join(report.to_text()))
        return EXIT_OK
    finally:
        repo.git.close()


def _prove(args: argparse.Namespace, bal: Balance, progress: ProgressFn | None) -> int:
    from annextui.backend.balance.placement import placement_of_balance
    from annextui.backend.balance.proof import DEFAULT_MAX_ROUNDS, prove
    from annextui.backend.balance.proof_report import proof_json, proof_text

    if args.what_if or args.explain:
        raise _BadInput("--prove takes neither --what-if nor --explain")
    rounds = DEFAULT_MAX_ROUNDS if args.max_rounds is None else args.max_rounds
    if rounds < 1:
        raise _BadInput("the round limit must be at least 1 (--max-rounds)")
    proof = prove(placement_of_balance(bal), max_rounds=rounds, progress=progress)
    if args.json:
        payload = {"command": "balance", "group": bal.label, "proof": proof_json(proof)}
        print(json.dumps({**payload, "error-messages": [], "success": True}, sort_keys=True))
    else:
        print("\n".join(proof_text(proof)))
    return EXIT_OK if proof.converged else EXIT_NO


# ---------------------------------------------------------------------------------------------
# wanted-check


def cmd_wanted_check(args: argparse.Namespace) -> int:
    return _guard("wanted-check", _wanted_check, args)


def _wanted_check(args: argparse.Namespace) -> int:
    from annextui.backend.balance import wanted_check

    repo = _open(args)
    try:
        if args.batch:
            bad = 0

            def report(key: str, exc: Exception) -> None:
                nonlocal bad
                bad += 1
                print(f"annextui: {key!r}: {exc}", file=sys.stderr)

            keys = ((line.strip(), None) for line in sys.stdin if line.strip())
            for key, u, wanted in wanted_check(
                repo, args.target, keys, drop=args.drop, on_error=report
            ):
                print(json.dumps({"key": key, "repo": u, "wanted": wanted}), flush=True)
            return EXIT_BAD_INPUT if bad else EXIT_OK
        if args.file is not None:
            key, rel = _key_of_file(repo, args.file)
            item: tuple[str, str | None] = (key, rel)
        else:
            item = (args.key, None)
        for key, u, wanted in wanted_check(repo, args.target, [item], drop=args.drop):
            if args.json:
                print(json.dumps({"key": key, "repo": u, "wanted": wanted}))
            else:
                print(_wanted_line(key, args.target, u, wanted, drop=args.drop))
            return EXIT_OK if wanted else EXIT_NO
        return EXIT_NO
    finally:
        repo.git.close()


def _wanted_line(key: str, target: str, uuid: str, wanted: bool, *, drop: bool) -> str:
    """`KEY: wanted by here (UUID)`: the answer the exit status gives, for a person."""
    if drop:
        verdict = "would be dropped by" if wanted else "would be kept by"
    else:
        verdict = "wanted by" if wanted else "not wanted by"
    return f"{key}: {verdict} {target} ({uuid})"


_OBJECTS = "annex/objects/"


def _key_of_file(repo: Repository, file: str) -> tuple[str, str]:
    """The key of an annexed file (symlink or pointer file; else the HEAD tree), and its path
    relative to the repository top."""
    path = Path(file)
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        rel = os.path.relpath(os.path.abspath(absolute), repo.top)
    except ValueError:
        rel = file
    if rel.startswith(".."):
        raise _BadInput(f"{file} is not inside {repo.top}")
    target: str | None = None
    if absolute.is_symlink():
        target = os.readlink(absolute)
    elif absolute.is_file():
        with open(absolute, "rb") as f:
            head = f.read(8192)
        target = head.split(b"\n", 1)[0].decode("utf-8", "surrogateescape")
    else:
        target = _head_blob(repo, rel)
    if target is None or _OBJECTS not in target:
        raise _BadInput(f"{file} is not an annexed file")
    key = target.rstrip("/").rsplit("/", 1)[-1]
    from annextui.backend.keys import file_key

    return file_key(key), rel


def _head_blob(repo: Repository, rel: str) -> str | None:
    from dulwich.objects import Blob, Commit, Tree

    try:
        commit = repo.git[repo.git.head()]
    except KeyError:
        return None
    if not isinstance(commit, Commit):
        return None
    obj = repo.git[commit.tree]
    for part in rel.split("/"):
        if not isinstance(obj, Tree):
            return None
        try:
            _mode, sha = obj[part.encode("utf-8", "surrogateescape")]
        except KeyError:
            return None
        obj = repo.git[sha]
    if not isinstance(obj, Blob):
        return None
    data: bytes = obj.as_raw_string()
    return data.split(b"\n", 1)[0].decode("utf-8", "surrogateescape")
