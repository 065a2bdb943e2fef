"""Real git-annex clients through Debian's nginx (TLS termination, basic auth, streaming) to a
p2phttp server on loopback, for both servers: one nginx per module, one site per server.

The site is docs/deployment.md's, rendered from tests/data/nginx/p2phttp-site.conf; the
client trusts the test's own CA (SSL_CERT_FILE), it does not skip
verification, and gets its password from a git credential store after nginx's 401.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.support import annex as annex_support
from tests.support import nginx
from tests.support import p2phttp as H
from tests.support.sshd import Sshd

USER, PASSWORD = "alice", "s3cret-for-nginx"
KINDS = list(H.SERVERS)
DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


class Front:
    def __init__(
        self, topo: T.Topology, proxy: nginx.Nginx, upstreams: dict[str, int], tls: nginx.Tls
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
        upstreams = {kind: H.free_port() for kind in KINDS}
        with nginx.front(root / "nginx", upstreams, tls, htpasswd) as proxy:
            yield Front(topo, proxy, upstreams, tls)


def _served(front: Front, kind: str) -> H.P2PHttpServer:
    env = front.topo.env
    if not H.implemented(kind, env.env):
        pytest.skip(f"{' '.join(H.SERVERS[kind])} is not in this checkout")
    # nginx authenticates; the server trusts what reaches its loopback port
    return H.P2PHttpServer(
        kind, front.topo.gw, dict(env.env), ("--wideopen", "-J4"), port=front.upstreams[kind]
    )


def _whereis(env: annex_support.AnnexEnv, repo: Path, *args: str) -> dict[str, set[str]]:
    return {
        r["file"]: {w["uuid"] for w in r["whereis"]}
        for r in env.annex_json(repo, "whereis", "--json", *args)
    }


@pytest.mark.parametrize("kind", KINDS)
def test_copy_get_drop_through_nginx_with_tls_and_basic_auth(front: Front, kind: str) -> None:
    topo, env = front.topo, front.topo.env
    server = _served(front, kind)
    remote = f"tls-{kind}"
    url = f"annex+https://127.0.0.1:{front.proxy.ports[kind]}/git-annex/"
    try:
        server.start()
        H.point_client(
            env,
            topo.client,
            remote,
            url,
            git_url=str(topo.gw),
            credentials=(USER, PASSWORD),
            ca_file=front.tls.ca,
        )
        files: dict[str, bytes] = {
            f"{kind}/big.bin": bytes(range(256)) * 4096 * 3,
            f"{kind}/small.txt": f"{kind}\n".encode(),
        }
        env.add_files(topo.client, files)
        cluster = f"{remote}-mycluster"
        env.annex(topo.client, "copy", "--to", cluster, kind)
        env.annex(topo.client, "copy", "--to", f"{remote}-px", kind)
        env.annex(topo.client, "drop", kind)  # needs the cluster's copy locked through nginx
        env.annex(topo.client, "get", "--from", cluster, kind)
        where = _whereis(env, topo.client, kind)
        for name in files:
            assert where[name] >= {T.CLIENT, topo.cluster_uuid, T.PX}, where
            assert (topo.client / name).read_bytes() == files[name]
        env.annex(topo.client, "fsck", "--from", cluster, "--fast", kind)
        env.annex(topo.client, "drop", "--from", f"{remote}-px", kind)
        where = _whereis(env, topo.client, kind)
        assert all(T.PX not in uuids for uuids in where.values()), where
        # the gateway's own judgement of where things are, and of its nodes' content
        env.annex(topo.gw, "fsck", "--from", "node1", "--fast", "--quiet")
        env.annex(topo.gw, "fsck", "--from", "px", "--fast", "--quiet")
        # every request went through nginx, authenticated, to this server
        log = front.proxy.access_log.read_text()
        port_requests = [
            line for line in log.splitlines() if f" {USER} " in line and "/v4/put?" in line
        ]
        assert port_requests, log[-3000:]
    finally:
        server.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_password_is_refused_by_nginx(front: Front, kind: str) -> None:
    server = _served(front, kind)
    try:
        server.start()
        wrong = base64.b64encode(f"{USER}:wrong".encode()).decode()
        reply = H.Endpoint(front.proxy.ports[kind], tls=True).request(
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
    """docs/deployment.md's nginx block is the file the tests render."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), flags=re.S)
    assert nginx.SITE_TEMPLATE.read_text() in blocks
