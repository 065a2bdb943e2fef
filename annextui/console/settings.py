"""The console's settings that outlive a session (the theme chosen in the palette), in
`$XDG_CONFIG_HOME/annextui/settings.toml` (`~/.config/annextui/` without it).

Read once at start; written whole and atomically (a temporary file renamed over it) whenever a
setting changes. A missing or unreadable file means the defaults: settings are a convenience,
never a reason for the console not to open.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "settings.toml"


@dataclass(frozen=True, slots=True)
class Settings:
    theme: str | None = None


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"  # as the spec says
    return root / "annextui" / FILE_NAME


def load_settings(path: Path | None = None) -> Settings:
    path = path or settings_path()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return Settings()
    theme = data.get("theme")
    return Settings(theme=theme if isinstance(theme, str) else None)


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write `settings` (OSError when the directory cannot be made or written)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# annextui console settings (rewritten when a setting changes)"]
    if settings.theme is not None:
        lines.append(f"theme = {json.dumps(settings.theme)}")  # a JSON string is a TOML one
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{FILE_NAME}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
