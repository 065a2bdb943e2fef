"""`annextui cluster rename|delete` on a local gateway set up by git-annex itself, judged by
git-annex: afterwards its own updatecluster/updateproxy find nothing to change, and a refused
command writes nothing at all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.annex import AnnexEnv
from tests.support.unwritable import tree_fingerprint

NODE = "40de0000-0000-4000-8000-0000000000c1"


@pytest.fixture
def gateway(annex_env: AnnexEnv) -> Path:
    gw = annex_env.make_annex_repo("gw", description="gw", bare=True)
    node = annex_env.make_annex_repo("n1", NODE, "n1", bare=True)
    annex_env.git(gw, "remote", "add", "n1", str(node))
    annex_env.git(gw, "config", "remote.n1.annex-uuid", NODE)
    annex_env.git(gw, "config", "remote.n1.fetch", "")
    # stored as annex.cluster.big (git lowercases the key), described "cluster Big"
    annex_env.annex(gw, "initcluster", "Big")
    annex_env.git(gw, "config", "remote.n1.annex-cluster-node", "big")
    annex_env.annex(gw, "updatecluster")
    return gw


def annextui(env: AnnexEnv, gw: Path, *args: str) -> tuple[int, str, str]:
    res = env.run([sys.executable, "-m", "annextui", "-C", str(gw), *args], check=False)
    return res.returncode, res.stdout, res.stderr


def assert_git_annex_agrees(env: AnnexEnv, gw: Path) -> str:
    out = env.annex(gw, "updatecluster").stdout
    for changed in ("Added node", "Removed node", "Started proxying", "Stopped proxying"):
        assert changed not in out, out
    return out


def test_rename_as_git_annex_would_name_it(annex_env: AnnexEnv, gateway: Path) -> None:
    code, out, err = annextui(annex_env, gateway, "cluster", "rename", "big", "Vault", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["new"] == "vault"  # git lowercases the key: the name git-annex reads back
    assert annex_env.git(gateway, "config", "annex.cluster.vault") == record["uuid"]
    assert annex_env.git(gateway, "config", "remote.n1.annex-cluster-node") == "vault"
    out = assert_git_annex_agrees(annex_env, gateway)
    assert "No cluster node changes for cluster: vault" in out
    info = annex_env.annex_json(gateway, "info", "--fast")[0]
    described = {r["uuid"]: r["description"] for r in info["semitrusted repositories"]}
    assert described[record["uuid"]] == "cluster Vault"  # the default, rewritten as typed


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (("rename", "nosuch", "x"), 1, "no cluster named nosuch"),
        (("rename", "big", "bad name"), 2, "not a valid git remote name"),
        (("rename", "big", "n1"), 1, "name of a remote"),
        (("rename", "big", "BIG"), 1, "already named big"),
        (("delete", "nosuch"), 1, "no cluster named nosuch"),
    ],
)
def test_refused_writes_nothing(
    annex_env: AnnexEnv, gateway: Path, args: tuple[str, ...], code: int, said: str
) -> None:
    before = tree_fingerprint(gateway)
    got, out, err = annextui(annex_env, gateway, "cluster", *args, "--json")
    assert got == code
    assert said in err
    assert json.loads(out)["success"] is False
    assert tree_fingerprint(gateway) == before


def test_delete_leaves_git_annex_nothing_to_do(annex_env: AnnexEnv, gateway: Path) -> None:
    cu = annex_env.git(gateway, "config", "annex.cluster.big")
    code, out, err = annextui(annex_env, gateway, "cluster", "delete", "big")
    assert code == 0, err
    assert "Stopped proxying for big" in out
    assert annex_env.git(gateway, "config", "--get-regexp", "annex.cluster", check=False) == ""
    assert annex_env.git(gateway, "config", "remote.n1.annex-cluster-node", check=False) == ""
    assert_git_annex_agrees(annex_env, gateway)
    info = annex_env.annex_json(gateway, "info", "--fast")[0]
    assert cu not in {r["uuid"] for r in info["semitrusted repositories"]}
    assert NODE in {r["uuid"] for r in info["semitrusted repositories"]}
