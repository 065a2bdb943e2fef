"""A real git-annex client that learns the p2phttp server from an http git remote: the
gateway's git config sets `annex.url` (doc/git-annex.mdwn), the repository is cloned over
git's dumb HTTP protocol, and git-annex, reading the remote's `config` over HTTP, stores the
URL as `remote.origin.annexUrl` (Remote/Git.hs geturlconfig); from then on its annex goes
through `annextui p2phttp`."""

from __future__ import annotations

import pytest

from tests.gateway.topology import GW, N1, N2
from tests.p2phttp.support import build, dumb_http, serve
from tests.support.annex import AnnexEnv

pytestmark = pytest.mark.slow


def test_annex_url_learned_from_an_http_remote(annex_env: AnnexEnv) -> None:
    env = annex_env
    w = build(env, env.root)
    with serve(env, w.gw, ["--wideopen"]) as served:
        annex_url = f"annex+http://127.0.0.1:{served.port}/git-annex/"
        env.git(w.gw, "config", "annex.url", annex_url)
        env.git(w.gw, "update-server-info")  # what a dumb HTTP clone reads
        with dumb_http(w.gw) as git_url:
            client = env.root / "hclient"
            env.run(["git", "clone", "-q", git_url, str(client)])
            env.git(client, "config", "annex.security.allowed-ip-addresses", "all")
            env.annex(client, "init", "-q", "hclient")
        assert env.git(client, "config", "remote.origin.annexurl") == annex_url

        env.add_files(client, {"h.txt": "learned from annex.url\n"})
        env.annex(client, "copy", "--to", "origin", "h.txt")
        env.annex(client, "copy", "--to", "origin-mycluster", "h.txt")
        whereis = env.annex_json(client, "whereis", "h.txt")
        assert {GW, N1, N2} <= {x["uuid"] for x in whereis[0]["whereis"]}
        env.annex(client, "drop", "h.txt")
        env.annex(client, "get", "--from", "origin-mycluster", "h.txt")
        assert (client / "h.txt").read_text() == "learned from annex.url\n"
        env.annex(client, "fsck", "-q", "--from", "origin-mycluster", "h.txt")
        log = served.log_text()
    # the content went through annextui p2phttp: the gateway's own put, the cluster's put and get
    assert f"/git-annex/{GW}/v4/put?" in log
    assert f"/git-annex/{w.cluster_uuid}/v4/put?" in log
    assert f"GET /git-annex/{w.cluster_uuid}/v4/key/" in log
    for node in w.nodes.values():  # the nodes' own git-annex agrees
        env.annex(node, "fsck", "-q", "--all")
