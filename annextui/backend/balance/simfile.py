"""``git annex sim`` scripts as a ``Placement``: the same file feeds upstream's simulator and
our proof.

Only the commands that describe a configuration and its files are understood: ``init``,
``connect``, ``group``, ``ungroup``, ``wanted``, ``required``, ``groupwanted``, ``maxsize``,
``numcopies``, ``mincopies``, ``trustlevel``, ``rebalance``, ``add``, ``addmulti``, one final
``step``/``stepstable`` (where the proof runs), and ``seed``/``present``/``notpresent``
(upstream's bookkeeping, ignored). Anything else is an error naming the line.

The model assumes every repository reaches every other (as a gateway reaches its nodes), so
``connect`` only checks its names. Members are the repositories with preferred or required
content (directly or through ``groupwanted``); the others only hold what was added to them.
Upstream draws UUIDs and keys from its seeded random generator; pass the ones ``git annex
sim`` made (``uuids``: name -> UUID, ``keys``: file -> key) to model exactly its world,
otherwise stand-ins derived from the names are used (sizes of ``addmulti`` then must be fixed:
minsize = maxsize).
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from annextui.backend.balance.errors import BalanceError
from annextui.backend.balance.placement import ModelKey, Placement
from annextui.backend.keys import KeyError_, parse_key
from annextui.backend.preferred import ExpressionError, Repo, TrustLevel, World, parse
from annextui.backend.units import SizeError, parse_size

__all__ = ["SimFile", "SimFileError", "parse_simfile"]


class SimFileError(BalanceError):
    """A sim script this model cannot read (names the line)."""


@dataclass
class _Repo:
    name: str
    groups: set[str] = field(default_factory=set)
    wanted: str | None = None
    required: str | None = None
    maxsize: int | None = None
    trust: TrustLevel = TrustLevel.SEMITRUSTED


@dataclass(frozen=True)
class SimFile:
    """A parsed script: the placement before its step, and the step itself."""

    placement: Placement
    uuids: Mapping[str, str]  # name -> UUID
    files: Mapping[str, str]  # file -> key
    steps: int
    must_stabilize: bool  # stepstable (vs step)


def parse_simfile(
    text: str,
    *,
    uuids: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
) -> SimFile:
    return _Parser(uuids or {}, keys or {}).parse(text)


class _Parser:
    def __init__(self, uuids: Mapping[str, str], keys: Mapping[str, str]) -> None:
        self.given_uuids = uuids
        self.given_keys = keys
        self.repos: dict[str, _Repo] = {}
        self.group_wanted: dict[str, str] = {}
        self.numcopies: int | None = None
        self.mincopies: int | None = None
        self.rebalance = False
        self.files: dict[str, tuple[str, int, set[str]]] = {}  # file -> key, size, holders
        self.steps: tuple[int, bool] | None = None
        self.lineno = 0

    def fail(self, message: str) -> SimFileError:
        return SimFileError(f"sim line {self.lineno}: {message}")

    def parse(self, text: str) -> SimFile:
        for self.lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#") or line.startswith("--"):
                continue
            words = line.split()
            if words[0] in ("present", "notpresent", "seed"):
                continue
            if self.steps is not None:
                raise self.fail("only upstream's present/notpresent may follow the step")
            handler = getattr(self, "cmd_" + words[0], None)
            if handler is None:
                raise self.fail(f"unsupported sim command {words[0]!r}")
            handler(words[1:])
        if self.steps is None:
            raise SimFileError("sim: no step or stepstable command")
        return self.build(*self.steps)

    # -- helpers ----------------------------------------------------------------------------
    def repo(self, name: str) -> _Repo:
        r = self.repos.get(name)
        if r is None:
            raise self.fail(f"unknown repository {name!r}")
        return r

    def args(self, words: list[str], n: int, usage: str) -> list[str]:
        if len(words) < n:
            raise self.fail(f"expected {usage}")
        return words

    def size(self, text: str) -> int:
        try:
            return parse_size(text)
        except SizeError as exc:
            raise self.fail(f"unable to parse size {text!r}") from exc

    def number(self, text: str) -> int:
        try:
            return int(text)
        except ValueError as exc:
            raise self.fail(f"expected a number, not {text!r}") from exc

    def expression(self, words: list[str]) -> str:
        expr = " ".join(words)
        try:
            parse(expr)
        except ExpressionError as exc:
            raise self.fail(str(exc)) from exc
        return expr

    # -- commands -----------------------------------------------------------------------------
    def cmd_init(self, words: list[str]) -> None:
        (name,) = self.args(words, 1, "init NAME")[:1]
        if name in self.repos:
            raise self.fail(f"repository {name!r} already exists")
        self.repos[name] = _Repo(name)

    def cmd_connect(self, words: list[str]) -> None:
        self.args(words, 3, "connect REPO ARROW REPO ...")
        for i, w in enumerate(words):
            if i % 2:
                if w not in ("->", "<-", "<->"):
                    raise self.fail(f"expected ->, <- or <->, not {w!r}")
            else:
                self.repo(w)

    def cmd_group(self, words: list[str]) -> None:
        name, group = self.args(words, 2, "group REPO GROUP")[:2]
        self.repo(name).groups.add(group)

    def cmd_ungroup(self, words: list[str]) -> None:
        name, group = self.args(words, 2, "ungroup REPO GROUP")[:2]
        self.repo(name).groups.discard(group)

    def cmd_wanted(self, words: list[str]) -> None:
        self.args(words, 2, "wanted REPO EXPRESSION")
        self.repo(words[0]).wanted = self.expression(words[1:])

    def cmd_required(self, words: list[str]) -> None:
        self.args(words, 2, "required REPO EXPRESSION")
        self.repo(words[0]).required = self.expression(words[1:])

    def cmd_groupwanted(self, words: list[str]) -> None:
        self.args(words, 2, "groupwanted GROUP EXPRESSION")
        self.group_wanted[words[0]] = self.expression(words[1:])

    def cmd_maxsize(self, words: list[str]) -> None:
        name, size = self.args(words, 2, "maxsize REPO SIZE")[:2]
        self.repo(name).maxsize = self.size(size)

    def cmd_numcopies(self, words: list[str]) -> None:
        self.numcopies = self.number(self.args(words, 1, "numcopies N")[0])

    def cmd_mincopies(self, words: list[str]) -> None:
        self.mincopies = self.number(self.args(words, 1, "mincopies N")[0])

    def cmd_trustlevel(self, words: list[str]) -> None:
        name, level = self.args(words, 2, "trustlevel REPO LEVEL")[:2]
        levels = {
            "trusted": TrustLevel.TRUSTED,
            "semitrusted": TrustLevel.SEMITRUSTED,
            "untrusted": TrustLevel.UNTRUSTED,
            "dead": TrustLevel.DEAD,
        }
        if level not in levels:
            raise self.fail(f"unknown trust level {level!r}")
        self.repo(name).trust = levels[level]

    def cmd_rebalance(self, words: list[str]) -> None:
        if words not in (["on"], ["off"]):
            raise self.fail("expected rebalance on|off")
        self.rebalance = words == ["on"]

    def cmd_add(self, words: list[str]) -> None:
        self.args(words, 3, "add FILE SIZE REPO ...")
        self.add_file(words[0], self.size(words[1]), words[2:])

    def cmd_addmulti(self, words: list[str]) -> None:
        self.args(words, 5, "addmulti N SUFFIX MINSIZE MAXSIZE REPO ...")
        n = self.number(words[0])
        lo, hi = self.size(words[2]), self.size(words[3])
        for i in range(1, n + 1):
            f = f"{i}{words[1]}"
            if f not in self.given_keys and lo != hi:
                raise self.fail(
                    "addmulti with a size range needs the keys git annex sim made (keys=)"
                )
            self.add_file(f, lo, words[4:])

    def add_file(self, file: str, size: int, repos: list[str]) -> None:
        for name in repos:
            self.repo(name)
        key = self.given_keys.get(file)
        if key is None:
            key = f"SHA256E-s{size}--{hashlib.sha256(file.encode()).hexdigest()}"
        else:
            try:
                size = parse_key(key).size or 0
            except KeyError_ as exc:
                raise self.fail(str(exc)) from exc
        self.files[file] = (key, size, set(repos))

    def cmd_step(self, words: list[str]) -> None:
        self.steps = (self.number(self.args(words, 1, "step N")[0]), False)

    def cmd_stepstable(self, words: list[str]) -> None:
        self.steps = (self.number(self.args(words, 1, "stepstable N")[0]), True)

    # -- the result -----------------------------------------------------------------------------
    def uuid_of(self, name: str) -> str:
        u = self.given_uuids.get(name)
        return u or str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"annextui-sim:{name}"))

    def build(self, steps: int, stable: bool) -> SimFile:
        uuids = {name: self.uuid_of(name) for name in self.repos}
        repos = [
            Repo(
                uuids[r.name],
                trust=r.trust,
                groups=frozenset(r.groups),
                description=r.name,
                preferred=r.wanted,
                required=r.required,
                maxsize=r.maxsize,
            )
            for r in self.repos.values()
        ]
        world = World.build(
            repos,
            group_wanted=self.group_wanted,
            numcopies=self.numcopies,
            mincopies=self.mincopies,
            rebalance=self.rebalance,
        )
        members = tuple(uuids[r.name] for r in self.repos.values() if r.wanted or r.required)
        keys = tuple(ModelKey(k, size, file) for file, (k, size, _) in self.files.items())
        holders = tuple(frozenset(uuids[n] for n in h) for _, _, h in self.files.values())
        sizes = {u: 0 for u in uuids.values()}
        for mk, h in zip(keys, holders, strict=True):
            for u in h:
                sizes[u] += mk.size
        placement = Placement(
            world, members, keys, holders, sizes, {u: n for n, u in uuids.items()}
        )
        files = {file: k for file, (k, _, _) in self.files.items()}
        return SimFile(placement, uuids, files, steps, stable)
