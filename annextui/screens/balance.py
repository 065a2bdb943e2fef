"""Balance: per group of nodes, held vs want-get, keys to get and to drop (git-annex's words, as
`annextui balance` prints them), and a what-if panel (add a node, remove one, change a maxsize)
showing what would move. Nothing here changes anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from annextui.backend.units import parse_size
from annextui.console.balance_source import BalanceOverview, GroupBalance, WhatIf, WhatIfResult
from annextui.console.sizes_source import SizesReport
from annextui.console.snapshot import Snapshot
from annextui.console.validation import validate_name, validate_size
from annextui.screens.base import ConsoleScreen
from annextui.screens.dialogs import PromptScreen
from annextui.screens.literal import lines, markup
from annextui.screens.widgets import (
    Row,
    human,
    matches,
    selected_key,
    styled,
    sync_table,
)

if TYPE_CHECKING:  # the balance engine is imported by the worker that first needs it
    from annextui.backend.balance import Move


class WhatIfComputed(Message):
    def __init__(self, result: WhatIfResult) -> None:
        self.result = result
        super().__init__()


class RebalanceComputed(Message):
    def __init__(self, report: BalanceOverview) -> None:
        self.report = report
        super().__init__()


def move_cells(move: Move, label: dict[str, str]) -> tuple[Text, ...]:
    """kind, `from → to`, keys, bytes."""
    src = label.get(move.src, move.src[:8]) if move.src else "(no copy)"
    dst = label.get(move.dst, move.dst[:8]) if move.dst else "(dropped)"
    return (
        Text(move.kind),
        Text(f"{src} → {dst}"),
        Text(str(move.keys), justify="right"),
        Text(human(move.bytes), justify="right"),
    )


class BalanceScreen(ConsoleScreen):
    VIEW = "balance"
    TITLE_TEXT = "Balance"
    HELP = (
        "Per group of nodes (groups of cluster nodes, groups named by balanced= style "
        "expressions, else the cluster): what each member holds and what its preferred content "
        "wants (want-get, as git annex find --want-get-by=NODE), of those the keys it lacks "
        "(to get) and the keys it holds but would drop (to drop: --want-drop-by=NODE), and what "
        "the configuration as it is would transfer and drop. R switches to the decisions of "
        "git-annex --rebalance (balanced behaves as fullybalanced). The what-if panel simulates "
        "one change — a adds a new node, x removes the selected member, m changes its maxsize, "
        "c clears — and shows what would move. Nothing is changed here: stage real edits on "
        "the Clusters or Nodes views."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "whatif_add", "What if +node", id="balance.whatif_add"),
        Binding("x", "whatif_remove", "What if −node", id="balance.whatif_remove"),
        Binding("m", "whatif_maxsize", "What if maxsize", id="balance.whatif_maxsize"),
        Binding("c", "whatif_clear", "Clear what-if", id="balance.whatif_clear"),
        Binding(
            "R",
            "toggle_rebalance",
            "Rebalance",
            id="balance.rebalance",
            tooltip="Decide as git-annex --rebalance does (or not)",
        ),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="balance-summary")
        with Horizontal(id="balance-body"):
            with Vertical(id="balance-left"):
                yield DataTable(id="balance", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="pending", cursor_type="row", show_cursor=False)
            with Vertical(id="whatif-panel", classes="panel"):
                yield Static("", id="whatif-text")
                yield DataTable(id="moves", cursor_type="row", show_cursor=False)

    def on_mount(self) -> None:
        self.change: WhatIf | None = None
        self.result: WhatIfResult | None = None
        self.rebalance = False
        self.rebalanced: BalanceOverview | None = None
        table: DataTable[object] = self.query_one("#balance", DataTable)
        for label, key in (
            ("group", "group"),
            ("member", "member"),
            ("held", "held"),
            ("want-get", "want-get"),
            ("to get", "to-get"),
            ("to drop", "to-drop"),
            ("maxsize", "maxsize"),
        ):
            table.add_column(label, key=key)
        for tid in ("#pending", "#moves"):
            moves: DataTable[object] = self.query_one(tid, DataTable)
            moves.add_columns("", "from → to", "keys", "bytes")
        self.query_one("#whatif-panel").border_title = "What if"
        self.watch(self.app, "balance", lambda _v: self._refresh(), init=False)

    def main_widget(self) -> Widget | None:
        return self.query_one("#balance", DataTable)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.rebalanced = None
        if self.rebalance:
            self._compute_rebalanced()
        self._refresh()

    def filter_changed(self, text: str) -> None:
        self._refresh()

    def refresh_view(self) -> None:
        self._set_change(self.change)

    @property
    def report(self) -> BalanceOverview | None:
        return self.rebalanced if self.rebalance else self.console.balance

    def _labels(self) -> dict[str, str]:
        snap = self.console.snapshot
        labels = {u: snap.label(u) for u in snap.repos} if snap else {}
        if self.result is not None:
            labels.update(dict(self.result.names))
        return labels

    def _selected(self) -> tuple[str, str] | None:
        key = selected_key(self.query_one("#balance", DataTable))
        if key is None:
            return None
        group, _sep, uuid = key.partition("/")
        return group, uuid

    def _refresh(self) -> None:
        snap = self.console.snapshot
        report = self.report
        if snap is None:
            return
        rows = []
        groups = report.groups if report is not None else ()
        for g in groups:
            for m in g.members:
                wanted = (
                    f"{human(m.want_get_bytes or 0)} ({m.want_get_keys})"
                    if m.want_get_keys is not None
                    else "not configured"
                )
                cells = (
                    Text(g.group, style="bold"),
                    Text(m.label),
                    Text(f"{human(m.held_bytes)} ({m.held_keys})"),
                    Text(wanted),
                    styled(self.app, str(m.to_get_keys), "warning" if m.to_get_keys else "muted"),
                    styled(self.app, str(m.to_drop_keys), "warning" if m.to_drop_keys else "muted"),
                    Text(human(m.maxsize) if m.maxsize is not None else "-"),
                )
                hay = " ".join([g.group, m.label, m.uuid, g.expression])
                if matches(hay, self.filter_text):
                    rows.append(Row(f"{g.group}/{m.uuid}", cells))
        sync_table(self.query_one("#balance", DataTable), rows)
        self._show_pending(groups)
        self._summary(report)
        self._show_whatif()

    def _show_pending(self, groups: tuple[GroupBalance, ...]) -> None:
        labels = self._labels()
        rows = []
        for g in groups:
            for i, mv in enumerate(g.pending):
                rows.append(Row(f"{g.group}/{i}", move_cells(mv, labels)))
        sync_table(self.query_one("#pending", DataTable), rows)
        self.query_one("#pending").display = bool(rows)

    def _summary(self, report: BalanceOverview | None) -> None:
        box = self.query_one("#balance-summary", Static)
        mode = " [reverse $text-warning] --rebalance [/]" if self.rebalance else ""
        if report is None:
            box.update("[$text-muted]balance: waiting for sizes…[/]" + mode)
            return
        if not report.groups:
            box.update("[$text-muted]no balanced groups: put the cluster nodes in a group[/]")
            return
        parts = []
        for g in report.groups:
            plan = g.plan
            state = "[$text-success]balanced[/]" if plan.empty else "[$text-warning]$plan[/]"
            parts.append(
                markup(
                    f"[b]$group[/b] $expr {state}",
                    group=g.group,
                    expr=g.expression,
                    plan=plan.describe(),
                )
            )
        if report.note:
            parts.append(markup("[$text-error]$note[/]", note=report.note))
        box.update(Content("   ").join(parts) + Content.from_markup(mode))

    # -- rebalance ---------------------------------------------------------------------------
    def action_toggle_rebalance(self) -> None:
        self.rebalance = not self.rebalance
        if self.rebalance and self.rebalanced is None:
            self._compute_rebalanced()
        self._refresh()
        if self.change is not None:
            self._set_change(
                WhatIf(
                    self.change.group,
                    self.change.kind,
                    self.change.target,
                    self.change.maxsize,
                    self.rebalance,
                )
            )

    def _compute_rebalanced(self) -> None:
        snap, sizes = self.console.snapshot, self.console.sizes
        if snap is not None and sizes is not None:
            self.compute_rebalanced(snap, sizes)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rebalance")
    def compute_rebalanced(self, snap: Snapshot, sizes: SizesReport) -> None:
        backend = self.console.backend
        assert backend is not None
        report = backend.balance(snap, sizes, rebalance=True)
        if not get_current_worker().is_cancelled:
            self.post_message(RebalanceComputed(report))

    def on_rebalance_computed(self, message: RebalanceComputed) -> None:
        self.rebalanced = message.report
        self._refresh()

    # -- what-if -----------------------------------------------------------------------------
    def _set_change(self, change: WhatIf | None) -> None:
        self.change = change
        self.result = None
        self._show_whatif()
        snap, sizes = self.console.snapshot, self.console.sizes
        if change is not None and snap is not None and sizes is not None:
            self.compute(snap, sizes, change)

    @work(thread=True, exclusive=True, exit_on_error=False, group="whatif")
    def compute(self, snap: Snapshot, sizes: SizesReport, change: WhatIf) -> None:
        backend = self.console.backend
        assert backend is not None
        result = backend.what_if(snap, sizes, change)
        if not get_current_worker().is_cancelled:
            self.post_message(WhatIfComputed(result))

    def on_what_if_computed(self, message: WhatIfComputed) -> None:
        if message.result.what_if == self.change:
            self.result = message.result
            self._show_whatif()

    def _group(self) -> str | None:
        sel = self._selected()
        if sel is not None:
            return sel[0]
        report = self.report
        if report is not None and len(report.groups) == 1:
            return report.groups[0].group
        self.notify("Select a member of a group first.", severity="warning")
        return None

    def _what(
        self,
        group: str,
        kind: Literal["add", "remove", "maxsize"],
        target: str,
        maxsize: int | None = None,
    ) -> None:
        self._set_change(WhatIf(group, kind, target, maxsize, self.rebalance))

    def action_whatif_add(self) -> None:
        group = self._group()
        if group is None:
            return

        def got_name(name: str | None) -> None:
            if not name:
                return
            self.app.push_screen(
                PromptScreen(
                    f"Maxsize of {name} (empty: none)",
                    validate=lambda v: validate_size(v) if v else None,
                ),
                lambda size: (
                    self._what(group, "add", name, parse_size(size) if size else None)
                    if size is not None
                    else None
                ),
            )

        self.app.push_screen(
            PromptScreen(
                f"What if a new node joined {group}? Its name:",
                value="newnode",
                validate=validate_name,
            ),
            got_name,
        )

    def action_whatif_remove(self) -> None:
        sel = self._selected()
        if sel is None:
            self.notify("Select a member first.", severity="warning")
            return
        self._what(sel[0], "remove", sel[1])

    def action_whatif_maxsize(self) -> None:
        sel = self._selected()
        snap = self.console.snapshot
        if sel is None or snap is None:
            self.notify("Select a member first.", severity="warning")
            return
        group, uuid = sel

        def got(value: str | None) -> None:
            if value:
                self._what(group, "maxsize", uuid, parse_size(value))

        self.app.push_screen(
            PromptScreen(f"What if {snap.label(uuid)} had maxsize", validate=validate_size), got
        )

    def action_whatif_clear(self) -> None:
        self._set_change(None)

    def _show_whatif(self) -> None:
        text = self.query_one("#whatif-text", Static)
        moves: DataTable[object] = self.query_one("#moves", DataTable)
        if self.change is None:
            text.update(
                "[$text-muted]No hypothetical change.\n"
                "a: a new node joins the group\nx: the selected member leaves\n"
                "m: the selected member's maxsize changes[/]"
            )
            sync_table(moves, [])
            return
        labels = self._labels()
        mode = " (--rebalance)" if self.change.rebalance else ""
        head = markup(
            "[b]$group[/b]: $change$mode\n",
            group=self.change.group,
            change=self.change.describe(labels),
            mode=mode,
        )
        result = self.result
        if result is None:
            text.update(head + Content.from_markup("[$text-muted]computing…[/]"))
            sync_table(moves, [])
            return
        if result.error:
            text.update(head + markup("[$text-error]$error[/]", error=result.error))
            sync_table(moves, [])
            return
        from annextui.backend.balance import PlanTotals

        parts = [head + markup("[b]$plan[/b]", plan=PlanTotals.of(result.moves).describe())]
        for u, keys, nbytes, maxsize in result.after:
            use = f", {nbytes / maxsize:.0%} of max" if maxsize else ""
            parts.append(
                markup(f"  $label: {human(nbytes)} ({keys}){use}", label=labels.get(u, u[:8]))
            )
        text.update(lines(*parts))
        rows = [Row(str(i), move_cells(mv, labels)) for i, mv in enumerate(result.moves)]
        sync_table(moves, rows)
