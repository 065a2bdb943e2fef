"""Where a get's CPU goes, by program: Linux process accounting around each timed get.

`Accounting(dir)` switches the kernel's accounting (`accton`, root only, package `acct`) to a
file of its own for each labelled segment, so every process that ends inside a segment is
counted there (a process is recorded when it exits: a long-lived one, such as the relay
server or an ssh ControlMaster, shows in the segment where it ends, or nowhere). `table()`
sums user + system CPU by command name (the kernel's 15-character `comm`; threads are
counted in their process) and gives each label's median over its segments.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

TICKS = 100.0  # dump-acct prints utime/stime in clock ticks (AHZ)


class Accounting:
    def __init__(self, directory: Path) -> None:
        if shutil.which("accton") is None or shutil.which("dump-acct") is None:
            raise SystemExit("--acct needs accton and dump-acct (Debian package acct), as root")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segments: dict[str, list[Path]] = defaultdict(list)
        self._count = 0

    @contextlib.contextmanager
    def segment(self, label: str) -> Iterator[None]:
        self._count += 1
        path = self.dir / f"{self._count}.pacct"
        path.touch()
        subprocess.run(["accton", str(path)], check=True, capture_output=True)
        try:
            yield
        finally:
            subprocess.run(["accton", "off"], check=True, capture_output=True)
            self.segments[label].append(path)

    @staticmethod
    def by_program(path: Path) -> dict[str, float]:
        out = subprocess.run(
            ["dump-acct", str(path)], check=True, capture_output=True, text=True
        ).stdout
        cpu: dict[str, float] = defaultdict(float)
        for line in out.splitlines():
            fields = [f.strip() for f in line.split("|")]
            if len(fields) < 4:
                continue
            cpu[fields[0]] += (float(fields[2]) + float(fields[3])) / TICKS
        return dict(cpu)

    def medians(self, label: str) -> dict[str, float]:
        """Each program's median CPU seconds over the label's segments (0 where absent)."""
        runs = [self.by_program(p) for p in self.segments[label]]
        names = {n for r in runs for n in r}
        return {n: statistics.median(r.get(n, 0.0) for r in runs) for n in names}

    def table(self, labels: list[str], top: int = 8) -> str:
        """Label by program, CPU seconds (median of its segments), the busiest programs."""
        meds = {label: self.medians(label) for label in labels}
        totals: dict[str, float] = defaultdict(float)
        for m in meds.values():
            for n, v in m.items():
                totals[n] += v
        names = sorted(totals, key=lambda n: -totals[n])[:top]
        head = f"{'CPU s by program':<28}" + "".join(f"{n[:12]:>13}" for n in names)
        lines = [head + f"{'all':>9}"]
        for label in labels:
            m = meds[label]
            lines.append(
                f"{label:<28}"
                + "".join(f"{m.get(n, 0.0):13.2f}" for n in names)
                + f"{sum(m.values()):9.2f}"
            )
        return "\n".join(lines)
