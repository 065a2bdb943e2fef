"""Jobs: the drain and rebalance jobs of this repository with progress, rate and ETA, sampled a
few times a second; the selected job's plan and, for a rebalance, the proof of that plan.
`p` pauses the selected job, `s` resumes it in the background, `c` cancels it (a paused or
failed one)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual.worker import Worker, get_current_worker

from annextui.console.jobs_source import Job, JobBusy, JobControl, JobDetail, JobRow
from annextui.console.snapshot import Snapshot
from annextui.screens.literal import lines, markup
from annextui.screens.sampling import SampledView
from annextui.screens.transfers import _duration, _rate
from annextui.screens.widgets import (
    Row,
    human,
    matches,
    selected_key,
    styled,
    sync_table,
    usage_bar,
)

_STATE_STYLE = {
    "running": "primary",
    "paused": "warning",
    "failed": "error",
    "done": "success",
    "cancelled": "muted",
    "planned": "muted",
}


class JobsSampled(Message):
    def __init__(self, rows: tuple[JobRow, ...], detail: JobDetail | None) -> None:
        self.rows = rows
        self.detail = detail
        super().__init__()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobsSampled)


class JobsScreen(SampledView):
    VIEW = "jobs"
    TITLE_TEXT = "Jobs"
    REFRESHES = "jobs read again"
    HELP = (
        "Drain and rebalance jobs of this repository (annex/annextui/jobs/), started by "
        "`annextui cluster drain`, `annextui rebalance` or a staged drain on the Clusters view. "
        "Each shows its state, progress, rate and ETA, sampled a few times a second. Below: the "
        "selected job's plan (the figures its dry run printed) and, for a rebalance, the proof "
        "of that plan: rounds of re-evaluating every node's preferred content after the moves "
        "until nothing changes, or the keys that would move back and forth. p pauses the "
        "selected job after the key in hand, s resumes it in the background (the same command "
        "again: it continues where it stopped), c cancels a job that is not running."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pause", "Pause", id="jobs.pause", tooltip="Pause the selected job"),
        Binding("s", "resume", "Resume", id="jobs.resume", tooltip="Run the selected job again"),
        Binding("c", "cancel", "Cancel", id="jobs.cancel", tooltip="Cancel a job not running"),
    ]
    MUTATING = frozenset({"pause", "resume", "cancel"})
    DEFAULT_CSS = """
    JobsScreen #jobs { height: auto; max-height: 45%; }
    JobsScreen #job-detail-scroll { height: 1fr; border: round $panel-lighten-2; }
    JobsScreen #jobs-status { height: auto; color: $text-muted; }
    """

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="jobs-status")
        with VerticalScroll(id="job-detail-scroll"):
            yield Static("", id="job-detail")

    def on_mount(self) -> None:
        self.control: JobControl | None = None
        self.rows: tuple[JobRow, ...] = ()
        self.detail: JobDetail | None = None
        self._sampled = False
        self._poller: Worker[None] | None = None
        self.query_one("#job-detail-scroll").border_title = "Plan"
        table: DataTable[object] = self.query_one(DataTable)
        for label, key in (
            ("job", "job"),
            ("state", "state"),
            ("progress", "bar"),
            ("keys", "keys"),
            ("done", "done"),
            ("size", "size"),
            ("rate", "rate"),
            ("eta", "eta"),
        ):
            table.add_column(label, key=key)

    def main_widget(self) -> Widget | None:
        return self.query_one(DataTable)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self._redraw()  # names of nodes may have changed

    def filter_changed(self, text: str) -> None:
        self._redraw()

    def refresh_view(self) -> None:
        self.sample_now()

    # -- sampling ----------------------------------------------------------------------------
    def sample_now(self) -> None:
        backend = self.console.backend
        if backend is None or (self._poller is not None and self._poller.is_running):
            return
        if self.control is None:
            self.control = backend.jobs()
        self._poller = self.poll(self.control, self._selected())

    def repo_label(self, uuid: str) -> str:
        snap = self.console.snapshot
        return snap.label(uuid) if snap is not None else uuid

    @work(thread=True, exclusive=True, exit_on_error=False, group="jobs")
    def poll(self, control: JobControl, selected: str | None) -> None:
        rows = control.sample()
        if selected is None and rows:
            selected = rows[0].job.id
        detail = control.detail(selected, self.repo_label) if selected is not None else None
        if not get_current_worker().is_cancelled:
            self.post_message(JobsSampled(rows, detail))

    def on_jobs_sampled(self, message: JobsSampled) -> None:
        self.rows = message.rows
        self.detail = message.detail
        self._sampled = True
        self._redraw()

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        if self.detail is None or self.detail.job.id != self._selected():
            self.sample_now()

    # -- drawing -----------------------------------------------------------------------------
    def job_label(self, j: Job) -> str:
        """`drain NODE` (a drain's target is the node's UUID), `rebalance NAME` (the name the
        job was started with)."""
        return f"{j.kind} {self.repo_label(j.target) if j.kind == 'drain' else j.target}"

    def _redraw(self) -> None:
        rows = []
        for r in self.rows:
            j = r.job
            label = self.job_label(j)
            if not matches(f"{label} {j.state} {j.id}", self.filter_text):
                continue
            cells = (
                Text(label if len(label) <= 24 else label[:23] + "…"),
                styled(self.app, str(j.state), _STATE_STYLE.get(str(j.state), "muted"), bold=True),
                usage_bar(self.app, r.fraction, 12),
                Text(f"{j.done_steps}/{j.steps}", justify="right"),
                Text(human(j.done_bytes), justify="right"),
                Text(human(j.total_bytes), justify="right"),
                Text(_rate(r.rate), justify="right"),
                Text(_duration(r.eta), justify="right"),
            )
            rows.append(Row(j.id, cells))
        sync_table(self.query_one(DataTable), rows)
        self._status(self._summary())
        self._show_detail()

    def _summary(self) -> str:
        if self.control is None or self._sampled is False:
            return "reading jobs…"
        if not self.rows:
            return (
                "No jobs. A drain staged on the Clusters view (D), `annextui cluster drain` "
                "and `annextui rebalance` create them."
            )
        states: dict[str, int] = {}
        for r in self.rows:
            states[str(r.job.state)] = states.get(str(r.job.state), 0) + 1
        n = len(self.rows)
        counts = ", ".join(f"{k} {v}" for k, v in states.items())
        return f"{n} job{'s' if n != 1 else ''}: {counts}"

    def _show_detail(self) -> None:
        box = self.query_one("#job-detail", Static)
        d = self.detail
        if d is None or d.job.id != self._selected():
            box.update("" if self.rows else "[$text-muted]nothing selected[/]")
            return
        j = d.job
        parts: list[Content | str] = [
            markup("[b]$label[/b]  [$text-muted]$id[/]", label=self.job_label(j), id=j.id),
            *(markup("$line", line=line) for line in d.plan),
            markup(
                "state $state · $done/$steps keys · $copies copies made · $drops drops · "
                "$runs run(s)",
                state=j.state,
                done=j.done_steps,
                steps=j.steps,
                copies=j.transferred_keys,
                drops=j.dropped_keys,
                runs=j.runs,
            ),
        ]
        if j.error:
            parts.append(markup("[$text-error]$error[/]", error=j.error))
        for key, why in sorted(j.failures.items())[:5]:
            parts.append(markup("[$text-error]$key: $why[/]", key=key, why=why))
        if d.log:
            parts += ["", "[b]Its background run said[/b]"]
            parts += [markup("  $line", line=line) for line in d.log]
        if j.kind == "rebalance":
            parts += ["", "[b]Proof of the plan[/b]"]
            if d.proof is None:
                parts.append("[$text-muted]no proof kept with this job's plan[/]")
            parts += [markup("$line", line=line) for line in d.proof or ()]
        box.update(lines(*parts))

    def _selected(self) -> str | None:
        return selected_key(self.query_one(DataTable))

    def _status(self, text: str) -> None:
        self.query_one("#jobs-status", Static).update(markup("$text", text=text))

    # -- actions -----------------------------------------------------------------------------
    def _act(self, what: str) -> None:
        job = self._selected()
        if job is None or self.control is None or self.refuse_if_readonly():
            return
        try:
            said = getattr(self.control, what)(job)
        except JobBusy as exc:
            said = str(exc)
        self.notify(said, title=f"{what} {job}")
        self.sample_now()

    def action_pause(self) -> None:
        self._act("pause")

    def action_resume(self) -> None:
        self._act("resume")

    def action_cancel(self) -> None:
        self._act("cancel")
