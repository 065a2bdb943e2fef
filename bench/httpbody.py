"""The big-body path alone: one large PUT and GET, `annextui p2phttp` vs `git annex p2phttp`.

No cluster and no git-annex client: a bare repository (made by git-annex) is served by both
servers side by side (`--wideopen -J8`, each on its own loopback port), and a stdlib client
PUTs one `--mib` MiB key (SHA256E, so both servers verify it; chunked as git-annex sends it)
with `v4/put`, GETs it back with `v4/key`, and removes it, `--rounds` times, alternating which
server goes first. Per
transfer: wall seconds and the server's CPU seconds (user + system of its process tree, from
/proc), which the load of a shared machine disturbs far less than wall time.

`--pyspy DIR` then records one PUT and one GET of ours with py-spy (all threads, native
frames off) and prints the functions that hold the most samples, inclusive and as leaves;
the raw collapsed stacks stay in DIR.

    python bench/httpbody.py [--mib 256] [--rounds 3] [--pyspy DIR]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import cpu_seconds  # noqa: E402

from tests.support import annex as annex_support  # noqa: E402
from tests.support import p2phttp as H  # noqa: E402
from tests.support.annex import AnnexEnv  # noqa: E402

SERVER_OPTIONS = ("--wideopen", "-J8")
REPO_UUID = "b0d10000-0000-4000-8000-000000000001"
CLIENT_UUID = "c11e0000-0000-4000-8000-0000000000b0"
BLOCK = 1 << 20
GIT_ANNEX_CHUNK = 32752


def _make_content(path: Path, mib: int) -> str:
    """MIB MiB of random bytes at PATH; their SHA256E key."""
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(mib):
            block = os.urandom(BLOCK)
            h.update(block)
            fh.write(block)
    return f"SHA256E-s{mib << 20}--{h.hexdigest()}.bin"


def _put(server: H.P2PHttpServer, key: str, content: Path) -> None:
    """The body chunked in git-annex's pieces (a lazy ByteString's 32752 bytes), as it
    sends one."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    size = content.stat().st_size

    def pieces() -> Iterator[bytes]:
        with open(content, "rb") as fh:
            while block := fh.read(GIT_ANNEX_CHUNK):
                yield block

    conn.request(
        "POST",
        f"/git-annex/{REPO_UUID}/v4/put?key={key}&clientuuid={CLIENT_UUID}&offset=0",
        body=pieces(),
        headers={
            "X-git-annex-data-length": str(size),
            "Content-Type": "application/octet-stream",
        },
        encode_chunked=True,
    )
    resp = conn.getresponse()
    answer = resp.read()
    conn.close()
    if resp.status != 200 or b'"stored":true' not in answer:
        raise RuntimeError(f"{server.kind} PUT: {resp.status} {answer!r}")


def _get(server: H.P2PHttpServer, key: str, size: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    conn.request("GET", f"/git-annex/{REPO_UUID}/v4/key/{key}?clientuuid={CLIENT_UUID}")
    resp = conn.getresponse()
    buf = memoryview(bytearray(BLOCK))
    got = 0
    while n := resp.readinto(buf):
        got += n
    conn.close()
    if resp.status != 200 or got != size:
        raise RuntimeError(f"{server.kind} GET: {resp.status}, {got} of {size} bytes")


def _remove(server: H.P2PHttpServer, key: str) -> None:
    reply = server.endpoint.request(
        "POST", f"/git-annex/{REPO_UUID}/v4/remove?key={key}&clientuuid={CLIENT_UUID}", timeout=60
    )
    if reply.status != 200 or b'"removed":true' not in reply.body:
        raise RuntimeError(f"{server.kind} remove: {reply.status} {reply.body!r}")


def _timed(server: H.P2PHttpServer, fn: object, *args: object) -> tuple[float, float]:
    tree = server.tree()
    cpu = cpu_seconds(tree)
    t = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    wall = time.perf_counter() - t
    return wall, cpu_seconds(tree) - cpu


def _pyspy(server: H.P2PHttpServer, out: Path, what: str, fn: object, *args: object) -> Path:
    raw = out / f"{what}.txt"
    # the interpreter itself (the console script may run under a launcher)
    pid = next(p for p in server.tree() if "python" in os.readlink(f"/proc/{p}/exe"))
    rec = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "-r",
            "200",
            "-o",
            str(raw),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attached
    fn(*args)  # type: ignore[operator]
    rec.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
    rec.wait(timeout=30)
    return raw


def summarize(raw: Path, top: int = 18) -> str:
    """Top functions by inclusive and by leaf samples in a py-spy raw (collapsed) file; idle
    threads (waiting in select/accept/acquire) left out."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    idle = ("select (", "accept (", "acquire (", "wait (", "_run (", "sleep (")
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or any(frames[-1].startswith(i) for i in idle):
            continue
        n = int(count)
        total += n
        for f in dict.fromkeys(frames):
            inclusive[f] += n
        leaf[frames[-1]] += n
    lines = [f"{raw.name}: {total} busy samples"]
    lines.append("  inclusive:")
    for f, n in inclusive.most_common(top):
        lines.append(f"    {100 * n / max(1, total):5.1f}%  {f}")
    lines.append("  leaf:")
    for f, n in leaf.most_common(top // 2):
        lines.append(f"    {100 * n / max(1, total):5.1f}%  {f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pyspy", type=Path, help="record ours with py-spy into this directory")
    ap.add_argument("--only", choices=tuple(H.SERVERS), help="one server only")
    args = ap.parse_args(argv)
    exe = annex_support.find_git_annex()
    if exe is None:
        print("needs git-annex", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bhbody-", dir="/tmp"))
    env = AnnexEnv.create(tmp / "w", magic=annex_support.magic_db(exe))
    servers: dict[str, H.P2PHttpServer] = {}
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        repo = env.make_annex_repo(tmp / "served.git", REPO_UUID, "served", bare=True)
        content = tmp / "content.bin"
        key = _make_content(content, args.mib)
        size = args.mib << 20
        kinds = [args.only] if args.only else list(H.SERVERS)
        for kind in kinds:
            servers[kind] = H.P2PHttpServer(kind, repo, dict(env.env), SERVER_OPTIONS).start()
        for rnd in range(args.rounds):
            for kind in kinds if rnd % 2 == 0 else kinds[::-1]:
                s = servers[kind]
                rows.setdefault((kind, "put"), []).append(_timed(s, _put, s, key, content))
                rows.setdefault((kind, "get"), []).append(_timed(s, _get, s, key, size))
                _remove(s, key)
                print(
                    f"  round {rnd} {kind}: put/get {rows[(kind, 'put')][-1]} "
                    f"{rows[(kind, 'get')][-1]}",
                    file=sys.stderr,
                )
        print(
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
            f"one {args.mib} MiB key, {args.rounds} rounds"
        )
        print(
            f"{'server':<10} {'op':<4} {'best s':>7} {'median s':>8} {'MiB/s':>7} "
            f"{'srv cpu s':>9} {'cpu/theirs':>10} {'wall/theirs':>11}"
        )
        for op in ("put", "get"):
            theirs = rows.get(("git-annex", op))
            for kind in kinds:
                r = rows[(kind, op)]
                wall = min(w for w, _ in r)
                cpu = statistics.median(c for _, c in r)
                tcpu = statistics.median(c for _, c in theirs) if theirs else float("nan")
                twall = min(w for w, _ in theirs) if theirs else float("nan")
                print(
                    f"{kind:<10} {op:<4} {wall:7.2f} {statistics.median(w for w, _ in r):8.2f} "
                    f"{args.mib / wall:7.1f} {cpu:9.2f} {cpu / tcpu:10.2f} {wall / twall:11.2f}"
                )
        if args.pyspy and "annextui" in servers:
            args.pyspy.mkdir(parents=True, exist_ok=True)
            s = servers["annextui"]
            put_raw = _pyspy(s, args.pyspy, "put", _put, s, key, content)
            get_raw = _pyspy(s, args.pyspy, "get", _get, s, key, size)
            print(summarize(put_raw))
            print(summarize(get_raw))
    finally:
        for s in servers.values():
            s.stop()
        env.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
