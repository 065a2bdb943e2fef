"""Public-key authentication as OpenSSH's client does it.

Order and choice follow ssh(1): keys in the agent (`IdentityAgent`, default `$SSH_AUTH_SOCK`)
first, then the `IdentityFile`s the agent does not hold; with `IdentitiesOnly yes` only agent
keys that match a configured identity are offered. A certificate (`KEY-cert.pub` next to the
key, or `CertificateFile`) is offered for its key. An encrypted identity file is used only
through the agent (a gateway has nobody to type a passphrase).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

from annextui.proxycore.sshconfig import ResolvedHost, SshError

if TYPE_CHECKING:
    import paramiko


def _public_blob(identity: str) -> bytes | None:
    """The public key of an identity file, from its `.pub` (readable even when encrypted)."""
    import base64
    import binascii

    try:
        with open(identity + ".pub", encoding="ascii", errors="replace") as f:
            words = f.read().split()
        return base64.b64decode(words[1]) if len(words) >= 2 else None
    except (OSError, binascii.Error):
        return None


@contextlib.contextmanager
def agent_keys(sock_path: str | None) -> Iterator[list[paramiko.PKey]]:
    """The keys of the agent at `sock_path` (none when there is no agent), open while used."""
    if not sock_path:
        yield []
        return
    from paramiko.agent import AgentSSH

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(sock_path)
    except OSError:
        sock.close()
        yield []  # as ssh: a dangling agent socket is not an error
        return
    agent = AgentSSH()
    # AgentSSH._connect takes any connected socket; paramiko's Agent() only knows
    # $SSH_AUTH_SOCK, and IdentityAgent may name another socket.
    agent._connect(sock)  # type: ignore[attr-defined]
    try:
        yield list(agent.get_keys())
    finally:
        sock.close()


def _load_identity(path: str, certs: tuple[str, ...]) -> paramiko.PKey | None:
    import paramiko

    try:
        key = paramiko.PKey.from_path(path)  # loads PATH-cert.pub when present
    except (paramiko.SSHException, OSError, ValueError, TypeError):
        # TypeError: cryptography's "Key is password-protected" for new-format keys
        return None  # encrypted, unreadable or unsupported: the agent may still hold it
    if key.public_blob is None:
        for cert in certs:
            with contextlib.suppress(paramiko.SSHException, OSError, ValueError):
                key.load_certificate(cert)
                break
    return key


def authenticate(t: paramiko.Transport, host: ResolvedHost) -> str:
    """Authenticate `t` as `host.user`; returns what worked, or raises SshError."""
    import paramiko

    idents = [p for p in host.identity_files if os.path.isfile(p)]
    wanted = {b for b in (_public_blob(p) for p in idents) if b is not None}
    tried: list[str] = []

    def attempt(key: paramiko.PKey, label: str) -> bool:
        tried.append(label)
        try:
            t.auth_publickey(host.user, key)
        except paramiko.AuthenticationException:
            return False
        except (paramiko.SSHException, OSError) as exc:
            raise SshError(f"authentication with {host.known_hosts_name} failed: {exc}") from exc
        return t.is_authenticated()

    with agent_keys(host.identity_agent) as from_agent:
        offered: set[bytes] = set()
        for akey in from_agent:
            blob = akey.asbytes()
            if host.identities_only and blob not in wanted:
                continue
            offered.add(blob)
            if attempt(akey, f"agent key {akey.get_name()} {akey.fingerprint}"):
                return f"agent key {akey.fingerprint}"
        for path in idents:
            if _public_blob(path) in offered:
                continue
            key = _load_identity(path, host.certificate_files)
            if key is None:
                continue
            if attempt(key, path):
                return f"{path}" + (" (certificate)" if key.public_blob is not None else "")
    t.close()
    raise SshError(
        f"{host.user}@{host.known_hosts_name}: Permission denied (publickey; "
        f"tried: {', '.join(tried) or 'no key'})"
    )
