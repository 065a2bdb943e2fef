"""backend/catfile.py: blobs read through one `git cat-file --batch`, by path or below the
root's subdirectory trees (`by_subtree`), judged by git itself (`git cat-file blob`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from annextui.backend.catfile import CatFile
from annextui.backend.repo import Repository
from tests.support.annex import AnnexEnv

U = "ca7f11e0-0000-4000-8000-000000000001"


def _git(env: AnnexEnv, repo: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={repo}", *args], env=env.env, capture_output=True, check=True
    ).stdout


def _reader(gitdir: Path, *, by_subtree: bool) -> CatFile:
    return CatFile(Repository.from_layout(gitdir, gitdir, {}), by_subtree=by_subtree)


def _compare(env: AnnexEnv, gitdir: Path, commit: bytes, absent: list[str]) -> int:
    """Every file of `commit` and the `absent` paths, read both ways: git's answers."""
    listed = _git(env, gitdir, "ls-tree", "-r", "-z", "--name-only", commit.decode())
    files = [f.decode() for f in listed.split(b"\0") if f]
    dirs = {f.rsplit("/", 1)[0] for f in files if "/" in f}
    for by_subtree in (False, True):
        reader = _reader(gitdir, by_subtree=by_subtree)
        try:
            for path in files:
                want = _git(env, gitdir, "cat-file", "blob", f"{commit.decode()}:{path}")
                assert reader.blob_at(commit, path) == want, (by_subtree, path)
            for path in [*absent, *dirs]:  # no such file, or a directory: no blob
                assert reader.blob_at(commit, path) is None, (by_subtree, path)
        finally:
            reader.close()
    return len(files)


def test_the_git_annex_branch_read_both_ways(annex_env: AnnexEnv) -> None:
    repo = annex_env.make_annex_repo("r", U, "here")
    annex_env.add_files(repo, {f"f{i}.txt": f"content {i}\n" for i in range(12)})
    gitdir = repo / ".git"
    commit = _git(annex_env, gitdir, "rev-parse", "git-annex").strip()
    absent = ["nope.log", "zzz/nothing.log", "zzz/yyy/nothing.log", "uuid.log/x"]
    assert _compare(annex_env, gitdir, commit, absent) > 12  # location logs and top level


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
def test_subtrees_of_either_object_format(annex_env: AnnexEnv, object_format: str) -> None:
    """The root's entries are read with the format's hash size (20 or 32 bytes)."""
    gitdir = annex_env.root / f"{object_format}.git"
    subprocess.run(
        ["git", "init", "-q", "--bare", f"--object-format={object_format}", str(gitdir)],
        env=annex_env.env,
        check=True,
    )
    work = annex_env.root / f"{object_format}-work"
    for path in ("top.log", "a b/c/one.log", "a b/two.log", "d/e/f/deep.log", "é/ü.log"):
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(f"{path}\n")
    env = {**annex_env.env, "GIT_DIR": str(gitdir), "GIT_WORK_TREE": str(work)}
    subprocess.run(["git", "add", "-A"], env=env, check=True, cwd=work)
    subprocess.run(["git", "commit", "-qm", "x"], env=env, check=True, cwd=work)
    commit = _git(annex_env, gitdir, "rev-parse", "HEAD").strip()
    assert len(commit) == (40 if object_format == "sha1" else 64)
    assert _compare(annex_env, gitdir, commit, ["a b/none", "x/y", "d/e/none.log"]) == 5
