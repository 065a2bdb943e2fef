"""A timeline of one annextui-shell session: when its main steps start and end, on which thread.

`install(out_dir)` (run by bench/sessioncost.py's timeline wrapper before the shell is imported)
wraps the functions of `STEPS` as their modules are imported, and writes one line per call's
start and end to `out_dir/PID.txt`: wall ms since the harness started the process (the
`SESSIONCOST_T0` monotonic stamp it sets, so interpreter start-up is counted), the process's CPU
ms (every thread), the thread. Lines are written as they happen (the shell ends with
`os._exit`). Only for measuring: a wrapped call costs a few µs.
"""

from __future__ import annotations

import functools
import importlib.abc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

# module -> the functions (qualified names) whose calls are timed
STEPS: dict[str, tuple[str, ...]] = {
    "annextui.proxycore.shellargs": ("parse_argv",),
    "annextui.proxycore.localrepo": ("LocalRepo.open", "_git_config", "LocalRepo.full"),
    "annextui.proxycore.shell": ("check_target", "p2pstdio"),
    "annextui.proxycore.gateway": (
        "open_gateway",
        "build_peer",
        "prewarm_ssh",
        "PrewarmLater.on_request",
    ),
    "annextui.backend.catfile": ("CatFile._process", "CatFile.blob_at"),
    "annextui.backend.state": ("load_state",),
    "annextui.backend.branch": ("BranchView.__init__",),
    "annextui.proxycore.targets": ("select_target",),
    "annextui.proxycore.server": ("Server.run", "Server._handle", "FdTransport.write"),
    "annextui.proxycore.cluster.peer": (
        "ClusterPeer.close",
        "ClusterPeer.get",
        "ClusterPeer._certain_holder",
        "ClusterPeer._holders",
        "ClusterPeer.open_get",
    ),
    "annextui.proxycore.local": ("LocalPeer.close",),
    "annextui.proxycore.records": ("GatewayRecords.close", "GatewayRecords.commit"),
    "annextui.backend.journal": ("Journal.commit",),
    "annextui.proxycore.processexit": ("exit_process", "join_own_threads"),
    "annextui.proxycore.ssh": (
        "load_paramiko",
        "start_paramiko_import",
        "SshPool.hop",
        "SshPool._connect",
        "SshPool.open_stream",
    ),
    "annextui.proxycore.sshconfig": ("ssh_g", "resolve_host"),
    "annextui.proxycore.knownhosts": ("load", "verify"),
    "annextui.proxycore.sshauth": ("authenticate",),
    "annextui.proxycore.remote": ("RemotePeer.open",),
}

_fd = -1
_t0 = time.monotonic()


def _log(text: str) -> None:
    now = (time.monotonic() - _t0) * 1e3
    cpu = time.process_time() * 1e3
    os.write(_fd, f"{now:8.1f} {cpu:7.1f}  {threading.current_thread().name:12} {text}\n".encode())


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _log(f"> {name}")
        try:
            return fn(*args, **kwargs)
        finally:
            _log(f"< {name}")

    return wrapper


def _patch(module: Any, names: tuple[str, ...]) -> None:
    for qual in names:
        owner, _, attr = qual.rpartition(".")
        holder = getattr(module, owner) if owner else module
        fn = getattr(holder, attr, None)
        if fn is None:
            _log(f"! no {module.__name__}.{qual}")
            continue
        if isinstance(holder, type) and isinstance(holder.__dict__.get(attr), classmethod):
            setattr(holder, attr, classmethod(_timed(qual, fn.__func__)))
        else:
            setattr(holder, attr, _timed(qual, fn))


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in STEPS:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(name, path, target)  # type: ignore[attr-defined]
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch(module, STEPS[name])

        loader.exec_module = exec_and_patch
        return spec


def install(out_dir: str) -> None:
    global _fd, _t0
    t0 = os.environ.get("SESSIONCOST_T0")
    if t0:
        _t0 = float(t0)
    _fd = os.open(os.path.join(out_dir, f"{os.getpid()}.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    _log("timeline installed (interpreter started, site done)")
    sys.meta_path.insert(0, _Finder())
