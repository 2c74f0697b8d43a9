"""Benchmark `projects`: many small projects in one sync against one project of as many leads.

Run (from the repository root; about a minute on 2 cores):

    .venv/bin/python bench/projects.py                         # the figures as a table
    .venv/bin/python bench/projects.py --write BENCHMARKS.md   # refresh them there

Each sandbox (`leadtrackr-sandbox`, one for the large project, one for the many) runs in a
process of its own, so that the measured syncs, children of this small process, do not
inherit its memory: a forked child's peak RSS starts at its parent's. Each sync
(`python -m tap_leadtrackr`, output to /dev/null) is timed from start to exit, start-up
included; its CPU seconds and peak RSS come from `os.wait4`. The configurations alternate,
so that a slower minute of a shared machine hits them alike; the medians are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: The issue's targets: wall time of the many against the one, and memory in the count.
WALL_RATIO_TARGET = 1.2
RSS_GROWTH_TARGET = 1.15
BEGIN, END = "<!-- projects:begin -->", "<!-- projects:end -->"


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_mib: float
    requests: int


class SandboxProcess:
    """`leadtrackr-sandbox` in a child process, counting the getLeads requests it logs."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tap_leadtrackr.sandbox", "--port", "0", "--verbose", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().split()
        self.url = first[first.index("on") + 1]
        self.requests = 0
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if "/api/leads/getLeads" in line:
                self.requests += 1

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def measure(config: Path, sandbox: SandboxProcess) -> Run:
    """Run one sync in a child process; its wall and CPU time, peak RSS and requests."""
    time.sleep(0.2)  # the previous run's request lines are counted by now
    before = sandbox.requests
    started = time.monotonic()
    with open(os.devnull, "w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tap_leadtrackr", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the sync with {config.name} failed")
    time.sleep(0.2)
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, cpu, usage.ru_maxrss / 1024, sandbox.requests - before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=50, help="projects of the many")
    parser.add_argument("--leads", type=int, default=200, help="leads of each of the many")
    parser.add_argument("--runs", type=int, default=5, help="runs of each configuration")
    parser.add_argument("--write", type=Path, help="put the figures into this Markdown file")
    args = parser.parse_args(argv)
    total = args.projects * args.leads
    few = max(2, args.projects // 5)

    keys = [f"sandbox-key-{number}" for number in range(1, args.projects + 1)]
    large = SandboxProcess("--leads", str(total))
    small = SandboxProcess("--leads", str(args.leads), "--projects", str(args.projects))
    sandboxes = {"one": large, "few": small, "many": small}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            configs = {}
            for label, count in (("one", 0), ("few", few), ("many", args.projects)):
                config: dict[str, object] = {"api_url": sandboxes[label].url}
                if count:
                    config["projects"] = [
                        {"name": f"p{number}", "api_key": key}
                        for number, key in enumerate(keys[:count], start=1)
                    ]
                else:
                    config["api_key"] = "sandbox-key"
                configs[label] = Path(tmp) / f"{label}.json"
                configs[label].write_text(json.dumps(config))
            runs: dict[str, list[Run]] = {label: [] for label in configs}
            for _ in range(args.runs):
                for label, config in configs.items():
                    runs[label].append(measure(config, sandboxes[label]))
                    print(f"  {label:<5} {runs[label][-1]}", file=sys.stderr, flush=True)
    finally:
        large.stop()
        small.stop()

    def med(label: str, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in runs[label])

    wall_ratio = med("many", "wall") / med("one", "wall")
    rss_growth = med("many", "rss_mib") / med("few", "rss_mib")
    rows = [
        ("1 project of " + f"{total:,} leads", "one"),
        (f"{few} projects of {args.leads:,} leads", "few"),
        (f"{args.projects} projects of {args.leads:,} leads", "many"),
    ]
    lines = [
        f"Median of {args.runs} runs each, alternating; Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| sync | wall (s) | tap CPU (s) | peak RSS (MiB) | requests |",
        "|:-----|---------:|------------:|---------------:|---------:|",
    ]
    for title, label in rows:
        lines.append(
            f"| {title} | {med(label, 'wall'):.2f} | {med(label, 'cpu'):.2f} "
            f"| {med(label, 'rss_mib'):.1f} | {runs[label][0].requests:,} |"
        )
    ok_wall = wall_ratio <= WALL_RATIO_TARGET
    ok_rss = rss_growth <= RSS_GROWTH_TARGET
    lines += [
        "",
        f"- Wall time, {args.projects} projects against 1 of as many leads: "
        f"**{wall_ratio:.2f}x** (target at most {WALL_RATIO_TARGET}x): "
        f"{'met' if ok_wall else 'MISSED'}.",
        f"- Tap CPU, {args.projects} projects against 1: "
        f"**{med('many', 'cpu') / med('one', 'cpu'):.2f}x** (the wall time above includes "
        "the sandbox's time to answer, on the same cores).",
        f"- Peak RSS, {args.projects} projects against {few}: **{rss_growth:.2f}x** "
        f"(target: flat, at most {RSS_GROWTH_TARGET}x): {'met' if ok_rss else 'MISSED'}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        document = args.write.read_text(encoding="utf-8")
        before, _, rest = document.partition(BEGIN)
        _, _, after = rest.partition(END)
        if not rest:
            raise SystemExit(f"{args.write} has no {BEGIN} ... {END} section")
        args.write.write_text(f"{before}{BEGIN}\n{text}\n{END}{after}", encoding="utf-8")
    return 0 if ok_wall and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
