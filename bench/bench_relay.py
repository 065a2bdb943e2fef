"""One-file latency over ssh: git-annex-shell, annextui-shell and annextui-relay, side by side.

Topology (tests/gateway/topology.py, built with the real git-annex): a client reaching a bare
gateway over a private OpenSSH sshd on 127.0.0.1; the gateway's cluster has two local nodes and
one ssh node (real git-annex-shell). The client has three remotes to that one gateway, differing
only in `annex-shell`: `theirs` (git-annex-shell), `ours` (annextui-shell) and `relay`
(annextui-relay, the client script started as `python -I -S`, handing the connection to an
`annextui p2phttp --relay-socket` running on the gateway, tests/support/relay.py). Each
`R` and `R-mycluster` is timed for single-file commands on one `--kib` file: `git annex copy
--to R` (after an untimed `drop --from R`) and `git annex get --from R` (after an untimed local
drop), `--runs` times, the three shells in alternating order each run. The floor is the
client's bare round trip, `ssh gw true`. Start-up alone (no ssh) is timed too: each program
started locally as `p2pstdio GW CLIENT` until its AUTH-SUCCESS, including the relay run with
`site` (`relay-site`: what a console script costs).

    python bench/bench_relay.py [--runs 15] [--kib 4] [--startup-runs 20] [--json out.json]
    python bench/bench_relay.py --baseline DIR     # + `base`: annextui-shell of an older checkout

With `--baseline DIR` a fourth remote, `base`, runs annextui-shell from that checkout (`git
archive COMMIT | tar -x -C DIR`), and `ours` runs this checkout through the same kind of
wrapper (bench/shellprofile.py), so the two differ only in the code.

Ratios are each shell's time over git-annex-shell's, median and best; the load average is
printed with them (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import SHELLS, started_world, time_to_auth, write_files  # noqa: E402
from shellprofile import write_wrapper  # noqa: E402

from tests.gateway import topology  # noqa: E402
from tests.support import p2phttp  # noqa: E402
from tests.support.annex import AnnexEnv  # noqa: E402
from tests.support.relay import RELAY_SOURCE, relay_options, write_relay_program  # noqa: E402
from tests.support.sshd import Sshd  # noqa: E402

NAMES = ("theirs", "ours", "relay")
TARGETS = {"gateway": "", "cluster": f"-{topology.CLUSTER_NAME}"}
FILE = "one/f0000.bin"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--kib", type=int, default=4)
    ap.add_argument("--startup-runs", type=int, default=20)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    ap.add_argument("--baseline", type=Path, help="an older checkout, run as `base`")
    args = ap.parse_args(argv)
    names = (*NAMES, "base") if args.baseline else NAMES

    times: dict[tuple[str, str, str], list[float]] = {}
    with started_world("brelay-", keep=args.keep) as (tmp, sshd, env):
        topo = topology.build(env, sshd, tmp / "w", shell=SHELLS["ours"])
        sock_dir = tmp / "relay"
        sock_dir.mkdir(mode=0o700)
        sock = sock_dir / "relay.sock"
        relay = write_relay_program(tmp / "relaybin" / "annextui-relay", sock)
        programs = {
            "theirs": SHELLS["theirs"],
            "ours": SHELLS["ours"],
            "relay": str(relay),
        }
        if args.baseline:
            programs["ours"] = str(write_wrapper(tmp / "ours-shell", ROOT))
            programs["base"] = str(write_wrapper(tmp / "base-shell", args.baseline.resolve()))
            env.git(topo.client, "config", "remote.origin.annex-shell", programs["ours"])
        with p2phttp.running("annextui", topo.gw, env.env, relay_options(sock)) as server:
            cl = topo.client
            env.git(cl, "remote", "rename", "origin", "ours")
            for name in (n for n in names if n != "ours"):  # `ours` is origin, renamed
                env.git(cl, "remote", "add", name, f"ssh://gw{topo.gw}")
                env.git(cl, "config", f"remote.{name}.annex-shell", programs[name])
                env.git(cl, "fetch", "-q", name)
            for name in names:  # learn the UUIDs outside the timings
                env.annex(cl, "info", "-q", name)
            write_files(cl, "one", 1, args.kib << 10)
            env.annex(cl, "add", "-q", "--force-large", "one")
            env.git(cl, "commit", "-q", "-m", "one file")
            for rnd in range(args.runs + 1):  # run 0 warms up (caches, the server's imports)
                order = names if rnd % 2 == 0 else tuple(reversed(names))
                for name in order:
                    for target, suffix in TARGETS.items():
                        remote = name + suffix
                        copy, get = _one_file(env, cl, remote)
                        if rnd:
                            times.setdefault((target, "copy", name), []).append(copy)
                            times.setdefault((target, "get", name), []).append(get)
                print(f"  run {rnd} done", file=sys.stderr)
            floor = _ssh_floor(sshd, env.env, args.runs)
            client_uuid = env.git(cl, "config", "annex.uuid").strip()
            site = write_site_relay(tmp / "relaybin" / "annextui-relay-site", sock)
            starts = time_to_auth(
                {**programs, "relay-site": str(site)},
                topo.gw,
                client_uuid,
                args.startup_runs,
                env.env,
            )
            served = server.stderr().count("relay SSH p2pstdio")
    print(report(times, floor, starts, served))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "times": {"/".join(k): v for k, v in times.items()},
                    "floor": floor,
                    "startup": starts,
                    "load": os.getloadavg(),
                },
                indent=1,
            )
        )
    return 0


def _one_file(env: AnnexEnv, cl: Path, remote: str) -> tuple[float, float]:
    """(copy --to seconds, get --from seconds) of the one file through `remote`."""
    env.annex(cl, "drop", "-q", "--force", "--from", remote, FILE)
    t = time.perf_counter()
    env.annex(cl, "copy", "-q", "--to", remote, FILE)
    copy = time.perf_counter() - t
    env.annex(cl, "drop", "-q", "--force", FILE)
    t = time.perf_counter()
    env.annex(cl, "get", "-q", "--from", remote, FILE)
    return copy, time.perf_counter() - t


def _ssh_floor(sshd: Sshd, environ: dict[str, str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(sshd.ssh_argv("gw", "true"), env=environ, check=True)
        out.append(time.perf_counter() - t)
    return out


def write_site_relay(path: Path, socket: Path) -> Path:
    """The relay started as a console script would be: with `site`, imported from annextui."""
    path.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        f"os.environ.setdefault('ANNEXTUI_RELAY_SOCKET', {str(socket)!r})\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from annextui.proxycore.relay.client import main\nsys.exit(main())\n"
    )
    path.chmod(0o755)
    assert RELAY_SOURCE.is_file()
    return path


def report(
    times: dict[tuple[str, str, str], list[float]],
    floor: list[float],
    starts: list[tuple[str, float]],
    served: int,
) -> str:
    lines = [
        f"{'target':<8} {'op':<5} {'shell':<7} {'median ms':>9} {'best ms':>8} "
        f"{'/theirs':>8} {'(best)':>7}"
    ]
    for target in TARGETS:
        for op in ("copy", "get"):
            base = times[(target, op, "theirs")]
            for name in (n for n in (*NAMES, "base") if (target, op, n) in times):
                v = times[(target, op, name)]
                lines.append(
                    f"{target:<8} {op:<5} {name:<7} {statistics.median(v) * 1000:9.0f} "
                    f"{min(v) * 1000:8.0f} {statistics.median(v) / statistics.median(base):8.2f} "
                    f"{min(v) / min(base):7.2f}"
                )
    lines.append(
        f"floor: ssh gw true {statistics.median(floor) * 1000:.0f} ms median, "
        f"{min(floor) * 1000:.0f} best ({len(floor)} runs)"
    )
    by: dict[str, list[float]] = {}
    for name, took in starts:
        by.setdefault(name, []).append(took * 1000)
    lines.append(
        "start-up to AUTH-SUCCESS (local, no ssh): "
        + ", ".join(
            f"{name} {statistics.median(v):.1f} ms median / {min(v):.1f} best"
            for name, v in by.items()
        )
    )
    lines.append(f"sessions the relay's server served: {served}; load {os.getloadavg()}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
