"""cProfile of single `annextui p2phttp` requests to a cluster, in process.

Builds the p2phttp test topology (tests/p2phttp/support.py: a bare gateway, two local cluster
nodes) with the real git-annex, puts files on the cluster with a real client through a served
`annextui p2phttp`, then runs the server's own per-request path (`ServedRepos.target`, the
implicit VERSION, `endpoints.run`, `Peer.close`) for cluster GETs and drops here, under cProfile.
The HTTP framing (h11) is left out: it costs the same for every endpoint.

    python bench/httpprofile.py [--count 30] [--top 25] [--out DIR] [--http-rounds 4]

First (`--http-rounds`), the same cluster checkpresent and GET requests go over HTTP to
`annextui p2phttp` and `git annex p2phttp` in turn, for the servers' whole per-request cost
side by side.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.gateway.topology import CLIENT  # noqa: E402
from tests.p2phttp import support as S  # noqa: E402
from tests.support import annex as annex_support  # noqa: E402
from tests.support.annex import AnnexEnv  # noqa: E402


class _Body:
    """A request body from bytes (`endpoints.Body`)."""

    def __init__(self, data: bytes = b"") -> None:
        self._data = memoryview(data)

    def readinto(self, buf: memoryview) -> int:
        n = min(len(buf), len(self._data))
        buf[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


class _Sink:
    """A Reply that keeps only the status and the byte count."""

    def __init__(self) -> None:
        self.status = 0
        self.sent = 0

    def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status = status

    def write(self, data: bytes | memoryview) -> None:
        self.sent += len(data)

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        return 0

    def end(self) -> None:
        pass


def _request(server: object, method: str, target: str, body: bytes | None = None) -> int:
    from annextui.proxycore.http import endpoints
    from annextui.proxycore.http.routes import parse_target
    from annextui.proxycore.http.server import P2PHttpServer, _negotiate
    from annextui.proxycore.localrepo import release_packs

    assert isinstance(server, P2PHttpServer)
    api = parse_target(method, target)
    peer = server.repos.target(api.uuid, api.client_uuid())()
    reply = _Sink()
    try:
        _negotiate(peer, api)
        length = None if body is None else str(len(body))
        session = endpoints.Session(peer, server.locks)
        endpoints.run(api, session, _Body(body or b""), reply, length)
    finally:
        peer.close()
        release_packs()
    return reply.status


def _over_http(env: AnnexEnv, world: S.World, keys: list[str], rounds: int) -> None:
    """Cluster checkpresent and GET over HTTP (one keep-alive connection) through `annextui
    p2phttp` and `git annex p2phttp` side by side, the order alternating between rounds:
    the server's whole per-request path, h11 and the sockets included."""
    from tests.support import p2phttp as H

    server_env = {**env.env, "PYTHONPATH": str(ROOT)}
    servers = {
        kind: H.P2PHttpServer(kind, world.gw, server_env, ("--wideopen", "-J2")).start()
        for kind in ("annextui", "git-annex")
    }
    base = f"/git-annex/{world.cluster_uuid}/v4"
    times: dict[tuple[str, str], list[float]] = {}
    try:
        for rnd in range(rounds):
            order = sorted(servers) if rnd % 2 == 0 else sorted(servers, reverse=True)
            for kind in order:
                conn = servers[kind].endpoint.connection(timeout=120)
                for label, method, path in (
                    ("checkpresent", "POST", base + "/checkpresent?key={k}&clientuuid=" + CLIENT),
                    ("get", "GET", base + "/key/{k}?clientuuid=" + CLIENT),
                ):
                    t = time.perf_counter()
                    for k in keys:
                        conn.request(method, path.format(k=k), headers={"Content-Length": "0"})
                        resp = conn.getresponse()
                        resp.read()
                        assert resp.status == 200, (kind, label, resp.status)
                    ms = (time.perf_counter() - t) / len(keys) * 1000
                    times.setdefault((kind, label), []).append(ms)
                conn.close()
    finally:
        for srv in servers.values():
            srv.stop()
    for label in ("checkpresent", "get"):
        row = []
        for kind in ("annextui", "git-annex"):
            values = sorted(times[(kind, label)])
            row.append((kind, values[0], values[len(values) // 2]))
        ratio = row[0][2] / row[1][2]
        cells = ", ".join(f"{k} best {b:.2f} ms median {m:.2f} ms" for k, b, m in row)
        print(f"over HTTP, cluster {label}: {cells}; ours/theirs (median) {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=30, help="files (requests of each kind)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", type=Path, help="keep the .prof files here")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of unprofiled timings")
    ap.add_argument(
        "--http-rounds",
        type=int,
        default=4,
        help="rounds of requests over HTTP, ours and git annex p2phttp alternating (0: none)",
    )
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="httpprof-"))
    binary = shutil.which("git-annex")
    assert binary is not None, "git-annex is not on PATH"
    env = AnnexEnv.create(
        tmp, bin_dir=Path(binary).parent, magic=annex_support.magic_db(Path(binary))
    )
    try:
        world = S.build(env, tmp)
        names = {f"f{i:03d}": f"content {i}\n" for i in range(args.count)}
        env.add_files(world.client, names)
        with S.serve(env, world.gw, ["--wideopen"]) as served:
            S.point_at(world, served)
            env.annex(world.client, "copy", "-q", "--to", "origin-mycluster", *names)
        keys = [env.annex(world.client, "lookupkey", n).stdout.strip() for n in names]
        # files the cluster does not have yet, for the PUTs
        fresh = {f"p{i:03d}": f"put content {i}\n" for i in range(args.count)}
        env.add_files(world.client, fresh)
        put_keys = {
            env.annex(world.client, "lookupkey", n).stdout.strip(): v for n, v in fresh.items()
        }
        if args.http_rounds:
            _over_http(env, world, keys, args.http_rounds)
        os.environ.update(env.env)  # git run by the server sees the test's HOME and PATH
        os.chdir(world.gw)
        from annextui.proxycore.http.server import P2PHttpServer, ServerOptions

        server = P2PHttpServer(ServerOptions([str(world.gw)]))
        server.commits.start()  # journal commits handed off, as in the running server
        base = f"/git-annex/{world.cluster_uuid}/v4"
        _request(server, "GET", f"{base}/key/{keys[0]}?clientuuid={CLIENT}")  # warm up
        put_list = list(put_keys)
        for label, method, path, todo in (
            ("get", "GET", base + "/key/{k}?clientuuid=" + CLIENT, keys[1:]),
            ("checkpresent", "POST", base + "/checkpresent?key={k}&clientuuid=" + CLIENT, keys[1:]),
            ("put", "POST", base + "/put?key={k}&clientuuid=" + CLIENT, put_list),
            ("remove", "POST", base + "/remove?key={k}&clientuuid=" + CLIENT, keys[1:]),
        ):
            prof = cProfile.Profile()
            t = time.perf_counter()
            for k in todo:
                body = put_keys[k].encode() if label == "put" else None
                status = prof.runcall(_request, server, method, path.format(k=k), body)
                assert status == 200, (label, status)
            per = (time.perf_counter() - t) / len(todo) * 1000
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats("cumulative").print_stats(args.top)
            print(f"=== cluster {label}: {per:.1f} ms per request (profiled)")
            print(out.getvalue())
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                stats.dump_stats(args.out / f"{label}.prof")
        # unprofiled: checkpresent and GET repeated (best of the rounds: the machine is shared)
        timings: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for label, path in (
                ("checkpresent", base + "/checkpresent?key={k}&clientuuid=" + CLIENT),
                ("get", base + "/key/{k}?clientuuid=" + CLIENT),
            ):
                method = "GET" if label == "get" else "POST"
                t = time.perf_counter()
                for k in keys:
                    _request(server, method, path.format(k=k))
                ms = (time.perf_counter() - t) / len(keys) * 1000
                timings.setdefault(label, []).append(ms)
        for name, values in timings.items():
            mid = sorted(values)[len(values) // 2]
            print(f"unprofiled {name}: best {min(values):.2f} ms, median {mid:.2f} ms")
        server.shutdown()
    finally:
        env.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
