"""Which remote URLs name a repository on this machine, and where: one rule (git's) for the
gateway's in-process nodes, the console's reachability and sizes, and uuid learning."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from annextui.backend.repo import Remote, Repository, local_path_of_url

TOP = Path("/srv/gw")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/a/b", "/a/b"),
        ("file:///a/b", "/a/b"),
        ("./node1", "/srv/gw/node1"),
        ("../node2", "/srv/node2"),
        ("node3", "/srv/gw/node3"),
        ("a/b:c", "/srv/gw/a/b:c"),  # a colon after the first slash: still a path
        ("host:repo", None),  # scp-like
        ("git@example.com:x/y", None),
        ("ssh://host/repo", None),
        ("annex+http://host/git-annex/", None),
        ("https://host/repo", None),
        ("", None),
    ],
)
def test_local_path_of_url(url: str, path: str | None) -> None:
    got = local_path_of_url(url, TOP)
    assert (str(got) if got is not None else None) == path
    assert Remote("r", url, None).is_local_path is (path is not None)


def test_relative_remote_learned_from_the_repository_top(tmp_path: Path) -> None:
    """A relative remote URL is read from the repository's top, wherever we run."""
    for name in ("top", "node"):
        subprocess.run(["git", "init", "-q", str(tmp_path / name)], check=True)
    node = tmp_path / "node"
    subprocess.run(["git", "-C", str(node), "config", "annex.uuid", "n0de"], check=True)
    top = tmp_path / "top"
    subprocess.run(["git", "-C", str(top), "remote", "add", "node", "../node"], check=True)
    repo = Repository(top)
    repo.learn_local_remote_uuids()
    assert Repository(top).remotes["node"].uuid == "n0de"
