"""The gateway reaches its ssh node (node3) in each ssh set-up admins use
(tests/support/sshsetups.py), driven by a real git-annex client: `copy`, `get` and `drop`
through `origin-node3` and through the cluster succeed, and a node whose host key is not the
trusted one is refused with OpenSSH's words. The cluster has no preferred content here, so a
copy to it reaches every node, node3 included."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.gateway.test_gateway_interop import CLUSTER, fsck_node, objects
from tests.support import annex as annex_support
from tests.support.sshd import Sshd
from tests.support.sshsetups import Setup, Setups

pytestmark = [pytest.mark.ssh, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[tuple[T.Topology, Setups]]:
    with annex_support.ssh_world(tmp_path_factory, "sshsetups", git_annex_bin, sshd) as (
        root,
        env,
    ):
        topo = T.build(env, sshd, root, balanced=False)
        setups = Setups(sshd, root / "setups")
        try:
            yield topo, setups
        finally:
            setups.close()


def _use(topo: T.Topology, alias: str, options: str) -> None:
    """The gateway reaches node3 at ssh://ALIAS/… with these annex-ssh-options."""
    topo.env.git(topo.gw, "config", "remote.node3.url", f"ssh://{alias}{topo.nodes['node3']}")
    topo.env.git(topo.gw, "config", "remote.node3.annex-ssh-options", options)


def _round_trip(topo: T.Topology, tag: str) -> None:
    env, cl, node3 = topo.env, topo.client, topo.nodes["node3"]
    files = {f"{tag}/a.bin": os.urandom(300_000), f"{tag}/b.bin": os.urandom(3_000)}
    keys = env.add_files(cl, files)
    # through origin-node3
    env.annex(cl, "copy", "--to", "origin-node3", tag)
    assert set(keys.values()) <= objects(node3)
    env.annex(cl, "drop", tag)
    env.annex(cl, "get", "--from", "origin-node3", tag)
    for f, data in files.items():
        assert (cl / f).read_bytes() == data
    env.annex(cl, "drop", "--from", "origin-node3", tag)
    assert not set(keys.values()) & objects(node3)
    # through the cluster: node3 is the only node left holding the content for the get
    env.annex(cl, "copy", "--to", CLUSTER, tag)
    assert set(keys.values()) <= objects(node3)
    for n in ("node1", "node2"):
        env.annex(cl, "drop", "--from", f"origin-{n}", tag)
    env.annex(cl, "drop", tag)
    env.annex(cl, "get", "--from", CLUSTER, tag)
    for f, data in files.items():
        assert (cl / f).read_bytes() == data
    env.annex(cl, "drop", "--from", CLUSTER, tag)
    assert not set(keys.values()) & objects(node3)
    fsck_node(topo, node3)


def _refused(topo: T.Topology, setup: Setup, words: str) -> None:
    env, cl = topo.env, topo.client
    env.add_files(cl, {f"{setup.name}-bad/x.bin": os.urandom(5_000)})
    res = env.annex(cl, "copy", "--to", "origin-node3", f"{setup.name}-bad", check=False)
    assert res.returncode != 0
    assert words in res.stderr + res.stdout


@pytest.mark.parametrize("name", ["jump", "chain", "proxycommand", "hashed", "agent", "ca"])
def test_node_reached_through_ssh_setup(world: tuple[T.Topology, Setups], name: str) -> None:
    topo, setups = world
    setup = setups.get(name)
    old_url = topo.env.git(topo.gw, "config", "remote.node3.url")
    old_opts = topo.env.git(topo.gw, "config", "remote.node3.annex-ssh-options")
    try:
        _use(topo, setup.alias, f"-F {setup.config}")
        runs = setup.proxy_runs()
        _round_trip(topo, name)
        if setup.marker is not None:  # the gateway's hops went through the ProxyCommand
            assert setup.proxy_runs() > runs
        _use(topo, setup.alias, f"-F {setup.bad_config}")
        _refused(topo, setup, setup.refusal)
    finally:
        topo.env.git(topo.gw, "config", "remote.node3.url", old_url)
        topo.env.git(topo.gw, "config", "remote.node3.annex-ssh-options", old_opts)


def test_git_ssh_command_with_options(world: tuple[T.Topology, Setups]) -> None:
    """GIT_SSH_COMMAND in the gateway's environment (GIT_ANNEX_USE_GIT_SSH=1): the gateway runs
    it as git-annex does, so the node is reached only through what it says (the -F in
    annex-ssh-options names no file and would fail)."""
    topo, setups = world
    setup = setups.get("jump")
    sshd = topo.sshd
    before = sshd.snapshot_hosts()
    old_url = topo.env.git(topo.gw, "config", "remote.node3.url")
    old_opts = topo.env.git(topo.gw, "config", "remote.node3.annex-ssh-options")

    def gateway_env(config: Path) -> None:
        command = f"{sshd.real_ssh} -F {config} -o ServerAliveInterval=15 -o BatchMode=yes"
        sshd.add_host("gw", env={"GIT_SSH_COMMAND": command, "GIT_ANNEX_USE_GIT_SSH": "1"})

    try:
        _use(topo, setup.alias, f"-F {topo.root / 'no-such-config'}")
        gateway_env(setup.config)
        _round_trip(topo, "gitssh")
        gateway_env(setup.bad_config)
        _refused(topo, setup, "REMOTE HOST IDENTIFICATION HAS CHANGED")
    finally:
        sshd.restore_hosts(before)
        topo.env.git(topo.gw, "config", "remote.node3.url", old_url)
        topo.env.git(topo.gw, "config", "remote.node3.annex-ssh-options", old_opts)


def test_ssh_check_shows_the_path_and_the_host_key(world: tuple[T.Topology, Setups]) -> None:
    topo, setups = world
    chain, ca = setups.get("chain"), setups.get("ca")
    old_url = topo.env.git(topo.gw, "config", "remote.node3.url")
    old_opts = topo.env.git(topo.gw, "config", "remote.node3.annex-ssh-options")

    def check(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "annextui", "-C", str(topo.gw), "ssh-check", "node3"]
        return subprocess.run(
            [*argv, *extra], capture_output=True, text=True, env={**os.environ, **(env or {})}
        )

    try:
        _use(topo, chain.alias, f"-F {chain.config}")
        out = check().stdout
        assert "path: paramiko, ProxyJump jumpa -> jumpb\n" in out
        assert re.search(r"host key: ED25519 SHA256:\S+ \(.*known_hosts:\d+\)", out)
        assert re.search(r"round trip ms: [\d.]+", out)
        _use(topo, ca.alias, f"-F {ca.config}")
        rec = json.loads(check("--json").stdout)
        assert rec["success"] is True
        assert "host certificate" in rec["host key"]
        assert "signed by CA" in rec["host key"]
        gsc = {"GIT_SSH_COMMAND": f"ssh -F {ca.config}", "GIT_ANNEX_USE_GIT_SSH": "1"}
        rec = json.loads(check("--json", env=gsc).stdout)
        assert rec["path"] == "OpenSSH (GIT_SSH_COMMAND is set)"
        _use(topo, chain.alias, f"-F {chain.bad_config}")
        res = check()
        assert res.returncode == 1
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in res.stderr
    finally:
        topo.env.git(topo.gw, "config", "remote.node3.url", old_url)
        topo.env.git(topo.gw, "config", "remote.node3.annex-ssh-options", old_opts)
