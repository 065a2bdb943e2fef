"""One ssh hop: annextui's paramiko transport against the system's OpenSSH client, big
transfers both ways, side by side.

A private sshd on 127.0.0.1 (tests/support/sshd.py) runs `cat > /dev/null` (upload) and
`head -c N /dev/zero` (download). paramiko is measured in-process, as the gateway uses it (one
pooled transport, a channel per transfer); OpenSSH as `ssh -F cfg host CMD` with the data on
its stdin/stdout, once with the cipher paramiko negotiated (AES-GCM) and once with OpenSSH's
default. The goal is paramiko at 90 % or more of OpenSSH with the same cipher.

`paramiko-own` is the same pool with paramiko's own receive buffers (sshbuffers.py's
BufferedSocket and ChunkPipe switched off for a pool of its own): what they save. Each
transfer's CPU is reported too: the client's (paramiko: this process, its transport thread
included; OpenSSH: the ssh process) and the whole machine's (the sshd's share included).

    python bench/bench_ssh.py --mib 256 --rounds 3 [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annextui.proxycore import sshbuffers
from annextui.proxycore.ssh import SshOptions, SshPool, SshTarget
from bench.common import Transfer, machine_busy_seconds
from tests.support.sshd import Sshd

CHUNK = 1 << 20
GCM = "aes128-gcm@openssh.com"
# (direction, client) -> (client CPU s, machine busy CPU s) of each transfer
CPU: dict[tuple[str, str], list[tuple[float, float]]] = {}


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


@contextlib.contextmanager
def counted(direction: str, client: str, who: int) -> Iterator[None]:
    cpu, machine = _cpu(who), machine_busy_seconds()
    yield
    CPU.setdefault((direction, client), []).append(
        (_cpu(who) - cpu, machine_busy_seconds() - machine)
    )


@contextlib.contextmanager
def paramikos_own_buffers() -> Iterator[None]:
    """ssh.py takes both from sshbuffers at each connection and channel: off while inside."""
    buffered_socket, install = sshbuffers.BufferedSocket, sshbuffers.install_chunk_pipe
    sshbuffers.BufferedSocket = lambda sock, size=0: sock  # type: ignore[assignment,misc,return-value]
    sshbuffers.install_chunk_pipe = lambda channel: None
    try:
        yield
    finally:
        sshbuffers.BufferedSocket = buffered_socket  # type: ignore[misc]
        sshbuffers.install_chunk_pipe = install


def _paramiko(pool: SshPool, opts: SshOptions, direction: str, size: int) -> float:
    target = SshTarget("benchhost", "/")
    block = os.urandom(CHUNK)
    start = time.perf_counter()
    if direction == "upload":
        ch = pool.open(target, "cat > /dev/null", opts)
        left = size
        while left > 0:
            n = min(left, CHUNK)
            ch.write(block[:n])
            left -= n
        status = ch.close()
    else:
        ch = pool.open(target, f"head -c {size} /dev/zero", opts)
        got = 0
        while chunk := ch.channel.recv(CHUNK):
            got += len(chunk)
        status = ch.close()
        assert got == size, (got, size)
    assert status == 0
    return time.perf_counter() - start


def _openssh(sshd: Sshd, direction: str, size: int, data: Path, cipher: str | None) -> float:
    argv = [sshd.real_ssh, "-F", str(sshd.config_path)]
    if cipher:
        argv += ["-c", cipher]
    argv.append("benchhost")
    start = time.perf_counter()
    if direction == "upload":
        with data.open("rb") as f:
            subprocess.run([*argv, "cat > /dev/null"], stdin=f, check=True)
    else:
        res = subprocess.run(
            [*argv, f"head -c {size} /dev/zero"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            check=True,
        )
        assert len(res.stdout) == size
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mib", type=int, default=256, help="bytes per transfer, in MiB")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if shutil.which("ssh") is None or not Path("/usr/sbin/sshd").exists():
        print("needs OpenSSH (ssh and /usr/sbin/sshd)", file=sys.stderr)
        return 2
    size = args.mib << 20
    tmp = Path(tempfile.mkdtemp(prefix="bssh-", dir="/tmp"))
    sshd = Sshd(tmp / "ssh")
    runs: list[Transfer] = []
    try:
        sshd.start()
        sshd.add_host("benchhost")
        data = tmp / "data"
        with data.open("wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(CHUNK))
        opts = SshOptions(("-F", str(sshd.config_path)))
        pool = SshPool()
        own = SshPool()
        _paramiko(pool, opts, "download", CHUNK)  # the transport, made once (as in the gateway)
        with paramikos_own_buffers():
            _paramiko(own, opts, "download", CHUNK)
        (transport,) = pool._transports.values()
        cipher = str(getattr(transport, "remote_cipher", "?"))  # not in the type stubs
        self_, children = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
        for _ in range(args.rounds):
            for direction in ("upload", "download"):
                with counted(direction, "paramiko", self_):
                    seconds = _paramiko(pool, opts, direction, size)
                runs.append(Transfer("big", direction, "paramiko", seconds, size, 1))
                with paramikos_own_buffers(), counted(direction, "paramiko-own", self_):
                    seconds = _paramiko(own, opts, direction, size)
                runs.append(Transfer("big", direction, "paramiko-own", seconds, size, 1))
                for name, c in ((f"openssh {GCM}", GCM), ("openssh default", None)):
                    with counted(direction, name, children):
                        seconds = _openssh(sshd, direction, size, data, c)
                    runs.append(Transfer("big", direction, name, seconds, size, 1))
        pool.close()
        own.close()
    finally:
        sshd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(report(runs, cipher, args.mib))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=1))
    return 0


def report(runs: list[Transfer], cipher: str, mib: int) -> str:
    load = os.getloadavg()[0]
    lines = [
        f"one ssh hop, {mib} MiB per transfer; paramiko cipher {cipher}; load average {load:.1f}",
        f"{'direction':<10} {'client':<32} {'best MiB/s':>10} {'median':>8} {'vs OpenSSH-GCM':>15}"
        f" {'CPU s':>6} {'machine s':>9}",
    ]
    for direction in ("upload", "download"):
        by: dict[str, list[Transfer]] = {}
        for r in runs:
            if r.direction == direction:
                by.setdefault(r.shell, []).append(r)
        ref = max(r.mib_per_s for r in by[f"openssh {GCM}"])
        for client, rs in by.items():
            best = max(r.mib_per_s for r in rs)
            med = statistics.median(r.mib_per_s for r in rs)
            cpu = statistics.median(c for c, _ in CPU[(direction, client)])
            machine = statistics.median(m for _, m in CPU[(direction, client)])
            lines.append(
                f"{direction:<10} {client:<32} {best:>10.1f} {med:>8.1f} {best / ref:>14.0%}"
                f" {cpu:6.2f} {machine:9.2f}"
            )
    lines.append(
        "CPU s: the client's (paramiko: this process, transport thread included; openssh: the "
        "ssh process), median; machine s: all busy CPU during the transfer, the sshd's included"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
