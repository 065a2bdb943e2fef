"""`annextui p2phttp`: a request that makes an in-process repository look up its own branch
leaves no process and no descriptor behind once it is done.

A REMOVE of content lost mid-removal (the repository's own log still says "present") makes
the `LocalPeer` serving it read its location log through the session's `git cat-file --batch`
(proxycore/branchreads.py). In a server the repositories outlive every request: the proxied
remote `px` and the cluster's nodes are parked in the node pool between requests, the gateway's
own peer is made per request. After the request, the server's descriptors are back at the
count taken before it (test_stress.py's baseline, on a small scale) and no `git cat-file` of
it is running. Every `git` the server runs goes through a recording wrapper
(tests/support/gitrecorder.py), so the test knows the look did go through a batch process.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from annextui.backend.keys import location_log_path, parse_key
from tests.gateway.topology import CLIENT, GW, N1, N2, PX
from tests.p2phttp.support import build, point_at, serve
from tests.support import procs
from tests.support.annex import AnnexEnv
from tests.support.gitrecorder import write_git_recorder
from tests.support.lostcopy import lose_copy_mid_remove
from tests.support.p2phttp import Endpoint

pytestmark = pytest.mark.slow

SETTLE_BOUND = 60.0  # how long the server may take to close what a request opened

# the client's remote -> which repositories hold a copy it sends there
TARGETS = {
    "origin-px": ("px",),
    "origin-mycluster": ("node1", "node2"),
    "origin": ("gw",),
}
UUIDS = {"px": PX, "node1": N1, "node2": N2, "gw": GW}


def _fd_targets(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            # an object's content lock is the request's own business (test_stress.py)
            if not (target.endswith(".lck") and "/annex/objects/" in target):
                out.add(f"{fd}->{target}")
    return out


def _cat_files_of(pid: int) -> list[procs.ProcInfo]:
    return procs.find(lambda p: p.ppid == pid and "cat-file" in p.cmdline)


def _settled(check: Callable[[], object]) -> object:
    """Poll `check()` (falsy when settled) until settled or SETTLE_BOUND seconds."""
    deadline = time.monotonic() + SETTLE_BOUND
    while True:
        state = check()
        if not state or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


@pytest.mark.parametrize("remote", list(TARGETS))
def test_a_request_looking_up_the_branch_leaves_nothing_behind(
    annex_env: AnnexEnv, remote: str
) -> None:
    w = build(annex_env, annex_env.root)
    env, client = w.env, w.client
    repos = {"px": w.px, "gw": w.gw, **w.nodes}
    holders = [repos[name] for name in TARGETS[remote]]
    recorder = write_git_recorder(annex_env.root / "git-recorder", env.env["PATH"])
    path = recorder.path(env.env["PATH"])
    with serve(env, w.gw, ["--wideopen", "-J", "2"], extra_env={"PATH": path}) as served:
        point_at(w, served)
        pid = served.proc.pid
        keys = env.add_files(client, {"warm.txt": "warm-up\n", "lost.txt": "lost later\n"})
        env.annex(client, "copy", "-q", "--to", remote, "warm.txt", "lost.txt")
        # warm-up: a removal of content that is there (no look at the log), so what a
        # removal opens for good (the journal's repository, the committer) is in the baseline
        env.annex(client, "drop", "-q", "--from", remote, "warm.txt")
        assert recorder.cat_files() == []
        baseline = _fd_targets(pid)

        key = keys["lost.txt"]
        for repo in holders:
            lose_copy_mid_remove(repo, key)
            # the "present" line committed (the server commits only once idle): the look
            # then reads the branch, not the journal
            env.annex(repo, "merge", "-q")
        # git-annex's `drop --from` would ask CHECKPRESENT first and send no REMOVE
        target = {"origin-px": PX, "origin-mycluster": w.cluster_uuid, "origin": GW}[remote]
        reply = Endpoint(served.port).request(
            "POST", f"/git-annex/{target}/v4/remove?key={key}&clientuuid={CLIENT}", timeout=60
        )
        assert (reply.status, json.loads(reply.body)["removed"]) == (200, True), reply

        # the look went through a batch process of the server's
        below = location_log_path(parse_key(key)).split("/", 1)[1]  # TREE:bbb/KEY.log
        assert any(line.endswith(":" + below) for line in recorder.batch_requests())
        assert len(recorder.cat_files()) >= len(holders)
        extra = _settled(lambda: _fd_targets(pid) - baseline)
        assert not extra, f"{len(baseline)} fds before the request; after it also {extra}"
        assert _settled(lambda: _cat_files_of(pid)) == []
        for wrapper, _ in recorder.cat_files():
            assert not Path(f"/proc/{wrapper}").exists()
    for name, repo in zip(TARGETS[remote], holders, strict=True):
        said = env.annex_json(repo, "whereis", "--key", key, check=False)
        assert UUIDS[name] not in {x["uuid"] for r in said for x in r.get("whereis", [])}
        fsck = env.annex(repo, "fsck", "--key", key, check=False)
        assert "expected to be present" not in fsck.stdout + fsck.stderr
