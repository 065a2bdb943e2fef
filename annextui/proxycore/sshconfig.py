"""How OpenSSH would reach a host, as OpenSSH itself decides it.

`ssh -G` prints the configuration OpenSSH would use for a host after evaluating `~/.ssh/config`
(or `-F`), `Include`, `Host` and `Match` blocks (`Match exec` too), tokens and the command line
(`annex-ssh-options`, `-J`, `-o K=V`). Reading that output instead of parsing ssh_config
ourselves means an admin's configuration means exactly what it means to git-annex's `ssh`.

The result says how the hop is made: directly, through jump hosts (`ProxyJump`, each jump host
resolved with its own configuration), through a `ProxyCommand`, or, when paramiko cannot do what
the configuration asks (`openssh_reason`), by running the system's `ssh` as git-annex does.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import threading
from pathlib import Path

# Value, not dataclasses: this module is on the path of a session's first request to an ssh
# node, and `dataclasses` imports `inspect` (with ast, dis, tokenize) and compiles several
# methods per class, ~10 ms before the connection could start (values.py).
from annextui.values import Value, replace, value_field

SSH_PROGRAM = "ssh"
GIT_SSH_VARS = ("GIT_SSH_COMMAND", "GIT_SSH")


class SshError(Exception):
    """The node could not be reached safely; the message says why and what to do."""


class SshTarget(Value):
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

    @property
    def destination(self) -> str:
        """`user@host` or `host`, as git-annex puts it on ssh's command line."""
        return f"{self.user}@{self.host}" if self.user else self.host


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


class SshOptions(Value):
    """`remote.NAME.annex-ssh-options`: the words git-annex puts on ssh's command line."""

    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> SshOptions:
        try:
            return cls(tuple(shlex.split(text or "")))
        except ValueError as exc:
            raise SshError(f"cannot parse annex-ssh-options {text!r}: {exc}") from exc

    @property
    def config_file(self) -> str | None:
        """`-F FILE`: OpenSSH hands it on to the ssh it runs for each ProxyJump host."""
        out = None
        for i, w in enumerate(self.words):
            if w == "-F" and i + 1 < len(self.words):
                out = self.words[i + 1]
            elif w.startswith("-F") and len(w) > 2:
                out = w[2:]
        return out


def home() -> Path:
    # OpenSSH reads ~/.ssh from the passwd entry, not $HOME; so do we, falling back to $HOME.
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        return Path.home()


def expand_path(p: str) -> str:
    """`~` as OpenSSH expands it (the passwd home), and ${VAR}."""
    if p == "~" or p.startswith("~/"):
        p = str(home()) + p[1:]
    return os.path.expandvars(p)


class ResolvedHost(Value):
    """One hop as OpenSSH would make it (see the module docstring). Equal hops are the same
    hop whatever else `ssh -G` printed: `config` is left out of equality and hashing (it keys
    the pool's transports)."""

    alias: str  # as written in the URL or jump spec
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    certificate_files: tuple[str, ...] = ()
    identities_only: bool = False
    identity_agent: str | None = None  # agent socket; None: no agent
    known_hosts: tuple[str, ...] = ()
    host_key_alias: str | None = None
    strict: str = "ask"
    proxy_command: str | None = None  # tokens expanded
    via: ResolvedHost | None = None  # the jump host this hop is tunnelled through
    server_alive_interval: int = 0
    connect_timeout: float | None = None
    openssh_reason: str | None = None  # set: only the system's ssh can make this hop
    config: dict[str, tuple[str, ...]] = value_field(default_factory=dict)

    def _hop(self) -> tuple[object, ...]:
        return self._values()[:-1]  # every field but `config`, the last

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, ResolvedHost)
        return self._hop() == other._hop()

    def __hash__(self) -> int:
        return hash(self._hop())

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH looks up in known_hosts: HostKeyAlias verbatim, else host[:port]."""
        if self.host_key_alias:
            return self.host_key_alias
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    @property
    def path(self) -> str:
        """How the hop is made, for people: `direct`, `ProxyJump a -> b`, `ProxyCommand …`."""
        if self.openssh_reason:
            return f"OpenSSH ({self.openssh_reason})"
        if self.via is not None:
            chain = []
            hop: ResolvedHost | None = self.via
            while hop is not None:
                chain.append(hop.alias)
                hop = hop.via
            return "paramiko, ProxyJump " + " -> ".join(reversed(chain))
        if self.proxy_command:
            return f"paramiko, ProxyCommand {self.proxy_command}"
        return "paramiko, direct"


_cache: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
_cache_lock = threading.Lock()
# Questions to `ssh -G` being answered now: a second thread asking the same (a session's first
# request for a node while the shell's ssh prewarm is resolving it) waits for that answer
# instead of running ssh once more.
_asking: dict[tuple[str, ...], threading.Event] = {}


def ssh_g(argv_tail: list[str]) -> dict[str, tuple[str, ...]]:
    """`ssh -G ARGS`: OpenSSH's evaluated configuration, keyword -> values (cached)."""
    key = tuple(argv_tail)
    while True:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
            asking = _asking.get(key)
            if asking is None:
                _asking[key] = threading.Event()
                break
        asking.wait()  # then the cache has it, or that run failed and we ask ourselves
    try:
        cfg = _ask_ssh(key)
        with _cache_lock:
            _cache[key] = cfg
        return cfg
    finally:
        with _cache_lock:
            _asking.pop(key).set()


def _ask_ssh(argv_tail: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    program = shutil.which(SSH_PROGRAM)
    if program is None:
        raise SshError("reading the ssh configuration needs OpenSSH's ssh on PATH")
    res = subprocess.run(
        [program, "-G", *argv_tail],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise SshError(f"ssh configuration error: {res.stderr.strip() or res.returncode}")
    out: dict[str, list[str]] = {}
    for line in res.stdout.splitlines():
        k, _, v = line.partition(" ")
        out.setdefault(k.lower(), []).append(v)
    return {k: tuple(v) for k, v in out.items()}


def forget_resolutions() -> None:
    """Drop the cached `ssh -G` results: after a failed hop the next attempt re-reads the
    configuration, as each run of ssh does (a `Match exec` may now choose another route)."""
    with _cache_lock:
        _cache.clear()


def _one(cfg: dict[str, tuple[str, ...]], key: str, default: str = "") -> str:
    return cfg.get(key, (default,))[0]


def _expand_tokens(text: str, *, host: str, port: int, user: str, alias: str) -> str:
    """ProxyCommand's % tokens (ssh_config TOKENS) that a proxy command can use."""
    table = {"h": host, "p": str(port), "r": user, "n": alias, "%": "%"}
    return re.sub(r"%(.)", lambda m: table.get(m.group(1), m.group(0)), text)


def _fido_key(identity: str) -> bool:
    pub = Path(identity + ".pub")
    try:
        return pub.is_file() and pub.read_text(errors="replace").startswith("sk-")
    except OSError:
        return False


def git_ssh_reason() -> str | None:
    """GIT_SSH / GIT_SSH_COMMAND: the admin chose the ssh program, so it runs (see
    ssh.openssh_argv for which command line git-annex gives it)."""
    for var in GIT_SSH_VARS:
        if os.environ.get(var):
            return f"{var} is set"
    return None


def _openssh_reason(cfg: dict[str, tuple[str, ...]], idents: tuple[str, ...]) -> str | None:
    """What in this configuration paramiko cannot do (so the system's ssh must)."""
    if _one(cfg, "controlmaster", "false") not in ("false", "no"):
        return "ControlMaster"
    if _one(cfg, "gssapiauthentication", "no") == "yes":
        return "GSSAPIAuthentication"
    if _one(cfg, "pkcs11provider", "none") != "none":
        return "PKCS11Provider"
    if _one(cfg, "proxyusefdpass", "no") == "yes":
        return "ProxyUseFdpass"
    for ident in idents:
        if os.path.isfile(ident) and _fido_key(ident):
            return f"FIDO key {ident}"
    return None


def _agent_socket(cfg: dict[str, tuple[str, ...]]) -> str | None:
    value = _one(cfg, "identityagent", "SSH_AUTH_SOCK")
    if value == "none":
        return None
    if value == "SSH_AUTH_SOCK":
        return os.environ.get("SSH_AUTH_SOCK") or None
    if value.startswith("$"):
        return os.environ.get(value.strip("${}")) or None
    return expand_path(value)


def _parse_jump(spec: str) -> tuple[str, str | None, int | None]:
    """A ProxyJump element: `[user@]host[:port]` or `ssh://[user@]host[:port]`."""
    spec = spec.removeprefix("ssh://")
    user, _, hostport = spec.rpartition("@")
    m = re.match(r"^(\[[^\]]+\]|[^:]+)(?::(\d+))?$", hostport)
    if not m:
        raise SshError(f"bad ProxyJump host {spec!r}")
    return m.group(1).strip("[]"), user or None, int(m.group(2)) if m.group(2) else None


def _lookup(words: list[str], host: str, user: str | None, port: int | None) -> ResolvedHost:
    args = list(words)
    if port is not None:
        args += ["-p", str(port)]
    cfg = ssh_g([*args, f"{user}@{host}" if user else host])
    hostname = _one(cfg, "hostname", host)
    port_n = int(_one(cfg, "port", "22"))
    user_s = _one(cfg, "user") or pwd.getpwuid(os.getuid()).pw_name
    idents = tuple(expand_path(p) for p in cfg.get("identityfile", ()))
    known = [
        expand_path(p)
        for key in ("userknownhostsfile", "globalknownhostsfile")
        for line in cfg.get(key, ())
        for p in line.split()
    ]
    proxy = _one(cfg, "proxycommand", "none")
    timeout = _one(cfg, "connecttimeout", "none")
    return ResolvedHost(
        alias=host,
        hostname=hostname,
        port=port_n,
        user=user_s,
        identity_files=idents,
        certificate_files=tuple(expand_path(p) for p in cfg.get("certificatefile", ())),
        identities_only=_one(cfg, "identitiesonly", "no") == "yes",
        identity_agent=_agent_socket(cfg),
        known_hosts=tuple(known),
        host_key_alias=_one(cfg, "hostkeyalias") or None,
        strict=_one(cfg, "stricthostkeychecking", "ask"),
        proxy_command=None
        if proxy == "none"
        else _expand_tokens(proxy, host=hostname, port=port_n, user=user_s, alias=host),
        server_alive_interval=int(_one(cfg, "serveraliveinterval", "0") or 0),
        connect_timeout=None if timeout in ("none", "") else float(timeout),
        openssh_reason=_openssh_reason(cfg, idents),
        config=cfg,
    )


def resolve_host(target: SshTarget, opts: SshOptions) -> ResolvedHost:
    """The hop to `target` with `annex-ssh-options` `opts`, jump hosts resolved (first first)."""
    reason = git_ssh_reason()
    if reason:  # the configuration is that program's business, not ours
        user = target.user or ""
        return ResolvedHost(
            target.host, target.host, target.port or 22, user, openssh_reason=reason
        )
    host = _lookup(list(opts.words), target.host, target.user, target.port)
    jumps = _one(host.config, "proxyjump", "none")
    if jumps == "none" or host.openssh_reason:
        return host
    # The jump hosts get only -F from the command line, as OpenSSH's own ProxyJump does; the
    # first is reached as its own configuration says, each next one through the previous.
    sub = ["-F", opts.config_file] if opts.config_file else []
    via: ResolvedHost | None = None
    for spec in jumps.split(","):
        name, jump_user, port = _parse_jump(spec.strip())
        hop = _lookup(sub, name, jump_user, port)
        if hop.openssh_reason:
            return replace(host, openssh_reason=f"jump host {name}: {hop.openssh_reason}")
        if via is not None:
            hop = replace(hop, via=via, proxy_command=None)
        elif _one(hop.config, "proxyjump", "none") != "none":
            hop = resolve_host(SshTarget(name, "/", jump_user, port), SshOptions(tuple(sub)))
        via = hop
    return replace(host, via=via, proxy_command=None)
