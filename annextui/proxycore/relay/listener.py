"""The relay's unix socket: private to the server's user, never replacing anything else.

The socket is created with mode 0600 (under a umask that allows nothing more, then chmod'ed)
in a directory the operator chooses. A path that exists and is not a socket is refused; a
socket there that still accepts connections belongs to a running server and is refused too;
a stale one (nothing listening) is replaced.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat


class RelaySocketError(ValueError):
    """The socket cannot be created at that path; the message says why."""


def bind_relay_socket(path: str) -> socket.socket:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise RelaySocketError(f"{path} exists and is not a socket; not replacing it")
        if _listening(path):
            raise RelaySocketError(f"{path} is in use by a running server")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise RelaySocketError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(socket.SOMAXCONN)
    return sock


def _listening(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(path)
        except OSError:
            return False
        with contextlib.suppress(OSError):
            probe.shutdown(socket.SHUT_RDWR)
        return True


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end (SO_PEERCRED)."""
    import struct

    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])
