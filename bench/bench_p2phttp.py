"""The cluster gateway over HTTP: `annextui p2phttp` vs `git annex p2phttp`, same topology, one run,
with the ssh gateway (annextui-shell) for reference.

Topology (tests/gateway/topology.py, built with the real git-annex): a bare gateway whose
cluster has two local nodes and one ssh node (real git-annex-shell), placed by
`balanced=backup`. Both servers run at once in the gateway, with the same options
(`--wideopen -J8`), each on its own loopback port. The client has three remotes to that one
gateway: `ours` (annexUrl -> annextui p2phttp), `theirs` (annexUrl -> git annex p2phttp) and
`ssh` (ssh://, annex-shell = annextui-shell). For each case and round the client runs
`git annex copy --to R-mycluster`, drops its copies, `git annex get --from R-mycluster`, then
empties the cluster with `drop --from`; the order of the remotes alternates between rounds.
Best and median of `--rounds` per cell; ratios against `theirs`.

The floor (`--floor`, on by default): the same copy and get straight to one cluster node, with
no server at all: `direct-local` (node1 as a path remote) and `direct-ssh` (node3 through
git-annex-shell over ssh), as bench_gateway.py --profile has them. With the client's CPU time
(user + system of `git annex` and its children) beside each wall time, they show how much of a
transfer is the client's own hashing and copying, which no server can take away.

Server memory: each server's process tree is sampled from /proc every 20 ms during its runs
(peak summed RSS); then `--clients` clients (20) get `--clients-files` (20) small files from
the cluster at once through each server, and that peak is reported too.

    python bench/bench_p2phttp.py [--rounds 3] [--big-count 8] [--big-mib 64]
                                  [--small-count 500] [--small-kib 4] [--clients 20]
                                  [--clients-files 20] [--timeout 900] [--json out.json]
                                  [--no-floor] [--baseline DIR] [--target node3]

`--target node3` (or `px`) copies to and gets from that proxied remote of the gateway instead
of the cluster: the per-request cost of a proxied remote through each server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_gateway import (  # noqa: E402
    TreeSampler,
    _rss_kib,
    add_case,
    transfer_cases,
)
from common import SHELLS, Transfer, cpu_seconds, started_world, table_rows  # noqa: E402

from tests.gateway import topology  # noqa: E402
from tests.support import annex as annex_support  # noqa: E402
from tests.support import p2phttp as H  # noqa: E402
from tests.support import procs  # noqa: E402
from tests.support.annex import AnnexEnv  # noqa: E402

SERVER_OPTIONS = ("--wideopen", "-J8")
# remote name -> server kind (tests/support/p2phttp.SERVERS); "ssh" is the ssh gateway
PATHS = {"ours": "annextui", "theirs": "git-annex", "ssh": ""}
# the floor: straight to a cluster node, no server (path name -> node of tests/gateway/topology)
DIRECT = {"direct-local": "node1", "direct-ssh": "node3"}


@dataclass
class Measurement(Transfer):
    peak_server_kib: int
    client_cpu: float = 0.0  # user + system seconds of the client command and its children
    server_cpu: float = math.nan  # the same of the HTTP server's process tree meanwhile


class NoSampler(TreeSampler):
    """No server to sample (the direct paths)."""

    def __init__(self) -> None:
        super().__init__(Path("/"))

    def _run(self) -> None:
        pass


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _remote(name: str, target: str = topology.CLUSTER_NAME) -> str:
    """The client's remote for a path: the target (the cluster, or one of the gateway's
    proxied remotes) through a gateway, or a node itself."""
    return name if name in DIRECT else f"{name}-{target}"


def _add_direct(env: AnnexEnv, topo: topology.Topology, name: str) -> None:
    path = topo.nodes[DIRECT[name]]
    url = str(path) if name == "direct-local" else f"ssh://n3host{path}"
    env.git(topo.client, "remote", "add", name, url)
    env.git(topo.client, "config", f"remote.{name}.fetch", "")
    env.annex(topo.client, "info", "-q", name)  # learn the UUID outside the timings


class PidTreeSampler(TreeSampler):
    """Peak summed RSS of one process and its descendants (a p2phttp server: for upstream,
    also its ssh clients to the ssh node), in `peak_tree` as the gateway sampler has it."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(Path("/"), interval)
        self.pid = pid

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = [self.pid, *(p.pid for p in procs.descendants(self.pid))]
            self.peak_tree = max(self.peak_tree, sum(_rss_kib(p) for p in tree))
            self._stop.wait(self.interval)


def _sampler(name: str, servers: dict[str, H.P2PHttpServer], gw: Path) -> Callable[[], TreeSampler]:
    if name in DIRECT:
        return NoSampler
    if PATHS[name]:
        pid = servers[PATHS[name]].pid
        return lambda: PidTreeSampler(pid)
    return lambda: TreeSampler(gw)


def _timed(
    sampler: Callable[[], TreeSampler],
    server: H.P2PHttpServer | None,
    env: AnnexEnv,
    repo: Path,
    *args: str,
    t: float,
) -> tuple[float, int, float, float]:
    """`git annex -q ARGS` in REPO: its wall time, the server's peak RSS (KiB) meanwhile, the
    client's CPU seconds and the HTTP server's (NaN without one): CPU seconds are what the
    load of a shared machine disturbs least."""
    tree = server.tree() if server is not None else []
    with sampler() as s:
        cpu = _children_cpu()
        srv = cpu_seconds(tree)
        start = time.perf_counter()
        env.annex(repo, args[0], "-q", *args[1:], timeout=t)
        seconds = time.perf_counter() - start
        cpu = _children_cpu() - cpu
        srv = cpu_seconds(tree) - srv if server is not None else math.nan
    return seconds, s.peak_tree, cpu, srv


def _stop_all(servers: dict[str, H.P2PHttpServer]) -> None:
    for server in servers.values():
        server.stop()


def _restart(servers: dict[str, H.P2PHttpServer], kind: str) -> None:
    """Stop a server (its whole tree) and start the same one on the same port."""
    if not kind:
        return
    old = servers[kind]
    old.stop()
    servers[kind] = H.P2PHttpServer(kind, old.repo, old.env, old.options, port=old.port).start()


def _nodes_empty(topo: topology.Topology) -> bool:
    return not any(
        any(f.is_file() for f in (p / "annex" / "objects").rglob("*")) for p in topo.nodes.values()
    )


def _many_clients(
    env: AnnexEnv,
    topo: topology.Topology,
    server: H.P2PHttpServer,
    count: int,
    name: str,
    files: list[str],
    timeout: float,
) -> tuple[int, float]:
    """`count` clients get `files` from the cluster through `server` at once; the server
    tree's peak RSS (KiB) and the wall time of the slowest client (inf: one hung)."""
    clients = []
    for i in range(count):
        dest = topo.root / f"many-{name}-{i}"
        clients.append(
            H.clone_client(
                env, topo.gw, dest, "h", server.url, uuid=f"c11e0000-0000-4000-8000-{i + 500:012d}"
            )
        )
    with PidTreeSampler(server.pid) as s:
        t = time.perf_counter()
        running = [
            subprocess.Popen(
                ["git", "annex", "get", "-q", "--from", "h-mycluster", *files],
                cwd=c,
                env=env.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for c in clients
        ]
        deadline = t + timeout
        hung = False
        for p in running:
            try:
                _, err = p.communicate(timeout=max(0.1, deadline - time.perf_counter()))
            except subprocess.TimeoutExpired:
                hung = True
                procs.kill_pids([p.pid])
                p.communicate()
                continue
            if p.returncode != 0:
                raise RuntimeError(f"client get failed: {err.decode()[-2000:]}")
        dt = math.inf if hung else time.perf_counter() - t
    return s.peak_tree, dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big-count", type=int, default=8)
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--small-count", type=int, default=500)
    ap.add_argument("--small-kib", type=int, default=4)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--clients-files", type=int, default=20, help="small files each gets")
    ap.add_argument("--cases", default="big,small")
    ap.add_argument(
        "--target",
        default=topology.CLUSTER_NAME,
        help="what the gateways serve the client: the cluster (default) or a proxied remote "
        "of the gateway (node3: over ssh, px: on the gateway's machine)",
    )
    ap.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also copy/get straight to a node (direct-local, direct-ssh): no server at all",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another annextui commit (git archive COMMIT | tar -x -C DIR): "
        "its annextui p2phttp serves the same cluster as remote `base`, side by side",
    )
    ap.add_argument(
        "--retry-hung",
        action="store_true",
        help="a server that hung is restarted and kept in the later rounds; after a copy "
        "that hung, the cluster is filled through the ssh gateway and its get still timed",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    ap.add_argument(
        "--timeout", type=float, default=900, help="a client command taking longer is hung"
    )
    args = ap.parse_args(argv)

    results: list[Measurement] = []
    many: dict[str, tuple[int, float]] = {}
    servers: dict[str, H.P2PHttpServer] = {}
    hung: list[str] = []
    hung_paths: set[str] = set()
    with (
        started_world("bhttp-", keep=args.keep) as (tmp, sshd, env),
        contextlib.ExitStack() as stack,
    ):
        # the servers (those running at the end: _restart replaces them) stop before the world
        stack.callback(_stop_all, servers)
        topo = topology.build(env, sshd, tmp / "w", shell=SHELLS["ours"])
        cl = topo.client
        env.git(cl, "remote", "rename", "origin", "ssh")
        if args.baseline:
            # another checkout's annextui p2phttp, run from its own tree, as remote `base`
            H.SERVERS["base"] = (sys.executable, "-m", "annextui", "p2phttp")
            PATHS["base"] = "base"
        for kind in H.SERVERS:
            server_env = dict(env.env)
            if kind == "base":
                server_env["PYTHONPATH"] = str(args.baseline.resolve())
            servers[kind] = H.P2PHttpServer(kind, topo.gw, server_env, SERVER_OPTIONS).start()
        for name, kind in PATHS.items():
            if kind:
                H.point_client(env, cl, name, servers[kind].url, git_url=str(topo.gw))
            env.annex(cl, "info", "-q", name)  # learn the UUID outside the timings
        paths = list(PATHS)
        if args.floor:
            for name in DIRECT:
                _add_direct(env, topo, name)
            paths += list(DIRECT)
        cases = transfer_cases(args)
        for case in args.cases.split(","):
            count, size = cases[case]
            total = add_case(env, cl, case, count, size)
            for rnd in range(args.rounds):
                order = paths if rnd % 2 == 0 else paths[::-1]
                for name in order:
                    if name in hung_paths:
                        continue
                    remote = _remote(name, args.target)
                    sampler = _sampler(name, servers, topo.gw)
                    server = servers.get(PATHS.get(name, ""))
                    try:
                        try:
                            up, peak, cpu, srv = _timed(
                                sampler,
                                server,
                                env,
                                cl,
                                "copy",
                                "--to",
                                remote,
                                case,
                                t=args.timeout,
                            )
                        except annex_support.CommandFailed as e:
                            if not args.retry_hung:
                                raise
                            # the copy hung: restart the server, fill the cluster through the
                            # ssh gateway, and still time this server's get
                            hung.append(f"{case} round {rnd} {name}: {str(e).splitlines()[0]}")
                            print(f"  HUNG {hung[-1]}", file=sys.stderr)
                            _restart(servers, PATHS.get(name, ""))
                            sampler = _sampler(name, servers, topo.gw)
                            server = servers.get(PATHS.get(name, ""))
                            env.annex(cl, "copy", "-q", "--to", "ssh-mycluster", case)
                            up = math.nan  # printed as nan: this copy has no time
                        else:
                            results.append(
                                Measurement(case, "copy", name, up, total, count, peak, cpu, srv)
                            )
                        env.annex(cl, "drop", "-q", "--force", case)
                        down, peak, cpu, srv = _timed(
                            sampler, server, env, cl, "get", "--from", remote, case, t=args.timeout
                        )
                        results.append(
                            Measurement(case, "get", name, down, total, count, peak, cpu, srv)
                        )
                        env.annex(cl, "drop", "-q", "--force", "--from", remote, case)
                    except annex_support.CommandFailed as e:
                        # a hung server: say so, give it a fresh start, leave it out from now
                        # (with --retry-hung: only this round)
                        hung.append(f"{case} round {rnd} {name}: {str(e).splitlines()[0]}")
                        print(f"  HUNG {hung[-1]}", file=sys.stderr)
                        if not args.retry_hung:
                            hung_paths.add(name)
                        _restart(servers, PATHS.get(name, ""))
                        env.annex(cl, "get", "-q", "--from", "ssh-mycluster", case, check=False)
                        env.annex(cl, "drop", "-q", "--force", "--from", "ssh-mycluster", case)
                        continue
                    assert _nodes_empty(topo), "the cluster was not emptied"
                    print(
                        f"  {case} round {rnd} {name}: copy {up:.2f}s get {down:.2f}s",
                        file=sys.stderr,
                    )
            hung_paths.clear()
        if "small" in args.cases.split(",") and args.clients:
            env.annex(cl, "copy", "-q", "--to", "ours-mycluster", "small", timeout=3600)
            # the clients clone the gateway: it needs the files and where their content is
            env.git(cl, "push", "-q", "ssh", "main")
            env.annex(cl, "sync", "-q", "--no-content", "--only-annex", "ssh")
            for name, kind in PATHS.items():
                if kind:
                    files = [
                        f"small/f{i:04d}.bin"
                        for i in range(min(cases["small"][0], args.clients_files))
                    ]
                    many[name] = _many_clients(
                        env, topo, servers[kind], args.clients, name, files, args.timeout
                    )
                    print(f"  {args.clients} clients via {name}: {many[name]}", file=sys.stderr)

    print(report(results, many, args.clients, paths))
    for line in hung:
        print(f"hung (timed out after {args.timeout:.0f} s, path left out of that case): {line}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "transfers": [asdict(m) | {"mib_per_s": m.mib_per_s} for m in results],
                    "clients": {k: {"peak_kib": v[0], "seconds": v[1]} for k, v in many.items()},
                    "hung": hung,
                },
                indent=1,
            )
        )
    return 0


def _by_cell(
    results: list[Measurement], value: Callable[[Measurement], float]
) -> dict[tuple[str, str, str], list[float]]:
    cells: dict[tuple[str, str, str], list[float]] = {}
    for m in results:
        cells.setdefault((m.case, m.direction, m.shell), []).append(value(m))
    return cells


def report(
    results: list[Measurement],
    many: dict[str, tuple[int, float]],
    clients: int,
    paths: list[str] | None = None,
) -> str:
    peak: dict[tuple[str, str, str], int] = {}
    for m in results:
        k = (m.case, m.direction, m.shell)
        peak[k] = max(peak.get(k, 0), m.peak_server_kib)
    lines = [
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"{'case':<6} {'op':<5} {'path':<12} {'best s':>8} {'median s':>8} {'MiB/s':>8} "
        f"{'files/s':>8} {'client cpu':>10} {'srv cpu':>8} {'srv RSS':>9} {'/theirs':>8} "
        f"{'(median)':>8}",
    ]
    srv_cpu = {
        k: statistics.median(v)
        for k, v in _by_cell(results, lambda m: m.server_cpu).items()
        if not math.isnan(v[0])
    }
    for r in table_rows(results, ("copy", "get"), shells=tuple(paths or PATHS)):
        m = r.best
        ratio = m.seconds / r.theirs_best.seconds if r.theirs_best else math.nan
        lines.append(
            f"{r.case:<6} {r.direction:<5} {r.shell:<12} {m.seconds:8.2f} {r.median:8.2f} "
            f"{m.mib_per_s:8.1f} {m.files / m.seconds:8.1f} {m.client_cpu:10.2f} "
            f"{srv_cpu.get((r.case, r.direction, r.shell), math.nan):8.2f} "
            f"{peak[(r.case, r.direction, r.shell)] / 1024:7.1f}Mi "
            f"{ratio:8.2f} {r.median / r.theirs_median:8.2f}"
        )
    lines.append(
        "ours = annextui p2phttp, theirs = git annex p2phttp, ssh = annextui-shell over ssh; "
        "/theirs = wall time over git annex p2phttp's, best (and median) of the rounds; "
        "goal <= 0.7. srv RSS = the server's process tree (ssh: the gateway shell's tree); "
        "direct-local / direct-ssh = straight to node1 (path) / node3 (git-annex-shell), no "
        "server: the floor; client cpu = user+system s of the client command (best run); "
        "srv cpu = the HTTP server tree's user+system s meanwhile (median)"
    )
    for name, (kib, seconds) in many.items():
        lines.append(
            f"{clients} clients getting small files at once via {name}: server peak RSS "
            f"{kib / 1024:.1f} MiB, slowest client {seconds:.2f} s (goal: ours < 80 MiB)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
