"""Reaching ssh nodes: paramiko with one transport per host, or the system's OpenSSH client.

How a host is reached comes from OpenSSH's own evaluation of its configuration (sshconfig.py):
directly, through `ProxyJump` hosts (a direct-tcpip channel over the jump host's transport, so a
chain is transports nested in channels) or a `ProxyCommand` (run by the shell on a socketpair),
with host keys checked as OpenSSH checks them (knownhosts.py) and OpenSSH's choice and order of
keys (sshauth.py). When the configuration asks for what paramiko cannot do, or GIT_SSH /
GIT_SSH_COMMAND is set, `open_stream` runs `ssh` as git-annex does instead. AES-GCM is preferred
because it moves about 1.5x the bytes of paramiko's default cipher on commodity CPUs.

paramiko is imported here only, so the shell pays for it only when an ssh node is used.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, BinaryIO, cast

from annextui.proxycore.sshconfig import (
    GIT_SSH_VARS,
    ResolvedHost,
    SshError,
    SshOptions,
    SshTarget,
    forget_resolutions,
    git_ssh_reason,
    parse_ssh_url,
    resolve_host,
)

if TYPE_CHECKING:
    import paramiko

    from annextui.proxycore.remote import ByteStream

__all__ = [
    "ResolvedHost",
    "SshChannel",
    "SshError",
    "SshOptions",
    "SshPool",
    "SshStream",
    "SshTarget",
    "join_stderr_pumps",
    "openssh_argv",
    "parse_ssh_url",
    "resolve_host",
    "shell_command",
]

PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr")
WINDOW_SIZE = 4 * 1024 * 1024  # flow control: bounded memory per channel, no slower on LANs
MAX_PACKET = 32768
_NEVER_REKEY = 1 << 62  # bytes or packets: the server decides when to rekey (see _connect)
CONNECT_TIMEOUT = 30.0
# How long a node's command gets to exit after our EOF (it commits its journal first), as long
# as a local node gets (remote.ProcessStream). One still running then is stuck (a lock, a full
# window of ours nobody reads): its channel is closed without a status rather than holding
# this process, and with it the client's session or a p2phttp shutdown, for ever.
EXIT_WAIT = 60.0
NO_EXIT_STATUS = -1  # paramiko's exit_status for a channel closed without one


def load_paramiko() -> None:
    """Import paramiko (once) without the optional `invoke` package it pulls in.

    paramiko.config imports invoke (and through it unittest.mock, yaml, inspect) only to run
    `Match exec` lines of an ssh config file parsed by paramiko's own SSHConfig, which is never
    used here (sshconfig.py asks OpenSSH itself, `ssh -G`). That import was a third of
    paramiko's import time, paid by every shell session that reaches an ssh node, on the
    client's critical path (the first GET of a key on that node waits for it)."""
    if "paramiko" in sys.modules:
        return
    blocked = "invoke" not in sys.modules
    if blocked:
        sys.modules["invoke"] = None  # type: ignore[assignment]  # import invoke -> ImportError
    stand_in = _metadata_stand_in()
    try:
        import paramiko  # noqa: F401
    finally:
        if blocked and "invoke" in sys.modules and sys.modules["invoke"] is None:
            del sys.modules["invoke"]  # a later `import invoke` elsewhere still works
        if stand_in is not None and sys.modules.get(_METADATA) is stand_in:
            del sys.modules[_METADATA]  # a later `import importlib.metadata` gets the real one


def start_paramiko_import() -> threading.Thread | None:
    """`load_paramiko` on a thread of its own (returned; None: nothing to import), so that the
    caller's `ssh -G` (a subprocess, waited for without the GIL) and paramiko's import (CPU)
    overlap instead of following each other: the first connection to a node comes up that
    much sooner. A later `import paramiko` waits for this one (Python's module lock). Not when
    GIT_SSH(_COMMAND) sends every hop through that program: paramiko is not used then."""
    if "paramiko" in sys.modules or git_ssh_reason() is not None:
        return None
    importing = threading.Thread(target=_load_quietly, name="paramiko-import", daemon=True)
    importing.start()
    return importing


def _load_quietly() -> None:
    try:
        load_paramiko()
    except Exception:  # the connection's own `load_paramiko` reports it
        return


_METADATA = "importlib.metadata"


def _metadata_stand_in() -> types.ModuleType | None:
    """A stand-in for importlib.metadata while paramiko is imported, or None when the real
    one is loaded already.

    paramiko's `__init__` imports importlib.metadata only for `version("paramiko")` (its
    banner). That import (email, csv, zipfile machinery) and the search of every sys.path
    entry were about a fifth of paramiko's own import, on the path of the session's first GET
    of a key on an ssh node. The stand-in answers `version` from the package's
    `NAME-VERSION.dist-info` directory beside it, and hands anything else (or a package it
    cannot place so) to the real module."""
    if _METADATA in sys.modules:
        return None
    stand_in = types.ModuleType(_METADATA)

    def real() -> types.ModuleType:
        if sys.modules.get(_METADATA) is stand_in:
            del sys.modules[_METADATA]
        import importlib.metadata

        return importlib.metadata

    def version(name: str) -> str:
        return _dist_info_version(name) or str(real().version(name))

    def __getattr__(attr: str) -> object:
        return getattr(real(), attr)

    stand_in.version = version  # type: ignore[attr-defined]
    stand_in.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[_METADATA] = stand_in
    return stand_in


def _dist_info_version(name: str) -> str | None:
    """The version of installed package NAME read from the one `NAME-VERSION.dist-info`
    directory beside it (how pip installs a wheel); None when that is not the layout."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if len(locations) != 1:
        return None
    parent = os.path.dirname(locations[0])
    prefix, suffix = f"{name}-", ".dist-info"
    try:
        found = [e for e in os.listdir(parent) if e.startswith(prefix) and e.endswith(suffix)]
    except OSError:
        return None
    if len(found) != 1:
        return None
    return found[0][len(prefix) : -len(suffix)] or None


# Every channel's stderr pump, so a process about to end can let them pass on a node's last
# message (processexit.py); a finished pump drops out by itself.
_stderr_pumps: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def join_stderr_pumps(deadline: float) -> None:
    """Wait, until `deadline` (time.monotonic()), for the stderr pumps of this process's
    channels to reach their channel's end of stderr."""
    for t in list(_stderr_pumps):
        if t.ident is not None:  # a pump being set up on another thread may not run yet
            t.join(max(0.0, deadline - time.monotonic()))


class SshChannel:
    """A byte stream to one remote command: read/write/close, stderr passed through."""

    def __init__(
        self,
        channel: paramiko.Channel,
        stderr: BinaryIO | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.channel = channel
        self._on_close = on_close  # the pool counts the channels open on a transport
        self._stderr: BinaryIO = stderr if stderr is not None else sys.stderr.buffer
        self._stderr_thread = threading.Thread(
            target=self._pump_stderr, name="ssh-stderr", daemon=True
        )
        self._stderr_thread.start()
        _stderr_pumps.add(self._stderr_thread)  # only once started: joining before raises

    def _pump_stderr(self) -> None:
        out = self._stderr
        while True:
            data = self.channel.recv_stderr(65536)
            if not data:
                return
            try:
                out.write(data)
                out.flush()
            except (OSError, ValueError):
                return

    def read(self, n: int = 65536) -> bytes:
        return bytes(self.channel.recv(n))

    def write(self, data: bytes | memoryview) -> None:
        # paramiko's sendall re-slices the rest of the buffer after every packet (a 1 MiB
        # write copies ~16 MiB); packet-sized pieces copy each byte once.
        view = memoryview(data)
        while view:
            n = self.channel.send(bytes(view[:MAX_PACKET]))
            if n == 0:
                raise OSError("ssh channel closed")
            view = view[n:]

    def close(self, wait: float = EXIT_WAIT) -> int:
        """Close our side and return the remote command's exit status; NO_EXIT_STATUS when it
        has not exited within `wait` seconds (the channel is then closed, abandoning it)."""
        try:
            self.channel.shutdown_write()
            # recv_exit_status() would wait for ever; the event is what it waits on (set by
            # the status or by the channel's end)
            if self.channel.status_event.wait(wait):
                status = self.channel.exit_status
            else:
                status = NO_EXIT_STATUS
            self.channel.close()
        finally:
            self.released()
        return int(status)

    def kill(self) -> None:
        """Abandon the channel without waiting for the remote command."""
        try:
            self.channel.close()
        finally:
            self.released()

    def released(self) -> None:
        """Tell the pool (once) that this channel no longer uses its transport."""
        done, self._on_close = self._on_close, None
        if done is not None:
            done()


class _Hop:
    """A live transport and what keeps it up (a ProxyCommand process)."""

    def __init__(self, transport: paramiko.Transport, verified: str, auth: str) -> None:
        self.transport = transport
        self.verified = verified  # how the host key was verified, for ssh-check
        self.auth = auth
        self.proxy: subprocess.Popen[bytes] | None = None
        self.channels = 0  # sessions open on it now (SshPool.open)
        self.last_used = time.monotonic()

    def close(self) -> None:
        self.transport.close()
        if self.proxy is not None:
            self.proxy.kill()
            self.proxy.wait()


class SshPool:
    """One authenticated transport per resolved host, reused for every channel of the process;
    a transport that died (the node's sshd restarted, the network dropped) is replaced.

    A long-running server (`annextui p2phttp`) keeps them across client sessions, so a session
    opens a channel (one round trip) instead of a connection (TCP, key exchange,
    authentication: ~100 ms); `prune` closes the ones idle too long or beyond a bound."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._hops: dict[ResolvedHost, _Hop] = {}

    @property
    def _transports(self) -> dict[ResolvedHost, paramiko.Transport]:
        return {h: hop.transport for h, hop in self._hops.items()}

    def hop(self, host: ResolvedHost) -> _Hop:
        if host.openssh_reason:
            raise SshError(f"{host.alias} is reached with OpenSSH ({host.openssh_reason})")
        with self._lock:
            hop = self._hops.get(host)
            if hop is not None and hop.transport.is_active():
                return hop
            if hop is not None:
                hop.close()
            hop = self._connect(host)
            self._hops[host] = hop
            return hop

    def transport(self, host: ResolvedHost) -> paramiko.Transport:
        return self.hop(host).transport

    def _forget(self, host: ResolvedHost) -> None:
        with self._lock:
            hop = self._hops.pop(host, None)
        if hop is not None:
            hop.close()

    def _socket(
        self, host: ResolvedHost
    ) -> tuple[socket.socket | paramiko.Channel, subprocess.Popen[bytes] | None]:
        """The byte pipe to the host's sshd: a TCP socket, a ProxyCommand, or a channel
        through the jump host's transport."""
        timeout = host.connect_timeout or CONNECT_TIMEOUT
        if host.via is not None:
            parent = self.transport(host.via)
            try:
                chan = parent.open_channel(
                    "direct-tcpip",
                    (host.hostname, host.port),
                    ("127.0.0.1", 0),
                    window_size=WINDOW_SIZE,
                    max_packet_size=MAX_PACKET,
                    timeout=timeout,
                )
                # The jump channel keeps paramiko's own buffer: the inner sshd's banner can
                # arrive as soon as the channel opens, so a buffer swapped in now could race
                # the transport thread's first feed (sshbuffers.install_chunk_pipe).
            except Exception as exc:
                raise SshError(
                    f"cannot connect to {host.known_hosts_name} through {host.via.alias}: {exc}"
                ) from exc
            return chan, None
        if host.proxy_command:
            ours, theirs = socket.socketpair()
            try:
                # OpenSSH runs ProxyCommand with the user's shell, `exec`ed
                proc = subprocess.Popen(
                    [os.environ.get("SHELL") or "/bin/sh", "-c", f"exec {host.proxy_command}"],
                    stdin=theirs.fileno(),
                    stdout=theirs.fileno(),
                    start_new_session=True,
                )
            except OSError as exc:
                ours.close()
                raise SshError(f"cannot run ProxyCommand {host.proxy_command}: {exc}") from exc
            finally:
                theirs.close()
            return ours, proc
        try:
            sock = socket.create_connection((host.hostname, host.port), timeout=timeout)
        except OSError as exc:
            raise SshError(f"cannot connect to {host.known_hosts_name}: {exc}") from exc
        sock.settimeout(None)
        # Request/reply traffic: without this, Nagle plus delayed ACKs add ~40 ms per request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, None

    def _connect(self, host: ResolvedHost) -> _Hop:
        load_paramiko()
        import paramiko

        from annextui.proxycore import knownhosts
        from annextui.proxycore.sshauth import authenticate
        from annextui.proxycore.sshbuffers import BufferedSocket

        entries = knownhosts.load(host.known_hosts)
        name = host.known_hosts_name
        sock, proc = self._socket(host)
        t = _transport_class()(
            # a socket in all but its recv (paramiko reads only through recv)
            cast(socket.socket, BufferedSocket(sock)) if isinstance(sock, socket.socket) else sock,
            default_window_size=WINDOW_SIZE,
            default_max_packet_size=MAX_PACKET,
        )
        # paramiko starts its own rekeying after 512 MiB, and that races its channels' window
        # adjustments until "Key-exchange timed out waiting for key negotiation" (paramiko
        # #822): a pooled transport would die after half a gigabyte. The server rekeys as its
        # RekeyLimit says, which paramiko answers correctly, so ours never starts one.
        t.packetizer.REKEY_BYTES = t.packetizer.REKEY_PACKETS = _NEVER_REKEY
        sec = t.get_security_options()
        sec.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in sec.ciphers) + tuple(
            c for c in sec.ciphers if c not in PREFERRED_CIPHERS
        )
        # paramiko offers certificate algorithms last; OpenSSH asks first for what
        # known_hosts can check (a CA's certificates, the key types known for the host).
        t.host_key_order = tuple(
            knownhosts.preferred_algorithms(entries, name, t.default_host_key_order)
        )
        hop = _Hop(t, "", "")
        hop.proxy = proc
        try:
            try:
                t.start_client(timeout=host.connect_timeout or CONNECT_TIMEOUT)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise SshError(f"ssh handshake with {name} failed: {exc}") from exc
            key = t.get_remote_server_key()
            cert = (t.host_key_type or "").endswith("-cert-v01@openssh.com")
            keytype = t.host_key_type if cert and t.host_key_type else key.get_name()
            plain = key.asbytes()
            blob = key.public_blob.key_blob if key.public_blob is not None else plain
            files = list(host.known_hosts)
            hop.verified = knownhosts.verify(entries, name, keytype, blob, plain, files)
            hop.auth = authenticate(t, host)
        except BaseException:
            hop.close()
            raise
        if host.server_alive_interval > 0:
            t.set_keepalive(host.server_alive_interval)
        return hop

    def open(
        self,
        target: SshTarget,
        command: Sequence[str] | str,
        opts: SshOptions | None = None,
        stderr: BinaryIO | None = None,
    ) -> SshChannel:
        load_paramiko()
        import paramiko

        from annextui.proxycore.sshbuffers import install_chunk_pipe

        host = resolve_host(target, opts or SshOptions())
        cmd = command if isinstance(command, str) else " ".join(command)
        for attempt in (1, 2):
            try:
                t = self.transport(host)
            except SshError:
                forget_resolutions()
                raise
            try:
                ch = t.open_session(window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET)
                install_chunk_pipe(ch)
                ch.exec_command(cmd)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                # the transport looked alive but its sshd is gone (restarted): once more
                # on a fresh transport
                self._forget(host)
                if attempt == 2:
                    raise SshError(f"{host.known_hosts_name}: {exc}") from exc
                continue
            return SshChannel(ch, stderr, self._using(host))
        raise AssertionError("unreachable")

    def _using(self, host: ResolvedHost) -> Callable[[], None]:
        """Count a channel on `host`'s transport; the callable ends the count."""
        with self._lock:
            hop = self._hops.get(host)
            if hop is None:
                return lambda: None
            hop.channels += 1
            hop.last_used = time.monotonic()

        def release() -> None:
            with self._lock:
                hop.channels = max(0, hop.channels - 1)
                hop.last_used = time.monotonic()

        return release

    def prune(self, idle: float, keep: int, now: float | None = None) -> int:
        """Close the transports without a channel for `idle` seconds, and the least recently
        used idle ones beyond `keep`; a jump host still carrying another kept transport stays.
        How many were closed."""
        now = time.monotonic() if now is None else now
        with self._lock:
            unused = sorted(
                (h for h, hop in self._hops.items() if hop.channels == 0),
                key=lambda h: self._hops[h].last_used,
                reverse=True,  # most recently used first: those are kept
            )
            doomed = [
                h
                for i, h in enumerate(unused)
                if i >= keep or now - self._hops[h].last_used >= idle
            ]
            carriers = {h.via for h in self._hops if h not in doomed and h.via is not None}
            doomed = [h for h in doomed if h not in carriers]
            hops = [self._hops.pop(h) for h in doomed]
        for hop in hops:
            hop.close()
        return len(hops)

    def size(self) -> int:
        """Transports open now."""
        with self._lock:
            return len(self._hops)

    def open_stream(
        self, target: SshTarget, command: str, opts: SshOptions | None = None
    ) -> ByteStream:
        """A node's command as a byte stream: over a pooled paramiko transport, or through the
        system's ssh when only OpenSSH can make the hop."""
        opts = opts or SshOptions()
        importing = start_paramiko_import()
        host = resolve_host(target, opts)
        if host.openssh_reason:
            from annextui.proxycore.remote import ProcessStream

            if importing is not None:
                # Not used for this host after all; a process that ends through the
                # interpreter's teardown (not os._exit) must not do so mid-import
                # (processexit.py: the crash in cryptography's initialisation).
                importing.join()

            argv = openssh_argv(target, opts, command)
            try:
                return ProcessStream(argv)
            except OSError as exc:
                raise SshError(f"cannot run {argv[0]}: {exc}") from exc
        return SshStream(self.open(target, command, opts))

    def close(self) -> None:
        with self._lock:
            hops = list(self._hops.values())
            self._hops.clear()
        for hop in hops:
            hop.close()


if TYPE_CHECKING:

    class OrderedTransport(paramiko.Transport):
        host_key_order: tuple[str, ...]
        default_host_key_order: tuple[str, ...]


_TransportClass: type[OrderedTransport] | None = None


def _transport_class() -> type[OrderedTransport]:
    """paramiko.Transport with a host key algorithm order of our choosing (built on first use:
    paramiko is imported only when an ssh node is)."""
    global _TransportClass
    if _TransportClass is None:
        load_paramiko()
        import paramiko

        class Ordered(paramiko.Transport):
            host_key_order: tuple[str, ...] = ()

            @property
            def default_host_key_order(self) -> tuple[str, ...]:
                return tuple(super().preferred_keys)

            @property
            def preferred_keys(self) -> tuple[str, ...]:
                return self.host_key_order or self.default_host_key_order

        _TransportClass = Ordered  # type: ignore[assignment]
    assert _TransportClass is not None
    return _TransportClass


def openssh_argv(target: SshTarget, opts: SshOptions, command: str) -> list[str]:
    """The ssh command line git-annex runs for `command` on `target` (Annex/Ssh.hs sshCommand):
    with GIT_ANNEX_USE_GIT_SSH=1, GIT_SSH_COMMAND (through sh when it has spaces) or GIT_SSH
    with git's own parameters; otherwise `ssh HOST OPTIONS [-p PORT] -T COMMAND`."""
    port = ["-p", str(target.port)] if target.port else []
    if os.environ.get("GIT_ANNEX_USE_GIT_SSH") == "1":
        git_params = [target.destination, *port, command]
        gsc = os.environ.get(GIT_SSH_VARS[0])
        if gsc:
            if any(c.isspace() for c in gsc):
                return ["sh", "-c", gsc + " " + " ".join(shlex.quote(p) for p in git_params)]
            return [gsc, *git_params]
        gs = os.environ.get(GIT_SSH_VARS[1])
        if gs:
            return [gs, *git_params]
    return ["ssh", target.destination, *opts.words, *port, "-T", command]


class SshStream:
    """A node's `p2pstdio` over an ssh channel, as a `remote.ByteStream`."""

    def __init__(self, channel: SshChannel) -> None:
        self.channel = channel

    def read(self, n: int) -> bytes:
        return self.channel.channel.recv(n)

    def write(self, data: bytes | memoryview) -> None:
        self.channel.write(data)

    def close(self) -> int:
        """EOF to the node, then its exit status (it commits its journal before exiting)."""
        return self.channel.close()

    def kill(self) -> None:
        """Abandon the connection without waiting for the node (it may be stuck or gone)."""
        self.channel.kill()

    def alive(self) -> bool:
        """No EOF, exit status or close seen from the node's side."""
        ch = self.channel.channel
        return not (ch.closed or ch.eof_received or ch.exit_status_ready())


def shell_command(program: str, *args: str, uuid: str | None = None) -> str:
    """The remote command line git-annex builds: program raw, arguments single-quoted."""
    parts = [program, *(shlex.quote(a) if a else "''" for a in args)]
    if uuid:
        parts += ["--uuid", uuid]
    return " ".join(parts)
