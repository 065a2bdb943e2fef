"""git-annex keys: the strict grammar, file-name escaping, hash directories and verification.

Keys arrive from the network, so parsing is strict: a key is accepted only if it re-serializes to
exactly the input, and only `key_file` ever turns a key into a path component.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol, cast

from annextui.values import Value


def _builtin_md5() -> Callable[[bytes], Any]:
    """MD5 for hash directories (every request of every shell session): the interpreter's own
    `_md5`, not hashlib, whose import loads OpenSSL's libcrypto (~6 ms of CPU, as much as the
    rest of a GET of a local key); hashlib is imported when content is hashed (`_HASHERS`)."""
    try:
        return cast(Callable[[bytes], Any], __import__("_md5").md5)  # no stub in typeshed
    except ImportError:  # an interpreter built without its own MD5
        import hashlib

        return hashlib.md5


_md5 = _builtin_md5()

MAX_EXTENSION = 64
MAX_KEYFILE = 255


class KeyError_(ValueError):
    """A string that is not a well-formed git-annex key."""


class _Hasher(Protocol):
    # every hasher here takes any buffer, as hashlib does (blocks arrive as memoryviews)
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


class Key(Value):
    variety: str
    name: str
    size: int | None = None
    mtime: int | None = None
    chunk_size: int | None = None
    chunk_num: int | None = None

    def __str__(self) -> str:
        return serialize_key(self)

    @property
    def base_variety(self) -> str:
        """The hash name without the trailing `E` of extension-carrying varieties."""
        if self.variety.endswith("E") and self.variety[:-1] in _HASHERS:
            return self.variety[:-1]
        return self.variety

    @property
    def has_extension(self) -> bool:
        return self.variety != self.base_variety

    @property
    def is_chunk(self) -> bool:
        return self.chunk_size is not None

    def without_chunk(self) -> Key:
        return Key(self.variety, self.name, self.size, self.mtime)

    @property
    def hash_part(self) -> str:
        """The digest a hashing backend put in the name (extension removed)."""
        name = self.name.lstrip("\\")
        if self.has_extension:
            return name.split(".", 1)[0]
        return name

    @property
    def verifiable(self) -> bool:
        return self.base_variety in _HASHERS

    @property
    def external(self) -> bool:
        """An external backend's key (`XFOO`, `XFOOE`): its program verifies it."""
        return len(self.variety) > 1 and self.variety.startswith("X")

    @property
    def secure(self) -> bool:
        return self.base_variety in _HASHERS and self.base_variety not in _INSECURE


_FIELD_RE = re.compile(
    r"^(?P<variety>[^-]+)"
    r"(?:-s(?P<size>[0-9]+))?"
    r"(?:-m(?P<mtime>[0-9]+))?"
    r"(?:-S(?P<chunk_size>[0-9]+)-C(?P<chunk_num>[0-9]+))?"
    r"--(?P<name>.*)$",
    re.DOTALL,
)
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")


def parse_key(text: str) -> Key:
    """Parse a serialized key, rejecting anything git-annex's strict parser would reject."""
    if not text or _FORBIDDEN.search(text):
        raise KeyError_(f"invalid key {text!r}: empty or contains whitespace/control bytes")
    m = _FIELD_RE.match(text)
    if not m or not m.group("name"):
        raise KeyError_(f"invalid key {text!r}")

    def num(field: str) -> int | None:
        value = m.group(field)
        return int(value) if value is not None else None

    key = Key(
        variety=m.group("variety"),
        name=m.group("name"),
        size=num("size"),
        mtime=num("mtime"),
        chunk_size=num("chunk_size"),
        chunk_num=num("chunk_num"),
    )
    if key.has_extension and "." in key.name:
        ext = key.name[key.name.index(".") :]
        if len(ext.encode()) > MAX_EXTENSION:
            raise KeyError_(f"invalid key {text!r}: extension longer than {MAX_EXTENSION} bytes")
    if serialize_key(key) != text:
        # Leading zeros and similar non-canonical forms could smuggle collision data.
        raise KeyError_(f"invalid key {text!r}: not in canonical form")
    return key


def serialize_key(key: Key) -> str:
    parts = [key.variety]
    if key.size is not None:
        parts.append(f"-s{key.size}")
    if key.mtime is not None:
        parts.append(f"-m{key.mtime}")
    if key.chunk_size is not None and key.chunk_num is not None:
        parts.append(f"-S{key.chunk_size}-C{key.chunk_num}")
    parts.append("--")
    parts.append(key.name)
    return "".join(parts)


def key_file(key: Key | str) -> str:
    """The file-name form of a key (object, tmp, transfer and location-log names)."""
    s = key if isinstance(key, str) else serialize_key(key)
    if not any(c in s for c in "&%:/"):
        return s
    out = []
    for c in s:
        if c == "&":
            out.append("&a")
        elif c == "%":
            out.append("&s")
        elif c == ":":
            out.append("&c")
        elif c == "/":
            out.append("%")
        else:
            out.append(c)
    return "".join(out)


def file_key(name: str) -> str:
    """Inverse of `key_file` (returns the serialized key text, not yet validated)."""
    parts = name.split("%")
    return "/".join(p.replace("&c", ":").replace("&s", "%").replace("&a", "&") for p in parts)


def safe_key_file(key: Key) -> str:
    """`key_file` with the checks that make it safe to join onto a directory."""
    kf = key_file(key)
    if len(kf.encode()) > MAX_KEYFILE or kf in (".", "..") or "/" in kf or "\x00" in kf:
        raise KeyError_(f"key {serialize_key(key)!r} cannot be stored as a file name")
    return kf


_MIXED_ALPHABET = "0123456789zqjxkmvwgpfZQJXKMVWGPF"


def _hash_input(key: Key | str) -> bytes:
    if isinstance(key, str):
        try:
            key = parse_key(key)
        except KeyError_:
            # Legacy or odd keys found in a branch still get a directory: hash them verbatim.
            return str(key).encode()
    return serialize_key(key.without_chunk()).encode()


def hashdir_lower(key: Key | str, levels: int = 2) -> str:
    h = _md5(_hash_input(key)).hexdigest()
    return f"{h[:3]}/" if levels == 1 else f"{h[:3]}/{h[3:6]}/"


def hashdir_mixed(key: Key | str, levels: int = 2) -> str:
    w = int.from_bytes(_md5(_hash_input(key)).digest()[:4], "little")
    c = [_MIXED_ALPHABET[(w >> (6 * x)) & 31] for x in range(4)]
    return f"{c[1]}{c[0]}/" if levels == 1 else f"{c[1]}{c[0]}/{c[3]}{c[2]}/"


def location_log_path(key: Key | str, levels: int = 2) -> str:
    """Path of the key's location log in the git-annex branch (`levels` = 1 in repositories
    initialised with `annex.tune.branchhash1`; see `branch_hash_levels`)."""
    return hashdir_lower(key, levels) + key_file(key) + ".log"


def branch_hash_levels(config_bool: Callable[[str], bool]) -> int:
    """Hash directory levels of the git-annex branch: 1 with annex.tune.branchhash1, else 2."""
    return 1 if config_bool("annex.tune.branchhash1") else 2


def _hashlib(name: str, **params: int) -> Callable[[], _Hasher]:
    """hashlib's `name` hasher, hashlib imported at the first one (see `_md5`)."""

    def make() -> _Hasher:
        import hashlib

        return cast(_Hasher, getattr(hashlib, name)(**params))

    return make


def _blake2b(bits: int) -> Callable[[], _Hasher]:
    return _hashlib("blake2b", digest_size=bits // 8)


def _blake2s(bits: int) -> Callable[[], _Hasher]:
    return _hashlib("blake2s", digest_size=bits // 8)


def _blake2_parallel(name: str, degree: int, block: int) -> Callable[[], _Hasher]:
    def make() -> _Hasher:
        import hashlib

        return Blake2Parallel(getattr(hashlib, name), degree, block)

    return make


class Blake2Parallel:
    """BLAKE2bp / BLAKE2sp (the reference `blake2bp.c`/`blake2sp.c`, as git-annex's crypton):
    `degree` leaves take the input's blocks in turn, a root hashes the leaves' digests. Built
    from hashlib's BLAKE2 tree parameters, which also finish each leaf's last block.

    Only full-length digests: for a shorter one (BLAKE2SP224) the reference feeds the root
    each leaf's whole internal state, which no hashlib object can give out.
    """

    def __init__(self, algo: Callable[..., Any], degree: int, block: int) -> None:
        self._algo, self._degree, self._block = algo, degree, block
        self._size: int = algo().digest_size
        self._leaves = [
            algo(
                digest_size=self._size,
                fanout=degree,
                depth=2,
                leaf_size=0,
                node_offset=i,
                node_depth=0,
                inner_size=self._size,
                last_node=i == degree - 1,
            )
            for i in range(degree)
        ]
        self._stripe = degree * block
        self._buf = bytearray()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        stripe = self._stripe
        if self._buf:
            take = min(stripe - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < stripe:
                return
            self._feed(memoryview(self._buf))
            self._buf = bytearray()
        full = len(view) - len(view) % stripe
        if full:
            self._feed(view[:full])
        self._buf += view[full:]

    def _feed(self, stripes: memoryview) -> None:
        block, stripe, n = self._block, self._stripe, len(stripes)
        for i, leaf in enumerate(self._leaves):
            update = leaf.update
            for base in range(i * block, n, stripe):
                update(stripes[base : base + block])

    def hexdigest(self) -> str:
        leaves = [leaf.copy() for leaf in self._leaves]
        buf, block = self._buf, self._block
        for i, leaf in enumerate(leaves):
            if len(buf) > i * block:
                leaf.update(buf[i * block : (i + 1) * block])
        root = self._algo(
            digest_size=self._size,
            fanout=self._degree,
            depth=2,
            leaf_size=0,
            node_offset=0,
            node_depth=1,
            inner_size=self._size,
            last_node=True,
        )
        for leaf in leaves:
            root.update(leaf.digest())
        return str(root.hexdigest())


def _blake3() -> _Hasher:
    import blake3  # imported when such a key is first hashed (not at shell start-up)

    return cast(_Hasher, blake3.blake3())


def _xxh3() -> _Hasher:
    import xxhash

    return cast(_Hasher, xxhash.xxh3_64())  # git-annex's XXH3 is the 64-bit digest


_HASHERS: dict[str, Callable[[], _Hasher]] = {
    "SHA256": _hashlib("sha256"),
    "SHA512": _hashlib("sha512"),
    "SHA224": _hashlib("sha224"),
    "SHA384": _hashlib("sha384"),
    "SHA3_256": _hashlib("sha3_256"),
    "SHA3_512": _hashlib("sha3_512"),
    "SHA3_224": _hashlib("sha3_224"),
    "SHA3_384": _hashlib("sha3_384"),
    "SHA1": _hashlib("sha1"),
    "MD5": _hashlib("md5"),
    "BLAKE2B160": _blake2b(160),
    "BLAKE2B224": _blake2b(224),
    "BLAKE2B256": _blake2b(256),
    "BLAKE2B384": _blake2b(384),
    "BLAKE2B512": _blake2b(512),
    "BLAKE2S160": _blake2s(160),
    "BLAKE2S224": _blake2s(224),
    "BLAKE2S256": _blake2s(256),
    "BLAKE2BP512": _blake2_parallel("blake2b", 4, 128),
    "BLAKE2SP256": _blake2_parallel("blake2s", 8, 64),
    "BLAKE3_256": _blake3,
    "XXH3": _xxh3,
}
_INSECURE = frozenset({"SHA1", "MD5", "XXH3"})  # not cryptographic (securehashesonly)


def hasher_for(key: Key) -> _Hasher | None:
    """A fresh incremental hasher for the key's backend, or None when it cannot be verified here."""
    factory = _HASHERS.get(key.base_variety)
    return factory() if factory is not None else None


def known_variety(key: Key) -> bool:
    """Whether we know how to treat content of this key (verify it, or accept it unverified)."""
    return key.verifiable or key.variety in _UNVERIFIABLE or key.external


# Kept as they come, as git-annex keeps them: WORM and URL keys carry no hash, and GPGHMAC keys
# name encrypted content (a gcrypt repository's objects) whose plain hash nobody here knows.
_UNVERIFIABLE = frozenset({"WORM", "URL", "VURL", "GPGHMACSHA1", "GPGHMACSHA512"})


def digest_matches(key: Key, hexdigest: str) -> bool:
    return key.hash_part.lower() == hexdigest.lower()


def key_for_content(data: bytes, variety: str = "SHA256E", extension: str = "") -> Key:
    """The key git-annex would give this content (hashing backends only)."""
    base = variety[:-1] if variety.endswith("E") and variety[:-1] in _HASHERS else variety
    factory = _HASHERS.get(base)
    if factory is None:
        raise KeyError_(f"cannot compute {variety} keys")
    h = factory()
    h.update(data)
    name = h.hexdigest() + (extension if base != variety else "")
    return Key(variety=variety, name=name, size=len(data))
