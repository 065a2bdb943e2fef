"""Repository sizes: keys and bytes per repository UUID, from the location logs.

size(U) = sum of the ``-s`` sizes of the keys whose location log says "present in U"
(``sizes-and-maxsize.md`` §2): every location log of the ``git-annex`` branch, then the journal
(public and private) and the unmerged ``*/git-annex`` refs on top, each log resolved as git-annex
resolves presence logs (greatest clock wins, the earlier line on equal clocks). Every UUID in
``uuid.log`` (and this repository's own) starts at 0; dead repositories are computed and flagged;
cluster UUIDs stay 0 because they are never written to location logs.

One module per concept, each explaining its own choices:

* ``api`` -- the entry points ``repo_sizes``/``key_locations`` and their results;
* ``refresh`` -- the branch part: cache hit, incremental refresh from the cached commit, or
  cold scan;
* ``scan`` -- the cold scan (git pipeline, git-annex's index as a shortcut, dulwich fallback);
* ``diff`` -- changed location logs between two branch trees;
* ``overlay`` -- the journal and unmerged refs applied on top of every result;
* ``cache`` -- the totals and per-key snapshot on disk;
* ``masks``, ``tables`` -- present-set masks, and totals and per-key tables built from them;
* ``paths``, ``objects``, ``errors`` -- location-log paths, reading git objects, SizesError.

The backend never prints: long scans report through ``progress(done, total)``, and the CLI
draws the bar.
"""

from annextui.backend.sizes.api import KeyLocations, RepoSize, Sizes, key_locations, repo_sizes
from annextui.backend.sizes.cache import CACHE_FORMAT, cache_dir, clear_cache
from annextui.backend.sizes.errors import SizesError
from annextui.backend.sizes.masks import mask_of_log
from annextui.backend.sizes.overlay import journal_location_paths
from annextui.backend.sizes.paths import key_of_path, key_size_of_path, location_depth
from annextui.backend.sizes.scan import Progress, index_matches_branch

__all__ = [
    "CACHE_FORMAT",
    "KeyLocations",
    "Progress",
    "RepoSize",
    "Sizes",
    "SizesError",
    "cache_dir",
    "clear_cache",
    "index_matches_branch",
    "journal_location_paths",
    "key_locations",
    "key_of_path",
    "key_size_of_path",
    "location_depth",
    "mask_of_log",
    "repo_sizes",
]
