"""What annextui writes on a gateway, a real git-annex client reads: proxied and cluster remotes,
and a second gateway made with `annextui extendcluster` matches git-annex's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from annextui.backend.demo import build_demo
from tests.support.annex import AnnexEnv, run
from tests.support.cli import run_annextui

# Clients only instantiate proxied remotes behind ssh remotes. The url is switched to ssh after
# fetching over a local path; none of these commands contacts the remote.
FAKE_SSH = "ssh://gateway.invalid"


def _git(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    return run(args, cwd, env=env).stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    build_demo(root / "d", keys=40)
    return root


def _field(info: str, name: str) -> str:
    for line in info.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in:\n{info}")


def test_client_sees_proxied_and_cluster_remotes(
    demo: Path, tmp_path: Path, annex_env: AnnexEnv
) -> None:
    env = annex_env.env
    client = tmp_path / "client"
    _git(["git", "clone", "-q", str(demo / "d" / "gateway"), str(client)], tmp_path, env)
    _git(["git", "annex", "init", "client"], client, env)
    _git(["git", "config", "remote.origin.url", f"{FAKE_SSH}{demo}/d/gateway"], client, env)
    info = _git(["git", "annex", "info", "origin"], client, env)
    assert _field(info, "gateway to cluster") == "origin-demo"
    assert sorted(_field(info, "proxying").split()) == [
        "origin-archive",
        "origin-node1",
        "origin-node2",
        "origin-node3",
    ]
    cluster = _git(["git", "annex", "info", "origin-demo"], client, env)
    assert _field(cluster, "cluster") == "true"
    assert _field(cluster, "remote annex keys") == "40"
    node = _git(["git", "annex", "info", "origin-node1"], client, env)
    assert _field(node, "proxied") == "true"
    # A proxied node exposed with its cluster costs the remote's default cost + 0.1.
    assert _field(node, "cost") == "200.1"
    maxsize = _git(["git", "annex", "maxsize", "origin-node1"], client, env).strip()
    assert maxsize == "40.0 GB"


def _second_gateway(root: Path, name: str, gw: Path, env: dict[str, str]) -> Path:
    g2 = root / name
    _git(["git", "init", "-q", str(g2)], root, env)
    _git(["git", "config", "annex.uuid", "22222222-2222-4222-8222-222222222222"], g2, env)
    _git(["git", "annex", "init", "gateway two"], g2, env)
    _git(["git", "remote", "add", "origin", str(gw)], g2, env)
    _git(["git", "fetch", "-q", "origin"], g2, env)
    _git(["git", "annex", "merge"], g2, env)
    uuid = _git(["git", "config", "annex.uuid"], gw, env).strip()
    _git(["git", "config", "remote.origin.url", f"{FAKE_SSH}{gw}"], g2, env)
    _git(["git", "config", "remote.origin.annex-uuid", uuid], g2, env)
    return g2


def test_extendcluster_matches_git_annex(
    demo: Path, tmp_path: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    annex_env.vector_clock = 1700000000
    env = annex_env.env
    gw = demo / "d" / "gateway"
    real = _second_gateway(tmp_path, "real", gw, env)
    ours = _second_gateway(tmp_path, "ours", gw, env)
    want = _git(["git", "annex", "extendcluster", "origin", "demo"], real, env)
    code, got, _err = run_annextui(env, ours, ["extendcluster", "origin", "demo"], capsys)
    assert code == 0
    clean = [ln for ln in want.splitlines() if "recording state" not in ln]
    assert sorted(got.splitlines()) == sorted(clean)
    for f in ("proxy.log", "cluster.log", "uuid.log"):
        assert _git(["git", "show", f"git-annex:{f}"], ours, env) == _git(
            ["git", "show", f"git-annex:{f}"], real, env
        ), f
    for key in ("annex.cluster.demo", "remote.origin.annex-cluster-gateway"):
        assert _git(["git", "config", key], ours, env) == _git(["git", "config", key], real, env)
    info = _git(["git", "annex", "info", "origin"], ours, env)
    assert _field(info, "gateway to cluster") == "origin-demo"
