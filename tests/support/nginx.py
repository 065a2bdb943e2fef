"""A private Debian nginx in front of p2phttp servers: TLS termination and basic auth.

The site is docs/deployment.md's nginx block, kept as tests/data/nginx/p2phttp-site.conf; a
test renders it by swapping the doc's example values (port 443, certificate paths, htpasswd,
upstream) for the test's, each of which must occur exactly once, so the doc and the test
cannot drift apart silently. A server on a unix socket (`--socket`) is reached through the
doc's socket variant of the `proxy_pass` line (tests/data/nginx/p2phttp-socket-upstream.conf),
put in place of the loopback one. nginx runs in the foreground (`daemon off`) under its own prefix
(pid, logs, temp dirs), on a high loopback port, and is stopped by PID at the end.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import procs
from tests.support.data import DATA
from tests.support.sshd import free_port

NGINX_BIN = "/usr/sbin/nginx"
SITE_TEMPLATE = DATA / "nginx" / "p2phttp-site.conf"
# the doc's example values, replaced by the test's
DOC_LISTEN = "listen 443 ssl;"
DOC_CERT = "/etc/ssl/annex.example.org/fullchain.pem"
DOC_KEY = "/etc/ssl/annex.example.org/privkey.pem"
DOC_HTPASSWD = "/etc/nginx/annex.htpasswd"
DOC_UPSTREAM = "http://127.0.0.1:9417"
SOCKET_UPSTREAM_TEMPLATE = DATA / "nginx" / "p2phttp-socket-upstream.conf"
DOC_PROXY_PASS = f"        proxy_pass {DOC_UPSTREAM};\n"
DOC_SOCKET = "/run/annextui/p2phttp.sock"

MAIN_CONF = """\
daemon off;
worker_processes 1;
{user}pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{includes}}}
"""


def available() -> bool:
    return os.access(NGINX_BIN, os.X_OK)


@dataclass(frozen=True)
class Tls:
    """A server certificate for 127.0.0.1 and the test CA that signed it (`ca`, PEM)."""

    cert: Path
    key: Path
    ca: Path


def make_tls(where: Path) -> Tls:
    """A test CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    where.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def builder(
        subject: str, issuer: str, public: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = "annextui test CA"
    ca = (
        builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        builder("127.0.0.1", ca_name, key.public_key())
        # git-annex's TLS (crypton-x509-validation) matches the host against DNS names only,
        # so the address is named both ways
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("127.0.0.1")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = where / "cert.pem", where / "key.pem"
    cert_path.write_bytes(pem(cert))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca_path = where / "ca.pem"
    ca_path.write_bytes(pem(ca))
    return Tls(cert_path, key_path, ca_path)


def write_htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    """An htpasswd file in the salted-SHA1 scheme nginx reads (`{SSHA}`)."""
    lines = []
    for user, password in users.items():
        salt = os.urandom(8)
        digest = hashlib.sha1(password.encode() + salt).digest()
        lines.append(f"{user}:{{SSHA}}{base64.b64encode(digest + salt).decode()}\n")
    path.write_text("".join(lines))
    return path


def _swap_once(text: str, old: str, new: str, where: Path) -> str:
    count = text.count(old)
    assert count == 1, f"{where} has {old!r} {count} times, not once"
    return text.replace(old, new)


def render_site(*, port: int, tls: Tls, htpasswd: Path, upstream: int | Path) -> str:
    """The doc's site with this test's port, certificate, users and upstream: a loopback
    port, or a unix socket through the doc's socket variant of `proxy_pass`."""
    text = SITE_TEMPLATE.read_text()
    if isinstance(upstream, Path):
        socket_line = _swap_once(
            SOCKET_UPSTREAM_TEMPLATE.read_text(),
            DOC_SOCKET,
            str(upstream),
            SOCKET_UPSTREAM_TEMPLATE,
        )
        text = _swap_once(text, DOC_PROXY_PASS, socket_line, SITE_TEMPLATE)
    else:
        text = _swap_once(text, DOC_UPSTREAM, f"http://127.0.0.1:{upstream}", SITE_TEMPLATE)
    swaps = {
        DOC_LISTEN: f"listen 127.0.0.1:{port} ssl;",
        DOC_CERT: str(tls.cert),
        DOC_KEY: str(tls.key),
        DOC_HTPASSWD: str(htpasswd),
    }
    for old, new in swaps.items():
        text = _swap_once(text, old, new, SITE_TEMPLATE)
    return text


@dataclass
class Nginx:
    """One nginx with any number of rendered sites (`ports`: front port per site name)."""

    prefix: Path
    sites: dict[str, str]
    ports: dict[str, int]
    # `user` of nginx.conf (as root): who the workers run as; root by default
    worker_user: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def logs(self) -> str:
        out = []
        for name in ("error.log", "stderr.log"):
            path = self.prefix / name
            if path.exists():
                out.append(path.read_text("utf-8", "replace"))
        return "\n".join(out)

    def start(self, timeout: float = 30.0) -> Nginx:
        (self.prefix / "tmp").mkdir(parents=True, exist_ok=True)
        includes = []
        for name, text in self.sites.items():
            site = self.prefix / f"site-{name}.conf"
            site.write_text(text)
            includes.append(f"    include {site};\n")
        # as root, workers would switch to nobody, who cannot enter the tests' 0700 temp dirs
        user = f"user {self.worker_user or 'root'};\n" if os.geteuid() == 0 else ""
        conf = self.prefix / "nginx.conf"
        conf.write_text(MAIN_CONF.format(prefix=self.prefix, user=user, includes="".join(includes)))
        with open(self.prefix / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen(
                [
                    NGINX_BIN,
                    "-p",
                    str(self.prefix),
                    "-c",
                    str(conf),
                    "-e",
                    str(self.prefix / "error.log"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        pending = set(self.ports.values())
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx not listening after {timeout}s:\n{self.logs()}")
            for port in list(pending):
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), timeout=1.0),
                ):
                    pending.discard(port)
            if pending:
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        tree = [self.proc.pid, *(p.pid for p in procs.descendants(self.proc.pid))]
        procs.kill_pids(tree, timeout=10.0)  # SIGTERM: nginx's fast shutdown
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10.0)


@contextlib.contextmanager
def front(
    prefix: Path,
    upstreams: Mapping[str, int | Path],
    tls: Tls,
    htpasswd: Path,
    worker_user: str | None = None,
) -> Iterator[Nginx]:
    """nginx with one site per upstream (name -> the p2phttp server's port or unix socket),
    each on a free loopback port of its own."""
    ports = {name: free_port() for name in upstreams}
    sites = {
        name: render_site(port=ports[name], tls=tls, htpasswd=htpasswd, upstream=up)
        for name, up in upstreams.items()
    }
    server = Nginx(prefix, sites, ports, worker_user)
    try:
        yield server.start()
    finally:
        server.stop()
