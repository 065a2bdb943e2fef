"""Request lines and values parsed as git-annex's p2phttp server parses them (spec sections
2-5): paths, versions per endpoint, `[base64]` values, required parameters."""

from __future__ import annotations

import base64

import pytest

from annextui.proxycore.http.routes import Endpoint, HttpError, parse_target
from annextui.proxycore.http.values import BadValue, decode_value, encode_value

U = "6a7e0000-0000-4000-8000-00000000a001"
C = "c11e0000-0000-4000-8000-000000000001"
K = "SHA256E-s4--" + "a" * 64


def status(method: str, target: str) -> int:
    try:
        parse_target(method, target)
    except HttpError as err:
        return err.status
    return 200


def test_versions_per_endpoint() -> None:
    assert status("POST", f"/git-annex/{U}/v2/gettimestamp") == 400
    assert status("POST", f"/git-annex/{U}/v3/gettimestamp") == 200
    assert status("POST", f"/git-annex/{U}/v0/putoffset") == 400
    assert status("POST", f"/git-annex/{U}/v1/putoffset") == 200
    assert status("POST", f"/git-annex/{U}/v2/remove-before") == 400
    assert status("POST", f"/git-annex/{U}/v5/checkpresent") == 400
    assert status("GET", f"/git-annex/{U}/v4/checkpresent") == 400  # wrong method
    assert status("POST", f"/git-annex/{U}/v4/key/{K}") == 400
    assert status("POST", f"/git-annex/{U}/v4/nosuch") == 404
    assert status("GET", f"/elsewhere/{U}/v4/key/{K}") == 404


def test_unversioned_get_and_values() -> None:
    req = parse_target("GET", f"/git-annex/{U}/key/{K}")
    assert (req.endpoint, req.version, req.versioned, req.client_uuid()) == (
        Endpoint.GET,
        0,
        False,
        "",
    )
    assert str(req.key()) == K
    encoded = encode_value(f"[{U}]")  # a literal bracketed value is always encoded
    assert encoded.startswith("[")
    assert decode_value(encoded) == f"[{U}]"
    b64u = base64.urlsafe_b64encode(U.encode()).decode()
    assert parse_target("GET", f"/git-annex/%5B{b64u}%5D/v4/key/{K}").uuid == U
    assert decode_value(encode_value("fïle name.txt")) == "fïle name.txt"
    with pytest.raises(BadValue):
        decode_value("[!!!]")


def test_parameters() -> None:
    req = parse_target("POST", f"/git-annex/{U}/v4/put?key={K}&offset=2&bypass=a&bypass=b")
    with pytest.raises(HttpError, match="clientuuid is required"):
        req.client_uuid()
    assert req.number("offset") == 2
    assert req.bypass() == ("a", "b")
    bad = parse_target("POST", f"/git-annex/{U}/v4/checkpresent?key=not+a+key&clientuuid={C}")
    with pytest.raises(HttpError, match="key parse error"):
        bad.key()
    keep = parse_target("POST", f"/git-annex/{U}/v4/keeplocked?lockid=L")
    assert keep.client_uuid() == ""  # optional on keeplocked only
