"""Does the client's own state slow `git annex get`? Cycles of drop + timed get from node3.

Every `git annex get` and `drop` of N files commits N location logs (and their trees) to the
client's git-annex branch as loose objects (the test environment sets gc.auto = 0), so a
bench's client ends a round with thousands more. This takes the cluster of
tests/gateway/topology.py (bench_gateway's `small_files_in_cluster`), a remote to node3 straight
over ssh (bench_gateway's `direct-ssh`: no gateway, so only the client's state changes), and
runs the cycles of `--plan`, one letter each: `L` gets with the loose objects left in place,
`R` repacks the client first (`git repack -adq`, untimed). Per cycle: the get's wall time, the
bench's own CPU (client, sshd sessions, the client's ssh ControlMasters), the client's loose
objects and packs and the size of its .git.

    python bench/clientstate.py [--count 500] [--kib 4] [--plan LLLLLLLLLLLLRRRRRRRRLLLL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_gateway import (  # noqa: E402
    loose_objects,
    small_files_in_cluster,
    ssh_masters,
)
from common import OwnCpu, started_world  # noqa: E402


def _kib(path: Path) -> int:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--kib", type=int, default=4)
    ap.add_argument("--plan", default="L" * 12 + "R" * 8 + "L" * 4)
    args = ap.parse_args(argv)
    if set(args.plan) - {"L", "R"}:
        ap.error("--plan is made of L (loose objects kept) and R (repacked first)")
    with started_world("cstate-") as (tmp, sshd, env):
        topo, _, _ = small_files_in_cluster(
            env, sshd, tmp / "w", args.count, args.kib << 10, "annextui-shell"
        )
        cl = topo.client
        env.git(cl, "remote", "add", "direct-ssh", f"ssh://n3host{topo.nodes['node3']}")
        env.git(cl, "config", "remote.direct-ssh.fetch", "")
        env.annex(cl, "info", "-q", "direct-ssh")  # learn the UUID outside the timings
        env.annex(cl, "copy", "-q", "--to", "direct-ssh", "small", timeout=3600)
        assert sshd.pid is not None
        server = sshd.pid
        own = OwnCpu(lambda: [server, *ssh_masters()])
        print(
            f"{'cycle':>5} {'plan':>4} {'wall s':>7} {'own CPU':>7} {'loose':>7} "
            f"{'packs':>5} {'.git MiB':>8} {'load':>5}"
        )
        for i, step in enumerate(args.plan):
            env.annex(cl, "drop", "-q", "--force", "small")
            if step == "R":
                env.git(cl, "repack", "-adq")
            loose, packs = loose_objects(cl)
            size = _kib(cl / ".git") / 1024
            mine = own.now()
            t = time.perf_counter()
            env.annex(cl, "get", "-q", "--from", "direct-ssh", "small", timeout=3600)
            wall = time.perf_counter() - t
            mine = own.now() - mine
            print(
                f"{i:>5} {step:>4} {wall:7.2f} {mine:7.2f} {loose:>7} {packs:>5} {size:8.1f} "
                f"{os.getloadavg()[0]:5.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
