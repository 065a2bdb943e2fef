"""Overview: this repository, its role, counts, alerts, and every repository the branch knows."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Label, Static

from annextui.console.alerts import compute_alerts
from annextui.console.snapshot import Snapshot
from annextui.screens.base import ConsoleScreen
from annextui.screens.literal import literal, markup
from annextui.screens.widgets import (
    Column,
    Row,
    fit_table,
    human,
    matches,
    short_path,
    short_uuid_cell,
    styled,
    sync_table,
)

ICONS = {"error": "✖", "warning": "▲", "ok": "✔", "muted": "…"}


class OverviewScreen(ConsoleScreen):
    VIEW = "overview"
    TITLE_TEXT = "Overview"
    REFRESHES = "node reachability checked again"
    HELP = (
        "This repository, its role (gateway, proxy, node or plain repository), counts, and the "
        "alerts that need attention: a node over 90% of its maxsize, unreachable nodes, "
        "misplaced content. Below, every repository the git-annex branch knows."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "c",
            "check",
            "Check nodes",
            id="overview.check",
            tooltip="Check that every node is reachable now",
        ),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="overview-top"):
            with Vertical(id="repo-panel", classes="panel"):
                yield Static("loading…", id="repo-info")
                yield Static("", id="counts")
            with Vertical(id="alerts-panel", classes="panel"):
                yield Label("Alerts", classes="panel-title")
                yield Vertical(id="alerts")
        yield DataTable(id="repos", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#repo-panel").border_title = "This repository"
        self.query_one("#alerts-panel").border_title = "Alerts"
        for attr in ("sizes", "balance", "reach"):
            self.watch(self.app, attr, lambda _v: self._refresh_all(), init=False)

    def main_widget(self) -> Widget | None:
        return self.query_one("#repos", DataTable)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self._refresh_all()

    def filter_changed(self, text: str) -> None:
        self._refresh_all()

    def on_resize(self) -> None:
        self._refresh_all()  # columns give way, or come back

    def refresh_view(self) -> None:
        self.action_check()

    def action_check(self) -> None:
        snap = self.console.snapshot
        if snap is not None:
            self.notify("Checking nodes…")
            self.console.check_reachability(snap.node_uuids)

    def _refresh_all(self) -> None:
        snap = self.console.snapshot
        if snap is None:
            return
        self._show_repo(snap)
        self._show_alerts(snap)
        self._show_table(snap)

    def _show_repo(self, snap: Snapshot) -> None:
        info = snap.info
        gateway_of = [snap.cluster_name(c.uuid) for c in info.clusters if snap.uuid in c.gateways]
        node_of = [snap.cluster_name(c.uuid) for c in info.clusters if snap.uuid in c.nodes]
        proxying = next((p for p in info.proxies if p.proxy_uuid == snap.uuid), None)
        role = snap.role
        details = []
        if gateway_of:
            details.append("gateway of " + ", ".join(gateway_of))
        if proxying:
            details.append(f"proxy for {len(proxying.proxied)}")
        if node_of:
            details.append("node of " + ", ".join(node_of))
        self.query_one("#repo-info", Static).update(
            markup(
                "[b]$description[/b]  [$text-muted]$uuid[/]\n[$text-muted]$path[/]\n"
                "role: [b $text-accent]$role[/]$details",
                description=snap.description or snap.uuid,
                uuid=snap.uuid,
                path=short_path(str(snap.path), 54),
                role=role,
                details=f"  ({'; '.join(details)})" if details else "",
            )
        )
        sizes = self.console.sizes
        total_bytes = sum(s.size for s in sizes.sizes.values()) if sizes else None
        repos = [r for r in snap.repos.values() if not r.is_cluster and r.uuid not in _BUILTIN]
        counts = [
            ("repositories", str(len(repos))),
            ("remotes", str(len(snap.configured))),
            ("proxies", str(len(info.proxies))),
            ("proxied remotes", str(sum(len(p.proxied) for p in info.proxies))),
            ("clusters", str(len(info.clusters))),
            ("nodes", str(len(snap.node_uuids))),
            ("keys", str(sizes.keys) if sizes else "…"),
            ("stored", human(total_bytes) if total_bytes is not None else "…"),
            ("staged edits", str(len(self.console.staged))),
        ]
        self.query_one("#counts", Static).update(
            "\n".join(
                "  ".join(f"[$text-muted]{k}[/] [b]{v}[/]" for k, v in counts[i : i + 3])
                for i in range(0, len(counts), 3)
            )
        )

    def _show_alerts(self, snap: Snapshot) -> None:
        alerts = compute_alerts(snap, self.console.sizes, self.console.balance, self.console.reach)
        box = self.query_one("#alerts", Vertical)
        labels = list(box.query(Label))
        for i, alert in enumerate(alerts):
            text = literal(f"{ICONS.get(alert.severity, '•')} {alert.text}")
            if i < len(labels):
                label = labels[i]
                label.update(text)
            else:
                label = Label(text, markup=False)
                box.mount(label)
            label.set_classes(f"alert -{alert.severity}")
        for extra in labels[len(alerts) :]:
            extra.remove()

    def staged_changed(self) -> None:
        self._refresh_all()

    def _show_table(self, snap: Snapshot) -> None:
        table: DataTable[object] = self.query_one("#repos", DataTable)
        sizes = self.console.sizes
        rows = []
        order = sorted(
            snap.repos.values(),
            key=lambda r: (not r.here, r.is_cluster, r.uuid in _BUILTIN, r.label),
        )
        narrow = self.narrow
        keys = fit_table(table, _columns(narrow), self.size.width - 2)
        for r in order:
            role = _role(snap, r.uuid)
            size = sizes.sizes.get(r.uuid) if sizes else None
            cell = {
                "repository": styled(self.app, r.label, "accent" if r.here else None, bold=r.here),
                "uuid": styled(self.app, short_uuid_cell(r.uuid, narrow), "muted"),
                "role": role,
                "trust": r.trust.label,
                "groups": " ".join(r.groups),
                "size": human(size.size) if size else ("" if sizes else "…"),
                "maxsize": human(r.maxsize) if r.maxsize is not None else "",
            }
            cells = tuple(cell[k] for k in keys)
            text = " ".join([r.label, r.uuid, r.description, role, " ".join(r.groups)])
            if matches(text, self.filter_text):
                rows.append(Row(r.uuid, cells))
        sync_table(table, rows)


def _columns(narrow: bool) -> list[Column]:
    return [
        Column("repository", "repository", 0, 14),
        Column("uuid", "uuid", 3, 9 if narrow else 36),
        Column("role", "role", 1, 18),
        Column("trust", "trust", 4, 11),
        Column("groups", "groups", 5, 8),
        Column("size", "size", 2, 8),
        Column("maxsize", "maxsize", 3, 8),
    ]


_BUILTIN = {"00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"}


def _role(snap: Snapshot, uuid: str) -> str:
    row = snap.repos[uuid]
    if row.is_cluster:
        return "cluster"
    roles = []
    if any(uuid in c.gateways for c in snap.info.clusters):
        roles.append("gateway")
    if any(p.proxy_uuid == uuid for p in snap.info.proxies):
        roles.append("proxy")
    if row.clusters:
        roles.append("node of " + ", ".join(snap.cluster_name(c) for c in row.clusters))
    else:
        proxied_by = [
            snap.label(p.proxy_uuid)
            for p in snap.info.proxies
            if any(u == uuid for u, _n, _c in p.proxied)
        ]
        if proxied_by:
            roles.append("proxied by " + ", ".join(proxied_by))
    if uuid in _BUILTIN:
        roles.append("special")
    return ", ".join(roles) or ("here" if row.here else "remote" if row.name else "")
