"""`annextui rebalance` against real git-annex nodes: afterwards each node holds exactly what
`git annex find --want-get-by=NODE`, run by git-annex on the gateway, says it wants."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import annextui
from tests.operations import cluster as cl
from tests.support.annex import AnnexEnv
from tests.support.waiting import wait_until

N = 60


def _wanted_keys(c: cl.Cluster, node: str, *opts: str) -> set[str]:
    out = c.env.annex(c.gw, "find", f"--want-get-by={node}", "--format=${key}\\n", *opts).stdout
    return {k for k in out.split("\n") if k}


def _misplaced(c: cl.Cluster, *opts: str) -> dict[str, set[str]]:
    return {n: set(c.objects(n)) ^ _wanted_keys(c, n, *opts) for n in c.nodes}


def _rebalance(
    c: cl.Cluster, target: str, *extra: str, json_output: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "annextui", "rebalance", target, "-C", str(c.gw)]
    argv += ["--json"] if json_output else []
    env = {**c.env.env, "PYTHONPATH": str(Path(annextui.__file__).parents[1])}
    return subprocess.run([*argv, *extra], env=env, capture_output=True, text=True)


def _all_on_node1(annex_env: AnnexEnv, root: Path, expression: str) -> cl.Cluster:
    c = cl.build(annex_env, root)
    for name in c.nodes:
        annex_env.annex(c.gw, "group", name, "backup")
        annex_env.annex(c.gw, "wanted", name, "groupwanted")
        annex_env.annex(c.gw, "maxsize", name, "10MB")
    annex_env.annex(c.gw, "groupwanted", "backup", expression)
    content = cl.files(N)
    cl.populate(c, content, {"node1": sorted(content)})
    return c


@pytest.mark.parametrize(
    ("expression", "target", "stable"),
    [
        ("balanced=backup", cl.CLUSTER, True),
        ("fullybalanced=backup", "backup", True),
        # under --rebalance sizebalanced is fullysizebalanced: every key wants the emptiest
        # node of the moment, so only the stabilised (present) judgement can hold afterwards
        ("sizebalanced=backup", cl.CLUSTER, False),
    ],
)
def test_rebalance_places_every_key_where_git_annex_wants_it(
    annex_env: AnnexEnv, tmp_path: Path, expression: str, target: str, stable: bool
) -> None:
    c = _all_on_node1(annex_env, tmp_path, expression)
    keys = set(c.keys.values())
    assert set(c.objects("node1")) == keys
    if stable:  # what git annex move --rebalance would still move
        assert any(_misplaced(c, "--rebalance").values())

    proc = _rebalance(c, target)
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)["job"]
    assert job["state"] == "done"
    assert not job["failures"]

    assert _misplaced(c) == {n: set() for n in c.nodes}
    if stable:
        assert _misplaced(c, "--rebalance") == {n: set() for n in c.nodes}
    assert set().union(*(set(c.objects(n)) for n in c.nodes)) == keys  # nothing lost
    assert all(c.objects(n) for n in c.nodes)  # spread over every node
    annex_env.annex(c.gw, "fsck", "--all", "--fast", "-q")
    for name in c.nodes:  # what the gateway's logs say each node has, it has
        annex_env.annex(c.gw, "fsck", "--all", "--fast", "-q", "--from", name)
    for name, node in c.nodes.items():  # and each node's own logs agree, for what it holds
        annex_env.annex(node, "fsck", "--all", "--fast", "-q", f"--in={cl.NODES[name]}")
    if stable:  # run again: nothing left to move
        again = _rebalance(c, target)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["job"]["steps"] == 0


def test_dry_run_moves_nothing(annex_env: AnnexEnv, tmp_path: Path) -> None:
    c = _all_on_node1(annex_env, tmp_path, "fullybalanced=backup")
    proc = _rebalance(c, cl.CLUSTER, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)["plan"]
    assert plan["copies"] == plan["drops"] > 0
    # the plan's proof: applied to the model, fullybalanced reaches a fixed point at once
    assert plan["proof"]["converged"] is True
    text = _rebalance(c, cl.CLUSTER, "--dry-run", json_output=False)
    assert text.returncode == 0, text.stderr
    assert "converges" in text.stdout
    assert set(c.objects("node1")) == set(c.keys.values())
    assert not c.objects("node2")
    assert not c.objects("node3")


def test_refused_while_a_node_is_unreachable(annex_env: AnnexEnv, tmp_path: Path) -> None:
    c = _all_on_node1(annex_env, tmp_path, "fullybalanced=backup")
    os.rename(c.nodes["node3"], tmp_path / "elsewhere")
    proc = _rebalance(c, cl.CLUSTER)
    assert proc.returncode == 1
    assert "unreachable" in proc.stderr
    assert "node3" in proc.stderr
    assert set(c.objects("node1")) == set(c.keys.values())
    assert not c.objects("node2")


def test_sigterm_pauses_and_the_same_command_resumes(annex_env: AnnexEnv, tmp_path: Path) -> None:
    c = _all_on_node1(annex_env, tmp_path, "fullybalanced=backup")
    argv = [sys.executable, "-m", "annextui", "rebalance", cl.CLUSTER, "-C", str(c.gw), "--json",
            "--bwlimit", "20KiB"]  # fmt: skip
    env = {**c.env.env, "PYTHONPATH": str(Path(annextui.__file__).parents[1])}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    jobs = c.gw / ".git" / "annex" / "annextui" / "jobs"
    try:
        wait_until(
            lambda: proc.poll() is not None or any(p.stat().st_size for p in jobs.glob("*.done")),
            "the rebalance to end or to record a step",
            120,
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # it did not pause: the assertions below say so
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    paused = json.loads(out)["job"]
    assert paused["state"] == "paused"
    assert 0 < paused["done_steps"] < paused["steps"]

    resumed = _rebalance(c, cl.CLUSTER)
    assert resumed.returncode == 0, resumed.stderr
    job = json.loads(resumed.stdout)["job"]
    assert job["state"] == "done"
    assert job["runs"] == 2
    assert job["steps"] == paused["steps"]
    assert _misplaced(c, "--rebalance") == {n: set() for n in c.nodes}
