"""Console fixtures: one demo per test module (built by the demo builder), copied for tests
that change it; a driver for Pilot sessions; the real git-annex to check outcomes."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from annextui.backend.demo import DemoRepo, build_demo
from tests.console.support import copy_demo
from tests.support.annex import AnnexEnv


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRepo]:
    root = tmp_path_factory.mktemp("demo") / "demo"
    demo = build_demo(root)
    yield demo
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def demo(demo_template: DemoRepo, tmp_path: Path) -> DemoRepo:
    """A private copy of the module's demo, for a test that changes it."""
    return copy_demo(demo_template, tmp_path / "demo")


@pytest.fixture
def annex(annex_env: AnnexEnv) -> AnnexEnv:
    """The real git-annex, in a test environment."""
    return annex_env


@pytest.fixture(autouse=True)
def private_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Console settings (the saved theme) in a directory of the test's own, never the user's."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC: the top bar's data stamp shows local time, the same everywhere."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()
