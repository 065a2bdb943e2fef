"""Proxies: every proxy in the git-annex branch and the remotes it proxies for, with the names a
client sees, UUIDs, descriptions, and reachability checked on demand."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Static

from annextui.console.reachability import Reachability
from annextui.console.snapshot import Snapshot
from annextui.screens.base import ConsoleScreen
from annextui.screens.widgets import (
    Column,
    Row,
    fit_table,
    matches,
    selected_key,
    short_uuid_cell,
    sort_rows,
    styled,
    sync_table,
)

CLIENT_REMOTE = "origin"


class ProxiesScreen(ConsoleScreen):
    VIEW = "proxies"
    TITLE_TEXT = "Proxies"
    REFRESHES = "proxied remotes checked again"
    HELP = (
        "Every proxy recorded in the git-annex branch (proxy.log) and each remote it proxies "
        "for. 'client name' is the remote a client instantiates: PROXYREMOTE-NAME, shown with "
        f"'{CLIENT_REMOTE}' when the proxy is this repository. Reachability is checked on "
        "demand: local paths are opened, ssh remotes asked for their UUID with "
        "git-annex-shell configlist, HTTP remotes connected to; proxied remotes through their "
        "proxy."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "c", "check", "Check", id="proxies.check", tooltip="Is the selected one reachable?"
        ),
        Binding("C", "check_all", "Check all", id="proxies.check_all"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="proxies-summary")
        yield DataTable(id="proxies", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.watch(self.app, "reach", lambda _v: self._refresh(), init=False)

    def main_widget(self) -> Widget | None:
        return self.query_one(DataTable)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self._refresh()

    def filter_changed(self, text: str) -> None:
        self._refresh()

    def on_resize(self) -> None:
        self._refresh()  # columns give way, or come back

    def refresh_view(self) -> None:
        self.action_check_all()

    def _rows(self, snap: Snapshot) -> list[tuple[str, str, tuple[str, ...], str]]:
        """(row key, target uuid, searchable texts, proxy uuid) per proxied remote."""
        out: list[tuple[str, str, tuple[str, ...], str]] = []
        for p in snap.info.proxies:
            for uuid, logged, client in p.proxied:
                name = f"{CLIENT_REMOTE}-{logged}" if p.proxy_uuid == snap.uuid else client
                texts = (
                    snap.label(p.proxy_uuid),
                    name,
                    logged,
                    uuid,
                    snap.info.state.description(uuid),
                )
                out.append((f"{p.proxy_uuid}/{uuid}", uuid, texts, p.proxy_uuid))
        return out

    def _refresh(self) -> None:
        snap = self.console.snapshot
        if snap is None:
            return
        reach = self.console.reach
        rows = []
        table: DataTable[object] = self.query_one(DataTable)
        narrow = self.size.width < WHOLE_UUIDS
        keys = fit_table(table, _columns(narrow), self.size.width - 2)
        for key, uuid, texts, proxy in self._rows(snap):
            proxy_label, name, logged, _u, desc = texts
            row = snap.repos.get(uuid)
            if row is not None and row.is_cluster:
                kind = "cluster"
            elif row is not None and row.clusters:
                kind = "node of " + ", ".join(snap.cluster_name(c) for c in row.clusters)
            else:
                kind = "remote"
            cell = {
                "proxy": styled(self.app, proxy_label, "accent" if proxy == snap.uuid else None),
                "name": Text(name),
                "logged": Text(logged),
                "uuid": styled(self.app, short_uuid_cell(uuid, narrow), "muted"),
                "description": Text(desc),
                "kind": Text(kind),
                "reach": self._reach_cell(reach.get(uuid)),
            }
            cells = tuple(cell[k] for k in keys)
            if matches(" ".join(texts) + " " + kind, self.filter_text):
                rows.append(Row(key, cells))
        sync_table(table, sort_rows(rows, self.sort_state, keys))
        n_proxies = len(snap.info.proxies)
        n = sum(len(p.proxied) for p in snap.info.proxies)
        bad = sum(1 for _k, u, _t, _p in self._rows(snap) if u in reach and not reach[u].ok)
        self.query_one("#proxies-summary", Static).update(
            f"[b]{n_proxies}[/b] prox{'y' if n_proxies == 1 else 'ies'} for [b]{n}[/b] remotes"
            + (f"   [$text-error]{bad} unreachable[/]" if bad else "")
            + ("   [$text-muted]c checks the selected row, C all[/]")
        )

    def _reach_cell(self, r: Reachability | None) -> Text:
        if r is None:
            return styled(self.app, "not checked", "muted")
        if r.ok:
            return styled(self.app, f"● reachable {r.seconds * 1000:.0f} ms", "ok")
        if r.state == "unknown":
            return styled(self.app, f"? {r.detail}", "warning")
        return styled(self.app, f"✖ {r.detail}", "error")

    def action_check(self) -> None:
        snap = self.console.snapshot
        key = selected_key(self.query_one(DataTable))
        if snap is None or key is None:
            return
        uuid = key.split("/", 1)[1]
        self.console.check_reachability([uuid])

    def action_check_all(self) -> None:
        snap = self.console.snapshot
        if snap is None:
            return
        uuids = sorted({u for _k, u, _t, _p in self._rows(snap)})
        self.notify(f"Checking {len(uuids)} remotes…")
        self.console.check_reachability(uuids)


WHOLE_UUIDS = 140  # narrower than this, UUIDs are shortened to leave room for the other columns


def _columns(narrow: bool) -> list[Column]:
    return [
        Column("proxy", "proxy", 1, 8),
        Column("name", "client name", 0, 14),
        Column("logged", "logged as", 3, 9),
        Column("uuid", "uuid", 4, 9 if narrow else 36),
        Column("description", "description", 2, 12),
        Column("kind", "kind", 5, 12),
        Column("reach", "reachability", 0, 14),
    ]
