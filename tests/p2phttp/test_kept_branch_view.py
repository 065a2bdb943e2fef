"""A server keeps its thread's view of the gateway's git-annex branch between requests
(records.thread_view, BranchView.follow): what a real git-annex changes beside the running
server, in the journal, the branch or a newly fetched `*/git-annex` ref, answers the very next
checkpresent on the same keep-alive connection (the same thread, the same kept view)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.topology import CLIENT, N1, N2
from tests.p2phttp.support import Served, World, build, point_at, serve
from tests.support.annex import AnnexEnv

pytestmark = pytest.mark.slow


@pytest.fixture
def world(annex_env: AnnexEnv) -> Iterator[tuple[World, Served]]:
    w = build(annex_env, annex_env.root)
    with serve(annex_env, w.gw, ["--wideopen", "-J", "4"]) as served:
        point_at(w, served)
        yield w, served


def _present(conn: http.client.HTTPConnection, uuid: str, key: str) -> bool:
    conn.request("POST", f"/git-annex/{uuid}/v4/checkpresent?key={key}&clientuuid={CLIENT}")
    reply = conn.getresponse()
    body = reply.read()
    assert reply.status == 200, body
    return bool(json.loads(body)["present"])


def _client_logs(env: AnnexEnv, client: Path, key: str, present: str) -> None:
    """The client's git-annex logs both local nodes present ("1") or missing ("0"), committed."""
    for node in (N1, N2):
        env.annex(client, "setpresentkey", key, node, present)
    env.annex(client, "merge", "-q")


def _fetch(env: AnnexEnv, gw: Path, client: Path) -> None:
    env.git(gw, "fetch", "-q", str(client), "+refs/heads/git-annex:refs/remotes/newpeer/git-annex")


def test_changes_beside_the_server_answer_the_next_checkpresent(
    world: tuple[World, Served],
) -> None:
    w, served = world
    env, client, gw = w.env, w.client, w.gw
    env.add_files(client, {"v.txt": "a view kept between requests\n"})
    env.annex(client, "copy", "--to", "origin-mycluster", "v.txt")
    key = env.annex(client, "lookupkey", "v.txt").stdout.strip()
    conn = served.conn()
    try:
        for _ in range(3):  # the thread's view is built, stamped, then kept
            assert _present(conn, w.cluster_uuid, key)

        # the journal: git-annex beside the server logs both nodes missing, uncommitted
        for node in (N1, N2):
            env.annex(gw, "setpresentkey", key, node, "0")
        assert not _present(conn, w.cluster_uuid, key)
        for node in (N1, N2):
            env.annex(gw, "setpresentkey", key, node, "1")
        assert _present(conn, w.cluster_uuid, key)
        env.annex(gw, "merge", "-q")  # the journal committed: the branch moved
        assert _present(conn, w.cluster_uuid, key)
        head = env.git(gw, "rev-parse", "git-annex")

        # a new `*/git-annex` ref, fetched by plain git (no config change, nothing merged):
        # the client's branch logs both nodes missing, later than the gateway's branch (the
        # test environment's clock stands still: git-annex writes past the newest line it read)
        env.git(client, "fetch", "-q", "origin")
        env.annex(client, "merge", "-q")
        _client_logs(env, client, key, "0")
        _fetch(env, gw, client)
        assert not _present(conn, w.cluster_uuid, key)
        # that ref fetched again, now saying present: an existing ref moved, nothing else
        _client_logs(env, client, key, "1")
        _fetch(env, gw, client)
        assert _present(conn, w.cluster_uuid, key)
        assert env.git(gw, "rev-parse", "git-annex") == head  # nothing merged meanwhile
        # and missing again; git-annex itself agrees (its whereis merges that ref first)
        _client_logs(env, client, key, "0")
        _fetch(env, gw, client)
        assert not _present(conn, w.cluster_uuid, key)
        where = env.annex_json(gw, "whereis", "--key", key)
        assert not {N1, N2} & {r["uuid"] for r in where[0]["whereis"]}
    finally:
        conn.close()
