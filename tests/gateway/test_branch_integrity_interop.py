"""Nothing the gateway writes loses a location line, under real git-annex clients.

* A client's session keeps the gateway's journal open while another client pushes `git-annex`
  straight into the gateway (what `git annex sync` does): the gateway's commit at the end of
  the session keeps the pushed line (to the gateway itself, a proxied remote and the cluster).
* Two clients running `git annex sync --content` at the same time: afterwards `git annex fsck`
  on every repository has nothing to fix.
* `copy -J4` / `drop -J4` of 100 files through the cluster, six rounds: every transfer
  succeeds, no warning (git-annex printed "[Errno 35] Resource deadlock avoided" from our
  nodes' journal commits before), every node's fsck clean.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.gateway.test_gateway_interop import fsck_node, gateway_whereis, holders, objects
from tests.support import annex as annex_support
from tests.support.annex import parse_json_lines
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

CLUSTER = f"origin-{T.CLUSTER_NAME}"
OTHER = "c11e0000-0000-4000-8000-0000000000b2"


@pytest.fixture(scope="module")
def topo(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[T.Topology]:
    with annex_support.ssh_world(tmp_path_factory, "integrity", git_annex_bin, sshd) as (
        root,
        env,
    ):
        topo = T.build(env, sshd, root)
        other = env.clone(
            f"ssh://gw{topo.gw}", root / "other", uuid=OTHER, origin="origin", annex_init=False
        )
        env.git(other, "config", "remote.origin.annex-shell", "annextui-shell")
        env.annex(other, "init", "-q", "other")
        topo.client2 = other
        topo.uuids["other"] = OTHER
        yield topo


def _other(topo: T.Topology) -> Path:
    assert topo.client2 is not None
    return topo.client2


def _fsck_clean(topo: T.Topology, repo: Path, *args: str) -> None:
    """`git annex fsck` in `repo` succeeds and fixes nothing."""
    res = topo.env.annex(repo, "fsck", "--json", "--json-error-messages", *args, check=False)
    for rec in parse_json_lines(res.stdout):
        notes = " ".join(rec.get("error-messages", [])) + str(rec.get("note", ""))
        assert "fixing" not in notes, (repo, rec)
        assert rec["success"], (repo, rec)
    assert "fixing" not in res.stderr, res.stderr


@pytest.mark.parametrize("target", ["origin", "origin-px", CLUSTER])
def test_a_push_during_a_client_session_is_not_lost(topo: T.Topology, target: str) -> None:
    env, client, other = topo.env, topo.client, _other(topo)
    name = f"midsession/{target}.bin"
    content = os.urandom(5000)
    ((_, key),) = env.add_files(client, {name: content}).items()
    session = subprocess.Popen(
        ["git", "annex", "copy", "--to", target, "--batch", "--json"],
        cwd=client,
        env=env.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert session.stdin is not None
        assert session.stdout is not None
        session.stdin.write(name + "\n")
        session.stdin.flush()
        rec = json.loads(session.stdout.readline())
        assert rec["success"], rec
        # The session is still open: the gateway holds its change in the journal.
        assert any((topo.gw / "annex" / "journal").iterdir())
        # Another client has the same content, and pushes its git-annex branch straight into
        # the gateway's (a fast-forward of what it fetched).
        env.git(other, "fetch", "-q", "origin")
        env.annex(other, "merge", "-q")
        env.add_files(other, {name: content})
        env.git(other, "push", "-q", "origin", "git-annex:git-annex")
    finally:
        out, err = session.communicate(timeout=120)  # closes stdin: the session ends
    assert session.returncode == 0, (out, err)

    stored = {
        "origin": {T.GW},
        "origin-px": {T.PX},
        CLUSTER: holders(topo, key),
    }[target]
    assert stored
    where = gateway_whereis(topo, topo.gw, key)
    assert OTHER in where, where  # the pushed line survived the session's commit
    assert stored <= where, where
    # ... and a client fetching now learns both.
    env.git(client, "fetch", "-q", "origin")
    env.annex(client, "merge", "-q")
    client_where = {
        w["uuid"]
        for r in env.annex_json(client, "whereis", "--key", key)
        for w in r.get("whereis", [])
    }
    assert {OTHER, *stored} <= client_where
    for path in (topo.px, *topo.nodes.values()):
        if key in objects(path):
            fsck_node(topo, path)


def test_two_clients_syncing_content_at_once_leave_nothing_to_fix(topo: T.Topology) -> None:
    env, client, other = topo.env, topo.client, _other(topo)
    env.add_files(client, {f"sync/a{i}.txt": f"a {i}\n" for i in range(8)})
    env.add_files(other, {f"sync-other/b{i}.txt": f"b {i}\n" for i in range(8)})
    sync = ["git", "annex", "sync", "--content", "--quiet"]
    both = [
        subprocess.Popen(
            sync, cwd=repo, env=env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for repo in (client, other)
    ]
    for proc in both:
        proc.communicate(timeout=300)
    # One of the two pushes may have been refused as a non-fast-forward; syncing again
    # converges as it does for any git-annex user.
    for repo in (client, other, client):
        env.annex(repo, "sync", "--content", "--quiet")
    for repo in (client, other):
        _fsck_clean(topo, repo)
    _fsck_clean(topo, topo.gw, "--all")
    _fsck_clean(topo, topo.px, "--all")
    for node in topo.nodes.values():
        fsck_node(topo, node)
    # Both clients' files are known to the gateway with every copy that exists.
    for name in ("sync/a3.txt", "sync-other/b5.txt"):
        key = env.annex(client, "lookupkey", name).stdout.strip()
        where = gateway_whereis(topo, topo.gw, key)
        assert {T.CLIENT, OTHER} <= where, (name, where)


def test_parallel_copy_and_drop_through_the_cluster_six_rounds(topo: T.Topology) -> None:
    env, client = topo.env, topo.client
    files = {f"jobs/f{i:03d}.bin": os.urandom(2000 + i) for i in range(100)}
    env.add_files(client, files)
    done = 0
    for _round in range(6):
        for argv in (["copy", "-J4", "--to", CLUSTER], ["drop", "-J4", "--from", CLUSTER]):
            res = env.annex(client, *argv, "--json", "--json-error-messages", "jobs", check=False)
            recs = parse_json_lines(res.stdout)
            assert res.returncode == 0, res.stderr
            assert len(recs) == len(files), (argv, len(recs))
            assert all(r["success"] for r in recs), [r for r in recs if not r["success"]]
            assert res.stderr.strip() == "", (argv, res.stderr)
            done += len(recs)
    assert done == 1200
    _fsck_clean(topo, client, "jobs")
    for node in topo.nodes.values():
        fsck_node(topo, node)
        assert not any((node / "annex" / "journal").glob("*")), node
