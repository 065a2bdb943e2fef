"""Every edit flow, end to end on copies of a demo: stage with keys, review the diff, confirm
(or not), and check the outcome with the real git-annex on the gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input

from annextui.app import AnnexConsole
from annextui.backend.demo import DemoRepo
from annextui.console.backend import ReadOnlyError
from annextui.console.edits import AddNode
from annextui.console.source import RepositoryBackend
from annextui.screens.base import ConsoleScreen
from annextui.screens.clusters import ClustersScreen, Ref
from annextui.screens.dialogs import ConfirmScreen, PickScreen, PromptScreen
from tests.console.support import plain, repo_fingerprint, run_app, wait_for, wait_for_screen
from tests.support.annex import AnnexEnv

FAKE_KEY = "SHA256E-s1000--" + "ab" * 32 + ".bin"


def whereis(annex: AnnexEnv, repo: Path, key: str) -> set[str]:
    rec = annex.annex_json(repo, "whereis", f"--key={key}", check=False)[0]
    return {w["uuid"] for w in rec.get("whereis", [])}


async def select(app: AnnexConsole, pilot: Pilot[int], ref: Ref) -> None:
    await pilot.press("3")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ClustersScreen)
    await wait_for(pilot, lambda: screen.select_ref(ref), what=f"tree line {ref}")
    await pilot.pause()


async def review(app: AnnexConsole, pilot: Pilot[int], *, confirm: bool) -> str:
    """ctrl+s, check the dialog starts on No, then confirm (tab, enter) or cancel (enter).
    After confirming, wait for a snapshot read after the edits were applied."""
    await wait_for(pilot, lambda: bool(app.staged), what="a staged edit")
    await pilot.press("ctrl+s")
    await wait_for_screen(pilot, ConfirmScreen, what="confirm dialog")
    dialog = app.screen
    await wait_for(pilot, lambda: dialog.focused is not None, what="focus in the dialog")
    focused = dialog.focused
    assert isinstance(focused, Button)
    assert focused.id == "no"
    body = plain(dialog.query_one("#dialog-text"))
    if confirm:
        await pilot.press("tab")
        assert dialog.focused is not None
        assert dialog.focused.id == "yes"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.staged, what="edits applied")

        def fresh() -> bool:
            snap, applied = app.snapshot, app.applied_at
            return snap is not None and applied is not None and snap.loaded_at > applied

        await wait_for(pilot, fresh, what="a snapshot read after applying")
    else:
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        assert app.staged
    return body


async def answer_prompt(app: AnnexConsole, pilot: Pilot[int], text: str) -> None:
    await wait_for_screen(pilot, PromptScreen, what="prompt")
    dialog = app.screen
    dialog.query_one("#prompt-input", Input).value = ""
    await pilot.press(*text)
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.screen is not dialog, what="prompt closed")


async def pick(app: AnnexConsole, pilot: Pilot[int], label_start: str) -> None:
    await wait_for_screen(pilot, PickScreen, what="pick dialog")
    from textual.widgets import OptionList

    options = app.screen.query_one(OptionList)
    for i in range(options.option_count):
        if str(options.get_option_at_index(i).prompt).startswith(label_start):
            options.highlighted = i
            break
    else:
        raise AssertionError(f"no option {label_start!r}")
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, PickScreen))


Scenario = Callable[[AnnexConsole, Pilot[int]], Awaitable[None]]


def test_add_node_confirmed(demo: DemoRepo, annex: AnnexEnv) -> None:
    archive = demo.uuids["archive"]
    annex.annex(demo.gateway, "setpresentkey", FAKE_KEY, archive, "1")
    assert whereis(annex, demo.gateway, FAKE_KEY) == {archive}
    bodies: list[str] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await select(app, pilot, Ref("cluster", demo.cluster_uuid))
        await pilot.press("a")
        await pick(app, pilot, "archive")
        assert app.staged == (AddNode("archive", "demo"),)
        bodies.append(await review(app, pilot, confirm=True))
        c = app.snapshot.cluster(demo.cluster_uuid) if app.snapshot else None
        assert c is not None
        assert archive in c.nodes

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    assert "+ remote.archive.annex-cluster-node = demo" in bodies[0]
    assert "cluster.log" in bodies[0]
    # git-annex now counts the archive's copy as a copy in the cluster
    assert whereis(annex, demo.gateway, FAKE_KEY) == {archive, demo.cluster_uuid}
    assert annex.git(demo.gateway, "config", "remote.archive.annex-cluster-node") == "demo"
    out = annex.annex(demo.gateway, "updatecluster").stdout
    assert "No cluster node changes for cluster: demo" in out
    assert "No proxy changes to record." in out


def test_add_node_cancelled_changes_nothing(demo: DemoRepo, annex: AnnexEnv) -> None:
    archive = demo.uuids["archive"]
    annex.annex(demo.gateway, "setpresentkey", FAKE_KEY, archive, "1")
    before = repo_fingerprint(demo.gateway)

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await select(app, pilot, Ref("cluster", demo.cluster_uuid))
        await pilot.press("a")
        await pick(app, pilot, "archive")
        await review(app, pilot, confirm=False)
        await pilot.press("ctrl+z")  # unstage
        await pilot.pause()
        assert app.staged == ()

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    assert repo_fingerprint(demo.gateway) == before
    assert whereis(annex, demo.gateway, FAKE_KEY) == {archive}


def test_remove_node_confirmed(demo: DemoRepo, annex: AnnexEnv) -> None:
    node3 = demo.uuids["node3"]
    annex.annex(demo.gateway, "setpresentkey", FAKE_KEY, node3, "1")
    assert whereis(annex, demo.gateway, FAKE_KEY) == {node3, demo.cluster_uuid}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await select(app, pilot, Ref("node", demo.cluster_uuid, node3))
        await pilot.press("x")
        body = await review(app, pilot, confirm=True)
        assert "- remote.node3.annex-cluster-node = demo" in body

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    assert whereis(annex, demo.gateway, FAKE_KEY) == {node3}
    out = annex.annex(demo.gateway, "updatecluster").stdout
    assert "No cluster node changes for cluster: demo" in out


def test_init_cluster_confirmed(demo: DemoRepo, annex: AnnexEnv) -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("i")
        await answer_prompt(app, pilot, "archival")
        await answer_prompt(app, pilot, "cold storage")
        body = await review(app, pilot, confirm=True)
        assert "+ annex.cluster.archival = ac" in body
        assert "cold storage" in body

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    cu = annex.git(demo.gateway, "config", "annex.cluster.archival")
    assert cu.startswith("ac")
    assert cu[14] == "8"
    info = annex.annex_json(demo.gateway, "info")[0]
    descs = {r["uuid"]: r["description"] for r in info["semitrusted repositories"]}
    assert descs[cu] == "cold storage"


def test_extend_cluster_to_another_gateway(demo: DemoRepo, annex: AnnexEnv, tmp_path: Path) -> None:
    gw2 = tmp_path / "gw2"
    annex.git(tmp_path, "clone", "-q", demo.gateway, gw2)
    annex.annex(gw2, "init", "-q", "gateway 2")
    # A client instantiates proxied remotes only behind ssh or annex+http remotes.
    annex.git(gw2, "config", "remote.origin.annexurl", "annex+http://127.0.0.1:9/git-annex/")

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        assert app.snapshot is not None
        assert app.snapshot.role == "client"  # it sees origin-node1 ... through origin
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("e")
        await pick(app, pilot, "demo")
        body = await review(app, pilot, confirm=True)
        assert f"+ remote.origin.annex-cluster-gateway = {demo.cluster_uuid}" in body
        assert "proxy.log" in body
        assert app.snapshot is not None
        assert app.snapshot.role == "gateway"

    run_app(RepositoryBackend(gw2), scenario, check_nodes=False)
    assert annex.git(gw2, "config", "annex.cluster.demo") == demo.cluster_uuid
    out = annex.annex(gw2, "updatecluster").stdout
    assert "No cluster node changes for cluster: demo" in out
    assert "No proxy changes to record." in out


def test_set_maxsize_group_and_wanted_confirmed(demo: DemoRepo, annex: AnnexEnv) -> None:
    node1 = demo.uuids["node1"]

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await select(app, pilot, Ref("node", demo.cluster_uuid, node1))
        await pilot.press("m")
        await answer_prompt(app, pilot, "55GB")
        await pilot.press("g")
        await answer_prompt(app, pilot, "nodes fast")
        await pilot.press("w")
        await answer_prompt(app, pilot, "include=*.nii.gz or groupwanted")
        assert len(app.staged) == 3
        body = await review(app, pilot, confirm=True)
        assert "55000000000" in body
        assert "maxsize.log" in body
        assert "group.log" in body
        assert "preferred-content.log" in body

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    assert annex.annex(demo.gateway, "maxsize", "node1").stdout.strip() == "55.0 GB"
    assert annex.annex(demo.gateway, "group", "node1").stdout.strip() == "fast nodes"
    assert (
        annex.annex(demo.gateway, "wanted", "node1").stdout.strip()
        == "include=*.nii.gz or groupwanted"
    )


def test_maxsize_from_the_nodes_view(demo: DemoRepo, annex: AnnexEnv) -> None:
    node2 = demo.uuids["node2"]

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("4", "slash", *"node2", "enter")
        await pilot.pause()
        await pilot.press("m")
        await answer_prompt(app, pilot, "1TB")
        await review(app, pilot, confirm=True)

    run_app(RepositoryBackend(demo.gateway), scenario, check_nodes=False)
    rec = annex.annex_json(demo.gateway, "maxsize", "--bytes")[0]
    sizes = {r["uuid"]: r["size"]["maxsize"] for r in rec["repositories"]}
    assert sizes[node2] == 1_000_000_000_000


def test_bad_maxsize_is_refused_in_the_dialog(demo_template: DemoRepo) -> None:
    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("4")
        await pilot.pause()
        await pilot.press("m")
        await wait_for_screen(pilot, PromptScreen)
        app.screen.query_one("#prompt-input", Input).value = ""
        await pilot.press(*"lots", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        assert "Unable to parse size" in plain(app.screen.query_one("#dialog-error"))
        await pilot.press("escape")
        await pilot.pause()
        assert app.staged == ()

    run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)


MUTATING_KEYS = {"3": "iaxegwm", "4": "gwm"}


def test_readonly_refuses_every_edit(demo: DemoRepo) -> None:
    before = repo_fingerprint(demo.gateway)
    seen: dict[str, Any] = {}

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        assert app.readonly
        for view, keys in MUTATING_KEYS.items():
            await pilot.press(view)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ConsoleScreen)
            if isinstance(screen, ClustersScreen):
                screen.select_ref(Ref("node", demo.cluster_uuid, demo.uuids["node1"]))
                await pilot.pause()
            for action in sorted(screen.MUTATING):
                assert screen.check_action(action, ()) is None, action  # shown greyed out
            for key in keys:
                app.clear_notifications()
                await pilot.press(key)
                await pilot.pause()
                assert app.screen is screen, f"{key} opened {app.screen}"
                # Not silence: a toast says why nothing happens.
                toasts = [n.message for n in app._notifications]
                assert any("--readonly" in t for t in toasts), (key, toasts)
            disabled = {
                ab.binding.action for ab in screen.active_bindings.values() if not ab.enabled
            }
            seen[view] = disabled
            titles = {c.title for c in app.get_system_commands(screen)}
            assert not titles & {"Add node", "Remove node", "Init cluster", "Maxsize", "Group"}
        # Even a staged edit cannot get through: the app, then the backend refuse.
        assert app.stage(AddNode("archive", "demo")) is False
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.check_action("review", ()) is None

    run_app(RepositoryBackend(demo.gateway, readonly=True), scenario, check_nodes=False)
    assert {"add_node", "remove_node", "init_cluster", "extend_cluster"} <= seen["3"]
    assert {"set_maxsize", "set_group", "set_wanted"} <= seen["4"]
    with pytest.raises(ReadOnlyError):
        RepositoryBackend(demo.gateway, readonly=True).apply([AddNode("archive", "demo")])
    assert repo_fingerprint(demo.gateway) == before


def test_preview_never_writes_the_repository(demo: DemoRepo) -> None:
    before = repo_fingerprint(demo.gateway)
    backend = RepositoryBackend(demo.gateway)
    preview = backend.preview([AddNode("archive", "demo")])
    assert preview.error is None
    assert {c.key for c in preview.config} == {"remote.archive.annex-cluster-node"}
    assert {b.file for b in preview.branch} == {"cluster.log"}
    assert repo_fingerprint(demo.gateway) == before


def test_bad_wanted_expression_is_refused_in_the_dialog(demo_template: DemoRepo) -> None:
    errors: list[str] = []

    async def scenario(app: AnnexConsole, pilot: Pilot[int]) -> None:
        await pilot.press("4", "w")
        await wait_for_screen(pilot, PromptScreen)
        app.screen.query_one("#prompt-input", Input).value = ""
        await pilot.press(*"bogus=1", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        errors.append(plain(app.screen.query_one("#dialog-error")))
        await pilot.press("escape")
        await pilot.pause()
        assert app.staged == ()

    run_app(RepositoryBackend(demo_template.gateway), scenario, check_nodes=False)
    assert errors[0].startswith("parse error: bad preferred content expression")
