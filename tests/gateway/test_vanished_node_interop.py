"""A local cluster node whose repository vanishes mid-upload (issue 11, item 5).

Topology: tests/gateway/topology.py (gateway `gw`, local nodes node1 and node2, ssh node node3),
driven by a real git-annex client over sshd. node1 and node2 both want the files; while the
client's `copy --to` streams a big file, node2's repository is

* renamed away (the old path no longer exists), or
* renamed away and replaced by an empty directory (what an unmounted mount point looks like).

annextui-shell must fail node2 alone (the client's copy succeeds on the other nodes and is told
which ones hold the file), create and write nothing at node2's path, show node2 as unreachable
to new sessions while it is gone, and serve it again once it is back. The same scenario run
against git-annex's own gateway is `test_upstream_gateway_with_a_vanished_node`, which records
what git-annex 10.20261026 does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.gateway.test_gateway_interop import (
    CLUSTER,
    _tmp_size,
    client_whereis,
    fsck_node,
    gateway_whereis,
    holders,
    objects,
)
from tests.support import annex as annex_support
from tests.support.sshd import Sshd
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

BIG = 120 << 20  # long enough to vanish the node while its body is still streaming
SMALL = {"z-after-1.bin": 3000, "z-after-2.bin": 5000}  # copied after big.bin (name order)


def _build(
    factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd, shell: str
) -> Iterator[T.Topology]:
    with annex_support.ssh_world(factory, "vanish", git_annex_bin, sshd) as (root, env):
        topo = T.build(env, sshd, root, shell=shell)
        for n in ("node1", "node2"):
            env.annex(topo.gw, "wanted", n, "include=vanish-*/* or groupwanted")
        yield topo


@pytest.fixture(scope="module")
def topo(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[T.Topology]:
    yield from _build(tmp_path_factory, git_annex_bin, sshd, "annextui-shell")


@pytest.fixture(scope="module")
def upstream_topo(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[T.Topology]:
    yield from _build(tmp_path_factory, git_annex_bin, sshd, "git-annex-shell")


@dataclass
class Vanished:
    """What one upload with a vanishing node left behind."""

    status: int
    err: str
    keys: dict[str, str]  # file -> key
    big: str  # the big file's key
    created: list[str]  # what exists at node2's path after the upload (relative paths)
    later: subprocess.CompletedProcess[str]  # a new session's copy to node2 while it is gone
    later_created: list[str]


def _tree(path: Path) -> list[str]:
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) or ["."]


def vanish_mid_upload(topo: T.Topology, name: str, *, replace: bool) -> Vanished:
    """Copy a big file and two small ones to the cluster in one session; node2's repository
    vanishes (renamed, and replaced by an empty directory when `replace`) once 8 MiB of the
    big file reached it. node2 stays gone for a second session; it is restored at the end."""
    env, cl = topo.env, topo.client
    node2 = topo.nodes["node2"]
    away = node2.with_name(f"node2.{name}.away")
    files = {f"{name}/big.bin": os.urandom(BIG)} | {
        f"{name}/{f}": os.urandom(n) for f, n in SMALL.items()
    }
    keys = env.add_files(cl, files)
    big = keys[f"{name}/big.bin"]
    proc = subprocess.Popen(
        ["git", "annex", "copy", "--to", CLUSTER, name],
        cwd=cl,
        env=env.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _tmp_size(node2, big) > (8 << 20), "8 MiB of it on node2", 120)
        node2.rename(away)
        if replace:
            node2.mkdir()  # the mount point, now that the disk is gone
        out, err = proc.communicate(timeout=120)
        created = _tree(node2) if not replace else [p for p in _tree(node2) if p != "."]
        later = env.annex(cl, "copy", "--to", "origin-node2", f"{name}/z-after-1.bin", check=False)
        later_created = _tree(node2) if not replace else [p for p in _tree(node2) if p != "."]
    finally:
        if proc.poll() is None:  # git-annex and its ssh, which holds the pipes too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=30)
        if node2.exists():
            shutil.rmtree(node2)  # empty, unless a gateway recreated things there
        away.rename(node2)
    return Vanished(proc.returncode, out + err, keys, big, created, later, later_created)


def _check_node2_works_again(topo: T.Topology, v: Vanished, name: str) -> None:
    env, cl = topo.env, topo.client
    res = env.annex(cl, "copy", "--to", "origin-node2", name, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    node2 = topo.nodes["node2"]
    assert set(v.keys.values()) <= objects(node2)
    assert _tmp_size(node2, v.big) == 0  # the partial body in the moved repository was used
    fsck_node(topo, node2)
    assert T.N2 in client_whereis(topo, cl, f"{name}/big.bin")[f"{name}/big.bin"]


@pytest.mark.parametrize("replace", [False, True], ids=["renamed", "unmounted"])
def test_vanished_node_is_failed_never_recreated(topo: T.Topology, replace: bool) -> None:
    name = "vanish-" + ("unmounted" if replace else "renamed")
    v = vanish_mid_upload(topo, name, replace=replace)
    # The client's copy succeeded on the other nodes, and was told node2 failed.
    assert v.status == 0, v.err
    assert "node2" in v.err, v.err
    assert "moved or unmounted" in v.err, v.err
    # Nothing was created or written at node2's path, not even a transfer record.
    assert v.created == [], v.created
    # Each file went to the nodes that said so; node2 holds nothing, nobody says it does.
    cw = client_whereis(topo, topo.client, name)
    for f, k in v.keys.items():
        nodes = holders(topo, k)
        assert nodes, f
        assert T.N2 not in nodes, f
        assert cw[f] - {T.CLIENT, topo.cluster_uuid} == nodes, f
        assert gateway_whereis(topo, topo.gw, k) - {topo.cluster_uuid} == nodes, f
    fsck_node(topo, topo.nodes["node1"])
    # While it is gone, a new session finds node2 unreachable and still writes nothing there.
    assert v.later.returncode != 0
    assert "cannot reach" in v.later.stdout + v.later.stderr, v.later
    assert v.later_created == [], v.later_created
    # Back again: node2 works, resuming from the partial body left in the moved repository.
    _check_node2_works_again(topo, v, name)
    topo.env.annex(topo.client, "drop", "--from", CLUSTER, name)


@pytest.mark.parametrize("replace", [False, True], ids=["renamed", "unmounted"])
def test_upstream_gateway_with_a_vanished_node(upstream_topo: T.Topology, replace: bool) -> None:
    """The same scenario through git-annex's own gateway (git-annex-shell 10.20261026), as a
    record of what annextui-shell does better. Observed: the client's copy fails (`protocol
    error`, `Lost connection`: the session ends, so the files after the big one reach no
    node, though node1 stored the big one and nobody is told), and git-annex recreates
    `annex/transfer/failed/download/<gateway>/<key>` at node2's path (the whole repository
    path when it was renamed away, under the empty mount point when unmounted)."""
    topo = upstream_topo
    name = "vanish-" + ("unmounted" if replace else "renamed")
    v = vanish_mid_upload(topo, name, replace=replace)
    assert v.status != 0, v.err
    assert "protocol error" in v.err, v.err
    failed_record = f"annex/transfer/failed/download/{T.GW}/{v.big}"
    assert failed_record in v.created, v.created
    for f, k in v.keys.items():
        if f != f"{name}/big.bin":
            assert holders(topo, k) == set(), f  # the session died with the big file
