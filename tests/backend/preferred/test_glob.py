"""git-annex globs: unit cases (verified with git-annex 10.20261026) and a differential test
against ``git annex find --include/--exclude/--metadata`` over files with awkward names."""

from __future__ import annotations

import json
import subprocess

import pytest

from annextui.backend.preferred.glob import GlobError, compile_glob, glob_matches, wild_to_regex
from tests.support import annex as annex_support
from tests.support.annex import AnnexEnv

# (file, glob, matches) -- each checked against the real binary with matchexpression --file
VERIFIED = [
    ("a\nb", "b", True),  # multiline regex: a later line can match
    ("a\nb", "a", True),
    ("a\nb", "a?b", False),  # '.' never matches a newline
    ("a\nb", "a*", True),
    ("a\nb", "[!x]", True),
    ("x y", "x[[:space:]]y", True),
    ("x\\y", "x[[:space:]]y", True),  # the class bracket swallows the escaped "\]"
    ("x y", "x[[:space:]]", False),
    ("b", "[]b]", True),
    ("]", "[]b]", True),
    ("a//b", "a/b", True),  # one '/' matches several
    ("a/b", "a//b", False),
    ("ab", "a[.b.]", True),
    ("A", "a", False),
    ("x/y", "*y", True),
    ("é", "?", True),
    ("é", "[[:alpha:]]", False),  # POSIX classes are ASCII only
    ("(", "[[:graph:]]", True),
    ("a{1}", "a{1}", True),
    ("a", "a{1}", False),
    ("it's", "it's", False),  # \' is an end-of-text assertion
    ("it's", "it*", True),
    ("a`b", "a`b", False),
    ("a<b", "a<b", False),
    ("a>b", "a>b", False),
    ("a<", "a<", False),
    ("<a", "<a", False),
    ("a.", "a[.b.]", True),
    ("a=", "a[=b=]", True),
    ("ab", "a[[=b=]]", True),
    ("a=", "a[[=b=]]", False),
    ("ab", "a[[.b.]]", False),  # collating elements match nothing
    ("a.", "a[[.b.]]", False),
    ("a-", "a[a-]", True),
    ("b", "[a-c]", True),
    ("b", "[!a-c]", False),
    ("x", "[^a]", True),  # '^' negates like '!'
    ("a", "[^a]", False),
    ("^", "[^a]", True),
    ("a|b", "a|b", True),
    ("a", "a|b", False),
]


@pytest.mark.parametrize(("file", "glob", "expected"), VERIFIED)
def test_verified_globs(file: str, glob: str, expected: bool) -> None:
    assert glob_matches(glob, file) is expected


@pytest.mark.parametrize("glob", ["[abc", "[z-a]", "[^]", "a[", "[[:alpha:]"])
def test_uncompilable_globs(glob: str) -> None:
    with pytest.raises(GlobError, match="failed to compile regex"):
        compile_glob(glob)


def test_wild_to_regex_is_upstreams() -> None:
    assert wild_to_regex("*.bin", True) == "^.*\\.bin$"
    assert wild_to_regex("a/b?[!x]", True) == "^a[/]+b.[^x]$"
    assert wild_to_regex("a/b", False) == "^a\\/b$"
    assert wild_to_regex("a\\b", True) == "^a[\\]+b$"
    assert wild_to_regex("[a\\]", True) == "^[a\\\\]$"


def test_case_insensitive_metadata_globs() -> None:
    assert glob_matches("foo*", "FOObar", case_sensitive=False, filepath=False)
    assert glob_matches("[a-c]x", "BX", case_sensitive=False, filepath=False)
    assert not glob_matches("[!a-c]x", "BX", case_sensitive=False, filepath=False)
    assert glob_matches("a/b", "A/B", case_sensitive=False, filepath=False)
    assert not glob_matches("a/b", "a//b", case_sensitive=False, filepath=False)


NAMES = [f"c_{chr(i)}" for i in range(1, 128) if chr(i) not in "/\n"] + [
    "c_é",
    "c_ß",
    "c_Σ",
    "c_\u00a0",
    "c_\u0660",
    "a\nb",
    "x y",
    "x\\y",
    "it's",
    "a<b",
    "a>b",
    "a`b",
    "ab",
    "A",
    "aB.TXT",
    "dir/sub/file.bin",
    "dir/file.bin",
    "deep/a/b/c.txt",
    "[x]",
    "{x}",
    "a|b",
    "a+b",
    "a.b",
    "a^b",
    "$x",
    "x$",
    "archive/z",
    "d/archive/y",
    "ünï/cödé",
]

GLOBS = [
    "*",
    "?",
    "c_?",
    "*.bin",
    "*/*",
    "dir/*",
    "*/archive/*",
    "archive/*",
    "c_[[:alnum:]]",
    "c_[[:digit:]]",
    "c_[[:punct:]]",
    "c_[[:alpha:]]",
    "c_[[:graph:]]",
    "c_[[:space:]]",
    "c_[[:blank:]]",
    "c_[[:lower:]]",
    "c_[[:upper:]]",
    "c_[[:cntrl:]]",
    "c_[[:print:]]",
    "c_[[:xdigit:]]",
    "c_[[:word:]]",
    "c_[[:nope:]]",
    "c_[[=a=]]",
    "c_[[.a.]]",
    "c_[!a-z]",
    "c_[^a-z]",
    "c_[]]",
    "c_[]a]",
    "c_[a-]",
    "c_[--/]",
    "c_[\\]",
    "c_\\",
    "*'*",
    "*<*",
    "it*",
    "a?b",
    "a*b",
    "*b",
    "x[[:space:]]y",
    "[[]x]",
    "{x}",
    "a|b",
    "a.b",
    "*$",
    "$*",
    "*ü*",
    "ü*/*",
    "[!c]*",
    "A*",
    "deep/a/b/c.txt",
    "deep/*/c.txt",
]


def test_globs_match_git_annex(annex_env: AnnexEnv) -> None:
    e = annex_env.env
    repo = annex_support.make_annex_repo(annex_env.root / "globs", env=e)
    batch = "".join(f"WORM--k{i} {n}\0" for i, n in enumerate(NAMES))
    annex_support.run(["git", "annex", "fromkey", "--force", "--batch", "-z"], cwd=repo, env=e,
                      input=batch)  # fmt: skip
    meta = "".join(
        json.dumps({"key": f"WORM--k{i}", "fields": {"name": [n]}}) + "\n"
        for i, n in enumerate(NAMES)
        if " " not in n  # keep the metadata values simple
    )
    annex_support.run(["git", "annex", "metadata", "--batch", "--json"], cwd=repo, env=e,
                      input=meta)  # fmt: skip

    def find(*opts: str) -> set[str]:
        out = subprocess.run(
            ["git", "annex", "find", "--print0", *opts],
            cwd=repo,
            env=e,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()
        return {p for p in out.split("\0") if p}

    mismatches = []
    for glob in GLOBS:
        ours = {n for n in NAMES if glob_matches(glob, n)}
        theirs = find(f"--include={glob}")
        if ours != theirs:
            mismatches.append(f"include={glob!r}: only git-annex {sorted(theirs - ours)!r}, "
                              f"only annextui {sorted(ours - theirs)!r}")  # fmt: skip
    for glob in ("*.bin", "c_[[:alpha:]]", "*'*"):
        ours = {n for n in NAMES if not glob_matches(glob, n)}
        if ours != find(f"--exclude={glob}"):
            mismatches.append(f"exclude={glob!r}")
    by_key = {f"WORM--k{i}": n for i, n in enumerate(NAMES) if " " not in n}
    for glob in ("C_[A-C]", "c_?", "*S*", "c_[[:upper:]]", "IT*"):
        ours = {n for n in by_key.values() if glob_matches(glob, n, case_sensitive=False,
                                                           filepath=False)}  # fmt: skip
        theirs = find(f"--metadata=name={glob}")
        if ours != theirs:
            mismatches.append(f"metadata name={glob!r}: only git-annex {sorted(theirs - ours)!r}"
                              f", only annextui {sorted(ours - theirs)!r}")  # fmt: skip
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("glob", ["[abc", "[z-a]"])
def test_uncompilable_glob_fails_in_git_annex(annex_env: AnnexEnv, glob: str) -> None:
    repo = annex_support.make_annex_repo(annex_env.root / "bad", env=annex_env.env)
    res = annex_support.run(
        ["git", "annex", "matchexpression", "--file=x", f"include={glob}"],
        cwd=repo,
        env=annex_env.env,
        check=False,
        timeout=60,
    )
    assert res.returncode != 0
    assert "failed to compile regex" in res.stderr
    with pytest.raises(GlobError):
        compile_glob(glob)
