"""A drain-like shell session of REMOVEs of absent content: annextui-shell at two revisions.

Each REMOVE that finds no content makes the served `LocalPeer` look up its own location log
(proxycore/branchreads.py): a node drained of thousands of keys, or a drain resumed after a
kill, asks that once per key. Two cases, each one `annextui-shell p2pstdio` session of
`--keys` REMOVEs on a fresh copy of the same bare repository (built once with git-annex and
our own PUTs):

* phantom: every key's content lost mid-removal (the log still says "present"): each look
           is followed by a "missing" line in the journal, committed at the session's end;
* removed: every key removed properly before (the log says "missing"): looks only.

The revision under test (this tree) and `--before` (exported with `git archive`) are run side
by side, alternating order per round; the figures are the serving process's CPU (user + system,
its `git` children included, from one fresh helper process per run), and wall time.

    python bench/bench_lost_copies.py [--keys 2000] [--rounds 2] [--before d3559bf]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from annextui.backend.keys import Key, key_for_content  # noqa: E402
from annextui.proxycore.local import LocalPeer  # noqa: E402
from annextui.proxycore.localrepo import LocalRepo  # noqa: E402
from annextui.proxycore.peer import AlreadyHave, Outcome  # noqa: E402
from tests.support import annex as annex_support  # noqa: E402
from tests.support.annex import AnnexEnv  # noqa: E402

U = "7e570000-0000-4000-8000-0000000000b1"
CLIENT = "c1ie0000-0000-4000-8000-0000000000b2"

# One helper process per run, so RUSAGE_CHILDREN is the shell's (and its git children's).
_HELPER = (
    "import json, resource, subprocess, sys, time\n"
    "data = sys.stdin.buffer.read()\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], input=data, capture_output=True)\n"
    "dt = time.perf_counter() - t\n"
    "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps([dt, ru.ru_utime + ru.ru_stime, p.returncode,\n"
    "                  p.stdout.decode(errors='replace'), p.stderr.decode(errors='replace')]))\n"
)


def _build(env: AnnexEnv, where: Path, keys: int) -> tuple[list[Key], list[Key]]:
    """A bare repository holding 2 * `keys` keys stored by our PUT: the first half then
    lost mid-removal (phantoms), the second removed properly."""
    env.make_annex_repo(where, U, "served", bare=True)
    repo = LocalRepo.open(str(where))
    peer = LocalPeer(repo, client_uuid=CLIENT)
    stored = []
    for i in range(2 * keys):
        data = f"lost copy bench {i}\n".encode()
        key = key_for_content(data, "SHA256E", ".bin")
        inc = peer.put(key, None)
        assert not isinstance(inc, AlreadyHave)
        inc.begin(len(data))
        inc.write(data)
        assert inc.finish(True) == Outcome(True)
        stored.append(key)
    phantoms, removed = stored[:keys], stored[keys:]
    for key in removed:
        assert peer.remove(key) == Outcome(True)
    peer.close()
    for key in phantoms:  # as tests/support/lostcopy.py leaves a removal killed mid-way
        kp = repo.store.present(key)
        assert kp is not None
        kp.dir.chmod(0o755)
        kp.lck.touch()
        kp.object.unlink()
    return phantoms, removed


def _session(env: dict[str, str], tree: Path, repo: Path, keys: list[Key]) -> tuple[float, float]:
    """(wall s, CPU s) of one shell session of REMOVEs, run with annextui from `tree`."""
    session = b"VERSION 4\n" + b"".join(f"REMOVE {k}\n".encode() for k in keys)
    argv = [sys.executable, "-m", "annextui.proxycore.shell", "p2pstdio", str(repo), CLIENT]
    p = subprocess.run(
        [sys.executable, "-c", _HELPER, *argv],
        input=session,
        capture_output=True,
        env={**env, "PYTHONPATH": str(tree)},
        check=True,
    )
    wall, cpu, rc, out, err = json.loads(p.stdout)
    if rc != 0 or out.splitlines()[1:] != ["VERSION 4", *["SUCCESS"] * len(keys)]:
        raise RuntimeError(f"session failed ({rc}): {err[-2000:]}")
    return wall, cpu


def _still_listed(env: AnnexEnv, repo: Path) -> int:
    said = env.annex_json(repo, "whereis", "--all", check=False)
    return sum(1 for r in said if r["whereis"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--before", default="d3559bf", help="the revision to compare with")
    args = ap.parse_args(argv)
    exe = annex_support.find_git_annex()
    if exe is None:
        print("git-annex not found", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="bench-lost-copies-"))
    try:
        before = base / "before"
        before.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "annextui"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        trees = {"before": before, "after": ROOT}
        env = AnnexEnv.create(base, bin_dir=exe.parent, magic=annex_support.magic_db(exe))
        template = base / "template.git"
        phantoms, removed = _build(env, template, args.keys)
        cases = {"phantom": phantoms, "removed": removed}
        cpu: dict[tuple[str, str], list[float]] = {}
        wall: dict[tuple[str, str], list[float]] = {}
        for rnd in range(args.rounds):
            order = ["before", "after"] if rnd % 2 == 0 else ["after", "before"]
            for case, keys in cases.items():
                for rev in order:
                    repo = base / f"{case}-{rev}-{rnd}.git"
                    shutil.copytree(template, repo, symlinks=True)
                    w, c = _session(env.env, trees[rev], repo, keys)
                    if case == "phantom" and _still_listed(env, repo) != 0:
                        raise RuntimeError(f"{rev}: phantoms left in {repo}")
                    cpu.setdefault((case, rev), []).append(c)
                    wall.setdefault((case, rev), []).append(w)
                    print(
                        f"{case:<8} {rev:<6} round {rnd}: {c:6.2f} s CPU, {w:6.2f} s",
                        file=sys.stderr,
                    )
                    shutil.rmtree(repo, ignore_errors=True)
        env.cleanup()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"{'case':<8} {'rev':<6} {'keys':>5} {'CPU best':>9} {'CPU med':>8} {'wall best':>9} "
        f"{'after/before CPU':>16}"
    )
    for case in ("phantom", "removed"):
        for rev in ("before", "after"):
            c, w = cpu[(case, rev)], wall[(case, rev)]
            ratio = min(c) / min(cpu[(case, "before")])
            print(
                f"{case:<8} {rev:<6} {args.keys:>5} {min(c):9.2f} {statistics.median(c):8.2f} "
                f"{min(w):9.2f} {ratio:16.2f}"
            )
    print(f"load: {os.getloadavg()[0]:.1f} (1 min) at the end; before = {args.before}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    raise SystemExit(main())
