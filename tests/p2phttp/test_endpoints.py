"""GET bodies as the real server sends them: a file that changed while it was read goes out
one byte short (the client then rejects it), an unchanged one whole (endpoints._send)."""

from __future__ import annotations

import os
from pathlib import Path

from annextui.proxycore.http.endpoints import BLOCK, _send
from annextui.proxycore.local import LocalOutgoing


class Collected:
    """An `endpoints.Reply` that keeps the body (no sendfile: the read path)."""

    def __init__(self, *, sendfile: bool) -> None:
        self.body = bytearray()
        self._sendfile = sendfile

    def start(self, status: int, headers: list[tuple[str, str]]) -> None: ...

    def write(self, data: bytes | memoryview) -> None:
        self.body += data

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        if not self._sendfile:
            return 0
        data = os.pread(fd, count, offset)
        self.body += data
        return len(data)

    def end(self) -> None: ...


def _outgoing(path: Path, offset: int = 0) -> LocalOutgoing:
    fd = os.open(path, os.O_RDONLY)
    st = os.fstat(fd)
    return LocalOutgoing(fd, path, st, offset, st.st_size - offset, None)


def test_unchanged_content_is_sent_whole(tmp_path: Path) -> None:
    data = os.urandom(BLOCK * 2 + 123)
    f = tmp_path / "obj"
    f.write_bytes(data)
    for sendfile in (True, False):
        reply, out = Collected(sendfile=sendfile), _outgoing(f, 5)
        assert _send(out, reply, lambda n: None)
        out.close(None)
        assert bytes(reply.body) == data[5:]


def test_changed_content_is_one_byte_short(tmp_path: Path) -> None:
    data = os.urandom(BLOCK + 7)
    f = tmp_path / "obj"
    f.write_bytes(data)
    for sendfile in (True, False):
        reply, out = Collected(sendfile=sendfile), _outgoing(f)

        def progress(n: int, f: Path = f) -> None:
            t = f.stat().st_mtime_ns + 1_000_000_000
            os.utime(f, ns=(t, t))  # the file changes while it is being sent

        assert not _send(out, reply, progress)
        out.close(None)
        assert len(reply.body) == len(data) - 1
