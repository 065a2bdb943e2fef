"""git-annex-shell's command line, as real clients and sshd produce it (git-annex-shell.md §1-3).

Pure: no I/O, so the shell can parse before importing anything heavy.

Rules (`CmdLine/GitAnnexShell.hs`):
1. leading `-c` words are skipped (sshd runs `SHELL -c "<command string>"`);
2. `CMD DIR PARAMS…` with CMD a built-in → that built-in;
3. a single word whose first token names this program (`git-annex-shell …`, or our own name,
   with any directory in front) → shell-unquoted and parsed again;
4. anything else → handed to `git-shell -c`.
Built-in parameters: options anywhere (`--uuid U`, `--uuid=U`, `--debug`, `-q`, …), then
`-- field=value … --` (only `remoteuuid` and `autoinit=1` are kept), then rsync options.
"""

from __future__ import annotations

import os
import re

from annextui.values import Value, value_field

BUILTINS: tuple[str, ...] = (
    "configlist",
    "dropkey",
    "gcryptsetup",
    "inannex",
    "notifychanges",
    "p2pstdio",
    "recvkey",
    "sendkey",
)
READONLY_COMMANDS = frozenset({"configlist", "notifychanges", "p2pstdio", "inannex", "sendkey"})
APPENDONLY_COMMANDS = READONLY_COMMANDS | {"recvkey"}

DESCRIPTIONS = {
    "configlist": "outputs relevant git configuration",
    "dropkey": "drops annexed content for specified keys",
    "gcryptsetup": "sets up gcrypt repository",
    "inannex": "checks if keys are present in the annex",
    "notifychanges": "sends notification when git refs are changed",
    "p2pstdio": "communicate in P2P protocol over stdio",
    "recvkey": "runs rsync in server mode to receive content",
    "sendkey": "runs rsync in server mode to send content",
}

# annextui-relay too: a relay that falls back runs annextui-shell with its own command line
PROGRAM_NAMES = frozenset({"git-annex-shell", "annextui-shell", "annextui-relay"})

_FLAGS = {
    "--force": "force",
    "--fast": "fast",
    "-F": "fast",
    "--quiet": "quiet",
    "-q": "quiet",
    "--verbose": "verbose",
    "-v": "verbose",
    "--debug": "debug",
    "-d": "debug",
    "--no-debug": "no-debug",
    "--explain": "explain",
}
# Options only some commands take (dropkey has git-annex's jsonOptions and --batch).
_COMMAND_FLAGS = {
    "dropkey": {
        "--batch": "batch",
        "--json": "json",
        "--json-error-messages": "json-error-messages",
    }
}
_VALUED = {"--uuid", "--debugfilter"}
_SHORT = {"F": "fast", "q": "quiet", "v": "verbose", "d": "debug"}
_FIELD_CHECKS = {
    "remoteuuid": re.compile(r"[A-Za-z0-9-]*"),
    "autoinit": re.compile(r"1"),
}


class BadParameters(Exception):
    """No command, or a built-in without its directory: `bad parameters` plus usage."""


class OptionError(Exception):
    """An unknown option or one missing its value (optparse-applicative's message)."""

    def __init__(self, message: str, command: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.command = command


class Builtin(Value):
    command: str
    directory: str
    params: tuple[str, ...] = ()
    uuid: str | None = None
    debug: bool = False
    quiet: bool = False
    flags: frozenset[str] = frozenset()
    fields: dict[str, str] = value_field(default_factory=dict)
    rsync_options: tuple[str, ...] = ()

    @property
    def autoinit(self) -> bool:
        return self.fields.get("autoinit") == "1"

    @property
    def remote_uuid(self) -> str | None:
        return self.fields.get("remoteuuid")


class Passthrough(Value):
    """Run `git-shell -c WORDS…`; `directory` is the repository named by the last word."""

    words: tuple[str, ...]
    directory: str | None


Command = Builtin | Passthrough


def shell_unescape(s: str) -> list[str]:
    """git-annex's shellUnEscape: split on spaces outside '…' or "…" (no backslash escapes)."""
    words: list[str] = []
    i, n = 0, len(s)
    while i < n:
        w: list[str] = []
        while i < n:
            c = s[i]
            i += 1
            if c == " ":
                break
            if c in "'\"":
                while i < n and s[i] != c:
                    w.append(s[i])
                    i += 1
                i += 1  # the closing quote (or past the end)
            else:
                w.append(c)
        words.append("".join(w))
    return words


def shell_escape(s: str) -> str:
    """git-annex's shellEscape: single-quote, with `'` written as `'"'"'`."""
    return "'" + s.replace("'", "'\"'\"'") + "'"


def partition_params(ps: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Split at `--` markers: (params, field params, rsync options)."""
    segments: list[list[str]] = [[]]
    for p in ps:
        if p == "--":
            segments.append([])
        else:
            segments[-1].append(p)
    if len(segments) == 1:
        return segments[0], [], []
    rest: list[str] = []
    for i, seg in enumerate(segments[2:]):
        if i:
            rest.append("--")
        rest.extend(seg)
    return segments[0], segments[1], rest


def parse_fields(words: list[str]) -> dict[str, str]:
    """`field=value` words; unknown fields and bad values are silently dropped (checkField)."""
    out: dict[str, str] = {}
    for w in words:
        name, _, value = w.partition("=")
        check = _FIELD_CHECKS.get(name)
        if check is not None and check.fullmatch(value):
            out[name] = value
    return out


def _is_program_word(word: str, names: frozenset[str]) -> bool:
    first = word.split(" ", 1)[0]
    return " " in word and os.path.basename(first) in names


def parse_argv(argv: list[str], *, program_names: frozenset[str] = PROGRAM_NAMES) -> Command:
    """Classify a command line; raises BadParameters or OptionError like git-annex-shell."""
    args = list(argv)
    for _ in range(8):  # -c, then possibly one level of "git-annex-shell '…' …"
        while args and args[0] == "-c":
            args = args[1:]
        if not args:
            raise BadParameters()
        if len(args) >= 2 and args[0] in BUILTINS:
            return _builtin(args[0], args[1], args[2:])
        if len(args) == 1 and _is_program_word(args[0], program_names):
            args = shell_unescape(args[0])[1:]
            continue
        if args[0] in BUILTINS:
            raise BadParameters()
        return _passthrough(args)
    raise BadParameters()


def _passthrough(args: list[str]) -> Passthrough:
    params, _, _ = partition_params(args)
    last = shell_unescape(args[-1]) if args else []
    return Passthrough(tuple(params), last[-1] if last else None)


def _builtin(command: str, directory: str, rest: list[str]) -> Builtin:
    params, fieldparams, rsync = partition_params(rest)
    positional: list[str] = []
    uuid: str | None = None
    flags: set[str] = set()
    i = 0
    while i < len(params):
        p = params[i]
        i += 1
        if p.startswith("--") and "=" in p and p.split("=", 1)[0] in _VALUED:
            name, value = p.split("=", 1)
        elif p in _VALUED:
            if i >= len(params):
                raise OptionError(f"The option `{p}` expects an argument.", command)
            name, value = p, params[i]
            i += 1
        elif p in _FLAGS:
            flags.add(_FLAGS[p])
            continue
        elif p in _COMMAND_FLAGS.get(command, {}):
            flags.add(_COMMAND_FLAGS[command][p])
            continue
        elif p.startswith("-") and len(p) > 1 and not p.startswith("--"):
            letters = p[1:]
            if all(c in _SHORT for c in letters):
                flags.update(_SHORT[c] for c in letters)
                continue
            raise OptionError(f"Invalid option `{p}'", None)
        elif p.startswith("-") and p != "-":
            raise OptionError(f"Invalid option `{p}'", None)
        else:
            positional.append(p)
            continue
        if name == "--uuid":
            uuid = value
    debug = "debug" in flags and "no-debug" not in flags
    return Builtin(
        command=command,
        directory=directory,
        params=tuple(positional),
        uuid=uuid,
        debug=debug,
        quiet="quiet" in flags,
        flags=frozenset(flags),
        fields=parse_fields(fieldparams),
        rsync_options=tuple(rsync),
    )


def usage(program: str = "git-annex-shell") -> str:
    """The usage text printed after `bad parameters`."""
    width = max(len(c) for c in BUILTINS)
    lines = [
        f"Usage: {program} [-c] command [parameters ...] [option ...]",
        "",
        "Plumbing commands:",
        "",
        *(f"{c.ljust(width)} {DESCRIPTIONS[c]}" for c in BUILTINS),
        "",
    ]
    return "\n".join(lines)


def option_usage(program: str = "git-annex-shell", command: str | None = None) -> str:
    """The usage text optparse-applicative prints after an option error."""
    if command is not None:
        return f"Usage: {program} {command} [--uuid UUID]\n"
    width = max(len(c) for c in BUILTINS)
    lines = [
        f"Usage: {program} COMMAND",
        "",
        f"  {program} - Restricted login shell for git-annex only SSH access",
        "",
        "  Plumbing commands:",
        "",
        *(f"  {c.ljust(width)} {DESCRIPTIONS[c]}" for c in BUILTINS),
        "",
    ]
    return "\n".join(lines)
