"""The Jobs view and the drain staged on the Clusters view, on a gateway with a cluster of real
git-annex nodes (tests/operations/cluster.py): a drain picked with `D`, reviewed with its plan's
figures, applied, followed in the Jobs view to done, and judged by git-annex (the node holds
nothing, every key keeps numcopies, the node is out of the cluster); a drain the other nodes
cannot hold is refused in the review with figures and changes nothing; a rebalance job shows
the proof its dry run printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

import annextui
from annextui.app import AnnexConsole
from annextui.console.edits import DrainNode
from annextui.console.source import RepositoryBackend
from annextui.screens.clusters import Ref
from annextui.screens.dialogs import ErrorScreen, PickScreen
from annextui.screens.jobs import JobsScreen
from tests.console.support import (
    plain,
    repo_fingerprint,
    run_app,
    table_rows,
    wait_for,
    wait_for_screen,
)
from tests.console.test_edits import review, select
from tests.operations import cluster as cl
from tests.operations.test_jobs_console import _environ
from tests.support.annex import AnnexEnv

SIZES = [(80, 24), (120, 36)]


def _env(annex_env: AnnexEnv) -> dict[str, str]:
    """The tests' git-annex environment, with this checkout first on the path (the console
    starts `python -m annextui` in the background with it)."""
    return {**annex_env.env, "PYTHONPATH": str(Path(annextui.__file__).parents[1])}


def _cluster_uuid(c: cl.Cluster) -> str:
    return c.env.git(c.gw, "config", f"annex.cluster.{cl.CLUSTER}")


def _annextui_info(c: cl.Cluster, env: dict[str, str]) -> dict[str, object]:
    argv = [sys.executable, "-m", "annextui", "-C", str(c.gw), "info", "--json"]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    data: dict[str, object] = json.loads(out)
    return data


def _states(screen: JobsScreen) -> list[str]:
    return [row[1] for row in table_rows(screen.query_one(DataTable))]


async def _stage_drain(app: AnnexConsole, pilot: Pilot[int], cu: str, node: str) -> None:
    """Select the node on the Clusters view, `D`, and take the first choice (the selected node)."""
    await select(app, pilot, Ref("node", cu, node))
    await pilot.press("D")
    await wait_for_screen(pilot, PickScreen, what="the node choice")
    await pilot.press("enter")
    await wait_for(pilot, lambda: bool(app.staged), what="the drain staged")
    assert app.staged == (DrainNode(node, "node1"),)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_drain_staged_on_clusters_runs_to_done(
    annex_env: AnnexEnv, tmp_path: Path, size: tuple[int, int]
) -> None:
    c = cl.build(annex_env, tmp_path)
    annex_env.annex(c.gw, "numcopies", "2")
    content = cl.files(30)
    names = sorted(content)
    cl.populate(c, content, {"node1": names, "node2": names[::2], "node3": names[1::2]})
    keys = set(c.keys.values())
    cu = _cluster_uuid(c)
    node1 = cl.NODES["node1"]
    env = _env(annex_env)
    seen: dict[str, str] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await _stage_drain(app, pilot, cu, node1)
        body = await review(app, pilot, confirm=True)
        seen["review"] = body
        screen = app.screen
        assert isinstance(screen, JobsScreen)  # applying switched to the Jobs view
        await wait_for(pilot, lambda: _states(screen) == ["done"], 120, "the drain done")
        seen["detail"] = plain(screen.query_one("#job-detail"))

        def out_of_cluster() -> bool:
            snap = app.snapshot
            cluster = snap.cluster(cu) if snap is not None else None
            return cluster is not None and node1 not in cluster.nodes

        await wait_for(pilot, out_of_cluster, 120, "node1 out of the cluster")

    with _environ(env):
        run_app(RepositoryBackend(c.gw), scenario, check_nodes=False, timeout=300, size=size)

    # The review said what would happen: 30 keys, 30 copies (one more for each, numcopies 2).
    assert "drain node1: 30 keys" in seen["review"]
    assert "30 copies to make on node2, node3, numcopies 2" in seen["review"]
    assert "drain node1: 30 keys" in seen["detail"]
    assert "state done · 30/30 keys" in seen["detail"]
    # git-annex judges: node1 holds nothing, each key has numcopies on the other nodes
    assert not c.objects("node1")
    assert set(c.objects("node2")) | set(c.objects("node3")) == keys
    for rec in annex_env.annex_json(c.gw, "whereis", "--all"):
        where = {w["uuid"] for w in rec["whereis"]}
        assert node1 not in where
        assert len(where & {cl.NODES["node2"], cl.NODES["node3"]}) >= 2, rec
    for node in ("node2", "node3"):
        annex_env.annex(c.gw, "fsck", "--all", "--fast", "-q", "--from", node)
    clusters = _annextui_info(c, env)["clusters"]
    assert isinstance(clusters, list)
    (mine,) = [x for x in clusters if x["uuid"] == cu]
    assert node1 not in {n["uuid"] if isinstance(n, dict) else n for n in mine["nodes"]}
    assert len(mine["nodes"]) == 2


def test_drain_the_others_cannot_hold_is_refused_in_review(
    annex_env: AnnexEnv, tmp_path: Path
) -> None:
    c = cl.build(annex_env, tmp_path)
    content = cl.files(12)
    cl.populate(c, content, {"node1": sorted(content)})
    for node in ("node2", "node3"):
        annex_env.annex(c.gw, "maxsize", node, "1000")
    cu = _cluster_uuid(c)
    before = repo_fingerprint(c.gw)
    seen: list[str] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await _stage_drain(app, pilot, cu, cl.NODES["node1"])
        await pilot.press("ctrl+s")
        await wait_for_screen(pilot, ErrorScreen, what="the refusal")
        seen.append(plain(app.screen.query_one("#dialog-text")))

    run_app(RepositoryBackend(c.gw), scenario, check_nodes=False)
    assert "cannot drain node1: the other nodes cannot hold its content" in seen[0]
    assert "node2: " in seen[0]
    assert "free after the keys that fit" in seen[0]
    assert "Nothing was changed" in seen[0]
    assert repo_fingerprint(c.gw) == before
    assert not (c.gw / ".git" / "annex" / "annextui" / "jobs").exists()
    assert set(c.objects("node1")) == set(c.keys.values())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_jobs_view_shows_the_rebalance_proof(
    annex_env: AnnexEnv, tmp_path: Path, size: tuple[int, int]
) -> None:
    c = cl.build(annex_env, tmp_path)
    for name in c.nodes:
        annex_env.annex(c.gw, "group", name, "backup")
        annex_env.annex(c.gw, "wanted", name, "groupwanted")
    annex_env.annex(c.gw, "groupwanted", "backup", "balanced=backup")
    content = cl.files(24)
    cl.populate(c, content, {"node1": sorted(content)})
    env = _env(annex_env)
    base = [sys.executable, "-m", "annextui", "rebalance", cl.CLUSTER, "-C", str(c.gw)]
    dry = subprocess.run([*base, "--dry-run"], env=env, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    proof = dry.stdout.splitlines()[1:]  # after the plan's line
    assert proof[0].startswith("converges"), dry.stdout
    ran = subprocess.run(base, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    seen: dict[str, str] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("j")  # `j` switches to the view
        await wait_for_screen(pilot, JobsScreen, what="the Jobs view")
        screen = app.screen
        assert isinstance(screen, JobsScreen)
        await wait_for(pilot, lambda: _states(screen) == ["done"], what="the job")
        await wait_for(pilot, lambda: "Proof" in plain(screen.query_one("#job-detail")))
        seen["detail"] = plain(screen.query_one("#job-detail"))
        seen["row"] = " ".join(table_rows(screen.query_one(DataTable))[0])
        await pilot.press("slash", *"drain")  # the filter hides the rebalance
        await wait_for(pilot, lambda: not table_rows(screen.query_one(DataTable)))

    run_app(RepositoryBackend(c.gw), scenario, check_nodes=False, size=size)
    assert seen["row"].startswith(f"rebalance {cl.CLUSTER}")
    assert dry.stdout.splitlines()[0] in seen["detail"]  # the plan's figures
    for line in proof:  # the proof, line for line, as the dry run printed it
        assert line.strip() in seen["detail"]
    # the plan ran to where git-annex wants every key: nothing left for the next rebalance
    again = subprocess.run([*base, "--dry-run"], env=env, capture_output=True, text=True)
    assert ": 0 keys to move" in again.stdout
