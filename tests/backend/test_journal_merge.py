"""Union merge of remote git-annex branches gives the tree git-annex's own merge gives."""

from __future__ import annotations

from pathlib import Path

from annextui.backend.journal import Journal, union_merge_lines
from annextui.backend.repo import Repository
from tests.support.annex import AnnexEnv, run


def _git(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    return run(args, cwd, env=env).stdout


def _tree(repo: Path, env: dict[str, str]) -> dict[str, str]:
    out = {}
    for path in _git(["git", "ls-tree", "-r", "--name-only", "git-annex"], repo, env).split():
        out[path] = _git(["git", "show", f"git-annex:{path}"], repo, env)
    return out


def test_union_merge_lines_keeps_an_input_that_already_has_everything() -> None:
    a = b"b\na\n"
    assert union_merge_lines(a, b"a\n") == a  # unsorted input survives when nothing is new
    assert union_merge_lines(b"b\n", b"a\nc\n") == b"a\nb\nc\n"


def test_merge_matches_git_annex(tmp_path: Path, annex_env: AnnexEnv) -> None:
    annex_env.vector_clock = 1700000000
    env = dict(annex_env.env)
    origin = tmp_path / "origin"
    _git(["git", "init", "-q", str(origin)], tmp_path, env)
    _git(["git", "annex", "init", "origin"], origin, env)
    for name in ("c1", "c2"):
        _git(["git", "clone", "-q", str(origin), str(tmp_path / name)], tmp_path, env)
        _git(["git", "annex", "init", name], tmp_path / name, env)
    # Conflicting and disjoint changes on both clones, with different clocks.
    _git(["git", "annex", "maxsize", "here", "1GB"], tmp_path / "c1", env)
    _git(["git", "annex", "group", "here", "backup"], tmp_path / "c1", env)
    env2 = {**env, "GIT_ANNEX_VECTOR_CLOCK": "1700000100"}
    _git(["git", "annex", "maxsize", "origin", "5GB"], tmp_path / "c2", env2)
    _git(["git", "annex", "numcopies", "3"], tmp_path / "c2", env2)
    _git(["git", "annex", "group", "here", "archive"], tmp_path / "c2", env2)

    twins = []
    for twin in ("real", "ours"):
        t = tmp_path / twin
        _git(["git", "clone", "-q", str(origin), str(t)], tmp_path, env)
        _git(["git", "config", "annex.uuid", "99999999-0000-4000-8000-000000000000"], t, env)
        _git(["git", "config", "annex.version", "10"], t, env)
        for name in ("c1", "c2"):
            _git(["git", "remote", "add", name, f"../{name}"], t, env)
            _git(["git", "fetch", "-q", name], t, env)
        twins.append(t)
    real, ours = twins
    # git-annex creates the branch from origin/git-annex first, then merges the others.
    _git(["git", "annex", "merge"], real, env)
    repo = Repository(ours)
    journal = Journal(repo)
    journal.ensure_branch()
    assert journal.merge() is not None
    assert _tree(ours, env) == _tree(real, env)
    log = _git(["git", "log", "--format=%s%n%P", "-1", "git-annex"], ours, env).splitlines()
    assert log[0] == "merging c1/git-annex c2/git-annex into git-annex"
    assert len(log[1].split()) == 3
    # git-annex agrees with what it reads from our merged branch.
    assert _git(["git", "annex", "numcopies"], ours, env).strip() == "3"
    # Nothing left to merge afterwards.
    assert Journal(Repository(ours)).merge() is None
