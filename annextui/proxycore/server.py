"""The P2P serving loop: a `Connection` (protocol state) joined to a `Peer` (where keys live).

This is the only place requests become Peer calls (`serverHandler` of git-annex's
`P2P/Protocol.hs`). It does no I/O of its own: it reads and writes through a `Transport`, so
the same loop serves ssh stdio (`serve_stdio`), a paramiko channel, or a socket.

What happens on bad input, as git-annex's plain server does it:
* unparsable line → `ERROR unknown command`; a message out of place → `ERROR unexpected
  command` (or the `expected …` text of the state), and serving goes on;
* a client `ERROR` between requests → stop, exit status 0;
* EOF (also in the middle of a line or a DATA body) → stop quietly, exit status 0; whatever
  part of an upload arrived stays in `annex/tmp` for a resume;
* a line longer than 32768 bytes → stop, `protocol error` on stderr, exit status 1;
* a Peer failure that git-annex treats as fatal (`content is locked`, …) → stop, message on
  stderr, exit status 1.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import sys
from collections.abc import Callable
from typing import Protocol, cast

from annextui.backend.keys import Key
from annextui.proxycore import protocol as p
from annextui.proxycore.peer import (
    AlreadyHave,
    ContentLock,
    Incoming,
    Outcome,
    Outgoing,
    Peer,
    PeerFatal,
    RequestRefused,
    read_into_full,
)
from annextui.values import Value

READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20
SMALL_BODY = 256 * 1024  # answers up to this size are written at once
SEND_BLOCK = 1 << 20
READONLY_ERROR = "this repository is read-only; write access denied"
APPENDONLY_ERROR = "this repository is append-only; removal denied"


class ServerMode(enum.Enum):
    READONLY = "readonly"
    APPENDONLY = "appendonly"
    READWRITE = "readwrite"


class Transport(Protocol):
    """Blocking byte streams of one connection."""

    def read(self, n: int) -> bytes:
        """Up to n bytes; b"" at EOF."""
        ...

    def readinto(self, buf: memoryview) -> int:
        """Bytes read into `buf`, 0 at EOF: the server reads into one reusable buffer this way
        instead of allocating per read."""
        ...

    def write(self, data: bytes | memoryview) -> None:
        """All of `data`; raises OSError (e.g. BrokenPipeError) when the peer is gone."""
        ...

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Copy up to `count` bytes of file `fd` from `offset` straight out; return how many.

        0 means "not possible here": the caller falls back to read and write.
        """
        ...


class FdTransport:
    """Two file descriptors (ssh's stdin/stdout, a pipe pair, a socket twice).

    `stop_fd` (a long-running server's relayed sessions): when it becomes readable, reading
    sees EOF, so the session ends as if the client had hung up."""

    def __init__(
        self, infd: int, outfd: int, *, pipe_size: int = PIPE_SIZE, stop_fd: int | None = None
    ) -> None:
        self.infd = infd
        self.outfd = outfd
        self._sendfile_ok = True
        self._stop_fd = stop_fd
        self._poll = None
        if stop_fd is not None:
            import select  # poll, not select: a server's descriptors pass FD_SETSIZE

            self._poll = select.poll()
            self._poll.register(infd, select.POLLIN)
            self._poll.register(stop_fd, select.POLLIN)
        for fd in (infd, outfd):
            _grow_pipe(fd, pipe_size)

    def _stopped(self) -> bool:
        """Wait until there is input (or hang-up) or the server stops; True for the latter."""
        assert self._poll is not None
        ready = {fd for fd, _ in self._poll.poll()}
        return self._stop_fd in ready and self.infd not in ready

    def read(self, n: int) -> bytes:
        while True:
            try:
                if self._stop_fd is not None and self._stopped():
                    return b""
                return os.read(self.infd, n)
            except InterruptedError:
                continue

    def readinto(self, buf: memoryview) -> int:
        while True:
            try:
                if self._stop_fd is not None and self._stopped():
                    return 0
                return os.readv(self.infd, [buf])
            except InterruptedError:
                continue

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.outfd, view)
            view = view[n:]

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        if not self._sendfile_ok:
            return 0
        try:
            return os.sendfile(self.outfd, fd, offset, count)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                self._sendfile_ok = False
                return 0
            raise


def _grow_pipe(fd: int, size: int) -> None:
    """Larger pipe buffers mean fewer, larger reads and writes (Linux F_SETPIPE_SZ)."""
    import fcntl
    import stat

    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is None or size <= 0:
        return
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, setsz, size)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size, or not ours to change: keep the default


class ServeResult(Value):
    """How the session ended: `error` is the stderr message of a failed session (exit 1)."""

    error: str | None = None
    requests: int = 0


class _Stop(Exception):
    def __init__(self, error: str | None = None) -> None:
        super().__init__(error)
        self.error = error


_ZEROS = bytes(SEND_BLOCK)


class Server:
    """Serves one connection for one Peer. `run()` returns when the conversation is over."""

    def __init__(
        self,
        peer: Peer,
        transport: Transport,
        *,
        mode: ServerMode = ServerMode.READWRITE,
        debug: Callable[[str], None] | None = None,
        read_size: int = READ_SIZE,
        on_request: Callable[[p.Event], None] | None = None,
    ) -> None:
        """`on_request` sees each message from the client before it is handled (a one-shot
        gateway session starts its ssh pre-warm by it: gateway.PrewarmLater)."""
        self.peer = peer
        self.t = transport
        self.mode = mode
        self.conn = p.Connection(p.Role.SERVER, greeting=True)
        self.wire = p.BlockingConnection(
            self.conn,
            transport.read,
            transport.write,
            read_size=read_size,
            readinto=transport.readinto,
        )
        self._debug = debug
        self._on_request = on_request
        self._requests = 0
        # What is in flight, so it can be released whatever happens.
        self._lock: ContentLock | None = None
        self._incoming: Incoming | None = None
        self._outgoing: Outgoing | None = None
        self._buf = bytearray(SEND_BLOCK)

    # -- plumbing --------------------------------------------------------------------------------
    def _send(self, *msgs: p.Message) -> None:
        if self._debug:
            for m in msgs:
                self._debug(f"P2P > {m}")
        self.wire.send(*msgs)

    def _write(self, data: bytes) -> None:
        if data:
            self.t.write(data)

    def _event(self) -> p.Event:
        """The next event from the client, reading as needed (never while it is our turn)."""
        ev = self.wire.next_event()
        assert not isinstance(ev, p.Wait)
        if self._debug and isinstance(ev, p.Message):
            self._debug(f"P2P < {ev}")
        return ev

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> ServeResult:
        error: str | None = None
        try:
            self._send(p.AuthSuccess(self.peer.uuid))
            while True:
                try:
                    ev = self._event()
                    if isinstance(ev, p.ConnectionClosed):
                        break
                    if isinstance(ev, p.Error):
                        if self.conn.state is p.State.CLOSED:
                            break  # the client gave up between requests: so do we (exit 0)
                        self._client_error()
                        continue
                    self._requests += 1
                    if self._on_request is not None:
                        self._on_request(ev)
                    self._handle(ev)
                except p.RemoteProtocolError as exc:
                    self._recover(exc)
        except _Stop as stop:
            error = stop.error
        except PeerFatal as exc:
            error = str(exc)
        except (BrokenPipeError, ConnectionResetError):
            error = None  # the client is gone; nobody to tell
        except Exception as exc:  # a bug or the disk: end this session, keep the process sane
            error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) else str(exc)
        finally:
            self._release()
            try:
                self.peer.close()
            except Exception as exc:
                error = error or str(exc)
        return ServeResult(error, self._requests)

    def _release(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            with contextlib.suppress(Exception):
                lock.release()
        if self._incoming is not None:
            inc, self._incoming = self._incoming, None
            with contextlib.suppress(Exception):
                inc.abort()
        if self._outgoing is not None:
            out, self._outgoing = self._outgoing, None
            with contextlib.suppress(Exception):
                out.close(None)

    def _client_error(self) -> None:
        """A client ERROR instead of a GET ack or of PUT data: that request failed."""
        if self._outgoing is not None:
            out, self._outgoing = self._outgoing, None
            out.close(Outcome(False))
        if self._incoming is not None:
            inc, self._incoming = self._incoming, None
            inc.abort()

    def _recover(self, exc: p.RemoteProtocolError) -> None:
        """A bad line from the client: answer as git-annex does, or end the session."""
        if exc.fatal:
            if self.wire.eof:
                raise _Stop(None)  # hang-up mid-line or mid-body: git-annex exits quietly
            if exc.error_text:
                with contextlib.suppress(p.LocalProtocolError, OSError):
                    self._send(p.Error(exc.error_text))
            raise _Stop("protocol error")
        state = self.conn.state
        if self._lock is not None and state is not p.State.LOCKED:
            lock, self._lock = self._lock, None
            lock.release()  # "expected UNLOCKCONTENT" drops the lock
        self._send(p.Error(exc.error_text or "protocol error"))
        if state is p.State.AWAIT_PUT_RESULT:
            self._finish_put(None)  # no VALID/INVALID: verify in full, answer anyway
        elif state is p.State.IDLE and self._incoming is not None:
            inc, self._incoming = self._incoming, None
            inc.abort()  # "expected DATA": the PUT fails without a reply
        elif state is p.State.IDLE and self._outgoing is not None:
            out, self._outgoing = self._outgoing, None
            out.close(None)  # no usable ack for the GET

    def _handle(self, ev: p.Event) -> None:
        # Cases are tried in order and the message classes are disjoint: a GET and its ack
        # (most of a busy session's lines) come first.
        match ev:
            case p.Get(offset=offset, associated_file=af, key=k):
                self._guard(lambda: self._get(_key(k), offset, af))
            case p.Success() | p.Failure() | p.SuccessPlus() | p.FailurePlus():
                self._get_ack(ev)
            case p.Version(version=offered):
                # A proxy answers with what the peer behind it negotiated (<= the offer).
                v = self.peer.negotiate_version(min(offered, self.conn.max_version))
                self._send(p.Version(max(0, min(v, offered))))
            case p.Auth():
                self._send(p.Error("unexpected command"))  # ssh already authenticated
            case p.CheckPresent(key=k):
                self._guard(lambda: self._reply(self.peer.check_present(_key(k))))
            case p.LockContent(key=k):
                self._guard(lambda: self._lockcontent(_key(k)))
            case p.UnlockContent():
                self._unlock()
            case p.Remove(key=k):
                self._remove(_key(k), None)
            case p.RemoveBefore(timestamp=ts, key=k):
                self._remove(_key(k), ts)
            case p.GetTimestamp():
                self._guard(lambda: self._send(p.Timestamp(self.peer.timestamp())))
            case p.Put(associated_file=af, key=k):
                self._put(_key(k), af)
            case p.DataHeader(length=n):
                self._put_begin(n)
            case p.Data(data=chunk):
                if self._incoming is not None:
                    self._incoming.write(chunk)
            case p.EndOfData():
                if self.conn.state is p.State.AWAIT_PUT_RESULT:
                    self._finish_put(None)  # protocol v0: no validity line
            case p.Valid():
                self._finish_put(True)
            case p.Invalid():
                self._finish_put(False)
            case p.DataPresent():
                self._data_present()
            case p.Bypass(uuids=uuids):
                self.peer.bypass(tuple(uuids))
            case p.Connect(service=service):
                self._connect(service)
            case p.NotifyChange():
                raise _Stop("change notification not available")
            case _:
                # Everything else is refused by the connection before it gets here.
                raise AssertionError(f"unhandled event {ev!r}")

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except RequestRefused as exc:
            self._send(p.Error(str(exc)))

    def _reply(self, ok: bool, plus: tuple[str, ...] | None = None) -> None:
        self._write(p.reply_result(self.conn, ok, plus or ()))

    def _outcome(self, o: Outcome) -> None:
        self._reply(o.ok, o.plus)

    # -- LOCKCONTENT -----------------------------------------------------------------------------
    def _lockcontent(self, key: Key) -> None:
        lock = self.peer.lock_content(key)
        if lock is None:
            self._reply(False)
            return
        self._lock = lock
        try:
            self._reply(True)
        except BaseException:
            self._lock = None
            lock.release()
            raise

    def _unlock(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.release()

    # -- REMOVE ------------------------------------------------------------------------------------
    def _remove(self, key: Key, before: int | None) -> None:
        if self.mode is ServerMode.READONLY:
            self._send(p.Error(READONLY_ERROR))
        elif self.mode is ServerMode.APPENDONLY:
            self._send(p.Error(APPENDONLY_ERROR))
        else:
            self._guard(lambda: self._outcome(self.peer.remove(key, before=before)))

    # -- GET ---------------------------------------------------------------------------------------
    def _get(self, key: Key, offset: int, af: str | None) -> None:
        out = self.peer.get(key, offset, af)
        if out is None:
            self._write(p.no_content(self.conn))
            return
        self._outgoing = out
        length = out.length
        if length <= SMALL_BODY:
            self._get_small(out, length)
            return
        self._send(p.DataHeader(length))
        sent = 0
        fd = out.fileno()
        pos = out.offset
        while sent < length:
            want = min(SEND_BLOCK, length - sent)
            n = self.t.sendfile(fd, pos, want) if fd is not None else 0
            if n:
                out.advance(n)
                self.conn.send_data(_accounted(n))
            else:
                fd = None  # not possible here (or the file shrank): read and write instead
                view = memoryview(self._buf)[:want]
                n = out.readinto(view)
                if n <= 0:
                    # The file shrank under us; the protocol has no in-band abort: hang up.
                    raise _Stop("content changed while it was being sent")
                self.t.write(self.conn.send_data(cast(bytes, view[:n])))
            sent += n
            pos += n
        if self.conn.may_send(p.Valid):
            self._send(p.Valid() if out.valid() else p.Invalid())
        out.body_sent()
        if self.conn.state is p.State.IDLE:  # pragma: no cover - every version acks
            self._outgoing = None
            out.close(Outcome(True))

    def _get_small(self, out: Outgoing, length: int) -> None:
        """A small answer in one write: header, body and validity leave as one ssh packet."""
        buf = bytearray(self.conn.send(p.DataHeader(length)))
        view = memoryview(self._buf)
        if read_into_full(out, view[:length]) < length:
            raise _Stop("content changed while it was being sent")
        buf += self.conn.send_data(cast(bytes, view[:length]))
        if self.conn.may_send(p.Valid):
            buf += self.conn.send(p.Valid() if out.valid() else p.Invalid())
        self.t.write(memoryview(buf))
        out.body_sent()

    def _get_ack(self, ev: p.Event) -> None:
        out, self._outgoing = self._outgoing, None
        if out is None:
            return
        if isinstance(ev, p.Success):
            out.close(Outcome(True))
        elif isinstance(ev, p.SuccessPlus):
            out.close(Outcome(True, tuple(ev.uuids)))
        elif isinstance(ev, p.FailurePlus):
            out.close(Outcome(False, tuple(ev.uuids)))
        else:
            out.close(Outcome(False))

    # -- PUT ---------------------------------------------------------------------------------------
    def _put(self, key: Key, af: str | None) -> None:
        if self.mode is ServerMode.READONLY:
            self._send(p.Error(READONLY_ERROR))
            return
        try:
            res = self.peer.put(key, af)
        except RequestRefused as exc:
            self._send(p.Error(str(exc)))
            return
        if isinstance(res, AlreadyHave):
            self._write(p.reply_already_have(self.conn, res.plus or ()))
            return
        self._incoming = res
        self._send(p.PutFrom(res.offset))

    def _put_begin(self, length: int) -> None:
        if self._incoming is None:
            return  # a DATA body not for us (cannot happen on a server, kept for safety)
        self._incoming.begin(length)

    def _finish_put(self, valid: bool | None) -> None:
        inc, self._incoming = self._incoming, None
        if inc is None:
            self._reply(False)
            return
        self._outcome(inc.finish(valid))

    def _data_present(self) -> None:
        inc, self._incoming = self._incoming, None
        if inc is None:
            self._reply(False)
            return
        self._outcome(inc.data_present())

    # -- CONNECT -----------------------------------------------------------------------------------
    def _connect(self, service: p.Service) -> None:
        writes = service is p.Service.RECEIVE_PACK
        if writes and self.mode is not ServerMode.READWRITE:
            self._send(p.Error(READONLY_ERROR))
            raise _Stop(None)
        raise _Stop("relaying to git not supported on this connection")


def _key(text: str) -> Key:
    # The message codec accepted only canonical keys already (through the same remembered
    # parse: the Key it made is handed out again); this cannot fail.
    return p.parse_wire_key(text)


def _accounted(n: int) -> bytes:
    """A stand-in of length n for body bytes that went out by sendfile (only len() is used)."""
    return cast(bytes, memoryview(_ZEROS)[:n])


def serve(
    peer: Peer,
    transport: Transport,
    *,
    mode: ServerMode = ServerMode.READWRITE,
    debug: Callable[[str], None] | None = None,
    on_request: Callable[[p.Event], None] | None = None,
) -> ServeResult:
    return Server(peer, transport, mode=mode, debug=debug, on_request=on_request).run()


def serve_stdio(
    peer: Peer,
    *,
    mode: ServerMode = ServerMode.READWRITE,
    debug: bool = False,
    transport: Transport | None = None,
    warn: Callable[[str], None] | None = None,
    on_request: Callable[[p.Event], None] | None = None,
) -> ServeResult:
    """`p2pstdio`: the protocol on stdin/stdout (or a relayed session's `transport`),
    diagnostics on stderr (or through `warn`); `on_request` as `Server`'s."""

    def log(line: str) -> None:
        text = f"[annextui-shell] {line}\n"
        if warn is not None:
            warn(text)
            return
        sys.stderr.write(text)
        sys.stderr.flush()

    return serve(
        peer,
        transport or FdTransport(0, 1),
        mode=mode,
        debug=log if debug else None,
        on_request=on_request,
    )
