"""Waiting for another process (or thread) to get somewhere, with a bound."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(done: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Poll `done` until it is true. After `timeout` seconds an AssertionError says `what` was
    awaited: the bound of a wait that would otherwise last for ever if the other side stalls,
    never a timing assertion (the bound is far above the usual wait)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.01)
