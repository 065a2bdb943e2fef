"""Subcommands `cluster drain` and `rebalance`: plan, refuse or run a job (operations/).

Both resume an unfinished job of the same target when run again (the plan persisted under
``annex/annextui/jobs/``), pause on SIGINT/SIGTERM, and draw a rich progress bar (bytes, rate,
ETA) on stderr when it is a terminal (or with ``--progress``); rich is imported only then.
Exit status: 0 done, 1 refused/failed/paused, 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annextui.backend.repo import Repository
    from annextui.operations.jobs import Job, JobStore
    from annextui.operations.nodes import GatewayNodes

Handler = Callable[[argparse.Namespace], int]
Add = Callable[[str, Handler, str], argparse.ArgumentParser]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Refused(Exception):
    """The job does not start (figures in the message); nothing was moved."""


class _Usage(Exception):
    """Unusable input (exit status 2)."""


def register(add: Add, cluster: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`rebalance` at the top level; `drain` into the `cluster` command group."""
    sp = add(
        "rebalance",
        cmd_rebalance,
        "move keys between the nodes of a cluster or group as the balance plan says",
    )
    sp.add_argument("group", help="cluster name, remote or UUID, or group name")
    _job_options(sp)
    sp = add("jobs", cmd_jobs, "list drain and rebalance jobs, or cancel one")
    sp.set_defaults(usage_parser=sp)
    sp.add_argument("action", nargs="?", choices=["list", "cancel"], default="list")
    sp.add_argument("job", nargs="?", help="the job id to cancel")
    sp = cluster.add_parser(
        "drain",
        parents=[_common()],
        help="copy a node's keys to the other nodes, drop them, take it out of the cluster",
    )
    sp.set_defaults(handler=cmd_drain)
    sp.add_argument("node", help="the node's remote name, UUID or description")
    sp.add_argument(
        "--to", action="append", default=[], metavar="NODE", help="drain to these nodes only"
    )
    _job_options(sp)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-C", "--repo", default=argparse.SUPPRESS, help="repository path (default: .)"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    return common


def _job_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--dry-run", action="store_true", help="show the plan, move nothing")
    sp.add_argument(
        "--bwlimit",
        metavar="RATE",
        type=_rate,
        help="at most RATE per second (git-annex syntax: 10MiB)",
    )
    sp.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


# ---------------------------------------------------------------------------------------------


def cmd_drain(args: argparse.Namespace) -> int:
    return _guard("cluster drain", _drain, args)


def cmd_rebalance(args: argparse.Namespace) -> int:
    return _guard("rebalance", _rebalance, args)


def _guard(command: str, run: Handler, args: argparse.Namespace) -> int:
    from annextui.backend.balance import BalanceError
    from annextui.backend.units import SizeError
    from annextui.failures import report
    from annextui.operations.jobs import JobBusy
    from annextui.operations.nodes import NodeUnreachable

    args.command_label = command
    try:
        return run(args)
    except (SizeError, _Usage) as exc:  # a command line that cannot be used
        parser = getattr(args, "usage_parser", None)
        if parser is not None and not args.json:
            parser.print_usage(sys.stderr)
        report(command, exc, as_json=args.json)
        return EXIT_USAGE
    # an unknown node, group or job fails (1), as `annextui balance` does
    except (BalanceError, _Refused, NodeUnreachable, JobBusy) as exc:
        report(command, exc, as_json=args.json)
        return EXIT_FAILED


def _open(args: argparse.Namespace) -> Repository:
    from annextui.backend.repo import NotAnnexRepository, Repository

    repo = Repository.discover(args.repo)
    if not repo.is_annex:
        raise NotAnnexRepository(f"{repo.top}: not a git-annex repository")
    return repo


def _rate(text: str) -> int:
    """A `--bwlimit` that does not parse is a usage error (exit 2), reported by argparse."""
    from annextui.backend.units import SizeError, parse_size

    try:
        return parse_size(text)
    except SizeError as exc:
        raise argparse.ArgumentTypeError(f"{text}: unable to parse size") from exc


# -- drain -------------------------------------------------------------------------------------


@contextmanager
def _session(args: argparse.Namespace) -> Iterator[tuple[GatewayNodes, JobStore]]:
    """The gateway's nodes and jobs for one command; nodes and repository closed after."""
    from annextui.operations.jobs import JobStore
    from annextui.operations.nodes import GatewayNodes

    repo = _open(args)
    try:
        nodes = GatewayNodes(repo)
        try:
            yield nodes, JobStore(repo)
        finally:
            nodes.close()
    finally:
        repo.git.close()


def _drain(args: argparse.Namespace) -> int:
    from annextui.operations.drain import drain_lines, leave_clusters, plan_drain, resolve_node
    from annextui.operations.jobs import Job, JobState, job_id

    rate: int | None = args.bwlimit  # parsed by argparse (_rate)
    with _session(args) as (nodes, store):
        drained = _already_drained(nodes, store, args.node)
        if drained is not None and not args.dry_run:
            return _print_result(args, drained, nodes, ["already drained"])
        node, _clusters = resolve_node(nodes, args.node)
        jid = job_id("drain", node)
        job = None if args.dry_run else store.resumable(jid)
        if job is None:
            plan = plan_drain(nodes, args.node, args.to)
            summary = plan.summary()
            if plan.unplaced:
                raise _Refused(plan.refusal(nodes))
            if args.dry_run:
                return _print_dry_run(args, summary, drain_lines(summary, nodes.name))
            job = Job(jid, "drain", node, params={**summary, "needed": plan.needed})
            nodes.repo.require_writable()  # refused before anything is written or moved
            nodes.require_reachable([node, *plan.targets])
            store.write_plan(job, plan.steps)
        else:
            nodes.require_reachable([node, *job.params.get("targets", ())])  # type: ignore[misc]
        job = _run(args, nodes, store, job, rate)
        lines: list[str] = []
        if job.state is JobState.DONE:
            nodes.close()  # commit the location logs before the cluster changes
            lines = leave_clusters(nodes, node)
        return _print_result(args, job, nodes, lines)


def _already_drained(nodes: GatewayNodes, store: JobStore, ident: str) -> Job | None:
    """The finished drain job of a node that is no longer in any cluster: running the same
    command again reports it instead of failing."""
    from annextui.backend.balance import resolve_repo
    from annextui.operations.jobs import JobState, job_id

    uuid = resolve_repo(nodes.repo, nodes.state, ident)
    job = store.load(job_id("drain", uuid))
    in_cluster = any(uuid in ns for ns in nodes.state.clusters.values())
    if job is None or job.state is not JobState.DONE or in_cluster:
        return None
    return job


# -- rebalance ---------------------------------------------------------------------------------


def _rebalance(args: argparse.Namespace) -> int:
    from annextui.backend.balance import resolve_members
    from annextui.operations.jobs import Job, job_id
    from annextui.operations.rebalance import plan_rebalance, rebalance_lines

    rate: int | None = args.bwlimit  # parsed by argparse (_rate)
    with _session(args) as (nodes, store):
        _label, _kind, members = resolve_members(nodes.repo, nodes.state, args.group)
        # one job per set of nodes, however they are named (cluster name, remote, UUID, group)
        jid = job_id("rebalance", ",".join(members))
        job = None if args.dry_run else store.resumable(jid)
        if job is None:
            plan = plan_rebalance(nodes, args.group)
            summary = plan.summary()
            proof = plan.proof()
            if args.dry_run:
                from annextui.backend.balance import proof_json, proof_text

                lines = rebalance_lines(summary)
                if proof is not None:
                    summary["proof"] = proof_json(proof)
                    lines += proof_text(proof)
                return _print_dry_run(args, summary, lines)
            nodes.repo.require_writable()  # refused before anything is written or moved
            nodes.require_reachable(plan.members)
            job = Job(jid, "rebalance", plan.label, params={**summary, "needed": plan.needed})
            if proof is not None:  # kept for the console's Jobs view: the proof of this plan
                from annextui.backend.balance import proof_text

                store.write_proof(job.id, proof_text(proof))
            store.write_plan(job, plan.steps)
        else:
            nodes.require_reachable(job.params.get("members", ()))  # type: ignore[arg-type]
        job = _run(args, nodes, store, job, rate)
        return _print_result(args, job, nodes, [])


# -- jobs ----------------------------------------------------------------------------------------


def cmd_jobs(args: argparse.Namespace) -> int:
    return _guard("jobs", _jobs, args)


def _jobs(args: argparse.Namespace) -> int:
    from annextui.operations.jobs import JobStore

    repo = _open(args)
    try:
        store = JobStore(repo)
        if args.action == "cancel":
            if not args.job:
                raise _Usage("jobs cancel: which job? (annextui jobs lists them)")
            try:
                jobs = [store.cancel(args.job)]
            except (KeyError, ValueError) as exc:
                raise _Refused(f"no job {args.job!r}") from exc
        else:
            jobs = store.all()
    finally:
        repo.git.close()
    if args.json:
        payload = {"command": "jobs", "jobs": [j.to_json() for j in jobs]}
        print(json.dumps({**payload, "error-messages": [], "success": True}, sort_keys=True))
        return EXIT_OK
    for j in jobs:
        print(
            f"{j.id}  {j.state:<9} {j.done_steps}/{j.steps} keys  "
            f"{j.transferred_keys} copies  {j.dropped_keys} drops"
            + (f"  pid {j.pid}" if j.pid else "")
        )
    return EXIT_OK


# -- running and printing ----------------------------------------------------------------------


def _run(
    args: argparse.Namespace, nodes: GatewayNodes, store: JobStore, job: Job, rate: int | None
) -> Job:
    from annextui.operations.engine import JobRunner, pause_on_signals
    from annextui.operations.transfer import Throttle

    needed = int(str(job.params.get("needed", 1)))
    with store.running(job.id), _bar(args, job) as (on_progress, on_bytes):
        runner = JobRunner(
            store,
            job,
            nodes,
            needed=needed,
            throttle=Throttle(rate),
            on_progress=on_progress,
            on_bytes=on_bytes,
        )
        with pause_on_signals(runner):
            return runner.run()


@contextmanager
def _bar(
    args: argparse.Namespace, job: Job
) -> Iterator[tuple[Callable[[Job], None] | None, Callable[[int], None] | None]]:
    enabled = args.progress if args.progress is not None else sys.stderr.isatty()
    if not enabled or (args.json and args.progress is None):
        yield None, None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[keys]}"),
        transient=True,
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(
            f"{job.kind} {job.target[:8]}",
            total=job.total_bytes or None,
            completed=job.done_bytes,
            keys=f"{job.done_steps}/{job.steps} keys",
        )

        def on_progress(j: Job) -> None:
            bar.update(task, completed=j.done_bytes, keys=f"{j.done_steps}/{j.steps} keys")

        def on_bytes(n: int) -> None:
            bar.advance(task, n)

        yield on_progress, on_bytes


def _print_dry_run(args: argparse.Namespace, summary: dict[str, object], lines: list[str]) -> int:
    if args.json:
        payload = {"command": args.command_label, "dry-run": True, "plan": summary}
        print(json.dumps({**payload, "error-messages": [], "success": True}, sort_keys=True))
    else:
        print("\n".join(lines))
    return EXIT_OK


def _print_result(args: argparse.Namespace, job: Job, nodes: GatewayNodes, lines: list[str]) -> int:
    from annextui.backend.units import format_rough
    from annextui.operations.jobs import JobState

    ok = job.state is JobState.DONE
    if args.json:
        errors = [job.error] if job.error else []
        errors += [f"{k}: {why}" for k, why in sorted(job.failures.items())]
        payload = {"command": args.command_label, "job": job.to_json(), "cluster": lines}
        print(json.dumps({**payload, "error-messages": errors, "success": ok}, sort_keys=True))
        return EXIT_OK if ok else EXIT_FAILED
    print(
        f"{job.kind} {nodes.name(job.target)}: {job.state}; {job.done_steps}/{job.steps} keys, "
        f"{job.transferred_keys} copies made ({format_rough(job.transferred_bytes, 2)}), "
        f"{job.dropped_keys} drops"
    )
    for line in lines:
        print(line)
    if job.state is JobState.PAUSED:
        print("paused: run the same command again to resume", file=sys.stderr)
    for _k, why in sorted(job.failures.items()):
        print(f"annextui: {why}", file=sys.stderr)
    if job.error and not job.failures:
        print(f"annextui: {job.error}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED
