"""Twin repositories: the same admin commands run by real git-annex on one and by annextui on the
other must leave the same git-annex branch (cluster UUIDs, which are random, normalised)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.annex import AnnexEnv, run
from tests.support.cli import run_annextui

U_GW = "11111111-1111-4111-8111-111111111111"
U_N1 = "aaaaaaaa-0000-4000-8000-000000000001"
U_N2 = "bbbbbbbb-0000-4000-8000-000000000002"
U_N3 = "cccccccc-0000-4000-8000-000000000003"
U_GW2 = "22222222-2222-4222-8222-222222222222"
CLOCK = "1700000000"


def _run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> str:
    return run(args, cwd, env=env, check=check).stdout


def _ours(
    args: list[str], cwd: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    return run_annextui(env, cwd, args, capsys)


def _branch_files(repo: Path, env: dict[str, str]) -> dict[str, str]:
    files = {}
    listing = _run(["git", "ls-tree", "-r", "--name-only", "git-annex"], repo, env)
    for path in listing.split():
        files[path] = _run(["git", "show", f"git-annex:{path}"], repo, env)
    journal = repo / ".git" / "annex" / "journal"
    if journal.is_dir():
        for f in journal.iterdir():
            files[f.name.replace("_", "/")] = f.read_text()
    return files


def _normalise(text: str, cluster_uuids: list[str]) -> str:
    """Replace random cluster UUIDs. Files naming two of them are sorted by UUID, so their order
    differs between twins; those are compared as sorted lines of sorted words."""
    present = [cu for cu in cluster_uuids if cu in text]
    for i, cu in enumerate(cluster_uuids):
        text = text.replace(cu, f"CLUSTER{i}")
    if len(present) > 1:
        text = "\n".join(sorted(" ".join(sorted(line.split())) for line in text.splitlines()))
    return text


def _cluster_uuids(repo: Path, env: dict[str, str]) -> list[str]:
    out = _run(["git", "config", "--get-regexp", r"^annex\.cluster\."], repo, env, check=False)
    return [line.split()[1] for line in out.splitlines()]


@pytest.fixture
def twins(tmp_path: Path, annex_env: AnnexEnv) -> tuple[Path, Path, dict[str, str]]:
    annex_env.vector_clock = CLOCK
    env = annex_env.env
    for name, uuid in (("n1", U_N1), ("n2", U_N2), ("n3", U_N3)):
        node = tmp_path / name
        _run(["git", "init", "-q", "--bare", str(node)], tmp_path, env)
        _run(["git", "config", "annex.uuid", uuid], node, env)
        _run(["git", "annex", "init", f"node {name}"], node, env)
    repos = []
    for twin in ("real", "ours"):
        gw = tmp_path / twin
        _run(["git", "init", "-q", str(gw)], tmp_path, env)
        _run(["git", "config", "annex.uuid", U_GW], gw, env)
        for name in ("n1", "n2", "n3"):
            _run(["git", "remote", "add", name, f"../{name}"], gw, env)
            _run(["git", "fetch", "-q", name], gw, env)
        repos.append(gw)
    return repos[0], repos[1], env


SCRIPT: list[list[str]] = [
    ["init", "the gateway"],
    ["initcluster", "mycl"],
    ["CONFIG", "remote.n1.annex-cluster-node", "mycl"],
    ["CONFIG", "remote.n2.annex-cluster-node", "mycl"],
    ["updatecluster"],
    ["updatecluster"],
    ["CONFIG", "remote.n3.annex-proxy", "true"],
    ["updateproxy"],
    ["updateproxy"],
    ["maxsize", "n1", "1GB"],
    ["maxsize", "n1", "2GB"],
    ["maxsize", "n2", "2.5 TiB"],
    ["maxsize", "n3", "0"],
    ["maxsize", "n1"],
    ["group", "n1", "backup"],
    ["group", "n2", "backup"],
    ["group", "n2", "archive"],
    ["group", "n2"],
    ["wanted", "n1", "groupwanted"],
    ["wanted", "n2", "groupwanted"],
    ["wanted", "n1"],
    ["groupwanted", "backup", "balanced=backup:2"],
    ["groupwanted", "backup"],
    ["required", "n3", "include=*.iso"],
    ["describe", "n3", "node three"],
    ["ungroup", "n2", "archive"],
    ["initcluster", "other", "another cluster"],
    ["CONFIG", "remote.n3.annex-cluster-node", "other"],
    ["CONFIG", "remote.n2.annex-cluster-node", ""],
    ["updatecluster"],
]

_NOISE = re.compile(r" ?\((?:recording state in git|merging [^()]*)\.\.\.\)\n?")


def _clean(out: str) -> list[str]:
    """git-annex's progress notes about merging and committing are not part of the output."""
    return [" ".join(line.split()) for line in _NOISE.sub(" ", out).splitlines() if line.strip()]


def test_admin_commands_match_git_annex(
    twins: tuple[Path, Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    real, ours, env = twins
    for step in SCRIPT:
        if step[0] == "CONFIG":
            for repo in (real, ours):
                if step[2]:
                    _run(["git", "config", step[1], step[2]], repo, env)
                else:
                    _run(["git", "config", "--unset", step[1]], repo, env)
            continue
        want = _run(["git", "annex", *step], real, env)
        code, got, _err = _ours(step, ours, env, capsys)
        assert code == 0, step
        cu_real, cu_ours = _cluster_uuids(real, env), _cluster_uuids(ours, env)
        assert _normalise("\n".join(_clean(got)), cu_ours) == _normalise(
            "\n".join(_clean(want)), cu_real
        ), step
        files_real = {k: _normalise(v, cu_real) for k, v in _branch_files(real, env).items()}
        files_ours = {k: _normalise(v, cu_ours) for k, v in _branch_files(ours, env).items()}
        assert files_ours == files_real, step


def test_git_annex_reads_what_we_wrote(
    twins: tuple[Path, Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _real, ours, env = twins
    for step in SCRIPT[:13]:
        if step[0] == "CONFIG":
            _run(["git", "config", step[1], step[2]], ours, env)
        else:
            assert _ours(step, ours, env, capsys)[0] == 0
    # git-annex's own view of our branch: maxsize values and cluster membership.
    maxsizes = json.loads(_run(["git", "annex", "maxsize", "--json"], ours, env))
    by_uuid = {r["uuid"]: r["size"]["maxsize"] for r in maxsizes["repositories"]}
    assert by_uuid[U_N1] == 2_000_000_000
    assert by_uuid[U_N2] == 2748779069440
    assert by_uuid[U_N3] == 0
    assert _run(["git", "annex", "maxsize", "n1"], ours, env).strip() == "2.0 GB"
    info = json.loads(_run(["git", "annex", "info", "--json"], ours, env))
    listed = {r["uuid"]: r["description"] for r in info["semitrusted repositories"]}
    cu = _cluster_uuids(ours, env)[0]
    assert listed[cu] == "cluster mycl"
    assert listed[U_GW] == "the gateway"
    # And our info agrees with git-annex's on the repositories it lists.
    code, out, _err = _ours(["info", "--json"], ours, env, capsys)
    assert code == 0
    mine = json.loads(out)
    assert {r["uuid"]: r["description"] for r in mine["semitrusted repositories"]} == listed
    (cluster,) = mine["clusters"]
    assert cluster["uuid"] == cu
    assert set(cluster["nodes"]) == {U_N1, U_N2}
    assert cluster["gateways"] == [U_GW]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["maxsize", "n1", "10 furlongs"], "Unable to parse size."),
        (["maxsize", "nosuch", "1GB"], 'there is no available git remote named "nosuch"'),
        (["initcluster", "bad..name"], "That cluster name is not a valid git remote name."),
        (["extendcluster", "n1", "mycl"], "Expected to find a cluster remote named n1-mycl"),
    ],
)
def test_errors_write_nothing(
    twins: tuple[Path, Path, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    _real, ours, env = twins
    assert _ours(["init", "gw"], ours, env, capsys)[0] == 0
    before = _branch_files(ours, env), (ours / ".git" / "config").read_text()
    code, _out, err = _ours(args, ours, env, capsys)
    assert code == 1
    assert message in err
    assert (_branch_files(ours, env), (ours / ".git" / "config").read_text()) == before


def test_not_an_annex_repository(
    tmp_path: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    env = annex_env.env
    _run(["git", "init", "-q", str(tmp_path / "plain")], tmp_path, env)
    code, _out, err = _ours(["maxsize", "here", "1GB"], tmp_path / "plain", env, capsys)
    assert code == 1
    assert "not a git-annex repository" in err
