"""`BranchView.follow_branch`: a long-lived view (a gateway session) reads the git-annex ref
again only when its file or packed-refs changed, and must still see every move git and
git-annex make: commits by git-annex, rapid `git update-ref`s (same size, same clock tick),
refs packed into packed-refs and moved while packed."""

from __future__ import annotations

from pathlib import Path

import pytest

from annextui.backend.branch import AnnexRef, BranchView
from annextui.backend.repo import Repository
from tests.support.annex import AnnexEnv

UUID = "40de0000-0000-4000-8000-000000000001"
KEY = "SHA256E-s1--" + "a" * 64 + ".bin"


def _tip(env: AnnexEnv, repo: Path) -> bytes:
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


def _unmerged(view: BranchView) -> dict[str, str]:
    return {r.name.decode(): r.sha.decode() for r in view.unmerged}


def test_follow_sees_unmerged_refs_come_move_and_go(
    annex_env: AnnexEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`BranchView.follow` (a server's view kept between requests) lists the `*/git-annex`
    refs again whenever one appears (in a new directory or an existing one), moves, is packed
    or deleted, and not while nothing changed."""
    import time

    from annextui.backend import refstamp

    env = annex_env
    path = env.make_annex_repo("gw.git", bare=True)
    tree = env.git(path, "mktree", input="")
    a = env.git(path, "commit-tree", tree, "-m", "a")  # no parent: never merged
    b = env.git(path, "commit-tree", tree, "-m", "b")
    env.git(path, "update-ref", "refs/remotes/one/git-annex", a)
    view = BranchView(Repository(path))
    listings: list[int] = []
    listed = view._unmerged_refs

    def counted() -> list[AnnexRef]:
        listings.append(1)
        return listed()

    monkeypatch.setattr(view, "_unmerged_refs", counted)
    assert _unmerged(view) == {"refs/remotes/one/git-annex": a}
    # nothing changes: once the listing is older than the coarse-clock margin, no listing
    time.sleep(refstamp.RACY_NS / 1e9 * 1.5)
    view.follow()  # the changes were too close to the first listing to trust: listed again
    listings.clear()
    for _ in range(3):
        view.follow()
    assert listings == []
    assert _unmerged(view) == {"refs/remotes/one/git-annex": a}
    # a new remote's ref (a new directory), then one beside an existing ref
    env.git(path, "update-ref", "refs/remotes/two/git-annex", b)
    view.follow()
    assert _unmerged(view) == {"refs/remotes/one/git-annex": a, "refs/remotes/two/git-annex": b}
    env.git(path, "update-ref", "refs/remotes/one/other/git-annex", b)
    view.follow()
    assert sorted(_unmerged(view).values()) == sorted([a, b])  # one ref per sha
    env.git(path, "update-ref", "-d", "refs/remotes/two/git-annex")
    view.follow()
    assert _unmerged(view) == {
        "refs/remotes/one/git-annex": a,
        "refs/remotes/one/other/git-annex": b,
    }
    # rapid moves of one ref, each seen at once
    for i in range(20):
        want = a if i % 2 else b
        env.git(path, "update-ref", "refs/remotes/one/git-annex", want)
        view.follow()
        assert _unmerged(view)["refs/remotes/one/git-annex"] == want, i
    # packed (the loose files go), moved while packed, then merged (git-annex's list)
    env.git(path, "pack-refs", "--all")
    view.follow()
    assert _unmerged(view)["refs/remotes/one/git-annex"] == a
    env.git(path, "update-ref", "refs/remotes/one/git-annex", b)
    env.git(path, "pack-refs", "--all")
    view.follow()
    assert sorted(_unmerged(view).values()) == [b]  # one ref per sha: both at b now
    env.git(path, "update-ref", "refs/remotes/one/git-annex", a)
    view.follow()
    assert _unmerged(view)["refs/remotes/one/git-annex"] == a
    (path / "annex" / "mergedrefs").write_text(f"{a}\trefs/remotes/one/git-annex\n")
    view.follow()
    assert _unmerged(view) == {"refs/remotes/one/other/git-annex": b}
