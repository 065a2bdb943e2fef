"""The proof (backend/balance/proof.py) against the real ``git annex sim``: the same scripts
(tests/data/sim/) run by both must end with the same number of files per repository, and
stabilize or not alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from annextui.backend.balance.proof import fixed_point_violations, prove
from annextui.backend.balance.simfile import parse_simfile
from tests.support.annex import AnnexEnv
from tests.support.annexsim import run_sim
from tests.support.data import DATA

SIM_DIR = DATA / "sim"
SCENARIOS = sorted(p.name for p in SIM_DIR.glob("*.sim"))
# a comment in a script whose files' placement (not their number) depends on the order of steps
ORDER_DEPENDENT = "-- annextui: counts only"


def test_the_scenarios_are_there() -> None:
    assert len(SCENARIOS) >= 5
    assert "pingpong.sim" in SCENARIOS


@pytest.mark.parametrize("name", SCENARIOS)
def test_proof_agrees_with_git_annex_sim(name: str, tmp_path: Path, annex_env: AnnexEnv) -> None:
    script = SIM_DIR / name
    upstream = run_sim(annex_env, tmp_path, script)
    sim = parse_simfile(script.read_text(), uuids=upstream.uuids, keys=upstream.keys)
    assert dict(sim.uuids) == upstream.uuids  # every repository of the script was modelled
    proof = prove(sim.placement)

    assert proof.converged == upstream.stabilized, "\n".join(map(str, proof.rounds))
    if not proof.converged:  # where files are when the simulators stop is arbitrary
        assert proof.oscillation is not None
        assert set(proof.oscillation.keys) == set(sim.files.values())
        return
    ours = {
        name: {f for f, k in sim.files.items() if _holds(proof.final, u, k)}
        for name, u in sim.uuids.items()
    }
    counts = {n: len(fs) for n, fs in ours.items()}
    assert counts == {n: len(fs) for n, fs in upstream.final.items()}
    # the same UUIDs and keys make the same picks: not only the counts, the very files agree,
    # unless which file lands where depends on the order of the transfers (sizebalanced)
    if ORDER_DEPENDENT not in script.read_text():
        assert ours == upstream.final
    assert fixed_point_violations(proof.final) == []


def _holds(placement: object, uuid: str, key: str) -> bool:
    from annextui.backend.balance.placement import Placement

    assert isinstance(placement, Placement)
    i = [mk.key for mk in placement.keys].index(key)
    return uuid in placement.holders[i]
