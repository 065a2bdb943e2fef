"""Modal dialogs: confirm (starts on "No"), prompt for a value, pick one of several, error."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from annextui.screens.literal import literal

_T = TypeVar("_T")
TOAST_RACK = "#textual-toastrack"  # Textual's id for the rack every screen composes


class Dialog(ModalScreen[_T]):
    """A question on top of the console. Toasts never cover it: it has no toast rack, so they
    wait on the screen below until it is answered (Textual shows them on the active screen)."""

    def on_mount(self) -> None:
        for rack in self.query(TOAST_RACK):
            rack.remove()


class FittedDialog(Dialog[_T]):
    """A dialog whose scrolling body gives way so its title and buttons stay on screen
    (CSS alone cannot size an auto-height body to what the dialog's max-height leaves)."""

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_body)

    def _fit_body(self) -> None:
        dialog = self.query_one("#dialog")
        body = self.query_one("#dialog-body")
        room = int(self.size.height * 0.9)  # the dialog's max-height in app.tcss
        others = sum(
            w.outer_size.height + w.styles.margin.top + w.styles.margin.bottom
            for w in dialog.children
            if w is not body
        )
        fixed = others + dialog.styles.gutter.height + body.styles.margin.top
        body.styles.max_height = max(3, room - fixed - body.styles.margin.bottom)


class ConfirmScreen(FittedDialog[bool]):
    """A yes/no question about something that changes the repository. Focus starts on "No",
    so Enter right away cancels."""

    AUTO_FOCUS = "#no"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No", id="confirm.no"),
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("left,right", "app.focus_previous", "Switch", show=False, id="confirm.switch"),
    ]

    def __init__(
        self, title: str, body: Content | str, *, yes: str = "Yes", no: str = "No"
    ) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._body = body
        self._yes = yes
        self._no = no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(literal(self._title), id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                yield Static(
                    self._body if isinstance(self._body, Content) else literal(self._body),
                    id="dialog-text",
                )
            with Horizontal(id="dialog-buttons"):
                yield Label(f"y {self._yes.lower()} · n/esc {self._no.lower()}", id="dialog-keys")
                yield Button(self._no, id="no", variant="primary")
                yield Button(self._yes, id="yes", variant="error")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PromptScreen(Dialog[str | None]):
    """Ask for one value. `validate` returns an error message or None."""

    AUTO_FOCUS = "#prompt-input"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
    ]

    def __init__(
        self,
        title: str,
        *,
        value: str = "",
        placeholder: str = "",
        help_text: str = "",
        validate: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._value = value
        self._placeholder = placeholder
        self._help = help_text
        self._validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(literal(self._title), id="dialog-title")
            if self._help:
                yield Static(literal(self._help), id="dialog-help")
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input")
            yield Label("", id="dialog-error")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        error = self._validate(value) if self._validate else None
        if error:
            self.query_one("#dialog-error", Label).update(literal(error))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickScreen(Dialog[str | None]):
    """Choose one of `choices` ((id, label) pairs)."""

    AUTO_FOCUS = "#pick"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="pick.cancel"),
    ]

    def __init__(self, title: str, choices: Sequence[tuple[str, str]], help_text: str = "") -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._choices = list(choices)
        self._help = help_text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(literal(self._title), id="dialog-title")
            if self._help:
                yield Static(literal(self._help), id="dialog-help")
            yield OptionList(
                *(Option(literal(label), id=cid) for cid, label in self._choices), id="pick"
            )

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ErrorScreen(FittedDialog[None]):
    """Something failed: say what, and go back on any of enter/escape."""

    AUTO_FOCUS = "#ok"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "close", "Close", id="error.close"),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__(classes="dialog -error")
        self._title = title
        self._message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(literal(self._title), id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                yield Static(literal(self._message), id="dialog-text")
            with Horizontal(id="dialog-buttons"):
                yield Button("OK", id="ok", variant="primary")

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed)
    def _pressed(self) -> None:
        self.dismiss(None)
