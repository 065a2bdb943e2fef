"""Overview: this repository, its role, counts, alerts, and every repository the branch knows."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Label, Static

from annextui.console.alerts import compute_alerts
from annextui.console.sizes_source import SizesReport
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
    sort_rows,
    styled,
    sync_table,
    theme_style,
    usage_bar,
    usage_state,
)

ICONS = {"error": "✖", "warning": "▲", "ok": "✔", "muted": "…"}


class OverviewScreen(ConsoleScreen):
    VIEW = "overview"
    TITLE_TEXT = "Overview"
    REFRESHES = "node reachability checked again"
    HELP = (
        "This repository, its role (gateway, proxy, node or plain repository), counts, and the "
        "alerts that need attention: a node over 90% of its maxsize, unreachable nodes, "
        "content that is not balanced yet. Below, every repository the git-annex branch knows, "
        "with its usage (size / maxsize) as a bar; a cluster's row totals its nodes."
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

    def __init__(self) -> None:
        super().__init__()
        # The alert labels shown, in order. Ours rather than a DOM query: a removed label stays
        # in the DOM until Textual prunes it, and a refresh in between (sizes and balance
        # arriving together) would write its alert into that dying label, which then vanishes.
        self._alert_labels: list[Label] = []

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
        self._refresh_all()  # columns give way, or come back; counts rewrap

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
        per_line = 2 if self.narrow else 3  # the panel is half the screen's width
        self.query_one("#counts", Static).update(
            "\n".join(
                "  ".join(f"[$text-muted]{k}[/] [b]{v}[/]" for k, v in counts[i : i + per_line])
                for i in range(0, len(counts), per_line)
            )
        )

    def _show_alerts(self, snap: Snapshot) -> None:
        alerts = compute_alerts(snap, self.console.sizes, self.console.balance, self.console.reach)
        box = self.query_one("#alerts", Vertical)
        labels = self._alert_labels
        for i, alert in enumerate(alerts):
            text = literal(f"{ICONS.get(alert.severity, '•')} {alert.text}")
            if i < len(labels):
                label = labels[i]
                label.update(text)
            else:
                label = Label(text, markup=False)
                box.mount(label)
                labels.append(label)
            label.set_classes(f"alert -{alert.severity}")
        for extra in labels[len(alerts) :]:
            extra.remove()
        del labels[len(alerts) :]

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
        narrow = self.size.width < WHOLE_UUIDS
        keys = fit_table(table, _columns(narrow), self.size.width - 2)
        for r in order:
            role = _role(snap, r.uuid)
            used, cap = _usage(snap, r.uuid, sizes)
            cell = {
                "repository": styled(self.app, r.label, "accent" if r.here else None, bold=r.here),
                "uuid": styled(self.app, short_uuid_cell(r.uuid, narrow), "muted"),
                "role": role,
                "trust": r.trust.label,
                "groups": " ".join(r.groups),
                "size": human(used) if used is not None else ("" if sizes else "…"),
                "maxsize": human(cap) if cap is not None else "",
                "usage": _usage_cell(self.app, used, cap),
            }
            cells = tuple(cell[k] for k in keys)
            text = " ".join([r.label, r.uuid, r.description, role, " ".join(r.groups)])
            if matches(text, self.filter_text):
                rows.append(Row(r.uuid, cells))
        sync_table(table, sort_rows(rows, self.sort_state, keys))


def _columns(narrow: bool) -> list[Column]:
    return [
        Column("repository", "repository", 0, 14),
        Column("uuid", "uuid", 3, 9 if narrow else 36),
        Column("role", "role", 1, 18),
        Column("trust", "trust", 4, 11),
        Column("groups", "groups", 5, 8),
        Column("size", "size", 2, 8),
        Column("maxsize", "maxsize", 3, 8),
        Column("usage", "usage", 2, USAGE_BAR + 5),
    ]


USAGE_BAR = 10
WHOLE_UUIDS = 140  # narrower than this, UUIDs are shortened to leave room for the other columns


def _usage(snap: Snapshot, uuid: str, sizes: SizesReport | None) -> tuple[int | None, int | None]:
    """(bytes stored, maxsize) of a repository; of a cluster, its nodes' totals (the maxsize
    total only over nodes that have one)."""
    row = snap.repos[uuid]
    cluster = snap.cluster(uuid) if row.is_cluster else None
    members = list(cluster.nodes) if cluster is not None else [uuid]
    used = None
    if sizes is not None:
        held = [sizes.sizes[u].size for u in members if u in sizes.sizes]
        used = sum(held) if held or cluster is not None else None
    caps = [snap.repos[u].maxsize for u in members if u in snap.repos]
    known = [c for c in caps if c is not None]
    return used, (sum(known) if known else None)


def _usage_cell(app: App[object], used: int | None, cap: int | None) -> Text:
    """`████░░░░░░ 37%`, coloured by how full; nothing without a maxsize."""
    if used is None or not cap:
        return Text("")
    fraction = used / cap
    cell = usage_bar(app, fraction, USAGE_BAR)
    cell.append(f" {fraction:4.0%}", style=theme_style(app, usage_state(fraction)))
    return cell


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
