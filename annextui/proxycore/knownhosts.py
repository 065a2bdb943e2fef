"""Host key verification as OpenSSH does it: known_hosts with hashed names, host patterns,
`@cert-authority` (host certificates signed by a trusted CA) and `@revoked`.

Nothing is ever written to known_hosts: an unknown, changed or revoked key is refused with the
words OpenSSH uses, so an admin recognises the situation and the usual remedy applies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from annextui.proxycore.sshconfig import SshError

HOST_CERT = 2  # SSH2_CERT_TYPE_HOST


@dataclass(frozen=True, slots=True)
class Entry:
    marker: str  # "", "@cert-authority" or "@revoked"
    patterns: str
    keytype: str
    blob: bytes
    where: str  # file:line, for messages

    def matches(self, name: str) -> bool:
        """OpenSSH's match_hostname: a positive pattern matches and no negated one does."""
        if self.patterns.startswith("|1|"):
            return _hashed_match(self.patterns, name)
        hit = False
        for pat in self.patterns.split(","):
            negated = pat.startswith("!")
            if _glob(pat.lstrip("!"), name):
                if negated:
                    return False
                hit = True
        return hit


def _glob(pattern: str, name: str) -> bool:
    """OpenSSH's match_pattern: only `*` and `?` are special (`[host]:port` is literal)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name, re.IGNORECASE) is not None


def _hashed_match(field: str, name: str) -> bool:
    try:
        _, _, salt64, hash64 = field.split("|", 3)
        salt, want = base64.b64decode(salt64), base64.b64decode(hash64)
    except (ValueError, binascii.Error):
        return False
    got = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(got, want)


def load(files: Iterable[str]) -> list[Entry]:
    out = []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for n, line in enumerate(lines, 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            marker = words.pop(0) if words[0].startswith("@") else ""
            if len(words) < 3:
                continue
            try:
                blob = base64.b64decode(words[2], validate=True)
            except binascii.Error:
                continue
            out.append(Entry(marker, words[0], words[1], blob, f"{path}:{n}"))
    return out


def preferred_algorithms(entries: Sequence[Entry], name: str, offered: Sequence[str]) -> list[str]:
    """Host key algorithms in the order OpenSSH asks for them: certificates first when a CA
    is trusted for the host, then the types already known for it, then the rest; so a server
    with several host keys shows the one we can check."""
    ca = any(e.marker == "@cert-authority" and e.matches(name) for e in entries)
    known = {e.keytype for e in entries if not e.marker and e.matches(name)}

    def rank(alg: str) -> int:
        if alg.endswith("-cert-v01@openssh.com"):
            return 0 if ca else 3
        base = "ssh-rsa" if alg.startswith("rsa-sha2-") else alg
        return 1 if base in known or alg in known else 2

    return sorted(offered, key=rank)


# -- certificates ---------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def string(self) -> bytes:
        (n,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        out = self.data[self.pos : self.pos + n]
        if len(out) != n:
            raise ValueError("truncated")
        self.pos += n
        return out

    def uint(self, size: int) -> int:
        fmt = ">I" if size == 4 else ">Q"
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return int(v)


@dataclass(frozen=True, slots=True)
class HostCert:
    cert_type: int
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    signature_key: bytes
    signed: bytes
    signature: bytes


def parse_cert(blob: bytes) -> HostCert:
    r = _Reader(blob)
    name = r.string().decode()
    base = name.removesuffix("-cert-v01@openssh.com")
    r.string()  # nonce
    # the certified public key: ed25519 has one field, rsa (e, n) and ecdsa (curve, Q) two
    for _ in range(1 if base == "ssh-ed25519" else 2):
        r.string()
    r.uint(8)  # serial
    cert_type = r.uint(4)
    r.string()  # key id
    pr = _Reader(r.string())
    principals = []
    while pr.pos < len(pr.data):
        principals.append(pr.string().decode(errors="replace"))
    after, before = r.uint(8), r.uint(8)
    r.string()  # critical options
    r.string()  # extensions
    r.string()  # reserved
    sig_key = r.string()
    signed = blob[: r.pos]
    return HostCert(cert_type, tuple(principals), after, before, sig_key, signed, r.string())


def _cert_problem(cert: HostCert, name: str) -> str | None:
    from paramiko import Message, PKey

    if cert.cert_type != HOST_CERT:
        return "it is not a host certificate"
    host = name[1:].partition("]")[0] if name.startswith("[") else name
    if cert.principals and host not in cert.principals:
        return f"the certificate is not valid for {host} (principals: {', '.join(cert.principals)})"
    now = int(time.time())
    if not cert.valid_after <= now < cert.valid_before:
        return "the certificate has expired or is not yet valid"
    try:
        ca_type = _Reader(cert.signature_key).string().decode()
        ca = PKey.from_type_string(ca_type, cert.signature_key)
        ok = ca.verify_ssh_sig(cert.signed, Message(cert.signature))
    except Exception as exc:  # a malformed certificate is as bad as a bad signature
        return f"the certificate signature cannot be checked ({exc})"
    return None if ok else "the certificate signature is invalid"


# -- verification ---------------------------------------------------------------------------------


def _fingerprint(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _key_label(keytype: str) -> str:
    base = keytype.removesuffix("-cert-v01@openssh.com")
    return {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA"}.get(
        base, "ECDSA" if base.startswith("ecdsa") else base.upper()
    )


def verify(
    entries: Sequence[Entry],
    name: str,
    keytype: str,
    blob: bytes,
    plain_blob: bytes,
    files: Sequence[str],
) -> str:
    """Check the server's host key (`blob`, a certificate when `keytype` says so, whose plain
    key is `plain_blob`) for `name`; returns how it was verified, or raises SshError with
    OpenSSH's wording."""
    fp = _fingerprint(plain_blob)
    label = _key_label(keytype)
    for e in entries:
        if e.marker == "@revoked" and e.blob in (blob, plain_blob):
            raise SshError(
                "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                "@       WARNING: REVOKED HOST KEY DETECTED!               @\n"
                "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
                f"The {label} host key for {name} is marked as revoked ({e.where}).\n"
                "This could mean that a stolen key is being used to impersonate this host.\n"
                "Host key verification failed."
            )
    if keytype.endswith("-cert-v01@openssh.com"):
        cert = parse_cert(blob)
        cas = [e for e in entries if e.marker == "@cert-authority" and e.matches(name)]
        if any(e.marker == "@revoked" and e.blob == cert.signature_key for e in entries):
            raise SshError(
                f"The certificate authority of the {label} host certificate for {name} is "
                "marked as revoked.\nHost key verification failed."
            )
        trusted = [e for e in cas if e.blob == cert.signature_key]
        if not trusted:
            raise SshError(
                f"No matching host certificate authority for {name} ({label} certificate "
                f"signed by {_fingerprint(cert.signature_key)}; looked in {', '.join(files)}).\n"
                "Host key verification failed."
            )
        problem = _cert_problem(cert, name)
        if problem:
            raise SshError(
                f"Certificate invalid: {problem}.\n{label} host certificate for {name}.\n"
                "Host key verification failed."
            )
        return f"{label} host certificate {fp} signed by CA ({trusted[0].where})"
    same_type = [e for e in entries if not e.marker and e.matches(name) and e.keytype == keytype]
    for e in same_type:
        if e.blob == blob:
            return f"{label} {fp} ({e.where})"
    if same_type:
        where = same_type[0].where
        raise SshError(
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n"
            "Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n"
            "It is also possible that a host key has just been changed.\n"
            f"The fingerprint for the {label} key sent by the remote host is\n{fp}.\n"
            f"Offending {label} key in {where}\n"
            f"Host key for {name} has changed and you have requested strict checking.\n"
            "Host key verification failed."
        )
    looked = ", ".join(f for f in files if os.path.exists(f)) or "no file"
    raise SshError(
        f"No {label} host key is known for {name} and you have requested strict checking "
        f"(fingerprint {fp}; looked in {looked}).\n"
        "Host key verification failed."
    )
