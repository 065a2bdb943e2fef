"""Running a sim script with the real ``git annex sim`` and reading its outcome.

``git annex sim start FILE`` runs the script in a scratch repository; ``sim visit`` shows the
UUIDs and keys upstream drew from its random generator (so our model can use the same ones);
``sim show`` is the script with one ``present``/``notpresent REPO FILE`` line per transfer and
drop, which, applied in order to the files as added, gives where every file ends up.

The script's final ``step N``/``stepstable N`` is run as N separate ``git annex sim step 1``
commands, stopping when the simulator says it has stabilized: git-annex 10.20261026 deadlocks
(futex wait, no CPU) in one long ``step`` run after a dozen actions on these scripts, while the
same actions one command at a time complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.annex import AnnexEnv

# A guard against a hung simulator only (git annex sim has been seen to stop making progress
# on long step counts); no assertion depends on it.
SIM_TIMEOUT = 300


@dataclass(frozen=True)
class SimOutcome:
    stabilized: bool
    uuids: dict[str, str]  # repository name -> UUID
    keys: dict[str, str]  # file -> key
    final: dict[str, set[str]]  # repository name -> files it holds at the end


def run_sim(annex_env: AnnexEnv, workdir: Path, script: Path) -> SimOutcome:
    repo = annex_env.make_annex_repo(workdir / "simrepo")
    lines = script.read_text().splitlines()
    last = max(i for i, line in enumerate(lines) if line.split()[:1] in (["step"], ["stepstable"]))
    steps = int(lines[last].split()[1])
    setup = workdir / script.name
    setup.write_text("\n".join(lines[:last] + lines[last + 1 :]) + "\n")
    annex_env.annex(repo, "sim", "start", setup, timeout=SIM_TIMEOUT)
    try:
        stabilized = False
        for _ in range(steps):
            stepped = annex_env.annex(repo, "sim", "step", "1", timeout=SIM_TIMEOUT)
            if "has stabilized" in stepped.stdout + stepped.stderr:
                stabilized = True
                break
        log = annex_env.annex(repo, "sim", "show").stdout
        names = _initialized(log)
        first = names[0]
        uuid_log = _visit(annex_env, repo, first, "git show git-annex:uuid.log")
        uuids = {}
        for line in uuid_log.splitlines():
            words = line.split()
            if len(words) >= 4 and words[1:3] == ["simulated", "repository"]:
                uuids[words[3]] = words[0]
        found = _visit(
            annex_env, repo, first, "git annex find --anything --format='${file} ${key}\\n'"
        )
        keys = dict(line.split(" ", 1) for line in found.splitlines() if line)
        return SimOutcome(stabilized, uuids, keys, _final(log, names))
    finally:
        annex_env.annex(repo, "sim", "end", check=False)


def _visit(annex_env: AnnexEnv, repo: Path, name: str, command: str) -> str:
    return annex_env.annex(repo, "sim", "visit", name, command).stdout


def _initialized(log: str) -> list[str]:
    return [line.split()[1] for line in log.splitlines() if line.startswith("init ")]


def _final(log: str, names: list[str]) -> dict[str, set[str]]:
    """Files as added, then every present/notpresent line in order."""
    held: dict[str, set[str]] = {n: set() for n in names}
    for line in log.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "add":
            for r in words[3:]:
                held[r].add(words[1])
        elif words[0] == "addmulti":
            for i in range(1, int(words[1]) + 1):
                for r in words[5:]:
                    held[r].add(f"{i}{words[2]}")
        elif words[0] == "present":
            held[words[1]].add(words[2])
        elif words[0] == "notpresent":
            held[words[1]].discard(words[2])
    return held
