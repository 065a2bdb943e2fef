"""`annextui ssh-check NODE`: how the gateway reaches an ssh node, checked by doing it.

It resolves the node's remote as the gateway does (URL, `annex-ssh-options`, OpenSSH's view of
the configuration), makes the hop, and prints the path chosen (paramiko direct, ProxyJump
chain, ProxyCommand, or OpenSSH and why), how the host key was verified, how the gateway
authenticated, and the round-trip time of one request on the live connection.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from annextui.backend.repo import Repository
from annextui.proxycore.ssh import (
    SshError,
    SshOptions,
    SshPool,
    openssh_argv,
    parse_ssh_url,
    resolve_host,
)


def _check(repo: Repository, name: str) -> dict[str, object]:
    remote = repo.remotes.get(name)
    if remote is None or not remote.url:
        raise SshError(f"there is no remote named {name!r} with a URL")
    target = parse_ssh_url(remote.url)
    if target is None:
        raise SshError(f"{name} ({remote.url}) is not reached over ssh")
    opts = SshOptions.parse(remote.option("annex-ssh-options"))
    host = resolve_host(target, opts)
    out: dict[str, object] = {"node": name, "url": remote.url, "path": host.path}
    if host.openssh_reason:
        argv = openssh_argv(target, opts, "true")
        start = time.monotonic()
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        elapsed = time.monotonic() - start
        if res.returncode != 0:
            raise SshError(f"{' '.join(argv)} failed: {res.stderr.strip()}")
        out["host key"] = "verified by OpenSSH (its known_hosts and StrictHostKeyChecking)"
        out["round trip ms"] = round(elapsed * 1000, 1)
        out["round trip of"] = "a whole ssh connection running `true`"
        return out
    pool = SshPool()
    try:
        hop = pool.hop(host)
        out["host"] = f"{host.user}@{host.known_hosts_name}"
        out["host key"] = hop.verified
        out["authenticated with"] = hop.auth
        start = time.monotonic()
        hop.transport.global_request("keepalive@openssh.com", wait=True)
        out["round trip ms"] = round((time.monotonic() - start) * 1000, 2)
        out["round trip of"] = "one request on the established transport"
    finally:
        pool.close()
    return out


def ssh_check(repo: Repository, name: str, *, as_json: bool = False) -> int:
    try:
        result = _check(repo, name)
    except SshError as exc:
        if as_json:
            print(json.dumps({"node": name, "success": False, "error-messages": [str(exc)]}))
        print(f"annextui: ssh-check {name}: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({**result, "success": True}, sort_keys=True))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0
