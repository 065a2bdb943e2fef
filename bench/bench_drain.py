"""Draining a cluster node: `annextui cluster drain` vs the equivalent git-annex run, one run.

Two identical clusters are built with the real git-annex (tests/operations/cluster.py: a
gateway with a work tree, three local bare nodes, `annex-cluster-node`), every file's content
on node1 only. Then node1 is emptied into node2:

* ours:   `annextui cluster drain node1 --to node2` (copy, verify, locked drop, location logs,
          node taken out of the cluster), run on the gateway;
* theirs: `git annex move --from node1 --to node2 --all` run on the gateway (git-annex copies
          through the gateway's own annex/tmp, then drops from node1).

Cases: many small keys and a few big ones. Each measurement is a fresh process tree
(common.timed_child: wall time, peak RSS of the command); the order alternates per round and
the best round counts. Throughput is bytes moved per second of wall time.

    python bench/bench_drain.py [--rounds 1] [--small-count 1000] [--small-kib 4]
                                [--big-count 4] [--big-mib 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import timed_child, write_files  # noqa: E402

from tests.operations import cluster as cl  # noqa: E402
from tests.support import annex as annex_support  # noqa: E402
from tests.support.annex import AnnexEnv  # noqa: E402


@dataclass
class Result:
    case: str
    tool: str
    round: int
    seconds: float
    bytes: int
    keys: int
    peak_rss_kib: int

    @property
    def mib_per_s(self) -> float:
        return self.bytes / self.seconds / (1 << 20)


def _cluster(env: AnnexEnv, root: Path, count: int, size: int) -> cl.Cluster:
    c = cl.build(env, root)
    write_files(c.gw, "data", count, size)
    env.annex(c.gw, "add", "-q", "--force-large", "data")
    env.git(c.gw, "commit", "-q", "-m", "data")
    env.annex(c.gw, "move", "-q", "--to", "node1", "data")
    return c


def _commands(c: cl.Cluster) -> dict[str, list[str]]:
    ours = [sys.executable, "-m", "annextui", "cluster", "drain", "node1", "--to", "node2",
            "-C", str(c.gw), "--json", "--no-progress"]  # fmt: skip
    theirs = ["git", "annex", "move", "-q", "--from", "node1", "--to", "node2", "--all"]
    return {"ours": ours, "theirs": theirs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--small-count", type=int, default=1000)
    ap.add_argument("--small-kib", type=int, default=4)
    ap.add_argument("--big-count", type=int, default=4)
    ap.add_argument("--big-mib", type=int, default=32)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    exe = annex_support.find_git_annex()
    if exe is None:
        print("git-annex not found", file=sys.stderr)
        return 1
    cases = {
        "small": (args.small_count, args.small_kib << 10),
        "big": (args.big_count, args.big_mib << 20),
    }
    results: list[Result] = []
    base = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    try:
        env = AnnexEnv.create(base, bin_dir=exe.parent, magic=annex_support.magic_db(exe))
        run_env = {**env.env, "PYTHONPATH": str(ROOT)}
        for rnd in range(args.rounds):
            for case, (count, size) in cases.items():
                tools = ["ours", "theirs"] if rnd % 2 == 0 else ["theirs", "ours"]
                for tool in tools:
                    root = base / f"{case}-{tool}-{rnd}"
                    root.mkdir()
                    c = _cluster(env, root, count, size)
                    t = timed_child(_commands(c)[tool], cwd=c.gw, env=run_env)
                    if len(c.objects("node2")) != count or c.objects("node1"):
                        raise RuntimeError(f"{case} {tool}: node1 was not drained into node2")
                    results.append(
                        Result(case, tool, rnd, t.seconds, count * size, count, t.max_rss_kib)
                    )
                    print(f"{case:<6} {tool:<7} {t.seconds:8.2f}s", file=sys.stderr)
                    shutil.rmtree(root, ignore_errors=True)
        env.cleanup()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


def report(results: list[Result]) -> str:
    best: dict[tuple[str, str], Result] = {}
    for r in results:
        k = (r.case, r.tool)
        if k not in best or r.seconds < best[k].seconds:
            best[k] = r
    lines = [
        f"{'case':<6} {'tool':<7} {'keys':>6} {'best s':>8} {'MiB/s':>8} {'keys/s':>8} "
        f"{'peak RSS':>9} {'ours/theirs':>11}"
    ]
    for case in ("small", "big"):
        theirs = best.get((case, "theirs"))
        for tool in ("ours", "theirs"):
            r = best.get((case, tool))
            if r is None:
                continue
            ratio = r.seconds / theirs.seconds if theirs else float("nan")
            lines.append(
                f"{case:<6} {tool:<7} {r.keys:>6} {r.seconds:8.2f} {r.mib_per_s:8.2f} "
                f"{r.keys / r.seconds:8.1f} {r.peak_rss_kib / 1024:7.1f}Mi {ratio:11.2f}"
            )
    lines.append(
        "ours = annextui cluster drain node1 --to node2; theirs = git annex move --from node1 "
        "--to node2 --all; ours/theirs = wall time ratio (goal <= 0.8)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    raise SystemExit(main())
