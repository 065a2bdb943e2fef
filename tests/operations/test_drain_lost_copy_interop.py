"""A drain that finds a node's copy lost in the middle of a removal, git-annex as the judge.

A drain killed between a node's unlinking of an object and the node's own "missing" line
leaves that node's location log saying it holds content it no longer has (a phantom copy: the
one wrong direction others may count). The state is built exactly as such a kill leaves it
(the object gone, the removal's lock file left behind, every log untouched: the node's own and
the gateway's, the copy already made on the target), then the drain runs: the node's REMOVE
finds nothing and must still correct the node's own log, which `git annex whereis` and
`git annex fsck` in the node itself then judge.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.operations import cluster as cl
from tests.operations.test_drain_interop import _drain_argv, _env
from tests.support.annex import AnnexEnv
from tests.support.lostcopy import lose_copy_mid_remove


def test_drain_corrects_a_copy_lost_mid_remove(annex_env: AnnexEnv, tmp_path: Path) -> None:
    c, names = cl.held_by_node1_and_node2(annex_env, tmp_path, 6)
    lost_file = names[3]
    lost = c.keys[lost_file]
    # the drain that was killed had copied this key to node3 and was removing it from node1
    annex_env.annex(c.gw, "copy", "-q", "--from", "node2", "--to", "node3", lost_file)
    assert lost in c.objects("node3")
    lose_copy_mid_remove(c.nodes["node1"], lost)
    node1 = cl.NODES["node1"]
    said = annex_env.annex_json(c.nodes["node1"], "whereis", "--key", lost)
    assert node1 in {w["uuid"] for w in said[0]["whereis"]}  # the phantom, as the kill left it

    proc = subprocess.run(_drain_argv(c), env=_env(c), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["job"]["state"] == "done"

    assert c.objects("node1") == {}
    # node1's own view: no key is listed on node1, the lost one included
    said = annex_env.annex_json(c.nodes["node1"], "whereis", "--all", check=False)
    assert {rec["key"] for rec in said} == set(c.keys.values())
    assert {rec["key"] for rec in said if node1 in {w["uuid"] for w in rec["whereis"]}} == set()
    # ... and fsck there has no location log to fix (it fails all the same: node1 knows of no
    # other copy, having never seen node2's or node3's branch)
    fsck = annex_env.annex(c.nodes["node1"], "fsck", "--all", "--fast", check=False)
    fsck_said = fsck.stdout + fsck.stderr
    assert "fixing location log" not in fsck_said, fsck_said
    assert "expected to be present" not in fsck_said, fsck_said
    # the gateway agrees, and the lost key kept its two copies
    for rec in annex_env.annex_json(c.gw, "whereis", "--all"):
        where = {w["uuid"] for w in rec["whereis"]}
        assert node1 not in where, rec["key"]
        assert len(where & set(cl.NODES.values())) >= 2, rec["key"]
    annex_env.annex(c.gw, "fsck", "--all", "--fast", "-q")
