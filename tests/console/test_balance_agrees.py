"""The Balance view and `annextui balance --json` say one thing: the same rows, the same counts
in the same words, the plan's transfers and drops apart, for the same repository.

The demo's nodes are the group `nodes` and the cluster `demo` at once: their keys are reported
once (under the group), not again under the cluster. With --rebalance (R in the console) the
demo has drops to make; the plan says so instead of "0 keys to transfer".
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from annextui.app import AnnexConsole
from annextui.backend.balance import PlanTotals
from annextui.backend.demo import DemoRepo
from annextui.console.source import RepositoryBackend
from annextui.screens.balance import BalanceScreen
from tests.console.support import plain, run_app, table_rows, wait_for
from tests.support.annex import AnnexEnv


def cli_balance(annex: AnnexEnv, demo: DemoRepo, *extra: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "annextui", "-C", str(demo.gateway), "balance", "nodes"]
    res = annex.run([*argv, "--json", "--no-progress", *extra])
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def keys_in(cell: str) -> int:
    """`1.2 GB (24)` -> 24."""
    found = re.search(r"\((\d+)\)$", cell)
    assert found, cell
    return int(found.group(1))


@pytest.mark.parametrize("rebalance", [False, True])
def test_console_table_equals_cli_json(demo: DemoRepo, annex: AnnexEnv, rebalance: bool) -> None:
    cli = cli_balance(annex, demo, *(["--rebalance"] if rebalance else []))
    seen: dict[str, Any] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, BalanceScreen)
        if rebalance:
            await pilot.press("R")
            await wait_for(pilot, lambda: screen.rebalanced is not None, what="rebalance")
            await pilot.pause()
        seen["rows"] = table_rows(screen.query_one("#balance", DataTable))
        seen["summary"] = plain(screen.query_one("#balance-summary"))

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    rows = seen["rows"]
    assert {r[0] for r in rows} == {"nodes"}  # one group, not the cluster again
    assert len(rows) == len(cli["nodes"]) == 3  # one row per member
    console = {r[1]: (keys_in(r[2]), keys_in(r[3]), int(r[4]), int(r[5])) for r in rows}
    from_cli = {
        n["name"].strip("[]"): (
            n["keys"],
            n["want-get"]["keys"],
            n["to-get"]["keys"],
            n["to-drop"]["keys"],
        )
        for n in cli["nodes"]
    }
    assert console == from_cli
    total = cli["total"]
    assert total["keys"] == sum(v[0] for v in console.values())
    assert total["to-drop"]["keys"] == sum(v[3] for v in console.values())
    plan = cli["pending"]
    totals = PlanTotals(
        plan["transfer"]["keys"],
        plan["transfer"]["bytes"],
        plan["drop"]["keys"],
        plan["drop"]["bytes"],
    )
    listed_drops = sum(m["keys"] for m in plan["moves"] if m["kind"] == "drop")
    listed_transfers = sum(m["keys"] for m in plan["moves"] if m["kind"] != "drop")
    assert (totals.drop_keys, totals.transfer_keys) == (listed_drops, listed_transfers)
    if rebalance:
        assert totals.drop_keys > 0  # the demo has drops to make at --rebalance
    text = annex.run(
        [sys.executable, "-m", "annextui", "-C", str(demo.gateway), "balance", "nodes"]
        + (["--rebalance"] if rebalance else [])
    ).stdout
    assert f"pending (current configuration): {totals.describe()}" in text
    if totals.empty:
        assert "balanced" in seen["summary"]
    else:
        assert totals.describe() in seen["summary"]
