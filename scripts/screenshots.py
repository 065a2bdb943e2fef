#!/usr/bin/env python3
"""Regenerate screenshots/*.svg: one per view (and the edit review dialog) at 120x36, and the
overview, nodes and transfers at 80x24, on the demo repository built in a temporary directory.

So that every view has something to show, the script adds two fresh uploads to the gateway
(keys only the gateway has, which the balanced nodes want), runs three transfers recorded
the way annextui's gateway records them (transfer information files under a held lock), with
progress advancing while the screenshots are taken, and plans (without running) a rebalance of
the demo cluster, so the Jobs view shows a job with its plan and proof.

    python scripts/screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annextui.app import AnnexConsole  # noqa: E402
from annextui.backend.balance import proof_text  # noqa: E402
from annextui.backend.clock import current_clock  # noqa: E402
from annextui.backend.demo import DemoRepo, build_demo  # noqa: E402
from annextui.backend.journal import Journal  # noqa: E402
from annextui.backend.keys import Key, location_log_path  # noqa: E402
from annextui.backend.logs import PresenceStatus, change_presence  # noqa: E402
from annextui.backend.repo import Repository  # noqa: E402
from annextui.console.edits import AddNode, SetMaxsize  # noqa: E402
from annextui.console.source import RepositoryBackend  # noqa: E402
from annextui.operations.jobs import Job, JobStore, job_id  # noqa: E402
from annextui.operations.nodes import GatewayNodes  # noqa: E402
from annextui.operations.rebalance import plan_rebalance  # noqa: E402
from annextui.proxycore.transfers import Direction, Transfer, TransferRecorder  # noqa: E402
from annextui.screens.balance import BalanceScreen  # noqa: E402
from annextui.screens.clusters import ClustersScreen, Ref  # noqa: E402
from annextui.screens.dialogs import ConfirmScreen  # noqa: E402
from annextui.screens.jobs import JobsScreen  # noqa: E402

SIZE = (120, 36)
NARROW = (80, 24)
CLIENT = "b097efc0-d294-47d7-ae35-c8e5d3ef3cc5"  # a client the gateway has not heard of


def fresh_uploads(demo: DemoRepo) -> None:
    journal = Journal(Repository(demo.gateway))
    clock = current_clock()
    for i, size in enumerate((734_003_200, 91_226_112)):
        key = Key("SHA256E", f"{i:064x}.nii.gz", size=size)
        journal.change(
            location_log_path(key),
            lambda cur: change_presence(cur, demo.uuids["gateway"], PresenceStatus.PRESENT, clock),
        )
    journal.commit()


def planned_rebalance(demo: DemoRepo) -> None:
    """A rebalance of the demo cluster planned as `annextui rebalance demo` plans it (its
    figures, steps and proof kept under annex/annextui/jobs/), left in state planned."""
    repo = Repository(demo.gateway)
    nodes = GatewayNodes(repo)
    try:
        plan = plan_rebalance(nodes, "demo")
        summary = plan.summary()
        job = Job(
            job_id("rebalance", ",".join(plan.members)), "rebalance", plan.label, params=summary
        )
        store = JobStore(repo)
        proof = plan.proof()
        if proof is not None:
            store.write_proof(job.id, proof_text(proof))
        store.write_plan(job, plan.steps)
    finally:
        nodes.close()


class FakeTraffic:
    """Transfers recorded as the gateway records them, advancing at steady rates."""

    def __init__(self, demo: DemoRepo) -> None:
        gw = demo.gateway / ".git" / "annex"
        node1 = demo.nodes["node1"] / "annex"
        specs = [
            (gw, Direction.DOWNLOAD, CLIENT, 600_000_000, "sub-01/func/run1.nii.gz", 24e6, 0.42),
            (
                node1,
                Direction.DOWNLOAD,
                demo.uuids["gateway"],
                2_500_000_000,
                "derived/movie.mp4",
                110e6,
                0.18,
            ),
            (gw, Direction.UPLOAD, demo.uuids["archive"], 80_000_000, "raw/table.tsv", 4e6, 0.61),
        ]
        self.jobs: list[tuple[TransferRecorder, int, float, float]] = []
        for annexdir, direction, other, size, name, rate, start in specs:
            key = str(Key("SHA256E", f"{abs(hash(name)):064x}.bin"[-68:], size=size))
            rec = TransferRecorder.start(
                annexdir, Transfer(direction, other, key), associated_file=name
            )
            assert rec is not None
            rec.progress(int(size * start))
            self.jobs.append((rec, size, rate, start))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        # git-annex writes progress only when a report advanced by 1% of the size since the
        # previous report: report in steps that big, as a fast transfer does.
        t0 = time.monotonic()
        while not self.stop.wait(0.25):
            dt = time.monotonic() - t0
            for rec, size, rate, start in self.jobs:
                rec.progress(min(size - 1, int(size * start + rate * dt)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for rec, *_ in self.jobs:
            rec.finish(True)


async def wait_for(pilot: object, predicate: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(str(predicate))
        await pilot.pause(0.05)  # type: ignore[attr-defined]


async def shoot(demo: DemoRepo, out: Path) -> list[Path]:
    saved: list[Path] = []
    app = AnnexConsole(RepositoryBackend(demo.gateway))
    async with app.run_test(size=SIZE) as pilot:

        async def save(name: str) -> None:
            app.clear_notifications()
            await pilot.pause(0.3)
            path = out / f"{name}.svg"
            path.write_text(app.export_screenshot(title=f"annextui — {name}"))
            saved.append(path)

        await wait_for(pilot, lambda: app.balance is not None and len(app.reach) >= 3)
        await save("overview")
        await pilot.press("2", "C")
        await wait_for(pilot, lambda: len(app.reach) >= 5)
        await save("proxies")
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, ClustersScreen)
        await pilot.pause()
        screen.select_ref(Ref("node", demo.cluster_uuid, demo.uuids["node3"]))
        app.stage(AddNode("archive", "demo"))
        app.stage(SetMaxsize("node3", "30GB"))
        await save("clusters")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await save("review")
        await pilot.press("escape", "ctrl+z", "ctrl+z")
        await pilot.press("4")
        await save("nodes")
        await pilot.press("5")
        balance = app.screen
        assert isinstance(balance, BalanceScreen)
        await pilot.pause()
        balance.query_one("#balance").move_cursor(row=0)  # type: ignore[attr-defined]
        await pilot.press("x")
        await wait_for(pilot, lambda: balance.result is not None)
        await save("balance")
        await pilot.press("6")
        await pilot.pause(1.5)  # a few samples, so rates settle
        await save("transfers")
        await pilot.press("7")
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await wait_for(pilot, lambda: jobs.detail is not None)
        await save("jobs")
        await pilot.press("q")
    return saved


async def shoot_narrow(demo: DemoRepo, out: Path) -> list[Path]:
    """The views an admin on a small terminal sees first, at 80x24."""
    saved: list[Path] = []
    app = AnnexConsole(RepositoryBackend(demo.gateway))
    async with app.run_test(size=NARROW) as pilot:
        await wait_for(pilot, lambda: app.balance is not None and len(app.reach) >= 3)
        for key, name in (("1", "overview"), ("4", "nodes"), ("6", "transfers")):
            await pilot.press(key)
            await pilot.pause(1.0 if key == "6" else 0.3)
            app.clear_notifications()
            await pilot.pause(0.2)
            path = out / f"{name}-80x24.svg"
            path.write_text(app.export_screenshot(title=f"annextui — {name}, 80x24"))
            saved.append(path)
        await pilot.press("q")
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="annextui-shots-"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")  # the default theme, not yours
    try:
        demo = build_demo(tmp / "demo")
        fresh_uploads(demo)
        planned_rebalance(demo)
        traffic = FakeTraffic(demo)
        try:
            saved = asyncio.run(shoot(demo, args.out))
            saved += asyncio.run(shoot_narrow(demo, args.out))
        finally:
            traffic.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for path in saved:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
