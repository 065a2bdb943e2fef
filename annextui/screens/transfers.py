"""Transfers: live uploads and downloads in this repository and its local nodes, read from
git-annex's transfer information files a few times a second, updated row by row so the cursor
stays; `p` pauses."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Sparkline, Static
from textual.worker import Worker, get_current_worker

from annextui.console.history import Series, rates_by
from annextui.console.snapshot import Snapshot
from annextui.console.transfers_source import TransferSample, TransferSampler, totals
from annextui.screens.literal import literal
from annextui.screens.sampling import SampledView
from annextui.screens.widgets import (
    Column,
    Row,
    fit_table,
    human,
    matches,
    sort_rows,
    styled,
    sync_table,
    usage_bar,
)

WINDOW_SECONDS = 180  # the sparklines' span
COLUMNS = [
    Column("dir", " ", 0, 1),
    Column("at", "at", 3, 8),
    Column("peer", "peer", 2, 10),
    Column("file", "file", 0, 23),
    Column("bar", "progress", 4, 16),
    Column("pct", "%", 1, 4),
    Column("done", "done", 5, 8),
    Column("size", "size", 5, 7),
    Column("rate", "rate", 1, 10),
    Column("elapsed", "time", 6, 5),
    Column("eta", "eta", 2, 4),
]


class TransfersSampled(Message):
    """A new sample; a burst of these coalesces to the newest (toolong's can_replace)."""

    def __init__(self, sample: TransferSample) -> None:
        self.sample = sample
        super().__init__()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TransfersSampled)


class ThroughputLine(Horizontal):
    """`node1  ▁▂▅█▇▃  12.0 MB/s`: a repository's throughput over the window."""

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.label = Static("", classes="tp-label")
        self.spark = Sparkline([0.0], summary_function=max, classes="tp-spark")
        self.rate = Static("", classes="tp-rate")

    def compose(self) -> ComposeResult:
        yield self.label
        yield self.spark
        yield self.rate

    def show(self, label: str, values: list[float]) -> None:
        self.label.update(literal(label))
        self.spark.data = values or [0.0]
        self.rate.update(_rate(values[-1] if values else 0.0) or "idle")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def _rate(rate: float | None) -> str:
    return f"{human(int(rate))}/s" if rate else ""


class TransfersScreen(SampledView):
    VIEW = "transfers"
    TITLE_TEXT = "Transfers"
    REFRESHES = "live transfers sampled"
    POLL_SECONDS = 0.3
    HELP = (
        "Live transfers in this repository and its local-path remotes, from git-annex's "
        "transfer information files (annex/transfer/): transfers by a real git-annex show up "
        "as well as the gateway's own. A transfer is live while its lock is held. Progress is "
        "the byte count git-annex writes, or for downloads the size of the temporary file; "
        "rates come from successive samples. Above, each repository's throughput (and the "
        "whole gateway's) over the last minutes. Refreshed a few times a second; p pauses, "
        "r samples now."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "p", "pause", "Pause", id="transfers.pause", tooltip="Pause or resume live updates"
        ),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="transfers-summary")
        yield Vertical(id="throughput", classes="panel")
        yield DataTable(id="transfers", cursor_type="row", zebra_stripes=True)
        yield Static("", id="transfers-empty")

    def on_mount(self) -> None:
        self.paused = False
        self.tracker: TransferSampler | None = None
        self.sample: TransferSample | None = None
        self._poller: Worker[None] | None = None
        self.throughput = Series()  # bytes per second per repository, sample after sample
        # The throughput lines, by repository ("all" for the whole gateway), ours rather than a
        # DOM query: a removed widget stays in the DOM until Textual prunes it, and a redraw in
        # between found it, wrote into it, and lost the line with it (or, had it mounted a new
        # one, hit its id). A line no longer wanted is hidden, and shown again if wanted back.
        self._lines: dict[str, ThroughputLine] = {}
        self._watched: list[str] = []  # the repositories of the last tracker
        self.query_one(
            "#throughput"
        ).border_title = f"Throughput, last {WINDOW_SECONDS // 60} minutes"

    def sample_now(self) -> None:
        self._tick()

    def main_widget(self) -> Widget | None:
        return self.query_one(DataTable)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.tracker = None  # remotes may have changed: rebuilt on the next poll
        self._redraw()

    def filter_changed(self, text: str) -> None:
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()  # columns give way, or come back

    def refresh_view(self) -> None:
        self._tick(force=True)

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.notify("Transfers paused" if self.paused else "Transfers live")
        self._redraw()

    def _tick(self, force: bool = False) -> None:
        if (self.paused and not force) or self.console.snapshot is None:
            return
        if self._poller is not None and self._poller.is_running:
            return
        self._poller = self.poll(self.console.snapshot)

    @work(thread=True, exclusive=True, exit_on_error=False, group="transfers")
    def poll(self, snapshot: Snapshot) -> None:
        tracker = self.tracker
        if tracker is None:
            backend = self.console.backend
            assert backend is not None
            tracker = self.tracker = backend.transfers(snapshot)
        sample = tracker.sample()
        if not get_current_worker().is_cancelled:
            self.post_message(TransfersSampled(sample))

    def on_transfers_sampled(self, message: TransfersSampled) -> None:
        if self.paused and self.sample is not None:
            return
        self.sample = message.sample
        rates = rates_by([(v.where, v.rate) for v in message.sample.transfers])
        self.throughput.add(message.sample.at, rates)
        self._redraw()

    def _redraw(self) -> None:
        snap = self.console.snapshot
        sample = self.sample
        if snap is None:
            return
        views = sample.transfers if sample else ()
        now = sample.at if sample else time.time()
        rows = []
        keys = fit_table(self.query_one(DataTable), COLUMNS, self.size.width - 2)
        for v in views:
            arrow, state = ("↑", "primary") if v.direction == "upload" else ("↓", "accent")
            peer = snap.label(v.peer) if v.peer in snap.repos else f"{v.peer[:8]}…"
            name = v.file or v.key
            frac = v.fraction
            cell = {
                "dir": styled(self.app, arrow, state, bold=True),
                "at": Text(snap.label(v.where)),
                "peer": Text(peer),
                "file": Text(name if len(name) <= 28 else "…" + name[-27:]),
                "bar": usage_bar(self.app, frac, 16)
                if frac is not None
                else styled(self.app, "·" * 16, "muted"),
                "pct": Text(f"{frac:.0%}" if frac is not None else "?", justify="right"),
                "done": Text(human(v.done) if v.done is not None else "?", justify="right"),
                "size": Text(human(v.total) if v.total is not None else "?", justify="right"),
                "rate": Text(_rate(v.rate), justify="right"),
                "elapsed": Text(_duration(now - v.started if v.started else None), justify="right"),
                "eta": Text(_duration(v.eta), justify="right"),
            }
            cells = tuple(cell[k] for k in keys)
            hay = " ".join([v.direction, snap.label(v.where), peer, v.key, v.file or ""])
            if matches(hay, self.filter_text):
                rows.append(Row(v.row_key, cells))
        sync_table(self.query_one(DataTable), sort_rows(rows, self.sort_state, keys))
        self._summary(views, sample)
        self._sparklines(snap, now)
        empty = self.query_one("#transfers-empty", Static)
        empty.update(
            ""
            if views
            else "[$text-muted]No transfers running. They appear here while "
            "git-annex or the gateway moves content in this repository or its local nodes.[/]"
        )

    def _sparklines(self, snap: Snapshot, now: float) -> None:
        """One line per watched repository and one for the whole gateway: label, the last
        minutes of bytes per second as a Sparkline, and the rate now."""
        if self.tracker is not None:  # else rebuilt on the next poll: the last one's meanwhile
            self._watched = list(self.tracker.annexdirs)
        since = now - WINDOW_SECONDS
        lines = [("all", "whole gateway", self.throughput.totals(since))]
        lines += [(u, snap.label(u), self.throughput.values(u, since)) for u in self._watched]
        box = self.query_one("#throughput", Vertical)
        for key, label, values in lines:
            line = self._lines.get(key)
            if line is None:
                line = self._lines[key] = ThroughputLine(id=f"tp-{key}")
                box.mount(line)
            line.display = True
            line.show(label, values)
        wanted = {key for key, _label, _values in lines}
        for key, line in self._lines.items():
            if key not in wanted:
                line.display = False

    def _summary(self, views: tuple[object, ...], sample: TransferSample | None) -> None:
        if sample is None:
            text = "[$text-muted]reading transfer information…[/]"
        else:
            parts = [f"[b]{len(sample.transfers)}[/b] live"]
            for direction, arrow in (("upload", "↑"), ("download", "↓")):
                n, done, total, rate = totals(sample.transfers).get(direction, (0, 0, 0, 0.0))
                parts.append(
                    f"{arrow} {n} {direction}{'s' if n != 1 else ''}"
                    + (f" {human(done)}/{human(total)} {_rate(rate)}" if n else "")
                )
            dirs = len(self.tracker.annexdirs) if self.tracker else 0
            parts.append(f"[$text-muted]{dirs} repositories watched[/]")
            text = "   ".join(parts)
        if self.paused:
            text += "   [reverse $text-warning] PAUSED [/] p resumes"
        self.query_one("#transfers-summary", Static).update(text)
