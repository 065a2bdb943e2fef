"""Widgets and helpers shared by the screens: the `/` filter bar, table syncing
that keeps the cursor, usage bars, and state styles taken from the theme."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.color import Color
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Input, Label
from textual.widgets.data_table import ColumnKey, RowKey

from annextui.backend.units import format_rough
from annextui.screens.literal import clean

# Semantic states -> theme variables (widgets use CSS classes `-ok`, `-warning`, `-error`,
# `-muted` mapped in app.tcss; table cells, which are Rich text, resolve the same variables).
STATE_VARIABLES = {
    "ok": "text-success",
    "warning": "text-warning",
    "error": "text-error",
    "muted": "text-muted",
    "accent": "text-accent",
    "primary": "text-primary",
}


def theme_style(app: App[object], state: str, *, bold: bool = False) -> Style:
    """A Rich style for a semantic state, from the current theme's variables."""
    variables = app.theme_variables or app.get_css_variables()
    name = STATE_VARIABLES.get(state, state)
    value = variables.get(name)
    if value is None:
        return Style(bold=bold)
    background = Color.parse(variables.get("background", "#000000"))
    if value.startswith("auto"):  # "auto 60%": the contrasting text colour at that alpha
        alpha = float(value.split()[1].rstrip("%")) / 100 if " " in value else 1.0
        color = background.get_contrast_text(alpha)
    else:
        color = Color.parse(value)
    if color.a < 1:
        color = background + color
    return Style(color=color.rich_color, bold=bold)


def styled(app: App[object], text: str, state: str | None, *, bold: bool = False) -> Text:
    """`text` (possibly data) shown literally in a state's style."""
    if state is None:
        return Text(clean(text), style=Style(bold=bold) if bold else "")
    return Text(clean(text), style=theme_style(app, state, bold=bold))


def usage_state(fraction: float | None) -> str:
    if fraction is None:
        return "muted"
    if fraction >= 0.9:
        return "error"
    if fraction >= 0.75:
        return "warning"
    return "ok"


def usage_bar(app: App[object], fraction: float | None, width: int = 20) -> Text:
    """`███████░░░░░` coloured by how full; an empty dotted bar when unknown."""
    if fraction is None:
        return styled(app, "·" * width, "muted")
    f = max(0.0, min(1.0, fraction))
    eighths = round(f * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full
    if part and full < width:
        bar += " ▏▎▍▌▋▊▉"[part]
    text = Text(bar, style=theme_style(app, usage_state(fraction)))
    text.append("░" * (width - len(bar)), style=theme_style(app, "muted"))
    return text


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    cells: tuple[object, ...]


def sync_table(table: DataTable[Any], rows: Sequence[Row]) -> None:
    """Make `table` show `rows` in order, updating rows in place by key (never `clear()`), so
    the cursor stays on the same row while data changes underneath it."""
    rows = [Row(r.key, tuple(_literal_cell(c) for c in r.cells)) for r in rows]
    columns: list[ColumnKey] = list(table.columns)
    wanted = {r.key for r in rows}
    current_key = _cursor_key(table)
    for key in [k.value for k in list(table.rows) if k.value not in wanted]:
        if key is not None:
            table.remove_row(key)
    existing = {k.value for k in table.rows}
    for row in rows:
        if row.key in existing:
            old = table.get_row(row.key)
            for col, old_cell, new_cell in zip(columns, old, row.cells, strict=False):
                if not _same(old_cell, new_cell):
                    table.update_cell(row.key, col, new_cell, update_width=True)
                    _widen(table, col, new_cell)
        else:
            table.add_row(*row.cells, key=row.key)
    order = [table.get_row_index(r.key) for r in rows]
    if order != sorted(order):
        # DataTable sorts by cell values only: rank the rows through their first cell's identity.
        rank = {id(table.get_row(r.key)[0]): i for i, r in enumerate(rows)}
        table.sort(columns[0], key=lambda cell: rank.get(id(cell), len(rank)))
    if current_key is not None and current_key in wanted:
        index = table.get_row_index(current_key)
        if index != table.cursor_row:
            table.move_cursor(row=index, animate=False, scroll=False)


def _widen(table: DataTable[Any], column: ColumnKey, cell: object) -> None:
    """Give the column room for `cell` now. DataTable widens a column for an updated cell only
    at its next idle, and lines it draws before then stay in its render cache at the old width
    (Textual 8 keys that cache by update count, not by widths): a repaint falling in between,
    as under load, left cells cut ("23.2" for "23.2 GB") until the next change."""
    text = cell.plain if isinstance(cell, Text) else str(cell)
    width = max((cell_len(line) for line in text.splitlines()), default=0)
    target = table.columns[column]
    target.content_width = max(target.content_width, width)


def _literal_cell(cell: object) -> object:
    """A cell shown literally: DataTable would parse a str as markup, and Rich keeps ESC."""
    if isinstance(cell, str):
        return Text(clean(cell))
    if isinstance(cell, Text) and clean(cell.plain) != cell.plain:
        shown = cell.copy()
        shown.plain = clean(cell.plain)  # one character for one: the spans stay in place
        return shown
    return cell


def _cursor_key(table: DataTable[Any]) -> str | None:
    if not table.row_count:
        return None
    try:
        key: RowKey = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
    except Exception:
        return None
    return key.value


def _same(a: object, b: object) -> bool:
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.spans == b.spans and a.style == b.style
    return a == b


def selected_key(table: DataTable[Any]) -> str | None:
    return _cursor_key(table)


def matches(text: str, needle: str) -> bool:
    """Case-insensitive filter: every word of `needle` occurs somewhere in `text`."""
    hay = text.lower()
    return all(word in hay for word in needle.lower().split())


def short_path(path: str, width: int = 32) -> str:
    """`…/demo/gateway`: the tail of a long path, whole components only where possible."""
    if len(path) <= width:
        return path
    parts = path.split("/")
    out = parts[-1]
    for part in reversed(parts[:-1]):
        if len(out) + len(part) + 3 > width:
            break
        out = f"{part}/{out}"
    return "…/" + out if len(out) + 2 <= width else "…" + path[-(width - 1) :]


class FilterBar(Horizontal):
    """The `/` filter: a docked input; every keystroke filters the view, `esc` clears it."""

    class Changed(Message):
        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    class Closed(Message):
        pass

    def compose(self) -> ComposeResult:
        yield Label("/", id="filter-label")
        yield Input(placeholder="filter (esc clears)", id="filter-input")

    def open(self) -> None:
        self.add_class("-open")
        self.query_one(Input).focus()

    def close(self) -> None:
        inp = self.query_one(Input)
        if inp.value:
            inp.value = ""
        self.remove_class("-open")
        self.post_message(self.Changed(""))
        self.post_message(self.Closed())

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.value))

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Closed())


def human(n: int) -> str:
    """A size for tables: git-annex's rough format with one decimal (`11.2 GB`)."""
    return format_rough(n, 1)


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: `rank` 0 is the last to give way when the table is too narrow; `width`
    is what its cells usually need."""

    key: str
    label: str
    rank: int
    width: int


def fitting_columns(columns: Sequence[Column], width: int) -> list[Column]:
    """The columns that fit in `width` cells, dropping the least important first (display
    order kept). DataTable pads every cell by one on each side."""
    kept = list(columns)
    while len(kept) > 1 and sum(c.width + 2 for c in kept) > width:
        kept.remove(max(kept, key=lambda c: (c.rank, kept.index(c))))
    return kept


def fit_table(table: DataTable[Any], columns: Sequence[Column], width: int) -> list[str]:
    """Give `table` the columns that fit (rebuilt only when the set changes); their keys."""
    keys = [c.key for c in fitting_columns(columns, width)]
    if [k.value for k in table.columns] != keys:
        table.clear(columns=True)
        for c in columns:
            if c.key in keys:
                table.add_column(c.label, key=c.key)
    return keys


def short_uuid_cell(uuid: str, narrow: bool) -> str:
    """A UUID in a table: whole when there is room, its first 8 digits and `…` when narrow."""
    return f"{uuid[:8]}…" if narrow else uuid


@dataclass(slots=True)
class SortState:
    """The column a table is sorted by (None: the view's own order) and its direction; a click
    on a column header sorts by it, a second click reverses."""

    column: str | None = None
    reverse: bool = False

    def toggle(self, column: str) -> None:
        if self.column == column:
            self.reverse = not self.reverse
        else:
            self.column, self.reverse = column, False


_BAR = "█▉▊▋▌▍▎▏░· "


def sort_value(cell: object) -> tuple[int, float, str]:
    """How a cell sorts: numbers (sizes in git-annex's units, `37%`, `1.97`) by value, text
    alphabetically after them, empty cells last; a usage bar by the figure after it."""
    text = str(getattr(cell, "plain", cell)).lstrip(_BAR).strip()
    if not text or text in ("…", "-", "?"):
        return (2, 0.0, "")
    number = text.rstrip("%")
    try:
        return (0, float(number), "")
    except ValueError:
        pass
    from annextui.backend.units import SizeError, parse_size

    try:
        return (0, float(parse_size(text.removesuffix("/s"))), "")
    except SizeError:
        return (1, 0.0, text.lower())


def sort_rows(rows: Sequence[Row], state: SortState, keys: Sequence[str]) -> list[Row]:
    """`rows` in the order a header click asked for (empty cells last either way)."""
    if state.column is None or state.column not in keys:
        return list(rows)
    i = list(keys).index(state.column)
    ordered = sorted(rows, key=lambda r: sort_value(r.cells[i]), reverse=state.reverse)
    if state.reverse:
        ordered = [r for r in ordered if sort_value(r.cells[i])[0] != 2] + [
            r for r in ordered if sort_value(r.cells[i])[0] == 2
        ]
    return ordered
