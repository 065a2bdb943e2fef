"""Repository sizes: annextui vs `git annex maxsize`, cold, warm and incremental.

    python bench/bench_sizes.py --keys 100000
    python bench/bench_sizes.py --keys 1000000 --workdir /tmp/bench-sizes --reuse

Builds a git-annex repository whose branch holds N location logs spread over 20 repositories
(written with one `git fast-import` stream, see common.py), then in one run:

1. `git annex maxsize` once to warm the page cache (and git-annex's one-time setup), then
   cold: `annex/reposize` deleted, `git annex maxsize` timed;
2. annextui cold scan (cache deleted), then a warm read (cache hit);
3. one commit rewriting the location logs of 1,000 keys, then git-annex's incremental update
   and annextui's incremental refresh;
and checks after 1 and 3 that both report the same sizes.

Each measurement runs in a fresh child process: wall time includes process start-up, and the
peak RSS is `getrusage(RUSAGE_CHILDREN)` of a helper that only waits for that child (so it is
the largest process of that tree, git children included). For annextui the Python process's
own peak is shown too; its git children (`git ls-tree`, `git cat-file`) map the pack file,
which is most of their RSS, exactly as git-annex's own `git cat-file` does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    HERE_UUID,
    SizedRepo,
    Timed,
    bench_env,
    build_sized_repo,
    change_keys,
    repo_uuid,
    timed_child,
)


def _child(mode: str, path: str) -> None:
    """Runs in the measured subprocess: one repo_sizes call, JSON on stdout."""
    from annextui.backend.repo import Repository
    from annextui.backend.sizes import clear_cache, repo_sizes, scan

    repo = Repository(path)
    if mode.startswith("cold"):
        clear_cache(repo)
    if mode == "cold-lstree":  # measure the tree walk even when git-annex's index would do
        scan._index_snapshot = lambda *_a: None  # type: ignore[assignment]
    t = time.perf_counter()
    sizes = repo_sizes(repo)
    dt = time.perf_counter() - t
    repo.git.close()
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "seconds": dt,
                "source": sizes.source,
                "keys": sizes.keys,
                "changed": sizes.changed,
                "self_rss_kib": me.ru_maxrss,
                "git_rss_kib": kids.ru_maxrss,
                "sizes": {u: r.size for u, r in sizes.repos.items() if not r.dead},
            }
        )
    )


def _index_usable(repo: SizedRepo) -> bool:
    """Whether annextui's cold scan can list the branch from git-annex's index."""
    from annextui.backend.repo import Repository
    from annextui.backend.sizes import index_matches_branch

    r = Repository(repo.path)
    try:
        return index_matches_branch(r, r.git.refs[b"refs/heads/git-annex"])
    finally:
        r.git.close()


def _fast_annex_path(tmp: Path) -> str:
    """PATH with git-annex linked directly (no pyenv shim / Python launcher per call)."""
    exe: Path | None = None
    try:
        import git_annex  # type: ignore[import-not-found]

        cand = Path(git_annex.__file__).parent / "git-annex"
        if cand.is_file():
            exe = cand
    except ImportError:
        found = shutil.which("git-annex")
        exe = Path(found) if found else None
    if exe is None:
        sys.exit("git-annex not found")
    bindir = tmp / "annexbin"
    bindir.mkdir(exist_ok=True)
    link = bindir / "git-annex"
    if not link.exists():
        link.symlink_to(exe)
    return f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"


def _annex_sizes(out: bytes) -> dict[str, int]:
    for line in out.decode().splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            return {r["uuid"]: r["size"]["size"] for r in data["repositories"]}
    raise RuntimeError(f"no JSON from git annex maxsize: {out[:500]!r}")


def _git_annex(repo: SizedRepo, *, cold: bool) -> tuple[Timed, dict[str, int]]:
    if cold:
        shutil.rmtree(repo.path / ".git" / "annex" / "reposize", ignore_errors=True)
    t = timed_child(["git", "annex", "maxsize", "--json"], cwd=repo.path, env=repo.env)
    return t, _annex_sizes(t.stdout)


def _ours(repo: SizedRepo, mode: str) -> tuple[Timed, dict[str, object]]:
    t = timed_child(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(repo.path)],
        cwd=repo.path,
        env={**repo.env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    return t, json.loads(t.stdout)


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--repos", type=int, default=20)
    ap.add_argument("--changed", type=int, default=1000, help="keys changed by the new commit")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the repository here")
    ap.add_argument("--reuse", action="store_true", help="reuse a repository built before")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "REPO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return 0

    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="bench-sizes-"))
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"repo-{args.keys}"
    marker = path / ".git" / "bench-built"
    t0 = time.perf_counter()
    if args.reuse and marker.exists() and marker.read_text() == f"{args.keys} {args.repos}":
        # the change commit of an earlier run is undone: start from the built branch again
        env = bench_env(tmp / "home")
        built = (path / ".git" / "bench-head").read_text().strip()
        subprocess.run(
            ["git", "update-ref", "refs/heads/git-annex", built], cwd=path, env=env, check=True
        )
        # git-annex's own index of the branch went on to the changed commit: let git-annex
        # rebuild it from the branch, as after the first build
        for name in ("index", "index.lck"):
            (path / ".git" / "annex" / name).unlink(missing_ok=True)
        keys = (path / ".git" / "bench-keys").read_text().split("\n")
        uuids = [HERE_UUID] + [repo_uuid(i + 1) for i in range(args.repos)]
        repo = SizedRepo(path, env, uuids, keys=keys, head=built)
        print(f"reusing {path}")
    else:
        repo = build_sized_repo(path, args.keys, n_repos=args.repos, home=tmp / "home")
        marker.write_text(f"{args.keys} {args.repos}")
        (path / ".git" / "bench-head").write_text(repo.head)
        (path / ".git" / "bench-keys").write_text("\n".join(repo.keys))
        print(f"built {args.keys} keys over {args.repos} repos in {time.perf_counter() - t0:.1f} s")
    repo.env["PATH"] = _fast_annex_path(tmp)

    # One git-annex commit, as any git-annex command that changes something makes: git-annex's
    # own index of the branch is then in its usual state (synced, with a valid cache-tree),
    # which lets annextui list the branch from it; the ls-tree row shows the other case.
    subprocess.run(
        ["git", "annex", "describe", "here", "bench here"],
        cwd=repo.path,
        env=repo.env,
        check=True,
        capture_output=True,
    )
    print("warming up (git annex maxsize once)...", flush=True)
    _git_annex(repo, cold=True)

    rows: list[tuple[str, Timed, float | None, str]] = []
    ga_cold, ga_sizes = _git_annex(repo, cold=True)
    rows.append(("git-annex cold", ga_cold, None, ""))
    index_listing = _index_usable(repo)  # checked here: not part of any measurement
    ours_cold, oc = _ours(repo, "cold")
    rows.append(
        (
            "annextui cold",
            ours_cold,
            float(oc["seconds"]),  # type: ignore[arg-type]
            _mib(int(oc["self_rss_kib"])),  # type: ignore[call-overload]
        )
    )
    ours_tree, ot = _ours(repo, "cold-lstree")
    rows.append(
        (
            "annextui cold, ls-tree",
            ours_tree,
            float(ot["seconds"]),  # type: ignore[arg-type]
            _mib(int(ot["self_rss_kib"])),  # type: ignore[call-overload]
        )
    )
    ours_warm, ow = _ours(repo, "warm")
    rows.append(
        (
            "annextui warm",
            ours_warm,
            float(ow["seconds"]),  # type: ignore[arg-type]
            _mib(int(ow["self_rss_kib"])),  # type: ignore[call-overload]
        )
    )
    same_cold = oc["sizes"] == ga_sizes and ot["sizes"] == ga_sizes and ow["sizes"] == ga_sizes

    change_keys(repo, args.changed)
    ga_inc, ga_sizes2 = _git_annex(repo, cold=False)
    rows.append((f"git-annex incr. ({args.changed} keys)", ga_inc, None, ""))
    ours_inc, oi = _ours(repo, "warm")
    rows.append(
        (
            f"annextui incr. ({args.changed} keys)",
            ours_inc,
            float(oi["seconds"]),  # type: ignore[arg-type]
            _mib(int(oi["self_rss_kib"])),  # type: ignore[call-overload]
        )
    )
    same_inc = oi["sizes"] == ga_sizes2 and oi["source"] == "incremental"

    n = args.keys
    print()
    print(f"{n} keys, {args.repos} repositories, load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'measurement':<30} {'wall s':>8} {'in-proc s':>9} {'CPU s':>7} {'keys/s':>11} "
        f"{'peak RSS':>9} {'python RSS':>10}"
    )
    for name, t, inproc, own in rows:
        ip = f"{inproc:.3f}" if inproc is not None else ""
        print(
            f"{name:<30} {t.seconds:>8.3f} {ip:>9} {t.cpu_seconds:>7.2f} "
            f"{n / t.seconds:>11,.0f} {_mib(t.max_rss_kib):>9} {own:>10}"
        )
    print()
    print(f"cold ratio annextui/git-annex (wall): {ours_cold.seconds / ga_cold.seconds:.3f}")
    print(
        f"cold ratio annextui/git-annex (CPU):  {ours_cold.cpu_seconds / ga_cold.cpu_seconds:.3f}"
    )
    print(
        f"same with ls-tree (wall / CPU):       {ours_tree.seconds / ga_cold.seconds:.3f} / "
        f"{ours_tree.cpu_seconds / ga_cold.cpu_seconds:.3f}"
    )
    print(f"incremental ratio (wall):             {ours_inc.seconds / ga_inc.seconds:.3f}")
    print(f"incremental refresh in-process:       {float(oi['seconds']) * 1000:.1f} ms")  # type: ignore[arg-type]
    print(f"sizes equal to git-annex: cold {same_cold}, after the change {same_inc}")
    print(
        "annextui cold scan listed the branch with "
        + (
            "git ls-files on git-annex's index (proven equal to the branch)"
            if index_listing
            else "git ls-tree -r"
        )
    )
    return 0 if same_cold and same_inc else 1


if __name__ == "__main__":
    sys.exit(main())
