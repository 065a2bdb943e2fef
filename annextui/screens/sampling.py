"""`SampledView`: a view that samples something a few times a second while it is shown
(Transfers, Jobs), and stops when another view is shown."""

from __future__ import annotations

from typing import ClassVar

from textual.timer import Timer

from annextui.screens.base import ConsoleScreen


class SampledView(ConsoleScreen):
    """Calls `sample_now` every POLL_SECONDS while shown, and once when shown again."""

    POLL_SECONDS: ClassVar[float] = 0.5
    _timer: Timer | None = None

    # Textual calls this handler of every class in the MRO: ConsoleScreen's runs as well.
    def on_screen_resume(self) -> None:
        if self._timer is None:
            self._timer = self.set_interval(self.POLL_SECONDS, self.sample_now)
        self.sample_now()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def sample_now(self) -> None:
        """Start a sample (in a worker); subclasses say what they sample."""
