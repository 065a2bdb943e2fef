"""The top bar every view shares: the repository (clipped first), the views as clickable tabs,
when the data was read, and the badges an admin must see (staged edits, READ-ONLY).

The badges and the data stamp are widgets of their own with `width: auto`, docked right of a
`1fr` title, so a narrow terminal clips the path and never them; below `FULL_TABS` columns the
tabs other than the current one shrink to their key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from annextui.screens.literal import markup
from annextui.screens.widgets import short_path

#: Narrower than this, only the current view's tab shows its title (the others their key).
FULL_TABS = 110


@dataclass(frozen=True, slots=True)
class TopBarState:
    repo: str
    role: str
    views: Sequence[tuple[str, str, str]]  # (key, mode name, title)
    current: str
    staged: int
    readonly: bool
    read_at: float | None  # when the snapshot was read (POSIX seconds)
    branch: str | None  # the git-annex branch commit it was read from


def read_stamp(read_at: float | None, branch: str | None) -> str:
    """`19:32:10 a1b2c3d`: local time the data was read, and the branch commit, short."""
    if read_at is None:
        return "loading…"
    clock = time.strftime("%H:%M:%S", time.localtime(read_at))
    return f"{clock} {branch[:7]}" if branch else clock


def tabs(views: Sequence[tuple[str, str, str]], current: str, *, full: bool) -> Content:
    """The views; a click runs `app.view(NAME)` as the view's key does."""
    parts = []
    for key, name, title in views:
        click = f"@click=app.view('{name}')"
        if name == current:
            parts.append(Content.from_markup(f"[reverse $text-primary {click}] {key} {title} [/]"))
        elif full:
            parts.append(Content.from_markup(f"[{click}] [$text-muted]{key}[/] {title} [/]"))
        else:
            parts.append(Content.from_markup(f"[{click}] [$text-muted]{key}[/] [/]"))
    return Content("").join(parts)


class TopBar(Horizontal):
    """One line: title (clipped first), tabs, data stamp, badges."""

    def compose(self) -> ComposeResult:
        yield Static("", id="topbar-title")
        yield Static("", id="topbar-tabs")
        yield Static("", id="topbar-stamp")
        yield Static("", id="topbar-staged")
        yield Static("", id="topbar-readonly")

    def show(self, state: TopBarState) -> None:
        self._state = state
        self.query_one("#topbar-title", Static).update(
            markup(
                "[b]annextui[/] [$text-muted]$repo[/] [$text-accent]$role[/]",
                repo=short_path(state.repo),
                role=state.role,
            )
        )
        self._show_tabs()
        stamp = self.query_one("#topbar-stamp", Static)
        stamp.update(Content.styled(read_stamp(state.read_at, state.branch), "$text-muted"))
        stamp.tooltip = (
            "When the data shown was read, and the git-annex branch commit it was read from "
            "(r reads again)"
        )
        staged = self.query_one("#topbar-staged", Static)
        staged.update(
            Content.from_markup(f"[$text-warning]● {state.staged} staged[/]")
            if state.staged
            else ""
        )
        staged.display = bool(state.staged)
        readonly = self.query_one("#topbar-readonly", Static)
        readonly.update(Content.from_markup("[reverse $text-warning] READ-ONLY [/]"))
        readonly.display = state.readonly

    def _show_tabs(self) -> None:
        state: TopBarState | None = getattr(self, "_state", None)
        if state is None:
            return
        full = self.app.size.width >= FULL_TABS
        self.query_one("#topbar-tabs", Static).update(tabs(state.views, state.current, full=full))

    def on_resize(self) -> None:
        self._show_tabs()
