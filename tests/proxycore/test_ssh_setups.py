"""The ssh set-ups admins use (tests/support/sshsetups.py), through annextui's SshPool against
real OpenSSH servers, with the real `ssh` as judge: what ssh accepts we accept, what it refuses
we refuse (with its words)."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from annextui.proxycore.ssh import SshError, SshOptions, SshPool, SshTarget, resolve_host
from tests.support.sshd import Sshd
from tests.support.sshsetups import Setup, Setups

pytestmark = pytest.mark.ssh

NAMES = ["jump", "chain", "proxycommand", "hashed", "agent", "ca"]


@pytest.fixture(scope="module")
def setups(sshd: Sshd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setups]:
    root = Path(tmp_path_factory.mktemp("sshsetups"))
    builder = Setups(sshd, root)
    try:
        yield builder
    finally:
        builder.close()


def _run(pool: SshPool, setup: Setup, config: Path, command: str) -> bytes:
    ch = pool.open(SshTarget(setup.alias, "/"), command, SshOptions(("-F", str(config))))
    data = b""
    while chunk := ch.read():
        data += chunk
    assert ch.close() == 0
    return data


@pytest.mark.parametrize("name", NAMES)
def test_setup_reaches_the_node_and_refuses_a_wrong_host_key(setups: Setups, name: str) -> None:
    setup = setups.get(name)
    # the judge: OpenSSH itself gets in with the good config and refuses the bad one
    assert setup.ssh(setup.config, "echo", "ok").stdout == "ok\n"
    judged = setup.ssh(setup.bad_config, "echo", "ok")
    assert judged.returncode != 0
    assert "Host key verification failed" in judged.stderr
    pool = SshPool()
    runs = setup.proxy_runs()
    try:
        assert _run(pool, setup, setup.config, "echo one") == b"one\n"
        assert _run(pool, setup, setup.config, "echo two") == b"two\n"
        host = resolve_host(SshTarget(setup.alias, "/"), SshOptions(("-F", str(setup.config))))
        assert host.openssh_reason is None  # paramiko made this hop
        hops = {"jump": 2, "chain": 3, "proxycommand": 1}.get(name, 1)
        assert len(pool._hops) == hops  # one transport per host, reused by the second channel
        if name in ("jump", "chain"):
            assert host.path == "paramiko, ProxyJump " + " -> ".join(["jumpa", "jumpb"][: hops - 1])
        if name == "proxycommand":  # the hop went through the command, once for two channels
            assert setup.proxy_runs() == runs + 1
        verified = pool.hop(host).verified
        if name == "ca":
            assert "host certificate" in verified
            assert "signed by CA" in verified
        if name == "agent":
            assert pool.hop(host).auth.startswith("agent key")
    finally:
        pool.close()
    with pytest.raises(SshError, match=setup.refusal):
        _run(SshPool(), setup, setup.bad_config, "echo no")


def test_revoked_host_key_is_refused(setups: Setups, tmp_path: Path) -> None:
    setup = setups.get("jump")
    keytype, key = setup.sshd.host_pub.split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(
        f"{known.read_text() if known.exists() else ''}"
        f"[127.0.0.1]:{setup.sshd.port} {keytype} {key}\n@revoked * {keytype} {key}\n"
    )
    cfg = tmp_path / "config"
    cfg.write_text(setup.sshd.host_block("revoked-node", UserKnownHostsFile=str(known)))
    judged = Setup("revoked", "revoked-node", cfg, cfg, "", setup.sshd).ssh(cfg, "true")
    assert "REVOKED HOST KEY DETECTED" in judged.stderr
    with pytest.raises(SshError, match="REVOKED HOST KEY DETECTED"):
        SshPool().open(SshTarget("revoked-node", "/"), "true", SshOptions(("-F", str(cfg))))


def test_openssh_takes_hosts_paramiko_cannot_serve(
    setups: Setups, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """ControlMaster in the config, or GIT_SSH_COMMAND set: the system's ssh makes the hop."""
    setup = setups.get("jump")
    cfg = tmp_path / "config"
    # sun_path is short (108 bytes), and ssh appends 17 characters to the socket's name while
    # it binds it: a directory under an xdist worker's tmp path is too deep.
    control_dir = Path(tempfile.mkdtemp(prefix="atcm-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(control_dir, ignore_errors=True))
    control = f"{control_dir}/%C"
    cfg.write_text(
        setup.sshd.host_block(
            "cm-node", ControlMaster="auto", ControlPath=control, ControlPersist="no"
        )
    )
    opts = SshOptions(("-F", str(cfg)))
    target = SshTarget("cm-node", "/")
    assert resolve_host(target, opts).openssh_reason == "ControlMaster"
    stream = SshPool().open_stream(target, "echo via-openssh", opts)
    assert stream.read(100) == b"via-openssh\n"
    assert stream.close() == 0
    # GIT_SSH_COMMAND with options, as git-annex runs it when GIT_ANNEX_USE_GIT_SSH=1
    monkeypatch.setenv(
        "GIT_SSH_COMMAND", f"{setup.sshd.real_ssh} -F {setup.config} -o BatchMode=yes"
    )
    monkeypatch.setenv("GIT_ANNEX_USE_GIT_SSH", "1")
    bad = SshOptions(("-F", str(tmp_path / "absent")))  # not used: GIT_SSH_COMMAND decides
    stream = SshPool().open_stream(SshTarget(setup.alias, "/"), "echo via-git-ssh", bad)
    assert stream.read(100) == b"via-git-ssh\n"
    assert stream.close() == 0


def test_transport_replaced_after_the_nodes_sshd_restarts(setups: Setups) -> None:
    setup = setups.get("ca")  # its own sshd: restarting it disturbs no other test
    pool = SshPool()
    try:
        assert _run(pool, setup, setup.config, "echo one") == b"one\n"
        host = resolve_host(SshTarget(setup.alias, "/"), SshOptions(("-F", str(setup.config))))
        first = pool.hop(host).transport
        setup.sshd.restart()
        assert _run(pool, setup, setup.config, "echo two") == b"two\n"
        assert pool.hop(host).transport is not first
        assert len(pool._hops) == 1
    finally:
        pool.close()


def test_server_alive_interval_sets_keepalives(setups: Setups, tmp_path: Path) -> None:
    setup = setups.get("jump")
    cfg = tmp_path / "config"
    cfg.write_text(setup.sshd.host_block("alive-node", ServerAliveInterval="7"))
    pool = SshPool()
    try:
        host = resolve_host(SshTarget("alive-node", "/"), SshOptions(("-F", str(cfg))))
        assert host.server_alive_interval == 7
        packetizer = pool.transport(host).packetizer
        assert packetizer._Packetizer__keepalive_interval == 7  # type: ignore[attr-defined]
    finally:
        pool.close()


def test_user_certificate_after_a_key_that_is_refused(setups: Setups, tmp_path: Path) -> None:
    """IdentityFile list: the first key is not authorized, the second logs in only by its
    certificate (signed by a user CA the sshd trusts)."""
    import getpass

    from tests.support.sshd import keygen

    ca = setups.get("ca")
    cert_key = setups.user_certificate("certuser", getpass.getuser())
    stranger = tmp_path / "stranger"
    keygen(stranger, "stranger")
    cfg = tmp_path / "config"
    known = ca.config.read_text().split("UserKnownHostsFile ")[1].split()[0]
    cfg.write_text(
        ca.sshd.host_block(
            "cert-user",
            UserKnownHostsFile=known,
            IdentityFile=f"{stranger}\n  IdentityFile {cert_key}",
        )
    )
    judge = Setup("cert", "cert-user", cfg, cfg, "", ca.sshd)
    assert judge.ssh(cfg, "echo", "ok").stdout == "ok\n"
    pool = SshPool()
    try:
        assert _run(pool, judge, cfg, "echo cert") == b"cert\n"
        host = resolve_host(SshTarget("cert-user", "/"), SshOptions(("-F", str(cfg))))
        assert pool.hop(host).auth == f"{cert_key} (certificate)"
    finally:
        pool.close()
    Path(f"{cert_key}-cert.pub").unlink()  # without its certificate the key is a stranger too
    with pytest.raises(SshError, match="Permission denied"):
        SshPool().open(SshTarget("cert-user", "/"), "true", SshOptions(("-F", str(cfg))))


def test_encrypted_key_without_its_agent_is_skipped(setups: Setups, tmp_path: Path) -> None:
    """The agent set-up with the agent turned off: the passphrase-protected key cannot be used
    (nobody types passphrases on a gateway), so the login is refused as ssh refuses it."""
    setup = setups.get("agent")
    cfg = tmp_path / "config"
    text = re.sub(r"IdentityAgent .*", "IdentityAgent none", setup.config.read_text())
    cfg.write_text(text)
    judged = setup.ssh(cfg, "true")
    assert "Permission denied" in judged.stderr
    with pytest.raises(SshError, match=r"Permission denied \(publickey"):
        SshPool().open(SshTarget(setup.alias, "/"), "true", SshOptions(("-F", str(cfg))))


def test_match_exec_is_evaluated_as_openssh_does(setups: Setups, tmp_path: Path) -> None:
    """`Match exec` picks the port: ssh -G evaluates it for us, so paramiko reaches the node
    exactly when ssh does."""
    from tests.support.sshd import free_port

    sshd = setups.get("jump").sshd
    flag = tmp_path / "on-lan"
    cfg = tmp_path / "config"
    cfg.write_text(
        f'Match host mx-node exec "test -e {flag}"\n  Port {sshd.port}\n'
        + sshd.host_block("mx-node", Port=str(free_port()))
    )
    judge = Setup("mx", "mx-node", cfg, cfg, "", sshd)
    target, opts = SshTarget("mx-node", "/"), SshOptions(("-F", str(cfg)))
    assert judge.ssh(cfg, "true").returncode != 0
    with pytest.raises(SshError, match="cannot connect"):
        SshPool().open(target, "true", opts)
    flag.touch()
    assert judge.ssh(cfg, "echo", "ok").stdout == "ok\n"
    pool = SshPool()
    try:
        assert _run(pool, judge, cfg, "echo matched") == b"matched\n"
    finally:
        pool.close()
