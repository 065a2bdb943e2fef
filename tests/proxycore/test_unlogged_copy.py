"""PUT of content already here while this repository's own log does not say so.

A store killed between moving the object in and logging it present (ours, or git-annex's
storeContent before setPresent) leaves an uncounted copy. git-annex-shell answers a later PUT
ALREADY-HAVE and logs nothing: the copy stays uncounted by its own repository's log until a
`git annex fsck` there. Ours answers the same and logs it present. git-annex judges every
outcome in the repository itself (`whereis`, `fsck`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import annextui
from annextui.proxycore.peer import AlreadyHave
from tests.proxycore import test_shell as shell
from tests.proxycore.test_local import CLIENT, U, _peer, _store
from tests.proxycore.test_lost_copy import twins_answer_alike
from tests.support.annex import AnnexEnv
from tests.support.journalrace import while_journal_locked
from tests.support.lostcopy import unlog_copy_mid_store
from tests.support.unwritable import tree_fingerprint


def _whereis(env: AnnexEnv, repo: Path, key: str) -> set[str]:
    recs = env.annex_json(repo, "whereis", "--key", key, check=False)
    return {w["uuid"] for r in recs for w in r.get("whereis", [])}


def test_the_shells_answer_alike_and_only_ours_logs_the_copy(annex_env: AnnexEnv) -> None:
    def spoil(repo: Path, key: str) -> None:
        unlog_copy_mid_store(annex_env, repo, key)
        assert _whereis(annex_env, repo, key) == set()

    theirs_repo, ours_repo, key, ours = twins_answer_alike(
        annex_env, spoil, lambda key: f"PUT small.txt {key}\nCHECKPRESENT {key}"
    )
    assert ours[1].splitlines()[1:] == ["VERSION 4", "ALREADY-HAVE", "SUCCESS"]
    assert _whereis(annex_env, theirs_repo, key) == set()  # upstream leaves it uncounted
    assert _whereis(annex_env, ours_repo, key) == {shell.U}
    said = annex_env.annex(ours_repo, "fsck", "--key", key, check=False)
    assert "fixing location log" not in said.stdout + said.stderr


def test_a_logged_copy_is_not_logged_again(annex_env: AnnexEnv) -> None:
    """The usual ALREADY-HAVE writes nothing: no journal file, the branch untouched."""
    bare = annex_env.make_annex_repo("srv.git", U, "served", bare=True)
    peer = _peer(bare)
    key = _store(peer, b"logged as it should be\n")
    peer.close()
    before = tree_fingerprint(bare)
    peer = _peer(bare)
    assert isinstance(peer.put(key, None), AlreadyHave)
    peer.close()
    assert tree_fingerprint(bare) == before
    assert _whereis(annex_env, bare, str(key)) == {U}


def test_a_read_only_repository_answers_as_git_annex_shell(
    annex_env: AnnexEnv, unprivileged: list[str]
) -> None:
    """The log cannot be corrected where the journal cannot be written: the answer is still
    ALREADY-HAVE (a warning says why the log stays), and nothing is written."""
    *_, ours = twins_answer_alike(
        annex_env,
        lambda repo, key: unlog_copy_mid_store(annex_env, repo, key),
        lambda key: f"PUT small.txt {key}",
        unprivileged=unprivileged,
    )
    assert ours[1].splitlines()[1:] == ["VERSION 4", "ALREADY-HAVE"]
    assert "location log was not fixed" in ours[2], ours[2]


# Holds the journal lock until told, then removes the object and logs it missing, as a
# removal does (unlink first, then the "missing" line under the journal lock).
_REMOVER = textwrap.dedent(
    """
    import sys
    from annextui.backend.journal import journal_lock
    from annextui.backend.keys import parse_key
    from annextui.proxycore.local import LocalPeer
    from annextui.proxycore.localrepo import LocalRepo

    repo, key, client = sys.argv[1:]
    peer = LocalPeer(LocalRepo.open(repo), client_uuid=client)
    kp = peer.store.present(parse_key(key))
    with journal_lock(peer.journal.repo):
        print("locked", flush=True)
        sys.stdin.readline()
        kp.dir.chmod(0o755)
        kp.object.unlink()
        peer.log_presence(parse_key(key), present=False)
        print("removed", flush=True)
    peer.close()
    """
)


def test_a_removal_landing_while_the_put_waits_to_log_wins(annex_env: AnnexEnv) -> None:
    """The PUT found the content here and its log silent; a removal unlinks it while the PUT
    waits for the journal lock: the PUT must not log a copy that is gone (a phantom)."""
    bare = annex_env.make_annex_repo("srv.git", U, "served", bare=True)
    peer = _peer(bare)
    key = _store(peer, b"removed while the put waits\n")
    peer.close()
    unlog_copy_mid_store(annex_env, bare, str(key))

    env = {**annex_env.env, "PYTHONPATH": str(Path(annextui.__file__).parents[1])}
    putter = _peer(bare)
    answer = while_journal_locked(
        bare / "annex" / "journal.lck",
        _REMOVER,
        [str(bare), str(key), CLIENT],
        env,
        lambda: putter.put(key, None),
    )
    assert isinstance(answer, AlreadyHave), answer
    putter.close()

    assert _whereis(annex_env, bare, str(key)) == set()
    said = annex_env.annex(bare, "fsck", "--key", str(key), check=False)
    assert "fixing location log" not in said.stdout + said.stderr
