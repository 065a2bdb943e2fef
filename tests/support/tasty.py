"""Reading the results of git-annex's own test runners (`git annex test`, `git annex
testremote`), which print tasty's console tree.

Why not `--tap`: with it, `git annex test` refuses to start ("Test dependencies have
cycles", from the testremote groups' repeated test names); the console tree works for both.

The tree: one block per test group (`git annex test` runs each group in a child process and
prints each child's tree and summary in turn), two spaces of indentation per level, a group as
a bare name, a test as `name: OK` or `name: FAIL` (plus a time). Lines indented below a test
are its messages (a failure's reason, QuickCheck's `+++ OK`). Every block ends with a summary
(`All N tests passed`, `M out of N tests failed`), which `parse` checks its count against, so a
misread tree fails loudly rather than hiding a test.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.annex import StrPath, run

_RESULT = re.compile(r"^(?P<indent> *)(?P<name>\S.*?):\s+(?P<status>OK|FAIL)(?:\s.*)?$")
_PASSED = re.compile(r"^All (?P<total>\d+) tests passed")
_FAILED = re.compile(r"^(?P<failed>\d+) out of (?P<total>\d+) tests failed")


class TastyParseError(AssertionError):
    pass


@dataclass
class TastyRun:
    """Outcomes by full test name (`Tests.Group.Sub.test`, as `-l` lists them)."""

    outcomes: dict[str, bool] = field(default_factory=dict)
    messages: dict[str, list[str]] = field(default_factory=dict)
    summary_total: int = 0
    summary_failed: int = 0

    @property
    def passed(self) -> set[str]:
        return {n for n, ok in self.outcomes.items() if ok}

    @property
    def failed(self) -> set[str]:
        return {n for n, ok in self.outcomes.items() if not ok}

    def report(self, names: set[str] | None = None) -> str:
        """The failures (or `names`) with their messages, for an assertion message."""
        chosen = sorted(self.failed if names is None else names)
        return "\n".join(f"{n}\n    " + "\n    ".join(self.messages.get(n, [])) for n in chosen)


def parse(text: str) -> TastyRun:
    """Every test of every block in `text`; raises TastyParseError when the count of tests
    read differs from what the blocks' summaries add up to (a truncated or misread run)."""
    run = TastyRun()
    stack: list[tuple[int, str]] = []  # (indent, group name) of the enclosing groups
    current: str | None = None  # test whose message lines follow
    current_indent = -1
    # "\n" only: a failure's transcript holds progress lines redrawn with "\r"
    for line in text.split("\n"):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if current is not None and indent > current_indent:
            run.messages.setdefault(current, []).append(line.strip())
            continue
        current = None
        summary = _PASSED.match(line) or _FAILED.match(line)
        if summary:
            run.summary_total += int(summary["total"])
            run.summary_failed += int(summary.groupdict().get("failed") or 0)
            stack = []
            continue
        result = _RESULT.match(line)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if result:
            name = ".".join([*(g for _, g in stack), result["name"]])
            if name in run.outcomes:
                # repeated names exist (testremote's "present True"); keep both outcomes
                name = _unique(name, run.outcomes)
            run.outcomes[name] = result["status"] == "OK"
            current, current_indent = name, indent
        elif indent == 0 or stack:
            stack.append((indent, line.strip()))
    if len(run.outcomes) != run.summary_total or len(run.failed) != run.summary_failed:
        raise TastyParseError(
            f"read {len(run.outcomes)} tests ({len(run.failed)} failed) but the summaries say "
            f"{run.summary_total} ({run.summary_failed} failed):\n{text[-4000:]}"
        )
    return run


def _unique(name: str, taken: dict[str, bool]) -> str:
    n = 2
    while f"{name} #{n}" in taken:
        n += 1
    return f"{name} #{n}"


def run_tasty(
    argv: Sequence[StrPath], cwd: Path, env: Mapping[str, str], timeout: float
) -> tuple[TastyRun, str]:
    """Run a tasty-based git-annex command (`git annex test ...`, `git annex testremote ...`)
    in `cwd`; its parsed results, and its stderr. Its exit status is not checked: the results
    say what failed, and a run that died early fails `parse`'s count check (or ran nothing)."""
    cwd.mkdir(parents=True, exist_ok=True)
    res = run(argv, cwd, check=False, env=env, timeout=timeout)
    results = parse(res.stdout)
    if not results.outcomes:
        raise TastyParseError(f"no test ran (exit status {res.returncode}):\n{res.stderr}")
    return results, res.stderr
