"""Differential tests: annextui's preferred-content decisions against the real git-annex.

One scratch repository ("main") with special remotes standing in for many repositories (fixed
UUIDs, groups, trust levels, a dead member, maxsize, numcopies, .gitattributes numcopies,
groupwanted, required content, metadata, urls), ~40 files whose keys are faked into location
logs with ``git annex setpresentkey``. For every (expression, repository) pair the expression is
set with ``git annex wanted`` and ``git annex find --want-get-by`` / ``--want-drop-by`` list the
files git-annex wants; the World is read back from the branch
(tests/backend/preferred/branch_world.py) and every file is decided by ``Evaluator`` -- the two
must agree exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from annextui.backend.preferred import Evaluator, KeyFacts
from tests.backend.preferred.branch_world import Snapshot, read_branch, world_from_branch
from tests.support import annex as annex_support
from tests.support.annex import AnnexEnv

MAIN = "11111111-1111-4111-8111-111111111111"
R1 = "2c2a1e0e-5d5a-4e8b-9b57-0e1b0c3e9a01"
R2 = "7f1b6c3d-1a2b-4c3d-8e4f-5a6b7c8d9e02"
R3 = "d4e5f6a7-b8c9-4dae-8f01-23456789ab03"
R4 = "44444444-4444-4444-8444-444444444444"
R5 = "55555555-5555-4555-8555-555555555555"
R6 = "66666666-6666-4666-8666-666666666666"
R7 = "77777777-7777-4777-8777-777777777777"
R8 = "88888888-8888-4888-8888-888888888888"
R9 = "99999999-9999-4999-8999-999999999999"
WEB = "00000000-0000-0000-0000-000000000001"
N1 = "c0000001-0000-4000-8000-000000000001"
N2 = "c0000002-0000-4000-8000-000000000002"

# name -> (uuid, groups, extra initremote params)
REMOTES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "r1": (R1, ("g",), ()),
    "r2": (R2, ("g",), ()),
    "r3": (R3, ("g",), ()),
    "r4": (R4, ("g2",), ()),
    "r5": (R5, ("g2", "archive"), ()),
    "r6": (R6, ("g2", "client"), ()),
    "r7": (R7, ("g2", "backup"), ()),
    "r8": (R8, ("backup", "g3"), ()),
    "r9": (R9, ("public",), ("preferreddir=pub",)),
}
# repositories that only ever use `standard` (one per standard group, plus two groups at once)
STANDARD_REMOTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sclient": ("a0000001-0000-4000-8000-000000000001", ("client",)),
    "stransfer": ("a0000002-0000-4000-8000-000000000002", ("transfer",)),
    "sincr": ("a0000003-0000-4000-8000-000000000003", ("incrementalbackup",)),
    "ssmall": ("a0000004-0000-4000-8000-000000000004", ("smallarchive",)),
    "ssource": ("a0000005-0000-4000-8000-000000000005", ("source",)),
    "smanual": ("a0000006-0000-4000-8000-000000000006", ("manual",)),
    "sunwanted": ("a0000007-0000-4000-8000-000000000007", ("unwanted",)),
    "stwo": ("a0000008-0000-4000-8000-000000000008", ("archive", "backup")),
    "sbackup": ("a0000009-0000-4000-8000-000000000009", ("backup", "misc")),
}
NAMES = {MAIN: "main", N1: "n1", N2: "n2", **{u: n for n, (u, _, _) in REMOTES.items()}}
NAMES.update({u: n for n, (u, _) in STANDARD_REMOTES.items()})

VECTOR_KEYS = [
    "SHA256E-s100--cdeaac6acfc15434bd9869c8dc0ae42b5db3979aae4329a7715655c312032002.bin",
    "SHA256E-s100--44fe7765b68b2dd97b26a98add36f062796fe7cf7ddcc6cf25ad8ebdd2ce078d.bin",
    "SHA256E-s100--e0ce12925221bb49a9d13d25db2cbe0f7719432a86a3326fd284b3946d0ec0a5.bin",
    "SHA256E-s100--2b7413bb045bccde2def7828189b292ca0f877a86c05f17f4d55bbd4f11427d1.bin",
    "SHA256E-s100--a7ed3a54d8362d4d1f71b5fc10d2dacf9d7def601c059cf2e576e0255250989f.bin",
    "SHA256E-s100--290d2597dd4ab9859a6dfa9bfa134a3b1073e440877fd4118326e33a460cc75f.bin",
    "WORM-s5-m1700000000--hello.txt",
    "MD5-s0--d41d8cd98f00b204e9800998ecf8427e",
]

FILE_NAMES = [
    "a.bin",
    "b.txt",
    "archive/x.bin",
    "d/archive/y.bin",
    "d/e/archive/z.txt",
    "public/p.txt",
    "pub/q.txt",
    "x/pub/r.txt",
    "pub/sub/s.txt",
    "nc3/f1.bin",
    "nc3/sub/f2.bin",
    "sp ace/f.txt",
    "é/ü.bin",
    "deep/a/b/c/d.bin",
    "it's.txt",
    "a<b.txt",
    "UPPER.BIN",
    "weird[1].bin",
    "nl\nname.txt",
]

NUMCOPIES = 2


def _key_for(i: int, rng: random.Random) -> str:
    h = hashlib.sha256(str(i).encode()).hexdigest()
    size = rng.choice([0, 1, 5, 50, 100, 120, 400, 999, 1000, 1500, 10**6])
    kind = i % 9
    if kind == 0:
        return f"WORM-s{size}-m{1700000000 + i}--w{i}.dat"
    if kind == 1:
        return f"MD5-s{size}--{h[:32]}"
    if kind == 2:
        return f"SKEIN256-s{size}--{h}"
    if kind == 3:
        return f"SHA1-s{size}--{h[:40]}"
    if kind == 4:
        return f"BLAKE2B160E-s{size}--{h[:40]}.bin"
    if kind == 5:
        return f"SHA256--{h}"  # no size field
    return f"SHA256E-s{size}--{h}.bin"


@dataclass
class Scenario:
    env: AnnexEnv
    repo: Path
    files: dict[str, str]  # file -> key
    cluster: str
    present_here: frozenset[str]
    file_numcopies: dict[str, int]

    def snapshot(self, repo: Path | None = None, **kw: object) -> Snapshot:
        return world_from_branch(
            read_branch(repo or self.repo, self.env.env),
            here=MAIN,
            file_numcopies=self.file_numcopies,
            **kw,  # type: ignore[arg-type]
        )

    def facts(self, snap: Snapshot, file: str) -> KeyFacts:
        return snap.facts(self.files[file], file, local_present=file in self.present_here)


def _annex(repo: Path, env: dict[str, str], *args: str, input: str | None = None) -> str:
    return annex_support.run(
        ["git", "annex", *args], cwd=repo, env=env, input=input, timeout=120
    ).stdout


def _build(root: Path, git_annex_bin: Path) -> Scenario:
    env = AnnexEnv.create(
        root,
        bin_dir=git_annex_bin.parent,
        magic=annex_support.magic_db(git_annex_bin),
        vector_clock=1700000000,
    )
    e = env.env
    repo = annex_support.make_annex_repo(root / "main", MAIN, "main", env=e)
    # a cluster "c1" with two local nodes (git remotes n1, n2); its UUID is random
    for name, uuid in (("n1", N1), ("n2", N2)):
        annex_support.make_annex_repo(root / name, uuid, name, env=e)
        annex_support.git(repo, "remote", "add", name, str(root / name), env=e)
        annex_support.git(repo, "config", f"remote.{name}.annex-cluster-node", "c1", env=e)
        annex_support.git(repo, "fetch", "-q", name, env=e)
    _annex(repo, e, "initcluster", "c1")
    _annex(repo, e, "updatecluster")
    _annex(repo, e, "merge")
    _annex(repo, e, "group", "n1", "cl")
    _annex(repo, e, "group", "n2", "cl")
    for name, (uuid, groups, extra) in REMOTES.items():
        d = root / "dirs" / name
        d.mkdir(parents=True)
        _annex(repo, e, "initremote", name, "type=directory", f"directory={d}",
               "encryption=none", f"uuid={uuid}", *extra)  # fmt: skip
        for g in groups:
            _annex(repo, e, "group", name, g)
    for name, (uuid, groups) in STANDARD_REMOTES.items():
        d = root / "dirs" / name
        d.mkdir(parents=True)
        _annex(repo, e, "initremote", name, "type=directory", f"directory={d}",
               "encryption=none", f"uuid={uuid}")  # fmt: skip
        for g in groups:
            _annex(repo, e, "group", name, g)
        _annex(repo, e, "wanted", name, "standard")
    _annex(repo, e, "trust", "--force", "r4")
    _annex(repo, e, "untrust", "r5")
    _annex(repo, e, "dead", "r7")
    _annex(repo, e, "group", "r7", "g2")  # a dead repository that is still in a group
    for name, size in (("r1", "1000"), ("r2", "500"), ("r3", "150"), ("r4", "2kB"), ("r6", "0")):
        _annex(repo, e, "maxsize", name, size)
    _annex(repo, e, "maxsize", "sclient", "10 MB")
    _annex(repo, e, "numcopies", str(NUMCOPIES))
    _annex(repo, e, "groupwanted", "g2", "balanced=g2:2")
    _annex(repo, e, "groupwanted", "backup", "include=*.bin or standard")
    _annex(repo, e, "groupwanted", "g3", "present or copies=archive:1")
    _annex(repo, e, "groupwanted", "misc", "")
    _annex(repo, e, "required", "r9", "include=archive/*")

    (repo / ".gitattributes").write_text("nc3/** annex.numcopies=3\n")
    annex_support.git(repo, "add", ".gitattributes", env=e)

    rng = random.Random(20261026)
    keys = list(VECTOR_KEYS) + [_key_for(i, rng) for i in range(len(FILE_NAMES) + 14)]
    files: dict[str, str] = {}
    names = FILE_NAMES + [f"f{i:02d}.bin" for i in range(len(keys) - len(FILE_NAMES))]
    for name, key in zip(names, keys, strict=False):
        files[name] = key
    batch = "".join(f"{k} {f}\0" for f, k in files.items())
    _annex(repo, e, "fromkey", "--force", "--batch", "-z", input=batch)

    # real content for two files (present here for real, so `present` is true for main)
    real = annex_support.add_files(repo, {"real/one.txt": "one\n", "real/two.bin": "two" * 50},
                                   commit=False, env=e)  # fmt: skip
    files.update(real)
    annex_support.git(repo, "commit", "-q", "-m", "files", env=e)

    candidates = [MAIN, N1, N2, R1, R2, R3, R4, R5, R6, R7, R8, R9] + [
        u for u, _ in STANDARD_REMOTES.values()
    ]
    lines = []
    for i, (_f, key) in enumerate(sorted(files.items())):
        if key in real.values():
            holders = {MAIN}
        else:
            holders = {u for u in candidates if rng.random() < (0.45 if i % 5 == 0 else 0.2)}
            if i % 7 == 0:
                holders = set()
        for u in sorted(holders):
            lines.append(f"{key} {u} 1\n")
    _annex(repo, e, "setpresentkey", "--batch", input="".join(lines))

    meta = []
    for i, key in enumerate(sorted(set(files.values()))):
        fields: dict[str, list[str]] = {}
        if i % 3 == 0:
            fields["tag"] = ["foo" if i % 2 else "FooBar", "x"]
        if i % 4 == 1:
            fields["year"] = [str(1990 + i * 3)]
        if i % 5 == 2:
            fields["Author"] = ["alice smith" if i % 2 else "bob"]
        if fields:
            meta.append(json.dumps({"key": key, "fields": fields}) + "\n")
    _annex(repo, e, "metadata", "--batch", "--json", input="".join(meta))
    urls = []
    for i, key in enumerate(sorted(set(files.values()))):
        if i % 4 == 2:
            urls.append(f"{key} https://example.com/{i}\n")
        if i % 6 == 3:
            urls.append(f"{key} :other-{i}\n")
    _annex(repo, e, "registerurl", "--batch", input="".join(urls))
    _annex(repo, e, "describe", "here", "main")  # commits the journal

    present = subprocess.run(
        ["git", "annex", "find", "--print0"], cwd=repo, env=e, capture_output=True, check=True
    ).stdout.decode()
    present_here = frozenset(p for p in present.split("\0") if p)
    fnc = {f: 3 for f in files if f.startswith("nc3/")}
    cluster_log = annex_support.git(repo, "cat-file", "-p", "git-annex:cluster.log", env=e)
    cluster = cluster_log.split()[1]
    return Scenario(env, repo, files, cluster, present_here, fnc)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("prefdiff")
    sc = _build(root, git_annex_bin)
    yield sc
    sc.env.cleanup()


# ---------------------------------------------------------------------------------------------


def _find(repo: Path, env: dict[str, str], *opts: str) -> set[str]:
    out = subprocess.run(
        ["git", "annex", "find", "--print0", *opts],
        cwd=repo,
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout.decode()
    return {p for p in out.split("\0") if p}


GROUP_G = [R1, R2, R3, MAIN]
GROUP_G2 = [R4, R5, R6, R7]
GENERAL = [MAIN, R1, R4, R5, R7, R8, R9]
BASIC = [R1, R4, R5, R7]  # semitrusted, trusted, untrusted, dead

EXPRESSIONS: list[tuple[str, list[str]]] = [
    ("anything", [R1, R9]),
    ("include=*.bin", BASIC),
    ("exclude=archive/* and include=*", [R1, R8]),
    ("include=*/archive/* or include=archive/*", [R1, R9]),
    ("include=*[[:space:]]* or include=*[!a-z./]* or include=?.*", [R1]),
    ("copies=2", BASIC),
    ("copies=g:1", BASIC),
    ("copies=trusted:1 or copies=untrusted:1", BASIC),
    ("copies=semitrusted+:3 or copies=dead:1", BASIC),
    ("not copies=g2:1", BASIC),
    ("lackingcopies=1", BASIC),
    ("approxlackingcopies=1", BASIC),
    ("lackingcopies=2 or largerthan=500", [MAIN, R5]),
    ("inallgroup=g", BASIC),
    ("onlyingroup=g2", BASIC),
    ("inbackend=WORM or securehash", [R1]),
    ("smallerthan=100 and not inbackend=SHA256E", [R1]),
    ("largerthan=1kB or smallerthan=1", [R1]),
    ("metadata=tag=foo* or metadata=author=*ALICE*", [R1, R4]),
    ("metadata=year<2000 or metadata=year>=2030", [R1]),
    ("url=*example.com* or url=other-*", [R1]),
    ("present", [MAIN, R1, R5, R7, N1]),
    ("present and copies=2", [MAIN, R5]),
    ("not present", [MAIN, R1]),
    ("inpreferreddir", [R9, R1]),
    ("balanced=g", GROUP_G),
    ("balanced=g:2", GROUP_G),
    ("fullybalanced=g", GROUP_G),
    ("sizebalanced=g", GROUP_G),
    ("fullysizebalanced=g:2", GROUP_G),
    ("balanced=g:lackingcopies", GROUP_G),
    ("fullybalanced=g:lackingcopies", GROUP_G),
    ("balanced=g2:2", GROUP_G2),
    ("sizebalanced=g2", GROUP_G2),
    ("fullybalanced=g2:3", GROUP_G2),
    ("not balanced=g", [R1, R2]),
    ("not fullybalanced=g and include=*", [R1, R2, R3]),
    ("standard", GENERAL),
    ("groupwanted", GENERAL),
    ("not groupwanted", GENERAL),
    ("standard or groupwanted", GENERAL),
    ("include=*.bin or not and copies=1", [R1, R4]),
    ("( include=*.txt or copies=3", [R1, R4]),
    ("nothing ) or copies=1", [R1]),
    ("include=a* or include=*.txt and copies=1", [R1, R4]),
    ("copies=1 not", [R1]),
    ("unused or fullybalanced=g:0", [R1]),
    ("balanced=trusted or balanced=nosuchgroup", [R1, R4]),
    ("onlyingroup=cl or inallgroup=cl", [MAIN, N1, "CLUSTER"]),
    ("copies=cl:2 or copies=4", [MAIN, N1, "CLUSTER"]),
    ("present or lackingcopies=1", [N1, "CLUSTER"]),
    ("balanced=cl", [N1, N2]),
]


@dataclass
class Mismatch:
    expr: str
    uuid: str
    context: str
    file: str
    annex: bool
    ours: bool
    why: str

    def __str__(self) -> str:
        return (
            f"{self.context} {NAMES.get(self.uuid, self.uuid)} expr={self.expr!r} "
            f"file={self.file!r}: git-annex={self.annex} annextui={self.ours}\n{self.why}"
        )


def _compare(
    sc: Scenario,
    repo: Path,
    expr: str,
    uuids: Sequence[str],
    *,
    extra: Sequence[str] = (),
    rebalance: bool = False,
    threshold: float = 0.9,
    drop: bool = True,
) -> tuple[list[Mismatch], int]:
    env = sc.env.env
    uuids = [sc.cluster if u == "CLUSTER" else u for u in uuids]
    for u in uuids:
        _annex(repo, env, "wanted", u, expr)
    snap = sc.snapshot(repo, rebalance=rebalance, threshold=threshold)
    ev = Evaluator(snap.world)
    mismatches: list[Mismatch] = []
    n = 0
    for u in uuids:
        contexts = [("get", "--want-get-by")] + ([("drop", "--want-drop-by")] if drop else [])
        for ctx, opt in contexts:
            annex = _find(repo, env, *extra, f"{opt}={u}")
            for f in sc.files:
                facts = sc.facts(snap, f)
                ours = ev.wants_get(u, facts) if ctx == "get" else ev.wants_drop(u, facts)
                n += 1
                if ours != (f in annex):
                    why = ev.explain(u, facts, context=ctx).describe()  # type: ignore[arg-type]
                    mismatches.append(Mismatch(expr, u, ctx, f, f in annex, ours, why))
    return mismatches, n


def _run_parallel(
    sc: Scenario, tmp: Path, jobs: list[tuple[str, list[str]]], **kw: object
) -> tuple[list[Mismatch], int]:
    workers = max(1, min(3, os.cpu_count() or 1))
    copies = []
    for i in range(workers):
        dest = tmp / f"w{i}"
        shutil.copytree(sc.repo, dest, symlinks=True)
        copies.append(dest)

    def work(i: int) -> tuple[list[Mismatch], int]:
        ms: list[Mismatch] = []
        total = 0
        for expr, uuids in jobs[i::workers]:
            m, n = _compare(sc, copies[i], expr, uuids, **kw)  # type: ignore[arg-type]
            ms += m
            total += n
        return ms, total

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(work, range(workers)))
    return [m for r in results for m in r[0]], sum(r[1] for r in results)


def _report(mismatches: list[Mismatch], total: int) -> str:
    head = f"{len(mismatches)} of {total} decisions differ from git-annex"
    return head + "\n\n" + "\n\n".join(str(m) for m in mismatches[:15])


def test_world_read_back(scenario: Scenario) -> None:
    snap = scenario.snapshot()
    w = snap.world
    assert w.numcopies == NUMCOPIES
    assert w.repo(R7).trust.name == "DEAD"
    assert "g2" in w.repo(R7).groups
    assert w.repo(R6).maxsize == 0
    assert w.repo(R4).maxsize == 2000
    assert w.group_wanted == {
        "g2": "balanced=g2:2",
        "backup": "include=*.bin or standard",
        "g3": "present or copies=archive:1",
        "misc": "",
    }
    assert w.repo(R9).preferreddir == "pub"
    assert w.repo(R9).required == "include=archive/*"
    assert any(WEB in locs for locs in snap.locations.values())
    assert scenario.present_here == {"real/one.txt", "real/two.bin"}
    assert w.clusters[scenario.cluster] == {N1, N2}
    in_cluster = [k for k, locs in snap.locations.items() if N1 in locs or N2 in locs]
    assert in_cluster


@pytest.mark.slow
def test_expressions_match_git_annex(scenario: Scenario, tmp_path: Path) -> None:
    mismatches, total = _run_parallel(scenario, tmp_path, EXPRESSIONS)
    assert total > 3000
    assert not mismatches, _report(mismatches, total)


def test_standard_groups_match_git_annex(scenario: Scenario) -> None:
    snap = scenario.snapshot()
    ev = Evaluator(snap.world)
    mismatches = []
    total = 0
    checked = {name: u for name, (u, _) in STANDARD_REMOTES.items()}
    checked["n2"] = N2  # no preferred content at all: never wants, always drops
    for name, u in checked.items():
        for ctx, opt in (("get", "--want-get-by"), ("drop", "--want-drop-by")):
            annex = _find(scenario.repo, scenario.env.env, f"{opt}={name}")
            for f in scenario.files:
                facts = scenario.facts(snap, f)
                ours = ev.wants_get(u, facts) if ctx == "get" else ev.wants_drop(u, facts)
                total += 1
                if ours != (f in annex):
                    why = ev.explain(u, facts, context=ctx).describe()  # type: ignore[arg-type]
                    mismatches.append(Mismatch("standard", u, ctx, f, f in annex, ours, why))
    assert not mismatches, _report(mismatches, total)


BALANCED = [e for e in EXPRESSIONS if "balanced" in e[0]]


@pytest.mark.slow
@pytest.mark.parametrize("threshold", [0.9, 0.5])
def test_rebalance_matches_git_annex(scenario: Scenario, tmp_path: Path, threshold: float) -> None:
    extra = ["--rebalance", "-c", f"annex.fullybalancedthreshhold={int(threshold * 100)}"]
    mismatches, total = _run_parallel(
        scenario, tmp_path, BALANCED, extra=extra, rebalance=True, threshold=threshold, drop=False
    )
    assert not mismatches, _report(mismatches, total)


def test_unparsable_branch_expression_behaves_like_present(
    scenario: Scenario, tmp_path: Path
) -> None:
    """An expression git-annex cannot parse (written by a "newer version") acts as `present`;
    an unparsable *required* expression poisons preferred content as well."""
    repo = tmp_path / "unparsable"
    shutil.copytree(scenario.repo, repo, symlinks=True)
    env = scenario.env.env
    _annex(repo, env, "wanted", "r1", "include=*.bin")
    _annex(repo, env, "wanted", "r4", "include=*.bin")
    _annex(repo, env, "required", "r4", "copies=1")
    branch = read_branch(repo, env)
    journal = repo / ".git" / "annex" / "journal"
    journal.mkdir(exist_ok=True)
    pc = (
        branch.text("preferred-content.log")
        + f"{R1} include=*.bin futureterm=1 timestamp=1800000000s\n"
    )
    (journal / "preferred-content.log").write_text(pc)
    rc = branch.text("required-content.log") + f"{R4} newthing timestamp=1800000000s\n"
    (journal / "required-content.log").write_text(rc)
    snap = scenario.snapshot(repo)
    ev = Evaluator(snap.world)
    assert ev.matcher_info(R1).status == "unparsable"
    mismatches = []
    for u in (R1, R4):
        for ctx, opt in (("get", "--want-get-by"), ("drop", "--want-drop-by")):
            annex = _find(repo, env, f"{opt}={u}")
            for f in scenario.files:
                facts = scenario.facts(snap, f)
                ours = ev.wants_get(u, facts) if ctx == "get" else ev.wants_drop(u, facts)
                if ours != (f in annex):
                    mismatches.append(Mismatch("<unparsable>", u, ctx, f, f in annex, ours, ""))
    assert not mismatches, _report(mismatches, 0)


KEY_ONLY_EXPRESSIONS = [
    "copies=2",
    "lackingcopies=1",
    "largerthan=100 or smallerthan=5",
    "present",
    "balanced=g",
    "fullybalanced=g:2",
    "sizebalanced=g",
    "metadata=tag=FOO",
    "url=https://*",
    "unused",
    "not present",
    "standard or groupwanted",
]


def test_key_only_matchexpression(scenario: Scenario) -> None:
    """``git annex matchexpression --key`` (here = main, no file; standard/groupwanted match
    everything there) against ``Evaluator.evaluate(..., expand_groups=False)``."""
    snap = scenario.snapshot()
    ev = Evaluator(snap.world)
    keys = sorted({k for k in scenario.files.values() if "-s" in k.split("--")[0]})[:14]
    real = {scenario.files[f] for f in scenario.present_here}
    mismatches = []
    for expr in KEY_ONLY_EXPRESSIONS:
        for key in keys:
            res = subprocess.run(
                ["git", "annex", "matchexpression", f"--key={key}", expr],
                cwd=scenario.repo,
                env=scenario.env.env,
                capture_output=True,
                timeout=60,
            )
            assert res.returncode in (0, 1), res.stderr.decode()
            facts = snap.facts(key, None, local_present=key in real)
            ours = ev.evaluate(expr, MAIN, facts, expand_groups=False)
            if ours != (res.returncode == 0):
                mismatches.append(Mismatch(expr, MAIN, "matchexpression", key,
                                           res.returncode == 0, ours, ""))  # fmt: skip
    assert not mismatches, _report(mismatches, 0)


def test_key_only_exclude_is_true_include_false(scenario: Scenario, tmp_path: Path) -> None:
    """With no associated file (sync --content --all on an unused key) git-annex treats
    `exclude=GLOB` as true and `include=GLOB` as false (the docs say both are false)."""
    repo = tmp_path / "keyonly"
    shutil.copytree(scenario.repo, repo, symlinks=True)
    env = scenario.env.env
    keys = annex_support.add_files(repo, {"gone1.txt": "gone one\n", "gone2.txt": "gone two\n"},
                                   env=env)  # fmt: skip
    annex_support.git(repo, "rm", "-q", "gone1.txt", "gone2.txt", env=env)
    annex_support.git(repo, "commit", "-q", "-m", "rm", env=env)
    for name, _ in REMOTES.items():
        _annex(repo, env, "wanted", name, "nothing")
    for name in STANDARD_REMOTES:
        _annex(repo, env, "wanted", name, "nothing")
    _annex(repo, env, "wanted", "r2", "exclude=zzz")
    _annex(repo, env, "wanted", "r3", "include=*")
    subprocess.run(["git", "annex", "sync", "--content", "--all", "r2", "r3"], cwd=repo, env=env,
                   capture_output=True, timeout=120)  # fmt: skip
    snap = scenario.snapshot(repo)
    ev = Evaluator(snap.world)
    for key in keys.values():
        facts = snap.facts(key, None)
        assert (R2 in snap.locations[key]) is True
        assert (R3 in snap.locations[key]) is False
        # our decision for the same key-only check (before the copy was made)
        before = KeyFacts(key, locations=frozenset({MAIN}))
        assert ev.wants_get(R2, before) is True
        assert ev.wants_get(R3, before) is False
        assert facts.file is None
