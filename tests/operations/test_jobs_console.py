"""The console's Jobs view (`j`) on a real drain: it shows the job running, `p` pauses it
(the drain process stops after the key in hand), `s` resumes it in the background and the
view follows it to done; git-annex then judges the outcome."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable

import annextui
from annextui.app import AnnexConsole
from annextui.console.source import RepositoryBackend
from annextui.screens.jobs import JobsScreen
from tests.console.support import run_app, table_rows, wait_for
from tests.operations import cluster as cl
from tests.support.annex import AnnexEnv


def _state(table: DataTable[object]) -> str:
    rows = table_rows(table)
    return rows[0][1] if rows else ""


def test_jobs_dialog_pauses_and_resumes_a_drain(annex_env: AnnexEnv, tmp_path: Path) -> None:
    c = cl.build(annex_env, tmp_path)
    content = cl.files(40)
    cl.populate(c, content, {"node1": sorted(content)})
    keys = set(c.keys.values())
    total = sum(len(v) for v in content.values())
    env = {**annex_env.env, "PYTHONPATH": str(Path(annextui.__file__).parents[1])}
    argv = [sys.executable, "-m", "annextui", "cluster", "drain", "node1", "--to", "node2",
            "-C", str(c.gw), "--bwlimit", str(max(total // 30, 1))]  # fmt: skip
    seen: list[str] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        drain = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            await pilot.press("j")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, JobsScreen)
            table = screen.query_one(DataTable)
            await wait_for(pilot, lambda: _state(table) == "running", 60, "a running job")
            seen.append("running")
            await pilot.press("p")
            await wait_for(pilot, lambda: _state(table) == "paused", 60, "the job paused")
            seen.append("paused")
            assert drain.wait(60) == 1  # paused is not done
        finally:
            if drain.poll() is None:
                drain.kill()
            drain.wait()
        await pilot.press("s")
        await wait_for(pilot, lambda: _state(table) == "done", 120, "the job done")
        seen.append("done")
        await pilot.press("escape")

    with _environ(env):  # the console's resume runs `annextui` in the test's environment
        run_app(RepositoryBackend(c.gw), scenario, check_nodes=False, timeout=300)
    assert seen == ["running", "paused", "done"]
    assert not c.objects("node1")
    assert set(c.objects("node2")) == keys
    annex_env.annex(c.gw, "fsck", "--all", "--fast", "-q", "--from", "node2")
    for rec in annex_env.annex_json(c.gw, "whereis", "--all"):
        assert cl.NODES["node1"] not in {w["uuid"] for w in rec["whereis"]}


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
