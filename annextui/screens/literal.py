"""Show data literally. Names, descriptions, groups, paths and log values come from other
people's repositories through the git-annex branch, so the console never parses them as
markup and never writes their control characters to the terminal.

String escaping cannot do this for Textual markup (`[B]` and `[$var]` are tags, and a trailing
backslash escapes the next tag), so data goes in as template *variables*, which Textual inserts
verbatim.
"""

from __future__ import annotations

import re

from textual.content import Content

# C0 controls but newline, DEL, and C1 controls (ESC starts terminal sequences; C1 0x9b is a
# one-byte CSI). A newline stays: log values never hold one, our own messages do.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _picture(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟, U+2400 Control Pictures: visible, one cell wide
    return "␡" if code == 0x7F else "\ufffd"


def clean(text: str) -> str:
    """`text` with every control character but newline made visible (ESC shows as `␛`)."""
    return _CONTROL.sub(_picture, text)


def literal(text: str) -> Content:
    """Data as content: shown exactly, never parsed as markup."""
    return Content(clean(text))


def markup(template: str, **values: object) -> Content:
    """Our `template` markup with `$name` replaced by `values` shown literally."""
    return Content.from_markup(template, **{k: clean(str(v)) for k, v in values.items()})


def lines(*parts: Content | str) -> Content:
    """Content pieces on separate lines (a str piece is our own markup, never data)."""
    pieces = (p if isinstance(p, Content) else Content.from_markup(p) for p in parts)
    return Content("\n").join(pieces)
