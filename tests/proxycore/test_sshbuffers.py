"""paramiko's receive buffers replaced (sshbuffers.py): the same answers as paramiko's own
BufferedPipe and a plain socket, and what a node stream really goes through."""

from __future__ import annotations

import hashlib
import random
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import cast

import pytest
from paramiko.buffered_pipe import BufferedPipe, PipeTimeout

from annextui.proxycore.ssh import SshOptions, SshPool, parse_ssh_url
from annextui.proxycore.sshbuffers import BufferedSocket, ChunkPipe
from tests.support.sshd import Sshd


@pytest.mark.parametrize("seed", range(6))
def test_chunk_pipe_reads_what_paramikos_pipe_reads(seed: int) -> None:
    """Random feeds and reads (sizes across packet boundaries, inside one packet, beyond
    what is held): every read returns what paramiko's BufferedPipe returns."""
    rng = random.Random(seed)
    ours = ChunkPipe()
    theirs: BufferedPipe[bytes] = BufferedPipe()
    fed = 0
    for _ in range(400):
        if rng.random() < 0.5 or not len(theirs):
            data = rng.randbytes(rng.choice([1, 7, 100, 32768, 32768, 70000]))
            ours.feed(data)
            theirs.feed(data)
            fed += len(data)
        else:
            n = rng.choice([1, 5, 16, 4096, 32768, 65536, 1 << 20])
            assert ours.read(n) == theirs.read(n)
        assert len(ours) == len(theirs)
        assert ours.read_ready() == theirs.read_ready()
    assert ours.empty() == theirs.empty()
    assert len(ours) == 0
    assert fed > 0


def test_chunk_pipe_waits_times_out_and_closes() -> None:
    pipe = ChunkPipe()
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.0)
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.05)

    def later() -> None:
        time.sleep(0.1)
        pipe.feed(b"late")

    threading.Thread(target=later).start()
    assert pipe.read(10) == b"late"  # blocked until fed

    event = threading.Event()
    pipe.set_event(event)
    assert not event.is_set()
    pipe.feed(b"abc")
    assert event.is_set()
    assert pipe.read(2) == b"ab"
    assert event.is_set()
    assert pipe.read(2) == b"c"
    assert not event.is_set()

    pipe.feed(b"rest")
    pipe.close()
    assert event.is_set()
    assert pipe.read(100) == b"rest"  # what came before the close is still read
    assert pipe.read(100) == b""


def test_buffered_socket_returns_the_stream_in_order_never_more_than_asked() -> None:
    a, b = socket.socketpair()
    data = random.Random(1).randbytes(3 << 20)

    def send_all() -> None:
        a.sendall(data)
        a.close()

    writer = threading.Thread(target=send_all)
    writer.start()
    sock = BufferedSocket(b, size=100_000)
    rng = random.Random(2)
    got = bytearray()
    while True:
        n = rng.choice([16, 4, 32768, 300_000])
        chunk = sock.recv(n)
        assert len(chunk) <= n
        if not chunk:
            break
        got += chunk
    writer.join()
    assert bytes(got) == data
    # everything else is the socket's own: a timeout reaches the caller as before
    c, d = socket.socketpair()
    wrapped = BufferedSocket(d)
    cast(socket.socket, wrapped).settimeout(0.05)  # the socket's own
    assert d.gettimeout() == 0.05
    with pytest.raises(TimeoutError):
        wrapped.recv(10)
    for s in (b, c, d):
        s.close()


def test_a_node_stream_runs_through_both_buffers(ssh_hosts: Sshd, tmp_path: Path) -> None:
    """A real sshd's 24 MiB arrive byte for byte through the pooled transport, whose socket
    and channel are the buffered ones (a change that stops installing them fails here)."""
    ssh_hosts.add_host("bufhost")
    content = random.Random(3).randbytes(24 << 20)
    (tmp_path / "content").write_bytes(content)  # the sshd is this machine's
    pool = SshPool()
    try:
        target = parse_ssh_url("ssh://bufhost/tmp")
        assert target is not None
        opts = SshOptions.parse(f"-F {ssh_hosts.config_path}")
        rng = random.Random(4)
        for _ in range(2):  # the second on the pooled transport
            ch = pool.open(target, shlex.join(["cat", str(tmp_path / "content")]), opts)
            assert isinstance(ch.channel.in_buffer, ChunkPipe)
            transport = ch.channel.get_transport()
            assert transport is not None
            assert isinstance(transport.sock, BufferedSocket)
            got = bytearray()
            while chunk := ch.read(rng.choice([1000, 65536, 1 << 20])):
                got += chunk
            assert ch.close() == 0
            assert hashlib.sha256(got).digest() == hashlib.sha256(content).digest()
    finally:
        pool.close()
