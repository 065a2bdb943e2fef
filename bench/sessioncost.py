"""What one annextui-shell session costs: CPU and wall of a one-GET session, two shells paired.

annextui-shell starts once per ssh connection, so every `git annex get FILE` pays its fixed
costs (interpreter start-up, imports, reading the gateway's state, reaching the node, the
end). Here the shell is started over pipes (no client ssh) on the cluster of
tests/gateway/topology.py and asked for one key; the CPU of the shell's process and its
children comes from `os.wait4`, the wall from the start to the reaped exit. Two shells
(`--base DIR`: a checkout of an older commit, through bench/shellprofile.py's wrapper) run
alternately, so the other users' load falls on both.

    python bench/sessioncost.py --rounds 8 --base /tmp/base     # paired medians
    python bench/sessioncost.py --rounds 1 --trace              # + a session's timeline

`--trace` runs one session of each kind once more under `strace -f -e trace=execve` (which
programs a session runs, and when) and with a timeline of its steps (`--timeline`: the
shell's main steps wrapped by bench/sessiontimeline.py, wall and process CPU at each).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_gateway import small_files_in_cluster  # noqa: E402
from common import SHELLS, started_world  # noqa: E402
from getlatency import Session  # noqa: E402
from shellprofile import write_wrapper  # noqa: E402

from tests.gateway import topology  # noqa: E402

_TIMELINE = """#!{python}
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
import sessiontimeline
sessiontimeline.install({out!r})
from annextui.proxycore import shell
sys.exit(shell.main())
"""


def one_get(argv: list[str], env: dict[str, str], key: str) -> tuple[float, float, float]:
    """(wall to the reaped exit, wall to the GET's VALID, CPU of the shell and its children)."""
    s = Session(argv, env)
    t0 = s.started
    auth = s.line()
    assert auth.startswith(b"AUTH-SUCCESS"), auth
    s.send("VERSION 2\n")
    s.line()
    s.send(f"GET 0 f {key}\n")
    head = s.line()
    assert head.startswith(b"DATA "), head
    s.skip(int(head.split()[1]))
    assert s.line() == b"VALID"
    got = time.perf_counter() - t0
    s.send("SUCCESS\n")
    s._out.close()
    _, status, ru = os.wait4(s.proc.pid, 0)
    s.proc.returncode = status
    wall = time.perf_counter() - t0
    return wall, got, ru.ru_utime + ru.ru_stime


def one_put(argv: list[str], env: dict[str, str], _key: str) -> tuple[float, float, float]:
    """`one_get`'s figures for a session storing one new 4 KiB file in the cluster (its end
    commits the gateway's journal: the location log changed)."""
    from annextui.backend.keys import key_for_content

    data = os.urandom(4096)
    key = key_for_content(data, "SHA256E", ".bin")
    s = Session(argv, env)
    t0 = s.started
    assert s.line().startswith(b"AUTH-SUCCESS")
    s.send("VERSION 2\n")
    s.line()
    s.send(f"PUT put.bin {key}\n")
    head = s.line()
    assert head == b"PUT-FROM 0", head
    s._out.write(f"DATA {len(data)}\n".encode() + data + b"VALID\n")
    reply = s.line()
    assert reply.startswith(b"SUCCESS"), reply
    got = time.perf_counter() - t0
    s._out.close()
    _, status, ru = os.wait4(s.proc.pid, 0)
    s.proc.returncode = status
    return time.perf_counter() - t0, got, ru.ru_utime + ru.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--base", type=Path, help="an older checkout, run alternately")
    ap.add_argument(
        "--base-shell",
        help="any annex-shell program, run alternately: a path, or a name looked up in the "
        "bench's PATH (git-annex-shell: the binary itself, as the nodes run it)",
    )
    ap.add_argument("--trace", action="store_true", help="strace and timeline of one session")
    ap.add_argument("--put", action="store_true", help="also sessions storing one new file")
    args = ap.parse_args(argv)
    with started_world("scost-") as (tmp, sshd, env):
        topo, classes, key_of = small_files_in_cluster(
            env, sshd, tmp / "w", 40, 4096, SHELLS["ours"]
        )
        keys = {"local": key_of[classes["local"][0]], "node3": key_of[classes["node3"][0]]}
        if args.put:
            keys["put"] = ""
        served = ["p2pstdio", str(topo.gw), topology.CLIENT, "--uuid", topo.cluster_uuid]
        shells = {"ours": write_wrapper(tmp / "ours-shell", ROOT)}
        if args.base is not None:
            shells["base"] = write_wrapper(tmp / "base-shell", args.base.resolve())
        if args.base_shell is not None:
            # the world's PATH: its git-annex-shell is the binary the nodes run, not the
            # PyPI launcher (a Python start of its own) first in this process's PATH
            found = shutil.which(args.base_shell, path=env.env["PATH"])
            if found is None:
                ap.error(f"--base-shell: no program {args.base_shell}")
            # absolute, not resolved: a git-annex-shell that is a symlink to git-annex must
            # keep its name (git-annex dispatches on argv[0])
            shells["base"] = Path(found).absolute()
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for rnd in range(args.rounds):
            order = list(shells) if rnd % 2 == 0 else list(reversed(shells))
            for cls, key in keys.items():
                for name in order:
                    run = one_put if cls == "put" else one_get
                    results.setdefault((cls, name), []).append(
                        run([str(shells[name]), *served], env.env, key)
                    )
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"one-GET sessions, {args.rounds} rounds, medians (best); load at the end {load}")
        print("class  shell    wall ms        to VALID ms    CPU ms")
        for (cls, name), runs in results.items():
            walls, gots, cpus = zip(*runs, strict=True)
            print(
                f"{cls:6} {name:6} {statistics.median(walls) * 1e3:7.1f} ({min(walls) * 1e3:5.1f})"
                f"  {statistics.median(gots) * 1e3:7.1f} ({min(gots) * 1e3:5.1f})"
                f"  {statistics.median(cpus) * 1e3:7.1f} ({min(cpus) * 1e3:5.1f})"
            )
        if "base" in shells:
            for cls in keys:
                ours, base = results[(cls, "ours")], results[(cls, "base")]

                def ratio(i: int) -> float:
                    mine = statistics.median(r[i] for r in ours)  # noqa: B023 - used at once
                    return mine / statistics.median(r[i] for r in base)  # noqa: B023

                print(f"{cls}: ours/base wall {ratio(0):.2f}, CPU {ratio(2):.2f}")
        if args.trace:
            for cls, key in keys.items():
                trace(tmp, shells["ours"], served, env.env, key, cls)
    return 0


def trace(
    tmp: Path, shell: Path, served: list[str], env: dict[str, str], key: str, cls: str
) -> None:
    """Print which programs one session runs (strace) and the timeline of its steps."""
    run = one_put if cls == "put" else one_get
    if shutil.which("strace"):
        log = tmp / f"strace-{cls}.log"
        argv = ["strace", "-f", "-tt", "-e", "trace=execve", "-e", "signal=none", "-o", str(log)]
        run([*argv, str(shell), *served], env, key)
        print(f"\n{cls}: programs run by one session (strace -f -e trace=execve)")
        for line in log.read_text().splitlines():
            if "execve(" in line and "= 0" in line:
                print("  " + line[:160])
    imports = tmp / f"importtime-{cls}.log"
    redirect = ["sh", "-c", 'exec "$@" 2>"$0"', str(imports), str(shell), *served]
    run(redirect, {**env, "PYTHONPROFILEIMPORTTIME": "1"}, key)
    shutil.copy(imports, Path(tempfile.gettempdir()) / imports.name)
    out = Path(tempfile.mkdtemp(dir=tmp))
    wrapper = tmp / "timeline-shell"
    wrapper.write_text(
        _TIMELINE.format(
            python=sys.executable, root=str(ROOT), bench=str(ROOT / "bench"), out=str(out)
        )
    )
    wrapper.chmod(0o755)
    run([str(wrapper), *served], {**env, "SESSIONCOST_T0": repr(time.monotonic())}, key)
    print(f"\n{cls}: timeline of one session (ms since the interpreter started)")
    for f in sorted(out.glob("*.txt")):
        print(f.read_text(), end="")


if __name__ == "__main__":
    raise SystemExit(main())
