"""annextui-shell vs git-annex-shell, side by side, driven by the real git-annex client.

One private OpenSSH sshd on 127.0.0.1 (tests/support/sshd.py), one bare repository served
through it, one client clone with two remotes pointing at that same repository over the same
sshd: `ours` (`annex-shell` = annextui-shell) and `theirs` (git-annex's own git-annex-shell).
Each case uploads (`git annex copy --to R`) and downloads (`git annex get --from R`) the same
files through each shell in turn, alternating which goes first, and keeps the best of
`--rounds` runs. The server-side shell runs under `/usr/bin/time`, which records its peak RSS.

    python bench/bench_shell.py [--rounds 3] [--big-count 8] [--big-mib 64] [--small-count 500]
                                [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import SHELLS, Transfer, table_rows, time_to_auth, write_files  # noqa: E402

from tests.support import annex as annex_support  # noqa: E402
from tests.support.annex import AnnexEnv  # noqa: E402
from tests.support.sshd import Sshd  # noqa: E402


@dataclass
class Measurement(Transfer):
    peak_rss_kib: int
    connections: int


def _timed_wrapper(
    bin_dir: Path, name: str, program: str, log: Path, env: list[str] | None = None
) -> Path:
    """A program that runs `program` under /usr/bin/time, appending peak RSS (KiB) to `log`."""
    path = bin_dir / f"timed-{name}"
    exports = "".join(f"export {e}\n" for e in env or [])
    path.write_text(
        f'#!/bin/sh\n{exports}exec /usr/bin/time -q -f "%M" -a -o {log} {program} "$@"\n'
    )
    path.chmod(0o755)
    return path


def _drain(log: Path) -> tuple[int, int]:
    """(peak RSS over the runs logged since last time, number of shell runs)."""
    try:
        lines = [ln for ln in log.read_text().split() if ln.isdigit()]
    except FileNotFoundError:
        lines = []
    log.write_text("")
    return (max((int(x) for x in lines), default=0), len(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big-count", type=int, default=8)
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--small-count", type=int, default=500)
    ap.add_argument("--small-kib", type=int, default=4)
    ap.add_argument(
        "--startup-runs",
        type=int,
        default=20,
        help="start each shell this often, locally, and time it to AUTH-SUCCESS (0: skip)",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    ap.add_argument(
        "--ours-env",
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="extra environment for annextui-shell (experiments)",
    )
    args = ap.parse_args(argv)

    exe = annex_support.find_git_annex()
    if exe is None or not Path("/usr/bin/time").exists():
        print("needs git-annex, /usr/sbin/sshd and /usr/bin/time", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bshell-", dir="/tmp"))
    fast = annex_support.make_fast_bin(tmp / "annexbin", exe)
    wrappers = tmp / "wrappers"
    wrappers.mkdir()
    logs = {name: tmp / f"rss-{name}.log" for name in SHELLS}
    progs = {
        name: _timed_wrapper(
            wrappers,
            name,
            shutil.which(prog, path=f"{fast}:{os.environ['PATH']}") or prog,
            logs[name],
            args.ours_env if name == "ours" else None,
        )
        for name, prog in SHELLS.items()
    }
    sshd = Sshd(tmp / "ssh", server_path=annex_support.default_path([fast]))
    env = AnnexEnv.create(
        tmp / "w", bin_dir=fast, magic=annex_support.magic_db(exe), sshcaching=True
    )
    results: list[Measurement] = []
    try:
        sshd.start()
        sshd.add_host("gw")
        env.use_ssh(sshd)
        srv = env.make_annex_repo("srv.git", bare=True)
        cl = env.clone(f"ssh://gw{srv}", "cl", origin="ours", annex_init=False)
        env.git(cl, "remote", "add", "theirs", f"ssh://gw{srv}")
        for name, prog in progs.items():
            env.git(cl, "config", f"remote.{name}.annex-shell", str(prog))
        env.annex(cl, "init", "-q", "bench client")
        env.annex(cl, "info", "theirs")  # learn the UUID once, outside the timings
        plain = {
            name: shutil.which(prog, path=f"{fast}:{os.environ['PATH']}") or prog
            for name, prog in SHELLS.items()
        }
        client_uuid = env.git(cl, "config", "annex.uuid").strip()
        results += _startup(plain, srv, client_uuid, args.startup_runs, env.env)
        cases = {
            "big": (args.big_count, args.big_mib << 20),
            "small": (args.small_count, args.small_kib << 10),
        }
        for case, (count, size) in cases.items():
            write_files(cl, case, count, size)
            env.annex(cl, "add", "-q", "--force-large", case)
            env.git(cl, "commit", "-q", "-m", case)
            total = count * size
            for rnd in range(args.rounds):
                order = list(SHELLS) if rnd % 2 == 0 else list(reversed(SHELLS))
                for name in order:
                    for d in logs.values():
                        _drain(d)
                    t = time.perf_counter()
                    env.annex(cl, "copy", "-q", "--to", name, case, timeout=3600)
                    up = time.perf_counter() - t
                    rss, conns = _drain(logs[name])
                    results.append(Measurement(case, "upload", name, up, total, count, rss, conns))
                    env.annex(cl, "drop", "-q", "--force", case)
                    t = time.perf_counter()
                    env.annex(cl, "get", "-q", "--from", name, case, timeout=3600)
                    down = time.perf_counter() - t
                    rss, conns = _drain(logs[name])
                    results.append(
                        Measurement(case, "download", name, down, total, count, rss, conns)
                    )
                    # empty the server again for the next run (the client has every file)
                    env.annex(cl, "drop", "-q", "--force", "--from", name, case, timeout=3600)
                    assert not list((srv / "annex" / "objects").rglob("*.bin")), "server not empty"
    finally:
        env.cleanup()
        sshd.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    report = _report(results)
    print(report)
    if args.json:
        args.json.write_text(
            json.dumps([asdict(m) | {"mib_per_s": m.mib_per_s} for m in results], indent=1)
        )
    return 0


def _startup(
    programs: dict[str, str], repo: Path, client_uuid: str, runs: int, env: dict[str, str]
) -> list[Measurement]:
    """Each shell started `runs` times on the served repository (no ssh), alternating, timed
    from spawn to its `AUTH-SUCCESS` line: what every client connection pays first."""
    return [
        Measurement("startup", "auth", name, took, 0, 1, 0, 1)
        for name, took in time_to_auth(programs, repo, client_uuid, runs, env)
    ]


def _startup_line(results: list[Measurement]) -> str | None:
    times: dict[str, list[float]] = {}
    for m in results:
        if m.case == "startup":
            times.setdefault(m.shell, []).append(m.seconds * 1000)
    if set(times) != set(SHELLS):
        return None
    best = {k: min(v) for k, v in times.items()}
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return (
        f"start-up to AUTH-SUCCESS ({len(times['ours'])} runs, no ssh): ours {best['ours']:.1f} "
        f"ms best / {med['ours']:.1f} median, theirs {best['theirs']:.1f} / "
        f"{med['theirs']:.1f}, ratio {best['theirs'] / best['ours']:.2f} "
        f"({med['theirs'] / med['ours']:.2f})"
    )


def _report(results: list[Measurement]) -> str:
    peak: dict[tuple[str, str, str], int] = {}
    for m in results:
        k = (m.case, m.direction, m.shell)
        peak[k] = max(peak.get(k, 0), m.peak_rss_kib)
    lines = [
        f"{'case':<6} {'dir':<8} {'shell':<7} {'best s':>8} {'median s':>8} {'MiB/s':>8} "
        f"{'files/s':>8} {'peak RSS':>9} {'ratio':>6} {'(median)':>8}",
    ]
    for r in table_rows(results, ("upload", "download")):
        m = r.best
        ratio = r.theirs_best.seconds / m.seconds if r.theirs_best else math.nan
        lines.append(
            f"{r.case:<6} {r.direction:<8} {r.shell:<7} {m.seconds:8.2f} {r.median:8.2f} "
            f"{m.mib_per_s:8.1f} {m.files / m.seconds:8.1f} "
            f"{peak[(r.case, r.direction, r.shell)] / 1024:7.1f}Mi {ratio:6.2f} "
            f"{r.theirs_median / r.median:8.2f}"
        )
    lines.append(
        "ratio = git-annex-shell time / annextui-shell time, best of the rounds (and of the "
        "medians); >= 1: we are as fast or faster"
    )
    startup = _startup_line(results)
    if startup:
        lines.append(startup)
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
