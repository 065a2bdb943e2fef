"""The frame every view shares: top bar, body, `/` filter bar and footer; read-only greying;
worker failures handed to the app's one handler."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable
from textual.worker import Worker

from annextui.console.backend import READONLY_MESSAGE
from annextui.console.snapshot import Snapshot
from annextui.screens.host import ConsoleHost
from annextui.screens.topbar import TopBar, TopBarState
from annextui.screens.widgets import FilterBar, SortState

ESSENTIAL_KEYS = frozenset({"app.quit", "app.help", "app.palette"})


class ConsoleScreen(Screen[None]):
    """Base of the six views. Subclasses set VIEW/TITLE/HELP, compose_body and the show_* hooks."""

    VIEW: ClassVar[str] = ""
    TITLE_TEXT: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    #: What `r` re-reads for this view beyond the snapshot, sizes and balance (its toast says).
    REFRESHES: ClassVar[str] = ""
    #: Actions that would change the repository: greyed out (disabled) with --readonly.
    MUTATING: ClassVar[frozenset[str]] = frozenset()
    FILTERABLE: ClassVar[bool] = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="view.filter", tooltip="Filter the table"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="view.clear_filter"),
    ]

    #: Screen classes by width: `-narrow` below 100 columns (app.tcss lays views out for it).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012 (Screen's own type)
    filter_text: reactive[str] = reactive("")

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """`q`, `?` and `^p` first: a narrow footer is clipped on the right, and these stay."""
        bindings = super().active_bindings
        first = {k: ab for k, ab in bindings.items() if ab.binding.id in ESSENTIAL_KEYS}
        return {**first, **{k: ab for k, ab in bindings.items() if k not in first}}

    @property
    def narrow(self) -> bool:
        return self.has_class("-narrow")

    @property
    def console(self) -> ConsoleHost:
        return cast(ConsoleHost, self.app)

    # -- composition -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        from textual.widgets import Footer

        yield TopBar(id="topbar")
        yield from self.compose_body()
        if self.FILTERABLE:
            yield FilterBar(id="filter")
        yield Footer(show_command_palette=False, compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sort_state = SortState()

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self._snapshot_changed, init=True)
        self.watch(self.app, "staged", self._staged_changed, init=False)
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def on_screen_resume(self) -> None:
        self.update_topbar()

    def _snapshot_changed(self, snapshot: Snapshot | None) -> None:
        self.update_topbar()
        if snapshot is not None:
            self.show_snapshot(snapshot)

    def _theme_changed(self, _theme: object) -> None:
        snapshot = self.console.snapshot
        if snapshot is not None:  # table cells carry colours resolved from the theme
            self.show_snapshot(snapshot)

    def _staged_changed(self, _staged: object) -> None:
        self.update_topbar()
        self.refresh_bindings()
        self.staged_changed()

    def update_topbar(self) -> None:
        snap = self.console.snapshot
        self.query_one(TopBar).show(
            TopBarState(
                repo=str(snap.path) if snap else "loading…",
                role=snap.role if snap else "",
                views=self.console.view_keys(),
                current=self.VIEW,
                staged=len(self.console.staged),
                readonly=self.console.readonly,
                read_at=snap.loaded_at if snap else None,
                branch=snap.head if snap else None,
            )
        )

    # -- hooks for subclasses ----------------------------------------------------------------
    def show_snapshot(self, snapshot: Snapshot) -> None:
        """A fresh snapshot of the repository arrived."""

    def staged_changed(self) -> None:
        """The list of staged edits changed."""

    def filter_changed(self, text: str) -> None:
        """The `/` filter text changed."""

    def refresh_view(self) -> None:
        """`r`: re-read what this view shows beyond the snapshot."""

    def main_widget(self) -> Widget | None:
        return None

    # -- sorting by a click on a column header ----------------------------------------------
    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        if event.data_table is not self.main_widget() or event.column_key.value is None:
            return
        event.stop()
        self.header_clicked(event.column_key.value)

    def header_clicked(self, column: str) -> None:
        """Sort by `column`, or reverse when it already is (views with their own sort keys
        override this)."""
        self.sort_state.toggle(column)
        arrow = "↓" if self.sort_state.reverse else "↑"
        self.notify(f"Sorted by {column} {arrow}", timeout=2)
        self.filter_changed(self.filter_text)  # every view redraws its rows there

    # -- read-only ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MUTATING and self.console.readonly:
            return None  # shown, greyed out
        return True

    def refuse_if_readonly(self) -> bool:
        if self.console.readonly:
            self.notify(READONLY_MESSAGE, severity="warning")
            return True
        return False

    # -- filter ------------------------------------------------------------------------------
    def action_filter(self) -> None:
        if self.FILTERABLE:
            self.query_one(FilterBar).open()

    def action_clear_filter(self) -> None:
        if not self.FILTERABLE:
            return
        bar = self.query_one(FilterBar)
        if bar.is_open or self.filter_text:
            bar.close()

    @on(FilterBar.Changed)
    def _filter_bar_changed(self, event: FilterBar.Changed) -> None:
        self.filter_text = event.text

    @on(FilterBar.Closed)
    def _filter_bar_closed(self) -> None:
        if not self.filter_text:
            self.query_one(FilterBar).remove_class("-open")
        widget = self.main_widget()
        if widget is not None:
            widget.focus()

    def watch_filter_text(self, text: str) -> None:
        self.filter_changed(text)

    # -- workers -----------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.console.worker_state_changed(event)
