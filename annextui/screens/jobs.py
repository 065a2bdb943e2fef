"""Jobs: the drain and rebalance jobs of this repository (`j` from any view), with progress,
rate and ETA, sampled a few times a second; `p` pauses the selected job, `s` resumes it in the
background, `c` cancels it (a paused or failed one), escape closes."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Label, Static

from annextui.console.jobs_source import JobRow, JobsSampler
from annextui.screens.dialogs import Dialog
from annextui.screens.host import ConsoleHost
from annextui.screens.transfers import _duration, _rate
from annextui.screens.widgets import Row, human, styled, sync_table, usage_bar

POLL_SECONDS = 0.5
_STATE_STYLE = {
    "running": "primary",
    "paused": "warning",
    "failed": "error",
    "done": "success",
    "cancelled": "muted",
    "planned": "muted",
}


class JobsSampled(Message):
    def __init__(self, rows: tuple[JobRow, ...]) -> None:
        self.rows = rows
        super().__init__()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobsSampled)


class JobsScreen(Dialog[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,j,q", "close", "Close", id="jobs.close"),
        Binding("p", "pause", "Pause", id="jobs.pause", tooltip="Pause the selected job"),
        Binding("s", "resume", "Resume", id="jobs.resume", tooltip="Run the job again"),
        Binding("c", "cancel", "Cancel", id="jobs.cancel", tooltip="Cancel a paused job"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="dialog")
        self.sampler: JobsSampler | None = None
        self.rows: tuple[JobRow, ...] = ()
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Jobs — drain and rebalance", id="dialog-title")
            yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
            yield Static("", id="jobs-status")

    def on_mount(self) -> None:
        super().on_mount()
        table: DataTable[object] = self.query_one(DataTable)
        for label, key in (
            ("job", "id"),
            ("state", "state"),
            ("progress", "bar"),
            ("keys", "keys"),
            ("done", "done"),
            ("size", "size"),
            ("rate", "rate"),
            ("eta", "eta"),
        ):
            table.add_column(label, key=key)
        backend = self._host.backend
        if backend is not None:
            self.sampler = JobsSampler(backend.path)
        self._timer = self.set_interval(POLL_SECONDS, self._tick)
        self._tick()

    @property
    def _host(self) -> ConsoleHost:
        from typing import cast

        return cast(ConsoleHost, self.app)

    def _tick(self) -> None:
        if self.sampler is not None:
            self.poll(self.sampler)

    @work(thread=True, exclusive=True, exit_on_error=False, group="jobs")
    def poll(self, sampler: JobsSampler) -> None:
        self.post_message(JobsSampled(sampler.sample()))

    def on_jobs_sampled(self, message: JobsSampled) -> None:
        self.rows = message.rows
        rows = []
        for r in self.rows:
            j = r.job
            frac = r.fraction
            cells = (
                Text(j.id if len(j.id) <= 30 else j.id[:29] + "…"),
                styled(self.app, str(j.state), _STATE_STYLE.get(str(j.state), "muted"), bold=True),
                usage_bar(self.app, frac, 16),
                Text(f"{j.done_steps}/{j.steps}", justify="right"),
                Text(human(j.done_bytes), justify="right"),
                Text(human(j.total_bytes), justify="right"),
                Text(_rate(r.rate), justify="right"),
                Text(_duration(r.eta), justify="right"),
            )
            rows.append(Row(j.id, cells))
        sync_table(self.query_one(DataTable), rows)
        if not rows:
            self._status("[$text-muted]No jobs. `annextui cluster drain` and `annextui "
                         "rebalance` create them.[/]")  # fmt: skip

    def _selected(self) -> str | None:
        table: DataTable[object] = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return key.value

    def _status(self, text: str) -> None:
        self.query_one("#jobs-status", Static).update(text)

    def _act(self, what: str) -> None:
        job = self._selected()
        if job is None or self.sampler is None:
            return
        if self._host.readonly:
            self._status("[$text-warning]read-only: jobs are not changed[/]")
            return
        from annextui.operations.jobs import JobBusy

        try:
            said = getattr(self.sampler, what)(job)
        except JobBusy as exc:
            said = str(exc)
        self._status(f"{job}: {said}")
        self._tick()

    def action_pause(self) -> None:
        self._act("pause")

    def action_resume(self) -> None:
        self._act("resume")

    def action_cancel(self) -> None:
        self._act("cancel")

    def action_close(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.dismiss(None)
