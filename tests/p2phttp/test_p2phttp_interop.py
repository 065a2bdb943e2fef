"""`annextui p2phttp` against a real git-annex client (`remote.origin.annexUrl`): the gateway
itself, a proxied remote and the cluster; locks, resume, and the journal at shutdown."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.topology import CLIENT, GW, N1, N2, PX
from tests.p2phttp.support import Served, World, build, point_at, serve
from tests.support.annex import AnnexEnv

pytestmark = pytest.mark.slow


@pytest.fixture
def world(annex_env: AnnexEnv) -> Iterator[tuple[World, Served]]:
    w = build(annex_env, annex_env.root)
    with serve(annex_env, w.gw, ["--wideopen", "-J", "4"]) as served:
        point_at(w, served)
        yield w, served


def _whereis(env: AnnexEnv, client: Path, name: str) -> set[str]:
    env.git(client, "fetch", "-q", "origin")
    env.annex(client, "merge", "-q")
    out = env.annex_json(client, "whereis", name)
    return {w["uuid"] for w in out[0]["whereis"]}


def test_gateway_copy_get_drop_move_fsck(world: tuple[World, Served]) -> None:
    w, served = world
    env, client = w.env, w.client
    env.add_files(client, {"a.txt": "alpha over http\n", "b.bin": bytes(range(256)) * 4000})
    env.annex(client, "copy", "--to", "origin", "a.txt", "b.bin")
    assert GW in _whereis(env, client, "a.txt")
    env.annex(client, "fsck", "--from", "origin", "a.txt", "b.bin")
    env.annex(client, "drop", "a.txt", "b.bin")
    env.annex(client, "get", "--from", "origin", "a.txt", "b.bin")
    assert (client / "a.txt").read_text() == "alpha over http\n"
    env.annex(client, "drop", "--from", "origin", "b.bin")
    assert GW not in _whereis(env, client, "b.bin")
    env.annex(client, "move", "--to", "origin", "b.bin")
    assert GW in _whereis(env, client, "b.bin")
    # the gateway's own git-annex agrees (its branch was committed by the server)
    env.annex(w.gw, "fsck", "-q", "--all")
    assert " 200 " in served.log_text()


def test_cluster_and_proxied_remote(world: tuple[World, Served]) -> None:
    w, _ = world
    env, client = w.env, w.client
    env.add_files(client, {"c.txt": "to the cluster\n", "p.txt": "to px\n"})
    env.annex(client, "copy", "--to", "origin-mycluster", "c.txt")
    assert {N1, N2} <= _whereis(env, client, "c.txt")
    env.annex(w.nodes["node1"], "fsck", "-q", "--all")
    env.annex(client, "copy", "--to", "origin-px", "p.txt")
    assert PX in _whereis(env, client, "p.txt")
    env.annex(client, "fsck", "--from", "origin-px", "p.txt")
    env.annex(client, "drop", "--force", "c.txt", "p.txt")
    env.annex(client, "get", "--from", "origin-mycluster", "c.txt")
    env.annex(client, "get", "--from", "origin-px", "p.txt")
    assert (client / "c.txt").read_text() == "to the cluster\n"
    env.annex(client, "fsck", "--from", "origin-mycluster", "c.txt")  # content checksummed
    env.annex(client, "drop", "--from", "origin-mycluster", "c.txt")
    assert not {N1, N2} & _whereis(env, client, "c.txt")
    env.annex(client, "move", "--to", "origin-mycluster", "c.txt")
    assert {N1, N2} <= _whereis(env, client, "c.txt")
    assert not (client / "c.txt").exists()  # moved: the client's copy went
    for node in w.nodes.values():  # each node's own git-annex agrees
        env.annex(node, "fsck", "-q", "--all")
    env.annex(client, "move", "--from", "origin-mycluster", "c.txt")
    assert not {N1, N2} & _whereis(env, client, "c.txt")
    assert (client / "c.txt").read_text() == "to the cluster\n"
    env.annex(client, "move", "--from", "origin-px", "p.txt")
    assert PX not in _whereis(env, client, "p.txt")
    env.annex(client, "copy", "--to", "origin-px", "p.txt")
    env.annex(w.px, "fsck", "-q", "--all")  # px's own git-annex agrees
    env.annex(client, "drop", "--from", "origin-px", "p.txt")
    assert PX not in _whereis(env, client, "p.txt")


def _response(sock: socket.socket) -> bytes:
    """A whole chunked response (read until its last chunk)."""
    got = b""
    while not got.endswith(b"0\r\n\r\n"):
        piece = sock.recv(4096)
        if not piece:
            break
        got += piece
    return got


def _key(env: AnnexEnv, repo: Path, name: str) -> str:
    return env.annex(repo, "lookupkey", name).stdout.strip()


@pytest.mark.parametrize("ending", ["unlock", "killed"])
def test_lockcontent_holds_off_drop(world: tuple[World, Served], ending: str) -> None:
    """A lock kept by keeplocked makes a concurrent `drop --force` from another client fail;
    ending keeplocked ({"unlock":true}), or the keeping client being killed (RST), frees it
    at once."""
    w, served = world
    env, client = w.env, w.client
    env.add_files(client, {"l.txt": f"locked over http, {ending}\n"})
    env.annex(client, "copy", "--to", "origin", "l.txt")
    _, sock = served.keep_locked(_key(env, client, "l.txt"))
    r = env.annex(client, "drop", "--from", "origin", "--force", "l.txt", check=False)
    assert r.returncode != 0
    assert GW in _whereis(env, client, "l.txt")
    if ending == "unlock":
        sock.sendall(b'f\r\n{"unlock":true}\r\n0\r\n\r\n')
        assert b'{"locked":false}' in _response(sock)
    else:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # with SO_LINGER 0: RST, as a killed client's kernel sends
    env.annex(client, "drop", "--from", "origin", "--force", "l.txt")
    assert GW not in _whereis(env, client, "l.txt")


def test_interrupted_put_resumes(world: tuple[World, Served]) -> None:
    w, served = world
    env, client = w.env, w.client
    data = bytes(range(256)) * 8192  # 2 MiB
    env.add_files(client, {"r.bin": data})
    key = _key(env, client, "r.bin")
    base = f"/git-annex/{GW}/v4"
    sock = socket.create_connection(("127.0.0.1", served.port))
    half = len(data) // 2
    sock.sendall(
        f"POST {base}/put?key={key}&clientuuid={CLIENT}&offset=0 HTTP/1.1\r\nHost: x\r\n"
        f"X-git-annex-data-length: {len(data)}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data[:half]
    )
    # the server has taken the half in when putoffset says so; then the client dies
    from annextui.proxycore.transfers import list_transfers

    done = threading.Event()
    offset = 0
    for _ in range(200):
        _, _, body = served.request("POST", f"{base}/putoffset?key={key}&clientuuid={CLIENT}", b"")
        offset = json.loads(body).get("offset", 0)
        if offset == half:
            # the transfer is recorded as the shell records it, so the console shows it
            live = [t.transfer for t in list_transfers(w.gw / "annex")]
            assert [(t.direction.value, t.uuid, t.key) for t in live] == [("download", CLIENT, key)]
            done.set()
            break
        threading.Event().wait(0.05)
    sock.close()
    assert done.is_set(), offset
    # the server notices the hang-up and lets go of the transfer (its lock) before a retry
    for _ in range(400):
        if not list_transfers(w.gw / "annex"):
            break
        threading.Event().wait(0.05)
    # The record's files go before its lock is let go (git-annex's order, Annex/Transfer.hs),
    # so a retry in that instant is refused as "already in progress", as git-annex's would be.
    for _ in range(50):
        status, _, body = served.request(
            "POST",
            f"{base}/put?key={key}&clientuuid={CLIENT}&offset={half}",
            data[half:],
            {"X-git-annex-data-length": str(len(data) - half)},
        )
        if status != 200 or b"already in progress" not in body:
            break
        threading.Event().wait(0.1)
    assert (status, json.loads(body)) == (200, {"plusuuids": [], "stored": True})
    env.annex(client, "fsck", "--from", "origin", "r.bin")
    assert GW in _whereis(env, client, "r.bin")


def test_interrupted_get_resumes(world: tuple[World, Served]) -> None:
    w, served = world
    env, client = w.env, w.client
    data = bytes(range(256)) * 8192
    env.add_files(client, {"g.bin": data})
    env.annex(client, "move", "--to", "origin", "g.bin")
    key = _key(env, client, "g.bin")
    status, headers, body = served.request(
        "GET", f"/git-annex/{GW}/v4/key/{key}?clientuuid={CLIENT}&offset=1000"
    )
    assert status == 200
    assert headers["x-git-annex-data-length"] == str(len(data) - 1000)
    assert body == data[1000:]
    env.annex(client, "get", "--from", "origin", "g.bin")
    assert (client / "g.bin").read_bytes() == data


def test_interrupted_get_resumes_through_the_cluster(world: tuple[World, Served]) -> None:
    """A real client whose get from the cluster was cut off (its partial object left in
    annex/tmp, as a killed `git annex get` leaves it) resumes it: it asks the cluster for the
    rest only (`offset=`), and the object it ends with is verified."""
    w, served = world
    env, client = w.env, w.client
    data = bytes(range(256)) * 8192  # 2 MiB
    env.add_files(client, {"rc.bin": data})
    env.annex(client, "move", "--to", "origin-mycluster", "rc.bin")
    key = _key(env, client, "rc.bin")
    done = 1_000_000
    partial = client / ".git" / "annex" / "tmp" / key
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(data[:done])
    env.annex(client, "get", "--from", "origin-mycluster", "rc.bin")
    assert (client / "rc.bin").read_bytes() == data
    env.annex(client, "fsck", "rc.bin")
    gets = [line for line in served.log_text().splitlines() if f"/v4/key/{key}" in line]
    assert [f"offset={done}" in line for line in gets] == [True], gets
    assert f"/git-annex/{w.cluster_uuid}/" in gets[0]


def test_sigterm_commits(annex_env: AnnexEnv) -> None:
    """Journals are committed at SIGTERM (here nothing is committed before: --commit-after
    600), so a stopped server loses nothing."""
    w = build(annex_env, annex_env.root)
    env, client = w.env, w.client
    with serve(env, w.gw, ["--wideopen", "-J", "2", "--commit-after", "600"]) as served:
        point_at(w, served)
        env.add_files(client, {"s.txt": "before shutdown\n"})
        env.annex(client, "copy", "--to", "origin", "s.txt")
        assert list((w.gw / "annex" / "journal").iterdir())  # not committed yet
        assert served.stop() == 0
    # before git-annex runs there (it would commit a journal itself)
    assert not list((w.gw / "annex" / "journal").iterdir())
    key = _key(env, client, "s.txt")
    out = env.annex_json(w.gw, "whereis", "--key", key)
    assert GW in {x["uuid"] for x in out[0]["whereis"]}


def test_updateproxy_served_without_restart(world: tuple[World, Served]) -> None:
    """A remote proxied after the server started is served at once (upstream: 404 until a
    restart); one the branch stops listing is refused again."""
    w, served = world
    env = w.env
    px2_uuid = "40de0000-0000-4000-8000-0000000000f2"
    px2 = env.make_annex_repo(w.root / "px2.git", px2_uuid, "px2", bare=True)
    path = f"/git-annex/{px2_uuid}/v4/checkpresent?key={'SHA256E-s1--' + '0' * 64}"
    path += f"&clientuuid={CLIENT}"
    assert served.request("POST", path, b"")[0] == 404
    env.git(w.gw, "remote", "add", "px2", str(px2))
    env.git(w.gw, "config", "remote.px2.annex-uuid", px2_uuid)
    env.git(w.gw, "config", "remote.px2.annex-proxy", "true")
    env.annex(w.gw, "updateproxy")
    status, _, body = served.request("POST", path, b"")
    assert (status, json.loads(body)) == (200, {"present": False})
    env.git(w.gw, "config", "remote.px2.annex-proxy", "false")
    env.annex(w.gw, "updateproxy")
    assert served.request("POST", path, b"")[0] == 404


def test_branch_changes_beside_the_server_are_seen(world: tuple[World, Served]) -> None:
    """A server that has answered requests keeps repositories and a `git cat-file --batch` per
    repository open (one keep-alive connection: the same thread, the same kept objects); what
    git-annex changes beside it, in the gateway's branch or on a node, is answered at once."""
    w, served = world
    env, client = w.env, w.client
    env.add_files(client, {"k.txt": "kept objects, fresh answers\n"})
    env.annex(client, "copy", "--to", "origin-mycluster", "k.txt")
    key = _key(env, client, "k.txt")
    conn = served.conn()

    def present(uuid: str) -> bool:
        conn.request("POST", f"/git-annex/{uuid}/v4/checkpresent?key={key}&clientuuid={CLIENT}")
        reply = conn.getresponse()
        body = reply.read()
        assert reply.status == 200, body
        return bool(json.loads(body)["present"])

    try:
        assert present(w.cluster_uuid)
        assert present(N1)
        # the gateway's git-annex says no node has it, committed to its branch
        for node in (N1, N2):
            env.annex(w.gw, "setpresentkey", key, node, "0")
        env.annex(w.gw, "merge", "-q")  # commits the journal
        assert not present(w.cluster_uuid)
        for node in (N1, N2):
            env.annex(w.gw, "setpresentkey", key, node, "1")
        env.annex(w.gw, "merge", "-q")
        assert present(w.cluster_uuid)
        # git-annex drops the content on the nodes themselves
        for repo in w.nodes.values():
            env.annex(repo, "drop", "--force", "--key", key)
        assert not present(N1)
        assert not present(w.cluster_uuid)
    finally:
        conn.close()


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


def test_location_changes_beside_the_server_answer_the_next_checkpresent(
    world: tuple[World, Served],
) -> None:
    """A server thread keeps its view of the gateway's branch between requests
    (records.thread_view, BranchView.follow): what a real git-annex changes beside the
    running server, in the journal, the branch or a newly fetched `*/git-annex` ref, answers
    the very next checkpresent on the same keep-alive connection (the same thread, the same
    kept view)."""
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
