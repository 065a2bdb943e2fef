"""`annextui balance CLUSTER --prove` on a gateway git-annex built, with git-annex as the judge
of what each node wants; and property tests of the proof on generated placements."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annextui.backend.balance import BalanceError
from annextui.backend.balance.placement import ModelKey, Placement
from annextui.backend.balance.proof import PlanMove, fixed_point_violations, prove
from annextui.backend.balance.simfile import SimFileError, parse_simfile
from annextui.backend.preferred import Repo, World
from tests.support.annex import AnnexEnv, run
from tests.support.cli import run_annextui

U_GW = "11111111-1111-4111-8111-111111111111"
NODES = {
    "n1": "aaaaaaaa-0000-4000-8000-000000000001",
    "n2": "bbbbbbbb-0000-4000-8000-000000000002",
    "n3": "cccccccc-0000-4000-8000-000000000003",
}
FILES = 12


@pytest.fixture
def gw(tmp_path: Path, annex_env: AnnexEnv) -> Path:
    """A gateway holding FILES annexed files, with nodes n1..n3 (cluster c, group g) holding
    nothing yet."""
    env = annex_env.env
    gw = annex_env.make_annex_repo(tmp_path / "gw", U_GW, "gateway")
    for i in range(FILES):
        (gw / f"file{i}.dat").write_text(f"content {i}\n" * (i + 1))
    annex_env.annex(gw, "add", ".")
    run(["git", "-C", gw, "commit", "-qm", "files"], env=env)
    for name, uuid in NODES.items():
        annex_env.clone(gw, tmp_path / name, uuid=uuid, description=f"node {name}")
        run(["git", "-C", gw, "remote", "add", name, f"../{name}"], env=env)
        run(["git", "-C", gw, "fetch", "-q", name], env=env)
        run(["git", "-C", gw, "config", f"remote.{name}.annex-cluster-node", "c"], env=env)
        annex_env.annex(gw, "group", name, "g")
    annex_env.annex(gw, "merge")
    annex_env.annex(gw, "initcluster", "c")
    annex_env.annex(gw, "updatecluster")
    return gw


def _prove(
    annex_env: AnnexEnv, gw: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    code, out, err = run_annextui(annex_env.env, gw, ["balance", "c", "--prove", "--json"], capsys)
    assert err == "" or code != 2, err
    return code, json.loads(out)


def test_balanced_plan_converges_to_what_git_annex_wants(
    gw: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in NODES:
        annex_env.annex(gw, "wanted", name, "balanced=g")
    code, out = _prove(annex_env, gw, capsys)
    proof = out["proof"]
    assert (code, proof["converged"], proof["rounds"], proof["oscillation"]) == (0, True, 1, None)
    # judge: nobody holds anything yet, so each node ends with what git-annex says it wants
    for name, uuid in NODES.items():
        wanted = annex_env.annex(gw, "find", f"--want-get-by={name}").stdout.split()
        assert proof["final"][uuid]["keys"] == len(wanted), name
    assert sum(f["keys"] for f in proof["final"].values()) == FILES
    code, text, _ = run_annextui(annex_env.env, gw, ["balance", "c", "--prove"], capsys)
    assert code == 0
    assert text.startswith("converges: a fixed point after 1 round of moves")


def test_ping_pong_is_reported_with_its_terms(
    gw: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = list(NODES)
    for name in ring:
        annex_env.annex(gw, "group", name, f"only-{name}")
    for i, name in enumerate(ring):
        nxt = ring[(i + 1) % len(ring)]
        annex_env.annex(gw, "wanted", name, f"not copies=only-{nxt}:1")
    code, out = _prove(annex_env, gw, capsys)
    proof = out["proof"]
    assert code == 1
    assert proof["converged"] is False
    osc = proof["oscillation"]
    assert len(osc["keys"]) == FILES
    assert set(osc["terms"]) == {f"copies=only-{n}:1" for n in ring}
    # every get and drop in the cycle is one that git-annex makes too, from the same locations
    assert {d["action"] for d in osc["decisions"]} == {"get", "drop"}
    code, text, _ = run_annextui(annex_env.env, gw, ["balance", "c", "--prove"], capsys)
    assert code == 1
    assert text.startswith(f"does not converge: {FILES} keys move back and forth")
    assert "caused by: " in text


def test_sim_scripts_outside_the_model_are_refused() -> None:
    for text, message in (
        ("init a\nvisit a ls\nstep 1\n", "line 2: unsupported sim command 'visit'"),
        ("init a\nwanted b anything\nstep 1\n", "line 2: unknown repository 'b'"),
        ("init a\nwanted a copies=x\nstep 1\n", "line 2: bad preferred content"),
        ("init a\nadd f 1mb a\n", "no step"),
        ("init a\nstep 1\nadd f 1mb a\n", "line 3: only upstream's present/notpresent"),
        ("init a\naddmulti 2 .x 1mb 2mb a\nstep 1\n", "needs the keys"),
    ):
        with pytest.raises(SimFileError, match=re.escape(message)):
            parse_simfile(text)


def test_round_limit_is_checked(
    gw: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["balance", "c", "--prove", "--max-rounds", "0"]
    code, _out, err = run_annextui(annex_env.env, gw, args, capsys)
    assert code == 2
    assert "round limit" in err


# ---------------------------------------------------------------------------------------------
# Properties, on generated placements (no repository)

_UUIDS = [f"{i:08x}-0000-4000-8000-00000000000{i}" for i in range(1, 5)]
_EXPRESSIONS = [
    "balanced=g",
    "balanced=g:2",
    "fullybalanced=g",
    "sizebalanced=g",
    "anything",
    "nothing",
    "largerthan=500",
    "copies=g:2",
]


@st.composite
def placements(draw: st.DrawFn) -> Placement:
    n = draw(st.integers(2, 4))
    members = _UUIDS[:n]
    repos = [
        Repo(
            u,
            groups=frozenset({"g"}),
            preferred=draw(st.sampled_from(_EXPRESSIONS)),
            maxsize=draw(st.sampled_from([None, 2000, 5000, 100_000])),
        )
        for u in members
    ]
    world = World.build(repos, numcopies=draw(st.integers(1, 2)))
    nkeys = draw(st.integers(1, 12))
    sizes_drawn = [draw(st.integers(1, 1500)) for _ in range(nkeys)]
    keys = tuple(ModelKey(f"SHA256E-s{s}--{i:064x}", s) for i, s in enumerate(sizes_drawn))
    outside = "ffffffff-0000-4000-8000-000000000000"
    holders = tuple(
        frozenset({outside}) | frozenset(draw(st.sets(st.sampled_from(members), max_size=2)))
        for _ in keys
    )
    sizes = {u: sum(k.size for k, h in zip(keys, holders, strict=True) if u in h) for u in members}
    return Placement(world, tuple(members), keys, holders, sizes)


@settings(max_examples=150, deadline=None)
@given(placements())
def test_a_converged_proof_ends_in_a_fixed_point(placement: Placement) -> None:
    proof = prove(placement, max_rounds=30)
    if proof.converged:
        assert fixed_point_violations(proof.final) == []
        assert proof.oscillation is None
    elif proof.oscillation is not None:
        assert proof.oscillation.keys
        assert proof.oscillation.period >= 1


@settings(max_examples=100, deadline=None)
@given(placements())
def test_no_key_loses_its_last_copies(placement: Placement) -> None:
    """Drops never take a key below numcopies (the outside holder always counts as one)."""
    proof = prove(placement, max_rounds=30)
    needed = placement.world.global_numcopies()
    for before, after in zip(placement.holders, proof.final.holders, strict=True):
        assert len(after) >= min(len(before), needed)


def test_a_plan_is_applied_first_and_checked() -> None:
    a, b = _UUIDS[:2]
    world = World.build([Repo(a, preferred="anything"), Repo(b, preferred="nothing")])
    key = ModelKey("SHA256E-s10--" + "1" * 64, 10)
    placement = Placement(world, (a, b), (key,), (frozenset({b}),), {b: 10})
    proof = prove(placement, [PlanMove(key.key, b, a)])
    assert proof.converged
    assert [(r.number, r.gets, r.drops) for r in proof.rounds] == [(0, 1, 1)]
    assert proof.final.holders == (frozenset({a}),)
    with pytest.raises(BalanceError):
        prove(placement, [PlanMove(key.key, a, b)])  # a does not hold it
