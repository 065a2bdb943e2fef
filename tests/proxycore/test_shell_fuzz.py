"""Hypothesis-generated client streams against the p2pstdio server and a real repository.

Streams mix well-formed requests (with keys that try to name paths outside the store, overlong
keys, unknown backends), garbage lines, oversize lines, DATA bodies of the wrong length, and
hang-ups at any byte. After every stream:
* no exception escaped, and the session ended normally or with one of git-annex's fatal texts;
* no file appeared anywhere except in the object store, `annex/tmp`, and the bookkeeping
  git-annex itself keeps (journal and its commit, transfer records of failures);
* every object in the store verifies; every file in `annex/tmp` is a resumable partial of a
  well-formed key; no lock is left held.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from annextui.backend.keys import KeyError_, file_key, key_for_content, parse_key
from annextui.proxycore.local import LocalPeer
from annextui.proxycore.localrepo import LocalRepo
from annextui.proxycore.locks import POOL
from annextui.proxycore.server import ServerMode, serve
from tests.support import annex as annex_support
from tests.support.annex import AnnexEnv

U = "f0220000-0000-4000-8000-000000000001"
CLIENT = "c1e40000-0000-4000-8000-000000000002"

CONTENTS = [b"hello world\n", b"second file\n", os.urandom(70_000)]
GOOD_KEYS = [str(key_for_content(c, "SHA256E", ".bin")) for c in CONTENTS]
NASTY_KEYS = [
    "SHA256E-s5--../../../../etc/passwd",
    "WORM-s3-m1--../../outside/x",
    "WORM-s3-m1--a/../../b&c%d:e",
    "SHA256E-s1--" + "a" * 300,  # no file may have this name
    "URL--http://example.com/../../x",
    "BLAKE3_256E-s12--" + "0" * 64 + ".bin",
    "XFOO-s4--abcd",
    "SHA256E-s4-S2-C1--" + hashlib.sha256(b"ab").hexdigest(),
    "MD5-s12--" + hashlib.md5(CONTENTS[0]).hexdigest(),
]
FATAL_TEXTS = {
    None,
    "protocol error",
    "change notification not available",
    "relaying to git not supported on this connection",
}
WARNING_TEXTS = {"Verification of content failed"}  # a bad DATA's, before the fatal message


class BytesTransport:
    """Reads a fixed stream in pieces of the given sizes; collects what is written."""

    def __init__(self, data: bytes, pieces: list[int]) -> None:
        self.data = data
        self.pos = 0
        self.pieces = pieces or [65536]
        self.i = 0
        self.out = io.BytesIO()

    def read(self, n: int) -> bytes:
        size = min(n, self.pieces[self.i % len(self.pieces)])
        self.i += 1
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk

    def write(self, data: bytes | memoryview) -> None:
        self.out.write(data)

    def readinto(self, buf: memoryview) -> int:
        chunk = self.read(len(buf))
        buf[: len(chunk)] = chunk
        return len(chunk)

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        return 0


# -- the stream grammar ----------------------------------------------------------------------------

keys = st.sampled_from(GOOD_KEYS + NASTY_KEYS) | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40
)
afs = st.sampled_from(["", "f.bin", "a%20b", "/etc/passwd", "../../x", "sub dir/x"])
uuids = st.sampled_from([U, CLIENT, "x"])


def _body(n: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(CONTENTS).map(lambda c: c[:n].ljust(n, b"\0")),
        st.binary(min_size=n, max_size=n),
    )


@st.composite
def data_frame(draw: st.DrawFn) -> bytes:
    """DATA n with a body that is exactly n, or shorter/longer (desynchronising the stream)."""
    content = draw(st.sampled_from(CONTENTS))
    n = draw(st.sampled_from([0, len(content), min(len(content), 5), 3000]))
    body = content[:n] if n <= len(content) else draw(_body(n))
    slack = draw(st.sampled_from([0, 0, 0, -1, 1]))
    if slack < 0:
        body = body[:-1]
    elif slack > 0:
        body += b"!"
    tail = draw(st.sampled_from([b"VALID\n", b"INVALID\n", b"", b"SUCCESS\n"]))
    return b"DATA %d\n" % n + body + tail


@st.composite
def put_good(draw: st.DrawFn) -> bytes:
    i = draw(st.integers(0, len(CONTENTS) - 1))
    c = CONTENTS[i]
    return f"PUT f.bin {GOOD_KEYS[i]}\nDATA {len(c)}\n".encode() + c + b"VALID\n"


def _line(words: list[str]) -> bytes:
    return (" ".join(words) + "\n").encode("utf-8", "surrogateescape")


message = st.one_of(
    st.integers(0, 99).map(lambda v: f"VERSION {v}\n".encode()),
    keys.map(lambda k: f"CHECKPRESENT {k}\n".encode()),
    keys.map(lambda k: f"LOCKCONTENT {k}\n".encode()),
    st.just(b"UNLOCKCONTENT\n"),
    keys.map(lambda k: f"REMOVE {k}\n".encode()),
    st.tuples(st.integers(0, 2**40), keys).map(lambda t: f"REMOVE-BEFORE {t[0]} {t[1]}\n".encode()),
    st.just(b"GETTIMESTAMP\n"),
    st.tuples(st.integers(0, 100_000), afs, keys).map(
        lambda t: f"GET {t[0]} {t[1]} {t[2]}\n".encode()
    ),
    st.tuples(afs, keys).map(lambda t: f"PUT {t[0]} {t[1]}\n".encode()),
    put_good(),
    data_frame(),
    st.sampled_from(
        [
            b"VALID\n",
            b"INVALID\n",
            b"DATA-PRESENT\n",
            b"SUCCESS\n",
            b"FAILURE\n",
            b"ALREADY-HAVE\n",
            b"PUT-FROM 3\n",
            b"TIMESTAMP 5\n",
            b"AUTH a b\n",
        ]
    ),
    uuids.map(lambda u: f"SUCCESS-PLUS {u}\n".encode()),
    uuids.map(lambda u: f"BYPASS {u} {u}\n".encode()),
    st.text(max_size=30).map(lambda t: f"ERROR {t}\n".encode("utf-8", "surrogateescape")),
    st.text(max_size=60).map(lambda t: (t.replace("\n", " ") + "\n").encode()),
    st.binary(max_size=60),
    st.sampled_from([b"x" * 33000, b"CHECKPRESENT " + b"y" * 32760 + b"\n", b"\r\n", b"\n"]),
)
streams = st.tuples(
    st.tuples(
        st.sampled_from([b"", b"VERSION 4\n", b"VERSION 4\n", b"VERSION 1\n", b"VERSION 0\n"]),
        st.lists(st.one_of(message, put_good(), put_good()), max_size=14),
    ).map(lambda t: [t[0], *t[1]]),
    st.lists(st.integers(1, 70_000), min_size=1, max_size=5),
    st.one_of(st.none(), st.integers(0, 200_000)),  # hang up after this many bytes
    st.sampled_from(list(ServerMode)),
)


# -- the repository --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_repo(tmp_path_factory: pytest.TempPathFactory, git_annex_bin: Path) -> Iterator[Path]:
    root = Path(os.path.realpath(tmp_path_factory.mktemp("fuzz")))
    env = AnnexEnv.create(
        root, bin_dir=git_annex_bin.parent, magic=annex_support.magic_db(git_annex_bin)
    )
    repo = env.make_annex_repo("srv.git", U, "fuzzed", bare=True)
    (root / "outside").mkdir()
    old = dict(os.environ)
    os.environ.update({k: v for k, v in env.env.items() if k.startswith(("GIT_", "HOME"))})
    try:
        yield repo
    finally:
        os.environ.clear()
        os.environ.update(old)


ALLOWED_NEW = (
    "annex/objects/",
    "annex/tmp/",
    "annex/transfer/",  # failed-transfer records (and emptied upload/download dirs)
    "annex/journal/",
    "annex/journal.lck",
    "annex/annextui/journal-base",  # the branch commit the journal was read from
    "annex/othertmp/",
    "objects/",  # the commit of the journal at session end
    "refs/heads/git-annex",
    "logs/",
)


def _tree(root: Path) -> set[str]:
    out = set()
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def _check_invariants(repo: Path, before: set[str]) -> None:
    after = _tree(repo.parent)
    for p in sorted(after - before):
        rel = os.path.relpath(repo.parent / p, repo)
        assert not rel.startswith(".."), f"created outside the repository: {p}"
        assert rel.startswith(ALLOWED_NEW) or any(a.startswith(rel + "/") for a in ALLOWED_NEW), (
            f"unexpected file {rel}"
        )
    for obj in (repo / "annex" / "objects").glob("*/*/*/*"):
        if obj.name.endswith((".lck", ".rtm", ".rtl")):
            continue
        key = parse_key(file_key(obj.name))
        data = obj.read_bytes()
        assert key.size is None or key.size == len(data), obj
        if key.base_variety == "SHA256":
            assert hashlib.sha256(data).hexdigest() == key.hash_part, f"half-stored {obj}"
        assert obj.parent.name == obj.name
    for tmp in (repo / "annex" / "tmp").glob("*"):
        try:
            key = parse_key(file_key(tmp.name))
        except KeyError_:
            raise AssertionError(f"temp file of no key: {tmp}") from None
        assert key.size is None or tmp.stat().st_size <= key.size, tmp
    live = [
        p
        for d in ("upload", "download")
        for p in (repo / "annex" / "transfer" / d).rglob("*")
        if p.is_file()
    ]
    assert live == [], live
    assert list((repo.parent / "outside").iterdir()) == []
    assert POOL._held == {}


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(streams)
def test_streams_in_process(
    fuzz_repo: Path, case: tuple[list[bytes], list[int], int | None, ServerMode]
) -> None:
    msgs, pieces, hangup, mode = case
    data = b"".join(msgs)
    if hangup is not None:
        data = data[:hangup]
    before = _tree(fuzz_repo.parent)
    peer = LocalPeer(LocalRepo.open(str(fuzz_repo)), client_uuid=CLIENT, warn=lambda m: None)
    t = BytesTransport(data, pieces)
    result = serve(peer, t, mode=mode)
    assert result.error in FATAL_TEXTS, result.error
    out = t.out.getvalue()
    assert out.startswith(f"AUTH-SUCCESS {U}\n".encode())
    event(f"end: {result.error}")
    for word in (b"PUT-FROM", b"SUCCESS", b"ERROR", b"DATA"):
        if b"\n" + word in out:
            event(f"answered {word.decode()}")
    _check_invariants(fuzz_repo, before)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(streams)
def test_streams_through_the_real_shell(
    fuzz_repo: Path, case: tuple[list[bytes], list[int], int | None, ServerMode]
) -> None:
    msgs, _pieces, hangup, mode = case
    data = b"".join(msgs)
    if hangup is not None:
        data = data[:hangup]
    env = dict(os.environ)
    if mode is ServerMode.READONLY:
        env["GIT_ANNEX_SHELL_READONLY"] = "1"
    elif mode is ServerMode.APPENDONLY:
        env["GIT_ANNEX_SHELL_APPENDONLY"] = "1"
    before = _tree(fuzz_repo.parent)
    p = subprocess.run(
        [sys.executable, "-m", "annextui.proxycore.shell", "p2pstdio", str(fuzz_repo), CLIENT],
        input=data,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert p.returncode in (0, 1), p.stderr
    assert b"Traceback" not in p.stderr, p.stderr.decode()
    if p.returncode == 1:
        # The fatal message comes first, after any warning: "Verification of content failed"
        # comes before it when the pipe hands the server a whole DATA before the garbage after
        # it (whether it does depends on how the pipe splits the input).
        lines = [x for x in p.stderr.decode().split("\n") if x not in WARNING_TEXTS]
        first = lines[0].removeprefix("git-annex: ")
        assert first in FATAL_TEXTS, p.stderr
    _check_invariants(fuzz_repo, before)


LEGACY = ["inannex", "dropkey", "recvkey", "sendkey"]
key_words = st.one_of(
    st.sampled_from(GOOD_KEYS + NASTY_KEYS),
    st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=40),
)
legacy_extras = st.lists(
    st.sampled_from(["--force", "--force", "--quiet", "--", "remoteuuid=" + CLIENT]), max_size=4
)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.sampled_from(LEGACY), st.lists(key_words, min_size=1, max_size=3), legacy_extras)
def test_legacy_commands_in_process(
    fuzz_repo: Path,
    tmp_path_factory: pytest.TempPathFactory,
    command: str,
    keys: list[str],
    extra: list[str],
) -> None:
    """Keys on a legacy command line (from the ssh command, so from the client): nothing
    escapes, nothing lands outside the store. The rsync on the PATH fails at once, as a broken
    transfer would (and recvkey leaves no empty temp file behind)."""
    from annextui.proxycore.shell import main

    store = LocalRepo.open(str(fuzz_repo)).store
    for data in CONTENTS:  # something to find, send and drop
        key = key_for_content(data, "SHA256E", ".bin")
        if store.present(key) is None:
            fd, tmp = store.open_tmp(key)
            os.write(fd, data)
            os.close(fd)
            store.install(key, tmp)
    before = _tree(fuzz_repo.parent)
    fake = tmp_path_factory.mktemp("fakersync")
    (fake / "rsync").write_text("#!/bin/sh\nexit 12\n")  # never talks to our stdin
    (fake / "rsync").chmod(0o755)
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{fake}:{old_path}"
    try:
        rc = main([command, str(fuzz_repo), *keys, *extra])
    finally:
        os.environ["PATH"] = old_path
    assert rc in (0, 1, 100)
    event(f"{command} rc={rc}")
    _check_invariants(fuzz_repo, before)
    assert all(p.stat().st_size > 0 for p in (fuzz_repo / "annex" / "tmp").glob("*"))
