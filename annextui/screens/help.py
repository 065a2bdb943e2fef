"""`?`: the keys of the current view and the global ones, from the same `Binding` declarations
the footer and the command palette use (bindings with an `id` are ours)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Static

from annextui.screens.dialogs import Dialog


def our_bindings(bindings: dict[str, ActiveBinding]) -> list[tuple[str, ActiveBinding]]:
    """(key, active binding) for our declared bindings, one row per binding id."""
    seen: dict[str, tuple[str, ActiveBinding]] = {}
    for key, ab in bindings.items():
        bid = ab.binding.id
        if not bid:
            continue
        if bid in seen:
            prev_key, prev = seen[bid]
            seen[bid] = (f"{prev_key} {key}", prev)
        else:
            seen[bid] = (key, ab)
    return list(seen.values())


def key_label(app: App[object], keys: str, binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    return " ".join(app.get_key_display(binding.with_key(k)) for k in keys.split())


#: Width of the key, where and state columns with cell padding, and the dialog's frame.
HELP_OTHER_COLUMNS = 40


class HelpScreen(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close help", id="help.close"),
    ]

    def __init__(
        self,
        title: str,
        text: str,
        bindings: Iterable[tuple[str, ActiveBinding]],
        is_global: Iterable[str],
    ) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._text = text
        self._keys = list(bindings)
        self._global = set(is_global)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Help — {self._title}", id="dialog-title", markup=False)
            if self._text:
                yield Static(self._text, id="dialog-help", markup=False)
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table: DataTable[str] = self.query_one(DataTable)
        table.add_columns("key", "does", "where", "")
        rows = sorted(
            self._keys,
            key=lambda kb: (kb[1].binding.id in self._global, kb[1].binding.id or ""),
        )
        # The dialog is at most 90 columns; "does" takes what the other columns leave.
        room = max(16, min(58, min(90, self.app.size.width - 4) - HELP_OTHER_COLUMNS))
        for keys, ab in rows:
            b = ab.binding
            where = "everywhere" if b.id in self._global else "this view"
            state = "" if ab.enabled else "(not now)"
            does = b.description + (f" — {b.tooltip}" if b.tooltip else "")
            if len(does) > room:
                does = does[: room - 1] + "…"
            table.add_row(
                key_label(self.app, keys, b),
                does,
                where,
                state,
                key=b.id,
            )
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
