"""A cluster GET over HTTP is served from an in-process node holding the file without reading
the gateway's location log, from a request's first GET (the nodes are pooled by the server;
cluster/peer.py `pooled`). CHECKPRESENT still answers by the log, as upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.gateway.topology import CLIENT, N1, N2
from tests.p2phttp.support import Served, World, build, point_at, serve
from tests.support.annex import AnnexEnv

pytestmark = pytest.mark.slow


@pytest.fixture
def world(annex_env: AnnexEnv) -> Iterator[tuple[World, Served]]:
    w = build(annex_env, annex_env.root)
    with serve(annex_env, w.gw, ["--wideopen"]) as served:
        point_at(w, served)
        yield w, served


def test_get_skips_the_location_log(world: tuple[World, Served]) -> None:
    w, served = world
    env, client = w.env, w.client
    data = b"served from the node's file\n" * 100
    env.add_files(client, {"f.bin": data})
    env.annex(client, "copy", "-q", "--to", "origin-mycluster", "f.bin")
    key = env.annex(client, "lookupkey", "f.bin").stdout.strip()
    # the gateway's git-annex says no node has it (committed to its branch); the files stay
    for node in (N1, N2):
        env.annex(w.gw, "setpresentkey", key, node, "0")
    env.annex(w.gw, "merge", "-q")
    base = f"/git-annex/{w.cluster_uuid}/v4"
    status, _, body = served.request(
        "POST", f"{base}/checkpresent?key={key}&clientuuid={CLIENT}", b""
    )
    assert (status, json.loads(body)) == (200, {"present": False})  # the log's answer
    # each request is a session of its own: this is its first (and only) GET
    status, headers, body = served.request("GET", f"{base}/key/{key}?clientuuid={CLIENT}")
    assert status == 200
    assert headers["x-git-annex-data-length"] == str(len(data))
    assert body == data
    # a real client gets it too, and its git-annex verifies the content
    env.annex(client, "drop", "-q", "--force", "f.bin")
    env.annex(client, "get", "-q", "--from", "origin-mycluster", "--key", key)
    env.annex(client, "fsck", "-q", "f.bin")
