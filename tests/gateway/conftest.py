"""Fixtures shared by the gateway modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway import topology as T
from tests.support import annex as annex_support
from tests.support.sshd import Sshd


@pytest.fixture(scope="module")
def topo(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    git_annex_bin: Path,
    sshd: Sshd,
) -> Iterator[T.Topology]:
    """The cluster topology of tests/gateway/topology.py (client shell: annextui-shell), one
    per test module, torn down with it."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with annex_support.ssh_world(tmp_path_factory, name, git_annex_bin, sshd) as (root, env):
        yield T.build(env, sshd, root)
