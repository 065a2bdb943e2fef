"""The console on a big repository: time to first paint and to full sizes.

    python bench/bench_console.py --keys 1000000 --workdir /tmp/bench-console [--reuse]

Builds (see common.py) a git-annex repository whose branch holds N location logs over 20
repositories, then measures:

* headless, in one process (`App.run_test`, 120x36): the first frame (the Overview mounted),
  the first snapshot painted (this repository, its role, counts), and the sizes arriving from
  the worker -- cold (the sizes cache deleted), warm (cache hit), and incremental (after one
  commit rewriting 1,000 keys' location logs). While sizes are computed a 20 ms timer records
  the worst event-loop stall, showing the scan does not block the UI;
* in a real terminal (tmux, when installed): from starting `python -m annextui -C REPO` until
  the Overview shows the repository (first paint, Python start-up and imports included), and
  until it shows the key count (full sizes).

Figures on the 2-core development box (Python 3.11, git 2.39, tmux 3.3a; 1,000,000 keys over
20 repositories; measured idle, load average ~2 from the bench itself):

    first frame (headless)                      0.16 s
    first snapshot painted (headless)           0.28 s
    first paint in tmux, Python start included  0.41 s (cold cache)   0.47 s (warm cache)
    sizes, cold scan                            6.0 s  (worst UI stall meanwhile: 29 ms)
    sizes, warm cache                           0.26 s
    sizes, incremental (1,000 keys changed)     0.21 s
    full sizes in tmux                          6.8 s  (cold cache)   0.53 s (warm cache)

With two other benchmarks running (load ~5) the same runs gave a 0.9-1.6 s first paint in tmux
and a 10-26 s cold scan. The balance report (Overview's misplaced-content alert, Balance view)
follows the sizes in the same worker: `annextui balance` on this repository takes ~19 s.

Run it again to refresh these numbers; `--json FILE` writes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from common import (  # noqa: E402
    HERE_UUID,
    SizedRepo,
    bench_env,
    build_sized_repo,
    change_keys,
    repo_uuid,
)

from annextui.app import AnnexConsole  # noqa: E402
from annextui.console.source import RepositoryBackend  # noqa: E402
from annextui.screens.overview import OverviewScreen  # noqa: E402

N_REPOS = 20


@dataclass
class Run:
    label: str
    first_frame: float = 0.0
    first_snapshot: float = 0.0
    sizes: float = 0.0
    sizes_source: str = ""
    worst_stall: float = 0.0
    notes: list[str] = field(default_factory=list)


async def _headless(repo: Path, label: str, timeout: float) -> Run:
    run = Run(label)
    t0 = time.perf_counter()
    app = AnnexConsole(RepositoryBackend(repo), check_nodes=False)
    stall = 0.0
    async with app.run_test(size=(120, 36)) as pilot:
        while not isinstance(app.screen, OverviewScreen):
            await asyncio.sleep(0.002)
        run.first_frame = time.perf_counter() - t0
        while app.snapshot is None:
            await asyncio.sleep(0.002)
        await pilot.pause()
        run.first_snapshot = time.perf_counter() - t0
        last = time.perf_counter()
        deadline = last + timeout
        while app.sizes is None:
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            stall = max(stall, now - last - 0.02)
            last = now
            if now > deadline:
                raise TimeoutError(f"{label}: no sizes after {timeout}s")
        run.sizes = time.perf_counter() - t0
        run.sizes_source = app.sizes.mode
        run.worst_stall = stall
        await pilot.press("q")
    return run


def headless(repo: Path, label: str, timeout: float = 900) -> Run:
    return asyncio.run(_headless(repo, label, timeout))


def in_tmux(repo: Path, expect_keys: int, timeout: float = 900) -> dict[str, float] | None:
    if shutil.which("tmux") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        sock = str(Path(tmp) / "sock")
        cmd = f"{shlex.quote(sys.executable)} -m annextui -C {shlex.quote(str(repo))}"
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env.update(TERM="xterm-256color", PYTHONPATH=str(ROOT))
        t0 = time.perf_counter()
        subprocess.run(
            ["tmux", "-S", sock, "new-session", "-d", "-s", "b", "-x", "120", "-y", "36", cmd],
            check=True,
            env=env,
        )
        out: dict[str, float] = {}
        try:
            deadline = t0 + timeout
            while time.perf_counter() < deadline and "sizes" not in out:
                screen = subprocess.run(
                    ["tmux", "-S", sock, "capture-pane", "-p", "-t", "b"],
                    capture_output=True,
                    text=True,
                ).stdout
                now = time.perf_counter() - t0
                if "first_paint" not in out and "role:" in screen:
                    out["first_paint"] = now
                if f"keys {expect_keys}" in screen:
                    out["sizes"] = now
                time.sleep(0.01)
            subprocess.run(["tmux", "-S", sock, "send-keys", "-t", "b", "q"], check=False)
            time.sleep(0.5)
        finally:
            subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)
        return out


def git_out(repo: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def branch_keys(repo: Path, env: dict[str, str]) -> list[str]:
    names = git_out(repo, env, "ls-tree", "-r", "--name-only", "refs/heads/git-annex")
    return [n.rsplit("/", 1)[1][:-4] for n in names.splitlines() if n.count("/") == 2]


def drop_cache(repo: Path) -> None:
    shutil.rmtree(repo / ".git" / "annex" / "annextui", ignore_errors=True)


def prepare(args: argparse.Namespace) -> tuple[SizedRepo | None, Path, Path | None]:
    if args.workdir:
        work = Path(args.workdir)
        cleanup = None
    else:
        work = Path(tempfile.mkdtemp(prefix="bench-console-"))
        cleanup = work
    repo_dir = work / "repo"
    marker = work / "keys"
    if args.reuse and marker.exists() and marker.read_text().strip() == str(args.keys):
        print(f"reusing {repo_dir}", flush=True)
        return None, repo_dir, cleanup
    t = time.perf_counter()
    print(f"building {args.keys:,} keys in {repo_dir} …", flush=True)
    sized = build_sized_repo(repo_dir, args.keys, n_repos=N_REPOS, home=work / "home")
    marker.write_text(str(args.keys))
    print(f"  built in {time.perf_counter() - t:.1f} s", flush=True)
    return sized, repo_dir, cleanup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sized, repo, cleanup = prepare(args)
    env = bench_env(repo.parent / "home")
    try:
        if sized is None:  # reused: the keys to change are read back from the branch
            uuids = [HERE_UUID, *(repo_uuid(i + 1) for i in range(N_REPOS))]
            sized = SizedRepo(repo, env, uuids, keys=branch_keys(repo, env))
            sized.head = git_out(repo, env, "rev-parse", "refs/heads/git-annex")
        drop_cache(repo)
        runs = [headless(repo, "cold")]
        runs.append(headless(repo, "warm"))
        if sized.keys:
            change_keys(sized, 1000)
            runs.append(headless(repo, "incremental (1,000 keys changed)"))
        drop_cache(repo)
        term_cold = in_tmux(repo, args.keys)
        term = in_tmux(repo, args.keys)
    finally:
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
    load = os.getloadavg()
    print(f"\n{args.keys:,} keys; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'run':<34} {'frame':>7} {'snapshot':>9} {'sizes':>8} {'source':>12} {'stall':>7}")
    for r in runs:
        print(
            f"{r.label:<34} {r.first_frame:>6.2f}s {r.first_snapshot:>8.2f}s {r.sizes:>7.2f}s "
            f"{r.sizes_source:>12} {r.worst_stall * 1000:>5.0f}ms"
        )
    for label, t in (("cold cache", term_cold), ("warm cache", term)):
        if t:
            print(
                f"tmux ({label}): first paint {t.get('first_paint', float('nan')):.2f}s, "
                f"full sizes {t.get('sizes', float('nan')):.2f}s"
            )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "keys": args.keys,
                    "runs": [asdict(r) for r in runs],
                    "tmux_cold": term_cold,
                    "tmux_warm": term,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
