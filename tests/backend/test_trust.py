"""One trust level type: what the branch reader reads from trust.log (as git-annex wrote it) is
what the preferred-content engine, info and the console compare, with git-annex's order."""

from __future__ import annotations

from annextui.backend import preferred
from annextui.backend.balance import build_world
from annextui.backend.branch import BranchView
from annextui.backend.info import gather_info
from annextui.backend.logs import values
from annextui.backend.repo import Repository
from annextui.backend.state import load_state
from annextui.backend.trust import TrustLevel
from tests.support.annex import AnnexEnv

# remote name -> (uuid, the git-annex command that sets its trust, the level git-annex reports)
REMOTES = {
    "r1": ("aaaaaaaa-0000-4000-8000-0000000000a1", "trust", TrustLevel.TRUSTED),
    "r2": ("aaaaaaaa-0000-4000-8000-0000000000a2", "untrust", TrustLevel.UNTRUSTED),
    "r3": ("aaaaaaaa-0000-4000-8000-0000000000a3", "dead", TrustLevel.DEAD),
    "r4": ("aaaaaaaa-0000-4000-8000-0000000000a4", "semitrust", TrustLevel.SEMITRUSTED),
}


def test_one_definition() -> None:
    from annextui.backend import trust

    assert trust.TrustLevel is TrustLevel
    assert preferred.TrustLevel is TrustLevel


def test_levels_read_from_git_annex_are_the_ones_preferred_content_uses(
    annex_env: AnnexEnv,
) -> None:
    gw = annex_env.make_annex_repo("gw")
    for name, (uuid, command, _level) in REMOTES.items():
        d = annex_env.root / f"{name}-dir"
        d.mkdir()
        annex_env.annex(gw, "initremote", name, "type=directory", f"directory={d}",
                        "encryption=none", f"uuid={uuid}")  # fmt: skip
        annex_env.annex(gw, command, name, *(["--force"] if command in ("dead", "trust") else []))
    repo = Repository(gw)
    state = load_state(BranchView(repo))
    world = build_world(repo, state, None)

    # the judge: git annex info lists each repository under its level
    info = annex_env.annex_json(gw, "info", "--json")[0]
    for uuid, _command, level in REMOTES.values():
        if level is not TrustLevel.DEAD:  # info leaves dead repositories out
            listed = {r["uuid"] for r in info[f"{level.label} repositories"]}
            assert uuid in listed
        assert state.trust_of(uuid) is level
        assert world.trust(uuid) is level  # the branch's level is the engine's level
        assert world.repo(uuid).trust is level

    ours = gather_info(repo)
    for uuid, _command, level in REMOTES.values():
        entries = [r for r in ours.repositories if r.uuid == uuid]
        assert [r.trust for r in entries] == ([level] if level is not TrustLevel.DEAD else [])

    # copies=LEVEL+:N counts LEVEL and above: dead < untrusted < semitrusted < trusted
    assert sorted(level for _u, _c, level in REMOTES.values()) == [
        TrustLevel.DEAD, TrustLevel.UNTRUSTED, TrustLevel.SEMITRUSTED, TrustLevel.TRUSTED
    ]  # fmt: skip
    assert [TrustLevel.parse(t.label) for t in TrustLevel] == list(TrustLevel)
    assert values.parse_trust("1") is TrustLevel.TRUSTED
