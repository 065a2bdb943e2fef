"""No git-annex repository here: offer to build the demo in a temporary directory and open it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Label, Static
from textual.worker import Worker

from annextui.screens.host import ConsoleHost
from annextui.screens.literal import markup


class DemoBuilt(Message):
    def __init__(self, root: Path, gateway: str, summary: list[str]) -> None:
        self.root = root
        self.gateway = gateway
        self.summary = summary
        super().__init__()


class WelcomeScreen(Screen[None]):
    TITLE_TEXT: ClassVar[str] = "No repository"
    HELP: ClassVar[str] = (
        "There is no git-annex repository here. The demo is a gateway with a three-node "
        "cluster and a proxied archive, built in a temporary directory with annextui's own "
        "backend (like `annextui demo`)."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "demo", "Open the demo", id="welcome.demo"),
    ]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="welcome"):
            yield Label("annextui", id="welcome-title")
            yield Static(
                markup(
                    "No git-annex repository at [b]$path[/b].\n\n"
                    "Open the embedded demo? It is built in a temporary directory: a gateway, a "
                    "cluster of three nodes and a proxied archive, with a few hundred keys.",
                    path=self.path,
                ),
                id="welcome-text",
            )
            with Horizontal(id="welcome-buttons"):
                yield Button("Open the demo", id="demo", variant="primary")
                yield Button("Quit", id="quit")
            yield Label("", id="welcome-status")
        yield Footer(show_command_palette=False, compact=True)

    def on_mount(self) -> None:
        self.query_one("#demo", Button).focus()

    @on(Button.Pressed, "#demo")
    def action_demo(self) -> None:
        self.query_one("#welcome-status", Label).update("Building the demo…")
        self.query_one("#demo", Button).disabled = True
        self.build_demo()

    @on(Button.Pressed, "#quit")
    def _quit(self) -> None:
        self.app.exit(0)

    @work(thread=True, exclusive=True, exit_on_error=False, group="demo")
    def build_demo(self) -> None:
        from annextui.backend.demo import build_demo

        demo = build_demo(None)
        self.post_message(DemoBuilt(demo.root, str(demo.gateway), demo.summary()))

    def on_demo_built(self, message: DemoBuilt) -> None:
        from annextui.console.source import RepositoryBackend

        app = cast(ConsoleHost, self.app)
        app.remove_on_exit(message.root)  # a temporary demo: gone when the console closes
        backend = RepositoryBackend(message.gateway, readonly=app.readonly)
        self.dismiss(None)
        app.open_backend(backend)
        self.app.notify(message.summary[0], title="Demo")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        cast(ConsoleHost, self.app).worker_state_changed(event)
