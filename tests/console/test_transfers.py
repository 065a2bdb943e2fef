"""Live transfers: a real `git annex copy` into the gateway shows up with growing progress and
is gone when done; our own transfer records show up too."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable

from annextui.app import AnnexConsole
from annextui.backend.demo import DemoRepo
from annextui.backend.keys import key_for_content
from annextui.console.source import RepositoryBackend
from annextui.console.transfers_source import TransferTracker
from annextui.proxycore.transfers import Direction, Transfer, TransferRecorder
from annextui.screens.transfers import TransfersScreen
from tests.console.support import plain, row_keys, run_app, table_rows, wait_for
from tests.support.annex import AnnexEnv

BIG = 24 * 1024 * 1024


def test_real_git_annex_copy_shows_live_progress(
    demo: DemoRepo, annex: AnnexEnv, tmp_path: Path
) -> None:
    client = tmp_path / "client"
    annex.git(tmp_path, "clone", "-q", demo.gateway, client)
    annex.annex(client, "init", "-q", "client")
    client_uuid = annex.git(client, "config", "annex.uuid")
    (client / "big.bin").write_bytes(os.urandom(BIG))
    annex.annex(client, "add", "-q", "big.bin")
    annex.git(client, "commit", "-q", "-m", "big")
    annex.git(client, "config", "remote.origin.annex-bwlimit", "6MiB")  # ~4 s
    seen: list[list[str]] = []
    summaries: list[str] = []
    result: dict[str, Any] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("6")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TransfersScreen)
        table = screen.query_one(DataTable)
        proc = subprocess.Popen(
            ["git", "annex", "copy", "--to", "origin", "big.bin"],
            cwd=client,
            env=annex.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            await wait_for(pilot, lambda: table.row_count > 0, timeout=60, what="a transfer row")
            result["key"] = row_keys(table)[0]
            while proc.poll() is None:
                rows = table_rows(table)
                if rows:
                    seen.append(rows[0])
                    summaries.append(plain(screen.query_one("#transfers-summary")))
                await pilot.pause(0.2)
            await wait_for(pilot, lambda: table.row_count == 0, timeout=10, what="row gone")
            result["empty"] = plain(screen.query_one("#transfers-empty"))
        finally:
            out = proc.communicate(timeout=120)[0]
            result["rc"] = proc.returncode
            result["out"] = out.decode(errors="replace")

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False, timeout=180)
    assert result["rc"] == 0, result["out"]
    gw = demo.uuids["gateway"]
    assert str(result["key"]).startswith(f"{gw}:download:{client_uuid}:SHA256E-s{BIG}--")
    percents = [int(r[5].rstrip("%")) for r in seen if r[5].endswith("%")]
    assert len(percents) >= 3, seen
    assert percents == sorted(percents), percents
    assert percents[-1] > percents[0], percents
    row = seen[-1]
    assert row[0] == "↓"
    assert row[1] == "gateway"
    assert row[2].startswith(client_uuid[:8])
    assert row[3] == "big.bin"
    assert row[7] == "25.2 MB"
    assert any(r[8].endswith("/s") for r in seen)
    assert any("↓ 1 download" in s for s in summaries)
    assert "No transfers running" in str(result["empty"])


def test_our_transfer_records_and_pause(demo_template: DemoRepo) -> None:
    """A transfer recorded by annextui's own gateway code, in a node, sampled with rates."""
    node1 = demo_template.nodes["node1"]
    key = str(key_for_content(b"x" * 1000, "SHA256E", ".bin")).replace("s1000", "s4000000")
    t = Transfer(Direction.DOWNLOAD, demo_template.uuids["gateway"], key)
    rec = TransferRecorder.start(node1 / "annex", t, associated_file="sub/file.bin")
    assert rec is not None
    out: dict[str, Any] = {}
    try:
        rec.progress(1_000_000)
        tracker = TransferTracker({demo_template.uuids["node1"]: node1 / "annex"})
        t0 = time.time()
        first = tracker.sample(now=t0)
        rec.progress(2_000_000)
        second = tracker.sample(now=t0 + 1.0)
        out["first"] = first.transfers
        out["second"] = second.transfers

        async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
            await pilot.press("6")
            screen = app.screen
            table = screen.query_one(DataTable)
            await wait_for(pilot, lambda: table.row_count == 1, what="our transfer")
            out["row"] = table_rows(table)[0]
            await pilot.press("p")
            await pilot.pause()
            out["paused"] = plain(screen.query_one("#transfers-summary"))
            rec.progress(3_000_000)
            await pilot.pause(1.0)
            out["row_paused"] = table_rows(table)[0]
            await pilot.press("p")
            await wait_for(pilot, lambda: table_rows(table)[0][5] == "75%", what="live again")

        run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    finally:
        rec.finish(True)
    (v1,) = out["first"]
    (v2,) = out["second"]
    assert v1.done == 1_000_000
    assert v1.total == 4_000_000
    assert v1.file == "sub/file.bin"
    assert v2.done == 2_000_000
    assert v1.rate is not None  # first sample: bytes since the start time
    assert v2.rate is not None  # then smoothed towards the 1 MB/s between the two samples
    assert abs(v2.rate - (0.5 * 1_000_000 + 0.5 * v1.rate)) < 1
    row = out["row"]
    assert row[1] == "node1"
    assert row[2] == "gateway"
    assert row[5] == "50%"
    assert "PAUSED" in str(out["paused"])
    assert out["row_paused"][5] == "50%"
    assert TransferTracker({"x": node1 / "annex"}).sample().transfers == ()
