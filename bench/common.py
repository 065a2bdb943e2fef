"""Shared helpers for the benchmarks: a clean git environment, timing, and fast repository builds.

`build_sized_repo` makes a real git-annex repository (initialised by git-annex itself) and then
writes N location logs straight into its `git-annex` branch with one `git fast-import` stream,
so a million-key branch takes seconds instead of a million git-annex calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from tests.support.annex import AnnexEnv
    from tests.support.sshd import Sshd

BASE_CLOCK = 1_700_000_000
HERE_UUID = "00000000-1111-4000-8000-000000000000"
_M = TypeVar("_M", bound="Transfer")


def bench_env(home: Path) -> dict[str, str]:
    """Environment for git and git-annex: fixed identity, private HOME, fixed vector clock."""
    env = dict(os.environ)
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
        GIT_ANNEX_VECTOR_CLOCK=str(BASE_CLOCK + 5_000_000),
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def bench_world(prefix: str) -> tuple[Path, Sshd, AnnexEnv] | None:
    """A temp dir under /tmp, an sshd (not started) and a git-annex environment in it (the
    binary linked directly, ssh caching on); None without git-annex or sshd."""
    # imported here: the benches that need no world (and no tests/ on sys.path) stay as they are
    from tests.support import annex as annex_support
    from tests.support.annex import AnnexEnv
    from tests.support.sshd import Sshd

    exe = annex_support.find_git_annex()
    if exe is None or not os.path.exists("/usr/sbin/sshd"):
        return None
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    fast = annex_support.make_fast_bin(tmp / "annexbin", exe)
    sshd = Sshd(tmp / "ssh", server_path=annex_support.default_path([fast]))
    env = AnnexEnv.create(
        tmp / "w", bin_dir=fast, magic=annex_support.magic_db(exe), sshcaching=True
    )
    return tmp, sshd, env


@contextlib.contextmanager
def started_world(prefix: str, *, keep: bool = False) -> Iterator[tuple[Path, Sshd, AnnexEnv]]:
    """`bench_world` with its sshd started and used; afterwards the environment is cleaned up,
    the sshd stopped and the temp dir removed (unless `keep`). Without git-annex or sshd, a
    message and exit status 2."""
    world = bench_world(prefix)
    if world is None:
        print("needs git-annex and /usr/sbin/sshd", file=sys.stderr)
        raise SystemExit(2)
    tmp, sshd, env = world
    try:
        sshd.start()
        env.use_ssh(sshd)
        yield tmp, sshd, env
    finally:
        env.cleanup()
        sshd.stop()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat: user, nice,
    system, irq, softirq, steal) since boot."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    ticks = [int(x) for x in fields]
    busy = (
        ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + (ticks[7] if len(ticks) > 7 else 0)
    )
    return busy / os.sysconf("SC_CLK_TCK")


def run(cmd: list[str], *, cwd: Path, env: Mapping[str, str], input_: bytes | None = None) -> bytes:
    proc = subprocess.run(cmd, cwd=cwd, env=env, input=input_, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc.stdout


def repo_uuid(i: int) -> str:
    return f"{i:08x}-2222-4000-8000-{i:012x}"


def hashdir_lower(key: str) -> str:
    h = hashlib.md5(key.encode()).hexdigest()
    return f"{h[:3]}/{h[3:6]}/"


@dataclass
class SizedRepo:
    path: Path
    env: dict[str, str]
    uuids: list[str]
    keys: list[str] = field(default_factory=list)
    head: str = ""


def _key(rng: random.Random, i: int) -> str:
    size = rng.choice((0, rng.randrange(1, 10_000), rng.randrange(10_000, 10**9)))
    digest = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
    return f"SHA256E-s{size}--{digest}.bin"


def _location_log(rng: random.Random, uuids: list[str], clock: int) -> bytes:
    """1-3 holders; some removals and superseded lines so resolution matters."""
    lines = []
    for u in rng.sample(uuids, rng.choice((1, 1, 2, 2, 3))):
        r = rng.random()
        if r < 0.1:
            lines.append(f"{clock}s 1 {u}\n{clock + 7}s 0 {u}\n")  # later removal wins
        elif r < 0.15:
            lines.append(f"{clock + 3}s 1 {u}\n{clock}s 0 {u}\n")  # older removal loses
        else:
            lines.append(f"{clock}s 1 {u}\n")
    return "".join(lines).encode()


def _data(payload: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(payload), payload)


def fast_import_commit(
    repo: SizedRepo,
    files: Iterator[tuple[str, bytes]],
    message: str,
    *,
    parent: str,
) -> str:
    """One commit on refs/heads/git-annex with `files` changed, written by git fast-import."""
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done", "--force"],
        cwd=repo.path,
        env=repo.env,
        stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None
    w = proc.stdin
    msg = message.encode()
    when = f"{BASE_CLOCK} +0000".encode()
    w.write(b"commit refs/heads/git-annex\n")
    w.write(b"committer bench <bench@example.com> " + when + b"\n")
    w.write(_data(msg))
    w.write(b"from " + parent.encode() + b"\n")
    chunk: list[bytes] = []
    for path, content in files:
        chunk.append(b"M 100644 inline " + path.encode() + b"\n" + _data(content))
        if len(chunk) >= 4096:
            w.write(b"".join(chunk))
            chunk.clear()
    w.write(b"".join(chunk))
    w.write(b"done\n")
    w.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    return (
        run(["git", "rev-parse", "refs/heads/git-annex"], cwd=repo.path, env=repo.env)
        .decode()
        .strip()
    )


def build_sized_repo(
    path: Path, n_keys: int, *, n_repos: int = 20, seed: int = 1, home: Path | None = None
) -> SizedRepo:
    """A git-annex repo whose branch holds `n_keys` location logs over `n_repos` repositories."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    env = bench_env(home or path.parent / "home")
    run(["git", "init", "-q", "-b", "main"], cwd=path, env=env)
    run(["git", "config", "annex.uuid", HERE_UUID], cwd=path, env=env)
    run(["git", "annex", "init", "-q", "bench here"], cwd=path, env=env)
    uuids = [repo_uuid(i + 1) for i in range(n_repos)]
    repo = SizedRepo(path, env, [HERE_UUID, *uuids])
    rng = random.Random(seed)
    here_line = run(["git", "show", "git-annex:uuid.log"], cwd=path, env=env)
    uuid_log = (
        here_line
        + "".join(
            f"{u} node{i + 1} timestamp={BASE_CLOCK}s\n" for i, u in enumerate(uuids)
        ).encode()
    )
    maxsize_log = "".join(
        f"{BASE_CLOCK}s {u} {(i + 1) * 10**12}\n" for i, u in enumerate(uuids) if i % 3 == 0
    ).encode()
    trust_log = f"{uuids[-1]} X timestamp={BASE_CLOCK}s\n".encode()  # one dead repo
    group_log = "".join(
        f"{u} nodes timestamp={BASE_CLOCK}s\n" for u in uuids[: n_repos // 2]
    ).encode()
    keys = repo.keys

    def files() -> Iterator[tuple[str, bytes]]:
        yield "uuid.log", uuid_log
        yield "maxsize.log", maxsize_log
        yield "trust.log", trust_log
        yield "group.log", group_log
        for i in range(n_keys):
            k = _key(rng, i)
            keys.append(k)
            yield hashdir_lower(k) + k + ".log", _location_log(rng, repo.uuids, BASE_CLOCK + i)

    parent = run(["git", "rev-parse", "refs/heads/git-annex"], cwd=path, env=env).decode().strip()
    repo.head = fast_import_commit(repo, files(), "bench: location logs", parent=parent)
    return repo


def change_keys(repo: SizedRepo, n: int, *, seed: int = 2) -> str:
    """One commit that rewrites the location logs of `n` random keys."""
    rng = random.Random(seed)
    chosen = rng.sample(repo.keys, min(n, len(repo.keys)))
    clock = BASE_CLOCK + 10_000_000

    def files() -> Iterator[tuple[str, bytes]]:
        for k in chosen:
            yield hashdir_lower(k) + k + ".log", _location_log(rng, repo.uuids, clock)

    repo.head = fast_import_commit(repo, files(), "bench: change keys", parent=repo.head)
    return repo.head


@dataclass
class Timed:
    seconds: float
    max_rss_kib: int
    stdout: bytes
    cpu_seconds: float = 0.0  # user + system time of the whole process tree


def timed_child(cmd: list[str], *, cwd: Path, env: Mapping[str, str]) -> Timed:
    """Run a command; wall time and the peak RSS of the largest child process it created.

    `RUSAGE_CHILDREN` reports the maximum over all waited-for descendants, so each measurement
    runs in a fresh intermediate Python process that only spawns this one command.
    """
    helper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "dt = time.perf_counter() - t\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "sys.stderr.buffer.write(p.stderr)\n"
        "cpu = ru.ru_utime + ru.ru_stime\n"
        "out = json.dumps([dt, ru.ru_maxrss, p.returncode, cpu]).encode()\n"
        "sys.stdout.buffer.write(out + b'\\n')\n"
        "sys.stdout.buffer.write(p.stdout)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", helper, *cmd], cwd=cwd, env=env, capture_output=True
    )
    head, _, out = proc.stdout.partition(b"\n")
    import json

    dt, rss, rc, cpu = json.loads(head)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}): {proc.stderr.decode()[-2000:]}")
    return Timed(dt, rss, out, cpu)


def self_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def stopwatch() -> float:
    return time.perf_counter()


def write_files(repo: Path, sub: str, count: int, size: int) -> None:
    """`count` files of `size` bytes in REPO/SUB (f0000.bin …), each with its own content: a
    16-byte head on a shared 1 MiB block, written without holding a file in memory. The bytes
    are pseudo-random from a seed made of (sub, count, size), so every run of a bench has the
    same keys: a cluster places them by their key (balanced preferred content), and with a
    few big files the share that lands on the ssh node would otherwise change from run to run
    (8 files: anywhere from none to all), and a run's ratios with it."""
    d = repo / sub
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{sub}:{count}:{size}")
    block = rng.randbytes(1 << 20)
    for i in range(count):
        with open(d / f"f{i:04d}.bin", "wb") as fh:
            head = rng.randbytes(16)[:size]
            fh.write(head)
            left = size - len(head)
            while left > 0:
                n = min(left, len(block))
                fh.write(block[:n])
                left -= n


SHELLS = {"ours": "annextui-shell", "theirs": "git-annex-shell"}


@dataclass
class Transfer:
    """One timed client command of a shell bench: a case (big/small), a direction, a shell."""

    case: str
    direction: str
    shell: str
    seconds: float
    bytes: int
    files: int

    @property
    def mib_per_s(self) -> float:
        return self.bytes / self.seconds / (1 << 20)


def best_and_median(
    results: Iterable[_M],
) -> tuple[dict[tuple[str, str, str], _M], dict[tuple[str, str, str], float]]:
    """Per (case, direction, shell): the fastest run, and the median seconds of all runs."""
    best: dict[tuple[str, str, str], _M] = {}
    runs: dict[tuple[str, str, str], list[float]] = {}
    for m in results:
        k = (m.case, m.direction, m.shell)
        if k not in best or m.seconds < best[k].seconds:
            best[k] = m
        runs.setdefault(k, []).append(m.seconds)
    return best, {k: statistics.median(v) for k, v in runs.items()}


@dataclass
class Row(Generic[_M]):
    """One line of a shell bench's table: a shell's best run and median, and theirs."""

    case: str
    direction: str
    shell: str
    best: _M
    median: float
    theirs_best: _M | None
    theirs_median: float


def table_rows(
    results: Sequence[_M], directions: Sequence[str], shells: Sequence[str] = ("ours", "theirs")
) -> Iterator[Row[_M]]:
    """The rows of a shell bench's table: big then small, `directions` in order, `shells` in
    order (each compared with "theirs")."""
    best, median = best_and_median(results)
    for case in ("big", "small"):
        for direction in directions:
            theirs = best.get((case, direction, "theirs"))
            theirs_med = median.get((case, direction, "theirs"), math.nan)
            for shell in shells:
                m = best.get((case, direction, shell))
                if m is not None:
                    med = median[(case, direction, shell)]
                    yield Row(case, direction, shell, m, med, theirs, theirs_med)


def time_to_auth(
    programs: Mapping[str, str], repo: Path, client_uuid: str, runs: int, env: Mapping[str, str]
) -> list[tuple[str, float]]:
    """Each program started `runs` times as `PROGRAM p2pstdio REPO CLIENT` (no ssh), in
    alternating order, timed from spawn to its `AUTH-SUCCESS` line: (name, seconds) each."""
    out: list[tuple[str, float]] = []
    for rnd in range(runs):
        order = list(programs) if rnd % 2 == 0 else list(reversed(list(programs)))
        for name in order:
            t = time.perf_counter()
            proc = subprocess.Popen(
                [programs[name], "p2pstdio", str(repo), client_uuid],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=dict(env),
            )
            assert proc.stdout is not None
            assert proc.stdin is not None
            line = proc.stdout.readline()
            took = time.perf_counter() - t
            proc.stdin.close()
            proc.wait(timeout=30)
            if not line.startswith(b"AUTH-SUCCESS "):
                raise RuntimeError(f"{name} did not greet: {line!r}")
            out.append((name, took))
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of these processes so far, their reaped children included
    (/proc/PID/stat); a process that is gone counts nothing."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / tick


class OwnCpu:
    """CPU seconds of the bench's own process trees, read before and after a timed command.

    Counted: the bench's reaped children (the client's git-annex and all it runs) and the
    long-running servers it started (`servers()`: an sshd, whose reaped sessions, gateway shells
    and nodes' git-annex-shell included, add to its cutime/cstime; a relay server). The bench is
    made a child subreaper, so the ssh ControlMasters git-annex detaches are reparented to it and
    counted when reaped instead of vanishing from the account. What the whole machine was busy
    beyond this is other people's load, which moves a run's wall figures on a shared machine."""

    def __init__(self, servers: Callable[[], Iterable[int]]) -> None:
        self.servers = servers
        if sys.platform == "linux":
            import ctypes

            pr_set_child_subreaper = 36
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)

    def now(self) -> float:
        _reap_orphans()
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime + cpu_seconds(self.servers())


def _reap_orphans() -> None:
    """Reap exited children nobody waits for (orphans reparented to the subreaper). Called
    between commands; a Popen reaped here reads exit status 0 (subprocess handles ECHILD)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
