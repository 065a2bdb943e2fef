"""No dulwich object store is left to the interpreter's teardown (backend/repo.py's note): its
`__del__` would import there, which hung annextui-shell whenever a daemon thread had been
stopped holding the import lock. Here a store is left in its reference cycle with the
collector off, as a short shell session leaves it; at exit its packs must already be closed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXITING = """
import gc, sys
gc.disable()  # the store's cycle is not collected before the exit, as in a short session
from annextui.backend.repo import Repository
repo = Repository(sys.argv[1])
repo.git.get_object(repo.git.head())  # opens the pack
del repo  # the Repository goes; its object store stays, in a cycle
"""


def _packed_repository(where: Path) -> Path:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for argv in (
        ["git", "init", "-q", str(where)],
        ["git", "-C", str(where), "commit", "-q", "--allow-empty", "-m", "one"],
        ["git", "-C", str(where), "gc", "-q"],
    ):
        subprocess.run(argv, check=True, env=env, capture_output=True)
    assert list((where / ".git" / "objects" / "pack").glob("*.pack"))
    return where


def test_object_stores_are_closed_before_the_teardown(tmp_path: Path) -> None:
    repo = _packed_repository(tmp_path / "r")
    done = subprocess.run(
        [sys.executable, "-c", EXITING, str(repo)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # dulwich's __del__ run in the teardown says so: "Exception ignored in ... __del__"
    assert "__del__" not in done.stderr, done.stderr
