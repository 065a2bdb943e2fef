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
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual.worker import Worker, get_current_worker

from annextui.console.snapshot import Snapshot
from annextui.console.transfers_source import TransferSample, TransferSampler, totals
from annextui.screens.sampling import SampledView
from annextui.screens.widgets import Row, human, matches, styled, sync_table, usage_bar


class TransfersSampled(Message):
    """A new sample; a burst of these coalesces to the newest (toolong's can_replace)."""

    def __init__(self, sample: TransferSample) -> None:
        self.sample = sample
        super().__init__()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TransfersSampled)


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
    HELP = (
        "Live transfers in this repository and its local-path remotes, from git-annex's "
        "transfer information files (annex/transfer/): transfers by a real git-annex show up "
        "as well as the gateway's own. A transfer is live while its lock is held. Progress is "
        "the byte count git-annex writes, or for downloads the size of the temporary file; "
        "rates come from successive samples. Refreshed a few times a second; p pauses, "
        "r samples now."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "p", "pause", "Pause", id="transfers.pause", tooltip="Pause or resume live updates"
        ),
    ]
    POLL_SECONDS = 0.3

    def compose_body(self) -> ComposeResult:
        yield Static("", id="transfers-summary")
        yield DataTable(id="transfers", cursor_type="row", zebra_stripes=True)
        yield Static("", id="transfers-empty")

    def on_mount(self) -> None:
        self.paused = False
        self.tracker: TransferSampler | None = None
        self.sample: TransferSample | None = None
        self._poller: Worker[None] | None = None
        table: DataTable[object] = self.query_one(DataTable)
        for label, key in (
            (" ", "dir"),
            ("at", "at"),
            ("peer", "peer"),
            ("file", "file"),
            ("progress", "bar"),
            ("%", "pct"),
            ("done", "done"),
            ("size", "size"),
            ("rate", "rate"),
            ("time", "elapsed"),
            ("eta", "eta"),
        ):
            table.add_column(label, key=key)

    def main_widget(self) -> Widget | None:
        return self.query_one(DataTable)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.tracker = None  # remotes may have changed: rebuilt on the next poll
        self._redraw()

    def filter_changed(self, text: str) -> None:
        self._redraw()

    def refresh_view(self) -> None:
        self._tick(force=True)

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.notify("Transfers paused" if self.paused else "Transfers live")
        self._redraw()

    def sample_now(self) -> None:
        self._tick()

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
        self._redraw()

    def _redraw(self) -> None:
        snap = self.console.snapshot
        sample = self.sample
        if snap is None:
            return
        views = sample.transfers if sample else ()
        now = sample.at if sample else time.time()
        rows = []
        for v in views:
            arrow, state = ("↑", "primary") if v.direction == "upload" else ("↓", "accent")
            peer = snap.label(v.peer) if v.peer in snap.repos else f"{v.peer[:8]}…"
            name = v.file or v.key
            frac = v.fraction
            cells = (
                styled(self.app, arrow, state, bold=True),
                Text(snap.label(v.where)),
                Text(peer),
                Text(name if len(name) <= 28 else "…" + name[-27:]),
                usage_bar(self.app, frac, 16)
                if frac is not None
                else styled(self.app, "·" * 16, "muted"),
                Text(f"{frac:.0%}" if frac is not None else "?", justify="right"),
                Text(human(v.done) if v.done is not None else "?", justify="right"),
                Text(human(v.total) if v.total is not None else "?", justify="right"),
                Text(_rate(v.rate), justify="right"),
                Text(_duration(now - v.started if v.started else None), justify="right"),
                Text(_duration(v.eta), justify="right"),
            )
            hay = " ".join([v.direction, snap.label(v.where), peer, v.key, v.file or ""])
            if matches(hay, self.filter_text):
                rows.append(Row(v.row_key, cells))
        sync_table(self.query_one(DataTable), rows)
        self._summary(views, sample)
        empty = self.query_one("#transfers-empty", Static)
        empty.update(
            ""
            if views
            else "[$text-muted]No transfers running. They appear here while "
            "git-annex or the gateway moves content in this repository or its local nodes.[/]"
        )

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
