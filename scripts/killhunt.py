#!/usr/bin/env python3
"""Hunt for lost or phantom location lines left when a process dies mid-operation.

A random fault hunt, not a CI test. It builds the cluster topology of tests/gateway/topology.py
(client ──ssh──▶ gateway shell ──▶ node1, node2 local, node3 over ssh with the real
git-annex-shell) with the real git-annex everywhere, then loops over a cycle of client
operations through the gateway:

    copy --to origin-mycluster, drop --from origin-mycluster, move --to origin-node2,
    get --from origin-mycluster, drop --from origin-node2

Each operation is started, and after a random delay one process is SIGKILLed: the gateway's
shell (`gw`), the client's git-annex (`client`), or node3's git-annex-shell (`node`). The same
operation is then re-run to completion (a failure there is a class (c) finding: something left
behind blocks it) and every repository is judged against the objects on its disk:

    (a) phantom: a repository's branch says a repository holds a key whose object is absent
    (b) missing: an object is on disk but its own repository's branch does not say so
    (c) blocking leftover: the re-run fails, or a lock is still held once everything ended
    (d) half-written: a journal file that is empty or does not end in a newline

Views judged: each repository's own claim about itself, the gateway's claims about its nodes,
the client's claims (after fetching the gateway's branch). Then `git annex fsck --fast --all`
runs in every repository (it corrects its own log), so findings do not cascade; client and
gateway claims about other repositories are only reported when new.

    python scripts/killhunt.py [--kills 30] [--seed 1] [--shell ours|upstream]
                               [--node-shell ours|upstream] [--json out]

`--shell upstream` puts git-annex-shell on the gateway, `--node-shell ours` annextui-shell on
node3: the same hunt judges upstream and us in either place.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.gateway import topology as T  # noqa: E402
from tests.support import annex as annex_support  # noqa: E402
from tests.support import leftovers, procs  # noqa: E402
from tests.support.annex import AnnexEnv  # noqa: E402
from tests.support.sshd import Sshd  # noqa: E402

OPS: list[tuple[str, list[str]]] = [
    ("copy-to-cluster", ["copy", "--to", "origin-mycluster", "."]),
    ("drop-from-cluster", ["drop", "--from", "origin-mycluster", "."]),
    ("move-to-node2", ["move", "--to", "origin-node2", "."]),
    ("get-from-cluster", ["get", "--from", "origin-mycluster", "."]),
    ("drop-from-node2", ["drop", "--from", "origin-node2", "."]),
]
TARGETS = ("gw", "client", "node")
_PRESENCE_LINE = re.compile(rb"^[0-9]+(\.[0-9]+)?s [01X] \S+$")


@dataclass(frozen=True)
class Finding:
    kill: int
    op: str
    target: str
    cls: str  # a, b, c, d
    repo: str  # whose branch or which repository
    key: str
    detail: str


@dataclass
class Kill:
    n: int
    op: str
    target: str
    delay: float
    killed: list[str]  # what was killed (empty: the operation ended first, or no process)
    rerun_ok: bool


def objects(repo: Path) -> set[str]:
    """Keys whose object file is in the repository's store."""
    base = repo / ".git" / "annex" / "objects"
    if not base.is_dir():
        base = repo / "annex" / "objects"
    out = set()
    for dirpath, _dirs, names in os.walk(base):
        for name in names:
            if name == os.path.basename(dirpath):
                out.add(name)
    return out


def claims(env: AnnexEnv, repo: Path) -> dict[str, set[str]]:
    """Key -> UUIDs the repository's branch (journal included) says hold it."""
    out: dict[str, set[str]] = {}
    for rec in env.annex_json(repo, "whereis", "--all", check=False):
        out[rec["key"]] = {w["uuid"] for w in rec.get("whereis", [])}
    return out


def half_written(repo: Path) -> list[str]:
    """Journal files that are empty, unterminated, or (location logs) hold a malformed line."""
    base = repo / ".git" / "annex" if (repo / ".git").is_dir() else repo / "annex"
    bad = []
    for jdir in (base / "journal", base / "journal-private"):
        if not jdir.is_dir():
            continue
        for f in jdir.iterdir():
            data = f.read_bytes()
            if not data or not data.endswith(b"\n"):
                bad.append(f"{f.name}: {'empty' if not data else 'unterminated'}")
            elif f.name.endswith(".log") and "_" in f.name and not f.name.endswith("uuid.log"):
                lines = data.splitlines()
                if any(not _PRESENCE_LINE.match(ln) for ln in lines):
                    bad.append(f"{f.name}: malformed line")
    return bad


class Judge:
    """Every repository's logs against the objects on disk; findings reported once each (per
    cluster: `epoch` changes when a fresh cluster is built)."""

    def __init__(self, env: AnnexEnv, repos: dict[str, Path], uuids: dict[str, str]) -> None:
        self.env = env
        self.repos = repos
        self.uuids = uuids
        self.epoch = 0
        self.findings: list[Finding] = []
        self.seen: set[tuple[int, str, str, str, str]] = set()
        self.kills: list[Kill] = []

    def _note(self, k: Kill, cls: str, repo: str, key: str, detail: str) -> None:
        ident = (self.epoch, cls, repo, key, detail)
        if ident in self.seen:
            return
        self.seen.add(ident)
        f = Finding(k.n, k.op, k.target, cls, repo, key, detail)
        self.findings.append(f)
        print(f"  FINDING {f}", file=sys.stderr)

    def record(self, k: Kill) -> None:
        """Keep the kill, say it, judge what it left."""
        self.kills.append(k)
        print(
            f"kill {k.n:3d} {k.op:<18} {k.target:<8} after {k.delay:5.2f}s "
            f"{'killed' if k.killed else 'missed'} rerun={'ok' if k.rerun_ok else 'FAILED'}",
            file=sys.stderr,
        )
        self.judge(k)

    def judge(self, k: Kill) -> None:
        env, uuids = self.env, self.uuids
        disk = {name: objects(path) for name, path in self.repos.items()}
        name_of = {uuids[n]: n for n in self.repos}
        for name, path in self.repos.items():
            view = claims(env, path)
            for key, holders in view.items():
                for u in holders & set(name_of):
                    other = name_of[u]
                    if key not in disk[other]:
                        whose = "own" if other == name else f"{name}'s view of {other}"
                        self._note(k, "a", name, key, f"phantom in {whose} log")
            for key in disk[name]:
                if uuids[name] not in view.get(key, set()):
                    self._note(k, "b", name, key, "object present, own log silent")
            for bad in half_written(path):
                self._note(k, "d", name, "", bad)
        held = leftovers.held_locks(self.repos.values())
        for h in held:
            self._note(k, "c", "-", "", f"lock still held: {h}")
        for name, path in self.repos.items():
            # corrects the repository's own log; a key nobody it knows of holds is expected
            # (the nodes never merge the client's branch)
            r = env.annex(path, "fsck", "--fast", "--all", "--quiet", check=False)
            for line in (r.stdout + r.stderr).splitlines():
                if line.startswith("  **") and "No known copies" not in line:
                    self._note(k, "fsck", name, "", line.strip())


class Hunt(Judge):
    """Client operations through the gateway of tests/gateway/topology.py."""

    def __init__(self, topo: T.Topology, rng: random.Random, shell_name: str) -> None:
        repos = {"gw": topo.gw, "client": topo.client, **topo.nodes}
        super().__init__(topo.env, repos, topo.uuids)
        self.topo = topo
        self.rng = rng
        self.shell_name = shell_name
        self.estimate: dict[str, float] = {}
        self.on_object_change = False

    # -- processes -----------------------------------------------------------------------------
    def _victims(self, target: str, client_pid: int) -> list[procs.ProcInfo]:
        root = str(self.topo.root)
        if target == "client":
            return [p for p in procs.processes() if p.pid == client_pid]
        if target == "gw":
            path = str(self.topo.gw)
            exe = {"ours": "annextui-shell", "upstream": "git-annex-shell"}[self.shell_name]

            def is_gw(p: procs.ProcInfo) -> bool:
                return path in p.cmdline and (exe in p.cmdline or "git-annex-shell" in p.argv[0])

            return [p for p in procs.find(is_gw) if "ssh" not in p.exe_name]
        node3 = str(self.topo.nodes["node3"])
        return [
            p
            for p in procs.find(lambda p: node3 in p.cmdline and root in p.cmdline)
            if ("git-annex-shell" in p.cmdline or "annextui-shell" in p.cmdline)
            and p.exe_name != "ssh"
        ]

    def _settle(self) -> None:
        """Wait until no process of ours still runs in the topology (the killed session's
        other side ends when its pipe closes)."""
        root = str(self.topo.root)
        for _ in range(600):
            left = [p for p in procs.find(lambda p: root in p.cmdline) if p.exe_name != "sshd"]
            left = [p for p in left if p.exe_name != "ssh" or "-O" not in p.argv]
            if not left:
                return
            time.sleep(0.05)
        procs.kill_pids(p.pid for p in left)

    def _run(self, argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["git", "annex", *argv],
            cwd=self.topo.client,
            env=self.env.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    # -- one kill ------------------------------------------------------------------------------
    def kill_once(self, n: int, op: str, argv: list[str], target: str) -> Kill:
        scale = 0.7 if self.on_object_change else 1.1  # leave changes to come
        delay = self.rng.uniform(0.0, self.estimate.get(op, 2.0) * scale)
        proc = self._run(argv)
        end = time.monotonic() + delay
        killed: list[str] = []
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.005)
        victims = self._victims(target, proc.pid)
        while not victims and proc.poll() is None:  # not started yet (ssh): kill on arrival
            time.sleep(0.005)
            victims = self._victims(target, proc.pid)
        if self.on_object_change and proc.poll() is None:
            # aim at the windows between an object and its log line: kill the moment a node's
            # objects change (busy polling: the window is a few milliseconds)
            nodes = list(self.topo.nodes.values())
            start = [objects(n) for n in nodes]
            while proc.poll() is None and [objects(n) for n in nodes] == start:
                pass
        if proc.poll() is None:
            for p in victims:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                    killed.append(p.cmdline[:100])
                except ProcessLookupError:
                    pass
        proc.communicate()
        if not killed and proc.returncode == 0:
            self.estimate[op] = time.monotonic() - (end - delay)  # a whole run's duration
        self._settle()
        t0 = time.monotonic()
        rerun = self._run(argv)
        _, err = rerun.communicate()
        if op not in self.estimate:
            self.estimate[op] = time.monotonic() - t0
        k = Kill(n, op, target, round(delay, 3), killed, rerun.returncode == 0)
        if rerun.returncode != 0:
            self._note(k, "c", "client", "", "re-run failed: " + err.decode()[-1500:])
        return k

    def judge(self, k: Kill) -> None:
        self.env.git(self.topo.client, "fetch", "-q", "origin")
        self.env.annex(self.topo.client, "merge", "-q")
        super().judge(k)


def drain_hunt(
    base: Path, kills: int, files: int, rng: random.Random, on_object_change: bool = False
) -> Judge:
    """`annextui cluster drain node1` (numcopies 2, every file on node1 and node2: node3 gets
    node1's copies) SIGKILLed at a random moment, run again (it resumes its job), judged.
    A fresh cluster each time (tests/operations/cluster.py)."""
    from tests.operations import cluster as cl

    env = _env(base)
    run_env = {**env.env, "PYTHONPATH": str(ROOT)}
    judge = Judge(env, {}, {})
    estimate = 3.0
    for n in range(kills):
        root = base / f"drain{n}"
        root.mkdir()
        c, _names = cl.held_by_node1_and_node2(env, root, files)
        judge.repos = {"gw": c.gw, **c.nodes}
        judge.uuids = {"gw": cl.GW, **cl.NODES}
        judge.epoch = n
        argv = [sys.executable, "-m", "annextui", "cluster", "drain", "node1",
                "-C", str(c.gw), "--json", "--no-progress"]  # fmt: skip
        delay = rng.uniform(0.0, estimate * (0.7 if on_object_change else 1.1))
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        killed = []
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            if on_object_change:  # as Hunt.kill_once: the moment a node's objects change
                start = [objects(p) for p in c.nodes.values()]
                while proc.poll() is None and [objects(p) for p in c.nodes.values()] == start:
                    pass
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed.append("annextui cluster drain")
        proc.wait()
        if not killed and proc.returncode == 0:
            estimate = time.monotonic() - t0
        rerun = subprocess.run(argv, env=run_env, capture_output=True, text=True)
        k = Kill(n, "cluster-drain", "annextui", round(delay, 3), killed, rerun.returncode == 0)
        if rerun.returncode != 0:
            judge._note(k, "c", "gw", "", "re-run failed: " + rerun.stderr[-1500:])
        judge.record(k)
        if c.objects("node1"):
            judge._note(k, "c", "node1", "", "not drained after the re-run")
        shutil.rmtree(root, ignore_errors=True)
    return judge


def _env(base: Path) -> AnnexEnv:
    exe = annex_support.find_git_annex()
    if exe is None:
        raise SystemExit("git-annex not found")
    return AnnexEnv.create(base, bin_dir=exe.parent, magic=annex_support.magic_db(exe))


def build(
    base: Path, shell: str, node_shell: str, files: int, max_kib: int, seed: int
) -> T.Topology:
    env = _env(base)
    assert env.bin_dir is not None
    sshd = Sshd(base / "ssh", server_path=annex_support.default_path([env.bin_dir]))
    sshd.start()
    env.use_ssh(sshd)
    topo = T.build(env, sshd, base / "t", shell=shell, balanced=False)
    env.git(topo.gw, "config", "remote.node3.annex-shell", node_shell)
    rng = random.Random(seed)
    content = {f"f{i:02d}.bin": rng.randbytes(rng.randint(1, max_kib) << 10) for i in range(files)}
    env.add_files(topo.client, content)
    return topo


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shell", choices=("ours", "upstream"), default="ours")
    ap.add_argument(
        "--node-shell",
        choices=("ours", "upstream"),
        default="upstream",
        help="the shell serving node3 over ssh",
    )
    ap.add_argument(
        "--on-object-change",
        action="store_true",
        help="after the random delay, kill only when a node's objects change",
    )
    ap.add_argument("--drain", action="store_true", help="kill `annextui cluster drain`")
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--max-kib", type=int, default=2048)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--ops", default=None, help="only these operations (names, comma-separated)")
    ap.add_argument("--keep", action="store_true", help="keep the directory (printed)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    shells = {"ours": "annextui-shell", "upstream": "git-annex-shell"}
    shell, node_shell = shells[args.shell], shells[args.node_shell]
    base = Path(tempfile.mkdtemp(prefix="kh-"))  # short: ssh ControlPath must fit
    rng = random.Random(args.seed)
    if args.drain:
        try:
            judge = drain_hunt(base, args.kills, args.files, rng, args.on_object_change)
        finally:
            if not args.keep:
                shutil.rmtree(base, ignore_errors=True)
        print(report(judge, "annextui cluster drain"))
        _write_json(args.json, judge)
        return 0
    topo = build(base, shell, node_shell, args.files, args.max_kib, args.seed)
    hunt = Hunt(topo, rng, args.shell)
    hunt.on_object_change = args.on_object_change
    targets = args.targets.split(",")
    ops = [o for o in OPS if args.ops is None or o[0] in args.ops.split(",")]
    try:
        for n in range(args.kills):
            op, op_argv = ops[n % len(ops)]
            # node3 (over ssh, the real git-annex-shell) is only reached through the cluster
            target = rng.choice([t for t in targets if t != "node" or "cluster" in op])
            k = hunt.kill_once(n, op, op_argv, target)
            hunt.record(k)
    finally:
        topo.env.cleanup()
        topo.sshd.stop()
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(report(hunt, f"gateway shell: {args.shell}, node3's: {args.node_shell}"))
    _write_json(args.json, hunt)
    return 0


def _write_json(path: Path | None, judge: Judge) -> None:
    if path is not None:
        out = {
            "kills": [asdict(k) for k in judge.kills],
            "findings": [asdict(f) for f in judge.findings],
        }
        path.write_text(json.dumps(out, indent=2))


def report(hunt: Judge, what: str) -> str:
    landed: Counter[tuple[str, str]] = Counter()
    for k in hunt.kills:
        landed[(k.target, "killed" if k.killed else "missed")] += 1
    lines = [f"{what}; kills: {len(hunt.kills)}"]
    lines += [f"  {t:<6} {what:<6} {n}" for (t, what), n in sorted(landed.items())]
    by_cls = Counter(f.cls for f in hunt.findings)
    lines.append(
        "findings by class: " + (", ".join(f"{c}={n}" for c, n in sorted(by_cls.items())) or "none")
    )
    lines += [
        f"  [{f.cls}] kill {f.kill} {f.op}/{f.target} {f.repo} {f.key[:40]} {f.detail}"
        for f in hunt.findings
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    raise SystemExit(main())
