"""ssh set-ups admins use, built on the test sshd: each is a client ssh config file (`-F`) with
a host alias that reaches the sshd in that way, and a twin whose host key check must fail.

* `jump`: ProxyJump through one jump host (the same sshd under another alias);
* `chain`: ProxyJump through two;
* `proxycommand`: `ProxyCommand ssh -W %h:%p jumphost`;
* `hashed`: a hashed known_hosts entry under a HostKeyAlias, in the second of two
  UserKnownHostsFile entries;
* `agent`: the only key that logs in is passphrase-protected and held by a running ssh-agent
  (IdentityAgent, IdentitiesOnly);
* `ca`: a second sshd whose host key is certified by a CA that known_hosts trusts
  (`@cert-authority`), nothing else about its key being known.

Every set-up is checked against the real `ssh` too (`Setup.ssh_ok`), so none is an artefact of
our reading of ssh_config.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.sshd import Sshd, keygen

PASSPHRASE = "correct horse battery staple"


@dataclass
class Setup:
    name: str
    alias: str
    config: Path  # good: the host key verifies
    bad_config: Path  # the same set-up, but the node's host key is not the one trusted
    refusal: str  # what the refusal says (OpenSSH's words)
    sshd: Sshd
    env: dict[str, str] = field(default_factory=dict)  # for the gateway (and ssh) process
    marker: Path | None = None  # a ProxyCommand appends a line here each time it runs

    def proxy_runs(self) -> int:
        return (
            len(self.marker.read_text().splitlines()) if self.marker and self.marker.exists() else 0
        )

    def ssh(self, config: Path, *command: str) -> subprocess.CompletedProcess[str]:
        argv = [self.sshd.real_ssh, "-F", str(config), self.alias, *command]
        return subprocess.run(
            argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
        )


class Setups:
    """Builds the set-ups above in `root`; `close()` stops what it started (agent, sshd)."""

    def __init__(self, sshd: Sshd, root: Path) -> None:
        self.sshd = sshd
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._made: dict[str, Setup] = {}
        self._agent_pid: int | None = None
        self._ca_sshd: Sshd | None = None
        other = root / "other_host_key"
        self.wrong_known = root / "wrong_known_hosts"
        keytype, key = keygen(other, "impostor").split()[:2]
        self.wrong_known.write_text(
            f"[127.0.0.1]:{sshd.port} {keytype} {key}\n[127.0.0.1]:* {keytype} {key}\n"
        )

    def get(self, name: str) -> Setup:
        """The set-up `name` (jump, chain, proxycommand, hashed, agent, ca), built once."""
        if name not in self._made:
            self._made[name] = getattr(self, name)()
        return self._made[name]

    def _write(self, name: str, blocks: list[str]) -> Path:
        path = self.root / f"{name}.config"
        path.write_text("".join(blocks))
        return path

    def _pair(
        self,
        name: str,
        node: Mapping[str, str | None],
        jumps: list[str],
        refusal: str,
        **kw: object,
    ) -> Setup:
        """Good and bad configs: the bad one trusts a wrong key for the node only."""
        alias = f"{name}-node"
        good = [self.sshd.host_block(alias, **node)] + [self.sshd.host_block(j) for j in jumps]
        bad_node = {**node, "UserKnownHostsFile": str(self.wrong_known), "HostKeyAlias": None}
        bad = [self.sshd.host_block(alias, **bad_node)] + [self.sshd.host_block(j) for j in jumps]
        return Setup(
            name,
            alias,
            self._write(name, good),
            self._write(name + "-bad", bad),
            refusal,
            self.sshd,
            **kw,  # type: ignore[arg-type]
        )

    def jump(self) -> Setup:
        return self._pair(
            "jump", {"ProxyJump": "jumpa"}, ["jumpa"], "REMOTE HOST IDENTIFICATION HAS CHANGED"
        )

    def chain(self) -> Setup:
        return self._pair(
            "chain",
            {"ProxyJump": "jumpa,jumpb"},
            ["jumpa", "jumpb"],
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
        )

    def proxycommand(self) -> Setup:
        cfg = self.root / "proxycommand.config"
        marker = self.root / "proxycommand.runs"
        cmd = f"sh -c 'echo %h:%p >> {marker}; exec {self.sshd.real_ssh} -F {cfg} -W %h:%p jumpa'"
        return self._pair(
            "proxycommand",
            {"ProxyCommand": cmd},
            ["jumpa"],
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
            marker=marker,
        )

    def hashed(self) -> Setup:
        keytype, key = self.sshd.host_pub.split()[:2]
        known = self.root / "hashed_known_hosts"
        known.write_text(f"node.example.org {keytype} {key}\n")
        subprocess.run(
            ["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, capture_output=True
        )
        Path(f"{known}.old").unlink(missing_ok=True)
        assert known.read_text().startswith("|1|")
        files = f"{self.root / 'absent_known_hosts'} {known}"
        node = {"UserKnownHostsFile": files, "HostKeyAlias": "node.example.org"}
        return self._pair("hashed", node, [], "REMOTE HOST IDENTIFICATION HAS CHANGED")

    def agent(self) -> Setup:
        sock = self.root / "agent.sock"
        out = subprocess.run(
            ["ssh-agent", "-a", str(sock), "-s"], capture_output=True, text=True, check=True
        ).stdout
        self._agent_pid = int(out.split("SSH_AGENT_PID=")[1].split(";")[0])
        key = self.root / "agent_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "agent", "-f", str(key)],
            check=True,
            capture_output=True,
        )
        askpass = self.root / "askpass"
        askpass.write_text(f"#!/bin/sh\necho '{PASSPHRASE}'\n")
        askpass.chmod(0o755)
        env = {
            **os.environ,
            "SSH_AUTH_SOCK": str(sock),
            "SSH_ASKPASS": str(askpass),
            "SSH_ASKPASS_REQUIRE": "force",
            "DISPLAY": ":0",
        }
        subprocess.run(
            ["ssh-add", str(key)],
            env=env,
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        self.sshd.authorize("agent", Path(f"{key}.pub").read_text().strip())
        node = {"IdentityFile": str(key), "IdentityAgent": str(sock)}
        return self._pair("agent", node, [], "REMOTE HOST IDENTIFICATION HAS CHANGED")

    def ca(self) -> Setup:
        ca_key = self.root / "host_ca"
        ca_type, ca_pub = keygen(ca_key, "annextui-test-ca").split()[:2]
        self.user_ca = self.root / "user_ca"
        keygen(self.user_ca, "annextui-test-user-ca")
        server = Sshd(
            self.root / "ca-sshd",
            server_path=self.sshd.server_path,
            host_ca=ca_key,
            user_ca=self.user_ca,
        )
        server.start()
        self._ca_sshd = server
        trusted = self.root / "ca_known_hosts"
        trusted.write_text(f"@cert-authority [127.0.0.1]:* {ca_type} {ca_pub}\n")
        other_ca = self.root / "other_ca"
        o_type, o_pub = keygen(other_ca, "untrusted-ca").split()[:2]
        untrusted = self.root / "other_ca_known_hosts"
        untrusted.write_text(f"@cert-authority [127.0.0.1]:* {o_type} {o_pub}\n")
        alias = "ca-node"
        good = server.host_block(alias, UserKnownHostsFile=str(trusted))
        bad = server.host_block(alias, UserKnownHostsFile=str(untrusted))
        return Setup(
            "ca",
            alias,
            self._write("ca", [good]),
            self._write("ca-bad", [bad]),
            "Host key verification failed",
            server,
        )

    def user_certificate(self, name: str, principal: str) -> Path:
        """A user key (in no authorized_keys) with a certificate from the `ca` set-up's user CA
        next to it (NAME-cert.pub), valid for `principal`."""
        self.get("ca")
        key = self.root / name
        keygen(key, name)
        sign = ["-s", str(self.user_ca), "-I", name, "-n", principal]
        subprocess.run(["ssh-keygen", "-q", *sign, f"{key}.pub"], check=True, capture_output=True)
        return key

    def close(self) -> None:
        if self._agent_pid is not None:
            os.kill(self._agent_pid, signal.SIGTERM)
            self._agent_pid = None
        if self._ca_sshd is not None:
            self._ca_sshd.stop()
            self._ca_sshd = None
