"""The line codec: tokenizing, field grammars, AssociatedFile escaping, round trips."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import pytest

from annextui.proxycore.protocol import (
    MESSAGE_TYPES,
    AlreadyHave,
    AlreadyHavePlus,
    Auth,
    AuthFailure,
    AuthSuccess,
    Bypass,
    Changed,
    CheckPresent,
    Connect,
    ConnectDone,
    DataHeader,
    DataPresent,
    Error,
    Failure,
    FailurePlus,
    Get,
    GetTimestamp,
    Invalid,
    LockContent,
    Message,
    NotifyChange,
    ProtocolParseError,
    Put,
    PutFrom,
    Remove,
    RemoveBefore,
    Service,
    Success,
    SuccessPlus,
    Timestamp,
    UnlockContent,
    Valid,
    Version,
    decode_associated_file,
    encode_associated_file,
    parse_message,
    serialize_message,
)
from annextui.proxycore.protocol.messages import SPACE_CHARS, split_word, split_words

K1 = "SHA256E-s12--a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447.txt"
U1 = "e37ed43c-4191-49c8-ad0e-5a4760bf770f"
U2 = "20499e53-87d9-4bb6-9536-4cf67351a8d7"

# One wire line per message type, in git-annex's exact form.
WIRE: list[tuple[bytes, Message]] = [
    (f"AUTH {U2} abc123".encode(), Auth(U2, "abc123")),
    (f"AUTH-SUCCESS {U1}".encode(), AuthSuccess(U1)),
    (b"AUTH-FAILURE", AuthFailure()),
    (b"VERSION 4", Version(4)),
    (f"BYPASS {U1} {U2}".encode(), Bypass((U1, U2))),
    (f"CHECKPRESENT {K1}".encode(), CheckPresent(K1)),
    (f"LOCKCONTENT {K1}".encode(), LockContent(K1)),
    (b"UNLOCKCONTENT", UnlockContent()),
    (f"REMOVE {K1}".encode(), Remove(K1)),
    (f"REMOVE-BEFORE 1075 {K1}".encode(), RemoveBefore(1075, K1)),
    (b"GETTIMESTAMP", GetTimestamp()),
    (b"TIMESTAMP 476", Timestamp(476)),
    (f"GET 0 small.txt {K1}".encode(), Get(0, "small.txt", K1)),
    (f"PUT big.bin {K1}".encode(), Put("big.bin", K1)),
    (b"PUT-FROM 100000", PutFrom(100000)),
    (b"DATA 12", DataHeader(12)),
    (b"DATA-PRESENT", DataPresent()),
    (b"VALID", Valid()),
    (b"INVALID", Invalid()),
    (b"SUCCESS", Success()),
    (b"FAILURE", Failure()),
    (f"SUCCESS-PLUS {U1} {U2}".encode(), SuccessPlus((U1, U2))),
    (f"FAILURE-PLUS {U2}".encode(), FailurePlus((U2,))),
    (b"ALREADY-HAVE", AlreadyHave()),
    (f"ALREADY-HAVE-PLUS {U1}".encode(), AlreadyHavePlus((U1,))),
    (b"CONNECT git-receive-pack", Connect(Service.RECEIVE_PACK)),
    (b"CONNECTDONE 0", ConnectDone(0)),
    (b"NOTIFYCHANGE", NotifyChange()),
    (b"CHANGED 1f0e 2a3b", Changed(("1f0e", "2a3b"))),
    (b"ERROR this repository is read-only; write access denied",
     Error("this repository is read-only; write access denied")),
]  # fmt: skip


def test_every_message_type_has_a_wire_example() -> None:
    assert {type(m) for _, m in WIRE} == set(MESSAGE_TYPES)
    assert len(MESSAGE_TYPES) == 30


@pytest.mark.parametrize(("line", "msg"), WIRE, ids=[m.WORD for _, m in WIRE])
def test_wire_round_trip(line: bytes, msg: Message) -> None:
    assert parse_message(line) == msg
    assert parse_message(line + b"\n") == msg
    assert parse_message(line + b"\r\n") == msg  # CRLF accepted
    assert serialize_message(msg) == line + b"\n"


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        # The command word ends at the first whitespace char, which is dropped: git-annex
        # 10.20261026 answers `SUCCESS ` with "unexpected command", i.e. it parsed.
        (b"SUCCESS ", Success()),
        (b"GETTIMESTAMP\t", GetTimestamp()),
        # Two spaces make an empty field; empty AssociatedFile = none.
        (f"GET 6  {K1}".encode(), Get(6, None, K1)),
        (f"PUT  {K1}".encode(), Put(None, K1)),
        # The last field is the rest of the line.
        (b"ERROR a  b ", Error("a  b ")),
        (b"ERROR", Error("")),
        (b"ERROR ", Error("")),
        # List messages split on whitespace runs and may be empty.
        (f"SUCCESS-PLUS  {U1} \t {U2}  ".encode(), SuccessPlus((U1, U2))),
        (b"SUCCESS-PLUS", SuccessPlus(())),
        (b"BYPASS", Bypass(())),
        (b"CHANGED", Changed(())),
        # U+00A0 is whitespace to Haskell's isSpace, so it separates fields.
        ("SUCCESS-PLUS a\u00a0b".encode(), SuccessPlus(("a", "b"))),
        (b"VERSION 04", Version(4)),
        (b"CONNECTDONE -9", ConnectDone(-9)),  # a git killed by a signal
        (b"CONNECT git-upload-pack", Connect(Service.UPLOAD_PACK)),
        (b"AUTH u ", Auth("u", "")),  # git-annex's empty auth token
    ],
)
def test_tokenizing_rules(line: bytes, msg: Message) -> None:
    assert parse_message(line) == msg


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"FOO bar",
        b"success",
        b"SUCCESS  ",  # the rest of a zero-field message must be empty
        b"UNLOCKCONTENT " + K1.encode(),
        b"CHECKPRESENT",
        b"CHECKPRESENT ",
        b"CHECKPRESENT " + K1.encode() + b" ",  # key is the rest of the line
        b"CHECKPRESENT not-a-key",
        b"CHECKPRESENT SHA256E-s012--abc",  # non-canonical key
        b"GET 0 /etc/passwd " + K1.encode(),  # absolute AssociatedFile
        b"GET -1  " + K1.encode(),
        b"GET +1  " + K1.encode(),
        b"GET 6x  " + K1.encode(),  # git-annex's readish takes 6; we don't
        b"GET \xd9\xa1  " + K1.encode(),  # an Arabic-Indic digit is not ASCII decimal
        b"GET 0 " + K1.encode(),  # one field short: the key becomes the AF, key is empty
        b"VERSION",
        b"VERSION  4",
        b"VERSION 4 ",
        b"DATA -3",
        b"TIMESTAMP 1.5",
        b"AUTH-SUCCESS ",
        b"AUTH-SUCCESS a b",
        b"AUTH u tok-en",
        b"CONNECT git-shell",
        b"REMOVE-BEFORE 10",
        b"PUT-FROM",
        b"VALID x",
        b"SUCCESS\nFAILURE",
    ],
)
def test_unparsable_lines(line: bytes) -> None:
    with pytest.raises(ProtocolParseError) as info:
        parse_message(line)
    assert info.value.error_text == "unknown command"
    assert isinstance(info.value, ValueError)


def test_associated_file_escaping_matches_git_annex() -> None:
    # Observed: `sub dir/a b%c.txt` is sent as `sub%dir/a%b%%c.txt`; a proxy that decodes and
    # re-encodes it forwards `sub_dir/a_b%%c.txt`.
    wire = encode_associated_file("sub dir/a b%c.txt")
    assert wire == "sub%dir/a%b%%c.txt"
    assert decode_associated_file(wire) == "sub_dir/a_b%c.txt"
    assert encode_associated_file(decode_associated_file(wire)) == "sub_dir/a_b%%c.txt"
    assert encode_associated_file(None) == ""
    assert decode_associated_file("") is None
    assert decode_associated_file("a\x01b\x7fc") == "a_b_c"  # control chars
    assert decode_associated_file("%%%") == "%_"
    assert encode_associated_file("tab\there\u3000x") == "tab%here%x"
    with pytest.raises(ValueError, match="absolute"):
        decode_associated_file("/etc/passwd")
    with pytest.raises(ValueError, match="absolute"):
        encode_associated_file("/etc/passwd")
    with pytest.raises(ValueError, match="None"):
        encode_associated_file("")


def test_undecodable_bytes_survive_a_round_trip() -> None:
    line = b"GET 0 caf\xe9.txt " + K1.encode() + b"\n"  # latin-1 file name
    msg = parse_message(line)
    assert isinstance(msg, Get)
    assert serialize_message(msg) == line


@pytest.mark.parametrize(
    "make",
    [
        lambda: CheckPresent("not a key"),
        lambda: Get(-1, None, K1),
        lambda: Get(0, "", K1),
        lambda: Get(0, "/abs", K1),
        lambda: DataHeader(True),
        lambda: Version(1.0),  # type: ignore[arg-type]
        lambda: AuthSuccess(""),
        lambda: AuthSuccess("a b"),
        lambda: Auth("u", "tok en"),
        lambda: Error("two\nlines"),
        lambda: Error("cr\r"),
        lambda: SuccessPlus(("a b",)),
        lambda: SuccessPlus("abc"),  # type: ignore[arg-type]
        lambda: Connect("git-shell"),  # type: ignore[arg-type]
        lambda: Error("\udcff\ud800"),
    ],
)
def test_constructors_refuse_values_that_cannot_be_sent(make: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        make()  # type: ignore[operator]


def test_list_messages_store_tuples_and_stay_hashable() -> None:
    msg = SuccessPlus([U1, U2])  # type: ignore[arg-type]
    assert msg.uuids == (U1, U2)
    assert hash(msg) == hash(SuccessPlus((U1, U2)))
    assert Success() != Failure()  # type: ignore[comparison-overlap]


def test_space_set_is_haskell_isspace() -> None:
    # GHC: isSpace c = c in "\t\n\v\f\r " or c == '\xa0' or generalCategory c == Space (Zs).
    expected = {chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"}
    expected |= set("\t\n\v\f\r")
    assert set(SPACE_CHARS) == expected
    assert split_word("a\u2003b c") == ("a", "b c")
    assert split_word("abc") == ("abc", "")
    assert split_words("  a \x1c b ") == ["a", "\x1c", "b"]  # \x1c is not Haskell whitespace


def test_importing_the_protocol_pulls_in_no_ui_or_network_libraries() -> None:
    code = (
        "import sys, annextui.proxycore.protocol\n"
        "bad = [m for m in ('textual', 'rich', 'paramiko', 'socket', 'subprocess', 'asyncio')"
        " if m in sys.modules and m not in BASE]\n"
        "print(','.join(bad))\n"
    )
    base = "BASE = set(__import__('sys').modules)\n"
    out = subprocess.run(
        [sys.executable, "-c", base + code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_the_package_docstring_example_runs() -> None:
    import textwrap

    import annextui.proxycore.protocol as protocol

    doc = protocol.__doc__ or ""
    start = doc.index("    conn = Connection(Role.SERVER, greeting=True)")
    example = textwrap.dedent(doc[start : doc.index("\n\n", start)])

    class Store:
        def __init__(self) -> None:
            self.keys = {K1}
            self.body = bytearray()

        def has(self, key: str) -> bool:
            return key in self.keys

        def partial_size(self, key: str) -> int:
            return 0

        def append(self, chunk: bytes) -> None:
            self.body += chunk

        def finish(self, valid: bool | None) -> bool:
            return bool(valid) and self.body == b"hello world\n"

    for version, validity in [(4, b"VALID\n"), (0, b"")]:
        incoming = (
            f"VERSION {version}\nCHECKPRESENT {K1}\nPUT f {K1}\nDATA 12\nhello world\n".encode()
            + validity
        )
        namespace = {**vars(protocol), "my_uuid": U1, "incoming": incoming, "store": Store()}
        exec(example, namespace)
        result = b"SUCCESS\n" if version else b"FAILURE\n"  # finish(None) at v0
        assert namespace["out"] == (
            f"AUTH-SUCCESS {U1}\nVERSION {version}\nSUCCESS\nPUT-FROM 0\n".encode() + result
        )


def test_messages_are_frozen_values() -> None:
    """The shared Message methods behave as the frozen dataclasses they replace."""
    a = Get(0, "a b.txt", K1)
    assert a == Get(offset=0, associated_file="a b.txt", key=K1)
    assert a != Put("a b.txt", K1)  # other class, even with equal fields
    assert hash(a) == hash(Get(0, "a b.txt", K1))
    assert len({Success(), Success(), Failure()}) == 2
    assert repr(a) == f"Get(offset=0, associated_file='a b.txt', key='{K1}')"
    with pytest.raises(AttributeError):
        a.offset = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.key  # type: ignore[misc]
    assert SuccessPlus().uuids == ()  # default
    # wrong on purpose below (the values' runtime checks): mypy would refuse each call
    assert SuccessPlus(["u1", "u2"]).uuids == ("u1", "u2")  # type: ignore[arg-type]  # a tuple
    bad_calls = (
        lambda: Get(0, None),  # type: ignore[call-arg]
        lambda: Get(0, None, K1, 1),  # type: ignore[call-arg]
        lambda: Version(v=1),  # type: ignore[call-arg]
    )
    for bad in bad_calls:
        with pytest.raises(TypeError):
            bad()
    with pytest.raises(TypeError):
        Message()
    match RemoveBefore(12, K1):
        case RemoveBefore(ts, key):
            assert (ts, key) == (12, K1)
        case _:
            raise AssertionError("positional class pattern did not match")
