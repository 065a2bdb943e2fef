"""Many real git-annex clients against one p2phttp server, killed with SIGKILL at random.

Each client (a clone of the gateway whose origin's annexUrl is the server) loops: add a file,
copy it to a target (the cluster, the proxied remote `px` or the gateway itself), drop it
locally (the target's copy is locked over HTTP: lockcontent + keeplocked), get it back, and now
and then drop it from the target (remove). Every few seconds one client's command is killed
with SIGKILL (its whole process group), mid-request or not.

Afterwards the server must still be fine: it answers checkpresent within a 2 s bound (a
liveness bound on the request, not a speed figure), its descriptor count is back at the
baseline taken after a warm-up, no lock is held and no temp file is open in any repository,
and `git annex fsck` is clean on the gateway and every node. No client command may stall (a
command still running STALL_BOUND seconds after it started counts as a hang).

Knobs: ANNEXTUI_STRESS_SECONDS / ANNEXTUI_STRESS_CLIENTS (default 20 s, 8 clients);
ANNEXTUI_STRESS_FULL=1 for the acceptance's 90 s and 20 clients. The same storm against
`git annex p2phttp` (a non-strict xfail: upstream wedges, so it can fail nothing, and its
stalls cost about 90 s of a worker) runs with ANNEXTUI_STRESS_UPSTREAM=1 or
ANNEXTUI_STRESS_FULL=1.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.support import annex as annex_support
from tests.support import leftovers, procs
from tests.support import p2phttp as H
from tests.support.annex import AnnexEnv
from tests.support.sshd import Sshd

FULL = os.environ.get("ANNEXTUI_STRESS_FULL") == "1"
UPSTREAM = FULL or os.environ.get("ANNEXTUI_STRESS_UPSTREAM") == "1"
SECONDS = float(os.environ.get("ANNEXTUI_STRESS_SECONDS", "90" if FULL else "20"))
CLIENTS = int(os.environ.get("ANNEXTUI_STRESS_CLIENTS", "20" if FULL else "8"))
KILL_EVERY = float(os.environ.get("ANNEXTUI_STRESS_KILL_EVERY", "2"))
JOBS = int(
    os.environ.get("ANNEXTUI_STRESS_JOBS", "4")
)  # fewer workers than clients: requests must queue, never wedge
STALL_BOUND = 45.0  # a client command running longer than this is hung (files are <= 2.5 MB)
LIVENESS_BOUND = 2.0  # checkpresent must answer within this after the storm
SETTLE_BOUND = 60.0  # how long fds/locks may take to come back after the clients are gone
TARGETS = ("mycluster", "px", "")  # "" = the gateway itself
REMOTE = "h"


@dataclass
class Tally:
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    killed: Counter[str] = field(default_factory=Counter)
    stalled: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)  # a few failures' stderr
    lock: threading.Lock = field(default_factory=threading.Lock)
    # set at the end of the storm, or at the first stall: the verdict is in, stop early
    stop: threading.Event = field(default_factory=threading.Event)

    def summary(self) -> str:
        return (
            f"ok {sum(self.ok.values())} {dict(self.ok)}; failed {sum(self.failed.values())} "
            f"{dict(self.failed)}; killed {sum(self.killed.values())}; stalled {self.stalled}"
            + "".join(f"\n  failed: {w}" for w in self.why)
        )


class Client:
    """One client repository and the command it is running now (killable)."""

    def __init__(self, env: AnnexEnv, repo: Path, index: int, tally: Tally, seed: int) -> None:
        self.env = env
        self.repo = repo
        self.index = index
        self.tally = tally
        self.rng = random.Random(seed)
        self.current: subprocess.Popen[bytes] | None = None
        self.killed = False
        self.guard = threading.Lock()
        self.n = 0

    def kill(self) -> bool:
        with self.guard:
            proc = self.current
            if proc is None or proc.poll() is not None:
                return False
            self.killed = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            return True

    def run(self, what: str, *args: str) -> bool:
        argv = ["git", "annex", *args]
        with self.guard:
            self.killed = False
            self.current = subprocess.Popen(
                argv,
                cwd=self.repo,
                env=self.env.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            proc = self.current
        try:
            _, err = proc.communicate(timeout=STALL_BOUND)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            with self.tally.lock:
                self.tally.stalled.append(f"client{self.index}: {' '.join(args)}")
            self.tally.stop.set()
            self.kill()
            proc.communicate()
            return False
        finally:
            with self.guard:
                self.current = None
        with self.tally.lock:
            if self.killed:
                self.tally.killed[what] += 1
            elif rc == 0:
                self.tally.ok[what] += 1
            else:
                self.tally.failed[what] += 1
                if len(self.tally.why) < 6:
                    said = " ".join(err.decode().split())[-300:]
                    self.tally.why.append(f"{' '.join(args)}: {said}")
        return rc == 0 and not self.killed

    def cycle(self, target: str | None = None) -> None:
        if target is None:
            target = self.rng.choice(TARGETS)
        remote = f"{REMOTE}-{target}" if target else REMOTE
        self.n += 1
        name = f"c{self.index}/f{self.n}.bin"
        size = self.rng.choice((1000, 40_000, 300_000, 2_500_000))
        path = self.repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.rng.randbytes(size))
        steps = [
            ("add", "add", name),
            ("copy", "copy", "--to", remote, name),
            ("drop", "drop", name),
            ("get", "get", "--from", remote, name),
        ]
        if self.rng.random() < 0.3:
            steps.append(("dropfrom", "drop", "--from", remote, name))
        for what, *args in steps:
            if self.tally.stop.is_set() or (not self.run(what, *args) and what == "add"):
                return


@pytest.fixture
def world(
    tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path, sshd: Sshd
) -> Iterator[T.Topology]:
    with annex_support.ssh_world(tmp_path_factory, "stress", git_annex_bin, sshd) as (root, env):
        yield T.build(env, sshd, root)


def _repos(topo: T.Topology) -> list[Path]:
    return [topo.gw, *topo.nodes.values(), topo.px]


def _storm(clients: list[Client], tally: Tally, seconds: float, seed: int) -> int:
    """Run every client's loop for `seconds` (less if a command stalls) while killing one at
    random every KILL_EVERY (jittered) seconds; returns the number of kills."""
    stop = tally.stop

    def loop(client: Client) -> None:
        while not stop.is_set():
            client.cycle()

    threads = [threading.Thread(target=loop, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    rng = random.Random(seed)
    kills = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        stop.wait(min(rng.uniform(0.5, 1.5) * KILL_EVERY, max(0.0, deadline - time.monotonic())))
        if time.monotonic() < deadline and rng.choice(clients).kill():
            kills += 1
    stop.set()
    for t in threads:
        t.join(timeout=STALL_BOUND * 2)
        assert not t.is_alive(), "a client loop did not finish"
    return kills


def _settled(check: object, bound: float) -> object:
    """Poll `check()` (returns a falsy value when settled) until settled or `bound` s."""
    deadline = time.monotonic() + bound
    while True:
        state = check()  # type: ignore[operator]
        if not state or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def _fd_targets(pid: int) -> list[str]:
    out = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        with contextlib.suppress(OSError):
            out.append(f"{fd}->{os.readlink(f'/proc/{pid}/fd/{fd}')}")
    return out


def _content_lock(held: leftovers.Held, server: H.P2PHttpServer) -> bool:
    """A lock on an object's `.lck` held by the server itself: a `lockcontent` whose client
    died before its `keeplocked` started; by the protocol it lasts until its 600 s expiry
    (upstream's too), so it is reported, not failed -- unless the server says it is kept."""
    return held.holder == server.pid and "/annex/objects/" in str(held.path)


def _status(server: H.P2PHttpServer) -> str:
    """`annextui p2phttp`'s own account of its connections and locks (SIGUSR1 -> stderr)."""
    before = server.stderr().count("status:")
    os.kill(server.pid, signal.SIGUSR1)
    text = _settled(lambda: server.stderr().count("status:") == before, SETTLE_BOUND)
    assert not text, "no status after SIGUSR1"
    return server.stderr().rsplit("status:", 1)[1]


def _health(
    server: H.P2PHttpServer, topo: T.Topology, baseline: list[str], kind: str, stalled: bool
) -> tuple[list[str], list[str]]:
    """What is wrong with the server and the repositories once the clients are gone, and
    what is left but allowed (unkept content locks)."""
    problems, notes = [], []
    for uuid in (T.GW, topo.cluster_uuid, T.PX):
        try:
            server.endpoint.checkpresent(uuid, "SHA256E-s1--00", T.CLIENT, timeout=LIVENESS_BOUND)
        except (OSError, http.client.HTTPException) as e:
            problems.append(f"checkpresent on {uuid} not answered within {LIVENESS_BOUND} s: {e!r}")

    def held_now() -> list[leftovers.Held]:
        return [h for h in leftovers.held_locks(_repos(topo)) if not _content_lock(h, server)]

    def extra_fds() -> list[str]:
        return [
            fd
            for fd in sorted(set(_fd_targets(server.pid)) - set(baseline))
            if not (fd.endswith(".lck") and "/annex/objects/" in fd)
        ]

    # a server already found wedged is not given time to recover: the verdict is in
    settle = 0.0 if problems or stalled else SETTLE_BOUND
    fds = _settled(extra_fds, settle)
    if fds:
        problems.append(f"{len(baseline)} fds after warm-up; {settle:.0f} s later also {fds}")
    held = _settled(held_now, settle)
    problems += [f"still held: {h}" for h in held or []]  # type: ignore[attr-defined]
    unkept = [h for h in leftovers.held_locks(_repos(topo)) if _content_lock(h, server)]
    notes += [f"content lock awaiting its 600 s expiry: {h.path.name}" for h in unkept]
    tmp_roots = [r / "annex" / "tmp" for r in _repos(topo)]
    problems += [f"still open: {h}" for h in leftovers.open_below(server.tree(), tmp_roots)]
    if kind == "annextui":
        status = _status(server)
        notes.append(f"status:{status.strip()}")
        if "(kept)" in status:
            problems.append(f"a keeplocked lock outlived its client: {status}")
        if not status.lstrip().startswith("0 connections"):
            problems.append(f"connections left open: {status}")
        # every content lock the server holds must be one it knows it holds
        listed = int(status.split(" locks", 1)[0].rsplit(" ", 1)[1])
        if len(unkept) > listed:
            problems.append(f"{len(unkept)} object locks held, {listed} in the status: {status}")
    return problems, notes


def _fsck(topo: T.Topology) -> list[str]:
    """git-annex's own judgement: every copy there is is intact and where the logs say.
    `--copies=1` leaves out keys a client added, stored and dropped again (the gateway never
    sees the client's own copy, so `fsck --all` would call them lost); `--in=here` adds any
    content present that no log mentions."""
    env = topo.env
    runs: list[tuple[Path, tuple[str, ...]]] = [
        (repo, ("--all", "--copies=1")) for repo in _repos(topo)
    ]
    runs += [(repo, ("--all", "--in=here")) for repo in _repos(topo)]
    runs += [
        (topo.gw, ("--fast", "--all", "--copies=1", "--from", node))
        for node in ("node1", "node2", "node3", "px")
    ]
    problems = []
    for repo, args in runs:
        done = env.annex(repo, "fsck", "--quiet", *args, check=False)
        if done.returncode != 0:
            problems.append(f"fsck {' '.join(args)} in {repo.name}: {done.stderr.strip()[-800:]}")
    return problems


UPSTREAM_HANGS = (
    "git annex p2phttp 10.20261026 wedges: 8 clients, 20 s, 10 kills -> 88 commands ok, 7+ "
    "stalled > 45 s (copy to the cluster, px and the gateway, get); with no kill at all 9 "
    "stalled at -J4 and checkpresent went unanswered for 2 s; at -J16 every client's "
    "`copy --to h-mycluster` stalled; bench_p2phttp saw one sequential 100 x 4 KiB copy to "
    "the cluster hang > 120 s"
)


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            "git-annex",
            marks=[
                pytest.mark.skipif(not UPSTREAM, reason="set ANNEXTUI_STRESS_UPSTREAM=1"),
                pytest.mark.xfail(strict=False, reason=UPSTREAM_HANGS),
            ],
        ),
        "annextui",
    ],
)
def test_clients_killed_at_random_leave_the_server_healthy(world: T.Topology, kind: str) -> None:
    topo, env = world, world.env
    if not H.implemented(kind, env.env):
        pytest.skip(f"{' '.join(H.SERVERS[kind])} is not in this checkout")
    server = H.P2PHttpServer(kind, topo.gw, dict(env.env), ("--wideopen", f"-J{JOBS}"))
    server.start()
    tally = Tally()
    notes: list[str] = []
    try:
        clients = [
            Client(
                env,
                H.clone_client(
                    env,
                    topo.gw,
                    topo.root / f"client{i}",
                    REMOTE,
                    server.url,
                    uuid=f"c11e0000-0000-4000-8000-{i + 100:012d}",
                ),
                i,
                tally,
                seed=i,
            )
            for i in range(CLIENTS)
        ]
        # warm-up: a cycle per target and per node opens what the server keeps open when idle
        # (its connection to each node: the ssh node's transport is one)
        for target in (*TARGETS, "node1", "node2", "node3"):
            clients[0].cycle(target)
        warm = tally.failed + Counter(tally.stalled)
        assert not warm, (tally.summary(), server.stderr())
        baseline = _fd_targets(server.pid)

        kills = _storm(clients, tally, SECONDS, seed=CLIENTS)
        for client in clients:
            client.kill()
        report = f"{kind}: {CLIENTS} clients, {SECONDS:.0f} s, {kills} kills; {tally.summary()}"
        print(report)
        problems = [f"stalled: {c}" for c in tally.stalled]
        found, notes = _health(server, topo, baseline, kind, bool(tally.stalled))
        problems += found
        if not problems:
            # a new client still gets full service after the storm
            after = H.clone_client(
                env, topo.gw, topo.root / "after", REMOTE, server.url, uuid=T.CLIENT2
            )
            env.add_files(after, {"after.txt": "after the storm\n"})
            env.annex(after, "copy", "--to", f"{REMOTE}-mycluster", "after.txt")
            env.annex(after, "drop", "after.txt")
            env.annex(after, "get", "--from", f"{REMOTE}-mycluster", "after.txt")
    finally:
        for client_dir in topo.root.glob("client*"):
            procs.kill_pids(p.pid for p in procs.mentioning(str(client_dir)))
        server.stop()
    problems += _fsck(topo)
    partial = {r.name: len(leftovers.temp_files(r)) for r in _repos(topo)}
    stale = {r.name: len(leftovers.transfer_records(r)) for r in _repos(topo)}
    print(f"{kind}: partial bodies kept for resume {partial}; unlocked transfer records {stale}")
    print(f"{kind}: " + "\n".join(notes))
    assert not problems, report + "\n" + "\n".join(problems)
