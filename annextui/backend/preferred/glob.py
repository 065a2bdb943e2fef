"""git-annex globs (``Utility/Glob.hs``), matched exactly as the real binary matches them.

git-annex turns a glob into a POSIX extended regex (``wildToRegex``) and hands it to
regex-tdfa with its default options (case sensitive unless asked otherwise, *multiline*).
Both steps have consequences a naive ``fnmatch`` would get wrong, all verified against
git-annex 10.20261026:

* ``*`` is ``.*`` and matches ``/``; ``?`` is ``.``; a ``/`` in a file glob is ``[/]+`` (one or
  more slashes); every other non-alphanumeric character is backslash-escaped.
* Bracket contents are copied raw, so ``[^a]`` negates like ``[!a]``, POSIX classes are the
  ASCII sets of regex-tdfa, ``[[=a=]]`` is the characters ``a``, ``[[.a.]]`` is empty, and a
  class such as ``[[:space:]]`` also matches a backslash (``wildToRegex`` closes its bracket at
  the first ``]``, regex-tdfa at the second, swallowing the escaped ``\\]``).
* Escaped ``'`` `` ` `` ``<`` ``>`` are regex-tdfa *assertions* (end/start of text, word
  start/end), so e.g. the glob ``it's`` never matches the file ``it's``.
* Multiline: ``^``/``$`` match at newlines, ``.`` and negated brackets never match ``\\n``, and
  the match may start anywhere (a file ``a\\nb`` matches the glob ``b``).
* A glob whose regex does not compile (``[abc``, ``[z-a]``, ``[^]``) is accepted by the parser
  but fails when it is first used (git-annex: ``failed to compile regex``); here
  ``compile_glob`` raises ``GlobError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from annextui.backend.ghcread import hs_isalpha, hs_isdigit

__all__ = ["GlobError", "compile_glob", "glob_matches", "wild_to_regex"]


class GlobError(ValueError):
    """The regex git-annex derives from a glob does not compile."""


def wild_to_regex(glob: str, filepath: bool) -> str:
    """``'^' : wildToRegex globfilepath glob ++ "$"`` (POSIX build)."""
    out: list[str] = ["^"]
    i, n = 0, len(glob)

    def esc(c: str) -> str:
        return "\\" + c

    in_pat = False
    while i < n:
        c = glob[i]
        if in_pat:
            if c == "]":
                out.append("]")
                in_pat = False
            elif c == "\\":
                out.append(esc(c))
            else:
                out.append(c)
            i += 1
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            if i + 1 < n and glob[i + 1] == "!":
                out.append("[^")
                i += 1
            else:
                out.append("[")
            in_pat = True
        elif c == "/" and filepath:
            out.append("[/]+")
        elif c == "\\" and filepath:
            out.append("[\\]+")
        elif hs_isdigit(c) or hs_isalpha(c):
            out.append(c)
        else:
            out.append(esc(c))
        i += 1
    out.append("$")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# regex-tdfa's parser (Text.Regex.TDFA.ReadRegex) producing a Python regex


_CLASSES: dict[str, str] = {
    "alnum": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "digit": "0123456789",
    "punct": "".join(chr(c) for c in [*range(33, 48), *range(58, 65), *range(91, 97)])
    + "".join(chr(c) for c in range(123, 127)),
    "alpha": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "graph": "".join(chr(c) for c in range(33, 127)),
    "space": "\t\n\v\f\r ",
    "blank": "\t ",
    "lower": "abcdefghijklmnopqrstuvwxyz",
    "upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "cntrl": "".join(chr(c) for c in range(32)) + "\x7f",
    "print": "".join(chr(c) for c in range(32, 127)),
    "xdigit": "0123456789ABCDEFabcdef",
    "word": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz",
}

_WORD = r"[^\W]"  # Python's Unicode \w ~ Haskell isAlphaNum || '_'
_SPECIALS = "^.[$()|*+?{\\"


def _case_variants(c: str) -> set[str]:
    """regex-tdfa's case-insensitive expansion: ``toUpper c`` and ``toLower c`` if isAlpha."""
    out = {c}
    if hs_isalpha(c):
        up, low = c.upper(), c.lower()
        if len(up) == 1:
            out.add(up)
        if len(low) == 1:
            out.add(low)
    return out


def _class_char(c: str) -> str:
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else (f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")


class _Parser:
    __slots__ = ("icase", "pos", "src")

    def __init__(self, src: str, icase: bool) -> None:
        self.src = src
        self.icase = icase
        self.pos = 0

    def fail(self, why: str) -> GlobError:
        return GlobError(f"failed to compile regex: {self.src} ({why} at {self.pos})")

    def peek(self, k: int = 0) -> str | None:
        p = self.pos + k
        return self.src[p] if p < len(self.src) else None

    # p_regex = sepBy1 p_branch '|'
    def regex(self) -> str:
        branches = [self.branch()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.branch())
        return "|".join(branches) if len(branches) > 1 else branches[0]

    # p_branch = many1 p_piece
    def branch(self) -> str:
        pieces: list[str] = []
        while True:
            piece = self.piece()
            if piece is None:
                break
            pieces.append(piece)
        if not pieces:
            raise self.fail("empty branch")
        return "".join(pieces)

    def piece(self) -> str | None:
        start = self.pos
        atom = self.anchor()
        if atom is None:
            atom = self.atom()
        if atom is None:
            self.pos = start
            return None
        return self.post_atom(atom)

    def post_atom(self, atom: str) -> str:
        c = self.peek()
        if c in ("?", "+", "*"):
            self.pos += 1
            return f"(?:{atom}){c}"
        if c == "{":
            m = re.compile(r"\{([0-9]+)(?:(,)([0-9]*))?\}").match(self.src, self.pos)
            if m:
                low = int(m.group(1))
                if m.group(2) is None:
                    self.pos = m.end()
                    return f"(?:{atom}){{{low}}}"
                high = m.group(3)
                if high == "" or low <= int(high):
                    self.pos = m.end()
                    return f"(?:{atom}){{{low},{high}}}"
        return atom

    def anchor(self) -> str | None:
        c = self.peek()
        if c == "^":
            self.pos += 1
            return "(?:^)"
        if c == "$":
            self.pos += 1
            return "(?:$)"
        if self.src.startswith("()", self.pos):
            self.pos += 2
            return "(?:)"
        return None

    def atom(self) -> str | None:
        c = self.peek()
        if c is None:
            return None
        if c == "(":
            self.pos += 1
            inner = self.regex()
            if self.peek() != ")":
                raise self.fail("missing )")
            self.pos += 1
            return f"(?:{inner})"
        if c == "[":
            self.pos += 1
            return self.bracket()
        if c == ".":
            self.pos += 1
            return "."
        if c == "{" and not (self.peek(1) or "").isdigit():
            self.pos += 1
            return self.char("{")
        if c == "\\":
            e = self.peek(1)
            if e is None:
                raise self.fail("trailing backslash")
            self.pos += 2
            return self.escape(e)
        if c in _SPECIALS:
            return None
        self.pos += 1
        return self.char(c)

    def escape(self, c: str) -> str:
        if c == "`":
            return r"\A"
        if c == "'":
            return r"\Z"
        if c == "<":
            return rf"(?<!{_WORD})(?={_WORD})"
        if c == ">":
            return rf"(?<={_WORD})(?!{_WORD})"
        if c == "b":
            return rf"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
        if c == "B":
            return rf"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"
        return self.char(c)

    def char(self, c: str) -> str:
        if self.icase:
            variants = _case_variants(c)
            if len(variants) > 1:
                return "[" + "".join(_class_char(v) for v in sorted(variants)) + "]"
        return re.escape(c)

    def bracket(self) -> str:
        invert = False
        if self.peek() == "^":
            invert = True
            self.pos += 1
        chars: set[str] = set()
        ranges: list[tuple[str, str]] = []
        first = True
        if self.peek() == "]":
            chars.add("]")
            self.pos += 1
            first = False
        while True:
            c = self.peek()
            if c is None:
                raise self.fail("unterminated [")
            if c == "]":
                if first:
                    raise self.fail("empty []")
                self.pos += 1
                break
            first = False
            elem = self.bracket_special()
            if elem is not None:
                kind, name = elem
                if kind == ":":
                    chars.update(_CLASSES.get(name, ""))
                elif kind == "=":
                    chars.update(name)
                # collating elements ([. .]) match nothing in regex-tdfa
                continue
            nxt, end = self.peek(1), self.peek(2)
            if nxt == "-" and end is not None and end != "]":
                if c > end:
                    raise self.fail(f"range {c}-{end} is reversed")
                ranges.append((c, end))
                self.pos += 3
                continue
            chars.add(c)
            self.pos += 1
        return self.make_class(chars, ranges, invert)

    def bracket_special(self) -> tuple[str, str] | None:
        if self.peek() != "[":
            return None
        kind = self.peek(1)
        if kind not in (":", "=", "."):
            return None
        stop = kind + "]"
        i = self.pos + 2
        j = i
        while j < len(self.src) and self.src[j] not in (kind, "]"):
            j += 1
        if j == i or not self.src.startswith(stop, j):
            return None
        self.pos = j + 2
        return kind, self.src[i:j]

    def make_class(self, chars: set[str], ranges: list[tuple[str, str]], invert: bool) -> str:
        if self.icase:
            extra: set[str] = set()
            for c in chars:
                extra |= _case_variants(c)
            for lo, hi in ranges:
                for o in range(ord(lo), ord(hi) + 1):
                    ch = chr(o)
                    if hs_isalpha(ch):
                        extra |= _case_variants(ch)
            chars = chars | extra
        if invert:
            chars = chars | {"\n"}  # multiline: a negated set never matches a newline
        body = "".join(_class_char(c) for c in sorted(chars))
        body += "".join(f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in ranges)
        if not body:
            return r"[^\s\S]" if not invert else "."
        return f"[{'^' if invert else ''}{body}]"


def tdfa_to_python(regex: str, icase: bool = False) -> str:
    """The Python ``re`` source equivalent (for a boolean search) of a regex-tdfa regex."""
    p = _Parser(regex, icase)
    out = p.regex()
    if p.pos != len(regex):
        raise p.fail("unexpected character")
    return out


@lru_cache(maxsize=8192)
def compile_glob(
    glob: str, *, case_sensitive: bool = True, filepath: bool = True
) -> Callable[[str], bool]:
    """A predicate matching like git-annex's ``matchGlob (compileGlob glob case fp)``."""
    regex = wild_to_regex(glob, filepath)
    source = tdfa_to_python(regex, icase=not case_sensitive)
    try:
        compiled = re.compile(source, re.MULTILINE)
    except re.error as exc:  # pragma: no cover - the translation only emits valid syntax
        raise GlobError(f"failed to compile regex: {regex} ({exc})") from None
    search = compiled.search

    def match(value: str) -> bool:
        return search(value) is not None

    return match


def glob_matches(
    glob: str, value: str, *, case_sensitive: bool = True, filepath: bool = True
) -> bool:
    """One-off match (compiled globs are cached)."""
    return compile_glob(glob, case_sensitive=case_sensitive, filepath=filepath)(value)
