"""A p2phttp server under test (`git annex p2phttp` or `annextui p2phttp`) and real clients of it.

Both implementations take git-annex's command line and serve the repository they run in, so a
server is described by its argv prefix (`SERVERS`) and everything else is shared: a free
loopback port or a unix socket, readiness polled with a bound (an HTTP request that gets any
status line back), stderr collected in a file, and the whole process group killed at the end.

`point_client` gives a real git-annex client a remote whose `annexUrl` is the server, with
credentials in a git credential-store file when auth is on; its proxied remotes and cluster
(`NAME-node1`, `NAME-mycluster`, ...) follow from the gateway's branch, as with ssh.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import procs
from tests.support.annex import AnnexEnv
from tests.support.sshd import free_port

# the two implementations, by the argv that starts them inside a repository
SERVERS: dict[str, tuple[str, ...]] = {
    "git-annex": ("git", "annex", "p2phttp"),
    "annextui": ("annextui", "p2phttp"),
}
READY_TIMEOUT = 60.0
_LOG_SERIALS = itertools.count()
# loopback is a private address to git-annex's HTTP client: allow it for the test remotes
ALLOW_LOOPBACK = ("annex.security.allowed-ip-addresses", "all")


def implemented(kind: str, env: Mapping[str, str]) -> bool:
    """Whether this checkout has that server (`annextui p2phttp` is being written alongside)."""
    argv = [*SERVERS[kind], "--help"]
    try:
        done = subprocess.run(argv, env=dict(env), capture_output=True, timeout=60)
    except OSError:
        return False
    return done.returncode == 0


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Endpoint:
    """Where an HTTP server listens (loopback TCP, maybe TLS, or a unix socket), and bounded
    requests to it on fresh connections."""

    port: int = 0
    tls: bool = False
    unix_socket: Path | None = None

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.unix_socket is not None:
            return _UnixHTTPConnection(str(self.unix_socket), timeout)
        if self.tls:
            import ssl

            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the probe checks liveness, the client checks TLS
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> Reply:
        """One request on a fresh connection; every socket operation bounded by `timeout`."""
        conn = self.connection(timeout)
        try:
            hdrs = {"Content-Length": str(len(body)), **(headers or {})}
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def keep_locked(
        self, uuid: str, key: str, client: str, *, timeout: float = 60.0
    ) -> tuple[str, socket.socket]:
        """lockcontent, then a keeplocked request whose body stays open (loopback TCP): the
        lock id and its socket (send `{"unlock":true}` and the last chunk on it, or close it,
        to end it)."""
        base = f"/git-annex/{uuid}/v4"
        reply = self.request(
            "POST", f"{base}/lockcontent?key={key}&clientuuid={client}", timeout=timeout
        )
        assert reply.status == 200, reply
        lockid = str(json.loads(reply.body)["lockid"])
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sock.sendall(
            f"POST {base}/keeplocked?lockid={lockid}&clientuuid={client} HTTP/1.1\r\n"
            "Host: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + b'10\r\n{"unlock":false}\r\n'
        )
        return lockid, sock

    def checkpresent(self, uuid: str, key: str, client: str, *, timeout: float) -> bool:
        reply = self.request(
            "POST",
            f"/git-annex/{uuid}/v4/checkpresent?key={key}&clientuuid={client}",
            timeout=timeout,
        )
        assert reply.status == 200, reply
        return bool(json.loads(reply.body)["present"])


@dataclass
class P2PHttpServer:
    """One server process. `options` are passed through verbatim (auth, TLS, -J ...); the
    listening address is added here: `--bind 127.0.0.1 --port P`, or `--socket PATH`."""

    kind: str
    repo: Path
    env: dict[str, str]
    options: Sequence[str] = ()
    unix_socket: Path | None = None
    port: int = 0
    tls: bool = False
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # stop() ran to its end: a second call (a test's, then its fixture's) must not signal the
    # old pid and process group, which may belong to another test's process by then
    stopped: bool = field(default=False, init=False, repr=False)

    @property
    def argv(self) -> list[str]:
        where = (
            ["--socket", str(self.unix_socket)]
            if self.unix_socket is not None
            else ["--bind", "127.0.0.1", "--port", str(self.port)]
        )
        return [*SERVERS[self.kind], *where, *self.options]

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.port, self.tls, self.unix_socket)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    @property
    def url(self) -> str:
        """The `annex+http(s)://` URL a client's annexUrl takes (TCP only)."""
        scheme = "annex+https" if self.tls else "annex+http"
        return f"{scheme}://127.0.0.1:{self.port}/git-annex/"

    def start(self, timeout: float = READY_TIMEOUT) -> P2PHttpServer:
        if self.unix_socket is None and not self.port:
            self.port = free_port()
        if self.log_path is None:
            # one file per server: two servers of one repository (a test starting a second
            # beside a fixture's) must not truncate each other's log
            serial = next(_LOG_SERIALS)
            self.log_path = self.repo.parent / f"p2phttp-{self.kind}-{os.getpid()}-{serial}.log"
        with open(self.log_path, "wb") as log:
            # a session of its own: stop() ends the server and everything it started
            self.stopped = False
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.repo,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)
        return self

    def stderr(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text("utf-8", "replace")

    def wait_ready(self, timeout: float) -> None:
        """Poll until any HTTP status line comes back (an unserved UUID: 404, or 401 with auth
        on), failing at once if the process exits, and after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.argv} exited with {self.proc.returncode}:\n{self.stderr()}"
                )
            try:
                self.endpoint.request("GET", "/git-annex/ready-probe/key/SHA1-s0--x", timeout=2.0)
                return
            except (OSError, http.client.HTTPException) as e:
                last = e
                time.sleep(0.05)
        raise AssertionError(
            f"{self.argv} not answering after {timeout}s ({last}):\n{self.stderr()}"
        )

    def status_line(self, timeout: float = 60.0) -> str:
        """The summary line of the server's own status (`annextui p2phttp` prints it on
        SIGUSR1): `status: N connections, ...`; waits for it within `timeout`."""
        before = self.stderr().count("status:")
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while self.stderr().count("status:") == before and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [ln for ln in self.stderr().splitlines() if ln.startswith("status:")]
        assert len(lines) > before, f"no status after SIGUSR1:\n{self.stderr()}"
        return lines[-1]

    def fd_count(self) -> int:
        """Open descriptors of the server process (its own, not its children's)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def tree(self) -> list[int]:
        """The server and every process below it."""
        return [self.pid, *(p.pid for p in procs.descendants(self.pid))]

    def stop(self) -> None:
        """SIGTERM to the server's session, SIGKILL to whatever is left of its tree."""
        if self.proc is None or self.stopped:
            return
        tree = self.tree()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        procs.kill_pids(tree, timeout=10.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10.0)
        self.stopped = self.proc.returncode is not None


@contextlib.contextmanager
def running(
    kind: str,
    repo: Path,
    env: Mapping[str, str],
    options: Sequence[str] = ("--wideopen", "-J4"),
    **kw: object,
) -> Iterator[P2PHttpServer]:
    server = P2PHttpServer(kind, repo, dict(env), options, **kw)  # type: ignore[arg-type]
    try:
        yield server.start()
    finally:
        server.stop()


def clone_client(
    env: AnnexEnv, gateway: Path, dest: Path, name: str, annex_url: str, *, uuid: str
) -> Path:
    """A new client of the gateway whose remote `name` reaches it through `annex_url` (the
    clone's origin, so it shares the gateway's history and knows its proxied remotes)."""
    config = {f"remote.{name}.annexUrl": annex_url, ALLOW_LOOPBACK[0]: ALLOW_LOOPBACK[1]}
    return env.clone(gateway, dest, uuid=uuid, origin=name, config=config, description=dest.name)


def point_client(
    env: AnnexEnv,
    client: Path,
    name: str,
    annex_url: str,
    *,
    git_url: str,
    credentials: tuple[str, str] | None = None,
    ca_file: Path | None = None,
) -> None:
    """Add remote `name` to `client`: git traffic to `git_url`, annex traffic to `annex_url`.

    `credentials` come from a git credential helper for the annexUrl (git-annex asks git
    for them on a 401); `ca_file` (PEM) becomes the only trust anchor of git-annex's HTTP
    client (SSL_CERT_FILE: its TLS stack reads it; git's http.sslCAInfo it does not)."""
    env.git(client, "remote", "add", name, git_url)
    env.git(client, "config", f"remote.{name}.annexUrl", annex_url)
    env.git(client, "config", *ALLOW_LOOPBACK)
    if credentials is not None:
        user, password = credentials
        # an inline helper answering for this URL only (git's credential-store does not match
        # the annex+http(s) protocol git-annex asks with)
        answer = shlex.quote(f"username={user}\npassword={password}\n")
        helper = f'!f() {{ test "$1" = get && printf %s {answer}; }}; f'
        env.git(client, "config", f"credential.{annex_url}.helper", helper)
    if ca_file is not None:
        env.env["SSL_CERT_FILE"] = str(ca_file)
    env.git(client, "fetch", "-q", name)
    env.annex(client, "merge", "-q")
