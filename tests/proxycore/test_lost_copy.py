"""REMOVE and this repository's own location log: no phantom copy, and no lost "present" line.

* A REMOVE of content that is gone while the repository's own log still says it is here (a
  removal killed between its unlink and its log line) logs it missing; git-annex's
  RemoveContent would answer success and leave the phantom until a `git annex fsck` there.
* A REMOVE of content that was never here logs nothing, as git-annex's.
* A PUT landing while a removal is about to log "missing" keeps its "present" line: the store
  moves the object in before it takes the journal lock to log, so the removal looks for the
  content only once it holds that lock. The PUT is made to land at exactly that moment: a
  helper process holds the journal lock, the REMOVE is seen blocked on it (/proc/locks), and
  the helper stores the content and logs it before letting go.

git-annex judges every outcome in the repository itself (`whereis`, `fsck`).
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import annextui
from annextui.backend.journalpath import journal_name
from annextui.backend.keys import Key, key_for_content, location_log_path, parse_key
from annextui.backend.logs.presence import present_infos
from annextui.proxycore.peer import Outcome
from tests.proxycore import test_shell as shell
from tests.proxycore.test_local import CLIENT, U, _peer, _store
from tests.support.annex import AnnexEnv
from tests.support.journalrace import while_journal_locked
from tests.support.lostcopy import lose_copy_mid_remove
from tests.support.unwritable import read_only, tree_fingerprint


@pytest.fixture
def bare(annex_env: AnnexEnv) -> Path:
    return annex_env.make_annex_repo("srv.git", U, "served", bare=True)


def _whereis(env: AnnexEnv, repo: Path, key: Key | str) -> set[str]:
    recs = env.annex_json(repo, "whereis", "--key", str(key), check=False)
    return {w["uuid"] for r in recs for w in r.get("whereis", [])}


def _fsck_says(env: AnnexEnv, repo: Path, key: Key | str) -> str:
    res = env.annex(repo, "fsck", "--key", str(key), check=False)
    return res.stdout + res.stderr


@pytest.mark.parametrize("bare_repo", [True, False], ids=["bare", "worktree"])
def test_remove_of_a_lost_copy_logs_it_missing(annex_env: AnnexEnv, bare_repo: bool) -> None:
    repo = annex_env.make_annex_repo("lost", U, "lost", bare=bare_repo)
    if bare_repo:
        peer = _peer(repo)
        key = str(_store(peer, b"lost in the middle of a removal\n"))
        peer.close()
    else:  # the "present" line is git-annex's own
        key = annex_env.add_files(repo, {"f.txt": "lost in the middle of a removal\n"})["f.txt"]
    lose_copy_mid_remove(repo, key)
    assert _whereis(annex_env, repo, key) == {U}  # the phantom

    peer = _peer(repo)
    assert peer.remove(parse_key(key)) == Outcome(True)
    peer.close()
    assert _whereis(annex_env, repo, key) == set()
    said = _fsck_says(annex_env, repo, key)
    assert "fixing location log" not in said, said
    assert "expected to be present" not in said, said
    # the dead removal's lock file and the key directory are tidied away
    assert not list(peer.store.objects.rglob(key))


def test_the_shells_answer_alike_and_only_ours_corrects_the_log(annex_env: AnnexEnv) -> None:
    """One-shot shells, side by side: the same answers on the wire (REMOVE of a lost copy is a
    success), but git-annex-shell leaves the phantom in its repository's own log (upstream's
    RemoveContent: content not here answers True and logs nothing) and ours corrects it. Ours
    reads the log here without dulwich (the line is in the branch: the journal is empty)."""

    def spoil(repo: Path, key: str) -> None:
        lose_copy_mid_remove(repo, key)
        assert _whereis(annex_env, repo, key) == {shell.U}

    theirs_repo, ours_repo, key, ours = twins_answer_alike(
        annex_env, spoil, lambda key: f"REMOVE {key}\nCHECKPRESENT {key}"
    )
    assert ours[1].splitlines()[1:] == ["VERSION 4", "SUCCESS", "FAILURE"]
    assert _whereis(annex_env, theirs_repo, key) == {shell.U}  # upstream keeps the phantom
    assert _whereis(annex_env, ours_repo, key) == set()


def test_a_read_only_repository_answers_as_git_annex_shell(
    annex_env: AnnexEnv, unprivileged: list[str]
) -> None:
    """The phantom cannot be corrected where the journal cannot be written: the answer is
    still upstream's success (a warning says why the log stays), and nothing is written."""
    *_, ours = twins_answer_alike(
        annex_env, lose_copy_mid_remove, lambda key: f"REMOVE {key}", unprivileged=unprivileged
    )
    assert ours[1].splitlines()[1:] == ["VERSION 4", "SUCCESS"]
    assert "location log was not fixed" in ours[2], ours[2]


def twins_answer_alike(
    annex_env: AnnexEnv,
    spoil: Callable[[Path, str], None],
    request: Callable[[str], str],
    *,
    unprivileged: list[str] | None = None,
) -> tuple[Path, Path, str, tuple[int, str, str]]:
    """Twin repositories (test_shell._twins) spoiled alike, asked the same request lines about
    the key by git-annex-shell and by ours: the same exit status and answers. With
    `unprivileged`: read-only, and nothing written by ours. (theirs, ours, key, our shell's
    (status, stdout, stderr))."""
    theirs_repo, ours_repo, key = shell._twins(annex_env)
    for repo in (theirs_repo, ours_repo):
        spoil(repo, key)
    session = f"VERSION 4\n{request(key)}\n".encode()
    prefix = unprivileged or []
    git_annex_shell = annex_env.git_annex_shell
    with read_only(theirs_repo, ours_repo) if unprivileged else contextlib.nullcontext():
        before = tree_fingerprint(ours_repo)
        theirs = shell._run([*prefix, git_annex_shell, "p2pstdio", str(theirs_repo),
                             shell.CLIENT], annex_env.env, session)  # fmt: skip
        ours = shell._run([*prefix, *shell.OURS, "p2pstdio", str(ours_repo), shell.CLIENT],
                          annex_env.env, session)  # fmt: skip
        if unprivileged:
            assert tree_fingerprint(ours_repo) == before
    if unprivileged:  # ours warns that it could not fix the log
        assert ours[:2] == theirs[:2], (theirs[2], ours[2])
    else:
        assert ours == theirs
    return theirs_repo, ours_repo, key, ours


def test_a_phantom_still_in_the_journal_is_corrected_by_a_one_shot_shell(
    annex_env: AnnexEnv, bare: Path
) -> None:
    """The session that stored the key died before committing (its "present" line is only
    in the journal); a new one-shot shell reads it there, without dulwich."""
    peer = _peer(bare)
    key = str(_store(peer, b"logged in the journal only\n"))  # not closed: nothing committed
    logged = bare / "annex" / "journal" / journal_name(location_log_path(parse_key(key)))
    assert U in present_infos(logged.read_bytes())  # (git-annex would commit it: not asked)
    lose_copy_mid_remove(bare, key)
    session = f"VERSION 4\nREMOVE {key}\n".encode()
    rc, out, err = shell._run([*shell.OURS, "p2pstdio", str(bare), CLIENT], annex_env.env, session)
    assert (rc, out.splitlines()[1:]) == (0, ["VERSION 4", "SUCCESS"]), err
    assert _whereis(annex_env, bare, key) == set()


def test_many_lost_copies_in_one_shell_session(annex_env: AnnexEnv, bare: Path) -> None:
    """The first few looks go through `git cat-file`, the later ones through dulwich: every
    phantom is corrected either way."""
    peer = _peer(bare)
    keys = [str(_store(peer, f"lost {i}\n".encode())) for i in range(7)]
    peer.close()
    for key in keys:
        lose_copy_mid_remove(bare, key)
    session = b"VERSION 4\n" + b"".join(f"REMOVE {k}\n".encode() for k in keys)
    rc, out, err = shell._run([*shell.OURS, "p2pstdio", str(bare), CLIENT], annex_env.env, session)
    assert (rc, out.splitlines()[1:]) == (0, ["VERSION 4", *["SUCCESS"] * len(keys)]), err
    said = annex_env.annex_json(bare, "whereis", "--all", check=False)
    assert {r["key"] for r in said} == set(keys)
    assert not [r["key"] for r in said if r["whereis"]]


def test_remove_of_content_never_here_logs_nothing(annex_env: AnnexEnv, bare: Path) -> None:
    key = key_for_content(b"never here\n", "SHA256E", ".txt")
    peer = _peer(bare)
    assert peer.remove(key) == Outcome(True)
    peer.close()
    log = annex_env.run(
        ["git", "-C", str(bare), "cat-file", "-e", f"git-annex:{location_log_path(key)}"],
        check=False,
    )
    assert log.returncode != 0  # no location log was started for it
    assert not (bare / "annex" / "journal").exists() or not any(
        (bare / "annex" / "journal").iterdir()
    )


_HELPER = textwrap.dedent(
    """
    import sys
    from annextui.backend.journal import journal_lock
    from annextui.backend.keys import parse_key
    from annextui.proxycore.local import LocalPeer
    from annextui.proxycore.localrepo import LocalRepo

    repo, key, client = sys.argv[1:]
    data = sys.stdin.buffer.readline()
    peer = LocalPeer(LocalRepo.open(repo), client_uuid=client)
    with journal_lock(peer.journal.repo):
        print("locked", flush=True)
        sys.stdin.readline()
        incoming = peer.put(parse_key(key), None)
        incoming.begin(len(data))
        incoming.write(data)
        assert incoming.finish(True).ok
        print("stored", flush=True)
    peer.close()
    """
)


@pytest.mark.parametrize("state", ["lost", "present"])
def test_a_put_landing_during_the_removal_keeps_its_present_line(
    annex_env: AnnexEnv, bare: Path, state: str
) -> None:
    """`lost`: the corrective REMOVE of a lost copy; `present`: a plain REMOVE, between its
    unlink and its log line. Either way the PUT that lands meanwhile must stay logged."""
    data = b"stored again while the removal waits\n"
    peer = _peer(bare)
    key = _store(peer, data)
    peer.close()
    if state == "lost":
        lose_copy_mid_remove(bare, str(key))

    env = {**annex_env.env, "PYTHONPATH": str(Path(annextui.__file__).parents[1])}
    remover = _peer(bare)
    outcome = while_journal_locked(
        bare / "annex" / "journal.lck",
        _HELPER,
        [str(bare), str(key), CLIENT],
        env,
        lambda: remover.remove(key),
        first_input=data.decode(),
    )
    assert outcome == Outcome(True)
    remover.close()

    assert _whereis(annex_env, bare, key) == {U}
    said = _fsck_says(annex_env, bare, key)
    assert "fixing location log" not in said, said
    assert "(checksum...) ok" in said, said
