"""The package's names, handed out on first use (PEP 562): every name in `__all__` resolves to
the object of the module it lives in, and importing the package loads none of them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import annextui.backend.preferred as preferred

_CHECK = """
import importlib, sys
import annextui.backend.preferred as P
loaded = sorted(m for m in sys.modules if m.startswith("annextui.backend.preferred."))
assert not loaded, loaded  # the package alone: no module of it yet
for name in P.__all__:
    value = getattr(P, name)
    home = P._HOMES.get(name)
    if home is not None:
        assert getattr(importlib.import_module(f"{P.__name__}.{home}"), name) is value, name
print(len(P.__all__))
"""


def test_every_exported_name_resolves_lazily_to_its_module() -> None:
    out = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(preferred.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchName"):
        preferred.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
