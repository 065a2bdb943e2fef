"""A repository in the state a removal killed between its unlink and its log line leaves.

The object file is gone; the key directory stays with the removal's lock file in it (its
holder died before it could unlink it); no location log was touched, so the repository's own
log (and anyone else's) still says it holds the key: a phantom copy.
"""

from __future__ import annotations

from pathlib import Path

from annextui.backend.keys import parse_key
from annextui.proxycore.localrepo import LocalRepo


def lose_copy_mid_remove(repo: Path, key: str) -> None:
    kp = LocalRepo.open(str(repo)).store.present(parse_key(key))
    assert kp is not None, f"{key} is not in {repo}"
    kp.dir.chmod(0o755)
    kp.lck.touch()
    kp.object.unlink()
