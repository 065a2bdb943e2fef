"""A drain that finds its target already holding a copy no log counts, git-annex as the judge.

A drain killed between the target node's moving an object in and the node's own "present"
line (and before the gateway's) leaves a copy that no location log counts: not a danger, but
the copy is invisible to numcopies until a `git annex fsck` in the node. The state is built as
such a kill leaves it (the object on node3, node3's own log and the gateway's saying
"missing", written by git-annex), then the drain runs again: node3 answers its PUT
ALREADY-HAVE and must log its own copy, which `git annex whereis` and `git annex fsck` in node3
itself then judge.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.operations import cluster as cl
from tests.operations.test_drain_interop import _drain_argv, _env
from tests.support.annex import AnnexEnv
from tests.support.lostcopy import unlog_copy_mid_store


def test_drain_counts_a_copy_stored_but_unlogged(annex_env: AnnexEnv, tmp_path: Path) -> None:
    c, names = cl.held_by_node1_and_node2(annex_env, tmp_path, 6)
    unlogged_file = names[3]
    unlogged = c.keys[unlogged_file]
    node3 = cl.NODES["node3"]
    # the drain that was killed had moved this key into node3 and logged nothing yet
    annex_env.annex(c.gw, "copy", "-q", "--from", "node2", "--to", "node3", unlogged_file)
    unlog_copy_mid_store(annex_env, c.nodes["node3"], unlogged)
    annex_env.annex(c.gw, "setpresentkey", unlogged, node3, "0")

    proc = subprocess.run(_drain_argv(c), env=_env(c), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["job"]["state"] == "done"

    assert c.objects("node1") == {}
    assert unlogged in c.objects("node3")
    # node3's own view counts every copy it holds, the unlogged one included
    said = annex_env.annex_json(c.nodes["node3"], "whereis", "--all", check=False)
    listed = {rec["key"] for rec in said if node3 in {w["uuid"] for w in rec["whereis"]}}
    assert listed == set(c.objects("node3"))
    fsck = annex_env.annex(c.nodes["node3"], "fsck", "--all", "--fast", check=False)
    assert "fixing location log" not in fsck.stdout + fsck.stderr
    # the gateway agrees: two copies of each key, node3's among them
    for rec in annex_env.annex_json(c.gw, "whereis", "--all"):
        where = {w["uuid"] for w in rec["whereis"]}
        assert cl.NODES["node1"] not in where, rec["key"]
        assert len(where & set(cl.NODES.values())) >= 2, rec["key"]
    annex_env.annex(c.gw, "fsck", "--all", "--fast", "-q")
