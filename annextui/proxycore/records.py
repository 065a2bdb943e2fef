"""What a gateway writes about the traffic it relays: location logs and transfer records.

* Location logs (proxy-and-cluster.md §11): a relayed PUT marks every repository that reported
  storing the key present, a relayed REMOVE marks every repository that reported removing it
  missing. Changes go through the gateway's journal (`backend/journal.py`, git-annex's lock) and
  are committed once, when the client's connection ends. A cluster UUID is never written.
* Transfer information files (`transfers.py`): one per relayed transfer in the *gateway's*
  `annex/transfer/`, `upload/<node>/KEYFILE` for a PUT relayed to a node and
  `download/<node>/KEYFILE` for a GET relayed from one, with bytes so far, so the console (and
  `git annex info` on the gateway) shows proxied transfers live. They never refuse a transfer:
  the node takes its own transfer lock.
* Reading: which repositories the gateway's branch view (journal included) says hold a key,
  with the cluster UUIDs added virtually when one of their nodes does (`Logs/Location.hs`
  loggedLocations), and how many relayed transfers each node has in flight (all gateway
  processes, read from the lock-protected transfer files).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from annextui.backend.keys import Key, branch_hash_levels, location_log_path
from annextui.backend.uuids import is_cluster_uuid
from annextui.proxycore.peer import Outcome
from annextui.proxycore.sessioncommit import commit_session_journal
from annextui.proxycore.transfers import Direction, Transfer, TransferRecorder

if TYPE_CHECKING:
    from annextui.backend.branch import BranchView
    from annextui.backend.catfile import CatFile
    from annextui.backend.journal import Journal
    from annextui.backend.repo import Repository


class GatewayRecords:
    """The gateway repository's records for one client session (one thread writes them)."""

    def __init__(
        self,
        repo: Repository,
        *,
        clusters: Mapping[str, frozenset[str]] | None = None,
        file_mode: int = 0o666,
        kept_view: bool = False,
        view: BranchView | None = None,
        catfile: CatFile | None = None,
    ) -> None:
        """`view` and `catfile`: the session's view of the branch (the one its state was read
        from) and the batch reader it reads through, handed over (closed with the records)."""
        self.repo = repo
        self.annexdir = repo.annexdir
        self.clusters = dict(clusters or {})
        self.file_mode = file_mode
        self.levels = branch_hash_levels(repo.config_bool)
        self._journal: Journal | None = None
        self._view: BranchView | None = view
        self._catfile: CatFile | None = catfile
        self._lookups = 0
        # A long-running server's requests share their thread's view of the branch (below)
        # instead of building one each: a fresh view lists every ref and reads the
        # merged-refs lists first.
        self._kept_view = kept_view
        self.changed = False

    # -- location logs ---------------------------------------------------------------------------
    @property
    def journal(self) -> Journal:
        if self._journal is None:
            from annextui.backend.journal import Journal

            self._journal = Journal(self.repo)
        return self._journal

    @property
    def view(self) -> BranchView:
        if self._view is None:
            if self._kept_view:
                self._view = thread_view(self.repo)
            else:
                from annextui.backend.branch import BranchView

                self._view = BranchView(self.repo)
        return self._view

    def locations(self, key: Key | str) -> set[str]:
        """UUIDs logged as holding the key, plus the clusters one of whose nodes holds it."""
        from annextui.backend.logs.presence import present_infos

        view = self.view
        self._lookups += 1
        if self._kept_view:
            # Kept since an earlier request: the branch, a fetched or new `*/git-annex` ref is
            # seen now (the journal is read at each lookup anyway). No session `cat-file`: the
            # view outlives the session, and a request looks up a key or two.
            view.follow()
        else:
            view.follow_branch()  # another session may have committed meanwhile
            if self._lookups == BATCH_AFTER and self._catfile is None:
                self._start_catfile(view)
        present = present_infos(view.read(location_log_path(key, self.levels)))
        for cu, nodes in self.clusters.items():
            if present & nodes:
                present.add(cu)
        return present

    @property
    def blob_reads_batched(self) -> bool:
        """Whether branch blobs are read through the session's `git cat-file --batch`."""
        return self._catfile is not None and self.view.blob_reader is not None

    def _start_catfile(self, view: BranchView) -> None:
        """From the BATCH_AFTER-th lookup on, read branch blobs through one `git cat-file
        --batch` (catfile.py): a few lookups are not worth a process, a batch of GETs is."""
        from annextui.backend.catfile import CatFile, read_through

        self._catfile = CatFile(self.repo)
        read_through(view, self._catfile)

    def close(self) -> None:
        """Commit the session's journal (see `commit`) and stop the batch reader."""
        try:
            self.commit()
        finally:
            cf, self._catfile = self._catfile, None
            if cf is not None:
                cf.close()

    def record(self, key: Key | str, uuids: Iterable[str], *, present: bool) -> None:
        """Mark repositories present (or missing) for the key; cluster UUIDs are skipped."""
        from annextui.backend.clock import current_clock
        from annextui.backend.logs.presence import PresenceStatus, change_presence

        status = PresenceStatus.PRESENT if present else PresenceStatus.MISSING
        path = location_log_path(key, self.levels)
        for u in dict.fromkeys(uuids):
            if not u or is_cluster_uuid(u):
                continue

            def change(data: bytes, u: str = u) -> bytes | None:
                return change_presence(data, u, status, current_clock())

            if self.journal.change(path, change):
                self.changed = True

    def commit(self) -> None:
        """Commit the journal into the git-annex branch (at the end of the client session)."""
        commit_session_journal(
            self.repo, lambda: self.journal, _shell_warning, apart=self._commit_apart
        )

    def _commit_apart(self) -> None:
        """The commit on another thread, through repository objects of its own."""
        from annextui.backend.journal import Journal
        from annextui.backend.repo import Repository

        Journal(Repository(self.repo.top)).commit()

    # -- transfer information files ----------------------------------------------------------------
    def start_transfer(
        self, direction: Direction, uuid: str, key: Key | str, associated_file: str | None
    ) -> TransferRecorder | None:
        k = key if isinstance(key, Key) else None
        return TransferRecorder.start(
            self.annexdir,
            Transfer(direction, uuid, str(key)),
            associated_file=associated_file,
            ignore_lock=True,
            mode=self.file_mode,
            size=k.size if k is not None else None,
        )

    def progress(
        self,
        direction: Direction,
        uuid: str,
        key: Key,
        associated_file: str | None,
        *,
        pos: int,
        length: int | None,
    ) -> Progress:
        """The record of one relayed transfer of `length` bytes starting at `pos`."""

        def start() -> TransferRecorder | None:
            return self.start_transfer(direction, uuid, key, associated_file)

        return Progress(start, pos, length)

    def busy(self, uuid: str | None = None) -> Counter[str]:
        """Relayed transfers in flight per node UUID, across every process of this gateway
        (with `uuid`: only that node's, which costs two directory reads instead of all)."""
        from annextui.proxycore.transfers import list_transfers

        return Counter(t.transfer.uuid for t in list_transfers(self.annexdir, uuid))


_views = threading.local()  # gitdir -> (Repository, BranchView) of this thread


def thread_view(repo: Repository) -> BranchView:
    """This thread's view of `repo`'s branch, kept while the thread gets the same repository
    object (a server keeps one per thread until its git config changes: repocache.py); the
    caller brings it up to date (`BranchView.follow`). Per thread: it holds the thread's
    dulwich repository."""
    from annextui.backend.branch import BranchView

    kept: dict[str, tuple[Repository, BranchView]] | None = getattr(_views, "by_gitdir", None)
    if kept is None:
        kept = _views.by_gitdir = {}
    key = str(repo.gitdir)
    hit = kept.get(key)
    if hit is not None and hit[0] is repo:
        return hit[1]
    view = BranchView(repo)
    kept[key] = (repo, view)
    return view


BATCH_AFTER = 4  # location lookups in a session before they go through git cat-file --batch
RECORD_NOW = 1 << 20  # transfers this large get their record at once
RECORD_AFTER = 0.05  # smaller ones only once they have run this long (seconds)


class Progress:
    """Bytes-so-far reporting into the transfer record of one relayed transfer.

    The record is written at git-annex's 1 % steps. Creating one costs a few file operations,
    which would dominate relaying thousands of small files, so a transfer below `RECORD_NOW`
    bytes gets its record only if it is still running after `RECORD_AFTER` seconds (a monitor
    could not have seen it otherwise), or when it fails (the `failed/` record).
    """

    def __init__(
        self,
        start: Callable[[], TransferRecorder | None] | None,
        pos: int,
        length: int | None = None,
    ) -> None:
        self._start = start
        self.recorder: TransferRecorder | None = None
        self.pos = pos
        self.length = length
        self._reported = pos
        self._step = 1 << 62
        self._since = time.monotonic()
        if start is not None and (length is None or length >= RECORD_NOW):
            self._open()

    def _open(self) -> None:
        start, self._start = self._start, None
        if start is not None:
            self.recorder = start()
            if self.recorder is not None:
                self._step = self.recorder.progress_step

    @property
    def progress_step(self) -> int:
        """How often `progress` is worth calling (TransferRecorder's interface: a local node's
        GET reports through a Progress, see nodepeer.py)."""
        return max(1, (self.length or 0) // 100)

    def progress(self, bytes_done: int) -> None:
        """Absolute position, as a TransferRecorder is told."""
        self.add(bytes_done - self.pos)

    def add(self, n: int) -> None:
        self.pos += n
        if self._start is not None and time.monotonic() - self._since >= RECORD_AFTER:
            self._open()
        if self.pos - self._reported >= self._step:
            self._reported = self.pos
            assert self.recorder is not None
            self.recorder.progress(self.pos)

    def finish(self, ok: bool) -> None:
        if not ok:
            self._open()  # a failure is always recorded
        self._start = None
        rec, self.recorder = self.recorder, None
        if rec is not None:
            rec.finish(ok)


def _shell_warning(message: str) -> None:
    sys.stderr.write(f"annextui-shell: {message}\n")


def outcome_uuids(node: str, outcome: Outcome) -> list[str]:
    """The repositories a SUCCESS[-PLUS]/FAILURE-PLUS from `node` is about (P2P/Proxy.hs)."""
    plus = list(outcome.plus or ())
    return [node, *plus] if outcome.ok else plus
