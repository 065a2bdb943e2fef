"""A LocalPeer session's look-ups of its own location log: one `git cat-file --batch`, owned
by the session (proxycore/branchreads.py).

Every `git` the shell or the peer runs goes through a recording wrapper on PATH
(tests/support/gitrecorder.py): how many `git cat-file` ran, and which requests the batch
process was asked. git-annex judges the repository (`whereis`, `fsck`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from annextui.backend.keys import Key, location_log_path
from annextui.proxycore.peer import Outcome
from tests.proxycore import test_shell as shell
from tests.proxycore.test_local import CLIENT, U, _peer, _store
from tests.support import procs
from tests.support.annex import AnnexEnv
from tests.support.gitrecorder import GitRecorder, write_git_recorder
from tests.support.lostcopy import lose_copy_mid_remove

LOOKS = 20


@pytest.fixture
def bare(annex_env: AnnexEnv) -> Path:
    return annex_env.make_annex_repo("srv.git", U, "served", bare=True)


@pytest.fixture
def recorder(annex_env: AnnexEnv) -> GitRecorder:
    return write_git_recorder(annex_env.root / "git-recorder", annex_env.env["PATH"])


def _stored(bare: Path, count: int, tag: str) -> list[Key]:
    peer = _peer(bare)
    keys = [_store(peer, f"{tag} {i}\n".encode()) for i in range(count)]
    peer.close()
    return keys


def _present_anywhere(env: AnnexEnv, repo: Path) -> list[str]:
    said = env.annex_json(repo, "whereis", "--all", check=False)
    return [r["key"] for r in said if r["whereis"]]


def _fsck_clean(env: AnnexEnv, repo: Path) -> None:
    """git-annex finds no location log to fix (it still fails: no copy of the keys is left)."""
    res = env.annex(repo, "fsck", "--all", check=False)
    said = res.stdout + res.stderr
    assert "fixing location log" not in said, said
    assert "expected to be present" not in said, said


def _asked_for(recorder: GitRecorder, keys: list[Key]) -> None:
    """Exactly one `git cat-file` ran, a `--batch`, asked each key's log once (below its
    hash directory's tree: `TREE:bbb/KEY.log`), and the branch's root tree at most once per
    commit (`COMMIT^{tree}`)."""
    runs = recorder.cat_files()
    assert len(runs) == 1, runs
    assert runs[0][1].endswith("cat-file --batch"), runs
    asked = recorder.batch_requests()
    logs = [line.split(":", 1)[1] for line in asked if ":" in line]
    assert sorted(logs) == sorted(location_log_path(k).split("/", 1)[1] for k in keys)
    roots = [line for line in asked if line.endswith("^{tree}")]
    assert len(roots) == len(set(roots)) >= 1, roots
    assert len(asked) == len(logs) + len(roots), asked


def test_a_session_of_many_phantoms_reads_through_one_cat_file(
    annex_env: AnnexEnv, bare: Path, recorder: GitRecorder
) -> None:
    """Many REMOVEs of content lost mid-removal (the log still says "present") in one shell
    session: every phantom corrected, every look through the one batch process."""
    keys = _stored(bare, LOOKS, "lost")
    for key in keys:
        lose_copy_mid_remove(bare, str(key))
    assert len(_present_anywhere(annex_env, bare)) == LOOKS  # the phantoms
    env = dict(annex_env.env, PATH=recorder.path(annex_env.env["PATH"]))
    session = b"VERSION 4\n" + b"".join(f"REMOVE {k}\n".encode() for k in keys)
    rc, out, err = shell._run([*shell.OURS, "p2pstdio", str(bare), CLIENT], env, session)
    assert (rc, out.splitlines()[1:]) == (0, ["VERSION 4", *["SUCCESS"] * LOOKS]), err
    _asked_for(recorder, keys)
    assert _present_anywhere(annex_env, bare) == []
    _fsck_clean(annex_env, bare)


_SHELL_THEN_MODULES = (
    "import sys\n"
    "from annextui.proxycore.shell import main\n"
    "rc = main(sys.argv[1:])\n"
    "sys.stderr.write('DULWICH=%s\\n' % ('dulwich' in sys.modules))\n"
    "sys.exit(rc)\n"
)


def test_looks_that_correct_nothing_import_no_dulwich(
    annex_env: AnnexEnv, bare: Path, recorder: GitRecorder
) -> None:
    """REMOVEs of content removed properly before (the log says "missing"): each looks at
    the log and writes nothing; the session never imports dulwich and runs one `git
    cat-file` (not one per look, nor dulwich after a few)."""
    keys = _stored(bare, LOOKS, "removed")
    peer = _peer(bare)
    for key in keys:
        assert peer.remove(key) == Outcome(True)
    peer.close()
    env = dict(annex_env.env, PATH=recorder.path(annex_env.env["PATH"]))
    session = b"VERSION 4\n" + b"".join(f"REMOVE {k}\n".encode() for k in keys)
    p = subprocess.run(
        [sys.executable, "-c", _SHELL_THEN_MODULES, "p2pstdio", str(bare), CLIENT],
        input=session,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert (p.returncode, p.stdout.decode().splitlines()[1:]) == (
        0,
        ["VERSION 4", *["SUCCESS"] * LOOKS],
    ), p.stderr
    assert b"DULWICH=False\n" in p.stderr, p.stderr
    _asked_for(recorder, keys)
    assert not (bare / "annex" / "journal").is_dir() or not any(
        (bare / "annex" / "journal").iterdir()
    )
    assert _present_anywhere(annex_env, bare) == []
    _fsck_clean(annex_env, bare)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _batch_processes(bare: Path) -> list[procs.ProcInfo]:
    return [p for p in procs.mentioning(str(bare)) if "cat-file" in p.argv]


def test_the_reader_ends_with_the_session_and_a_parked_peer_keeps_none(
    annex_env: AnnexEnv, bare: Path, recorder: GitRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process: the batch process lives while the session looks, `park` (a server's
    pool) ends it, the peer reused starts another at its next look, `close` ends that."""
    keys = _stored(bare, 6, "parked")
    for key in keys:
        lose_copy_mid_remove(bare, str(key))
    monkeypatch.setenv("PATH", recorder.path(annex_env.env["PATH"]))
    peer = _peer(bare)
    for key in keys[:3]:
        assert peer.remove(key) == Outcome(True)
    [(first, _)] = recorder.cat_files()
    assert _alive(first)
    assert peer.park()
    assert not _alive(first)
    assert _batch_processes(bare) == []
    for key in keys[3:]:
        assert peer.remove(key) == Outcome(True)
    (_, _), (second, _) = recorder.cat_files()
    assert second != first
    assert _alive(second)
    peer.close()
    assert not _alive(second)
    assert _batch_processes(bare) == []
    assert _present_anywhere(annex_env, bare) == []
    _fsck_clean(annex_env, bare)


def test_a_look_sees_what_another_process_committed_meanwhile(
    annex_env: AnnexEnv, bare: Path
) -> None:
    """The session's view of the branch follows it: a "present" line git-annex commits
    after the session's first look is seen by the next look (and corrected)."""
    first, later = _stored(bare, 2, "followed")
    peer = _peer(bare)
    assert peer.remove(later) == Outcome(True)  # logged "missing", content gone
    peer.close()
    lose_copy_mid_remove(bare, str(first))
    peer = _peer(bare)
    assert peer.remove(first) == Outcome(True)  # the first look: the view is made now
    annex_env.annex(bare, "setpresentkey", str(later), U, "1")  # git-annex's own line
    annex_env.annex(bare, "merge", "-q")  # commits the journal: the branch moved
    assert set(_present_anywhere(annex_env, bare)) == {str(later)}
    assert peer.remove(later) == Outcome(True)
    peer.close()
    assert _present_anywhere(annex_env, bare) == []
    _fsck_clean(annex_env, bare)


def test_a_failing_cat_file_falls_back_to_dulwich(
    annex_env: AnnexEnv, bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `git cat-file` that dies at once: every look is answered through dulwich, every
    phantom still corrected."""
    keys = _stored(bare, 5, "fallback")
    for key in keys:
        lose_copy_mid_remove(bare, str(key))
    bin_dir = annex_env.root / "broken-cat-file"
    bin_dir.mkdir()
    real = shutil.which("git", path=annex_env.env["PATH"])
    (bin_dir / "git").write_text(
        f'#!/bin/sh\ncase " $* " in *" cat-file "*) exit 1 ;; esac\nexec {real} "$@"\n'
    )
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{annex_env.env['PATH']}")
    warnings: list[str] = []
    peer = _peer(bare, warnings)
    for key in keys:
        assert peer.remove(key) == Outcome(True)
    peer.close()
    assert warnings == []
    assert _present_anywhere(annex_env, bare) == []
    _fsck_clean(annex_env, bare)
