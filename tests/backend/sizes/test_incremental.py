"""The incremental size cache always equals a cold scan (hypothesis over random histories)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from annextui.backend.journalpath import journal_name
from annextui.backend.keys import location_log_path
from annextui.backend.repo import Repository
from annextui.backend.sizes import diff, key_locations, repo_sizes
from tests.backend.sizes.test_repo_sizes import commit_branch_files

UUIDS = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, 7)]
KEYS = [f"SHA256E-s{(i * 7919) % 5000}--{i:064x}" for i in range(30)] + [
    "WORM-m1--no:size",
    "URL--http://x/y",
]
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}

line = st.tuples(
    st.integers(100, 104),  # few clocks: plenty of ties
    st.sampled_from(["0", "1", "1", "X"]),
    st.sampled_from(UUIDS),
)
log = st.lists(line, min_size=0, max_size=4).map(
    lambda ls: "".join(f"{c}s {s} {u}\n" for c, s, u in ls).encode()
)
change = st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), log), min_size=1, max_size=6)
step = st.tuples(st.sampled_from(["commit", "commit", "journal", "ref"]), change)


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], env=ENV, capture_output=True)
    return out.stdout.decode().strip()


def _commit_ref(repo: Path, ref: str, files: dict[str, bytes | None]) -> None:
    """Commit `files` onto `ref` (an unmerged remote git-annex branch), starting from the
    current git-annex branch the first time."""
    saved = _git(repo, "rev-parse", "refs/heads/git-annex")
    start = _git(repo, "rev-parse", "-q", "--verify", ref) or saved
    _git(repo, "update-ref", "refs/heads/git-annex", start)
    try:
        commit_branch_files(repo, ENV, files)
        _git(repo, "update-ref", ref, _git(repo, "rev-parse", "refs/heads/git-annex"))
    finally:
        _git(repo, "update-ref", "refs/heads/git-annex", saved)


def _reference(repo: Repository) -> dict[str, tuple[int, int]]:
    """Brute force through BranchView.read for every location log anywhere (the spec's
    definition), independent of the scan and overlay code."""
    from annextui.backend.branch import BranchView
    from annextui.backend.journalpath import branch_path
    from annextui.backend.logs.presence import present_infos
    from annextui.backend.sizes import key_size_of_path

    view = BranchView(repo)
    paths: set[str] = set()
    for commit in [view.head, *(r.sha for r in view.unmerged)]:
        if commit is not None:
            paths.update(p for p, _s in view.iter_tree_files(commit))
    for d in (view.journal_dir, view.private_dir):
        if d.is_dir():
            paths.update(branch_path(f.name) for f in d.iterdir())
    out: dict[str, list[int]] = {}
    for p in paths:
        if p.count("/") != 2 or not p.endswith(".log"):
            continue
        for u in present_infos(view.read(p)):
            acc = out.setdefault(u, [0, 0])
            acc[0] += 1
            acc[1] += key_size_of_path(p.encode())
    return {u: (c, b) for u, (c, b) in out.items() if c or b}


def _sizes(repo: Repository, *, use_cache: bool) -> dict[str, tuple[int, int]]:
    s = repo_sizes(repo, use_cache=use_cache)
    return {u: (x.keys, x.size) for u, x in s.repos.items() if x.keys or x.size}


def _locations(repo: Repository, *, use_cache: bool) -> dict[str, frozenset[str]]:
    kl = key_locations(repo, use_cache=use_cache)
    return {kl.key_of(p): kl.uuids_of(m) for p, m in kl.items()}


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=6), budget=st.sampled_from([1, 20_000]))
def test_incremental_equals_cold(
    steps: list[tuple[str, dict[str, bytes | None]]], budget: int
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sizes-inc-"))
    old_budget = diff.DIFF_OBJECT_BUDGET
    diff.DIFF_OBJECT_BUDGET = budget  # 1: every diff goes through git diff-tree
    try:
        subprocess.run(["git", "init", "-q", str(tmp)], env=ENV, check=True)
        commit_branch_files(tmp, ENV, {"uuid.log": f"{UUIDS[0]} first timestamp=1s\n".encode()})
        journal = tmp / ".git" / "annex" / "journal"
        journal.mkdir(parents=True)
        repo = Repository(tmp)
        _locations(repo, use_cache=True)  # a snapshot exists: refreshes must keep its delta
        for kind, files in steps:
            if kind == "commit":
                commit_branch_files(tmp, ENV, {location_log_path(k): v for k, v in files.items()})
            elif kind == "ref":
                _commit_ref(
                    tmp,
                    "refs/remotes/other/git-annex",
                    {location_log_path(k): v for k, v in files.items()},
                )
            else:
                for k, v in files.items():
                    (journal / journal_name(location_log_path(k))).write_bytes(v or b"")
            repo = Repository(tmp)
            got = _sizes(repo, use_cache=True)
            assert got == _sizes(repo, use_cache=False)
            assert got == _reference(repo)
            assert _locations(repo, use_cache=True) == _locations(repo, use_cache=False)
            repo.git.close()
    finally:
        diff.DIFF_OBJECT_BUDGET = old_budget
        shutil.rmtree(tmp, ignore_errors=True)
