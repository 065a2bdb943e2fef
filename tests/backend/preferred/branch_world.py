"""Ad-hoc reading of a git-annex branch into a preferred-content ``World`` (tests only).

Deliberately small and independent of ``annextui.backend.logs`` (the real branch reader is
written elsewhere and will replace this): enough of uuid.log, trust.log, group.log,
preferred/required-content.log, group-preferred-content.log, numcopies.log, maxsize.log,
remote.log and the per-key location / metadata / url logs to build a ``World`` and
``KeyFacts``. Latest timestamp wins; on equal timestamps the later line wins (git-annex itself
always advances the clock when it rewrites a value).
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from annextui.backend.keys import file_key, parse_key
from annextui.backend.preferred import KeyFacts, Repo, TrustLevel, World

_TS = re.compile(r"^(.*?) ?timestamp=([0-9.]+)s$")
_TRUST = {"1": TrustLevel.TRUSTED, "0": TrustLevel.UNTRUSTED, "X": TrustLevel.DEAD}


def _ts(text: str) -> Decimal:
    return Decimal(text.rstrip("s"))


@dataclass
class BranchData:
    files: dict[str, bytes]

    def text(self, path: str) -> str:
        return self.files.get(path, b"").decode("utf-8", "surrogateescape")


def read_branch(repo: Path, env: Mapping[str, str]) -> BranchData:
    """Every blob of the git-annex branch, with uncommitted journal files applied."""
    ls = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "-z", "git-annex"],
        env=dict(env),
        capture_output=True,
        check=True,
    ).stdout
    entries = [e for e in ls.split(b"\0") if e]
    paths, shas = [], []
    for e in entries:
        meta, path = e.split(b"\t", 1)
        paths.append(path.decode("utf-8", "surrogateescape"))
        shas.append(meta.split()[2])
    out = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        env=dict(env),
        input=b"".join(s + b"\n" for s in shas),
        capture_output=True,
        check=True,
    ).stdout
    files: dict[str, bytes] = {}
    pos = 0
    for p in paths:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        files[p] = out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
    journal = repo / ".git" / "annex" / "journal"
    if journal.is_dir():
        for jf in journal.iterdir():
            # journal name: '_' -> '__' then '/' -> '_'
            name = jf.name
            parts, i = [], 0
            cur = ""
            while i < len(name):
                if name.startswith("__", i):
                    cur += "_"
                    i += 2
                elif name[i] == "_":
                    parts.append(cur)
                    cur = ""
                    i += 1
                else:
                    cur += name[i]
                    i += 1
            parts.append(cur)
            files["/".join(parts)] = jf.read_bytes()
    return BranchData(files)


def _uuid_log(text: str) -> dict[str, str]:
    """UUID-based log (``UUID VALUE timestamp=Ns``): uuid -> latest value."""
    best: dict[str, tuple[Decimal, str]] = {}
    for line in text.splitlines():
        m = _TS.match(line)
        if not m:
            continue
        body, ts = m.group(1), _ts(m.group(2))
        uuid, _, value = body.partition(" ")
        if not uuid:
            continue
        if uuid not in best or ts >= best[uuid][0]:
            best[uuid] = (ts, value)
    return {u: v for u, (_, v) in best.items()}


def _clocked(text: str, nfields: int) -> dict[tuple[str, ...], str]:
    """``TIMESTAMP K1 .. Kn VALUE`` logs: key fields -> latest value."""
    best: dict[tuple[str, ...], tuple[Decimal, str]] = {}
    for line in text.splitlines():
        parts = line.split(" ", nfields + 1)
        if len(parts) < nfields + 1:
            continue
        ts = _ts(parts[0])
        k = tuple(parts[1 : nfields + 1])
        value = parts[nfields + 1] if len(parts) > nfields + 1 else ""
        if k not in best or ts >= best[k][0]:
            best[k] = (ts, value)
    return {k: v for k, (_, v) in best.items()}


def _presence(text: str) -> dict[str, str]:
    """Location / url logs (``TIMESTAMP STATUS INFO``): info -> latest status."""
    best: dict[str, tuple[Decimal, str]] = {}
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) != 3:
            continue
        ts, status, info = _ts(parts[0]), parts[1], parts[2]
        if info not in best or ts > best[info][0]:  # equal clocks: earlier line wins
            best[info] = (ts, status)
    return {i: s for i, (_, s) in best.items()}


def _metadata(text: str) -> dict[str, frozenset[str]]:
    """``.log.met``: ``TIMESTAMP field +val -val field2 +val`` (latest change per value)."""
    state: dict[tuple[str, str], tuple[Decimal, bool]] = {}
    for line in text.splitlines():
        toks = line.split(" ")
        if not toks or not toks[0].endswith("s"):
            continue
        ts = _ts(toks[0])
        fieldname = None
        for t in toks[1:]:
            if t[:1] in "+-" and fieldname is not None:
                value = t[1:]
                if value.startswith("!"):  # values with spaces etc. are base64 encoded
                    value = base64.b64decode(value[1:]).decode("utf-8", "surrogateescape")
                k = (fieldname, value)
                if k not in state or ts >= state[k][0]:
                    state[k] = (ts, t[0] == "+")
            else:
                fieldname = t
    out: dict[str, set[str]] = {}
    for (f, v), (_, on) in state.items():
        if on:
            out.setdefault(f, set()).add(v)
    return {f: frozenset(v) for f, v in out.items()}


@dataclass
class Snapshot:
    world: World
    locations: dict[str, frozenset[str]] = field(default_factory=dict)
    metadata: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    urls: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def facts(self, key: str, file: str | None, local_present: bool | None = None) -> KeyFacts:
        return KeyFacts(
            key,
            locations=self.locations.get(key, frozenset()),
            file=file,
            metadata=self.metadata.get(key, {}),
            urls=self.urls.get(key, ()),
            local_present=local_present,
        )


def world_from_branch(
    branch: BranchData,
    *,
    here: str | None = None,
    file_numcopies: Mapping[str, int] | None = None,
    rebalance: bool = False,
    threshold: float = 0.9,
) -> Snapshot:
    uuids = _uuid_log(branch.text("uuid.log"))
    trust = {u: _TRUST.get(v.strip(), TrustLevel.SEMITRUSTED) for u, v in
             _uuid_log(branch.text("trust.log")).items()}  # fmt: skip
    groups = {u: frozenset(v.split()) for u, v in _uuid_log(branch.text("group.log")).items()}
    preferred = _uuid_log(branch.text("preferred-content.log"))
    required = _uuid_log(branch.text("required-content.log"))
    remote_cfg = _uuid_log(branch.text("remote.log"))
    maxsize = {k[0]: int(v) for k, v in _clocked(branch.text("maxsize.log"), 1).items() if v}
    gw_raw = _clocked(branch.text("group-preferred-content.log"), 1)
    group_wanted = {k[0]: v for k, v in gw_raw.items()}
    clusters = {k[0]: frozenset(v.split()) for k, v in
                _clocked(branch.text("cluster.log"), 1).items()}  # fmt: skip
    nc = _clocked(branch.text("numcopies.log"), 0)
    numcopies = int(nc[()]) if () in nc and nc[()].strip().isdigit() else None

    locations: dict[str, frozenset[str]] = {}
    metadata: dict[str, dict[str, frozenset[str]]] = {}
    urls: dict[str, tuple[str, ...]] = {}
    for path in branch.files:
        base = path.rsplit("/", 1)[-1]
        if path.count("/") != 2:
            continue
        if base.endswith(".log.met"):
            metadata[file_key(base[: -len(".log.met")])] = _metadata(branch.text(path))
        elif base.endswith(".log.web"):
            pres = _presence(branch.text(path))
            urls[file_key(base[: -len(".log.web")])] = tuple(
                sorted(u for u, s in pres.items() if s == "1")
            )
        elif base.endswith(".log"):
            pres = _presence(branch.text(path))
            locations[file_key(base[: -len(".log")])] = frozenset(
                u for u, s in pres.items() if s == "1"
            )

    sizes: dict[str, int] = {u: 0 for u in uuids}
    for key, locs in locations.items():
        try:
            ks = parse_key(key).size or 0
        except ValueError:
            ks = 0
        for u in locs:
            sizes[u] = sizes.get(u, 0) + ks

    all_uuids = set(uuids) | set(trust) | set(groups) | set(preferred) | set(required)
    all_uuids |= set(maxsize) | set(sizes)
    repos = []
    for u in sorted(all_uuids):
        cfg = remote_cfg.get(u, "")
        pdir = None
        for kv in cfg.split():
            k, _, v = kv.partition("=")
            if k == "preferreddir":
                pdir = v
        repos.append(
            Repo(
                u,
                trust=trust.get(u, TrustLevel.SEMITRUSTED),
                groups=groups.get(u, frozenset()),
                description=uuids.get(u, ""),
                preferred=preferred.get(u) or None,
                required=required.get(u) or None,
                maxsize=maxsize.get(u),
                size=sizes.get(u),
                preferreddir=pdir,
            )
        )
    fnc = dict(file_numcopies or {})
    world = World.build(
        repos,
        group_wanted=group_wanted,
        numcopies=numcopies,
        clusters=clusters,
        here=here,
        file_numcopies=(lambda f: fnc.get(f)) if fnc else None,
        rebalance=rebalance,
        fully_balanced_threshold=threshold,
    )
    return Snapshot(world, locations, metadata, urls)
