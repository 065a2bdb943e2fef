"""Reaching ssh nodes with paramiko: one transport per host, shared by every channel.

OpenSSH behaviour admins rely on is kept: `~/.ssh/config` (Host aliases, HostName, Port, User,
IdentityFile, UserKnownHostsFile), `remote.NAME.annex-ssh-options` (`-F`, `-p`, `-i`, `-o K=V`),
and host keys checked against known_hosts. An unknown or changed host key is refused with a
clear message; nothing is ever added to known_hosts. AES-GCM is preferred because it moves about
1.5x the bytes of paramiko's default cipher on commodity CPUs.

paramiko is imported here only, so the shell pays for it only when an ssh node is used.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import paramiko

PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr")
WINDOW_SIZE = 4 * 1024 * 1024  # flow control: bounded memory per channel, no slower on LANs
MAX_PACKET = 32768


class SshError(Exception):
    """The node could not be reached safely; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Where a git remote URL points: host as written (may be an alias), user, port, path."""

    host: str
    path: str
    user: str | None = None
    port: int | None = None

    @property
    def remote_dir(self) -> str:
        """The DIR argument git-annex passes to the shell (`~` paths as `/~/…`)."""
        p = self.path
        if p.startswith("~"):
            return "/" + p
        if not p.startswith("/"):
            return "/~/" + p
        return p


_SSH_URL = re.compile(
    r"^ssh://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)(?::(?P<port>\d+))?(?P<path>/.*)?$"
)
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^:/]+):(?P<path>.*)$")


def parse_ssh_url(url: str) -> SshTarget | None:
    m = _SSH_URL.match(url)
    if m:
        path = m.group("path") or "/"
        if path.startswith("/~"):
            path = path[1:]
        port = int(m.group("port")) if m.group("port") else None
        return SshTarget(m.group("host").strip("[]"), path, m.group("user"), port)
    if "://" in url:
        return None
    m = _SCP_LIKE.match(url)
    if m:
        return SshTarget(m.group("host"), m.group("path") or ".", m.group("user"))
    return None


@dataclass
class SshOptions:
    """What OpenSSH would be told on its command line (from `annex-ssh-options`)."""

    config_file: Path | None = None
    port: int | None = None
    identity_files: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> SshOptions:
        out = cls()
        words = shlex.split(text or "")
        i = 0
        while i < len(words):
            w = words[i]
            nxt = words[i + 1] if i + 1 < len(words) else None
            if w in ("-F", "-p", "-i", "-o") and nxt is not None:
                if w == "-F":
                    out.config_file = Path(os.path.expanduser(nxt))
                elif w == "-p":
                    out.port = int(nxt)
                elif w == "-i":
                    out.identity_files.append(os.path.expanduser(nxt))
                else:
                    k, _, v = nxt.partition("=")
                    out.options[k.strip().lower()] = v.strip()
                i += 2
                continue
            i += 1
        return out


def _home() -> Path:
    # OpenSSH reads ~/.ssh from the passwd entry, not $HOME; so do we, falling back to $HOME.
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        return Path.home()


@dataclass(frozen=True, slots=True)
class ResolvedHost:
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    known_hosts: tuple[str, ...]
    strict: str

    @property
    def known_hosts_name(self) -> str:
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


def resolve_host(target: SshTarget, opts: SshOptions) -> ResolvedHost:
    import paramiko

    cfg = paramiko.SSHConfig()
    config_file = opts.config_file or _home() / ".ssh" / "config"
    if config_file.is_file():
        cfg = paramiko.SSHConfig.from_path(str(config_file))
    entry = cfg.lookup(target.host)
    for k, v in opts.options.items():
        entry[k] = v
    hostname = entry.get("hostname", target.host)
    port = target.port or opts.port or int(entry.get("port", 22))
    user = target.user or entry.get("user") or pwd.getpwuid(os.getuid()).pw_name
    idents = list(opts.identity_files) + list(entry.get("identityfile", []))
    known = entry.get("userknownhostsfile", "")
    known_files = [os.path.expanduser(k) for k in known.split()] if known else []
    if not known_files:
        known_files = [str(_home() / ".ssh" / "known_hosts")]
    strict = entry.get("stricthostkeychecking", "ask").lower()
    return ResolvedHost(hostname, port, user, tuple(idents), tuple(known_files), strict)


class _RefuseUnknown:
    """paramiko missing-host-key policy: refuse, with the message an admin needs."""

    def __init__(self, host: ResolvedHost) -> None:
        self.host = host

    def missing_host_key(self, client: object, hostname: str, key: paramiko.PKey) -> None:
        raise SshError(
            f"host key for {self.host.known_hosts_name} is not known "
            f"(looked in {', '.join(self.host.known_hosts)}); refusing to connect. "
            f"Verify the {key.get_name()} key fingerprint {key.fingerprint} and add it with "
            f"ssh-keyscan -p {self.host.port} {self.host.hostname} >> ~/.ssh/known_hosts"
        )


class SshChannel:
    """A byte stream to one remote command: read/write/close, stderr passed through."""

    def __init__(self, channel: paramiko.Channel, stderr: BinaryIO | None = None) -> None:
        self.channel = channel
        self._stderr: BinaryIO = stderr if stderr is not None else sys.stderr.buffer
        self._stderr_thread = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_thread.start()

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
        self.channel.sendall(bytes(data))

    def close_write(self) -> None:
        self.channel.shutdown_write()

    def close(self) -> int:
        """Close our side and return the remote command's exit status."""
        self.channel.shutdown_write()
        status = self.channel.recv_exit_status()
        self.channel.close()
        return int(status)


class SshPool:
    """One authenticated transport per (hostname, port, user), reused for every channel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transports: dict[tuple[str, int, str], paramiko.Transport] = {}

    def transport(self, host: ResolvedHost) -> paramiko.Transport:
        import paramiko

        ident = (host.hostname, host.port, host.user)
        with self._lock:
            t = self._transports.get(ident)
            if t is not None and t.is_active():
                return t
            t = self._connect(host, paramiko)
            self._transports[ident] = t
            return t

    def _connect(self, host: ResolvedHost, paramiko: object) -> paramiko.Transport:
        import paramiko as pm

        host_keys = pm.HostKeys()
        for f in host.known_hosts:
            if os.path.isfile(f):
                host_keys.load(f)
        try:
            sock = socket.create_connection((host.hostname, host.port), timeout=30)
        except OSError as exc:
            raise SshError(f"cannot connect to {host.known_hosts_name}: {exc}") from exc
        sock.settimeout(None)
        # Request/reply traffic: without this, Nagle plus delayed ACKs add ~40 ms per request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = pm.Transport(sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET)
        sec = t.get_security_options()
        sec.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in sec.ciphers) + tuple(
            c for c in sec.ciphers if c not in PREFERRED_CIPHERS
        )
        try:
            t.start_client(timeout=30)
        except (pm.SSHException, OSError) as exc:
            t.close()
            raise SshError(f"ssh handshake with {host.known_hosts_name} failed: {exc}") from exc
        key = t.get_remote_server_key()
        known = host_keys.lookup(host.known_hosts_name)
        if known is None:
            t.close()
            _RefuseUnknown(host).missing_host_key(None, host.known_hosts_name, key)
        elif key.get_name() not in known or known[key.get_name()] != key:
            t.close()
            raise SshError(
                f"REMOTE HOST IDENTIFICATION HAS CHANGED for {host.known_hosts_name}: the "
                f"{key.get_name()} key ({key.fingerprint}) does not match known_hosts; refusing "
                "to connect. If the change is expected, remove the old key with "
                f"ssh-keygen -R '{host.known_hosts_name}'."
            )
        self._authenticate(t, host, pm)
        return t

    @staticmethod
    def _authenticate(t: paramiko.Transport, host: ResolvedHost, pm: object) -> None:
        import paramiko

        tried: list[str] = []
        candidates = list(host.identity_files) or [
            str(_home() / ".ssh" / n) for n in ("id_ed25519", "id_ecdsa", "id_rsa")
        ]
        for path in candidates:
            path = os.path.expanduser(path)
            if not os.path.isfile(path):
                continue
            tried.append(path)
            try:
                pkey = paramiko.PKey.from_path(path)
                t.auth_publickey(host.user, pkey)
            except (paramiko.SSHException, OSError, ValueError):
                continue
            if t.is_authenticated():
                return
        agent = paramiko.Agent()
        for akey in agent.get_keys():
            try:
                t.auth_publickey(host.user, akey)
            except paramiko.SSHException:
                continue
            if t.is_authenticated():
                return
        t.close()
        raise SshError(
            f"permission denied for {host.user}@{host.known_hosts_name} "
            f"(public keys tried: {', '.join(tried) or 'none'})"
        )

    def open(
        self,
        target: SshTarget,
        command: Sequence[str] | str,
        opts: SshOptions | None = None,
        stderr: BinaryIO | None = None,
    ) -> SshChannel:
        host = resolve_host(target, opts or SshOptions())
        t = self.transport(host)
        ch = t.open_session(window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET)
        cmd = command if isinstance(command, str) else " ".join(command)
        ch.exec_command(cmd)
        return SshChannel(ch, stderr)

    def close(self) -> None:
        with self._lock:
            for t in self._transports.values():
                t.close()
            self._transports.clear()


def shell_command(program: str, *args: str, uuid: str | None = None) -> str:
    """The remote command line git-annex builds: program raw, arguments single-quoted."""
    parts = [program, *(shlex.quote(a) if a else "''" for a in args)]
    if uuid:
        parts += ["--uuid", uuid]
    return " ".join(parts)
