"""The gateway's preferred-content world is the console's: same repositories, same live sizes,
same ``annex.fullybalancedthreshhold`` -- and, under ``--rebalance``, the decisions git-annex
makes with that threshold.

git-annex reads ``annex.fullybalancedthreshhold`` (percent, default 90) in ``fullybalanced``'s
``--rebalance`` check (Limit.hs ``limitFullyBalanced'``): with more wanted copies than members
that are not yet that full, the key goes to the members with the most free space instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from annextui import values
from annextui.backend.balance import Balance, replace_world
from annextui.backend.branch import BranchView
from annextui.backend.preferred import Evaluator, KeyFacts, World
from annextui.backend.repo import Repository
from annextui.backend.state import load_state
from annextui.proxycore.gateway import BranchPreferences, Gateway
from annextui.proxycore.localrepo import LocalRepo
from annextui.proxycore.records import GatewayRecords
from tests.support.annex import AnnexEnv

NODES = {  # name -> (uuid, maxsize, bytes logged present)
    "n1": ("aaaaaaaa-0000-4000-8000-0000000000b1", 1000, 600),
    "n2": ("aaaaaaaa-0000-4000-8000-0000000000b2", 1000, 600),
    "n3": ("aaaaaaaa-0000-4000-8000-0000000000b3", 1000, 0),
}
THRESHOLD = 50  # n1 and n2 are 60% full: too full at 50%, not at the default 90%
FILES = {f"f{i}.txt": f"content {i}\n" for i in range(12)}


def _gateway_world(repo: Path) -> World:
    full = Repository(repo)
    state = load_state(BranchView(full))
    gw = Gateway(LocalRepo.open(str(repo)), full, state, full.require_annex(), "")
    world = BranchPreferences(gw, GatewayRecords(full))._world()
    assert isinstance(world, World)
    return world


def _find(annex_env: AnnexEnv, repo: Path, *opts: str) -> set[str]:
    out = annex_env.annex(repo, "find", "--print0", *opts).stdout
    return {p for p in out.split("\0") if p}


def test_gateway_decides_in_the_consoles_world(annex_env: AnnexEnv) -> None:
    gw = annex_env.make_annex_repo("gw", config={"annex.fullybalancedthreshhold": str(THRESHOLD)})
    for name, (uuid, maxsize, held) in NODES.items():
        d = annex_env.root / f"{name}-dir"
        d.mkdir()
        annex_env.annex(gw, "initremote", name, "type=directory", f"directory={d}",
                        "encryption=none", f"uuid={uuid}")  # fmt: skip
        annex_env.annex(gw, "group", name, "g")
        annex_env.annex(gw, "wanted", name, "fullybalanced=g:2")
        annex_env.annex(gw, "maxsize", name, str(maxsize))
        if held:  # a key of that size logged present: the node's live size
            digest = hashlib.sha256(name.encode()).hexdigest()
            annex_env.annex(gw, "setpresentkey", f"SHA256E-s{held}--{digest}", uuid, "1")
    keys = annex_env.add_files(gw, FILES)

    repo = Repository(gw)
    ours = _gateway_world(gw)
    console = Balance(repo, "g").world
    assert ours.fully_balanced_threshold == THRESHOLD / 100
    assert ours.fully_balanced_threshold == console.fully_balanced_threshold
    assert dict(ours.repos) == dict(console.repos)
    assert (ours.numcopies, ours.mincopies, ours.here) == (
        console.numcopies, console.mincopies, console.here
    )  # fmt: skip

    # the judge: git-annex's --rebalance decisions in this repository, with its threshold
    rebalanced = Evaluator(replace_world(ours, rebalance=True))
    at_default = Evaluator(
        values.replace(replace_world(ours, rebalance=True), fully_balanced_threshold=0.9)
    )
    here = repo.require_annex()
    differs = 0
    for name, (uuid, _maxsize, _held) in NODES.items():
        theirs = _find(annex_env, gw, f"--want-get-by={name}", "--rebalance")
        for f, key in keys.items():
            facts = KeyFacts(key, locations=frozenset({here}), file=f)
            assert rebalanced.wants_get(uuid, facts) == (f in theirs), (name, f)
            differs += at_default.wants_get(uuid, facts) != (f in theirs)
    assert differs  # the threshold decides something here
