"""Real git-annex and annextui writing the same logs at the same time never lose a line."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

from annextui.backend.branch import BranchView
from annextui.backend.clock import Clock
from annextui.backend.journal import Journal
from annextui.backend.logs import parse_map_log, parse_uuid_log, resolve_map_log, set_uuid_value
from annextui.backend.repo import Repository
from tests.support.annex import AnnexEnv

ROUNDS = 12


def _uuid(side: str, i: int) -> str:
    return f"{'a' if side == 'real' else 'b'}{i:07d}-0000-4000-8000-000000000000"


def _described(uuid: str, current: bytes) -> bytes:
    """uuid.log with `uuid` described (so either tool accepts it as a repository)."""
    return set_uuid_value(parse_uuid_log(current), uuid, f"repo {uuid[:8]}", Clock(0))


def test_concurrent_maxsize_writes_lose_nothing(tmp_path: Path, annex_env: AnnexEnv) -> None:
    env = annex_env.env  # real clock: both writers race within the same seconds
    repo_path = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo_path)], check=True, env=env)
    subprocess.run(
        ["git", "annex", "init", "r"], cwd=repo_path, check=True, env=env, capture_output=True
    )
    repo = Repository(repo_path)
    journal = Journal(repo)
    # Register the repositories both sides will size, so either tool accepts their UUIDs.
    for side in ("real", "ours"):
        for i in range(ROUNDS):
            u = _uuid(side, i)
            journal.change("uuid.log", functools.partial(_described, u))
    journal.commit()

    for i in range(ROUNDS):
        real = subprocess.Popen(
            ["git", "annex", "maxsize", _uuid("real", i), f"{i + 1}GB"],
            cwd=repo_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        ours = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "annextui",
                "maxsize",
                "-C",
                str(repo_path),
                _uuid("ours", i),
                f"{i + 1}MB",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for proc in (real, ours):
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, (out, err)

    # git-annex's own reading of the result: every write of both sides is there.
    report = subprocess.run(
        ["git", "annex", "maxsize", "--json"],
        cwd=repo_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    import json

    sizes = {r["uuid"]: r["size"]["maxsize"] for r in json.loads(report)["repositories"]}
    for i in range(ROUNDS):
        assert sizes[_uuid("real", i)] == (i + 1) * 10**9
        assert sizes[_uuid("ours", i)] == (i + 1) * 10**6
    # And ours agrees, from the committed branch plus journal.
    view = BranchView(Repository(repo_path))
    resolved = resolve_map_log(parse_map_log(view.read("maxsize.log")))
    assert len([u for u in resolved if u[0] in "ab"]) == 2 * ROUNDS
    fsck = subprocess.run(
        ["git", "fsck", "--no-progress"], cwd=repo_path, env=env, capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stderr
