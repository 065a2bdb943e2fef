"""`annextui cluster drain` against a cluster of real git-annex nodes, git-annex as the judge.

The node drained holds every key (N of mixed sizes, numcopies 2); the other two hold one
copy each. The drain runs as its own process: a sampler thread reads the gateway's location
logs (journal included, as git-annex reads them) the whole time, the first run is killed with
SIGKILL part-way and the same command run again must finish without transferring any key a
second time (the objects already on the targets keep their inodes). Then `git annex fsck`,
`whereis` and the cluster log say what a drain promises.

N is ANNEXTUI_DRAIN_KEYS (default 500).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import annextui
from annextui.backend.branch import BranchView
from annextui.backend.keys import branch_hash_levels, location_log_path
from annextui.backend.logs.presence import present_infos
from annextui.backend.repo import Repository
from tests.operations import cluster as cl
from tests.support.annex import AnnexEnv
from tests.support.waiting import wait_until

N = int(os.environ.get("ANNEXTUI_DRAIN_KEYS", "500"))

pytestmark = pytest.mark.slow


def _drain_argv(c: cl.Cluster, *extra: str) -> list[str]:
    return [sys.executable, "-m", "annextui", "cluster", "drain", "node1", "-C", str(c.gw),
            "--json", *extra]  # fmt: skip


def _env(c: cl.Cluster) -> dict[str, str]:
    return {**c.env.env, "PYTHONPATH": str(Path(annextui.__file__).parents[1])}


class Sampler(threading.Thread):
    """Reads every key's location log on the gateway until stopped; keeps the fewest copies
    (among the nodes) any key had in any sample."""

    def __init__(self, c: cl.Cluster) -> None:
        super().__init__(daemon=True)
        self.repo = Repository(c.gw)
        levels = branch_hash_levels(self.repo.config_bool)
        self.paths = [location_log_path(k, levels) for k in set(c.keys.values())]
        self.nodes = set(cl.NODES.values())
        self.fewest = len(self.nodes)
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            view = BranchView(self.repo)
            for p in self.paths:
                held = present_infos(view.read(p)) & self.nodes
                self.fewest = min(self.fewest, len(held))
            self.samples += 1


@pytest.fixture
def drained_cluster(annex_env: AnnexEnv, tmp_path: Path) -> cl.Cluster:
    c = cl.build(annex_env, tmp_path)
    annex_env.annex(c.gw, "numcopies", "2")
    for name in ("node2", "node3"):
        annex_env.annex(c.gw, "group", name, "backup")
        annex_env.annex(c.gw, "wanted", name, "groupwanted")
    annex_env.annex(c.gw, "groupwanted", "backup", "balanced=backup")
    content = cl.files(N)
    names = sorted(content)
    cl.populate(c, content, {"node1": names, "node2": names[::2], "node3": names[1::2]})
    return c


def _done_lines(c: cl.Cluster) -> int:
    jobs = c.gw / ".git" / "annex" / "annextui" / "jobs"
    try:
        return sum(p.read_bytes().count(b"\n") for p in jobs.glob("drain-*.done"))
    except FileNotFoundError:
        return 0


def test_drain_killed_and_resumed_keeps_numcopies(drained_cluster: cl.Cluster) -> None:
    c = drained_cluster
    env = c.env
    keys = set(c.keys.values())
    assert len(cl.NODES) == 3
    assert len(keys) == N
    sampler = Sampler(c)
    sampler.start()

    # first run, slowed down so it can be killed part-way
    total = sum(int(k.split("-s")[1].split("-")[0]) for k in keys)
    rate = max(total // 4, 1)  # about four seconds at this rate
    first = subprocess.Popen(_drain_argv(c, "--bwlimit", str(rate)), env=_env(c),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_until(
            lambda: first.poll() is not None or _done_lines(c) >= N // 3,
            "the drain to end or to be a third of the way",
            120,
        )
        assert first.poll() is None, "the drain ended before it could be killed"
    finally:
        first.kill()
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    copied_before = {n: c.objects(n) for n in ("node2", "node3")}
    assert 0 < _done_lines(c) < N

    # the same command again: it resumes and finishes
    second = subprocess.run(
        _drain_argv(c), env=_env(c), capture_output=True, text=True, timeout=180
    )
    sampler.stop.set()
    sampler.join()
    # the sampler never saw a key under numcopies
    assert sampler.samples > 0
    assert sampler.fewest >= 2
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["success"]
    assert result["job"]["state"] == "done"
    assert result["job"]["runs"] == 2

    # nothing transferred twice: every object on a target before the kill is the same file
    for node, before in copied_before.items():
        after = c.objects(node)
        assert {k: after.get(k) for k in before} == before, node
    # ... and exactly the missing copies were made over both runs
    made = sum(len(c.objects(n)) for n in ("node2", "node3"))
    assert made == 2 * N

    # the judge: fsck clean on the gateway and the remaining nodes
    for repo in (c.gw, c.nodes["node2"], c.nodes["node3"]):
        env.annex(repo, "fsck", "--all", "--fast", "-q")
    # whereis agrees: two copies, none on node1
    for rec in env.annex_json(c.gw, "whereis", "--all"):
        where = {w["uuid"] for w in rec["whereis"]}
        assert cl.NODES["node1"] not in where, rec["key"]
        assert len(where & set(cl.NODES.values())) >= 2, rec["key"]
    # node1 holds nothing, and says so itself
    assert c.objects("node1") == {}
    said = env.annex_json(c.nodes["node1"], "whereis", "--all", check=False)
    assert len(said) == N  # it knows every key, and (knowing no other node) no copy of any
    assert not any(rec["whereis"] for rec in said)
    # node1 is out of the cluster: the gateway's config, and the cluster log git-annex reads
    assert env.run(["git", "-C", c.gw, "config", "remote.node1.annex-cluster-node"],
                   check=False).returncode == 1  # fmt: skip
    out = env.annex(c.gw, "updatecluster").stdout
    assert "No cluster node changes" in out
    # (a map log: union merges keep older lines, the newest clock is the value)
    lines = [ln.split() for ln in env.git(c.gw, "show", "git-annex:cluster.log").splitlines()]
    newest = max(lines, key=lambda words: float(words[0].rstrip("s")))
    assert set(newest[2:]) == {cl.NODES["node2"], cl.NODES["node3"]}


def test_drain_refused_when_the_rest_cannot_hold_it(annex_env: AnnexEnv, tmp_path: Path) -> None:
    c, _names = cl.held_by_node1_and_node2(annex_env, tmp_path, 40)
    annex_env.annex(c.gw, "maxsize", "node3", "1000")  # far less than node1 holds
    before = {n: c.objects(n) for n in c.nodes}
    branch = annex_env.git(c.gw, "rev-parse", "git-annex")

    proc = subprocess.run(_drain_argv(c), env=_env(c), capture_output=True, text=True)
    assert proc.returncode == 1
    assert "cannot drain node1" in proc.stderr
    assert "node3: " in proc.stderr
    assert "free" in proc.stderr
    assert json.loads(proc.stdout)["success"] is False
    assert {n: c.objects(n) for n in c.nodes} == before
    assert annex_env.git(c.gw, "rev-parse", "git-annex") == branch
    assert not list((c.gw / ".git" / "annex" / "journal").glob("*"))
    assert annex_env.git(c.gw, "config", "remote.node1.annex-cluster-node") == cl.CLUSTER
