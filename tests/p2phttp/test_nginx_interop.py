"""Real git-annex clients through Debian's nginx (TLS termination, basic auth, streaming) to a
p2phttp server on loopback or on a unix socket (`--socket`), for both servers: one nginx per
module, one site per server and transport.

The site is docs/deployment.md's, rendered from tests/data/nginx/p2phttp-site.conf; the
client trusts the test's own CA (SSL_CERT_FILE), it does not skip
verification, and gets its password from a git credential store after nginx's 401.
"""

from __future__ import annotations

import base64
import contextlib
import grp
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.support import annex as annex_support
from tests.support import nginx
from tests.support import p2phttp as H
from tests.support.sshd import Sshd, free_port

USER, PASSWORD = "alice", "s3cret-for-nginx"
KINDS = list(H.SERVERS)
# `git annex p2phttp` itself wedges now and then mid-copy under load (a client's `copy` then
# times out at 180 s: twice in a day's runs, both through the socket); what these copies check
# of ours (the site, TLS, auth, streaming) the annextui kind checks. The shorter tests below
# (resume, refusal, socket modes) still run against both servers.
UPSTREAM_COPIES = os.environ.get("ANNEXTUI_UPSTREAM_P2PHTTP") == "1"
TRANSPORTS = ["tcp", "socket"]
DOC_UMASK = 0o007  # docs/deployment.md's unit for --socket: UMask=0007
SOCKET_MODES = {"annextui": 0o770, "git-annex": 0o700}  # under DOC_UMASK
# nginx's workers as an unprivileged user in the socket's group (the doc's www-data in annex)
WORKER_USER, WORKER_GROUP = "nobody", "nogroup"
DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


class Front:
    def __init__(
        self,
        topo: T.Topology,
        proxy: nginx.Nginx,
        upstreams: dict[str, int | Path],
        tls: nginx.Tls,
    ) -> None:
        self.topo = topo
        self.proxy = proxy
        self.upstreams = upstreams
        self.tls = tls


@pytest.fixture(scope="module")
def front(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[Front]:
    if not nginx.available():
        pytest.skip("nginx not installed (scripts/test.sh installs nginx)")
    with annex_support.ssh_world(tmp_path_factory, "nginx", git_annex_bin, sshd) as (root, env):
        topo = T.build(env, sshd, root)
        tls = nginx.make_tls(root / "tls")
        htpasswd = nginx.write_htpasswd(root / "htpasswd", {USER: PASSWORD})
        upstreams: dict[str, int | Path] = {}
        for kind in KINDS:
            upstreams[_site(kind, "tcp")] = free_port()
            upstreams[_site(kind, "socket")] = root / f"{kind}.sock"
        with nginx.front(root / "nginx", upstreams, tls, htpasswd) as proxy:
            yield Front(topo, proxy, upstreams, tls)


def _site(kind: str, transport: str) -> str:
    return f"{kind}-{transport}"


def _served(front: Front, kind: str, transport: str = "tcp") -> H.P2PHttpServer:
    env = front.topo.env
    if not H.implemented(kind, env.env):
        pytest.skip(f"{' '.join(H.SERVERS[kind])} is not in this checkout")
    # nginx authenticates; the server trusts what reaches its loopback port or socket
    upstream = front.upstreams[_site(kind, transport)]
    where = {"unix_socket": upstream} if isinstance(upstream, Path) else {"port": upstream}
    return H.P2PHttpServer(
        kind,
        front.topo.gw,
        dict(env.env),
        ("--wideopen", "-J4"),
        **where,  # type: ignore[arg-type]
    )


def _start_with_docs_umask(server: H.P2PHttpServer) -> None:
    """Start the server with the umask docs/deployment.md gives the service (UMask=0007), and
    check what the doc says follows from it: annextui's socket is one its group may connect
    to; git-annex's is its owner's only whatever the umask (Command/P2PHttp.hs creates it
    under protectedOutput)."""
    previous = os.umask(DOC_UMASK)  # inherited by the server's process
    try:
        server.start()
    finally:
        os.umask(previous)
    if server.unix_socket is not None:
        mode = server.unix_socket.stat().st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == SOCKET_MODES[server.kind], oct(mode)


@contextlib.contextmanager
def _remote_through_nginx(front: Front, kind: str, transport: str, name: str) -> Iterator[str]:
    """Server `kind` on `transport` behind nginx, started with the doc's umask, and the
    client's remote `name` reaching it (its cluster is NAME-mycluster, its px NAME-px)."""
    server = _served(front, kind, transport)
    url = f"annex+https://127.0.0.1:{front.proxy.ports[_site(kind, transport)]}/git-annex/"
    try:
        _start_with_docs_umask(server)
        H.point_client(
            front.topo.env,
            front.topo.client,
            name,
            url,
            git_url=str(front.topo.gw),
            credentials=(USER, PASSWORD),
            ca_file=front.tls.ca,
        )
        yield name
    finally:
        server.stop()


def _whereis(env: annex_support.AnnexEnv, repo: Path, *args: str) -> dict[str, set[str]]:
    return {
        r["file"]: {w["uuid"] for w in r["whereis"]}
        for r in env.annex_json(repo, "whereis", "--json", *args)
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            kind,
            marks=pytest.mark.skipif(
                kind == "git-annex" and not UPSTREAM_COPIES,
                reason="set ANNEXTUI_UPSTREAM_P2PHTTP=1",
            ),
        )
        for kind in KINDS
    ],
)
def test_copy_get_drop_move_fsck_through_nginx_with_tls_and_basic_auth(
    front: Front, kind: str, transport: str
) -> None:
    """copy/get/drop/move/fsck/whereis against the gateway itself, its proxied remote and the
    cluster, through nginx to the server on a loopback port or a unix socket."""
    topo, env = front.topo, front.topo.env
    site = _site(kind, transport)
    with _remote_through_nginx(front, kind, transport, f"tls-{site}") as remote:
        files: dict[str, bytes] = {
            f"{site}/big.bin": bytes(range(256)) * 4096 * 3,
            f"{site}/small.txt": f"{site}\n".encode(),
        }
        env.add_files(topo.client, files)
        cluster = f"{remote}-mycluster"
        env.annex(topo.client, "copy", "--to", cluster, site)
        env.annex(topo.client, "copy", "--to", f"{remote}-px", site)
        env.annex(topo.client, "drop", site)  # needs the cluster's copy locked through nginx
        env.annex(topo.client, "get", "--from", cluster, site)
        where = _whereis(env, topo.client, site)
        for name in files:
            assert where[name] >= {T.CLIENT, topo.cluster_uuid, T.PX}, where
            assert (topo.client / name).read_bytes() == files[name]
        env.annex(topo.client, "fsck", "--from", cluster, "--fast", site)
        env.annex(topo.client, "drop", "--from", f"{remote}-px", site)
        where = _whereis(env, topo.client, site)
        assert all(T.PX not in uuids for uuids in where.values()), where
        # the gateway's own judgement of where things are, and of its nodes' content
        env.annex(topo.gw, "fsck", "--from", "node1", "--fast", "--quiet")
        env.annex(topo.gw, "fsck", "--from", "px", "--fast", "--quiet")
        # move both ways, to the gateway itself and from the cluster, judged by whereis
        env.annex(topo.client, "move", "--to", remote, site)
        env.annex(topo.client, "fsck", "--from", remote, site)  # content checksummed
        where = _whereis(env, topo.client, site)
        assert all(T.GW in u and T.CLIENT not in u for u in where.values()), where
        env.annex(topo.client, "move", "--from", cluster, site)
        where = _whereis(env, topo.client, site)
        assert all(T.CLIENT in u and topo.cluster_uuid not in u for u in where.values()), where
        for name in files:
            assert (topo.client / name).read_bytes() == files[name]
        # every request went through nginx, authenticated, to this server
        log = front.proxy.access_log.read_text()
        puts = [line for line in log.splitlines() if f" {USER} " in line and "/v4/put?" in line]
        assert puts, log[-3000:]


@pytest.mark.parametrize("kind", KINDS)
def test_interrupted_get_resumes_through_nginx(front: Front, kind: str) -> None:
    """A real client's get from the cluster that was cut off (its partial object left in
    annex/tmp) resumes through nginx: the request nginx passes on asks for the rest only
    (`offset=`), and the object the client ends with is verified."""
    topo, env = front.topo, front.topo.env
    name = f"resume-{kind}/r.bin"
    data = bytes(range(256)) * 8192 + kind.encode()  # 2 MiB, a key of its own per server
    done = 1_000_000
    with _remote_through_nginx(front, kind, "tcp", f"resume-{kind}") as remote:
        env.add_files(topo.client, {name: data})
        env.annex(topo.client, "move", "--to", f"{remote}-mycluster", name)
        key = env.annex(topo.client, "lookupkey", name).stdout.strip()
        partial = topo.client / ".git" / "annex" / "tmp" / key
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data[:done])
        env.annex(topo.client, "get", "--from", f"{remote}-mycluster", name)
        assert (topo.client / name).read_bytes() == data
        env.annex(topo.client, "fsck", name)
    log = front.proxy.access_log.read_text().splitlines()
    gets = [line for line in log if f"GET /git-annex/{topo.cluster_uuid}/v4/key/{key}" in line]
    assert [f"offset={done}" in line for line in gets] == [True], gets


@pytest.mark.parametrize(("umask", "reached"), [(DOC_UMASK, True), (0o022, False)])
def test_unprivileged_nginx_workers_reach_the_socket(
    front: Front, umask: int, reached: bool
) -> None:
    """docs/deployment.md's socket permissions, for real: nginx's workers run as an
    unprivileged user whose group is the socket's, the socket in a directory only that group
    may enter (0750; setgid, so the socket gets the group, as the doc's service gives it its
    own). With the doc's umask a real client's copy goes through; with the usual 0022 (a
    socket `srwxr-xr-x`) nginx is refused and says why in its error log."""
    if os.geteuid() != 0:
        pytest.skip("nginx's workers switch to another user only when it starts as root")
    topo, env = front.topo, front.topo.env
    shared = Path(tempfile.mkdtemp(prefix="annextui-socket-"))  # outside pytest's 0700 dirs
    try:
        shared.chmod(0o755)  # as /run: anyone may enter
        run = shared / "annextui"
        run.mkdir()
        os.chown(run, -1, grp.getgrnam(WORKER_GROUP).gr_gid)
        run.chmod(0o2750)
        htpasswd = nginx.write_htpasswd(shared / "htpasswd", {USER: PASSWORD})
        htpasswd.chmod(0o644)  # the workers read it
        options = ("--wideopen", "-J2")
        server = H.P2PHttpServer(
            "annextui", topo.gw, dict(env.env), options, unix_socket=run / "p2phttp.sock"
        )
        previous = os.umask(umask)  # inherited by the server's process
        try:
            server.start()
        finally:
            os.umask(previous)
        worker = f"{WORKER_USER} {WORKER_GROUP}"
        upstreams: dict[str, int | Path] = {"socket": run / "p2phttp.sock"}
        try:
            with nginx.front(shared / "nginx", upstreams, front.tls, htpasswd, worker) as proxy:
                remote = f"unprivileged-{umask:o}"
                url = f"annex+https://127.0.0.1:{proxy.ports['socket']}/git-annex/"
                H.point_client(
                    env,
                    topo.client,
                    remote,
                    url,
                    git_url=str(topo.gw),
                    credentials=(USER, PASSWORD),
                    ca_file=front.tls.ca,
                )
                name = f"{remote}/f.txt"
                env.add_files(topo.client, {name: f"{remote}\n".encode()})
                copied = env.annex(topo.client, "copy", "--to", remote, name, check=False)
                if reached:
                    assert copied.returncode == 0, copied.stderr
                    assert T.GW in _whereis(env, topo.client, name)[name]
                else:
                    assert copied.returncode != 0
                    assert "(13: Permission denied)" in proxy.logs()
        finally:
            server.stop()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_password_is_refused_by_nginx(front: Front, kind: str) -> None:
    server = _served(front, kind)
    try:
        server.start()
        wrong = base64.b64encode(f"{USER}:wrong".encode()).decode()
        reply = H.Endpoint(front.proxy.ports[_site(kind, "tcp")], tls=True).request(
            "POST",
            f"/git-annex/{T.GW}/v4/checkpresent?key=SHA1-s0--x&clientuuid={T.CLIENT}",
            timeout=30.0,
            headers={"Authorization": f"Basic {wrong}"},
        )
        assert reply.status == 401
        assert reply.headers.get("www-authenticate", "").startswith("Basic realm=")
    finally:
        server.stop()


def test_doc_shows_the_tested_site_literally() -> None:
    """docs/deployment.md's nginx blocks are the files the tests render: the site, and the
    `proxy_pass` line of its unix socket variant."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), flags=re.S)
    assert nginx.SITE_TEMPLATE.read_text() in blocks
    assert nginx.SOCKET_UPSTREAM_TEMPLATE.read_text() in blocks
    assert f"\nUMask={DOC_UMASK:04o}\n" in DOC.read_text()  # the umask the socket test runs with
