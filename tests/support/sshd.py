"""A private OpenSSH server on 127.0.0.1 playing any number of ssh "hosts".

One ``sshd`` process serves every alias. Each alias is a ``Host`` block in a client config
file (``HostName 127.0.0.1``, our port, key, known_hosts); an alias with its own ``env`` gets
its own client key whose ``authorized_keys`` line carries ``environment="..."`` options, so the
commands it runs see a different ``PATH`` (say, a gateway whose ``git-annex-shell`` is ours).

Every key line sets at least ``HOME`` (a temp dir without dotfiles, so bash started by sshd
does not source root's ``~/.bashrc``), ``PATH``, the git identity and the locale; ``env`` given
to ``add_host`` is merged over that base.

OpenSSH reads ``~/.ssh/config`` from the passwd home, not ``$HOME``, so ``Sshd.env()`` puts a
directory first in ``PATH`` whose ``ssh`` (and ``scp``/``sftp``) adds ``-F <config>``.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support import procs
from tests.support.annex import GIT_IDENTITY, write_gitconfig

SSHD_BIN = "/usr/sbin/sshd"
ACTIVE_ROOTS: set[str] = set()  # roots of sshd instances started in this process


class SshdError(RuntimeError):
    pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, comment: str) -> str:
    """Generate an ed25519 key pair at `path` (+ .pub); returns the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return (path.with_name(path.name + ".pub")).read_text().strip()


def _option_value(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("environment values cannot contain newlines")
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class SshHost:
    alias: str
    identity: Path
    port: int
    known_hosts: Path
    user: str
    env: dict[str, str] | None  # server-side environment of this alias's key (None: default key)
    command: str | None = None  # forced command of this alias's key


@dataclass
class _Key:
    path: Path
    pub: str
    env: dict[str, str]
    command: str | None


class Sshd:
    """See the module docstring. Create with `Sshd(root)`, then `start()`; `stop()` at the end."""

    def __init__(
        self,
        root: Path,
        *,
        server_path: str | None = None,
        sshd_bin: str = SSHD_BIN,
        host_ca: Path | None = None,
        user_ca: Path | None = None,
        extra_config: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.extra_config = tuple(extra_config)  # more sshd_config lines (e.g. RekeyLimit)
        self.host_ca = host_ca  # a CA key: the host key gets a certificate signed by it
        self.user_ca = user_ca  # a CA key: user certificates it signs log in
        self.sshd_bin = sshd_bin
        self.user = getpass.getuser()
        self.port = 0
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.sshd_config = root / "sshd_config"
        self.config_path = root / "ssh_config"
        self.known_hosts = root / "known_hosts"
        self.authorized_keys = root / "authorized_keys"
        self.log_path = root / "sshd.log"
        self.host_key = root / "host_ed25519"
        self.client_key = root / "id_ed25519"
        self.keys_dir = root / "keys"
        self.wrapper_dir = root / "bin"
        self.server_home = root / "home"
        self.real_ssh = shutil.which("ssh") or "/usr/bin/ssh"
        self.server_path = server_path or os.environ.get("PATH", os.defpath)
        self.hosts: dict[str, SshHost] = {}
        # more client options per alias (ssh_config keyword -> value), e.g. ControlMaster
        self.host_options: dict[str, dict[str, str]] = {}
        self._keys: dict[str, _Key] = {}

    # -- setup --------------------------------------------------------------------------------
    def base_server_env(self) -> dict[str, str]:
        """What every key's session gets unless add_host(env=...) overrides it.

        PYTHONPATH is passed on: sshd sessions do not inherit it, so tests run from another
        checkout would otherwise reach whatever annextui is installed instead of the code under
        test."""
        python_path = os.environ.get("PYTHONPATH")
        return {
            **({"PYTHONPATH": python_path} if python_path else {}),
            "PATH": self.server_path,
            "HOME": str(self.server_home),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            **GIT_IDENTITY,
        }

    def start(self, timeout: float = 15.0, attempts: int = 5) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.keys_dir.mkdir(exist_ok=True)
        write_gitconfig(self.server_home)
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        self.host_pub = keygen(self.host_key, "annextui-test-host")
        if self.host_ca is not None:
            sign = ["-s", str(self.host_ca), "-I", "annextui-test-host", "-h"]
            subprocess.run(
                ["ssh-keygen", "-q", *sign, "-n", "127.0.0.1,localhost", f"{self.host_key}.pub"],
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
            )
        pub = keygen(self.client_key, "annextui-test-client")
        self._keys["default"] = _Key(self.client_key, pub, self.base_server_env(), None)
        self._write_authorized_keys()
        self._write_wrappers()
        last_log = ""
        for _ in range(attempts):
            self.port = free_port()
            self._write_sshd_config()
            if self._launch(timeout):
                break
            last_log = self.log_text()
        else:
            raise SshdError(f"sshd did not start on 127.0.0.1 after {attempts} tries:\n{last_log}")
        ACTIVE_ROOTS.add(str(self.root))
        self._write_known_hosts()
        self._write_client_config()

    def _launch(self, timeout: float) -> bool:
        self.log_path.write_text("")
        proc = subprocess.Popen(
            [self.sshd_bin, "-D", "-f", str(self.sshd_config), "-E", str(self.log_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False  # e.g. the port was taken meanwhile; log says why
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s,
            ):
                s.settimeout(2)
                with contextlib.suppress(OSError):
                    if s.recv(4).startswith(b"SSH-"):
                        self._proc, self.pid = proc, proc.pid
                        return True
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        return False

    def _write_sshd_config(self) -> None:
        lines = [
            "ListenAddress 127.0.0.1",
            f"Port {self.port}",
            f"HostKey {self.host_key}",
            *([f"HostCertificate {self.host_key}-cert.pub"] if self.host_ca else []),
            *([f"TrustedUserCAKeys {self.user_ca}.pub"] if self.user_ca else []),
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"PidFile {self.root / 'sshd.pid'}",
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "AuthenticationMethods publickey",
            "PermitRootLogin prohibit-password",
            "PermitUserEnvironment yes",
            "AcceptEnv LANG LC_* GIT_ANNEX_VECTOR_CLOCK",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "MaxStartups 200",
            "MaxSessions 200",
            "LoginGraceTime 30",
            "LogLevel INFO",
            "Subsystem sftp internal-sftp",
            *self.extra_config,
        ]
        self.sshd_config.write_text("\n".join(lines) + "\n")

    def _write_authorized_keys(self) -> None:
        out = []
        for k in self._keys.values():
            opts = [f'environment="{n}={_option_value(v)}"' for n, v in k.env.items()]
            if k.command is not None:
                opts.insert(0, f'command="{_option_value(k.command)}"')
            out.append(f"{','.join(opts)} {k.pub}" if opts else k.pub)
        _atomic_write(self.authorized_keys, "\n".join(out) + "\n")

    def _write_known_hosts(self) -> None:
        keytype, key = self.host_pub.split()[:2]
        entries = [
            f"[127.0.0.1]:{self.port} {keytype} {key}",
            f"[localhost]:{self.port} {keytype} {key}",
        ]
        _atomic_write(self.known_hosts, "\n".join(entries) + "\n")

    def _write_wrappers(self) -> None:
        self.wrapper_dir.mkdir(exist_ok=True)
        for name in ("ssh", "scp", "sftp"):
            real = self.real_ssh if name == "ssh" else shutil.which(name)
            if not real:
                continue
            script = self.wrapper_dir / name
            script.write_text(f'#!/bin/sh\nexec {real} -F {self.config_path} "$@"\n')
            script.chmod(0o755)

    def host_block(self, alias: str, **options: str | None) -> str:
        """A client `Host alias` block reaching this sshd, with ssh_config options replaced,
        added, or (None) removed: `host_block("n", ProxyJump="j", IdentityAgent=None)`."""
        base = self._host_block(alias, self.port, self.client_key, self.known_hosts, self.user)
        lines = base.splitlines()
        wanted = {k.lower(): (k, v) for k, v in options.items()}
        out = [lines[0]]
        for line in lines[1:]:
            key = line.split()[0].lower()
            if key in wanted:
                name, value = wanted.pop(key)
                if value is not None:
                    out.append(f"  {name} {value}")
            else:
                out.append(line)
        out += [f"  {name} {value}" for name, value in wanted.values() if value is not None]
        return "\n".join(out) + "\n"

    def set_host_options(self, alias: str, **options: str) -> None:
        """Add client options to alias's block (kept when the config is rewritten)."""
        self.host_options.setdefault(alias, {}).update(options)
        self._write_client_config()

    def authorize(self, name: str, pub: str) -> None:
        """Let the public key `pub` log in (with the default server environment)."""
        self._keys[name] = _Key(Path(name), pub, self.base_server_env(), None)
        self._write_authorized_keys()

    def _write_client_config(self) -> None:
        blocks = []
        for h in self.hosts.values():
            block = self._host_block(h.alias, h.port, h.identity, h.known_hosts, h.user)
            extra = self.host_options.get(h.alias, {})
            blocks.append(block + "".join(f"  {k} {v}\n" for k, v in extra.items()))
        # defaults for anything else (ssh -p PORT 127.0.0.1 ...)
        blocks.append(self._host_block("*", None, self.client_key, self.known_hosts, self.user))
        _atomic_write(self.config_path, "\n".join(blocks))

    @staticmethod
    def _host_block(alias: str, port: int | None, identity: Path, known: Path, user: str) -> str:
        lines = [f"Host {alias}"]
        if alias != "*":
            lines.append("  HostName 127.0.0.1")
        if port is not None:
            lines.append(f"  Port {port}")
        lines += [
            f"  User {user}",
            f"  IdentityFile {identity}",
            "  IdentitiesOnly yes",
            "  IdentityAgent none",
            f"  UserKnownHostsFile {known}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  CheckHostIP no",
            "  UpdateHostKeys no",
            "  BatchMode yes",
            "  PasswordAuthentication no",
            "  KbdInteractiveAuthentication no",
            "  PreferredAuthentications publickey",
            "  ConnectTimeout 10",
            # the default sntrup761 hybrid costs ~100 ms per connection
            "  KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org",
            "  SendEnv GIT_ANNEX_VECTOR_CLOCK",
            "  LogLevel ERROR",
        ]
        return "\n".join(lines) + "\n"

    # -- API ----------------------------------------------------------------------------------
    def add_host(
        self,
        alias: str,
        env: Mapping[str, str] | None = None,
        *,
        command: str | None = None,
        port: int | None = None,
        known_hosts: Path | None = None,
    ) -> SshHost:
        """Add (or replace) the Host alias `alias` -> this sshd.

        env: server-side environment for commands run through this alias (merged over
        base_server_env(); e.g. {"PATH": "/my/shim:" + ...}); uses a key of its own.
        command: an sshd forced command for this alias's key (the requested command is in
        $SSH_ORIGINAL_COMMAND); uses a key of its own.
        port: connect elsewhere (e.g. free_port(), a closed port: the host is down).
        known_hosts: a different known_hosts file (e.g. one with a wrong key).
        """
        if not alias or any(c.isspace() for c in alias) or any(c in alias for c in "*?!,"):
            raise ValueError(f"bad alias {alias!r}")
        identity = self.client_key
        merged = None
        if env or command is not None:
            merged = {**self.base_server_env(), **(env or {})}
            identity = self._key_for(alias, merged, command)
        host = SshHost(
            alias,
            identity,
            self.port if port is None else port,
            known_hosts or self.known_hosts,
            self.user,
            merged,
            command,
        )
        self.hosts[alias] = host
        self._write_client_config()
        return host

    def _key_for(self, alias: str, env: dict[str, str], command: str | None) -> Path:
        for name, k in self._keys.items():  # reuse a key with the same options
            if name != "default" and k.env == env and k.command == command:
                return k.path
        name = f"k{len(self._keys)}-{''.join(c if c.isalnum() else '_' for c in alias)}"
        path = self.keys_dir / name
        pub = keygen(path, f"annextui-test-{name}")
        self._keys[name] = _Key(path, pub, env, command)
        self._write_authorized_keys()
        return path

    def snapshot_hosts(self) -> dict[str, SshHost]:
        return dict(self.hosts)

    def restore_hosts(self, snapshot: Mapping[str, SshHost]) -> None:
        """Back to the aliases of an earlier snapshot_hosts()."""
        if self.hosts != snapshot:
            self.hosts = dict(snapshot)
            self._write_client_config()

    def remove_host(self, alias: str) -> None:
        if self.hosts.pop(alias, None) is not None:
            self._write_client_config()

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) with the ssh wrapper directory first in PATH."""
        env = dict(os.environ if base is None else base)
        rest = [
            p for p in env.get("PATH", os.defpath).split(os.pathsep) if p != str(self.wrapper_dir)
        ]
        env["PATH"] = os.pathsep.join([str(self.wrapper_dir), *rest])
        env.pop("SSH_AUTH_SOCK", None)
        return env

    def ssh_argv(self, alias: str, *command: str) -> list[str]:
        """argv running `command` on `alias` with the test config."""
        return [self.real_ssh, "-F", str(self.config_path), alias, *command]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def restart(self, timeout: float = 15.0) -> None:
        """sshd and its sessions go away, and come back on the same port with the same keys
        (a node whose sshd restarted, or that rebooted)."""
        self._kill_server()
        if not self._launch(timeout):
            raise SshdError(f"sshd did not come back on port {self.port}:\n{self.log_text()}")

    def _kill_server(self) -> None:
        if self._proc is not None:
            sessions = [p.pid for p in procs.descendants(self._proc.pid)]
            procs.kill_pids([self._proc.pid])
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            procs.kill_pids(sessions)
            self._proc = None

    # -- teardown -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Kill sshd (by PID), its session processes, and ssh clients naming our root."""
        ACTIVE_ROOTS.discard(str(self.root))
        self._kill_server()
        procs.kill_pids(p.pid for p in procs.mentioning(str(self.root), {"ssh", "scp", "sftp"}))


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
