"""Nodes / free space: per node keys, bytes, maxsize, a usage bar, %use and variance from the
mean (as Ceph's `osd df`), sorted and filterable. Sizes arrive from the app's sizes worker (an
incremental cache on refresh); until then the size columns show `…`."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import DataTable, Static

from annextui.console.history import spark
from annextui.console.sizes_source import SizesReport
from annextui.console.snapshot import Snapshot
from annextui.screens.node_edits import RepoEditing
from annextui.screens.widgets import (
    Column,
    Row,
    fit_table,
    human,
    matches,
    selected_key,
    styled,
    sync_table,
    usage_bar,
    usage_state,
)

SORTS = ("name", "%use", "size", "keys", "maxsize")
HEADER_SORTS = {"node": "name", "keys": "keys", "size": "size", "maxsize": "maxsize"}
HEADER_SORTS |= {k: "%use" for k in ("bar", "use", "var", "delta")}
TREND = 10  # samples shown in the trend column

COLUMNS = [
    Column("node", "node", 0, 8),
    Column("cluster", "cluster", 5, 8),
    Column("groups", "groups", 6, 8),
    Column("keys", "keys", 3, 6),
    Column("size", "size", 1, 8),
    Column("maxsize", "maxsize", 2, 8),
    Column("bar", "usage", 1, 20),
    Column("use", "%use", 0, 6),
    Column("var", "VAR", 5, 5),
    Column("delta", "Δmean", 6, 6),
    Column("trend", "trend", 4, TREND),
]


@dataclass(frozen=True, slots=True)
class NodeUsage:
    uuid: str
    label: str
    clusters: str
    groups: str
    keys: int | None
    bytes: int | None
    maxsize: int | None

    @property
    def use(self) -> float | None:
        if self.bytes is None or not self.maxsize:
            return None
        return self.bytes / self.maxsize


def node_usages(snap: Snapshot, sizes: SizesReport | None, *, everything: bool) -> list[NodeUsage]:
    """Rows: the cluster nodes (or every repository with content or a maxsize)."""
    if everything or not snap.node_uuids:
        uuids = [
            u
            for u, r in snap.repos.items()
            if not r.is_cluster
            and (r.maxsize is not None or (sizes is not None and u in sizes.sizes) or r.here)
        ]
    else:
        uuids = snap.node_uuids
    out = []
    for u in uuids:
        r = snap.repos.get(u)
        s = sizes.sizes.get(u) if sizes else None
        out.append(
            NodeUsage(
                uuid=u,
                label=snap.label(u),
                clusters=", ".join(snap.cluster_name(c) for c in r.clusters) if r else "",
                groups=" ".join(r.groups) if r else "",
                keys=(s.keys if s else 0) if sizes else None,
                bytes=(s.size if s else 0) if sizes else None,
                maxsize=r.maxsize if r else None,
            )
        )
    return out


def sort_usages(rows: list[NodeUsage], by: str, reverse: bool) -> list[NodeUsage]:
    def key(n: NodeUsage) -> tuple[int, float | str]:
        if by == "name":
            return (0, n.label)
        value = {"%use": n.use, "size": n.bytes, "keys": n.keys, "maxsize": n.maxsize}[by]
        return (0, float(value)) if value is not None else (1, 0.0)

    ordered = sorted(rows, key=key, reverse=reverse)
    if reverse:  # unknown values stay last either way
        ordered = [n for n in ordered if key(n)[0] == 0] + [n for n in ordered if key(n)[0] == 1]
    return ordered


class NodesScreen(RepoEditing):
    VIEW = "nodes"
    TITLE_TEXT = "Nodes"
    HELP = (
        "Free space per node: keys and bytes from the location logs, maxsize from the branch, "
        "%use = size / maxsize, VAR = %use / mean %use (Ceph's osd df), Δmean in percentage "
        "points; trend: the node's bytes at every size reading since the console opened. "
        "Sizes come from a worker and an incremental cache, so the table is usable "
        "before they arrive. s changes the sort column, o reverses it, a shows every "
        "repository instead of only cluster nodes; g/w/m stage a change of the selected "
        "repository's groups, wanted or maxsize."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort", "Sort", id="nodes.sort", tooltip="Sort by the next column"),
        Binding("o", "reverse", "Reverse", id="nodes.reverse"),
        Binding("a", "toggle_all", "All repos", id="nodes.all"),
        Binding("g", "set_group", "Group", id="nodes.group"),
        Binding("w", "set_wanted", "Wanted", id="nodes.wanted"),
        Binding("m", "set_maxsize", "Maxsize", id="nodes.maxsize"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="nodes-summary")
        yield DataTable(id="nodes", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.sort_by = "%use"
        self.reverse = True
        self.everything = False
        for attr in ("sizes", "sizes_progress", "sizes_readings"):
            self.watch(self.app, attr, lambda _v: self._refresh(), init=False)

    def main_widget(self) -> Widget | None:
        return self.query_one(DataTable)

    def selected_uuid(self) -> str | None:
        return selected_key(self.query_one(DataTable))

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self._refresh()

    def filter_changed(self, text: str) -> None:
        self._refresh()

    def on_resize(self) -> None:
        self._refresh()  # columns give way, or come back

    def action_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.reverse = self.sort_by != "name"
        self._refresh()

    def header_clicked(self, column: str) -> None:
        """A click on a header sorts by that column's figure (a second click reverses)."""
        by = HEADER_SORTS.get(column)
        if by is None:
            return
        self.reverse = not self.reverse if by == self.sort_by else by != "name"
        self.sort_by = by
        self._refresh()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._refresh()

    def action_toggle_all(self) -> None:
        self.everything = not self.everything
        self._refresh()

    def _refresh(self) -> None:
        snap = self.console.snapshot
        if snap is None:
            return
        sizes = self.console.sizes
        usages = node_usages(snap, sizes, everything=self.everything)
        uses = [n.use for n in usages if n.use is not None]
        mean = statistics.fmean(uses) if uses else None
        rows = []
        table: DataTable[object] = self.query_one(DataTable)
        keys = fit_table(table, COLUMNS, self.size.width - 2)
        history = self.console.usage_history
        for n in sort_usages(usages, self.sort_by, self.reverse):
            hay = " ".join([n.label, n.uuid, n.clusters, n.groups])
            if not matches(hay, self.filter_text):
                continue
            use = n.use
            state = usage_state(use) if use is not None else None
            var = use / mean if use is not None and mean else None
            delta = (use - mean) * 100 if use is not None and mean is not None else None
            pending = "…" if sizes is None else ""
            cell = {
                "node": styled(
                    self.app, n.label, "accent" if n.uuid == snap.uuid else None, bold=True
                ),
                "cluster": Text(n.clusters),
                "groups": Text(n.groups),
                "keys": Text(str(n.keys) if n.keys is not None else pending, justify="right"),
                "size": Text(human(n.bytes) if n.bytes is not None else pending, justify="right"),
                "maxsize": Text(
                    human(n.maxsize) if n.maxsize is not None else "-", justify="right"
                ),
                "bar": usage_bar(self.app, use),
                "use": styled(self.app, f"{use:.1%}" if use is not None else pending or "-", state),
                "var": Text(f"{var:.2f}" if var is not None else "", justify="right"),
                "delta": Text(f"{delta:+.1f}" if delta is not None else "", justify="right"),
                "trend": styled(self.app, spark(history.values(n.uuid), TREND), "accent"),
            }
            cells = tuple(cell[k] for k in keys)
            rows.append(Row(n.uuid, cells))
        sync_table(self.query_one(DataTable), rows)
        self._summary(usages, uses, mean, sizes)

    def _summary(
        self,
        usages: list[NodeUsage],
        uses: list[float],
        mean: float | None,
        sizes: SizesReport | None,
    ) -> None:
        arrow = "↓" if self.reverse else "↑"
        snap = self.console.snapshot
        nodes_only = not self.everything and snap is not None and bool(snap.node_uuids)
        scope = "cluster nodes" if nodes_only else "repositories"
        parts = [f"[b]{len(usages)}[/b] {scope}", f"sorted by {self.sort_by} {arrow}"]
        progress = self.console.sizes_progress
        if progress is not None:
            done, total = progress
            of = f" of ~{total:,}" if total else ""
            parts.append(f"[$text-warning]sizes: scanning {done:,}{of} location logs…[/]")
        if sizes is None:
            if progress is None:
                parts.append("[$text-muted]sizes: computing…[/]")
        else:
            used = sum(n.bytes or 0 for n in usages)
            cap = sum(n.maxsize or 0 for n in usages if n.maxsize)
            stored = f"total {human(used)}"
            if cap:
                stored += f" of {human(cap)} ({used / cap:.0%})"
            parts.append(stored)
            if mean and uses:
                var_min, var_max = min(uses) / mean, max(uses) / mean
                sd = statistics.pstdev(uses) * 100
                parts.append(f"MIN/MAX VAR {var_min:.2f}/{var_max:.2f}  STDDEV {sd:.1f}")
            parts.append(
                f"[$text-muted]sizes: {sizes.mode} in {sizes.seconds:.2f} s, {sizes.keys:,} keys[/]"
            )
        self.query_one("#nodes-summary", Static).update("   ".join(parts))
