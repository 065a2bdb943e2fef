"""Smoke test: the real console in a real terminal (tmux), driven by keys, read back with
capture-pane, and quit cleanly."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from annextui.backend.demo import DemoRepo


class Tmux:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, check=True
        ).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "smoke")

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.1)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is required in CI")
        pytest.skip("tmux not available")
    t = Tmux(tmp_path / "tmux.sock")
    yield t
    subprocess.run(["tmux", "-S", str(t.socket), "kill-server"], capture_output=True)


def test_console_in_tmux(demo_template: DemoRepo, tmux: Tmux, tmp_path: Path) -> None:
    done = tmp_path / "exit-status"
    cmd = (
        f"{shlex.quote(sys.executable)} -m annextui -C {shlex.quote(str(demo_template.gateway))}"
        f"; echo $? > {shlex.quote(str(done))}; sleep 30"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", COLORTERM="truecolor")  # the size comes from the pane
    # The window gets its size before the console starts (tmux may otherwise pick 80x24).
    tmux_cmd = ["tmux", "-S", str(tmux.socket), "-f", "/dev/null"]
    subprocess.run(
        [*tmux_cmd, "new-session", "-d", "-s", "smoke", "-x", "120", "-y", "36", "cat"],
        check=True,
        env=env,
    )
    tmux("set-option", "-t", "smoke", "window-size", "manual")
    tmux("resize-window", "-t", "smoke", "-x", "120", "-y", "36")
    tmux("respawn-pane", "-k", "-t", "smoke", cmd)
    screen = tmux.wait_for("1 Overview", "role: gateway", "node3", "keys 300")
    assert "This repository" in screen
    tmux("send-keys", "-t", "smoke", "4")
    screen = tmux.wait_for("%use", "VAR", "cluster nodes")
    assert "node1" in screen
    tmux("send-keys", "-t", "smoke", "?")
    tmux.wait_for("Help — Nodes", "Sort")
    tmux("send-keys", "-t", "smoke", "Escape")
    time.sleep(0.5)  # a lone ESC, not ESC 3 (alt+3)
    tmux("send-keys", "-t", "smoke", "3")
    tmux.wait_for("gateways (1)", "nodes (3)", "Staged edits")
    tmux("send-keys", "-t", "smoke", "q")
    deadline = time.monotonic() + 20
    while not done.exists() or not done.read_text().strip():
        assert time.monotonic() < deadline, tmux.screen()
        time.sleep(0.1)
    assert done.read_text().strip() == "0"
    # the terminal is restored: no alternate screen left behind
    assert "1 Overview" not in tmux.screen()
