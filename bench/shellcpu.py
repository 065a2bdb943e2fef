"""annextui-shell's own CPU per GET: one shell serving a cluster over pipes, no client, no ssh.

`git annex get` of many small files is a serial chain (client, ssh, gateway, node): every
millisecond of the gateway's CPU per GET is wall time, but the client's own work hides it.
Here a minimal client (bench/getlatency.py's Session) starts annextui-shell for the gateway of
tests/gateway/topology.py's cluster on pipes, sends `GET` for a set of keys, reads each answer
and acks it, then closes stdin; the shell's CPU (user + system, its children included) comes from
`os.wait4`. Key sets by where the cluster keeps them: `one-local` / `one-node3` (a session with
one GET: start-up, and for node3 the ssh connection to it), `local` (node1/node2, served in the
gateway's process), `node3` (one more ssh hop), `all`, and `local×2` / `node3×2` (the same keys
asked twice in one session). Two per-GET slopes, of the CPU medians: `slope` = (a set's session
CPU - the matching one-GET session's CPU) / (GETs - 1), and `marginal` = (the ×2 session's CPU -
the set's) / GETs, which no per-session cost can bias.

A one-GET session waits `--linger` seconds before it hangs up: the shell brings up its ssh
transport to node3 on a background thread (importing paramiko, the key exchange: ~70 ms of
CPU), which a session that ends at once cuts short while a long one pays it in full; without
the wait, that difference lands in `slope` (~0.4 ms per GET for 200 GETs).

With `--baseline DIR` (another checkout, e.g. `git archive d3559bf | tar -x -C DIR`), the same
sessions run with that checkout's shell too, alternating order every round, side by side.

    python bench/shellcpu.py [--count 300] [--rounds 6] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_gateway import small_files_in_cluster  # noqa: E402
from common import started_world  # noqa: E402
from getlatency import Session  # noqa: E402
from shellprofile import summary, write_wrapper  # noqa: E402

from tests.gateway import topology  # noqa: E402

# Which one-GET set is the start-up of which many-GET set (for the per-GET slope).
_SLOPE_OF = {"local": "one-local", "node3": "one-node3", "all": "one-local"}
# Which set asks for the keys of which twice (for the marginal slope).
_TWICE = {"local×2": "local", "node3×2": "node3"}


def run_session(
    argv: list[str], env: dict[str, str], keys: list[str], linger: float = 0.0
) -> tuple[float, float]:
    """One session GETting `keys`, then waiting `linger` seconds before hanging up:
    (wall seconds, CPU seconds of the shell and its children)."""
    s = Session(argv, env)
    t0 = time.perf_counter()
    auth = s.line()
    assert auth.startswith(b"AUTH-SUCCESS"), auth
    s.send("VERSION 2\n")
    s.line()
    for key in keys:
        s.send(f"GET 0 f {key}\n")
        head = s.line()
        assert head.startswith(b"DATA "), head
        s.skip(int(head.split()[1]))
        assert s.line() == b"VALID"
        s.send("SUCCESS\n")
    if linger:
        time.sleep(linger)
    s._out.close()
    _, status, usage = os.wait4(s.proc.pid, 0)
    s.proc.returncode = status
    assert status == 0, status
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f}"


def report(
    results: dict[tuple[str, str], list[tuple[float, float]]],
    sets: dict[str, list[str]],
    shells: list[str],
) -> str:
    """The table: per set and shell, medians in ms, and the per-GET slopes in ms."""

    def cpu(name: str, shell: str) -> float:
        return statistics.median(c for _, c in results[(name, shell)])

    lines = [
        f"{'set':10} {'GETs':>5} {'shell':6} {'wall med':>9} {'CPU med':>9} {'CPU min':>9}"
        f" {'slope':>8} {'marginal':>8}"
    ]
    for name, keys in sets.items():
        for shell in shells:
            runs = results[(name, shell)]
            slope = marginal = ""
            one = _SLOPE_OF.get(name)
            if one in sets and len(keys) > 1:
                slope = f"{(cpu(name, shell) - cpu(one, shell)) / (len(keys) - 1) * 1e3:8.3f}"
            half = _TWICE.get(name)
            if half in sets:
                more = len(keys) - len(sets[half])
                marginal = f"{(cpu(name, shell) - cpu(half, shell)) / more * 1e3:8.3f}"
            lines.append(
                f"{name:10} {len(keys):>5} {shell:6} {_ms(statistics.median(w for w, _ in runs))}"
                f" {_ms(cpu(name, shell))} {_ms(min(c for _, c in runs))} {slope:>8} {marginal:>8}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--count", type=int, default=300, help="4 KiB files in the cluster")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--size", type=int, default=4096, help="bytes per file")
    ap.add_argument("--baseline", type=Path, help="another annextui checkout, timed beside this")
    ap.add_argument(
        "--sets",
        default="one-local,one-node3,local,node3,all,local×2,node3×2",
        help="key sets to time",
    )
    ap.add_argument(
        "--linger",
        type=float,
        default=1.0,
        help="seconds a one-GET session waits before hanging up (see above)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        help="afterwards: one session of this checkout under cProfile (CPU time) into this dir",
    )
    ap.add_argument("--profile-set", default="local", help="the key set of that session")
    args = ap.parse_args(argv)

    with started_world("shellcpu-") as (tmp, sshd, env):
        shells = {"ours": str(write_wrapper(tmp / "annextui-shell-ours", ROOT))}
        if args.baseline is not None:
            base = write_wrapper(tmp / "annextui-shell-base", args.baseline.resolve())
            shells["base"] = str(base)
        topo, classes, key_of = small_files_in_cluster(
            env, sshd, tmp / "w", args.count, args.size, shells["ours"]
        )
        every = {
            "one-local": [key_of[classes["local"][0]]],
            "one-node3": [key_of[classes["node3"][0]]],
            "local": [key_of[f] for f in classes["local"]],
            "node3": [key_of[f] for f in classes["node3"]],
            "all": [key_of[f] for f in sorted(key_of)],
        }
        for twice, once in _TWICE.items():
            every[twice] = every[once] * 2
        sets = {name: every[name] for name in args.sets.split(",")}
        for name in list(sets):
            for needed in (_SLOPE_OF.get(name), _TWICE.get(name)):
                if needed is not None and needed not in sets:
                    sets[needed] = every[needed]
        served = ["p2pstdio", str(topo.gw), topology.CLIENT, "--uuid", topo.cluster_uuid]
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        loads = [os.getloadavg()[0]]
        for rnd in range(args.rounds):
            order = list(shells) if rnd % 2 == 0 else list(reversed(shells))
            for name, keys in sets.items():
                for shell in order:
                    linger = args.linger if len(keys) == 1 else 0.0
                    got = run_session([shells[shell], *served], env.env, keys, linger)
                    results.setdefault((name, shell), []).append(got)
            loads.append(os.getloadavg()[0])
        print(
            f"annextui-shell over pipes: {args.count} files of {args.size} B, {args.rounds} "
            f"rounds, load {min(loads):.1f}-{max(loads):.1f}"
        )
        print(report(results, sets, list(shells)))
        if args.profile is not None:
            if args.profile.exists():
                shutil.rmtree(args.profile)
            prof = write_wrapper(tmp / "annextui-shell-prof", ROOT, args.profile, cpu_time=True)
            profiled = every[args.profile_set]
            run_session([str(prof), *served], env.env, profiled)
            print(summary(args.profile, len(profiled)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
