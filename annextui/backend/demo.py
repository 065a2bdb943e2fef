"""A realistic demo gateway, built with annextui's own backend only.

Layout under one directory:
    gateway/   non-bare repository, gateway of cluster `demo`, proxy for `archive`
    node1..3/  bare repositories, nodes of the cluster, group `nodes`, `balanced=nodes`
    archive/   bare repository proxied by the gateway, group `archive`

The gateway's working tree holds a few hundred annexed files (locked, i.e. symlinks) whose keys
have location logs placing them on the nodes roughly as balanced preferred content would, with
a few deliberately misplaced, so every console screen has something to show.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dulwich.objects import Blob, Commit, Tree

from annextui.backend.admin import Admin
from annextui.backend.clock import Clock, current_clock
from annextui.backend.journal import Journal
from annextui.backend.keys import Key, hashdir_mixed, key_file, location_log_path
from annextui.backend.logs import PresenceStatus, change_presence
from annextui.backend.preferred.balanced import BalancedPicker, has_space
from annextui.backend.repo import Repository

NODE_MAXSIZES = {"node1": 40_000_000_000, "node2": 60_000_000_000, "node3": 25_000_000_000}
ARCHIVE_MAXSIZE = 500_000_000_000
_DIRS = ("raw", "derived", "sub-01/anat", "sub-01/func", "sub-02/anat", "sub-02/func", "docs")
_EXTS = (".nii.gz", ".tsv", ".json", ".bin", ".mp4", ".txt")


@dataclass
class DemoRepo:
    root: Path
    gateway: Path
    nodes: dict[str, Path] = field(default_factory=dict)
    archive: Path | None = None
    cluster_uuid: str = ""
    uuids: dict[str, str] = field(default_factory=dict)
    keys: int = 0

    def summary(self) -> list[str]:
        lines = [
            f"demo built in {self.root}",
            f"  gateway  {self.gateway}  ({self.uuids.get('gateway', '')})",
            f"  cluster  demo  ({self.cluster_uuid})",
        ]
        for name, path in self.nodes.items():
            lines.append(f"  node     {name}  {path}  ({self.uuids.get(name, '')})")
        if self.archive:
            lines.append(f"  proxied  archive  {self.archive}  ({self.uuids.get('archive', '')})")
        lines.append(f"  {self.keys} annexed keys with location logs")
        lines.append(f"open it with: annextui -C {self.gateway}")
        return lines

    def to_json(self) -> dict[str, object]:
        return {
            "command": "demo",
            "root": str(self.root),
            "gateway": str(self.gateway),
            "nodes": {k: str(v) for k, v in self.nodes.items()},
            "archive": str(self.archive) if self.archive else None,
            "cluster": self.cluster_uuid,
            "uuids": self.uuids,
            "keys": self.keys,
            "success": True,
        }


def _git_init(path: Path, *, bare: bool) -> Repository:
    path.mkdir(parents=True, exist_ok=True)
    args = ["git", "init", "-q", "--initial-branch=main"]
    if bare:
        args.append("--bare")
    subprocess.run([*args, str(path)], check=True, capture_output=True)
    return Repository(path)


def _fake_key(rng: random.Random, index: int) -> tuple[Key, str]:
    ext = rng.choice(_EXTS)
    # Sizes spread over five orders of magnitude, as real datasets do.
    size = int(10 ** rng.uniform(3, 9.3))
    digest = hashlib.sha256(f"annextui-demo-{index}".encode()).hexdigest()
    name = f"{rng.choice(_DIRS)}/file{index:04d}{ext}"
    return Key("SHA256E", digest + ext, size=size), name


def _mark_present(uuid: str, clock: Clock) -> Callable[[bytes], bytes | None]:
    return lambda current: change_presence(current, uuid, PresenceStatus.PRESENT, clock)


def _commit_tree(repo: Repository, files: dict[str, bytes], message: str) -> None:
    """Commit symlinks for annexed files to `main` (dulwich; no git-annex needed)."""
    store = repo.git.object_store

    def build(entries: dict[str, bytes]) -> bytes:
        tree = Tree()
        subdirs: dict[str, dict[str, bytes]] = {}
        for path, target in entries.items():
            head, sep, rest = path.partition("/")
            if sep:
                subdirs.setdefault(head, {})[rest] = target
            else:
                blob = Blob.from_string(target)
                store.add_object(blob)
                tree.add(head.encode(), 0o120000, blob.id)
        for name, sub in subdirs.items():
            tree.add(name.encode(), 0o040000, build(sub))
        store.add_object(tree)
        return bytes(tree.id)

    commit = Commit()
    commit.tree = build(files)
    commit.parents = []
    commit.author = commit.committer = b"annextui demo <demo@annextui.invalid>"
    commit.author_time = commit.commit_time = current_clock().seconds
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message.encode() + b"\n"
    store.add_object(commit)
    repo.git.refs[b"refs/heads/main"] = commit.id
    repo.git.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
    # Populate index and working tree; annexed files are symlinks, so no filter runs.
    subprocess.run(["git", "-C", str(repo.top), "reset", "-q", "--hard"], check=True)


_LAYOUT = ("gateway", *NODE_MAXSIZES, "archive")


def build_demo(path: str | Path | None, *, keys: int = 300, seed: int = 42) -> DemoRepo:
    """Build the demo under `path` (a new temporary directory if None).

    Refused, with nothing written, when `path` already holds one of the demo's repositories (an
    earlier demo: building over it would mix two). A build that fails part way removes what it
    made, so a failure (a place we may not write, say) leaves nothing behind.
    """
    root = Path(path) if path else Path(tempfile.mkdtemp(prefix="annextui-demo-"))
    taken = [name for name in _LAYOUT if (root / name).exists() or (root / name).is_symlink()]
    if taken:
        what = "a demo" if (root / "gateway" / ".git").is_dir() else ", ".join(taken)
        raise FileExistsError(f"{root} already holds {what}; use another --path")
    made = [d for d in (root, *root.parents) if not d.exists()] if path else [root]
    root.mkdir(parents=True, exist_ok=True)
    try:
        return _build(root, keys, seed)
    except BaseException:
        for name in _LAYOUT:
            shutil.rmtree(root / name, ignore_errors=True)
        for d in made:  # innermost first: only the directories this call created
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def _build(root: Path, keys: int, seed: int) -> DemoRepo:
    rng = random.Random(seed)
    demo = DemoRepo(root=root.resolve(), gateway=(root / "gateway").resolve())

    for name in (*NODE_MAXSIZES, "archive"):
        repo = _git_init(root / name, bare=True)
        admin = Admin(repo)
        admin.init(name)
        demo.uuids[name] = repo.require_annex()
        if name == "archive":
            demo.archive = repo.top
        else:
            demo.nodes[name] = repo.top

    gw = _git_init(root / "gateway", bare=False)
    Admin(gw).init("gateway")
    demo.uuids["gateway"] = gw.require_annex()
    for name in NODE_MAXSIZES:
        gw.config_set(f"remote.{name}.url", f"../{name}")
        gw.config_set(f"remote.{name}.fetch", f"+refs/heads/*:refs/remotes/{name}/*")
        gw.config_set(f"remote.{name}.annex-uuid", demo.uuids[name])
        gw.config_set(f"remote.{name}.annex-cluster-node", "demo")
    gw.config_set("remote.archive.url", "../archive")
    gw.config_set("remote.archive.fetch", "+refs/heads/*:refs/remotes/archive/*")
    gw.config_set("remote.archive.annex-uuid", demo.uuids["archive"])
    gw.config_set("remote.archive.annex-proxy", "true")
    for name in (*NODE_MAXSIZES, "archive"):
        # The gateway learns the nodes' descriptions from their git-annex branches.
        subprocess.run(["git", "-C", str(gw.top), "fetch", "-q", name], check=True)

    admin = Admin(gw)
    admin.initcluster("demo", "demo cluster")
    demo.cluster_uuid = gw.clusters["demo"]
    admin.updatecluster()
    for name, size in NODE_MAXSIZES.items():
        admin.group(name, "nodes")
        admin.wanted(name, "groupwanted")
        admin.maxsize(name, str(size))
    admin.groupwanted("nodes", "balanced=nodes")
    admin.group("archive", "archive")
    admin.wanted("archive", "standard")
    admin.maxsize("archive", str(ARCHIVE_MAXSIZE))
    admin.group("here", "client")
    admin.wanted("here", "standard")

    journal = Journal(gw)
    files: dict[str, bytes] = {}
    # Place keys where `balanced=nodes` would: git-annex's HMAC picker over the nodes that
    # still have space, so the demo starts balanced apart from the deliberate misplacements.
    node_by_uuid = {demo.uuids[n]: n for n in NODE_MAXSIZES}
    picker = BalancedPicker(node_by_uuid)
    used = dict.fromkeys(node_by_uuid, 0)
    node_names = list(NODE_MAXSIZES)
    clock = current_clock()
    for i in range(keys):
        key, fname = _fake_key(rng, i)
        size = key.size or 0
        fits = [u for u in used if has_space(size, False, used[u], NODE_MAXSIZES[node_by_uuid[u]])]
        holders = {node_by_uuid[u] for u in picker.pick(fits, str(key), 1)} if fits else set()
        if rng.random() < 0.06:  # misplaced: a second node holds it too
            holders.add(rng.choice(node_names))
        for h in holders & set(node_names):
            used[demo.uuids[h]] += size
        if rng.random() < 0.3:
            holders.add("archive")
        if rng.random() < 0.1:
            holders.add("gateway")
        logpath = location_log_path(key)
        for holder in sorted(holders):
            journal.change(logpath, _mark_present(demo.uuids[holder], clock))
        kf = key_file(key)
        depth = fname.count("/")
        target = "../" * depth + f".git/annex/objects/{hashdir_mixed(key)}{kf}/{kf}"
        files[fname] = target.encode()
    journal.commit()
    _commit_tree(gw, files, "demo dataset")
    demo.keys = keys
    return demo
