"""`BranchView.follow_branch`: a long-lived view (a gateway session) reads the git-annex ref
again only when its file or packed-refs changed, and must still see every move git and
git-annex make: commits by git-annex, rapid `git update-ref`s (same size, same clock tick),
refs packed into packed-refs and moved while packed."""

from __future__ import annotations

from annextui.backend.branch import BranchView
from annextui.backend.repo import Repository
from tests.support.annex import AnnexEnv

UUID = "40de0000-0000-4000-8000-000000000001"
KEY = "SHA256E-s1--" + "a" * 64 + ".bin"


def _tip(env: AnnexEnv, repo: object) -> bytes:
    return env.git(repo, "rev-parse", "refs/heads/git-annex").encode()


def test_follow_branch_sees_every_move(annex_env: AnnexEnv) -> None:
    env = annex_env
    path = env.make_annex_repo("gw.git", bare=True)
    view = BranchView(Repository(path))
    first = view.head
    assert first == _tip(env, path)
    # git-annex commits a change: a new ref file renamed into place
    env.annex(path, "setpresentkey", KEY, UUID, "1")
    env.annex(path, "merge", "-q")
    view.follow_branch()
    second = _tip(env, path)
    assert second != first
    assert view.head == second
    # unchanged: still the same answer
    view.follow_branch()
    assert view.head == second
    # rapid moves between two commits: the ref file keeps its size and, often, its mtime
    assert first is not None
    for i in range(30):
        want = first if i % 2 == 0 else second
        env.git(path, "update-ref", "refs/heads/git-annex", want.decode())
        view.follow_branch()
        assert view.head == want, i
    # the same from this process (dulwich, as our journal commits): microseconds apart
    refs = Repository(path).git.refs
    for i in range(30):
        want = first if i % 2 == 0 else second
        refs[b"refs/heads/git-annex"] = want
        view.follow_branch()
        assert view.head == want, i
    # packed: the loose file goes away, packed-refs holds it
    env.git(path, "update-ref", "refs/heads/git-annex", second.decode())
    env.git(path, "pack-refs", "--all")
    assert not (path / "refs" / "heads" / "git-annex").exists()
    view.follow_branch()
    assert view.head == second
    # moved and packed again before the next look: only packed-refs changed
    env.git(path, "update-ref", "refs/heads/git-annex", first.decode())
    env.git(path, "pack-refs", "--all")
    view.follow_branch()
    assert view.head == first
    env.git(path, "update-ref", "refs/heads/git-annex", second.decode())
    env.git(path, "pack-refs", "--all")
    view.follow_branch()
    assert view.head == second
    # moved while packed (the loose file comes back), then packed again
    env.git(path, "update-ref", "refs/heads/git-annex", first.decode())
    view.follow_branch()
    assert view.head == first
    env.git(path, "pack-refs", "--all")
    env.git(path, "update-ref", "refs/heads/git-annex", second.decode())
    env.git(path, "pack-refs", "--all")
    view.follow_branch()
    assert view.head == second
