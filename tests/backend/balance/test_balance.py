"""Balance report, what-if scenarios and wanted-check, on repositories git-annex built."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from annextui.backend.balance import (
    Balance,
    BalanceError,
    Scenario,
    added_uuid,
    parse_scenario,
    resolve_members,
)
from annextui.backend.branch import BranchView
from annextui.backend.preferred import BalancedPicker
from annextui.backend.repo import Repository
from annextui.backend.state import load_state
from tests.support.annex import AnnexEnv, run
from tests.support.cli import run_annextui

U_GW = "11111111-1111-4111-8111-111111111111"
U_N1 = "aaaaaaaa-0000-4000-8000-000000000001"
U_N2 = "bbbbbbbb-0000-4000-8000-000000000002"
U_N3 = "cccccccc-0000-4000-8000-000000000003"
CLOCK = 1_700_000_000
K1 = "SHA256E-s1000--" + "1" * 64
K2 = "SHA256E-s2000--" + "2" * 64
K3 = "SHA256E-s3000--" + "3" * 64
_NOISE = re.compile(r"^\((?:recording state in git|merging [^()]*)\.\.\.\)\n", re.M)


def _setpresent(annex_env: AnnexEnv, repo: Path, lines: list[tuple[str, str, int]]) -> None:
    text = "".join(f"{k} {u} {s}\n" for k, u, s in lines)
    annex_env.annex(repo, "setpresentkey", "--batch", input=text)
    annex_env.annex(repo, "merge")


@pytest.fixture
def gw(tmp_path: Path, annex_env: AnnexEnv) -> Path:
    """gw + nodes n1 (groupwanted: anything, 10 kB), n2 (nothing, 20 kB), n3 (unconfigured),
    all in group g and in cluster c; K1 on n1, K2 on n2, K3 only on gw."""
    annex_env.vector_clock = CLOCK
    env = annex_env.env
    gw = annex_env.make_annex_repo(tmp_path / "gw", U_GW, "gateway")
    for name, uuid in (("n1", U_N1), ("n2", U_N2), ("n3", U_N3)):
        annex_env.clone(gw, tmp_path / name, uuid=uuid, description=f"node {name}")
        run(["git", "-C", gw, "remote", "add", name, f"../{name}"], env=env)
        run(["git", "-C", gw, "fetch", "-q", name], env=env)
        run(["git", "-C", gw, "config", f"remote.{name}.annex-cluster-node", "c"], env=env)
    annex_env.annex(gw, "merge")
    annex_env.annex(gw, "initcluster", "c")
    annex_env.annex(gw, "updatecluster")
    for name in ("n1", "n2", "n3"):
        annex_env.annex(gw, "group", name, "g")
    annex_env.annex(gw, "groupwanted", "g", "anything")
    annex_env.annex(gw, "wanted", "n1", "groupwanted")
    annex_env.annex(gw, "wanted", "n2", "nothing")
    annex_env.annex(gw, "maxsize", "n1", "10kB")
    annex_env.annex(gw, "maxsize", "n2", "20kB")
    _setpresent(annex_env, gw, [(K1, U_N1, 1), (K2, U_N2, 1), (K3, U_GW, 1)])
    return gw


def _moves(res: object) -> set[tuple[str | None, str | None, str, int, int]]:
    return {(m.src, m.dst, m.kind, m.keys, m.bytes) for m in res.moves}  # type: ignore[attr-defined]


def test_report_columns_and_moves(gw: Path) -> None:
    repo = Repository(gw)
    try:
        bal = Balance(repo, "g")
        report = bal.report(
            [
                parse_scenario("remove:n1"),
                parse_scenario("add:n4:1MB"),
                parse_scenario("wanted:n2:anything"),
            ]
        )
    finally:
        repo.git.close()
    rows = {r.uuid: r for r in report.nodes}
    n1, n2, n3 = rows[U_N1], rows[U_N2], rows[U_N3]
    assert (n1.keys, n1.size, n1.maxsize) == (1, 1000, 10_000)
    assert (n1.want_get_keys, n1.want_get_bytes) == (3, 6000)
    assert (n1.to_get_keys, n1.to_get_bytes) == (2, 5000)
    assert (n1.to_drop_keys, n2.to_drop_keys, n2.to_drop_bytes) == (0, 1, 2000)
    assert n2.want_get_keys == 0
    assert n2.configured
    assert not n3.configured
    assert n1.use == pytest.approx(10.0)
    assert n2.use == pytest.approx(10.0)
    assert n1.var == pytest.approx(1.0)
    assert n3.var is None
    assert report.pending is not None
    assert _moves(report.pending) == {
        (U_N2, U_N1, "move", 1, 2000),
        (U_GW, U_N1, "copy", 1, 3000),
    }
    removed, added, widened = report.scenarios
    assert _moves(removed) == {(U_N1, None, "drop", 1, 1000), (U_N2, None, "drop", 1, 2000)}
    n4 = added_uuid("n4")
    assert (U_N1, n4, "copy", 1, 1000) in _moves(added)
    assert added.after[n4] == (3, 6000)
    assert report.names[n4] == "n4"
    assert _moves(widened) == {(U_N2, U_N1, "copy", 1, 2000), (U_GW, U_N1, "copy", 1, 3000)} | {
        (U_N1, U_N2, "copy", 1, 1000),
        (U_GW, U_N2, "copy", 1, 3000),
    }
    assert json.loads(json.dumps(report.to_json()))["group"] == "g"
    assert any("MIN/MAX VAR" in line for line in report.to_text())


def test_members_of_group_and_cluster(gw: Path) -> None:
    repo = Repository(gw)
    try:
        state = load_state(BranchView(repo))
        assert resolve_members(repo, state, "g") == ("g", "group", (U_N1, U_N2, U_N3))
        _label, kind, members = resolve_members(repo, state, "c")
        assert (kind, members) == ("cluster", (U_N1, U_N2, U_N3))
        cu = repo.clusters["c"]
        assert resolve_members(repo, state, cu)[2] == members
        with pytest.raises(BalanceError):
            resolve_members(repo, state, "nosuchgroup")
    finally:
        repo.git.close()


def test_balanced_maxsize_what_if(gw: Path, annex_env: AnnexEnv) -> None:
    annex_env.annex(gw, "ungroup", "n3", "g")
    annex_env.annex(gw, "groupwanted", "g", "balanced=g")
    annex_env.annex(gw, "wanted", "n2", "groupwanted")
    annex_env.annex(gw, "maxsize", "n1", "1MB")
    annex_env.annex(gw, "maxsize", "n2", "1MB")
    k = "SHA256E-s5000--" + "5" * 64
    _setpresent(annex_env, gw, [(k, U_GW, 1)])
    picker = BalancedPicker([U_N1, U_N2])
    sizes = {K3: 3000, k: 5000}  # the keys only gw has; K1/K2 stay where they are (present)
    pending: dict[str, list[int]] = {}
    for key, size in sizes.items():
        dst = picker.pick([U_N1, U_N2], key, 1)[0]
        acc = pending.setdefault(dst, [0, 0])
        acc[0] += 1
        acc[1] += size
    full = U_N1  # what-if: n1 full (maxsize 0), so n2 gets everything
    repo = Repository(gw)
    try:
        report = Balance(repo, "g").report([Scenario("maxsize", "n1", maxsize=0)])
    finally:
        repo.git.close()
    assert report.pending is not None
    assert _moves(report.pending) == {(U_GW, u, "copy", c, b) for u, (c, b) in pending.items()}
    assert _moves(report.scenarios[0]) == {(U_GW, U_N2, "copy", 2, 8000)}
    assert report.scenarios[0].after[full] == (1, 1000)


def test_parse_scenario_errors() -> None:
    assert parse_scenario("add:n9:2TB") == Scenario("add", "n9", maxsize=2 * 10**12)
    assert parse_scenario("wanted:n1:balanced=g:2").expression == "balanced=g:2"
    for bad in ("add", "add::1TB", "maxsize:n1", "maxsize:n1:lots", "bogus:x", "remove:"):
        with pytest.raises(BalanceError):
            parse_scenario(bad)


def test_wanted_check_matches_git_annex(
    gw: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    annex_env.annex(gw, "group", "here", "g")
    expr = "balanced=g:2"
    annex_env.annex(gw, "wanted", "here", expr)
    keys = [f"SHA256E-s{100 + i}--{i:064x}" for i in range(12)]
    _setpresent(annex_env, gw, [(k, U_N1, 1) for k in keys[:4]])
    want: dict[str, bool] = {}
    for k in [*keys, K1, K2, K3]:
        res = annex_env.annex(gw, "matchexpression", "--key", k, expr, check=False)
        want[k] = res.returncode == 0
    assert any(want.values())
    assert not all(want.values())
    for k, wanted in want.items():
        code, _out, _err = run_annextui(annex_env.env, gw, ["wanted-check", "--key", k], capsys)
        assert code == (0 if wanted else 1), k
    # batch mode: one JSON object per line
    import io
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO("".join(k + "\n" for k in want))
    try:
        code, out, _err = run_annextui(annex_env.env, gw, ["wanted-check", "--batch"], capsys)
    finally:
        sys.stdin = old
    assert code == 0
    got = [json.loads(line) for line in out.splitlines()]
    assert [(g["key"], g["repo"], g["wanted"]) for g in got] == [
        (k, U_GW, w) for k, w in want.items()
    ]


def test_wanted_check_targets_and_errors(
    gw: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    env = annex_env.env
    assert run_annextui(env, gw, ["wanted-check", "--target", "n1", "--key", K2], capsys)[0] == 0
    assert run_annextui(env, gw, ["wanted-check", "--target", U_N2, "--key", K2], capsys)[0] == 1
    assert (
        run_annextui(env, gw, ["wanted-check", "--target", "n2", "--drop", "--key", K2], capsys)[0]
        == 0
    )
    code, _out, err = run_annextui(env, gw, ["wanted-check", "--key", "not a key"], capsys)
    assert code == 2
    assert "invalid key" in err
    code, _out, err = run_annextui(
        env, gw, ["wanted-check", "--target", "nope", "--key", K1], capsys
    )
    assert code == 2
    assert "nope" in err
    code, _out, err = run_annextui(env, gw, ["balance", "nosuchgroup"], capsys)
    assert code == 1  # a failure, as documented; 2 is for a command line that does not parse
    assert "nosuchgroup" in err
    with pytest.raises(SystemExit) as usage:
        run_annextui(env, gw, ["balance", "g", "--what-if", "grow:n1"], capsys)
    assert usage.value.code == 2
    assert "what-if" in capsys.readouterr().err


def test_wanted_check_file(
    gw: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = annex_env.add_files(gw, {"big/a.bin": b"x" * 100, "small.txt": b"y"})
    annex_env.annex(gw, "wanted", "n2", "include=big/*")
    env = annex_env.env
    code, out, _ = run_annextui(
        env,
        gw,
        ["wanted-check", "--target", "n2", "--json", "--file", str(gw / "big/a.bin")],
        capsys,
    )
    assert code == 0
    assert json.loads(out)["key"] == keys["big/a.bin"]
    code, _, _ = run_annextui(
        env, gw, ["wanted-check", "--target", "n2", "--file", str(gw / "small.txt")], capsys
    )
    assert code == 1


def test_cli_balance_and_sizes(
    gw: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    env = annex_env.env
    code, out, _ = run_annextui(
        env, gw, ["balance", "c", "--json", "--what-if", "add:n4:1TB"], capsys
    )
    assert code == 0
    data = json.loads(out)
    assert data["success"]
    assert data["kind"] == "cluster"
    assert len(data["what-if"]) == 1
    code, out, _ = run_annextui(env, gw, ["sizes", "--json"], capsys)
    sizes = {r["uuid"]: r["size"] for r in json.loads(out)["repositories"]}
    want = json.loads(_NOISE.sub("", annex_env.annex(gw, "maxsize", "--json").stdout))
    assert sizes == {r["uuid"]: r["size"]["size"] for r in want["repositories"]}
    code, out, _ = run_annextui(env, gw, ["sizes"], capsys)
    assert code == 0
    assert U_N1 in out
    code, out, _ = run_annextui(env, gw, ["balance", "g", "--explain", K3], capsys)
    assert code == 0
    assert U_N1 in out


@pytest.mark.parametrize(
    "argv", [["--help"], ["sizes", "--help"], ["balance", "--help"], ["wanted-check", "--help"]]
)
def test_help_texts(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from annextui.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out
