"""The file-path and URL helpers the terms use, as Haskell's `System.FilePath.Posix` and
git-annex's `getDownloader` compute them."""

from __future__ import annotations


def take_directory(path: str) -> str:
    """``takeDirectory``: ``a/b/c`` -> ``a/b``, ``c`` -> ``.``, ``/c`` -> ``/``."""
    i = path.rfind("/")
    if i < 0:
        return "."
    file = path[: i + 1]
    res = file.rstrip("/")
    return res if res else file


def split_path(path: str) -> list[str]:
    """``splitPath``: components keep their trailing slashes (``a/b`` -> ``['a/', 'b']``)."""
    out: list[str] = []
    i, n = 0, len(path)
    if path.startswith("/"):
        j = i
        while j < n and path[j] == "/":
            j += 1
        out.append(path[:j])
        i = j
    while i < n:
        j = i
        while j < n and path[j] != "/":
            j += 1
        while j < n and path[j] == "/":
            j += 1
        out.append(path[i:j])
        i = j
    return out


def strip_downloader(url: str) -> str:
    """``fst . getDownloader``."""
    scheme, sep, rest = url.partition(":")
    if sep and scheme in ("yt", "quvi", ""):
        return rest
    return url
