"""Repositories in the states a process killed between an object and its log line leaves.

`lose_copy_mid_remove`: a removal killed between its unlink and its log line. The object file
is gone; the key directory stays with the removal's lock file in it (its holder died before it
could unlink it); no location log was touched, so the repository's own log (and anyone
else's) still says it holds the key: a phantom copy.

`unlog_copy_mid_store`: a store killed between moving the object in and logging it: the
object is here and the repository's own log does not say so (an uncounted copy).
"""

from __future__ import annotations

from pathlib import Path

from annextui.backend.keys import parse_key
from annextui.proxycore.localrepo import LocalRepo
from tests.support.annex import AnnexEnv


def lose_copy_mid_remove(repo: Path, key: str) -> None:
    kp = LocalRepo.open(str(repo)).store.present(parse_key(key))
    assert kp is not None, f"{key} is not in {repo}"
    kp.dir.chmod(0o755)
    kp.lck.touch()
    kp.object.unlink()


def unlog_copy_mid_store(env: AnnexEnv, repo: Path, key: str) -> None:
    """The state a store killed between moving the object in and logging it leaves, after an
    earlier removal: the object is here, the repository's own log says "missing" (git-annex
    itself writes that line: `setpresentkey KEY UUID 0`), committed to the branch."""
    uuid = env.git(repo, "config", "annex.uuid")
    env.annex(repo, "setpresentkey", key, uuid, "0")
    env.annex(repo, "merge", "-q")  # commits the journal setpresentkey leaves
    assert LocalRepo.open(str(repo)).store.present(parse_key(key)) is not None
