"""`--directory`: every git-annex repository below a directory is served, also one added while
the server runs (found at its first request), by a real git-annex client."""

from __future__ import annotations

import pytest

from tests.p2phttp.support import serve
from tests.support.annex import AnnexEnv

pytestmark = pytest.mark.slow
LATE = "1a7e0000-0000-4000-8000-000000000099"


def test_repository_added_while_running(annex_env: AnnexEnv) -> None:
    env = annex_env
    served_dir = env.root / "srv"
    first = env.make_annex_repo(served_dir / "team" / "first.git", bare=True)
    with serve(env, env.root, ["--directory", str(served_dir), "-J", "2", "--wideopen"]) as s:
        late = env.make_annex_repo(served_dir / "late.git", LATE, "late", bare=True)
        client = env.clone(late, env.root / "client", annex_init=False)
        env.annex(client, "init", "-q", "client")
        env.git(client, "config", "annex.security.allowed-ip-addresses", "all")
        env.git(
            client,
            "config",
            "remote.origin.annexUrl",
            f"annex+http://127.0.0.1:{s.port}/git-annex/",
        )
        env.add_files(client, {"x.txt": "late arrival\n"})
        env.annex(client, "copy", "--to", "origin", "x.txt")
        env.annex(late, "fsck", "-q", "--all")
        present = env.annex_json(
            late, "whereis", "--key", env.annex(client, "lookupkey", "x.txt").stdout.strip()
        )
        assert LATE in {w["uuid"] for w in present[0]["whereis"]}
        assert first.exists()


def test_repository_added_while_running_over_https(annex_env: AnnexEnv) -> None:
    """The same over the server's own HTTPS (`--certfile`/`--privatekeyfile`), the client
    verifying the certificate against the test's CA (it does not skip verification)."""
    from tests.support import nginx
    from tests.support import p2phttp as H

    env = annex_env
    served_dir = env.root / "srv"
    env.make_annex_repo(served_dir / "first.git", bare=True)
    tls = nginx.make_tls(env.root / "tls")
    options = ["--directory", str(served_dir), "-J", "2", "--wideopen"]
    options += ["--certfile", str(tls.cert), "--privatekeyfile", str(tls.key)]
    with H.running("annextui", env.root, env.env, options, tls=True) as server:
        late = env.make_annex_repo(served_dir / "late.git", LATE, "late", bare=True)
        client = env.root / "client"
        env.run(["git", "clone", "-q", str(late), str(client)])
        env.annex(client, "init", "-q", "client")
        H.point_client(env, client, "https", server.url, git_url=str(late), ca_file=tls.ca)
        env.add_files(client, {"s.txt": "late arrival over https\n"})
        env.annex(client, "copy", "--to", "https", "s.txt")
        env.annex(client, "drop", "s.txt")
        env.annex(client, "get", "--from", "https", "s.txt")
        assert (client / "s.txt").read_text() == "late arrival over https\n"
        env.annex(client, "fsck", "-q", "--from", "https", "s.txt")
        env.annex(late, "fsck", "-q", "--all")
        key = env.annex(client, "lookupkey", "s.txt").stdout.strip()
        present = env.annex_json(late, "whereis", "--key", key)
        assert LATE in {w["uuid"] for w in present[0]["whereis"]}
