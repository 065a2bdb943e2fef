"""paramiko transport against a real OpenSSH sshd: config aliases, one transport per host,
host keys verified, unknown and changed keys refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, cast

import pytest

from annextui.proxycore.ssh import (
    NO_EXIT_STATUS,
    SshError,
    SshOptions,
    SshPool,
    parse_ssh_url,
    shell_command,
)
from tests.support import procs
from tests.support.sshd import Sshd
from tests.support.waiting import wait_until


class NegotiatedCiphers(Protocol):
    """The ciphers a paramiko Transport agreed on, each way. paramiko sets both attributes; its
    type stubs (types-paramiko) declare only `local_cipher`."""

    local_cipher: str  # what we send with
    remote_cipher: str  # what the server sends with (a GET's content)


def test_parse_ssh_urls() -> None:
    t = parse_ssh_url("ssh://user@gw:2222/srv/annex")
    assert t is not None
    assert (t.host, t.user, t.port, t.path, t.remote_dir) == (
        "gw",
        "user",
        2222,
        "/srv/annex",
        "/srv/annex",
    )
    home = parse_ssh_url("ssh://gw/~/annex")
    assert home is not None
    assert home.remote_dir == "/~/annex"
    scp = parse_ssh_url("gw:annex")
    assert scp is not None
    assert scp.remote_dir == "/~/annex"
    assert parse_ssh_url("/local/path") is None
    assert parse_ssh_url("https://example.com/x") is None


def test_shell_command_quotes_like_git_annex() -> None:
    assert shell_command("git-annex-shell", "p2pstdio", "/srv/my gw", "u1", uuid="u2") == (
        "git-annex-shell p2pstdio '/srv/my gw' u1 --uuid u2"
    )


def _opts(sshd: Sshd) -> SshOptions:
    return SshOptions.parse(f"-F {sshd.config_path}")


def test_channels_share_one_transport(ssh_hosts: Sshd) -> None:
    ssh_hosts.add_host("nodehost")
    pool = SshPool()
    try:
        target = parse_ssh_url("ssh://nodehost/tmp")
        assert target is not None
        outs = []
        for word in ("one", "two"):
            ch = pool.open(target, f"echo {word}", _opts(ssh_hosts))
            data = b""
            while chunk := ch.read():
                data += chunk
            assert ch.close() == 0
            outs.append(data)
        assert outs == [b"one\n", b"two\n"]
        assert len(pool._transports) == 1
        (t,) = pool._transports.values()
        agreed = cast(NegotiatedCiphers, t)
        assert agreed.remote_cipher.startswith("aes128-gcm")
        assert agreed.local_cipher.startswith("aes128-gcm")
    finally:
        pool.close()


def test_close_returns_the_status_or_abandons_a_command_that_never_exits(
    ssh_hosts: Sshd,
) -> None:
    """A node's command that does not exit after our EOF (stuck on a lock, say) must not hold
    the shell's exit for ever: after the wait its channel is closed, with no status, and the
    transport carries the next channel."""
    ssh_hosts.add_host("stuckhost")
    marker = f"stuck-{os.getpid()}-{time.monotonic_ns()}"
    pool = SshPool()
    try:
        target = parse_ssh_url("ssh://stuckhost/tmp")
        assert target is not None
        opts = _opts(ssh_hosts)
        assert pool.open(target, "exit 3", opts).close() == 3
        stuck = pool.open(
            target, f"{sys.executable} -c 'import time; time.sleep(600)' {marker}", opts
        )
        wait_until(lambda: procs.mentioning(marker), "the remote command to start", 30)
        assert stuck.close(wait=0.5) == NO_EXIT_STATUS
        assert stuck.channel.closed
        again = pool.open(target, "echo again", opts)
        data = b""
        while chunk := again.read():
            data += chunk
        assert (data, again.close()) == (b"again\n", 0)
    finally:
        pool.close()
        procs.kill_pids(p.pid for p in procs.mentioning(marker))


# A fresh process that reaches `nodehost` over a pooled transport and runs `echo hi`; `pool` is
# still open after it (what paramiko's import left in sys.modules is then asked).
_FRESH_NODE_SESSION = (
    "import sys\n"
    "from annextui.proxycore.ssh import SshOptions, SshPool, parse_ssh_url\n"
    "pool = SshPool()\n"
    "target = parse_ssh_url('ssh://nodehost/tmp')\n"
    "ch = pool.open(target, 'echo hi', SshOptions.parse(sys.argv[1]))\n"
    "data = b''\n"
    "while chunk := ch.read():\n"
    "    data += chunk\n"
    "assert ch.close() == 0 and data == b'hi\\n', data\n"
)


def _fresh_node_session(ssh_hosts: Sshd, then: str) -> list[str]:
    """The lines `then` prints after a fresh process's first node session."""
    ssh_hosts.add_host("nodehost")
    p = subprocess.run(
        [sys.executable, "-c", _FRESH_NODE_SESSION + then, f"-F {ssh_hosts.config_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.split("\n")


def test_a_node_connection_does_not_import_invoke(ssh_hosts: Sshd) -> None:
    """paramiko's optional `invoke` import (a third of paramiko's import time) is skipped: a
    fresh process reaches a real sshd without it, and can still import invoke afterwards."""
    first, later = _fresh_node_session(
        ssh_hosts,
        "pool.close()\n"
        "import paramiko.config\n"
        "print('invoke' in sys.modules, paramiko.config.invoke is None)\n"
        "try:\n"
        "    import invoke\n"
        "    print('importable')\n"
        "except ImportError as exc:\n"
        "    print('ImportError' if 'None in sys.modules' not in str(exc) else 'blocked')\n",
    )[:2]
    assert first == "False True"
    assert later in ("importable", "ImportError")  # not left blocked for the process


def test_a_node_connection_does_not_import_importlib_metadata(ssh_hosts: Sshd) -> None:
    """paramiko asks importlib.metadata only for its own version: a fresh process reaches a
    real sshd without importing it, announces the installed version in its banner, and
    imports the real module afterwards."""
    imported, banner, later = _fresh_node_session(
        ssh_hosts,
        "(t,) = pool._transports.values()\n"
        "print('importlib.metadata' in sys.modules)\n"
        "print(t.local_version)\n"
        "pool.close()\n"
        "import importlib.metadata\n"
        "print(importlib.metadata.version('paramiko'), importlib.metadata.__file__ is not None)\n",
    )[:3]
    assert imported == "False"
    version, real = later.split()
    assert real == "True"
    assert banner == f"SSH-2.0-paramiko_{version}"


def _fresh(code: str, **env: str) -> str:
    """What a fresh interpreter running `code` prints (this checkout: PYTHONPATH inherited)."""
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("GIT_SSH")} | env,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_reaching_for_ssh_imports_no_dataclasses() -> None:
    """ssh.py and sshconfig.py are on the path of a session's first request to an ssh node:
    their classes are Values, so `dataclasses` (and `inspect`, ast, dis, tokenize) is not
    imported before the connection can start."""
    code = (
        "import sys, annextui.proxycore.ssh\n"
        "print('dataclasses' in sys.modules, 'inspect' in sys.modules)"
    )
    assert _fresh(code) == "False False"


_START_IMPORT = (
    "import sys, threading\n"
    "from annextui.proxycore.ssh import start_paramiko_import\n"
    "start_paramiko_import()\n"
    "started = [t for t in threading.enumerate() if t.name == 'paramiko-import']\n"
    "for t in started: t.join()\n"
    "print(len(started), 'paramiko' in sys.modules, 'invoke' in sys.modules)\n"
)


def test_paramiko_is_imported_beside_ssh_g() -> None:
    """`open_stream` starts paramiko's import on a thread of its own before asking `ssh -G`
    (the same `load_paramiko`: no invoke); with GIT_SSH_COMMAND set paramiko is never used,
    and not imported."""
    assert _fresh(_START_IMPORT) == "1 True False"
    assert _fresh(_START_IMPORT, GIT_SSH_COMMAND="ssh") == "0 False False"


def test_one_ssh_g_answers_threads_asking_at_once(
    ssh_hosts: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prewarm thread and a session's first request resolve the same host: OpenSSH is
    asked once, and both get its answer."""
    from annextui.proxycore import sshconfig

    ssh_hosts.add_host("nodehost")
    log = tmp_path / "asked"
    real = shutil.which("ssh")
    assert real is not None
    wrapper = tmp_path / "ssh"
    # slow to answer, so that every thread asks while the first question is open
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nsleep 0.3\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(sshconfig, "SSH_PROGRAM", str(wrapper))
    sshconfig.forget_resolutions()
    target = parse_ssh_url("ssh://nodehost/tmp")
    assert target is not None
    start = threading.Barrier(4)

    def resolve() -> sshconfig.ResolvedHost:
        start.wait()
        return sshconfig.resolve_host(target, _opts(ssh_hosts))

    with ThreadPoolExecutor(max_workers=4) as ex:
        hosts = list(ex.map(lambda _: resolve(), range(4)))
    sshconfig.forget_resolutions()
    assert len(set(hosts)) == 1
    assert hosts[0].port == ssh_hosts.port
    assert len(log.read_text().splitlines()) == 1


def test_unknown_host_key_is_refused(ssh_hosts: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    ssh_hosts.add_host("stranger", known_hosts=empty)
    pool = SshPool()
    target = parse_ssh_url("ssh://stranger/tmp")
    assert target is not None
    with pytest.raises(SshError, match=r"host key is known for .* strict checking"):
        pool.open(target, "true", _opts(ssh_hosts))
    assert empty.read_text() == ""  # nothing was added silently


def test_changed_host_key_is_refused(ssh_hosts: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    pub = (tmp_path / "other_key.pub").read_text().split()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{ssh_hosts.port} {pub[0]} {pub[1]}\n")
    ssh_hosts.add_host("impostor", known_hosts=wrong)
    pool = SshPool()
    target = parse_ssh_url("ssh://impostor/tmp")
    assert target is not None
    with pytest.raises(SshError, match="HAS CHANGED"):
        pool.open(target, "true", _opts(ssh_hosts))


def test_closed_port_gives_a_clear_error(ssh_hosts: Sshd) -> None:
    from tests.support.sshd import free_port

    ssh_hosts.add_host("downhost", port=free_port())
    target = parse_ssh_url("ssh://downhost/tmp")
    assert target is not None
    with pytest.raises(SshError, match="cannot connect"):
        SshPool().open(target, "true", _opts(ssh_hosts))


@pytest.mark.parametrize("rekey_limit", [None, "64M"])
def test_a_pooled_transport_carries_gigabytes_through_rekeys(rekey_limit: str | None) -> None:
    """One transport serves every connection of a gateway process, so it must carry more than
    half a gigabyte: paramiko's own rekey (after 512 MiB, with OpenSSH's default RekeyLimit
    the server would not rekey before) timed out ("Key-exchange timed out waiting for key
    negotiation"), so the server alone rekeys, as often as its RekeyLimit says."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="atrk-", dir="/tmp"))  # sun_path stays short
    server = Sshd(root, extra_config=[f"RekeyLimit {rekey_limit}"] if rekey_limit else [])
    try:
        server.start()
        server.add_host("rekeyhost")
        pool = SshPool()
        target = parse_ssh_url("ssh://rekeyhost/tmp")
        assert target is not None
        size = 256 << 20
        for _ in range(3):  # 768 MiB down: past paramiko's own 512 MiB limit
            ch = pool.open(target, f"head -c {size} /dev/zero", _opts(server))
            got = 0
            while chunk := ch.read(1 << 20):
                got += len(chunk)
            assert ch.close() == 0
            assert got == size
        ch = pool.open(target, "wc -c", _opts(server))
        block = bytes(1 << 20)
        for _ in range(256):
            ch.write(block)
        ch.channel.shutdown_write()
        answer = b""
        while chunk := ch.read():
            answer += chunk
        assert ch.close() == 0
        assert int(answer) == size
        assert len(pool._transports) == 1
        pool.close()
    finally:
        server.stop()
        import shutil

        shutil.rmtree(root, ignore_errors=True)
