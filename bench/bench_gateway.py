"""The cluster gateway served by annextui-shell vs git-annex-shell, same topology, one run.

Topology (tests/gateway/topology.py, built with the real git-annex): a client reaching a bare
gateway over a private OpenSSH sshd on 127.0.0.1; the gateway's cluster has two local nodes and
one ssh node (real git-annex-shell), placed by `balanced=backup` preferred content. The client
has two remotes to that one gateway: `ours` (`annex-shell` = annextui-shell) and `theirs`
(git-annex-shell), so `ours-mycluster` and `theirs-mycluster` are the same cluster served by
either program. For each case the client runs `git annex copy --to R-mycluster` and, after
dropping its copies, `git annex get --from R-mycluster`; then the cluster is emptied with
`drop --from`. Shells alternate which goes first; the best of `--rounds` counts.

Memory: the gateway's process tree (the shell and everything it spawns: upstream starts one
git-annex-shell per local node and an ssh client per ssh node) is sampled from /proc every
20 ms; its peak summed RSS is reported, with the peak of the gateway process alone.

    python bench/bench_gateway.py [--rounds 2] [--big-count 8] [--big-mib 64]
                                  [--small-count 500] [--small-kib 4] [--json out.json]

`--profile` measures small-file GETs only: the files are copied to the cluster once, then each
round times `git annex get` of all of them from `ours-mycluster`, `theirs-mycluster`, straight
from the ssh node (`direct-ssh`: node3 through git-annex-shell) and straight from a local
repository (`direct-local`: px, outside the cluster, as a path remote), in alternating order;
a last get from `ours-mycluster` runs annextui-shell under cProfile (bench/shellprofile.py: a
wrapper named as the remote's annex-shell, so the shell's own path carries no profiling code)
and prints per-GET figures.

`hop2-ssh` (with `--profile`) is node3 again, two OpenSSH hops away: the gateway host's sshd
runs `ssh n3host "$SSH_ORIGINAL_COMMAND"` as the forced command of the client's key for
`hop2host`, so nothing but ssh sits between the client and node3's git-annex-shell: the least
any gateway can take for a node3 key. From it and direct-ssh comes the placement's **floor**
(local nodes' files at direct-ssh's time, node3's at hop2-ssh's), a `/floor` column and a floor
row: measured per class with `--split` (and for both classes, per round, direct-ssh's local
get plus hop2-ssh's node3 get), derived without it (the two paths' gets of all files weighted
by how many files each class has: right where time goes per byte, for big files).

Every get and drop leaves ~1k loose objects in the client (a location log per file, and its
trees, on the git-annex branch; gc.auto is 0 here); the per-round table counts them. They do
not slow a get (bench/README.md, issue 17's floor). `--repack` packs the client (`git repack
-adq`, untimed) before every timed get, to check that: it did not make rounds steadier, and
every path was slower.

`--split` (with `--profile`) times the files by where the cluster keeps them instead of all at
once: each round gets the files held by a local node (node1/node2, served in the gateway's
process), then those held by node3 (one more ssh hop from the gateway), through every path
side by side, so the gap to the direct path is seen per class: a local key costs the gateway
only its own work, a node3 key also the second hop that the direct path does not take.

With `--baseline DIR` (a checkout of another annextui commit, e.g. made by
`git archive COMMIT | tar -x -C DIR`), a remote `base` serves the same cluster with that
checkout's annextui-shell, so a before/after comparison runs side by side; a last get from
`base-mycluster` is profiled the same way, for the per-GET profile before and after.

    python bench/bench_gateway.py --profile [--rounds 2] [--small-count 500] [--small-kib 4]
                                  [--baseline DIR] [--relay] [--split] [--repack]
                                  [--hop2-cipher C] [--node-controlpersist] [--node-ciphers L]
                                  [--acct]

`--acct` (with `--profile`; root and Debian's `acct`) adds each get's CPU by program, from
process accounting (bench/acct.py).

With `--relay`, a remote `relay` reaches the same gateway over the same ssh, its annex-shell
being annextui-relay: each session is handed to one `annextui p2phttp --relay-socket` kept
running for the whole bench (docs/deployment.md section 8), so `relay-mycluster` shows the
gateway without a Python start-up per session and with its ssh transport to node3 kept.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from acct import Accounting  # noqa: E402
from common import (  # noqa: E402
    SHELLS,
    OwnCpu,
    Transfer,
    best_and_median,
    machine_busy_seconds,
    started_world,
    table_rows,
    write_files,
)
from shellprofile import summary, write_wrapper  # noqa: E402

from tests.gateway import topology  # noqa: E402
from tests.support import p2phttp, procs  # noqa: E402
from tests.support.annex import AnnexEnv  # noqa: E402
from tests.support.relay import relay_options, write_relay_program  # noqa: E402
from tests.support.sshd import Sshd  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Measurement(Transfer):
    peak_tree_kib: int
    peak_gateway_kib: int


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE // 1024
    except (OSError, ValueError, IndexError):
        return 0


class TreeSampler:
    """Peak RSS of the gateway shell processes (argv names the gateway repo and p2pstdio) and
    of all their descendants, summed per gateway process tree."""

    def __init__(self, gateway: Path, interval: float = 0.02) -> None:
        self.gateway = str(gateway)
        self.interval = interval
        self.peak_tree = 0
        self.peak_gateway = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            all_procs = procs.processes()
            children: dict[int, list[int]] = {}
            for p in all_procs:
                children.setdefault(p.ppid, []).append(p.pid)
            roots = [
                p.pid
                for p in all_procs
                if "p2pstdio" in p.cmdline
                and self.gateway in p.cmdline
                and p.exe_name not in ("ssh", "sh", "bash", "time")
            ]
            # the shell program itself (not its sshd/sh parents): skip roots below other roots
            root_set = set(roots)
            for r in roots:
                tree = [r]
                i = 0
                while i < len(tree):
                    tree.extend(c for c in children.get(tree[i], []) if c not in root_set)
                    i += 1
                total = sum(_rss_kib(pid) for pid in tree)
                self.peak_tree = max(self.peak_tree, total)
                self.peak_gateway = max(self.peak_gateway, _rss_kib(r))
            self._stop.wait(self.interval)


def ssh_masters() -> list[int]:
    """The client's ssh ControlMasters (annex.sshcaching) alive now: git-annex detaches them,
    they are reparented to the bench (a child subreaper) and live until it ends, so their CPU
    (the client's side of every byte's ssh, the larger part of a big get's) is read from /proc
    while they run; reaped, it is in the bench's RUSAGE_CHILDREN."""
    me = os.getpid()
    return [p.pid for p in procs.processes() if p.ppid == me and p.exe_name == "ssh"]


def transfer_cases(args: argparse.Namespace) -> dict[str, tuple[int, int]]:
    """The cases of the gateway benches: name -> (file count, file size in bytes)."""
    return {
        "big": (args.big_count, args.big_mib << 20),
        "small": (args.small_count, args.small_kib << 10),
    }


def add_case(env: AnnexEnv, repo: Path, case: str, count: int, size: int) -> int:
    """`count` files of `size` bytes annexed and committed in REPO/CASE; their total size."""
    write_files(repo, case, count, size)
    env.annex(repo, "add", "-q", "--force-large", case)
    env.git(repo, "commit", "-q", "-m", case)
    return count * size


def _nodes_empty(topo: topology.Topology) -> bool:
    return not any(
        any(f.is_file() for f in (p / "annex" / "objects").rglob("*")) for p in topo.nodes.values()
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--big-count", type=int, default=8)
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--small-count", type=int, default=500)
    ap.add_argument("--small-kib", type=int, default=4)
    ap.add_argument("--cases", default="big,small")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="small GETs only: cluster vs direct paths, then a cProfile of annextui-shell",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        help="with --profile: also time base-mycluster, served by this annextui checkout",
    )
    ap.add_argument(
        "--relay",
        action="store_true",
        help="with --profile: also time relay-mycluster, the same gateway served through "
        "annextui-relay by one long-running `annextui p2phttp --relay-socket`",
    )
    ap.add_argument(
        "--split",
        action="store_true",
        help="with --profile: time local-node keys and node3 keys separately",
    )
    ap.add_argument(
        "--repack",
        action="store_true",
        help="with --profile: repack the client's repository (untimed) before every timed get "
        "(a check of the client's state: slower, see bench/README.md)",
    )
    ap.add_argument(
        "--hop2-cipher",
        default=HOP2_CIPHER,
        help="with --profile: the cipher of hop2-ssh's inner hop (gateway host to node3); "
        "'default' for OpenSSH's own choice",
    )
    ap.add_argument(
        "--node-controlpersist",
        action="store_true",
        help="the ssh config gives node3 (n3host) ControlMaster auto and ControlPersist: "
        "gateways then reach it by OpenSSH with one connection kept between sessions "
        "(annextui-shell runs ssh when the config asks for ControlMaster)",
    )
    ap.add_argument(
        "--node-ciphers",
        metavar="LIST",
        help="the ssh config's Ciphers for node3 (n3host), e.g. aes128-gcm@openssh.com: what "
        "every OpenSSH client to node3 offers (paramiko keeps its own preference)",
    )
    ap.add_argument(
        "--acct",
        action="store_true",
        help="with --profile: each get's CPU by program (process accounting; root and the "
        "acct package), a table after the timings",
    )
    args = ap.parse_args(argv)

    results: list[Measurement] = []
    with started_world("bgw-", keep=args.keep) as (tmp, sshd, env):
        topo = topology.build(env, sshd, tmp / "w", shell=SHELLS["ours"])
        if args.node_controlpersist:
            (tmp / "cm").mkdir()
            sshd.set_host_options(
                "n3host",
                ControlMaster="auto",
                ControlPersist="120",
                ControlPath=str(tmp / "cm" / "%C"),
            )
        if args.node_ciphers:
            sshd.set_host_options("n3host", Ciphers=args.node_ciphers)
        cl = topo.client
        env.git(cl, "remote", "rename", "origin", "ours")
        env.git(cl, "remote", "add", "theirs", f"ssh://gw{topo.gw}")
        env.git(cl, "config", "remote.theirs.annex-shell", SHELLS["theirs"])
        env.git(cl, "fetch", "-q", "theirs")
        env.annex(cl, "info", "-q", "theirs")  # learn the UUID outside the timings
        if args.profile:
            if args.baseline is not None:
                base = write_wrapper(tmp / "annextui-shell-base", args.baseline.resolve())
                env.git(cl, "remote", "add", "base", f"ssh://gw{topo.gw}")
                env.git(cl, "config", "remote.base.annex-shell", str(base))
                env.git(cl, "fetch", "-q", "base")
                env.annex(cl, "info", "-q", "base")
            size = args.small_kib << 10
            base_root = args.baseline.resolve() if args.baseline is not None else None
            with contextlib.ExitStack() as stack:
                assert sshd.pid is not None
                servers = [sshd.pid]
                if args.relay:
                    servers.append(stack.enter_context(_relay_remote(env, topo, tmp)))
                own_cpu = OwnCpu(lambda: [*servers, *ssh_masters()])
                record: dict[str, object] = {}
                print(
                    profile_gets(
                        env,
                        topo,
                        tmp,
                        args.rounds,
                        args.small_count,
                        size,
                        base_root,
                        split=args.split,
                        own_cpu=own_cpu,
                        repack=args.repack,
                        record=record,
                        hop2_cipher=args.hop2_cipher,
                        acct=Accounting(tmp / "acct") if args.acct else None,
                    )
                )
            if args.json:
                args.json.write_text(json.dumps(record, indent=1))
            return 0
        cases = transfer_cases(args)
        for case in args.cases.split(","):
            count, size = cases[case]
            total = add_case(env, cl, case, count, size)
            for rnd in range(args.rounds):
                order = list(SHELLS) if rnd % 2 == 0 else list(reversed(SHELLS))
                for name in order:
                    remote = f"{name}-{topology.CLUSTER_NAME}"
                    with TreeSampler(topo.gw) as s:
                        t = time.perf_counter()
                        env.annex(cl, "copy", "-q", "--to", remote, case, timeout=3600)
                        up = time.perf_counter() - t
                    results.append(
                        Measurement(
                            case, "copy", name, up, total, count, s.peak_tree, s.peak_gateway
                        )
                    )
                    env.annex(cl, "drop", "-q", "--force", case)
                    with TreeSampler(topo.gw) as s:
                        t = time.perf_counter()
                        env.annex(cl, "get", "-q", "--from", remote, case, timeout=3600)
                        down = time.perf_counter() - t
                    results.append(
                        Measurement(
                            case, "get", name, down, total, count, s.peak_tree, s.peak_gateway
                        )
                    )
                    env.annex(cl, "drop", "-q", "--force", "--from", remote, case, timeout=3600)
                    assert _nodes_empty(topo), "the cluster was not emptied"
                    print(
                        f"  {case} round {rnd} {name}: copy {up:.2f}s get {down:.2f}s",
                        file=sys.stderr,
                    )

    print(report(results))
    if args.json:
        args.json.write_text(
            json.dumps([asdict(m) | {"mib_per_s": m.mib_per_s} for m in results], indent=1)
        )
    return 0


# The direct paths' remotes: node3 (a cluster node, reached over ssh: the gateway serves it
# by the log, so extra copies there change nothing) and px (a local repository outside the
# cluster: copies on node1 would all be served by the gateway's local fast path).
DIRECT = {"direct-ssh": "node3", "direct-local": "px"}
HOP2 = "hop2-ssh"
# The inner hop's cipher: the one annextui's own transport to node3 prefers (ssh.py), the
# fastest on a CPU with AES instructions; OpenSSH's default, chacha20-poly1305, moves fewer
# bytes per CPU second there, and the floor is the least a gateway can take.
HOP2_CIPHER = "aes128-gcm@openssh.com"


def _hop2_remote(env: AnnexEnv, topo: topology.Topology, cipher: str = HOP2_CIPHER) -> None:
    """Remote `hop2-ssh` of the client: node3 through the gateway host's sshd, whose forced
    command relays the session by OpenSSH (`ssh n3host "$SSH_ORIGINAL_COMMAND"`), so the client's
    git-annex runs node3's git-annex-shell two ssh hops away with nothing in between: what any
    gateway must at least add to a node3 key (node3's sshd encrypts, the middle decrypts and
    encrypts again). The client's ssh to hop2host is ControlMaster-cached like direct-ssh's
    (annex.sshcaching); the inner ssh is not (the test ssh config has no ControlMaster, unless
    --node-controlpersist gives node3 one), so each session opens a fresh connection to node3,
    as a gateway's session does. `cipher`: the inner
    hop's ("default": OpenSSH's own choice, chacha20-poly1305, as git-annex's gateway gets)."""
    sshd = topo.sshd
    option = "" if cipher == "default" else f" -c {cipher}"
    inner = f'exec {sshd.real_ssh} -F {sshd.config_path}{option} -T n3host "$SSH_ORIGINAL_COMMAND"'
    sshd.add_host("hop2host", command=inner)
    cl = topo.client
    env.git(cl, "remote", "add", HOP2, f"ssh://hop2host{topo.nodes['node3']}")
    env.git(cl, "config", f"remote.{HOP2}.fetch", "")
    env.annex(cl, "info", "-q", HOP2)  # learn the UUID (node3's) outside the timings


def loose_objects(repo: Path) -> tuple[int, int]:
    """(loose objects, packs) of the git repository REPO (`git count-objects -v`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    out = subprocess.run(
        ["git", "-C", str(repo), "count-objects", "-v"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return int(fields["count"]), int(fields["packs"])


@contextlib.contextmanager
def _relay_remote(env: AnnexEnv, topo: topology.Topology, tmp: Path) -> Iterator[int]:
    """Remote `relay` of the client: the gateway reached by the same ssh, its annex-shell
    annextui-relay handing each session to one `annextui p2phttp --relay-socket` kept running
    for the whole bench (docs/deployment.md section 8): no Python start-up per session, and the
    server's ssh transport to node3 kept between sessions."""
    sock_dir = tmp / "relay"
    sock_dir.mkdir(mode=0o700)
    sock = sock_dir / "relay.sock"
    program = write_relay_program(tmp / "relaybin" / "annextui-relay", sock)
    with p2phttp.running("annextui", topo.gw, env.env, relay_options(sock)) as server:
        cl = topo.client
        env.git(cl, "remote", "add", "relay", f"ssh://gw{topo.gw}")
        env.git(cl, "config", "remote.relay.annex-shell", str(program))
        env.git(cl, "fetch", "-q", "relay")
        env.annex(cl, "info", "-q", "relay")  # learn the UUID outside the timings
        yield server.pid


def files_by_class(env: AnnexEnv, topo: topology.Topology, case: str) -> dict[str, list[str]]:
    """The client's files of CASE by where the cluster keeps them: "local" (node1, node2: served
    in the gateway's process) and "node3" (the ssh node). Read while the client holds them all."""
    out = env.annex(topo.client, "find", "--format=${key}\t${file}\n", case).stdout
    file_of = dict(line.split("\t", 1) for line in out.splitlines() if line)
    classes: dict[str, list[str]] = {"local": [], "node3": []}
    for name, repo in topo.nodes.items():
        for obj in (repo / "annex" / "objects").rglob("*"):
            if obj.is_file() and obj.name in file_of:
                classes["node3" if name == "node3" else "local"].append(file_of[obj.name])
    for files in classes.values():
        files.sort()
    return classes


def small_files_in_cluster(
    env: AnnexEnv, sshd: Sshd, root: Path, count: int, size: int, shell: str
) -> tuple[topology.Topology, dict[str, list[str]], dict[str, str]]:
    """tests/gateway/topology.py's cluster under `root`, served to the client by `shell`, with
    the client's `count` files of `size` bytes in "small" copied into it: the topology, the
    files by where the cluster keeps them (`files_by_class`) and each file's key."""
    topo = topology.build(env, sshd, root, shell=shell)
    cl = topo.client
    write_files(cl, "small", count, size)
    env.annex(cl, "add", "-q", "--force-large", "small")
    env.git(cl, "commit", "-q", "-m", "small")
    env.annex(cl, "copy", "-q", "--to", f"origin-{topology.CLUSTER_NAME}", "small")
    classes = files_by_class(env, topo, "small")
    found = env.annex(cl, "find", "--format=${file}\t${key}\n", "small").stdout
    key_of = dict(line.split("\t") for line in found.splitlines() if line)
    return topo, classes, key_of


def profile_gets(
    env: AnnexEnv,
    topo: topology.Topology,
    tmp: Path,
    rounds: int,
    count: int,
    size: int,
    baseline: Path | None = None,
    *,
    split: bool = False,
    own_cpu: OwnCpu | None = None,
    repack: bool = False,
    record: dict[str, object] | None = None,
    hop2_cipher: str = HOP2_CIPHER,
    acct: Accounting | None = None,
) -> str:
    """Small GETs through each path (timed side by side), then one profiled gateway GET run
    (and one of the baseline checkout's, served as `base`). `split`: the files held by local
    nodes and those held by node3 are timed separately (a class per table). `own_cpu`: the
    bench's own CPU per get, told apart from the rest of the machine's. `repack`: the client's
    repository is repacked before every timed get (see the module docstring).
    `record`: filled with the placement, every get and the floor (for --json). `hop2_cipher`:
    the cipher of hop2-ssh's inner hop (see `_hop2_remote`). `acct`: each timed get's CPU by
    program (bench/acct.py), as a table after the timings."""
    cl = topo.client
    write_files(cl, "small", count, size)
    env.annex(cl, "add", "-q", "--force-large", "small")
    env.git(cl, "commit", "-q", "-m", "small")
    cluster = f"ours-{topology.CLUSTER_NAME}"
    env.annex(cl, "copy", "-q", "--to", cluster, "small", timeout=3600)
    held = files_by_class(env, topo, "small")
    n_local, n_node3 = len(held["local"]), len(held["node3"])
    placement = (
        f"{count} files: {n_local} on the gateway's local nodes (node1, node2), "
        f"{n_node3} on node3 (the ssh node)"
    )
    print(placement, file=sys.stderr)
    if count <= 16:  # a session's order matters for a few big files (when node3 is first needed)
        node3 = set(held["node3"])
        files = sorted(held["local"] + held["node3"])
        order = " ".join("3" if f in node3 else "L" for f in files)
        print(f"  in the order a get asks for them (3 node3, L local): {order}", file=sys.stderr)
    classes = held if split else {"all": ["small"]}
    for name, node in DIRECT.items():
        path = topo.px if node == "px" else topo.nodes[node]
        url = str(path) if name == "direct-local" else f"ssh://n3host{path}"
        env.git(cl, "remote", "add", name, url)
        env.git(cl, "config", f"remote.{name}.fetch", "")
        env.annex(cl, "info", "-q", name)  # learn the UUID outside the timings
        env.annex(cl, "copy", "-q", "--to", name, "small", timeout=3600)
    _hop2_remote(env, topo, hop2_cipher)  # node3's repository: direct-ssh's copy filled it
    paths = [cluster, f"theirs-{topology.CLUSTER_NAME}", "direct-ssh", HOP2, "direct-local"]
    remotes = env.git(cl, "remote").split()
    if "base" in remotes:
        paths.insert(1, f"base-{topology.CLUSTER_NAME}")
    if "relay" in remotes:
        paths.insert(1, f"relay-{topology.CLUSTER_NAME}")
    results: list[Transfer] = []

    busy: dict[tuple[str, str], list[float]] = {}
    own: dict[tuple[str, str], list[float]] = {}
    by_round: list[tuple[float, float, float]] = []  # (wall, own CPU, others' CPU) per get
    account = own_cpu if own_cpu is not None else OwnCpu(lambda: ())

    def get(remote: str, cls: str = "all") -> float:
        env.annex(cl, "drop", "-q", "--force", "small")
        if repack:
            # untimed: the check of the client's state (--repack's help)
            env.git(cl, "repack", "-adq")
        with acct.segment(f"{cls} {remote}") if acct else contextlib.nullcontext():
            cpu = machine_busy_seconds()
            mine = account.now()
            t = time.perf_counter()
            env.annex(cl, "get", "-q", "--from", remote, *classes.get(cls, ["small"]), timeout=3600)
            dt = time.perf_counter() - t
        mine = account.now() - mine
        whole = machine_busy_seconds() - cpu
        busy.setdefault((cls, remote), []).append(whole)
        own.setdefault((cls, remote), []).append(mine)
        by_round.append((dt, mine, max(0.0, whole - mine)))
        return dt

    rounds_table: list[str] = []
    for rnd in range(rounds):
        del by_round[:]
        loose, packs = loose_objects(cl)
        # the other repositories a get reaches, to tell a growing client from a growing server
        servers = {"gw": topo.gw, "px": topo.px, "node3": topo.nodes["node3"]}
        at_servers = ", ".join(f"{k} {loose_objects(v)[0]}" for k, v in servers.items())
        print(
            f"  round {rnd}: loose objects: client {loose} ({packs} packs), {at_servers}",
            file=sys.stderr,
        )
        for cls, files in classes.items():
            n = count if cls == "all" else len(files)
            for remote in paths if rnd % 2 == 0 else reversed(paths):
                dt = get(remote, cls)
                results.append(Transfer(cls, "get", remote, dt, n * size, n))
                _, mine, others = by_round[-1]
                print(
                    f"  round {rnd} {cls} {remote}: get {dt:.2f}s, own CPU {mine:.2f}s, "
                    f"others' CPU {others:.2f}s",
                    file=sys.stderr,
                )
        rounds_table.append(
            f"{rnd:>5} {sum(w for w, _, _ in by_round):8.2f} {sum(m for _, m, _ in by_round):8.2f} "
            f"{sum(o for _, _, o in by_round):8.2f} {os.getloadavg()[0]:6.1f} {loose:>7}"
        )
    best, median = best_and_median(results)
    floors = placement_floor(results, n_local, n_node3)
    # CPU s: the whole machine's busy CPU seconds during the get (median of the rounds), all
    # processes of every path (client, sshd, shells, ssh hops); `busy` = CPU s / (wall x cores):
    # near 1.0 the path is CPU-bound, and its wall time cannot drop below its CPU work / cores.
    cores = os.cpu_count() or 1
    per_round = _round_times(results)
    paired = {
        (cls, remote): paired_ratio(per_round[(cls, remote)], per_round[(cls, "direct-ssh")])
        for cls in classes
        for remote in paths
    }
    lines: list[str] = [placement]
    for cls, files in classes.items():
        n = count if cls == "all" else len(files)
        lines.append(
            f"{cls + f' ({n})':<12} {'path':<18} {'best s':>8} {'median s':>8} {'ms/file':>8} "
            f"{'CPU s':>8} {'busy':>6} {'own CPU':>8} {'/direct-ssh':>11} {'/floor':>7} "
            f"{'paired':>7}"
        )
        direct = median[(cls, "get", "direct-ssh")]
        floor, how = floors[cls]
        for remote in paths:
            m = best[(cls, "get", remote)]
            med = median[(cls, "get", remote)]
            cpu = statistics.median(busy[(cls, remote)])
            lines.append(
                f"{'':<12} {remote:<18} {m.seconds:8.2f} {med:8.2f} "
                f"{med / max(n, 1) * 1000:8.2f} {cpu:8.2f} {cpu / (med * cores):6.2f} "
                f"{statistics.median(own[(cls, remote)]):8.2f} {med / direct:11.2f} "
                f"{med / floor:7.2f} "
                f"{paired[(cls, remote)]:7.2f}"
            )
        lines.append(
            f"{'':<12} {'floor (' + how + ')':<27} {floor:8.2f} "
            f"{floor / max(n, 1) * 1000:8.2f} {'':>8} {'':>6} {'':>8} {floor / direct:11.2f} "
            f"{1:7.2f}"
        )
    if split:
        # The whole placement at once: each path's two class gets of a round added up.
        lines.append(
            f"{'both classes':<12} {'path':<18} {'median s':>8} {'/direct-ssh':>11} {'/floor':>7}"
        )
        both = class_sums(results)
        floor, how = floors["both"]
        direct = statistics.median(both["direct-ssh"])
        for remote in paths:
            med = statistics.median(both[remote])
            lines.append(
                f"{'':<12} {remote:<18} {med:8.2f} {med / direct:11.2f} {med / floor:7.2f}"
            )
        lines.append(
            f"{'':<12} {'floor (' + how + ')':<18} {floor:8.2f} {floor / direct:11.2f} {1:7.2f}"
        )
    lines.append(
        "ms/file and /direct-ssh: by the median of the rounds; own CPU: the bench's processes "
        "(client, sshd sessions, shells, nodes); paired: the median of the rounds' own ratios "
        "(the path's get over direct-ssh's get of the same round)"
    )
    lines.append(
        "floor: the least any gateway can take for this placement, a local node's files at "
        "direct-ssh's time (one ssh hop) and node3's at hop2-ssh's (node3 through two OpenSSH "
        "hops, nothing between them); "
        + (
            "measured: each class's own get (both classes: per round, direct-ssh's local get "
            "plus hop2-ssh's node3 get)"
            if split
            else f"derived, not measured: {n_local}/{count} x direct-ssh + {n_node3}/{count} x "
            "hop2-ssh (medians; right where time goes per byte, big files; for small files it "
            f"counts hop2-ssh's once-per-session connection to node3 only {n_node3}/{count} "
            "times: --split measures it)"
        )
    )
    lines.append(
        f"{'round':>5} {'wall s':>8} {'own CPU':>8} {'others':>8} {'load':>6} {'loose':>7}"
    )
    lines.extend(rounds_table)
    lines.append(
        "per round, all paths summed: others = the machine's busy CPU beyond the bench's own "
        "(other users' load); load = 1-minute load average at the round's end; loose = the "
        "client's loose objects at the round's start"
        + (" (each get starts repacked: --repack)" if repack else "")
    )
    if acct is not None:
        lines.append(acct.table([f"{cls} {remote}" for cls in classes for remote in paths]))
        lines.append(
            "CPU s by program: process accounting (--acct), user + system CPU of the processes "
            "that ended during the get, by command name, median of the rounds"
        )
    if record is not None:
        record["placement"] = {"local": n_local, "node3": n_node3}
        record["gets"] = [asdict(r) for r in results]
        record["floor"] = {cls: {"seconds": f, "how": how} for cls, (f, how) in floors.items()}
        record["paired"] = {f"{cls} {remote}": r for (cls, remote), r in paired.items()}
    profiled = [("ours", ROOT, SHELLS["ours"])]
    if baseline is not None:
        profiled.append(("base", baseline, str(tmp / "annextui-shell-base")))
    for remote, root, shell in profiled:
        prof_dir = tmp / f"profiles-{remote}"
        wrapper = write_wrapper(tmp / f"annextui-shell-profiled-{remote}", root, prof_dir)
        env.git(cl, "config", f"remote.{remote}.annex-shell", str(wrapper))
        try:
            dt = get(f"{remote}-{topology.CLUSTER_NAME}")
        finally:
            env.git(cl, "config", f"remote.{remote}.annex-shell", shell)
        lines.append(f"profiled {remote}-{topology.CLUSTER_NAME} ({root}): {dt:.2f}s (cProfile)")
        lines.append(summary(prof_dir, count))
    return "\n".join(lines)


def _round_times(results: list[Transfer]) -> dict[tuple[str, str], list[float]]:
    """Each (class, path)'s get times, in round order."""
    out: dict[tuple[str, str], list[float]] = {}
    for r in results:
        out.setdefault((r.case, r.shell), []).append(r.seconds)
    return out


def paired_ratio(times: list[float], direct: list[float]) -> float:
    """The median over rounds of each round's time over direct-ssh's time in that round.

    The rounds of one run drift together (bench/README.md, "Rounds that drift"), and a path's
    median and direct-ssh's median can come from different rounds; a round's paths run back to
    back, so their ratio within it is the steadier figure."""
    return statistics.median(t / d for t, d in zip(times, direct, strict=True))


def class_sums(results: list[Transfer]) -> dict[str, list[float]]:
    """Per path, its local-class and node3-class gets of each round added up (--split)."""
    times = _round_times(results)
    paths = {path for _, path in times}
    return {
        p: [a + b for a, b in zip(times[("local", p)], times[("node3", p)], strict=True)]
        for p in paths
    }


def placement_floor(
    results: list[Transfer], n_local: int, n_node3: int
) -> dict[str, tuple[float, str]]:
    """The least any gateway can take for the files of each class (and, with --split, for
    both classes): a local node's files at direct-ssh's time, node3's at hop2-ssh's; with the
    seconds, how it was had ("derived" from the two paths' gets of all files, weighted by the
    placement, or measured on the class's own get)."""
    times = _round_times(results)
    med = {k: statistics.median(v) for k, v in times.items()}
    if ("all", "direct-ssh") in med:
        n = max(n_local + n_node3, 1)
        derived = (n_local * med[("all", "direct-ssh")] + n_node3 * med[("all", HOP2)]) / n
        return {"all": (derived, "derived")}
    per_round = [
        a + b for a, b in zip(times[("local", "direct-ssh")], times[("node3", HOP2)], strict=True)
    ]
    return {
        "local": (med[("local", "direct-ssh")], "= direct-ssh"),
        "node3": (med[("node3", HOP2)], f"= {HOP2}"),
        "both": (statistics.median(per_round), "measured"),
    }


def report(results: list[Measurement]) -> str:
    peak: dict[tuple[str, str, str], tuple[int, int]] = {}
    for m in results:
        k = (m.case, m.direction, m.shell)
        t, g = peak.get(k, (0, 0))
        peak[k] = (max(t, m.peak_tree_kib), max(g, m.peak_gateway_kib))
    lines = [
        f"{'case':<6} {'op':<5} {'shell':<7} {'best s':>8} {'median s':>8} {'MiB/s':>8} "
        f"{'files/s':>8} {'tree RSS':>9} {'gw RSS':>8} {'ours/theirs':>11} {'(median)':>8}",
    ]
    for r in table_rows(results, ("copy", "get")):
        m = r.best
        ratio = m.seconds / r.theirs_best.seconds if r.theirs_best else math.nan
        tree, gw = peak[(r.case, r.direction, r.shell)]
        lines.append(
            f"{r.case:<6} {r.direction:<5} {r.shell:<7} {m.seconds:8.2f} {r.median:8.2f} "
            f"{m.mib_per_s:8.1f} {m.files / m.seconds:8.1f} {tree / 1024:7.1f}Mi "
            f"{gw / 1024:6.1f}Mi {ratio:11.2f} {r.median / r.theirs_median:8.2f}"
        )
    lines.append(
        "ours/theirs = annextui-shell wall time / git-annex-shell wall time, best of the rounds "
        "(and of the medians); goal <= 0.8"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
