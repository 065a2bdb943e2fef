"""The annextui console: global bindings, the views, state shared by the views, workers that
read the repository, and the one handler that turns worker failures into an error dialog.

The app receives its backend (a `ConsoleBackend`, or None when there is no git-annex repository
here, in which case it offers to build and open the demo). Screens see the app only as a
`ConsoleHost`, so none of them imports this module.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import actions, work
from textual.actions import ActionParseResult
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import var
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import Worker, WorkerState, get_current_worker

from annextui.backend.repo import NotAnnexRepository
from annextui.console.backend import READONLY_MESSAGE, ConsoleBackend, ReadOnlyError
from annextui.console.balance_source import BalanceOverview
from annextui.console.edits import Edit, EditOutcome, Preview
from annextui.console.history import Series
from annextui.console.reachability import Reachability
from annextui.console.settings import load_settings, save_settings
from annextui.console.sizes_source import SizesReport
from annextui.console.snapshot import Snapshot
from annextui.console.source import RepositoryBackend
from annextui.failures import one_line
from annextui.screens.balance import BalanceScreen
from annextui.screens.base import ConsoleScreen
from annextui.screens.clusters import ClustersScreen
from annextui.screens.dialogs import ConfirmScreen, ErrorScreen, PickScreen
from annextui.screens.help import HelpScreen, our_bindings
from annextui.screens.jobs import JobsScreen
from annextui.screens.literal import clean
from annextui.screens.nodes import NodesScreen
from annextui.screens.overview import OverviewScreen
from annextui.screens.preview import render_preview
from annextui.screens.proxies import ProxiesScreen
from annextui.screens.topbar import read_stamp
from annextui.screens.transfers import TransfersScreen
from annextui.screens.welcome import WelcomeScreen

if TYPE_CHECKING:
    from annextui.screens.host import ConsoleHost

VIEWS: tuple[tuple[str, str, type[ConsoleScreen]], ...] = (
    ("1", "overview", OverviewScreen),
    ("2", "proxies", ProxiesScreen),
    ("3", "clusters", ClustersScreen),
    ("4", "nodes", NodesScreen),
    ("5", "balance", BalanceScreen),
    ("6", "transfers", TransfersScreen),
    ("7", "jobs", JobsScreen),
)


WATCH_SECONDS = 3.0


class SnapshotLoaded(Message):
    def __init__(self, snapshot: Snapshot, signature: tuple[object, ...]) -> None:
        self.snapshot = snapshot
        self.signature = signature
        super().__init__()


class RepoSignature(Message):
    def __init__(self, signature: tuple[object, ...]) -> None:
        self.signature = signature
        super().__init__()


class SizesLoaded(Message):
    def __init__(self, report: SizesReport) -> None:
        self.report = report
        super().__init__()


class SizesProgress(Message):
    """A long scan's progress; bursts coalesce to the newest."""

    def __init__(self, done: int, total: int | None) -> None:
        self.done = done
        self.total = total
        super().__init__()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SizesProgress)


class BalanceLoaded(Message):
    def __init__(self, report: BalanceOverview) -> None:
        self.report = report
        super().__init__()


class ReachabilityChecked(Message):
    def __init__(self, results: Sequence[Reachability]) -> None:
        self.results = list(results)
        super().__init__()


class PreviewReady(Message):
    def __init__(self, preview: Preview) -> None:
        self.preview = preview
        super().__init__()


class EditsApplied(Message):
    def __init__(self, outcomes: Sequence[EditOutcome]) -> None:
        self.outcomes = list(outcomes)
        super().__init__()


class AnnexConsole(App[int]):
    """The console. `backend` None: no repository here; the demo is offered."""

    CSS_PATH = "app.tcss"
    TITLE = "annextui"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        name: cls for _key, name, cls in VIEWS
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Leave the console"),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="Keys of this view"),
        Binding(
            "ctrl+p,colon",
            "command_palette",
            "Commands",
            id="app.palette",
            key_display="^p",
            tooltip="Command palette: everything you can do here",
        ),
        *(
            Binding(
                key,
                f"view('{name}')",
                cls.TITLE_TEXT,
                id=f"app.view.{name}",
                show=False,  # the top bar shows the views and their keys
                tooltip=f"Show the {cls.TITLE_TEXT} view",
            )
            for key, name, cls in VIEWS
        ),
        Binding("r", "refresh", "Refresh", id="app.refresh", tooltip="Read the repository again"),
        Binding(  # `j` as before the Jobs dialog became a view; one row with `7` in help
            "j",
            "view('jobs')",
            JobsScreen.TITLE_TEXT,
            id="app.view.jobs",
            show=False,
            tooltip="Show the Jobs view",
        ),
        Binding(
            "ctrl+s",
            "review",
            "Apply staged",
            id="app.apply",
            tooltip="Show the staged edits as a diff and apply them after confirmation",
        ),
        Binding(
            "ctrl+z",
            "unstage",
            "Unstage",
            id="app.unstage",
            tooltip="Drop the last staged edit",
            show=False,
        ),
    ]
    MUTATING: ClassVar[frozenset[str]] = frozenset({"review"})

    snapshot: var[Snapshot | None] = var(None)
    sizes: var[SizesReport | None] = var(None)
    sizes_progress: var[tuple[int, int | None] | None] = var(None)
    balance: var[BalanceOverview | None] = var(None)
    reach: var[dict[str, Reachability]] = var(dict)
    staged: var[tuple[Edit, ...]] = var(())
    sizes_readings: var[int] = var(0)

    def __init__(
        self,
        backend: ConsoleBackend | None,
        *,
        readonly: bool = False,
        missing: str | None = None,
        check_nodes: bool = True,
    ) -> None:
        super().__init__()
        self.backend = backend
        self._readonly = readonly
        self.missing = missing
        self.check_nodes = check_nodes
        self.applied_at: float | None = None
        self._asking_quit = False
        self._refresh_asked: str | None = None  # `r` pressed: what the view re-reads besides
        self.temporary: list[Path] = []  # removed when the console closes (remove_temporary)
        self.usage_history = Series()  # bytes per repository at every sizes load since start

    @property
    def readonly(self) -> bool:
        return self._readonly or (self.backend is not None and self.backend.readonly)

    def view_keys(self) -> list[tuple[str, str, str]]:
        return [(key, name, cls.TITLE_TEXT) for key, name, cls in VIEWS]

    # -- start -------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._restore_theme()
        if self.backend is None:
            self.push_screen(WelcomeScreen(self.missing or os.getcwd()))
        else:
            self.open_backend(self.backend)

    def _restore_theme(self) -> None:
        """The theme last chosen in the palette, from the settings file; later choices are
        saved there."""
        theme = load_settings().theme
        if theme is not None and theme in self.available_themes:
            self.theme = theme
        self.theme_changed_signal.subscribe(self, self._save_theme)

    def _save_theme(self, theme: Theme) -> None:
        try:
            save_settings(replace(load_settings(), theme=theme.name))
        except OSError as exc:
            self.notify(f"Theme not saved: {one_line(exc)}", severity="warning")

    def remove_on_exit(self, path: Path) -> None:
        self.temporary.append(path)

    def remove_temporary(self) -> None:
        import shutil

        for path in self.temporary:
            shutil.rmtree(path, ignore_errors=True)
        self.temporary.clear()

    def open_backend(self, backend: ConsoleBackend) -> None:
        self.backend = backend
        self._signature: tuple[object, ...] | None = None
        self.switch_mode("overview")
        self.load_snapshot()
        self.set_interval(WATCH_SECONDS, self.watch_repository)

    @work(thread=True, exclusive=True, exit_on_error=False, group="watch")
    def watch_repository(self) -> None:
        """Notice changes made outside the console (git-annex, other admins) and reload."""
        assert self.backend is not None
        self.post_message(RepoSignature(self.backend.signature()))

    def on_repo_signature(self, message: RepoSignature) -> None:
        if self._signature is not None and message.signature != self._signature:
            self._signature = message.signature
            self.load_snapshot()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast shows its text literally: toasts name repositories, whose names and
        descriptions are other people's data (screens' `notify` lands here too)."""
        super().notify(
            clean(message),
            title=clean(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """Keys run actions here. An edit key in a read-only console is greyed out, and Textual
        would ignore it silently: say why nothing happens."""
        if self.readonly and self.backend is not None:
            prefix, name, _params = actions.parse(action) if isinstance(action, str) else action
            target = self if prefix == "app" else default_namespace or self
            if name in getattr(target, "MUTATING", ()):
                self.notify(f"{READONLY_MESSAGE} That key edits.", severity="warning")
                return True
        return await super().run_action(action, default_namespace, namespaces)

    # -- global actions ----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.backend is None and (
            action.startswith("view") or action in ("refresh", "review", "unstage")
        ):
            return False  # no repository yet: hidden
        if action == "review" and (self.readonly or not self.staged):
            return None
        if action == "unstage" and not self.staged:
            return None
        return True

    async def action_quit(self) -> None:
        """Leave; with staged edits, ask first: leaving throws them away."""
        if not self.staged:
            self.exit()
            return
        if self._asking_quit:
            return  # `q` again on the question is no answer
        self._asking_quit = True
        n = len(self.staged)
        edits = f"{n} staged edit{'s' if n != 1 else ''}"

        def answered(choice: str | None) -> None:
            self._asking_quit = False
            if choice == "discard":
                self.exit()
            elif choice == "review":
                self.action_review()

        self.push_screen(
            PickScreen(
                f"Quit with {edits}?",
                [
                    ("stay", "Stay in the console (esc)"),
                    ("review", f"Review and apply the {edits} (ctrl+s)"),
                    ("discard", f"Quit and discard the {edits}"),
                ],
                "Staged edits live only in this console: quitting throws them away.",
            ),
            answered,
        )

    def action_view(self, name: str) -> None:
        if self.backend is not None and self.current_mode != name:
            self.switch_mode(name)

    def action_help(self) -> None:
        screen = self.screen
        if not isinstance(screen, ConsoleScreen) and not isinstance(screen, WelcomeScreen):
            return
        title = getattr(screen, "TITLE_TEXT", "annextui")
        text = getattr(screen, "HELP", "")
        bindings = our_bindings(screen.active_bindings)
        global_ids = {b.id for b in Binding.make_bindings(self.BINDINGS) if b.id}
        self.push_screen(HelpScreen(title, text, bindings, global_ids))

    def action_refresh(self) -> None:
        if self.backend is None:
            return
        screen = self.screen
        self._refresh_asked = screen.REFRESHES if isinstance(screen, ConsoleScreen) else ""
        self.load_snapshot()
        if isinstance(self.screen, ConsoleScreen):
            self.screen.refresh_view()

    def action_unstage(self) -> None:
        if self.staged:
            dropped = self.staged[-1]
            self.staged = self.staged[:-1]
            self.notify(f"Unstaged: {dropped.describe()}")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The palette offers our bindings that apply now, then Textual's theme/screenshot."""
        ours = our_bindings(screen.active_bindings)
        titles = set()
        for _keys, ab in ours:
            if not ab.enabled or ab.binding.id in ("app.palette",):
                continue
            b = ab.binding
            titles.add(b.description)
            yield SystemCommand(
                b.description,
                b.tooltip or f"key: {self.get_key_display(b)}",
                partial(self.run_action, b.action, ab.node),
            )
        for cmd in super().get_system_commands(screen):
            if cmd.title not in titles and cmd.title in ("Theme", "Screenshot"):
                yield cmd

    # -- staging and applying ----------------------------------------------------------------
    def stage(self, edit: Edit) -> bool:
        if self.readonly:
            self.notify(READONLY_MESSAGE, severity="warning")
            return False
        self.staged = (*self.staged, edit)
        self.notify(f"Staged: {edit.describe()} — ctrl+s to review and apply")
        return True

    def action_review(self) -> None:
        if self.readonly:
            self.notify(READONLY_MESSAGE, severity="warning")
            return
        if not self.staged:
            self.notify("Nothing staged.")
            return
        self.preview_staged(self.staged)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def preview_staged(self, edits: tuple[Edit, ...]) -> None:
        assert self.backend is not None
        preview = self.backend.preview(edits)
        self.post_message(PreviewReady(preview))

    def on_preview_ready(self, message: PreviewReady) -> None:
        preview = message.preview
        if preview.edits != self.staged:
            return  # staged edits changed meanwhile
        if preview.error:
            self.push_screen(
                ErrorScreen(
                    "These edits cannot be applied",
                    f"{preview.error}\n\nNothing was changed. ctrl+z unstages the last edit.",
                )
            )
            return
        body = render_preview(preview, self.snapshot)
        n = len(preview.edits)

        def answered(yes: bool | None) -> None:
            if yes:
                self.apply_staged(preview.edits)
            else:
                self.notify("Not applied; the edits stay staged.")

        self.push_screen(
            ConfirmScreen(
                f"Apply {n} staged edit{'s' if n != 1 else ''}?", body, yes="Apply", no="No"
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="apply")
    def apply_staged(self, edits: tuple[Edit, ...]) -> None:
        assert self.backend is not None
        outcomes = self.backend.apply(edits)
        self.post_message(EditsApplied(outcomes))

    def on_edits_applied(self, message: EditsApplied) -> None:
        self.applied_at = time.time()  # snapshots loaded after this show the applied edits
        done = [o for o in message.outcomes if o.error is None]
        failed = [o for o in message.outcomes if o.error is not None]
        self.staged = tuple(e for e in self.staged if e not in {o.edit for o in done})
        if failed:
            f = failed[0]
            self.push_screen(
                ErrorScreen(
                    f"Failed: {f.edit.describe()}",
                    f"{f.error}\n\n{len(done)} edit(s) before it were applied.",
                )
            )
        else:
            lines = [line for o in done for line in o.lines]
            self.notify("\n".join(lines[-6:]) or "Applied.", title=f"Applied {len(done)} edit(s)")
        if any(o.edit.starts_job for o in done):
            self.action_view("jobs")
        self.load_snapshot()

    # -- loading -----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="snapshot")
    def load_snapshot(self) -> None:
        assert self.backend is not None
        signature = self.backend.signature()  # before reading: a change meanwhile is seen later
        snapshot = self.backend.snapshot()
        if not get_current_worker().is_cancelled:
            self.post_message(SnapshotLoaded(snapshot, signature))

    def on_snapshot_loaded(self, message: SnapshotLoaded) -> None:
        first = self.snapshot is None
        self._signature = message.signature
        self.snapshot = message.snapshot
        if self._refresh_asked is not None:  # `r`: say what was read again
            self.notify(refreshed_message(message.snapshot, self._refresh_asked), title="Refreshed")
            self._refresh_asked = None
        # Paint the snapshot first: a cold size scan competes with the UI thread for the GIL.
        self.call_after_refresh(self.load_sizes, message.snapshot)
        if first and self.check_nodes:
            self.check_reachability(message.snapshot.node_uuids)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sizes")
    def load_sizes(self, snapshot: Snapshot) -> None:
        def progress(done: int, total: int | None) -> None:
            self.post_message(SizesProgress(done, total))

        assert self.backend is not None
        report = self.backend.sizes(snapshot, progress)
        if get_current_worker().is_cancelled:
            return
        self.post_message(SizesLoaded(report))
        balance = self.backend.balance(snapshot, report)
        if not get_current_worker().is_cancelled:
            self.post_message(BalanceLoaded(balance))

    def on_sizes_progress(self, message: SizesProgress) -> None:
        self.sizes_progress = (message.done, message.total)

    def on_sizes_loaded(self, message: SizesLoaded) -> None:
        self.sizes_progress = None
        sizes = message.report.sizes
        self.usage_history.add(time.time(), {u: float(s.size) for u, s in sizes.items()})
        self.sizes = message.report
        self.sizes_readings += 1  # equal sizes read again still lengthen the trend

    def on_balance_loaded(self, message: BalanceLoaded) -> None:
        self.balance = message.report

    @work(thread=True, exclusive=True, exit_on_error=False, group="reach")
    def check_reachability(self, uuids: Sequence[str]) -> None:
        assert self.backend is not None
        snapshot = self.snapshot
        if snapshot is None:
            return
        results = self.backend.reachability(snapshot, uuids)
        self.post_message(ReachabilityChecked(results))

    def on_reachability_checked(self, message: ReachabilityChecked) -> None:
        reach = dict(self.reach)
        reach.update({r.uuid: r for r in message.results})
        self.reach = reach

    # -- failures ----------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.worker_state_changed(event)

    def worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker is reported (screens forward their events here)."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, ReadOnlyError):
            self.notify(str(error), severity="warning")
            return
        name = event.worker.group if event.worker.group != "default" else event.worker.name
        self.push_screen(ErrorScreen(f"{name} failed", f"{type(error).__name__}: {error}"))


if TYPE_CHECKING:  # mypy checks that the app is the host its screens expect
    _host: type[ConsoleHost] = AnnexConsole


def refreshed_message(snapshot: Snapshot, extra: str) -> str:
    """The toast after `r`: what was read again, and from which branch commit."""
    branch = f"git-annex branch {snapshot.head[:7]}" if snapshot.head else "git-annex branch"
    parts = [f"{branch} and git config read at {read_stamp(snapshot.loaded_at, None)}"]
    parts.append("sizes and balance recomputing")
    if extra:
        parts.append(extra)
    return "; ".join(parts) + "."


def run_console(path: str | os.PathLike[str], *, readonly: bool = False) -> int:
    """Open the console on the repository containing `path` (the demo is offered if none)."""
    try:
        backend: ConsoleBackend | None = RepositoryBackend(path, readonly=readonly)
    except NotAnnexRepository:
        backend = None
    app = AnnexConsole(backend, readonly=readonly, missing=str(Path(path).resolve()))
    try:
        app.run()
    finally:
        app.remove_temporary()
    return app.return_code or 0
