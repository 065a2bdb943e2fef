"""A node's bytes through paramiko: annextui's buffers against paramiko's own, and OpenSSH.

What a GET body from an ssh node costs the gateway before the protocol sees it: one file of
`--mib` MiB read by `cat` on a private sshd (tests/support/sshd.py, 127.0.0.1), side by side
in one run, variants alternating each round:

- `ours`: annextui's SshPool as the shell uses it (sshbuffers.py: BufferedSocket, ChunkPipe),
  reads of 1 MiB (remote.READ_SIZE);
- `paramiko`: the same pool and transport settings with paramiko's own socket reads and
  channel buffer (sshbuffers' two pieces switched off for a pool of its own);
- `ssh` / `ssh-gcm`: OpenSSH's client, its default cipher (chacha20-poly1305) and AES-GCM
  (what paramiko negotiates here), output to /dev/null.

Reported per variant, median of the rounds: wall, the reading process's CPU (ours and paramiko:
this process, the transport thread included; ssh: the child), the whole machine's busy CPU
(the sshd's share included), throughput.

    python bench/bench_paramiko.py [--mib 256] [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annextui.proxycore import sshbuffers
from annextui.proxycore.remote import READ_SIZE
from annextui.proxycore.ssh import SshOptions, SshPool, parse_ssh_url
from tests.support.sshd import Sshd


def machine_busy_seconds() -> float:
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Result:
    def __init__(self, wall: float, cpu: float, machine: float, size: int) -> None:
        self.wall, self.cpu, self.machine, self.size = wall, cpu, machine, size


def through_pool(pool: SshPool, opts: SshOptions, path: Path, size: int) -> Result:
    target = parse_ssh_url("ssh://benchhost/tmp")
    assert target is not None
    m0, c0, t0 = machine_busy_seconds(), cpu_self(), time.perf_counter()
    ch = pool.open(target, f"cat {path}", opts)
    got = 0
    while chunk := ch.read(READ_SIZE):
        got += len(chunk)
    status = ch.close()
    wall = time.perf_counter() - t0
    if status != 0 or got != size:
        raise SystemExit(f"cat over ssh: status {status}, {got} of {size} bytes")
    return Result(wall, cpu_self() - c0, machine_busy_seconds() - m0, got)


def through_openssh(config: Path, path: Path, size: int, cipher: str | None) -> Result:
    argv = ["ssh", "-F", str(config), *(["-c", cipher] if cipher else []), "benchhost"]
    m0, c0, t0 = machine_busy_seconds(), cpu_children(), time.perf_counter()
    subprocess.run([*argv, f"cat {path}"], stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    return Result(wall, cpu_children() - c0, machine_busy_seconds() - m0, size)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="bpmk-", dir="/tmp"))
    sshd = Sshd(root)
    sshd.start()
    try:
        sshd.add_host("benchhost")
        os.environ.update(sshd.env())
        for var in ("GIT_SSH", "GIT_SSH_COMMAND"):
            os.environ.pop(var, None)  # paramiko, as the shell uses it
        path = root / "content"
        block = os.urandom(1 << 20)
        with open(path, "wb") as f:
            for _ in range(args.mib):
                f.write(block)
        size = args.mib << 20
        opts = SshOptions.parse(f"-F {sshd.config_path}")

        ours = SshPool()
        theirs = SshPool()
        buffered_socket, install = sshbuffers.BufferedSocket, sshbuffers.install_chunk_pipe

        def paramiko_own() -> Result:
            # ssh.py takes both names from sshbuffers at each connection and channel
            sshbuffers.BufferedSocket = lambda sock, size=0: sock  # type: ignore[assignment,misc,return-value]
            sshbuffers.install_chunk_pipe = lambda channel: None
            try:
                return through_pool(theirs, opts, path, size)
            finally:
                sshbuffers.BufferedSocket = buffered_socket  # type: ignore[misc]
                sshbuffers.install_chunk_pipe = install

        variants: dict[str, Callable[[], Result]] = {
            "ours": lambda: through_pool(ours, opts, path, size),
            "paramiko": paramiko_own,
            "ssh": lambda: through_openssh(sshd.config_path, path, size, None),
            "ssh-gcm": lambda: through_openssh(
                sshd.config_path, path, size, "aes128-gcm@openssh.com"
            ),
        }
        for fn in variants.values():  # untimed: connections made, caches warm
            fn()
        results: dict[str, list[Result]] = {name: [] for name in variants}
        for rnd in range(args.rounds):
            order = list(variants) if rnd % 2 == 0 else list(reversed(variants))
            for name in order:
                results[name].append(variants[name]())
        ours.close()
        theirs.close()
    finally:
        sshd.stop()

    print(
        f"{args.mib} MiB from an sshd's cat, median of {args.rounds} rounds (load "
        f"{os.getloadavg()[0]:.1f})"
    )
    print(f"{'variant':<10} {'wall s':>7} {'CPU s':>7} {'machine s':>10} {'MiB/s':>7}")
    record = {}
    for name, rows in results.items():
        wall = statistics.median(r.wall for r in rows)
        cpu = statistics.median(r.cpu for r in rows)
        machine = statistics.median(r.machine for r in rows)
        record[name] = {"wall": wall, "cpu": cpu, "machine": machine, "mib": args.mib}
        print(f"{name:<10} {wall:7.2f} {cpu:7.2f} {machine:10.2f} {args.mib / wall:7.0f}")
    print(
        "CPU s: the reading process (ours, paramiko: this process with paramiko's transport "
        "thread; ssh: the ssh client); machine s: all busy CPU, the sshd's included"
    )
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
