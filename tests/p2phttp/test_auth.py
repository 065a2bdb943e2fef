"""The permission matrix of the spec's section 6 (git-annex's checkAuthActionClass): unit rows
of `auth.py`, then the same rows through a running `annextui p2phttp`."""

from __future__ import annotations

import base64
import json

import pytest

from annextui.proxycore.http.auth import AuthPolicy, permitted
from annextui.proxycore.http.routes import Action, HttpError
from tests.gateway.topology import CLIENT, GW
from tests.p2phttp.support import Served, World, build, serve
from tests.support.annex import AnnexEnv

R, W, X, L = Action.READ, Action.WRITE, Action.REMOVE, Action.LOCK
USERS = {"alice": ("pw-a", "readwrite"), "rita": ("pw-r", "readonly"), "al": ("pw-p", "appendonly")}
ENV = {f"GIT_ANNEX_P2PHTTP_PASSWORD_{u}": pw for u, (pw, _) in USERS.items()} | {
    "GIT_ANNEX_P2PHTTP_PERMISSIONS_rita": "readonly",
    "GIT_ANNEX_P2PHTTP_PERMISSIONS_al": "appendonly",
}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def status(
    policy: AuthPolicy, action: Action, auth: str | None = None, secure: bool = False
) -> int:
    try:
        permitted(policy.access(auth, secure), action)
    except HttpError as err:
        return err.status
    return 200


def policy(**kw: bool) -> AuthPolicy:
    return AuthPolicy(users=AuthPolicy.users_from_env(ENV), **kw)


def row(p: AuthPolicy, auth: str | None = None, secure: bool = False) -> list[int]:
    return [status(p, a, auth, secure) for a in (R, W, X, L)]


def test_matrix_rows() -> None:
    assert row(policy()) == [401, 401, 401, 401]
    assert row(policy(unauth_readonly=True)) == [200, 403, 403, 200]
    assert row(policy(unauth_readonly=True, authenv_http=True)) == [200, 401, 401, 200]
    assert row(policy(unauth_readonly=True, unauth_nolocking=True)) == [200, 403, 403, 403]
    assert row(policy(unauth_appendonly=True)) == [200, 200, 403, 200]
    assert row(policy(wideopen=True)) == [200, 200, 200, 200]
    ro = policy(unauth_readonly=True, authenv_http=True)
    assert row(ro, basic("alice", "pw-a")) == [200, 200, 200, 200]
    assert row(ro, basic("rita", "pw-r")) == [200, 403, 403, 403]  # readonly user: no lock
    assert row(ro, basic("al", "pw-p")) == [200, 200, 403, 200]
    assert row(ro, basic("alice", "wrong")) == [200, 403, 403, 200]
    # --authenv takes credentials over HTTPS only: over HTTP they count for nothing
    https_only = policy(authenv=True)
    assert row(https_only, basic("alice", "pw-a")) == [401, 401, 401, 401]
    https_ro = policy(authenv=True, unauth_readonly=True)
    assert row(https_ro, basic("alice", "pw-a")) == [200, 403, 403, 200]
    assert row(https_ro) == [200, 401, 401, 200]
    assert row(https_only, basic("alice", "pw-a"), secure=True) == [200, 200, 200, 200]
    assert row(https_only) == [401, 401, 401, 401]


@pytest.fixture
def gateway(annex_env: AnnexEnv) -> World:
    return build(annex_env, annex_env.root)


def _codes(served: Served, key: str, auth: str | None = None) -> list[int]:
    base = f"/git-annex/{GW}/v4"
    headers = {"Authorization": auth} if auth else {}
    q = f"key={key}&clientuuid={CLIENT}"
    out = []
    for path, hdr in (
        (f"checkpresent?{q}", {}),
        (f"put?{q}&data-present=true", {"X-git-annex-data-length": "0"}),
        (f"remove?{q}", {}),
        (f"lockcontent?{q}", {}),
    ):
        st, h, _ = served.request("POST", f"{base}/{path}", b"", {**headers, **hdr})
        if st == 401:
            assert h["www-authenticate"] == 'Basic realm="git-annex", charset="UTF-8"'
        out.append(st)
    return out


@pytest.mark.slow
def test_matrix_through_the_server(annex_env: AnnexEnv, gateway: World) -> None:
    key = "SHA256E-s3--" + "0" * 64
    with serve(annex_env, gateway.gw, ["-J", "2"]) as served:
        assert _codes(served, key) == [401, 401, 401, 401]
    args = ["-J", "2", "--unauth-readonly", "--authenv-http"]
    with serve(annex_env, gateway.gw, args, extra_env=ENV) as served:
        assert _codes(served, key) == [200, 401, 401, 200]
        assert _codes(served, key, basic("alice", "pw-a")) == [200, 200, 200, 200]
        assert _codes(served, key, basic("rita", "pw-r")) == [200, 403, 403, 403]
        assert _codes(served, key, basic("alice", "nope")) == [200, 403, 403, 200]
        st, _, body = served.request(
            "POST", f"/git-annex/{GW}/v4/checkpresent?key={key}&clientuuid={CLIENT}", b""
        )
        assert json.loads(body) == {"present": False}
        # an unknown UUID is 404 before any permission check
        st, _, _ = served.request(
            "POST", f"/git-annex/{CLIENT}/v4/checkpresent?key={key}&clientuuid={CLIENT}", b""
        )
        assert st == 404
