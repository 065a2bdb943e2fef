"""A backend with fixed data (no repository), for SVG snapshot tests: same UUIDs, paths, sizes
and transfers on every run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from annextui.backend.balance import Move
from annextui.backend.info import ClusterEntry, ProxyEntry, RepoEntry, RepositoryInfo
from annextui.backend.logs.values import ProxiedRemote
from annextui.backend.repo import Remote
from annextui.backend.sizes import RepoSize
from annextui.backend.state import AnnexState
from annextui.backend.trust import TrustLevel
from annextui.console.backend import ConsoleBackend
from annextui.console.balance_source import (
    BalanceOverview,
    GroupBalance,
    MemberBalance,
    WhatIf,
    WhatIfResult,
)
from annextui.console.edits import Edit, EditOutcome, Preview
from annextui.console.jobs_source import Job, JobControl, JobDetail, JobRow, JobState, plan_lines
from annextui.console.reachability import Reachability
from annextui.console.sizes_source import SizesReport
from annextui.console.snapshot import RepoRow, Snapshot
from annextui.console.transfers_source import TransferSample, TransferView

GW = "5ce4bcb6-3195-4fd3-92a9-70e195ca8ae4"
N1 = "6856577c-9e87-4fc9-ba61-05efe7a73bbf"
N2 = "6b79c7ff-0c90-4aee-8481-a672e3eba788"
N3 = "205e8dae-54ca-4ac8-8996-ff34cbf9faf7"
AR = "3a3dfc26-370b-4469-97fc-254bd69f0dd9"
CL = "acfebcbc-7e85-8cd6-b9ba-de3d31424cc5"
CLIENT = "b097efc0-d294-47d7-ae35-c8e5d3ef3cc5"
NAMES = {GW: "gateway", N1: "node1", N2: "node2", N3: "node3", AR: "archive", CL: "demo cluster"}
MAXSIZE = {N1: 40_000_000_000, N2: 60_000_000_000, N3: 25_000_000_000, AR: 500_000_000_000}
SIZES = {
    GW: (24, 5_201_054_943),
    N1: (107, 11_209_684_019),
    N2: (96, 12_317_692_031),
    N3: (106, 23_208_242_882),
    AR: (87, 9_069_311_559),
}
NOW = 1_795_585_330.0
PATH = Path("/srv/annex/gateway")


def snapshot(names: dict[str, str] = NAMES) -> Snapshot:
    nodes = frozenset({N1, N2, N3})
    groups = {N1: frozenset({"nodes"}), N2: frozenset({"nodes"}), N3: frozenset({"nodes"})}
    groups[AR] = frozenset({"archive"})
    groups[GW] = frozenset({"client"})
    proxied = [ProxiedRemote(u, names[u] if u != CL else "demo") for u in (N1, N2, N3, AR, CL)]
    state = AnnexState(
        descriptions=dict(names),
        groups=groups,
        preferred={N1: "groupwanted", N2: "groupwanted", N3: "groupwanted", AR: "standard"},
        group_preferred={"nodes": "balanced=nodes"},
        maxsize=dict(MAXSIZE),
        proxies={GW: proxied},
        clusters={CL: nodes},
    )
    repos = [
        RepoEntry(
            u,
            names[u],
            TrustLevel.SEMITRUSTED,
            u == GW,
            MAXSIZE.get(u),
            tuple(sorted(groups.get(u, ()))),
        )
        for u in sorted(names)
    ]
    info = RepositoryInfo(
        uuid=GW,
        description="gateway",
        repositories=repos,
        proxies=[
            ProxyEntry(GW, "gateway", tuple((p.uuid, p.name, p.name) for p in sorted(proxied)))
        ],
        clusters=[ClusterEntry(CL, ("demo",), "demo cluster", (GW,), tuple(sorted(nodes)))],
        state=state,
    )
    remotes = {}
    for u in (N1, N2, N3, AR):
        name = names[u]
        opts = {"annex-uuid": u, "url": f"../{name}"}
        if u in nodes:
            opts["annex-cluster-node"] = "demo"
        else:
            opts["annex-proxy"] = "true"
        remotes[name] = Remote(name, f"../{name}", u, opts)
    rows = {
        u: RepoRow(
            uuid=u,
            name="here" if u == GW else (names[u] if u != CL else ""),
            description=names[u],
            trust=TrustLevel.SEMITRUSTED,
            groups=tuple(sorted(groups.get(u, ()))),
            wanted=state.preferred.get(u),
            maxsize=MAXSIZE.get(u),
            here=u == GW,
            is_cluster=u == CL,
            clusters=(CL,) if u in nodes else (),
            url=f"../{names[u]}" if names[u] in remotes else None,
            configured=names[u] in remotes,
        )
        for u in names
    }
    return Snapshot(
        path=PATH,
        uuid=GW,
        description="gateway",
        role="gateway",
        info=info,
        repos=rows,
        remotes=remotes,
        configured=tuple(sorted(remotes)),
        local_clusters={"demo": CL},
        head="0" * 40,
        loaded_at=NOW,
    )


def sizes() -> SizesReport:
    return SizesReport(
        {u: RepoSize(u, k, b) for u, (k, b) in SIZES.items()}, "0" * 40, 0.02, "warm", 300
    )


def balance(names: dict[str, str] = NAMES) -> BalanceOverview:
    members = []
    for u in (N3, N1, N2):
        k, b = SIZES[u]
        members.append(
            MemberBalance(
                uuid=u,
                label=names[u],
                held_keys=k,
                held_bytes=b,
                want_get_keys=k + (1 if u == N2 else 0),
                want_get_bytes=b + (60_000_000 if u == N2 else 0),
                to_get_keys=1 if u == N2 else 0,
                maxsize=MAXSIZE[u],
                expression="groupwanted",
            )
        )
    group = GroupBalance(
        "nodes", "group", "balanced=nodes", tuple(members), (Move(GW, N2, 1, 60_000_000, "copy"),)
    )
    return BalanceOverview((group,), 0.01)


def transfers() -> TransferSample:
    size = 60_000_000
    views = (
        TransferView(
            f"{GW}:download:{CLIENT}:K1",
            GW,
            "download",
            CLIENT,
            "SHA256E-s60000000--aa.bin",
            "sub-01/func/run1.nii.gz",
            39_498_912,
            size,
            NOW - 3.0,
            13_400_000.0,
            4242,
        ),
        TransferView(
            f"{N1}:download:{GW}:K2",
            N1,
            "download",
            GW,
            "SHA256E-s250000000--bb.mp4",
            "derived/movie.mp4",
            62_500_000,
            250_000_000,
            NOW - 12.0,
            5_200_000.0,
            4243,
        ),
        TransferView(
            f"{GW}:upload:{AR}:K3",
            GW,
            "upload",
            AR,
            "SHA256E-s8000000--cc.tsv",
            "raw/table.tsv",
            7_200_000,
            8_000_000,
            NOW - 1.0,
            7_000_000.0,
            4244,
        ),
    )
    return TransferSample(views, NOW, 0.001)


class FixedTracker:
    def __init__(self) -> None:
        self.annexdirs = {GW: PATH / ".git/annex", N1: PATH.parent / "node1/annex"}

    def sample(self, now: float | None = None) -> TransferSample:
        return transfers()


def jobs() -> tuple[JobRow, ...]:
    drain = Job(
        f"drain-{N3}",
        "drain",
        N3,
        JobState.RUNNING,
        params={
            "node": N3,
            "targets": [N1, N2],
            "keys": 106,
            "bytes": 23_208_242_882,
            "copies": 106,
            "numcopies": 2,
            "unplaced-keys": 0,
        },
        steps=106,
        total_bytes=23_208_242_882,
        done_steps=41,
        done_bytes=9_102_334_976,
        transferred_keys=41,
        transferred_bytes=9_102_334_976,
        dropped_keys=41,
        created=NOW - 600,
        updated=NOW,
        runs=1,
        pid=4242,
    )
    rebalance = Job(
        "rebalance-5b2f0c1d9e8a7b6c",
        "rebalance",
        "demo",
        JobState.PAUSED,
        params={
            "target": "demo",
            "kind": "cluster",
            "members": [N1, N2, N3],
            "keys": 12,
            "copies": 12,
            "drops": 12,
            "bytes": 2_684_354_560,
            "unsourced-keys": 0,
            "numcopies": 2,
        },
        steps=12,
        total_bytes=2_684_354_560,
        done_steps=5,
        done_bytes=1_073_741_824,
        transferred_keys=5,
        transferred_bytes=1_073_741_824,
        dropped_keys=5,
        created=NOW - 3600,
        updated=NOW - 1800,
        runs=1,
    )
    return (JobRow(drain, 48_000_000.0), JobRow(rebalance, None))


PROOF = (
    "converges: a fixed point after 1 round of moves",
    "  plan: 12 gets, 12 drops, 2.68 GB moved",
    "  round 1: 0 gets, 0 drops, 0 B moved",
)


class FixedJobs(JobControl):
    def sample(self) -> tuple[JobRow, ...]:
        return jobs()

    def detail(self, job_id: str, name: Callable[[str], str]) -> JobDetail | None:
        job = next((r.job for r in jobs() if r.job.id == job_id), None)
        if job is None:
            return None
        proof = PROOF if job.kind == "rebalance" else None
        return JobDetail(job, tuple(plan_lines(job, name)), proof)

    def pause(self, job_id: str) -> str:
        raise AssertionError("the fixed backend is never changed")

    resume = cancel = pause


class FixedBackend(ConsoleBackend):
    def __init__(  # no repository at all
        self, *, readonly: bool = False, names: dict[str, str] = NAMES
    ) -> None:
        self.path = PATH
        self.readonly = readonly
        self.names = names

    def snapshot(self) -> Snapshot:
        return snapshot(self.names)

    def signature(self) -> tuple[object, ...]:
        return ("fixed",)

    def sizes(
        self, snapshot: Snapshot, progress: Callable[[int, int | None], None] | None = None
    ) -> SizesReport:
        return sizes()

    def balance(
        self, snapshot: Snapshot, sizes: SizesReport, *, rebalance: bool = False
    ) -> BalanceOverview:
        return balance(self.names)

    def what_if(self, snapshot: Snapshot, sizes: SizesReport, change: WhatIf) -> WhatIfResult:
        return WhatIfResult(change)

    def reachability(self, snapshot: Snapshot, uuids: Sequence[str]) -> list[Reachability]:
        return [
            Reachability(u, "reachable", f"/srv/annex/{self.names.get(u, u)}", 0.001) for u in uuids
        ]

    def transfers(self, snapshot: Snapshot) -> FixedTracker:
        return FixedTracker()

    def jobs(self) -> FixedJobs:
        return FixedJobs()

    def preview(self, edits: Sequence[Edit]) -> Preview:
        return Preview(tuple(edits))

    def apply(self, edits: Sequence[Edit]) -> list[EditOutcome]:
        raise AssertionError("the fixed backend is never changed")
