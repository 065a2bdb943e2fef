"""One P2P session's GETs timed from the client's side of the wire: start-up, first GET, each GET.

`git annex get` hides where a gateway's time goes behind the client's own per-file work. Here a
minimal client speaks the protocol itself over the real ssh (the topology of
tests/gateway/topology.py, as bench_gateway.py builds it): `AUTH-SUCCESS` after the ssh command
starts, then `GET`/`DATA`/`VALID`/`SUCCESS` per key, timed request line to validity line. Paths,
side by side in alternating order: `ours` (annextui-shell serving the cluster), `theirs`
(git-annex-shell serving it) and `direct` (node3's git-annex-shell, no gateway); the keys by
where the cluster keeps them: `local` (node1/node2, in the gateway's process) and `node3` (one
more ssh hop from the gateway). What a path pays once per session (start-up, and for node3 the
gateway's connection to it, paid by the first GET) is then apart from what it pays per GET.

    python bench/getlatency.py [--count 150] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_gateway import small_files_in_cluster  # noqa: E402
from common import SHELLS, started_world  # noqa: E402

from tests.gateway import topology  # noqa: E402


class Session:
    """One p2pstdio session driven over a command's pipes (the ssh client)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self._in = self.proc.stdout
        self._out = self.proc.stdin
        self._buf = b""

    def line(self) -> bytes:
        while b"\n" not in self._buf:
            self._more()
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def skip(self, n: int) -> None:
        while len(self._buf) < n:
            self._more()
        self._buf = self._buf[n:]

    def _more(self) -> None:
        chunk = self._in.read(65536)
        if not chunk:
            raise EOFError("the session ended early")
        self._buf += chunk

    def send(self, text: str) -> None:
        self._out.write(text.encode())

    def close(self) -> None:
        self._out.close()
        self.proc.wait()


def run_session(argv: list[str], env: dict[str, str], keys: list[str]) -> tuple[float, list[float]]:
    """Seconds to AUTH-SUCCESS, and each GET's seconds (request line to validity line)."""
    s = Session(argv, env)
    auth = s.line()
    assert auth.startswith(b"AUTH-SUCCESS"), auth
    to_auth = time.perf_counter() - s.started
    s.send("VERSION 2\n")
    assert s.line().startswith(b"VERSION")
    gets = []
    for key in keys:
        t = time.perf_counter()
        s.send(f"GET 0 f {key}\n")
        head = s.line()
        assert head.startswith(b"DATA "), head
        s.skip(int(head.split()[1]))
        valid = s.line()
        assert valid == b"VALID", valid
        gets.append(time.perf_counter() - t)
        s.send("SUCCESS\n")
    s.close()
    return to_auth, gets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--count", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    with started_world("glat-") as (tmp, sshd, env):
        topo, classes, key_of = small_files_in_cluster(
            env, sshd, tmp / "w", args.count, 4096, SHELLS["ours"]
        )
        cl = topo.client
        node3 = topo.nodes["node3"]
        env.git(cl, "remote", "add", "direct", f"ssh://n3host{node3}")
        env.git(cl, "config", "remote.direct.fetch", "")
        env.annex(cl, "copy", "-q", "--to", "direct", "small", timeout=3600)
        ssh = ["ssh", "-F", str(sshd.config_path)]
        served = f"p2pstdio {topo.gw} {topology.CLIENT} --uuid {topo.cluster_uuid}"
        paths = {
            "ours": [*ssh, "gw", f"{SHELLS['ours']} {served}"],
            "theirs": [*ssh, "gw", f"{SHELLS['theirs']} {served}"],
            "direct": [*ssh, "n3host", f"git-annex-shell p2pstdio {node3} {topology.CLIENT}"],
        }
        runs: dict[tuple[str, str], list[tuple[float, list[float]]]] = {}
        for rnd in range(args.rounds):
            for cls, files in classes.items():
                keys = [key_of[f] for f in files]
                for name in paths if rnd % 2 == 0 else reversed(paths):
                    runs.setdefault((cls, name), []).append(run_session(paths[name], env.env, keys))
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(f"medians of {args.rounds} rounds: ms to AUTH-SUCCESS, first GET ms, µs/later GET")
        for cls, files in classes.items():
            print(f"{cls} ({len(files)} keys)")
            for name in paths:
                got = runs[(cls, name)]
                auth = statistics.median(a for a, _ in got) * 1e3
                first = statistics.median(g[0] for _, g in got) * 1e3
                later = statistics.median(statistics.median(g[1:]) for _, g in got) * 1e6
                print(f"  {name:<7} {auth:8.1f} {first:10.1f} {later:10.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
