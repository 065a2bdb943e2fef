"""One relayed ssh connection, served in the long-running server's worker thread.

The relay (client.py) sends its header with the ssh session's stdin, stdout and stderr
attached; a `p2pstdio` command line is served on those descriptors by the shell's own code
(`shell.run`: argv parsing, `GIT_ANNEX_SHELL_*` restrictions, the `--uuid` target, the Peers),
with the header's environment in place of the process's, so a relayed connection is refused or
restricted exactly as annextui-shell would refuse or restrict it. What the server adds is what
it keeps between sessions: repositories (repocache), the branch state per tip (http/repos.py)
and ssh transports to nodes (gateway.ssh_pool). Every other command (git's own traffic,
configlist, notifychanges, gcrypt's commands) is answered `fallback`: the relay becomes
annextui-shell for it.

The session's journal is committed when it ends, as annextui-shell commits at exit; the
descriptors are closed before `exit N` is sent, so sshd sees the session's end as soon as the
relay exits.

Once the header is read, the relay always gets one status line (`RelayAnswer`): the session's
own `exit N`, `exit 1` when the session failed in an unexpected way, or, from the stopping
server for a session that did not end in time, `exit 0`: a session the server stops ends as
when its client hangs up (client.py's docstring gives the whole rule).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from annextui.proxycore import shell
from annextui.proxycore.relay.header import HeaderError, RelayHeader, header_size, parse_header
from annextui.proxycore.relay.listener import peer_uid

if TYPE_CHECKING:
    from annextui.backend.state import AnnexState
    from annextui.proxycore.localrepo import LocalRepo

PROGRAM = "annextui-shell"  # messages name the shell, as the fallback's would
HEADER_TIMEOUT = 10.0
DESCRIPTORS = 3  # stdin, stdout, stderr


class RelayedSession(shell.ShellSession):
    """The shell session of a relayed connection: the header's environment, the passed
    descriptors, and the server's caches."""

    __slots__ = ("_stop_fd",)

    def __init__(
        self, environ: Mapping[str, str], fds: list[int], stop_fd: int | None = None
    ) -> None:
        super().__init__(environ, fds[0], fds[1], fds[2])
        self._stop_fd = stop_fd

    def open_repo(self, directory: str) -> LocalRepo:
        from annextui.proxycore.localrepo import expand_repo_path
        from annextui.proxycore.repocache import open_repo

        return open_repo(expand_repo_path(directory, self.home))

    def gateway_state(self, repo: LocalRepo) -> AnnexState | None:
        from annextui.proxycore.http.repos import branch_state

        return branch_state(repo)

    def stop_fd(self) -> int | None:
        return self._stop_fd


STOPPED = b"exit 0\n"  # a session the server stops: as when its client hangs up


class RelayAnswer:
    """The one status line a relay connection gets. The session sends it when it ends; a
    stopping server sends `STOPPED` for a session still running when it gives up waiting, so
    the relay never sees its socket close without a status. Whichever comes first is sent."""

    __slots__ = ("_conn", "_lock", "_sent")

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._sent = False

    def send(self, line: bytes) -> bool:
        """Send `line` unless a line was sent already; whether this call sent it."""
        with self._lock:
            if self._sent:
                return False
            self._sent = True
            with contextlib.suppress(OSError):  # the relay is gone: nobody to tell
                self._conn.sendall(line)
            return True


class SessionReport:
    """What a relayed connection came to, for the server's log line."""

    def __init__(self) -> None:
        self.command = ""
        self.status = "refused"
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def serve_relayed(
    conn: socket.socket,
    *,
    stop_fd: int | None,
    started: Callable[[str], None] = lambda command: None,
    finished: Callable[[SessionReport], None] = lambda outcome: None,
    reply: RelayAnswer | None = None,
) -> None:
    """Serve one accepted relay connection to its end. `started` is told the command once the
    header is read (the server's status shows it), `finished` what came of it, before the relay
    is answered (so the server's log line precedes the client's next step). `reply` is the
    connection's answer, shared with the server that may answer it at shutdown."""
    reply = reply if reply is not None else RelayAnswer(conn)
    out = SessionReport()
    fds: list[int] = []
    answer = b""
    try:
        if peer_uid(conn) != os.getuid():
            raise HeaderError("relay from another user refused")
        conn.settimeout(HEADER_TIMEOUT)
        fds, header = receive(conn)
        conn.settimeout(None)
        out.command = _printable(header)
        started(out.command)
        args = list(header.args)
        if not shell.is_p2pstdio(args):
            out.status, answer = "fallback", b"fallback\n"
            return
        from annextui.proxycore.commits import commit_at_session_end
        from annextui.proxycore.localrepo import release_packs

        # From here on the relay holds on for a status: a failure the shell does not turn into
        # one (an exception escaping it) is still answered, as the shell's crash would exit 1.
        out.status, answer = "failed", b"exit 1\n"
        session = RelayedSession(header.environ, fds, stop_fd)
        try:
            with commit_at_session_end():
                code = shell.run(args, session, PROGRAM)
        finally:
            release_packs()
        out.status, answer = f"exit {code}", b"exit %d\n" % code
    except HeaderError as exc:
        out.status, answer = f"error {exc}", f"error {exc}\n".encode()
    except OSError:
        if not answer:
            out.status = "gone"  # the relay went away before its header was read
    finally:
        _close(fds)  # before the answer: sshd sees the session end when the relay exits
        finished(out)
        if answer:
            reply.send(answer)


def receive(conn: socket.socket) -> tuple[list[int], RelayHeader]:
    """The header and the descriptors that came with it (closed again on any error)."""
    data = b""
    fds: list[int] = []
    space = socket.CMSG_SPACE(DESCRIPTORS * 4)
    try:
        while True:
            size = header_size(data)
            if size is not None and len(data) >= size:
                break
            want = 65536 if size is None else size - len(data)
            msg, ancdata, flags, _ = conn.recvmsg(want, space, socket.MSG_CMSG_CLOEXEC)
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(payload) - len(payload) % 4
                    fds += [
                        int.from_bytes(payload[i : i + 4], sys.byteorder, signed=True)
                        for i in range(0, usable, 4)
                    ]
            if flags & socket.MSG_CTRUNC:
                raise HeaderError("too many descriptors")
            if not msg:
                raise HeaderError("connection closed inside the header")
            data += msg
        header = parse_header(data)
        if len(fds) != DESCRIPTORS:
            raise HeaderError("expected the session's stdin, stdout and stderr")
        return fds, header
    except BaseException:
        _close(fds)
        raise


def _close(fds: list[int]) -> None:
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


def _printable(header: RelayHeader) -> str:
    """The command line for the log: untrusted, so escaped (never interpreted)."""
    return " ".join(header.args).encode("unicode_escape").decode("ascii")
