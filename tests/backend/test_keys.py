"""Keys: strict parsing, escaping, hash directories and verification, against captured data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from annextui.backend.keys import (
    Key,
    KeyError_,
    digest_matches,
    file_key,
    hashdir_lower,
    hashdir_mixed,
    hasher_for,
    key_file,
    key_for_content,
    location_log_path,
    parse_key,
    safe_key_file,
    serialize_key,
)
from tests.support.annex import AnnexEnv
from tests.support.data import SPEC_EXAMPLES

EXAMPLES = SPEC_EXAMPLES


def _table() -> list[list[str]]:
    rows = []
    for line in (EXAMPLES / "keys-and-hashdirs.txt").read_text().splitlines():
        if "|" in line and not line.startswith("#"):
            rows.append(line.split("|"))
    return rows


def _annexed() -> list[list[str]]:
    rows = []
    for line in (EXAMPLES / "keys-and-hashdirs.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("SHA256E-"):
            rows.append(parts)
    return rows


@pytest.mark.parametrize("row", _table(), ids=lambda r: r[0][:30])
def test_examinekey_table(row: list[str]) -> None:
    key, backend, size, _name, lower, mixed, objpath, _mtime = row
    k = parse_key(key)
    assert serialize_key(k) == key
    assert k.variety == backend
    assert (str(k.size) if k.size is not None else "unknown") == size
    assert hashdir_lower(key) == lower
    assert hashdir_mixed(key) == mixed
    assert objpath == f".git/annex/objects/{mixed}{key_file(k)}/{key_file(k)}"
    assert file_key(key_file(k)) == key


@pytest.mark.parametrize("row", _annexed(), ids=lambda r: r[0][:24])
def test_hashdirs_of_annexed_files(row: list[str]) -> None:
    key, lower, mixed = row
    assert (hashdir_lower(key), hashdir_mixed(key)) == (lower, mixed)
    assert location_log_path(key) == f"{lower}{key}.log"


def test_calckey_backends_verify_hello_world() -> None:
    data = b"hello world\n"
    seen = 0
    for line in (EXAMPLES / "calckey-backends.txt").read_text().splitlines():
        if line.startswith("#") or ": " not in line:
            continue
        _backend, key_text = line.split(": ", 1)
        key = parse_key(key_text)
        assert key.size == 12
        h = hasher_for(key)
        if h is None:
            continue  # WORM, SKEIN: not verifiable here
        h.update(data)
        assert digest_matches(key, h.hexdigest()), key_text
        seen += 1
    assert seen >= 7  # incl. XXH3E and BLAKE3_256E
    assert str(key_for_content(data, "SHA256E", ".tar.gz")) == (
        "SHA256E-s12--a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447.tar.gz"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "SHA256E",
        "SHA256E--",
        "SHA256E-s012--abc",  # non-canonical size
        "SHA256E-x1--abc",  # unknown field
        "SHA256E-m1-s2--abc",  # fields out of order
        "SHA256E-s1--a b",  # whitespace
        "SHA256E-s1--a\nb",
        "SHA256E-s1--abc." + "x" * 70,  # extension over 64 bytes
        "-s1--abc",
    ],
)
def test_bad_keys_are_rejected(bad: str) -> None:
    with pytest.raises(KeyError_):
        parse_key(bad)


def test_escaping_never_yields_a_path_separator_or_dotdir() -> None:
    key = parse_key("WORM-s1-m1700000000--../../etc/passwd")
    kf = safe_key_file(key)
    assert "/" not in kf
    assert kf not in (".", "..")


def test_chunk_keys_use_their_parents_directory() -> None:
    assert hashdir_lower("SHA256E-s1048576-S262144-C2--aaaa.bin") == hashdir_lower(
        "SHA256E-s1048576--aaaa.bin"
    )


# -- the key grammar, property-tested ---------------------------------------------------------
# KEY = VARIETY ["-s" SIZE] ["-m" MTIME] ["-S" CHUNKSIZE "-C" CHUNKNUM] "--" NAME
# (keys-and-objects.md; Types/Key.hs). The strategies build keys the way git-annex makes them, so
# the round-trip assertions run on every example instead of on the rare valid random string.

HASH_BACKENDS = (
    "SHA256", "SHA512", "SHA224", "SHA384", "SHA3_256", "SHA3_512", "SHA3_224", "SHA3_384",
    "SHA1", "MD5", "BLAKE2B160", "BLAKE2B224", "BLAKE2B256", "BLAKE2B384", "BLAKE2B512",
    "BLAKE2S160", "BLAKE2S224", "BLAKE2S256", "BLAKE2BP512", "BLAKE2SP256", "BLAKE3_256", "XXH3",
)  # fmt: skip
_numbers = st.integers(min_value=0, max_value=2**64)
_sizes = st.none() | _numbers
_chunks = st.none() | st.tuples(
    st.integers(min_value=1, max_value=2**40), st.integers(min_value=1, max_value=10**6)
)
# Backend/Utilities.hs: at most two extensions of up to four alphanumerics each
_extensions = st.from_regex(r"(\.[a-z0-9]{1,4}){0,2}", fullmatch=True)
# WORM/URL/external names: any text without whitespace or control bytes, including the
# characters key_file escapes (& % : /); short enough that the file name stays under 255 bytes
_names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")) | st.sampled_from("&%:/-."),
    min_size=1,
    max_size=40,
)


@st.composite
def valid_keys(draw: st.DrawFn) -> Key:
    kind = draw(st.sampled_from(["hash", "hashE", "WORM", "URL", "external"]))
    event(f"kind {kind}")
    chunk = draw(_chunks)
    if chunk is not None:
        event("chunk key")
    chunk_size, chunk_num = chunk if chunk is not None else (None, None)
    if kind in ("hash", "hashE"):
        backend = draw(st.sampled_from(HASH_BACKENDS))
        variety = backend + ("E" if kind == "hashE" else "")
        content = key_for_content(draw(st.binary(max_size=64)), variety, draw(_extensions))
        size = content.size if draw(st.booleans()) else None  # -s is optional in the grammar
        return Key(variety, content.name, size, None, chunk_size, chunk_num)
    if kind == "WORM":  # mtime only ever appears on WORM keys
        return Key("WORM", draw(_names), draw(_numbers), draw(_numbers), chunk_size, chunk_num)
    if kind == "URL":
        return Key("URL", draw(_names), draw(_sizes), None, chunk_size, chunk_num)
    variety = draw(st.from_regex(r"X[A-Z0-9]{1,8}E?", fullmatch=True))
    return Key(variety, draw(_names), draw(_sizes), None, chunk_size, chunk_num)


@given(valid_keys())
def test_valid_keys_round_trip(key: Key) -> None:
    text = serialize_key(key)
    parsed = parse_key(text)
    assert parsed == key
    assert str(parsed) == text
    kf = safe_key_file(parsed)
    assert "/" not in kf
    assert file_key(kf) == text
    # a chunk is stored in its parent's hash directories
    assert hashdir_lower(text) == hashdir_lower(parsed.without_chunk())
    assert hashdir_mixed(text) == hashdir_mixed(parsed.without_chunk())


def _corruptions(text: str, key: Key) -> list[str]:
    """Ways to break a valid key that git-annex's strict parser rejects."""
    head, _, name = text.partition("--")
    out = [
        f"{head}--",  # empty name
        f"{head}-x1--{name}",  # unknown field
        f"{head}-- {name}",  # whitespace
        f"{head}--{name}\n",  # control byte
        text.replace("--", "--\x00", 1),
    ]
    if "-" not in name:
        out.append(head + name)  # no "--" separator
    if key.size is not None:
        out.append(text.replace(f"-s{key.size}", f"-s0{key.size}", 1))  # not canonical
        out.append(text.replace(f"-s{key.size}", f"-s+{key.size}", 1))  # signed
    if key.size is not None and key.mtime is not None:
        out.append(  # fields out of order
            f"{key.variety}-m{key.mtime}-s{key.size}"
            + text[len(f"{key.variety}-s{key.size}-m{key.mtime}") :]
        )
    if key.chunk_size is not None:
        out.append(text.replace(f"-C{key.chunk_num}", "", 1))  # -S without -C
    return out


@given(valid_keys())
def test_corrupted_keys_are_rejected(key: Key) -> None:
    text = serialize_key(key)
    for bad in _corruptions(text, key):
        with pytest.raises(KeyError_):
            parse_key(bad)


@given(st.text(max_size=80))
def test_arbitrary_text_is_a_key_only_in_canonical_form(text: str) -> None:
    """Invalid input: anything that parses re-serializes to exactly the input."""
    try:
        key = parse_key(text)
    except KeyError_:
        return
    assert serialize_key(key) == text
    assert "/" not in safe_key_file(key)
    assert file_key(key_file(key)) == text


def test_md5_hashdir_matches_reference_formula() -> None:
    key = "SHA256E-s0--e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    h = hashlib.md5(key.encode()).hexdigest()
    assert hashdir_lower(key) == f"{h[:3]}/{h[3:6]}/"


@pytest.mark.parametrize("backend", ["BLAKE2BP512", "BLAKE2BP512E", "BLAKE2SP256", "BLAKE2SP256E"])
def test_parallel_blake2_keys_match_git_annex(
    annex_env: AnnexEnv, tmp_path: Path, backend: str
) -> None:
    """BLAKE2bp/BLAKE2sp: the keys `git annex calckey` computes, at every block and stripe
    boundary, whole and fed in odd-sized pieces (the way content arrives over the network)."""
    import os

    from annextui.backend.keys import Key

    sizes = [0, 1, 63, 64, 65, 127, 128, 129, 511, 512, 513, 1024, 4097, 200_003]
    for size in sizes:
        data = os.urandom(size)
        f = tmp_path / f"{size}.bin"
        f.write_bytes(data)
        expected = annex_env.run(
            ["git", "annex", "calckey", f"--backend={backend}", str(f)]
        ).stdout.strip()
        ext = ".bin" if backend.endswith("E") else ""
        assert str(key_for_content(data, backend, ext)) == expected, size
        h = hasher_for(Key(backend, expected.split("--", 1)[1], size))
        assert h is not None
        for i in range(0, size, 333):
            h.update(memoryview(data)[i : i + 333])
        assert digest_matches(parse_key(expected), h.hexdigest()), size


def test_blake2sp224_is_not_verifiable_here() -> None:
    """git-annex's BLAKE2SP224 feeds its root the leaves' whole 32-byte states; hashlib cannot
    produce those, so such keys are refused rather than checked wrongly."""
    assert hasher_for(parse_key("BLAKE2SP224-s1--" + "0" * 56)) is None
