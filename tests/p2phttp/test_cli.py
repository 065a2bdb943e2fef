"""`annextui p2phttp`'s command line: outside a repository, bad options, a busy port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.p2phttp.support import ROOT


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "annextui", "p2phttp", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_outside_a_repository(tmp_path: Path) -> None:
    r = run([], tmp_path)
    assert r.returncode == 1
    assert "Use the --directory option" in r.stderr


def test_bad_option_is_a_usage_error(tmp_path: Path) -> None:
    r = run(["--port", "x"], tmp_path)
    assert r.returncode == 2
    assert "--port" in r.stderr


def test_busy_port_and_half_tls(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = run(
            ["--directory", str(tmp_path), "--bind", "127.0.0.1", "--port", str(port)], tmp_path
        )
    assert r.returncode == 1
    assert r.stderr.startswith("annextui: ")
    r = run(["--directory", str(tmp_path), "--certfile", "c.pem"], tmp_path)
    assert r.returncode == 1
    assert "--privatekeyfile" in r.stderr


def test_bad_pool_sizes_are_usage_errors(tmp_path: Path) -> None:
    for args, word in (
        (["--clusterjobs", "0"], "--clusterjobs"),
        (["--clusterjobs", "many"], "--clusterjobs"),
        (["--proxyconnections", "-1"], "--proxyconnections"),
        # the tests' hidden housekeeping options
        (["--ssh-idle", "0"], "--ssh-idle"),
        (["--ssh-idle", "nan"], "--ssh-idle"),
        (["--proxy-idle", "-1"], "--proxy-idle"),
        (["--housekeeping", "soon"], "--housekeeping"),
    ):
        r = run(["--directory", str(tmp_path), *args], tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert word in r.stderr
