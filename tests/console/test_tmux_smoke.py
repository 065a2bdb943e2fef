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
from tests.support.annex import AnnexEnv


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


def test_console_in_tmux(demo: DemoRepo, annex: AnnexEnv, tmux: Tmux, tmp_path: Path) -> None:
    # A description with brackets, set by the real git-annex: shown literally, not as markup.
    annex.annex(demo.gateway, "describe", "node2", "rack [B] node3")
    done = tmp_path / "exit-status"
    cmd = (
        f"{shlex.quote(sys.executable)} -m annextui -C {shlex.quote(str(demo.gateway))}"
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
    # Stage 3 edits on Nodes (maxsize, wanted, groups of the selected node) ...
    tmux("send-keys", "-t", "smoke", "4")
    tmux.wait_for("%use", "cluster nodes")
    for key, value, title in (
        ("m", "30GB", "Maxsize of"),
        ("w", "standard", "Preferred content (wanted) of"),
        ("g", "nodes fast", "Groups of"),
    ):
        tmux("send-keys", "-t", "smoke", key)
        tmux.wait_for(title)  # the prompt is open
        time.sleep(0.5)  # the input has focus
        for char in ["C-u", *value]:
            tmux("send-keys", "-t", "smoke", "Space" if char == " " else char)
            time.sleep(0.05)
        tmux.wait_for(f"▊  {value} ")  # in the input (the prompt's examples may name it)
        tmux("send-keys", "-t", "smoke", "Enter")
        tmux.wait_for("Staged:")
    top = tmux.wait_for("3 staged").splitlines()[0]
    assert top.rstrip().endswith("● 3 staged"), top  # the badge on the top bar, at its end
    # ... review them: both buttons on screen
    tmux("send-keys", "-t", "smoke", "C-s")
    screen = tmux.wait_for("Apply 3 staged edits?", " No ", " Apply ")
    tmux("send-keys", "-t", "smoke", "Escape")
    tmux.wait_for("Not applied")
    time.sleep(0.5)
    # q with staged edits asks instead of quitting; escape stays
    tmux("send-keys", "-t", "smoke", "q")
    tmux.wait_for("Quit with 3 staged edits?")
    tmux("send-keys", "-t", "smoke", "Escape")
    time.sleep(0.5)
    assert not done.exists()
    # the bracketed description, literally (Proxies lists descriptions)
    tmux("send-keys", "-t", "smoke", "2")
    tmux.wait_for("rack [B] node3", "client name")
    for _ in range(3):
        tmux("send-keys", "-t", "smoke", "C-z")
    tmux.wait_for("Unstaged")
    time.sleep(0.5)
    tmux("send-keys", "-t", "smoke", "q")
    deadline = time.monotonic() + 20
    while not done.exists() or not done.read_text().strip():
        assert time.monotonic() < deadline, tmux.screen()
        time.sleep(0.1)
    assert done.read_text().strip() == "0"
    # the terminal is restored: no alternate screen left behind
    assert "1 Overview" not in tmux.screen()
