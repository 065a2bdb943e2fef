"""Repository sizes against the real git-annex (`maxsize --json`, `info --json`, the overview)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annextui.backend.keys import location_log_path
from annextui.backend.repo import Repository
from annextui.backend.sizes import (
    clear_cache,
    diff,
    index_matches_branch,
    key_locations,
    key_size_of_path,
    mask_of_log,
    masks,
    repo_sizes,
    scan,
)
from annextui.backend.sizes_overview import maxsize_overview
from annextui.backend.units import format_rough
from tests.support.annex import AnnexEnv, run

U_GW = "11111111-1111-4111-8111-111111111111"
U_N1 = "aaaaaaaa-0000-4000-8000-000000000001"
U_N2 = "bbbbbbbb-0000-4000-8000-000000000002"
U_N3 = "cccccccc-0000-4000-8000-000000000003"
U_WEB = "00000000-0000-0000-0000-000000000001"
U_GHOST = "99999999-9999-4999-8999-999999999999"  # in location logs only, never in uuid.log
CLOCK = 1_700_000_000

_NOISE = re.compile(r"^\((?:recording state in git|merging [^()]*)\.\.\.\)\n", re.M)


# ---------------------------------------------------------------------------------------------
# Pure parts


@pytest.mark.parametrize(
    ("path", "size"),
    [
        (b"2dc/fff/SHA256E-s18--e01c.txt.log", 18),
        (b"2dc/fff/WORM-s3-m1700000000--a__b&cc.log", 3),
        (b"2dc/fff/WORM-m1700000000--song-s5.log", 0),  # "-s" in the name is not a size
        (b"2dc/fff/URL--http&c%%example.com%-s9.log", 0),
        (b"2dc/fff/SHA256E-s0--e3b0.log", 0),
        (b"2dc/fff/X-s12x--y.log", 0),
        (b"2dc/fff/SHA1-s1234-S100-C2--abc.log", 1234),
    ],
)
def test_key_size_of_path(path: bytes, size: int) -> None:
    assert key_size_of_path(path) == size


@pytest.mark.parametrize(
    ("log", "present"),
    [
        (b"100s 1 A\n", {"A"}),
        (b"100s 1 A\n100s 0 A\n", {"A"}),  # equal clocks: the earlier line wins
        (b"100s 0 A\n100s 1 A\n", set()),
        (b"100s 1 A\n101s 0 A\n", set()),
        (b"103s 1 A\n101s 0 A\n102s X A\n", {"A"}),
        (b"100.5s 1 A\n100.25s 0 A\n", {"A"}),
        (b"100.000000000001s 0 A\n100s 1 A\n", set()),
        (b"1 A\n100s 1 B\n", {"B"}),  # no clock: not a presence line
        (b"100s 2 A\n100s 1 B\n", {"B"}),  # unknown status
        (b"100s 1 A\r\n100s 1 B\r\n", {"A", "B"}),
        (b"100s 1 A\r100s 1 B\n", {"A", "B"}),
        (b"10\r0s 1 A\n", {"A"}),
        (b"100s 1 A\n100s 0 A\r\n", {"A"}),
        (b"100s 1 A\n\n\n100s 1 B", {"A", "B"}),
        (b"12a4s 1 A\n", set()),
        (b"-5s 1 A\n", {"A"}),
        (b"100s 1 A B\n", {"A B"}),
        (b"", set()),
    ],
)
def test_mask_of_log(log: bytes, present: set[str]) -> None:
    from annextui.backend.logs.presence import present_infos

    assert mask_of_log(log, []) == present
    assert present_infos(log) == present  # the reference implementation agrees


_log_line = st.tuples(
    st.sampled_from(["100", "101", "99", "100.5", "-1", "1e3", "", "x"]),
    st.sampled_from(["s", "s", ""]),
    st.sampled_from([" 1 ", " 0 ", " X ", " 2 ", "  ", " 1", " 1  "]),
    st.sampled_from(["A", "B", "C", "A B", ""]),
    st.sampled_from(["\n", "\n", "\r\n", "\r", "\n\n", ""]),
).map(lambda t: "".join(t))


@given(st.lists(_log_line, max_size=6).map(lambda ls: "".join(ls).encode()))
def test_fast_resolver_equals_reference(log: bytes) -> None:
    from annextui.backend.logs.presence import present_infos

    assert mask_of_log(log, ["A", "B"]) == {u for u in present_infos(log) if u}


@given(st.lists(st.lists(_log_line, max_size=5).map(lambda ls: "".join(ls).encode()), max_size=8))
def test_scan_loop_equals_reference(logs: list[bytes]) -> None:
    """The inlined hot loop of the cold scan, fed a `git cat-file --batch` style stream."""
    import io

    from annextui.backend.logs.presence import present_infos

    records = []
    for i, log in enumerate(logs):
        path = f"abc/d{i:02d}/SHA256E-s{i}--{i:064x}.log".encode()
        records.append(b"%d %s\n%s\n" % (len(log), path, log))
    records.append(b"1234 abc/def/not-a-key.log\n" + b"x" * 1234 + b"\n")
    records.append(b"5 uuid.log\nabcde\n")
    stream = io.BufferedReader(io.BytesIO(b"".join(records)))  # type: ignore[arg-type]
    masker = masks.Masker(["A", "B"])
    job = scan.ScanJob(None, b"", masker, 2, True, None, None)  # type: ignore[arg-type]
    result = scan._read_stream(stream, job)
    assert result.keys is not None
    got = [set(masker.uuids_of(m)) for _p, m in result.keys.items()]
    assert got == [{u for u in present_infos(log) if u} for log in logs]
    want: dict[str, list[int]] = {}
    for i, log in enumerate(logs):
        for u in present_infos(log):
            if u:
                acc = want.setdefault(u, [0, 0])
                acc[0] += 1
                acc[1] += i
    got_totals = {
        u: [result.totals.counts[j], result.totals.sizes[j]]
        for j, u in enumerate(masker.uuids)
        if j < len(result.totals.counts) and result.totals.counts[j]
    }
    assert got_totals == want
    assert result.totals.nkeys == len(logs)


# ---------------------------------------------------------------------------------------------
# Helpers for real repositories


def _git(repo: Path, env: dict[str, str], *args: str, input_: bytes | None = None) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, input=input_, capture_output=True, check=True
    )
    return proc.stdout.decode().strip()


def commit_branch_files(repo: Path, env: dict[str, str], files: dict[str, bytes | None]) -> str:
    """Commit `files` (None deletes) onto refs/heads/git-annex with git plumbing."""
    index = repo / ".git" / "annextui-test-index"
    ienv = {**env, "GIT_INDEX_FILE": str(index)}
    parent = (
        subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "-q", "--verify", "refs/heads/git-annex"],
            env=env,
            capture_output=True,
        )
        .stdout.decode()
        .strip()
    )
    if parent:
        _git(repo, ienv, "read-tree", parent)
    else:
        index.unlink(missing_ok=True)
    for path, content in files.items():
        if content is None:
            _git(repo, ienv, "update-index", "--force-remove", "--", path)
            continue
        sha = _git(repo, env, "hash-object", "-w", "--stdin", input_=content)
        _git(repo, ienv, "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}")
    tree = _git(repo, ienv, "write-tree")
    args = ["commit-tree", tree, "-m", "update"] + (["-p", parent] if parent else [])
    commit = _git(repo, env, *args)
    _git(repo, env, "update-ref", "refs/heads/git-annex", commit)
    index.unlink(missing_ok=True)
    return commit


def _setpresent(
    annex_env: AnnexEnv, repo: Path, lines: list[tuple[str, str, int]], *, commit: bool = True
) -> None:
    """`setpresentkey --batch` leaves its changes in the journal; `merge` commits them."""
    text = "".join(f"{k} {u} {s}\n" for k, u, s in lines)
    annex_env.annex(repo, "setpresentkey", "--batch", input=text)
    if commit:
        annex_env.annex(repo, "merge")


def _annex_sizes(annex_env: AnnexEnv, repo: Path) -> dict[str, int]:
    out = annex_env.annex(repo, "maxsize", "--json").stdout
    data = json.loads(_NOISE.sub("", out))
    return {r["uuid"]: r["size"]["size"] for r in data["repositories"]}


def _info_sizes(annex_env: AnnexEnv, repo: Path) -> tuple[dict[str, str], str]:
    out = annex_env.annex(repo, "info", "--json").stdout
    data = json.loads(_NOISE.sub("", out))
    sizes = {r["uuid"]: r["size"] for r in data["annex sizes of repositories"]}
    return sizes, data["combined annex size of all repositories"]


def _ours(repo: Path, *, use_cache: bool = True) -> dict[str, int]:
    r = Repository(repo)
    try:
        return {u: s.size for u, s in repo_sizes(r, use_cache=use_cache).repos.items()}
    finally:
        r.git.close()


def _visible(ours: dict[str, int], repo: Path) -> dict[str, int]:
    r = Repository(repo)
    try:
        s = repo_sizes(r)
        return {u: x.size for u, x in s.repos.items() if not x.dead}
    finally:
        r.git.close()


KEYS = {
    "a": "SHA256E-s1000--" + "a" * 64 + ".bin",
    "b": "SHA256E-s2500--" + "b" * 64 + ".bin",
    "c": "SHA256E-s123456789--" + "c" * 64,
    "worm": "WORM-s5-m1700000000--a_b:c&d%e",
    "nosize": "WORM-m1700000000--no-size-s77",
    "url": "URL--http://example.com/file-s3",
    "big": "SHA256E-s900000000000--" + "d" * 64,
}


@pytest.fixture
def cluster(tmp_path: Path, annex_env: AnnexEnv) -> Path:
    """A gateway with nodes n1, n2 (merged branches), n3 (dead) and a cluster; returns gw."""
    annex_env.vector_clock = CLOCK
    env = annex_env.env
    gw = annex_env.make_annex_repo(tmp_path / "gw", U_GW, "gateway")
    for name, uuid in (("n1", U_N1), ("n2", U_N2), ("n3", U_N3)):
        annex_env.clone(gw, tmp_path / name, uuid=uuid, description=f"node {name}")
        run(["git", "-C", gw, "remote", "add", name, f"../{name}"], env=env)
    _setpresent(annex_env, tmp_path / "n1", [(KEYS["a"], U_N1, 1), (KEYS["worm"], U_N1, 1)])
    _setpresent(annex_env, tmp_path / "n2", [(KEYS["b"], U_N2, 1), (KEYS["a"], U_N2, 1)])
    for name in ("n1", "n2", "n3"):
        run(["git", "-C", gw, "fetch", "-q", name], env=env)
    annex_env.annex(gw, "merge")
    _setpresent(
        annex_env,
        gw,
        [
            (KEYS["a"], U_GW, 1),
            (KEYS["c"], U_N3, 1),
            (KEYS["nosize"], U_GW, 1),
            (KEYS["url"], U_WEB, 1),
            (KEYS["big"], U_GHOST, 1),
            (KEYS["worm"], U_GW, 1),
        ],
    )
    annex_env.annex(gw, "initcluster", "mycluster")
    annex_env.annex(gw, "dead", "n3")
    annex_env.annex(gw, "maxsize", "n1", "5kB")
    annex_env.annex(gw, "maxsize", "n2", "1kB")
    annex_env.annex(gw, "maxsize", "here", "0")
    return gw


def _add_pending_changes(annex_env: AnnexEnv, gw: Path) -> None:
    """An unmerged remote git-annex ref and journal-only changes."""
    env = annex_env.env
    n1 = gw.parent / "n1"
    annex_env.vector_clock = CLOCK + 100
    _setpresent(annex_env, n1, [(KEYS["b"], U_N1, 1), (KEYS["worm"], U_N1, 0)])
    run(["git", "-C", gw, "fetch", "-q", "n1"], env=env)
    run(["git", "-C", gw, "config", "annex.alwayscommit", "false"], env=env)
    _setpresent(annex_env, gw, [(KEYS["a"], U_GW, 0), (KEYS["c"], U_GW, 1)], commit=False)
    assert any((gw / ".git" / "annex" / "journal").iterdir())


# ---------------------------------------------------------------------------------------------
# Interop


def test_sizes_match_git_annex(cluster: Path, annex_env: AnnexEnv) -> None:
    gw = cluster
    cold = _ours(gw, use_cache=False)
    assert cold[U_N3] == 123456789  # dead: computed
    assert cold[U_GHOST] == 900000000000
    want = _annex_sizes(annex_env, gw)
    got = _visible(cold, gw)
    assert got == want
    assert _ours(gw) == cold  # through the cache (cold, then warm)
    assert _ours(gw) == cold
    info, combined = _info_sizes(annex_env, gw)
    assert info == {u: format_rough(s, 2) for u, s in got.items() if s > 0}
    r = Repository(gw)
    try:
        assert combined == format_rough(repo_sizes(r).total, 2, long_names=True)
    finally:
        r.git.close()


def test_journal_and_unmerged_refs_are_overlaid(cluster: Path, annex_env: AnnexEnv) -> None:
    gw = cluster
    _ours(gw)  # cache the branch as it is now
    _add_pending_changes(annex_env, gw)
    before = _visible(_ours(gw), gw)
    assert before == _visible(_ours(gw, use_cache=False), gw)
    assert before[U_N1] == 2500 + 1000  # b added on the unmerged n1 ref, worm dropped there
    assert before[U_GW] == 5 + 123456789  # a dropped and c added in the journal
    # git-annex merges the n1 ref (committing the journal first) and must agree
    assert _annex_sizes(annex_env, gw) == before
    # the branch moved under our cache: the incremental refresh gives the same answer
    r = Repository(gw)
    try:
        s = repo_sizes(r)
        assert s.source == "incremental"
        assert {u: x.size for u, x in s.repos.items() if not x.dead} == before
    finally:
        r.git.close()


def test_presence_tie_rules_match_git_annex(cluster: Path, annex_env: AnnexEnv) -> None:
    gw = cluster
    k1 = "SHA256E-s700--" + "1" * 64
    k2 = "SHA256E-s70--" + "2" * 64
    k3 = "SHA256E-s7--" + "3" * 64
    commit_branch_files(
        gw,
        annex_env.env,
        {
            location_log_path(k1): f"1700000500s 1 {U_N2}\n1700000500s 0 {U_N2}\n".encode(),
            location_log_path(k2): f"1700000500s 0 {U_N2}\n1700000500s 1 {U_N2}\n".encode(),
            location_log_path(k3): (
                f"1700000500.000000000002s 1 {U_N2}\n1700000500.000000000001s 0 {U_N2}\n"
                f"garbage line\n1700000501s 1\n"
            ).encode(),
        },
    )
    ours = _visible(_ours(gw, use_cache=False), gw)
    assert ours[U_N2] == 1000 + 2500 + 700 + 7
    assert _annex_sizes(annex_env, gw) == ours


def test_overview_is_byte_equal(cluster: Path, annex_env: AnnexEnv) -> None:
    gw = cluster
    annex_env.annex(gw, "merge")
    for extra in ([], ["--bytes"]):
        want = _NOISE.sub("", annex_env.annex(gw, "maxsize", *extra).stdout)
        r = Repository(gw)
        try:
            got = maxsize_overview(r, bytes_=bool(extra))
        finally:
            r.git.close()
        assert "\n".join(got.lines) + "\n" == want
    want_json = json.loads(_NOISE.sub("", annex_env.annex(gw, "maxsize", "--json").stdout))
    r = Repository(gw)
    try:
        got = maxsize_overview(r)
    finally:
        r.git.close()
    payload = {"command": "maxsize", "error-messages": [], "success": True, **got.data}
    assert payload == want_json


def test_overview_through_the_cli(
    cluster: Path, annex_env: AnnexEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.cli import run_annextui

    gw = cluster
    annex_env.annex(gw, "merge")
    want = _NOISE.sub("", annex_env.annex(gw, "maxsize").stdout)
    code, out, _err = run_annextui(annex_env.env, gw, ["maxsize"], capsys)
    assert code == 0
    assert out == want


def test_dulwich_fallback_and_git_diff_agree(
    cluster: Path, annex_env: AnnexEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = cluster
    want = _ours(gw, use_cache=False)

    def unavailable(*_a: object, **_k: object) -> object:
        raise scan._PipelineUnavailable("old git")

    with monkeypatch.context() as m:
        m.setattr(scan, "_pipeline_scan", unavailable)
        assert _ours(gw, use_cache=False) == want
    # an over-budget diff goes through git diff-tree
    r = Repository(gw)
    clear_cache(r)
    _ours(gw)
    _add_pending_changes(annex_env, gw)
    annex_env.annex(gw, "merge")
    monkeypatch.setattr(diff, "DIFF_OBJECT_BUDGET", 1)
    s = repo_sizes(r)
    assert s.source == "incremental"
    assert {u: x.size for u, x in s.repos.items()} == _ours(gw, use_cache=False)
    r.git.close()


def test_index_listing_and_tree_walk_agree(
    cluster: Path, annex_env: AnnexEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = cluster
    annex_env.annex(gw, "merge")  # git-annex's index now matches the branch
    r = Repository(gw)
    try:
        head = r.git.refs[b"refs/heads/git-annex"]
        assert index_matches_branch(r, head)
        assert not index_matches_branch(r, b"0" * 40)  # index.lck names another commit
    finally:
        r.git.close()
    with_index = _ours(gw, use_cache=False)
    # git-annex union-merges a moved branch into its index: index.lck names the branch commit
    # while the index holds other content. That index must not be used: the scan proves it
    # differs and walks the tree instead.
    env = {**annex_env.env, "GIT_INDEX_FILE": str(gw / ".git" / "annex" / "index")}
    extra = f"1800000000s 1 {U_N2}\n".encode()
    sha = _git(gw, annex_env.env, "hash-object", "-w", "--stdin", input_=extra)
    path = location_log_path(KEYS["c"])
    _git(gw, env, "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}")
    r = Repository(gw)
    try:
        assert not index_matches_branch(r, r.git.refs[b"refs/heads/git-annex"])
    finally:
        r.git.close()
    assert _ours(gw, use_cache=False) == with_index
    monkeypatch.setattr(scan, "_index_snapshot", lambda *_a: None)
    assert _ours(gw, use_cache=False) == with_index
    # no index snapshot is left behind
    cache = gw / ".git" / "annex" / "annextui"
    assert not list(cache.glob(scan.INDEX_SNAPSHOT_PREFIX + "*"))


def test_index_snapshot_of_a_killed_scan_is_removed(cluster: Path, annex_env: AnnexEnv) -> None:
    gw = cluster
    annex_env.annex(gw, "merge")
    cache = gw / ".git" / "annex" / "annextui"
    cache.mkdir(exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = cache / f"{scan.INDEX_SNAPSHOT_PREFIX}{dead.pid}.0badc0de"
    stale.write_bytes(b"DIRC")
    alive = cache / f"{scan.INDEX_SNAPSHOT_PREFIX}{os.getpid()}.0badc0de"
    alive.write_bytes(b"DIRC")
    r = Repository(gw)
    try:
        assert index_matches_branch(r, r.git.refs[b"refs/heads/git-annex"])
    finally:
        r.git.close()
    assert not stale.exists()
    assert alive.exists()  # a running scan's snapshot is never touched


def test_key_locations(cluster: Path, annex_env: AnnexEnv) -> None:
    gw = cluster
    r = Repository(gw)
    try:
        kl = key_locations(r)
        by_key = {kl.key_of(p): kl.uuids_of(m) for p, m in kl.items()}
        assert by_key[KEYS["a"]] == {U_GW, U_N1, U_N2}
        assert by_key[KEYS["worm"]] == {U_GW, U_N1}
        assert by_key[KEYS["url"]] == {U_WEB}
        _add_pending_changes(annex_env, gw)
        kl2 = key_locations(r)
        by_key = {kl2.key_of(p): kl2.uuids_of(m) for p, m in kl2.items()}
        assert by_key[KEYS["a"]] == {U_N1, U_N2}
        assert by_key[KEYS["b"]] == {U_N1, U_N2}
        assert by_key[KEYS["worm"]] == {U_GW}
    finally:
        r.git.close()
