"""`annextui-relay` as a gateway's ssh account runs it, for tests and bench/bench_relay.py.

`write_relay_program` writes the relay (annextui/proxycore/relay/client.py, verbatim) as an
executable script started by this interpreter with `-I -S`, the fast form docs/deployment.md
describes; `socket` is baked in as the default of ANNEXTUI_RELAY_SOCKET (the environment
still wins), so it needs nothing from the ssh session's environment. The server is
`annextui p2phttp --relay-socket PATH` run by tests/support/p2phttp.py (HTTP on loopback too,
which its readiness probe uses).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from annextui.proxycore.relay import client

RELAY_SOURCE = Path(client.__file__)


def write_relay_program(path: Path, socket: Path | None = None) -> Path:
    """An executable `annextui-relay` at `path` (its directory is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    preset = ""
    if socket is not None:
        value = repr(str(socket))
        preset = f"import os as _os\n_os.environ.setdefault({client.SOCKET_ENV!r}, {value})\n"
    path.write_text(f"#!{sys.executable} -IS\n{preset}{RELAY_SOURCE.read_text()}")
    path.chmod(0o755)
    return path


def relay_options(socket: Path, *extra: str) -> tuple[str, ...]:
    """p2phttp options for a server that relays ssh sessions (anonymous HTTP refused)."""
    return ("--relay-socket", str(socket), *extra)


def forced_command(program: Path) -> str:
    """An sshd forced command running the relay (the request is in SSH_ORIGINAL_COMMAND)."""
    return shlex.quote(str(program))
