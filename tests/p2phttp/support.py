"""A gateway served by `annextui p2phttp` (a child process) and a client reaching it through
`remote.origin.annexUrl`, all built by the real git-annex on local paths (no ssh needed):

    client ──annex+http──▶ gw (annextui p2phttp)
                            ├── node1, node2   local paths, cluster `mycluster`
                            └── px             local path, proxied remote (annex-proxy)
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import http.server
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.gateway.topology import CLIENT, CLUSTER_NAME, GW, N1, N2, PX
from tests.support.annex import AnnexEnv
from tests.support.p2phttp import Endpoint
from tests.support.sshd import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def keep_locked(self, key: str, uuid: str = GW) -> tuple[str, socket.socket]:
        """lockcontent, then a keeplocked request whose body stays open (the lock id and its
        socket: send `{"unlock":true}` and the last chunk on it, or close it, to end it)."""
        return Endpoint(self.port).keep_locked(uuid, key, CLIENT)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serve(
    env: AnnexEnv, cwd: Path, args: Sequence[str], *, extra_env: dict[str, str] | None = None
) -> Iterator[Served]:
    port = free_port()
    log = cwd.parent / f"p2phttp-{port}.log"
    e = dict(env.env)
    e["PYTHONPATH"] = str(ROOT)
    e.update(extra_env or {})
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "annextui",
                "p2phttp",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=cwd,
            env=e,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Served(proc, port, log)
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"p2phttp exited: {log.read_text()}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.05)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class World:
    env: AnnexEnv
    root: Path
    gw: Path
    nodes: dict[str, Path]
    px: Path
    client: Path
    cluster_uuid: str


def build(env: AnnexEnv, root: Path) -> World:
    seed = env.make_annex_repo(root / "seed", description="seed")
    env.add_files(seed, {"README": "p2phttp test\n"}, annex=False)
    gw = env.clone(seed, root / "gw.git", bare=True, annex_init=False)
    env.run(["git", "-C", gw, "remote", "remove", "origin"])
    env.git(gw, "config", "annex.uuid", GW)
    env.annex(gw, "init", "-q", "gateway")
    nodes = {
        "node1": env.make_annex_repo(root / "node1.git", N1, "node1", bare=True),
        "node2": env.make_annex_repo(root / "node2.git", N2, "node2", bare=True),
    }
    px = env.make_annex_repo(root / "px.git", PX, "px", bare=True)
    for name, path in nodes.items():
        env.git(gw, "remote", "add", name, str(path))
        env.git(gw, "config", f"remote.{name}.annex-uuid", {"node1": N1, "node2": N2}[name])
        env.git(gw, "config", f"remote.{name}.annex-cluster-node", CLUSTER_NAME)
        env.git(gw, "config", f"remote.{name}.fetch", "")
    env.git(gw, "remote", "add", "px", str(px))
    env.git(gw, "config", "remote.px.annex-uuid", PX)
    env.git(gw, "config", "remote.px.annex-proxy", "true")
    env.annex(gw, "initcluster", CLUSTER_NAME)
    env.annex(gw, "updatecluster")
    env.annex(gw, "updateproxy")
    cluster_uuid = env.git(gw, "config", f"annex.cluster.{CLUSTER_NAME}")
    client = env.clone(gw, root / "client", uuid=CLIENT, origin="origin", annex_init=False)
    env.annex(client, "init", "-q", "client")
    env.git(client, "config", "annex.security.allowed-ip-addresses", "all")
    return World(env, root, gw, nodes, px, client, cluster_uuid)


def point_at(world: World, served: Served) -> None:
    """The client's origin reaches the gateway's annex through the server from now on."""
    env, client = world.env, world.client
    env.git(
        client,
        "config",
        "remote.origin.annexUrl",
        f"annex+http://127.0.0.1:{served.port}/git-annex/",
    )
    env.git(client, "fetch", "-q", "origin")
    env.annex(client, "merge", "-q")


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def dumb_http(directory: Path) -> Iterator[str]:
    """`directory` served read-only over HTTP on loopback (git's dumb HTTP protocol once
    `git update-server-info` has run in it); yields its URL."""
    handler = functools.partial(_QuietFiles, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="dumb-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
