"""`annextui p2phttp`'s server: sockets, TLS, HTTP/1.1 framing (h11), bounded pools, logging.

Why h11 and a thread per connection (bench/bench_http_stacks.py, ARCHITECTURE.md): every Peer
is blocking (files, sendfile, ssh channels), so an asyncio stack would hand each request to a
thread anyway and bridge each body block between the loop and that thread; h11 does only the
framing, so a GET body can leave with `sendfile` inside its chunk framing, and it costs 27 MiB
peak RSS where aiohttp costs 40 MiB, at the same small-request rate.

Bounds (never hang, never leak):
* at most `max_connections` connections, each on its own thread; one more gets `503` with
  `Retry-After` and is closed at once;
* at most `jobs` requests run against repositories at a time (`-J`); a request waits for a slot
  at most `queue_wait` seconds, and at most `queue_limit` wait at all; otherwise `503`
  (authentication happens before the wait, so an anonymous flood queues nothing);
* a slot is held by one request only, never while waiting for another pooled resource
  (upstream's deadlock, doc/bugs/p2phttp_deadlocks_with_concurrent_clients.mdwn);
* headers must arrive within `header_timeout`, a body must keep moving within
  `body_timeout`; `keeplocked` bodies wait as long as the client keeps the connection;
* a client that hangs up (or is killed) ends its request with an OSError: the upload keeps
  its partial file for a resume, a lock kept by its `keeplocked` is released, its slot and
  descriptors are freed by the `finally` of its thread.
Each Peer is closed after its request; its journal is committed by `commits.CommitLater` once
the repository has been idle for a second, not per request. SIGTERM/SIGINT stop accepting, end
every connection, release the locks, close every node connection (waiting, bounded, for the
nodes' shells to commit and exit, those closing in the background included), commit every
journal, and return.

With `relay_socket`, ssh connections handed over by `annextui-relay` are served too, each a
connection of the same bounded pool (proxycore/relay/session.py; a relay finding the pool full
is told to fall back to annextui-shell). ssh transports to nodes are kept between sessions
(gateway.ssh_pool), at most `ssh_keep` of them idle, none idle longer than `ssh_idle`
seconds, all closed at shutdown.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO, cast

import h11

from annextui.proxycore.commits import CommitLater
from annextui.proxycore.gateway import ServerSide, close_ssh_pool, prune_ssh_pool
from annextui.proxycore.http import endpoints
from annextui.proxycore.http.auth import AuthPolicy, permitted
from annextui.proxycore.http.body import SocketBody
from annextui.proxycore.http.locks import LockRegistry
from annextui.proxycore.http.reply import SocketReply
from annextui.proxycore.http.repos import ServedRepos
from annextui.proxycore.http.routes import ApiRequest, Endpoint, HttpError, parse_target
from annextui.proxycore.localrepo import release_packs
from annextui.proxycore.nodepool import NodePool
from annextui.proxycore.peer import Peer, PeerFatal, RequestRefused

if TYPE_CHECKING:
    from annextui.proxycore.relay.session import RelayAnswer

DEFAULT_PORT = 9417
HTTP, HTTPS, RELAY = "http", "https", "relay"  # what a listening socket serves
# How long a stopping server waits for its connections, all together: HTTP ones are shut down
# under them, relayed sessions see their input end; one still busy after this is abandoned
# (a relayed one answered first).
STOP_WAIT = 5.0
# How long a stopping server then waits for its node connections to close, each node's shell
# ending by end of input and committing its journal first (nodepool.py). A node that does not
# answer within it is left to the kernel, which closes its socket with the process; with
# STOP_WAIT, well within the 60 s systemd gives a stop (docs/deployment.md).
NODES_STOP_WAIT = 30.0
RECV = 1 << 16  # headers and small bodies: a large body is read past h11 (body.py)
HEADER_LIMIT = 64 * 1024


@dataclass
class ServerOptions:
    repositories: list[str]
    directories: list[str] = field(default_factory=list)
    port: int = DEFAULT_PORT
    bind: str | None = None
    socket_path: str | None = None
    certfile: str | None = None
    privatekeyfile: str | None = None
    chainfiles: list[str] = field(default_factory=list)
    policy: AuthPolicy = field(default_factory=AuthPolicy)
    jobs: int = 2
    lockedfiles: int = 100
    max_connections: int = 0  # 0: 8 per job plus one per lockable file
    queue_limit: int = 0  # 0: 4 per job; -1: none may wait
    queue_wait: float = 30.0
    commit_after: float = 1.0
    json: bool = False  # log lines and status as JSON objects
    header_timeout: float = 60.0
    body_timeout: float = 120.0
    http: bool = True  # False: the relay socket only
    relay_socket: str | None = None
    ssh_keep: int = 8  # idle ssh transports (one per host, any number of channels) kept
    ssh_idle: float = 60.0  # seconds an unused ssh transport is kept
    proxy_connections: int = 1  # idle connections kept per node (--proxyconnections)
    cluster_jobs: int = 1  # nodes a cluster request works on at once (--clusterjobs)
    proxy_idle: float = 10.0  # seconds an idle node connection is kept
    housekeeping: float = 5.0  # seconds between closing what has been idle too long

    def connections(self) -> int:
        return self.max_connections or (8 * self.jobs + self.lockedfiles)

    def queued(self) -> int:
        if self.queue_limit < 0:
            return 0
        return self.queue_limit or 4 * self.jobs


class Busy(HttpError):
    def __init__(self) -> None:
        super().__init__(503, "busy, retry later", (("Retry-After", "1"),))


@dataclass
class _Transfer:
    direction: str
    key: str
    length: int
    done: int = 0


@dataclass
class _Conn:
    peer: str
    since: float
    request: str = ""


class Slots:
    """`jobs` request slots with a bounded, time-limited queue in front of them."""

    def __init__(self, jobs: int, queue_limit: int, wait: float) -> None:
        self._sem = threading.BoundedSemaphore(jobs)
        self._waiting = 0
        self._limit = queue_limit
        self._wait = wait
        self._mutex = threading.Lock()

    @contextlib.contextmanager
    def slot(self):  # type: ignore[no-untyped-def]
        if not self._sem.acquire(blocking=False):
            with self._mutex:
                if self._waiting >= self._limit:
                    raise Busy()
                self._waiting += 1
            try:
                got = self._sem.acquire(timeout=self._wait)
            finally:
                with self._mutex:
                    self._waiting -= 1
            if not got:
                raise Busy()
        try:
            yield
        finally:
            self._sem.release()

    @property
    def waiting(self) -> int:
        with self._mutex:
            return self._waiting


class P2PHttpServer:
    def __init__(self, options: ServerOptions, *, log: TextIO | None = None) -> None:
        self.options = options
        self.nodes = NodePool(options.proxy_connections, options.proxy_idle)
        # One executor for every request's cluster fan-out: each request runs one of its
        # `cluster_jobs` node calls itself, so at most `cluster_jobs - 1` per running request.
        self.fanout = ThreadPoolExecutor(
            max_workers=max(1, (options.cluster_jobs - 1) * options.jobs),
            thread_name_prefix="node",
        )
        self.repos = ServedRepos(
            options.repositories,
            options.directories,
            ServerSide(self.nodes, max(1, options.cluster_jobs), self.fanout),
        )
        self.locks = LockRegistry(options.lockedfiles)
        self.slots = Slots(options.jobs, options.queued(), options.queue_wait)
        self._log = log if log is not None else sys.stderr
        self._log_mutex = threading.Lock()
        self._conns: dict[int, _Conn] = {}
        self._socks: dict[int, socket.socket] = {}
        self._transfers: dict[int, _Transfer] = {}
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._listeners: list[tuple[socket.socket, str]] = []  # (socket, HTTP/HTTPS/RELAY)
        self._tls: ssl.SSLContext | None = None
        self._threads: set[threading.Thread] = set()
        self.commits = CommitLater(options.commit_after)
        self._stop_pipe: tuple[int, int] | None = None  # readable once stopping (relay sessions)
        self._relay_answers: dict[int, RelayAnswer] = {}  # by thread: answered at shutdown

    # -- set-up ----------------------------------------------------------------------------------
    def listen(self) -> list[str]:
        """Open the listening sockets; the addresses, for the start-up line."""
        o = self.options
        if o.certfile or o.privatekeyfile:
            if not (o.certfile and o.privatekeyfile):
                raise ValueError(
                    "You must use both --certfile and --privatekeyfile options to enable HTTPS."
                )
            self._tls = tls_context(o.certfile, o.privatekeyfile, o.chainfiles)
        out: list[str] = []
        if o.relay_socket:
            from annextui.proxycore.relay.listener import bind_relay_socket

            self._listeners.append((bind_relay_socket(o.relay_socket), RELAY))
            self._stop_pipe = os.pipe()
            out.append(f"relay:{o.relay_socket}")
        if o.http:
            out.insert(0, self._listen_http())
        return out

    def _listen_http(self) -> str:
        o = self.options
        secure = self._tls is not None
        kind = HTTPS if secure else HTTP
        if o.socket_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(o.socket_path)
            sock.listen(socket.SOMAXCONN)
            self._listeners.append((sock, kind))
            return f"unix:{o.socket_path}"
        if o.bind:
            sock = socket.create_server((o.bind, o.port), backlog=socket.SOMAXCONN)
        elif socket.has_dualstack_ipv6():
            sock = socket.create_server(
                ("::", o.port),
                family=socket.AF_INET6,
                dualstack_ipv6=True,
                backlog=socket.SOMAXCONN,
            )
        else:
            sock = socket.create_server(("0.0.0.0", o.port), backlog=socket.SOMAXCONN)
        self._listeners.append((sock, kind))
        host, port = sock.getsockname()[:2]
        return f"{kind}://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._listeners[0][0].getsockname()[1])

    # -- running ---------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        self.commits.start()
        sel = selectors.DefaultSelector()
        for sock, kind in self._listeners:
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, kind)
        reaper = time.monotonic()
        try:
            while not self._stop.is_set():
                for sk, _ in sel.select(timeout=min(0.5, self.options.housekeeping)):
                    lsock = sk.fileobj
                    assert isinstance(lsock, socket.socket)
                    try:
                        conn, addr = lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as exc:  # EMFILE and kin: say so, keep serving the others
                        self.log(f"accept failed: {exc}")
                        time.sleep(0.1)
                        continue
                    self._admit(conn, addr, str(sk.data))
                if time.monotonic() - reaper > self.options.housekeeping:
                    reaper = time.monotonic()
                    self.locks.expire()
                    prune_ssh_pool(self.options.ssh_idle, self.options.ssh_keep)
                    self.nodes.reap()
        finally:
            sel.close()
            self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """End every connection (their threads release what they hold), then the locks."""
        self._stop.set()
        if self._stop_pipe is not None:
            os.write(self._stop_pipe[1], b"x")  # relayed sessions see their input end
        for sock, _ in self._listeners:
            with contextlib.suppress(OSError):
                sock.close()
        with self._mutex:
            socks = list(self._socks.values())
            threads = list(self._threads)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + STOP_WAIT
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._answer_stopped_relays()
        self.locks.release_all()
        self.fanout.shutdown(wait=True)
        self._close_nodes()
        self.commits.stop()  # the journals, committed before the process ends
        close_ssh_pool()
        for path in (self.options.socket_path, self.options.relay_socket):
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        if self._stop_pipe is not None:
            for fd in self._stop_pipe:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._stop_pipe = None

    def _close_nodes(self) -> None:
        """Every node connection closed, the idle ones and those being closed in the
        background alike, before the process ends: each node's shell sees its input end,
        commits its journal and exits while we wait for its exit status. In-process nodes
        hand their commits to `self.commits`, stopped after this."""
        self.nodes.close()
        left = self.nodes.wait_closed(
            NODES_STOP_WAIT,
            lambda n: self.log(f"stopping: waiting for {n} node connection(s) to close"),
        )
        if left:
            self.log(
                f"stopping: {left} node connection(s) still open after {NODES_STOP_WAIT:g} s:"
                " left to end with the process"
            )

    def _answer_stopped_relays(self) -> None:
        """A relayed session still running now (blocked on its client's pipe or on a node,
        where the stop pipe does not reach) ends with the process: its relay gets the status
        of a stopped session now, never a closed socket without one (relay/client.py)."""
        from annextui.proxycore.relay.session import STOPPED

        with self._mutex:
            answers = list(self._relay_answers.values())
        for answer in answers:
            if answer.send(STOPPED):
                self.log("relay SSH session still running at shutdown: answered exit 0")

    def _admit(self, conn: socket.socket, addr: object, kind: str) -> None:
        conn.setblocking(True)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._mutex:
            full = len(self._threads) >= self.options.connections()
        if full and kind == RELAY:
            with contextlib.suppress(OSError):
                conn.settimeout(1)
                conn.sendall(b"fallback\n")  # the relay serves it with its own shell
            conn.close()
            self.log("relay: all workers busy, the relay falls back to annextui-shell")
            return
        if full:
            with contextlib.suppress(OSError):
                conn.settimeout(1)
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
            conn.close()
            self.log("503 too many connections")
            return
        peer = _peer_name(addr) if kind != RELAY else "relay"
        t = threading.Thread(target=self._connection, args=(conn, peer, kind), daemon=True)
        with self._mutex:
            self._threads.add(t)
        t.start()

    def _connection(self, raw: socket.socket, peer: str, kind: str) -> None:
        ident = threading.get_ident()
        sock: socket.socket = raw
        try:
            with self._mutex:
                self._conns[ident] = _Conn(peer, time.monotonic())
                if kind != RELAY:  # a relayed session ends through the stop pipe instead
                    self._socks[ident] = raw
            if kind == RELAY:
                self._relayed(raw)
                return
            raw.settimeout(self.options.header_timeout)
            if self._tls is not None:
                sock = self._tls.wrap_socket(raw, server_side=True)
                with self._mutex:
                    self._socks[ident] = sock
            _Connection(self, sock, peer, kind == HTTPS).run()
        except (OSError, ssl.SSLError, h11.ProtocolError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._mutex:
                self._conns.pop(ident, None)
                self._socks.pop(ident, None)
                self._transfers.pop(ident, None)
                self._threads.discard(threading.current_thread())

    def _relayed(self, conn: socket.socket) -> None:
        """One ssh connection handed over by annextui-relay, served to its end."""
        from annextui.proxycore.relay.session import RelayAnswer, serve_relayed

        stop = self._stop_pipe[0] if self._stop_pipe is not None else None
        ident = threading.get_ident()
        reply = RelayAnswer(conn)
        with self._mutex:
            self._relay_answers[ident] = reply
        try:
            serve_relayed(
                conn,
                stop_fd=stop,
                started=self.set_request,
                finished=lambda o: self.log_request(
                    "relay", "SSH", o.command, o.status, 0, o.seconds
                ),
                reply=reply,
            )
        finally:
            with self._mutex:
                self._relay_answers.pop(ident, None)

    # -- observability -----------------------------------------------------------------------------
    def log(self, line: str) -> None:
        with self._log_mutex, contextlib.suppress(OSError, ValueError):
            self._log.write(line + "\n")
            self._log.flush()

    def log_request(
        self, peer: str, method: str, target: str, status: int | str, moved: int, seconds: float
    ) -> None:
        """One line per request: client, method, path, status, body bytes, seconds."""
        if self.options.json:
            self.log(
                json.dumps(
                    {
                        "client": peer,
                        "method": method,
                        "path": target,
                        "status": status,
                        "bytes": moved,
                        "seconds": round(seconds, 6),
                    },
                    sort_keys=True,
                )
            )
        else:
            self.log(f"{peer} {method} {target} {status} {moved} {seconds:.3f}")

    def set_request(self, text: str) -> None:
        with self._mutex:
            conn = self._conns.get(threading.get_ident())
            if conn is not None:
                conn.request = text

    def transfer(self, direction: str, key: str, length: int) -> Callable[[int], None]:
        ident = threading.get_ident()
        record = _Transfer(direction, key, length)
        with self._mutex:
            self._transfers[ident] = record

        def progress(done: int) -> None:
            record.done = done

        return progress

    def end_transfer(self) -> None:
        with self._mutex:
            self._transfers.pop(threading.get_ident(), None)

    def status(self) -> dict[str, object]:
        now = time.monotonic()
        with self._mutex:
            conns = [
                {"peer": c.peer, "seconds": round(now - c.since, 1), "request": c.request}
                for c in self._conns.values()
            ]
            transfers = [
                {"direction": t.direction, "key": t.key, "bytes": t.done, "size": t.length}
                for t in self._transfers.values()
            ]
        return {
            "connections": conns,
            "locks": [
                {"lockid": i, "key": k, "kept": kept} for i, k, kept in self.locks.snapshot()
            ],
            "transfers": transfers,
            "queued": self.slots.waiting,
            "idle_node_connections": self.nodes.idle(),
            "node_connections_opened": self.nodes.opened,
            "uncommitted": self.commits.pending(),
            "served": sorted(self.repos.uuids()),
        }

    def print_status(self) -> None:
        st = self.status()
        if self.options.json:
            self.log(json.dumps({"status": st}, sort_keys=True))
            return
        lines = [
            f"status: {len(st['connections'])} connections, "  # type: ignore[arg-type]
            f"{len(st['locks'])} locks, {len(st['transfers'])} transfers, "  # type: ignore[arg-type]
            f"{st['queued']} queued, {st['uncommitted']} journals to commit, "
            f"{st['idle_node_connections']} idle node connections, "
            f"{st['node_connections_opened']} node connections opened"
        ]
        for c in st["connections"]:  # type: ignore[attr-defined]
            lines.append(f"  connection {c['peer']} {c['seconds']}s {c['request']}")
        for lk in st["locks"]:  # type: ignore[attr-defined]
            kept = "kept" if lk["kept"] else "not kept"
            lines.append(f"  lock {lk['lockid']} {lk['key']} ({kept})")
        for t in st["transfers"]:  # type: ignore[attr-defined]
            lines.append(f"  {t['direction']} {t['key']} {t['bytes']}/{t['size']}")
        self.log("\n".join(lines))


class _Connection:
    """One client connection: requests one after the other (keep-alive)."""

    def __init__(self, server: P2PHttpServer, sock: socket.socket, peer: str, secure: bool) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.secure = secure
        self.h = _parser()
        self.own_framing = False  # this request's response framed by reply.py, not h11
        self._buf = bytearray(RECV)
        self._view = memoryview(self._buf)

    def next_event(self) -> object:
        while True:
            ev = self.h.next_event()
            if ev is h11.NEED_DATA:
                self.receive()
                continue
            return ev

    def receive(self) -> None:
        """One read from the socket into h11 (which copies it: the buffer is reused)."""
        n = self.sock.recv_into(self._buf)
        self.h.receive_data(cast(bytes, self._view[:n]))  # h11 takes any buffer

    def send(self, event: h11.Event) -> None:
        data = self.h.send(event)
        if data:
            self.sock.sendall(data)

    def run(self) -> None:
        opts = self.server.options
        while not self.server._stop.is_set():
            self.sock.settimeout(opts.header_timeout)
            try:
                ev = self.next_event()
            except h11.RemoteProtocolError:
                with contextlib.suppress(Exception):
                    self.send(h11.Response(status_code=400, headers=[("Connection", "close")]))
                    self.send(h11.EndOfMessage())
                return
            if not isinstance(ev, h11.Request):
                return  # closed between requests
            self.sock.settimeout(opts.body_timeout)
            self.own_framing = _keeps_alive(ev)
            self._request(ev)
            if self.h.their_state is not h11.DONE:
                return  # the rest of the request's body was not read
            if self.own_framing:
                self._next_parser()
                continue
            if self.h.our_state is h11.MUST_CLOSE or self.h.our_state is not h11.DONE:
                return
            self.h.start_next_cycle()

    def _next_parser(self) -> None:
        """A new h11 parser for the next request, given what the client sent after this one:
        h11 saw none of the response reply.py framed, so its own cycle cannot go on."""
        data, closed = self.h.trailing_data
        self.h = _parser()
        if data:
            self.h.receive_data(data)
        if closed:
            self.h.receive_data(b"")

    def _request(self, req: h11.Request) -> None:
        started = time.monotonic()
        method = req.method.decode("ascii", "replace")
        target = req.target.decode("ascii", "replace")
        headers = {k.decode("ascii").lower(): v.decode("latin-1") for k, v in req.headers}
        srv = self.server
        srv.set_request(f"{method} {target}")
        body = SocketBody(self.sock, self.h, self.receive)
        reply = SocketReply(self)
        try:
            self._dispatch(method, target, headers, body, reply)
        except HttpError as err:
            self._error(reply, err)
        except (RequestRefused, PeerFatal) as exc:
            self._error(reply, HttpError(500, str(exc) or "Something went wrong"))
        except (OSError, h11.ProtocolError):
            reply.status = reply.status or 499  # the client is gone
            raise
        except Exception as exc:  # a bug: this request fails, the server goes on
            srv.log(f"error: {type(exc).__name__}: {exc}")
            self._error(reply, HttpError(500, "Something went wrong"))
        finally:
            srv.end_transfer()
            srv.set_request("")
            srv.log_request(
                self.peer,
                method,
                target,
                reply.status,
                body.received + reply.sent,
                time.monotonic() - started,
            )

    def _error(self, reply: SocketReply, err: HttpError) -> None:
        if reply.started or self.h.our_state is not h11.SEND_RESPONSE:
            raise ConnectionAbortedError("the response had started")  # cannot say it now
        body = err.body.encode()
        extra: list[tuple[str, str]] = []
        if self.h.their_state is not h11.DONE:
            extra.append(("Connection", "close"))  # the rest of its body is not read
        reply.start(
            err.status,
            [
                *err.headers,
                *extra,
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
            ],
        )
        reply.write(body)
        reply.end()

    def _dispatch(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: SocketBody,
        reply: SocketReply,
    ) -> None:
        srv = self.server
        api = parse_target(method, target)
        access = srv.options.policy.access(headers.get("authorization"), self.secure)
        client = api.client_uuid()
        # An unknown UUID is 404 before any permission check, as upstream; the Peer is
        # made only for a permitted request.
        make_peer = srv.repos.target(api.uuid, client)
        permitted(access, api.endpoint.action)
        peer = make_peer()
        session = endpoints.Session(peer, srv.locks, transfer=srv.transfer)
        try:
            if self.h.they_are_waiting_for_100_continue:
                self.send(h11.InformationalResponse(status_code=100, headers=[]))
            if api.endpoint is Endpoint.KEEPLOCKED:
                self.sock.settimeout(None)  # as long as the client holds the lock
                endpoints.run(api, session, body, reply, None)
                return
            with srv.slots.slot():
                _negotiate(peer, api)
                endpoints.run(api, session, body, reply, headers.get("x-git-annex-data-length"))
        finally:
            if not session.keeps_peer:
                with contextlib.suppress(Exception):
                    peer.close()
            release_packs()  # descriptors stay flat however many threads served requests


def _parser() -> h11.Connection:
    return h11.Connection(h11.SERVER, max_incomplete_event_size=HEADER_LIMIT)


def _keeps_alive(req: h11.Request) -> bool:
    """Whether reply.py frames the response: an HTTP/1.1 request that keeps the connection
    open, other than HEAD (h11 keeps the rarer cases: close-delimited HTTP/1.0 bodies, a
    HEAD response's framing without its body, the `Connection: close` it adds)."""
    if req.http_version != b"1.1" or req.method == b"HEAD":
        return False
    for name, value in req.headers:
        if name == b"connection" and b"close" in value.lower():
            return False
    return True


def _negotiate(peer: Peer, api: ApiRequest) -> None:
    """The implicit VERSION and BYPASS of the request's P2P session."""
    peer.negotiate_version(api.version)
    bypass = api.bypass()
    if bypass:
        peer.bypass(bypass)


def _peer_name(addr: object) -> str:
    if isinstance(addr, tuple) and addr:
        return str(addr[0])
    return "unix"


def tls_context(certfile: str, keyfile: str, chainfiles: list[str]) -> ssl.SSLContext:
    """A server context from the certificate, its chain files and the private key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if not chainfiles:
        ctx.load_cert_chain(certfile, keyfile)
        return ctx
    import tempfile

    # ssl takes the chain only inside the certificate file: join them in a private temp file.
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as joined:
        for path in (certfile, *chainfiles):
            with open(path, "rb") as fh:
                data = fh.read()
            joined.write(data if data.endswith(b"\n") else data + b"\n")
        joined.flush()
        ctx.load_cert_chain(joined.name, keyfile)
    return ctx


def install_signals(server: P2PHttpServer) -> None:
    """SIGTERM/SIGINT stop the server cleanly; SIGUSR1 prints its status to stderr."""

    def stop(signum: int, frame: object) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, lambda s, f: server.print_status())
