"""One gateway session's location lookups (`GatewayRecords.locations`), this checkout against
another (`--baseline DIR`), side by side in one run.

A bare repository gets `--keys` location logs from the real git-annex (`setpresentkey
--batch`, committed); each round runs, for both checkouts in alternating order, a fresh
process that looks every key up `--passes` times through one `GatewayRecords` (so the
session's `git cat-file --batch` reader is in use, as in a gateway session relaying many
GETs) and prints the best per-lookup time. A second figure replaces the git round trip by a
dictionary of the blobs read in the first pass: what the lookup costs in the shell itself.

    python bench/lookupbench.py --baseline DIR [--keys 300] [--rounds 3] [--passes 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_MEASURE = """
import sys, time
from annextui.backend.keys import parse_key
from annextui.backend.repo import Repository
from annextui.proxycore.records import GatewayRecords
repo, count, passes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keys = [parse_key(f"SHA256E-s{i + 1}--{i:064x}.bin") for i in range(count)]
rec = GatewayRecords(Repository(repo))

def best() -> float:
    out = 1e9
    for _ in range(passes):
        t = time.perf_counter()
        for k in keys:
            rec.locations(k)
        out = min(out, (time.perf_counter() - t) / count)
    return out

total = best()
view, blobs = rec.view, {}
real = view.blob_reader
assert real is not None, "the batch reader should be in use"

def cached(commit, path):
    if (commit, path) not in blobs:
        blobs[commit, path] = real(commit, path)
    return blobs[commit, path]

view.blob_reader = cached
for k in keys:
    rec.locations(k)
print(f"{total * 1e6:.1f} {best() * 1e6:.1f}")
rec.close()
"""


def _repo(root: Path, count: int) -> Path:
    repo = root / "gw.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    subprocess.run(["git", "annex", "init", "-q", "gw"], cwd=repo, check=True)
    lines = "".join(
        f"SHA256E-s{i + 1}--{i:064x}.bin 40de0000-0000-4000-8000-000000000001 1\n"
        for i in range(count)
    )
    subprocess.run(
        ["git", "annex", "setpresentkey", "--batch", "-q"],
        cwd=repo,
        input=lines.encode(),
        check=True,
    )
    subprocess.run(["git", "annex", "merge", "-q"], cwd=repo, check=True)
    return repo


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--keys", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args(argv)
    checkouts = {"ours": ROOT, "base": args.baseline.resolve()}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory(prefix="lookupbench-") as tmp:
        repo = _repo(Path(tmp), args.keys)
        for rnd in range(args.rounds):
            order = list(checkouts) if rnd % 2 == 0 else list(reversed(checkouts))
            for name in order:
                env = {**os.environ, "PYTHONPATH": str(checkouts[name])}
                out = subprocess.run(
                    [sys.executable, "-c", _MEASURE, str(repo), str(args.keys), str(args.passes)],
                    env=env,
                    cwd=tmp,  # `-c` puts the working directory first on sys.path
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                figures[name].append((float(out[0]), float(out[1])))
    print(f"{'checkout':<8} {'us/lookup':>10} {'without git':>12}  (best of {args.rounds} rounds)")
    for name, rows in figures.items():
        print(f"{name:<8} {min(r[0] for r in rows):10.1f} {min(r[1] for r in rows):12.1f}")
    ours, base = figures["ours"], figures["base"]
    ratio = min(r[0] for r in ours) / min(r[0] for r in base)
    shell = min(r[1] for r in ours) / min(r[1] for r in base)
    print(f"ours/base: {ratio:.2f} per lookup, {shell:.2f} without git")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
