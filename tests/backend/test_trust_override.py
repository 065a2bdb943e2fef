"""`remote.NAME.annex-trustlevel` in the local git config overrides trust.log, as in git-annex
(Logs/Trust/Basic.hs trustMapLoad'): preferred content, sizes' dead flags and info all see it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annextui.backend.balance import wanted_check
from annextui.backend.branch import BranchView
from annextui.backend.repo import Repository
from annextui.backend.sizes import repo_sizes
from annextui.backend.state import load_state
from annextui.backend.trust import TrustLevel
from tests.support.annex import AnnexEnv, run
from tests.support.cli import run_annextui

U_GW = "11111111-1111-4111-8111-111111111111"
# name -> (uuid, trust.log command or None, remote.NAME.annex-trustlevel)
REMOTES = {
    "n1": ("aaaaaaaa-0000-4000-8000-000000000001", None, "untrusted"),
    "n2": ("aaaaaaaa-0000-4000-8000-000000000002", "trust", "untrusted"),
    "n3": ("aaaaaaaa-0000-4000-8000-000000000003", "semitrust", "dead"),
    "n4": ("aaaaaaaa-0000-4000-8000-000000000004", "dead", "semitrusted"),
    "n5": ("aaaaaaaa-0000-4000-8000-000000000005", "trust", "UNTRUSTED"),  # not a level: ignored
    "n6": ("aaaaaaaa-0000-4000-8000-000000000006", "untrust", "trusted"),
}
# what git-annex uses (checked against `git annex info` below)
EFFECTIVE = {
    "n1": TrustLevel.UNTRUSTED,
    "n2": TrustLevel.UNTRUSTED,
    "n3": TrustLevel.DEAD,
    "n4": TrustLevel.SEMITRUSTED,
    "n5": TrustLevel.TRUSTED,
    "n6": TrustLevel.TRUSTED,
}
# Locations (besides gw) of one file each.
LOCATIONS = [
    (),
    *((n,) for n in REMOTES),
    ("n1", "n2"),
    ("n3", "n4"),
    ("n5", "n6"),
    ("n1", "n3"),
    ("n2", "n5"),
    ("n3", "n6"),
    ("n4", "n1"),
    ("n2", "n3", "n4"),
    tuple(REMOTES),
    *[("n3",)] * 6,  # and not in gw: `balanced=g` picks for them only while n3 is dead
]
ABSENT_HERE = 6
EXPRESSIONS = [
    "copies=trusted:1",
    "copies=untrusted:1",
    "copies=semitrusted:2",
    "copies=trusted:2 or copies=dead:1",
    "copies=semitrusted+:3",
    "copies=3",
    "lackingcopies=1",
    "approxlackingcopies=2",
    "copies=g:2",
    "balanced=g",
    "balanced=g:2",
    "balanced=g:lackingcopies",
]


@pytest.fixture
def gw(tmp_path: Path, annex_env: AnnexEnv) -> tuple[Path, dict[str, str]]:
    """gw with remotes n1..n6 (trust.log and git config per REMOTES), numcopies 3, group g =
    gw, n3, n6; one annexed file per LOCATIONS entry, the last ABSENT_HERE dropped from gw.
    Returns (gw, file -> key)."""
    annex_env.vector_clock = 1_700_000_000
    env = annex_env.env
    gw = annex_env.make_annex_repo(tmp_path / "gw", U_GW, "gateway")
    for name, (uuid, _cmd, _level) in REMOTES.items():
        annex_env.clone(gw, tmp_path / name, uuid=uuid, description=f"node {name}")
        run(["git", "-C", gw, "remote", "add", name, f"../{name}"], env=env)
        run(["git", "-C", gw, "fetch", "-q", name], env=env)
        run(["git", "-C", gw, "config", f"remote.{name}.annex-uuid", uuid], env=env)
    annex_env.annex(gw, "merge")
    annex_env.annex(gw, "numcopies", "3")
    for name in ("here", "n3", "n6"):
        annex_env.annex(gw, "group", name, "g")
    for name, (_uuid, cmd, _level) in REMOTES.items():
        if cmd is not None:
            annex_env.annex(gw, cmd, name, *(["--force"] if cmd == "trust" else []))
    files = {f"f{i:02d}": f"content {i}\n" for i in range(len(LOCATIONS))}
    keys = annex_env.add_files(gw, files)
    lines = [
        f"{keys[f]} {REMOTES[n][0]} 1\n" for f, locs in zip(files, LOCATIONS, strict=True)
        for n in locs
    ]  # fmt: skip
    annex_env.annex(gw, "setpresentkey", "--batch", input="".join(lines))
    annex_env.annex(gw, "drop", "--force", *list(files)[-ABSENT_HERE:])
    for name, (_uuid, _cmd, level) in REMOTES.items():
        run(["git", "-C", gw, "config", f"remote.{name}.annex-trustlevel", level], env=env)
    return gw, keys


def _find(annex_env: AnnexEnv, gw: Path, opt: str) -> set[str]:
    out = annex_env.annex(gw, "find", "--print0", opt).stdout
    return {p for p in out.split("\0") if p}


def test_trust_from_git_config(gw: tuple[Path, dict[str, str]]) -> None:
    repo = Repository(gw[0])
    state = load_state(BranchView(repo))
    assert {n: state.trust_of(u) for n, (u, _c, _l) in REMOTES.items()} == EFFECTIVE
    sizes = repo_sizes(repo, use_cache=False)
    assert {n for n, (u, _c, _l) in REMOTES.items() if sizes.repos[u].dead} == {"n3"}


def test_want_get_and_drop_match_git_annex(
    gw: tuple[Path, dict[str, str]], annex_env: AnnexEnv
) -> None:
    """`git annex find --want-get/--want-drop` against annextui's wanted-check, per expression."""
    repo, keys = gw
    files = {k: f for f, k in keys.items()}
    mismatches = []
    for expr in EXPRESSIONS:
        annex_env.annex(repo, "wanted", "here", expr)
        for opt, drop in (("--want-get", False), ("--want-drop", True)):
            theirs = _find(annex_env, repo, opt)
            checked = wanted_check(
                Repository(repo), "here", [(k, f) for f, k in keys.items()], drop=drop
            )
            ours = {files[k] for k, _u, wanted in checked if wanted}
            if ours != theirs:
                mismatches.append(f"{expr} {opt}: git-annex {sorted(theirs)}, ours {sorted(ours)}")
    assert not mismatches, "\n".join(mismatches)


def test_info_trust_lists_match_git_annex(
    gw: tuple[Path, dict[str, str]], annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _keys = gw
    theirs = json.loads(annex_env.annex(repo, "info", "--json").stdout)
    code, out, _err = run_annextui(annex_env.env, repo, ["info", "--json"], capsys)
    assert code == 0
    ours = json.loads(out)
    for label in ("trusted repositories", "semitrusted repositories", "untrusted repositories"):
        assert {r["uuid"] for r in ours[label]} == {r["uuid"] for r in theirs[label]}, label
    listed = {r["uuid"] for label in ("trusted", "semitrusted", "untrusted")
              for r in theirs[f"{label} repositories"]}  # fmt: skip
    assert {n for n, (u, _c, _l) in REMOTES.items() if u not in listed} == {"n3"}
