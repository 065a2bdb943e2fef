"""Special remotes behind an annextui gateway, with the real git-annex on every side.

    client ──ssh──▶ gw.git (annextui-shell)
                     ├── spec    directory special remote, proxied (annex-proxy)
                     └── cluster sc: snode (directory special remote) + n1 (local bare repo)

annextui-shell serves git repositories itself and hands special remotes to a local
`git-annex-shell p2pstdio … --uuid U`, relaying to it as to any node. Everything administrative
is done by git-annex on the gateway; the assertions read the special remotes' directories,
the client's and the gateway's location logs, and `git annex fsck` run by git-annex.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import annex as annex_support
from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

SPEC = "5bec0000-0000-4000-8000-0000000000a1"
SNODE = "5bec0000-0000-4000-8000-0000000000a2"
N1 = "5bec0000-0000-4000-8000-0000000000b1"
GW = "5bec0000-0000-4000-8000-0000000000c1"


@dataclass
class Setup:
    env: AnnexEnv
    gw: Path
    client: Path
    spec_dir: Path
    snode_dir: Path
    n1: Path


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[Setup]:
    with annex_support.ssh_world(tmp_path_factory, "gwspecial", git_annex_bin, sshd) as (
        root,
        env,
    ):
        sshd.add_host("gwspecial")
        seed = env.make_annex_repo(root / "seed", description="seed")
        env.add_files(seed, {"README": "special remotes\n"}, annex=False)
        gw = env.clone(seed, root / "gw.git", bare=True, annex_init=False)
        env.git(gw, "remote", "remove", "origin")
        env.git(gw, "config", "annex.uuid", GW)
        env.annex(gw, "init", "-q", "gateway")
        spec_dir, snode_dir = root / "spec-dir", root / "snode-dir"
        spec_dir.mkdir()
        snode_dir.mkdir()
        env.annex(
            gw, "initremote", "spec", "type=directory", f"directory={spec_dir}",
            "encryption=none", f"uuid={SPEC}",
        )  # fmt: skip
        env.git(gw, "config", "remote.spec.annex-proxy", "true")
        env.annex(gw, "updateproxy")
        env.annex(gw, "initcluster", "sc")
        env.annex(
            gw, "initremote", "snode", "type=directory", f"directory={snode_dir}",
            "encryption=none", f"uuid={SNODE}",
        )  # fmt: skip
        env.git(gw, "config", "remote.snode.annex-cluster-node", "sc")
        n1 = env.make_annex_repo(root / "n1.git", N1, "n1", bare=True)
        env.git(gw, "remote", "add", "n1", str(n1))
        env.git(gw, "config", "remote.n1.annex-uuid", N1)
        env.git(gw, "config", "remote.n1.fetch", "")
        env.git(gw, "config", "remote.n1.annex-cluster-node", "sc")
        env.annex(gw, "updatecluster")
        client = env.clone(
            f"ssh://gwspecial{gw}", root / "client", origin="origin", annex_init=False
        )
        env.git(client, "config", "remote.origin.annex-shell", "annextui-shell")
        env.annex(client, "init", "-q", "client")
        env.git(client, "fetch", "-q", "origin")
        env.annex(client, "merge", "-q")
        yield Setup(env, gw, client, spec_dir, snode_dir, n1)


def _files_named(directory: Path, name: str) -> list[Path]:
    return [p for p in directory.rglob(name) if p.is_file()]


def _whereis(env: AnnexEnv, repo: Path, *args: str) -> set[str]:
    out = env.annex_json(repo, "whereis", *args)
    return {w["uuid"] for item in out for w in item["whereis"]}


def _add(s: Setup, name: str, data: bytes) -> str:
    s.env.add_files(s.client, {name: data})
    return s.env.annex(s.client, "lookupkey", name).stdout.strip()


def test_client_sees_the_special_remotes(setup: Setup) -> None:
    info = setup.env.annex(setup.client, "info", "origin").stdout
    assert "gateway to cluster: origin-sc" in info
    for name in ("origin-spec", "origin-snode", "origin-n1"):
        assert name in info


def test_copy_get_drop_through_a_proxied_special_remote(setup: Setup) -> None:
    s = setup
    data = os.urandom(300_000)
    key = _add(s, "spec.bin", data)
    s.env.annex(s.client, "copy", "-q", "--to", "origin-spec", "spec.bin")
    stored = _files_named(s.spec_dir, key)
    assert len(stored) == 1
    assert stored[0].read_bytes() == data
    assert SPEC in _whereis(s.env, s.client, "spec.bin")
    assert SPEC in _whereis(s.env, s.gw, "--key", key)  # the gateway recorded it too
    s.env.annex(s.gw, "fsck", "-q", "--from", "spec", "--key", key)
    s.env.annex(s.client, "drop", "-q", "--force", "spec.bin")
    s.env.annex(s.client, "get", "-q", "--from", "origin-spec", "spec.bin")
    assert (s.client / "spec.bin").read_bytes() == data
    s.env.annex(s.client, "fsck", "-q", "spec.bin")
    s.env.annex(s.client, "drop", "-q", "--from", "origin-spec", "spec.bin")
    assert _files_named(s.spec_dir, key) == []
    assert SPEC not in _whereis(s.env, s.client, "spec.bin")


def test_cluster_with_a_special_remote_node(setup: Setup) -> None:
    s = setup
    data = os.urandom(120_000)
    key = _add(s, "cluster.bin", data)
    s.env.annex(s.client, "copy", "-q", "--to", "origin-sc", "cluster.bin")
    # no preferred content configured: every node gets a copy
    stored = _files_named(s.snode_dir, key)
    assert len(stored) == 1
    assert stored[0].read_bytes() == data
    assert _files_named(s.n1 / "annex" / "objects", key)
    assert {SNODE, N1} <= _whereis(s.env, s.client, "cluster.bin")
    s.env.annex(s.gw, "fsck", "-q", "--from", "snode", "--key", key)
    s.env.annex(s.client, "drop", "-q", "--force", "cluster.bin")
    s.env.annex(s.client, "get", "-q", "--from", "origin-sc", "cluster.bin")
    assert (s.client / "cluster.bin").read_bytes() == data
    s.env.annex(s.client, "drop", "-q", "--from", "origin-sc", "cluster.bin")
    assert _files_named(s.snode_dir, key) == []
    assert not _files_named(s.n1 / "annex" / "objects", key)
    assert not {SNODE, N1} & _whereis(s.env, s.client, "cluster.bin")


def test_no_delegation_back_to_ourselves(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """If git-annex-shell on PATH were annextui-shell, the delegate would call itself: the
    marker in its environment makes it refuse with a message naming the remote."""
    from annextui.proxycore.gateway import DELEGATE_ENV, open_gateway
    from annextui.proxycore.localrepo import LocalRepo
    from annextui.proxycore.remote import NodeError
    from annextui.proxycore.server import ServerMode

    monkeypatch.setenv(DELEGATE_ENV, "1")
    target = open_gateway(LocalRepo.open(str(setup.gw)), SPEC, "c")
    assert target is not None
    with pytest.raises(NodeError, match=r"spec is a special remote.*annextui-shell"):
        target.serve(mode=ServerMode.READWRITE)
