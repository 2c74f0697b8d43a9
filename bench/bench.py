"""Benchmark tap-leadtrackr against the floor, on the local sandbox.

Run (from the repository root; about 2 minutes on 2 cores):

    .venv/bin/python bench/bench.py                         # the figures as a table
    .venv/bin/python bench/bench.py --markdown              # the same figures as Markdown
    .venv/bin/python bench/bench.py --write BENCHMARKS.md   # refresh the figures there

Sizes and repetitions are options (`--help`). The sandbox runs in a process of its own
(`bench/sandbox_process.py`) and every measured program is a child process of this one:
its CPU seconds (user + sys) and peak RSS come from `os.wait4`, so they are that process's
alone, and its wall seconds run from start to exit, Python start-up included. The floor
is `bench/floor.py`: the same requests, decoded with `json`, one RECORD line per lead and
one STATE line per page; see BENCHMARKS.md for what each figure means.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from sandbox_process import SandboxProcess

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FLOOR = BENCH / "floor.py"
#: The tap's default `page_size`, which the floor also uses: a full sync is ceil(N / 100) pages.
PAGE_SIZE = 100
METRIC = re.compile(r"METRIC: (\{.*\})$", re.MULTILINE)
#: The figures' place in BENCHMARKS.md: `--write` replaces what lies between these.
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
#: Where `--privacy --write` puts the `pii` figures.
PRIVACY_BEGIN, PRIVACY_END = "<!-- privacy:begin -->", "<!-- privacy:end -->"

# The targets.
CPU_RATIO_TARGET = 1.5
RSS_GROWTH_TARGET = 1.15
PARALLEL_RATIO_TARGET = 0.40
STARTUP_TARGET_SECONDS = 1.0
PII_HASH_RATIO_TARGET = 1.3


class BenchError(RuntimeError):
    """A measured program failed, or did something other than what is measured."""


@dataclass(frozen=True)
class Run:
    """One measured child process."""

    cpu: float
    """User + system CPU seconds of the child alone."""
    wall: float
    """Seconds from starting the child to its exit."""
    rss_mib: float
    """Peak resident set size of the child (ru_maxrss)."""
    requests: int
    """getLeads requests the sandbox received while it ran."""
    sync_seconds: float | None
    """The SDK's own `sync_duration` timer of the leads stream (the tap only)."""


@dataclass
class Table:
    """Figures under one heading; rendered as text or as Markdown."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)


def tap_command() -> str:
    """The tap's console script, next to the running interpreter (`.venv/bin`)."""
    script = Path(sys.executable).parent / "tap-leadtrackr"
    if not script.exists():
        raise BenchError(f"no {script}: run this with the project's .venv/bin/python")
    return str(script)


class Bench:
    """Runs and measures programs against one sandbox process."""

    def __init__(self, sandbox: SandboxProcess, workdir: Path) -> None:
        self.sandbox = sandbox
        self.workdir = workdir
        self.tap = tap_command()

    def config(self, name: str, **settings: object) -> Path:
        """Write a tap config for the sandbox (default settings plus `settings`)."""
        path = self.workdir / f"{name}.json"
        config = {"api_url": self.sandbox.url, "api_key": self.sandbox.api_key, **settings}
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    def run(self, argv: list[str], *, stdout: Path | None = None) -> Run:
        """Run one program to its end, stdout to /dev/null (or `stdout`), and measure it."""
        with (
            open(stdout or os.devnull, "wb") as out,
            tempfile.TemporaryFile(dir=self.workdir) as err,
        ):
            started = time.perf_counter()
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            log = err.read().decode(errors="replace")
            if process.returncode != 0:
                raise BenchError(f"{shlex.join(argv)} exited {process.returncode}:\n{log[-2000:]}")
        requests, errors = self.sandbox.count()
        if errors:
            raise BenchError(f"{shlex.join(argv)}: {errors} of {requests} requests failed")
        return Run(
            cpu=usage.ru_utime + usage.ru_stime,
            wall=wall,
            rss_mib=usage.ru_maxrss / 1024,
            requests=requests,
            sync_seconds=sync_duration(log),
        )

    def floor(self, config: Path) -> Run:
        return self.run([sys.executable, str(FLOOR), "--config", str(config)])

    def tap_sync(
        self, config: Path, *, state: Path | None = None, stdout: Path | None = None
    ) -> Run:
        argv = [self.tap, "--config", str(config)]
        if state is not None:
            argv += ["--state", str(state)]
        return self.run(argv, stdout=stdout)


def sync_duration(log: str) -> float | None:
    """The leads stream's `sync_duration` from the SDK's METRIC log lines, if any."""
    for match in METRIC.finditer(log):
        metric = json.loads(match.group(1))
        if metric.get("metric") == "sync_duration" and metric["tags"].get("stream") == "leads":
            return float(metric["value"])
    return None


def median(runs: list[Run], attribute: str) -> float:
    return statistics.median(getattr(run, attribute) for run in runs)


def counts(values: set[int]) -> str:
    """One value if all runs agree, else all of them (which would be worth a look)."""
    return ", ".join(f"{value:,}" for value in sorted(values))


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_singer(path: Path) -> tuple[int, list[dict]]:
    """RECORD count and STATE messages of a tap's output."""
    records, states = 0, []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] == "RECORD":
                records += 1
            elif message["type"] == "STATE":
                states.append(message)
    return records, states


def bench_startup(bench: Bench, runs: int) -> Table:
    config = bench.config("startup")
    table = Table(
        f"Start-up: tap-leadtrackr with no sync (median of {runs})",
        [
            "command",
            "wall s",
            "CPU s",
            "peak RSS MiB",
            "requests",
            f"target wall < {STARTUP_TARGET_SECONDS:g} s",
        ],
    )
    for option in ("--about", "--discover"):
        progress(f"start-up: {option} x {runs}")
        argv = (
            [bench.tap, option]
            if option == "--about"
            else [bench.tap, "--config", str(config), option]
        )
        sample = [bench.run(argv) for _ in range(runs)]
        wall = median(sample, "wall")
        table.rows.append(
            [
                f"`tap-leadtrackr {option}`",
                f"{wall:.2f}",
                f"{median(sample, 'cpu'):.2f}",
                f"{median(sample, 'rss_mib'):.0f}",
                counts({run.requests for run in sample}),
                verdict(wall < STARTUP_TARGET_SECONDS),
            ]
        )
    return table


def alternate(bench: Bench, leads: int, runs: int) -> dict[str, list[Run]]:
    """Full syncs of `leads` leads with default settings: floor, tap, floor, tap..."""
    bench.sandbox.load(leads)
    config = bench.config("default")
    progress(f"full sync of {leads:,} leads: warm-up, then floor and tap x {runs}")
    bench.floor(config)  # the sandbox encodes each lead once and caches it: not timed
    sample: dict[str, list[Run]] = {"floor": [], "tap": []}
    for number in range(1, runs + 1):
        for name in sample:
            run = bench.floor(config) if name == "floor" else bench.tap_sync(config)
            sample[name].append(run)
            progress(
                f"  {name} {number}/{runs}: {run.cpu:.2f} s CPU, {run.wall:.2f} s wall, "
                f"{run.rss_mib:.0f} MiB, {run.requests} requests"
            )
    return sample


def compare(label: str, sample: dict[str, list[Run]], attribute: str, digits: int) -> list[str]:
    """A row of medians: floor, tap, tap / floor, and room for a target and verdict."""
    floor, tap = median(sample["floor"], attribute), median(sample["tap"], attribute)
    return [label, f"{floor:.{digits}f}", f"{tap:.{digits}f}", f"{tap / floor:.2f}x", "", ""]


def request_budget(leads: int) -> int:
    """The most requests a full sync may cost: 2 % over one per page, and one more."""
    return math.floor(math.ceil(leads / PAGE_SIZE) * 1.02 + 1)


def requests_row(sample: dict[str, list[Run]], leads: int) -> list[str]:
    budget = request_budget(leads)
    tap = {run.requests for run in sample["tap"]}
    return [
        "requests",
        counts({run.requests for run in sample["floor"]}),
        counts(tap),
        "",
        f"<= {budget:,} (ceil(N / {PAGE_SIZE}) x 1.02 + 1)",
        verdict(max(tap) <= budget),
    ]


def bench_full_sync(bench: Bench, leads: int, runs: int) -> tuple[Table, dict[str, list[Run]]]:
    sample = alternate(bench, leads, runs)
    cpu = compare("CPU s (user + sys)", sample, "cpu", 2)
    ratio = median(sample["tap"], "cpu") / median(sample["floor"], "cpu")
    cpu[4:] = [f"<= {CPU_RATIO_TARGET:g}x", verdict(ratio <= CPU_RATIO_TARGET)]
    table = Table(
        f"Full sync of {leads:,} leads, default settings "
        f"(median of {runs} runs each, floor and tap alternating)",
        ["", "floor", "tap", "tap / floor", "target", ""],
        [
            cpu,
            compare("wall s", sample, "wall", 2),
            compare("peak RSS MiB", sample, "rss_mib", 0),
            requests_row(sample, leads),
        ],
    )
    return table, sample


def bench_big_sync(
    bench: Bench, leads: int, runs: int, small: dict[str, list[Run]], small_leads: int
) -> Table:
    """The larger sync, compared with the smaller one: memory growth and CPU per lead."""
    sample = alternate(bench, leads, runs)
    growth = {
        name: median(sample[name], "rss_mib") / median(small[name], "rss_mib") for name in sample
    }
    # The difference between two sizes leaves start-up out: the cost of the leads alone.
    ms_per_thousand = {
        name: (median(sample[name], "cpu") - median(small[name], "cpu"))
        / (leads - small_leads)
        * 1e6
        for name in sample
    }
    return Table(
        f"Full sync of {leads:,} leads, default settings (median of {runs} run(s) each)",
        ["", "floor", "tap", "tap / floor", "target", ""],
        [
            compare("CPU s (user + sys)", sample, "cpu", 2),
            [
                f"CPU ms per 1,000 leads, from {small_leads:,} to {leads:,} (no start-up)",
                f"{ms_per_thousand['floor']:.1f}",
                f"{ms_per_thousand['tap']:.1f}",
                f"{ms_per_thousand['tap'] / ms_per_thousand['floor']:.2f}x",
                "",
                "",
            ],
            compare("wall s", sample, "wall", 2),
            compare("peak RSS MiB", sample, "rss_mib", 0),
            [
                f"peak RSS at {leads:,} / at {small_leads:,}",
                f"{growth['floor']:.2f}",
                f"{growth['tap']:.2f}",
                "",
                f"tap <= {RSS_GROWTH_TARGET:.2f}",
                verdict(growth["tap"] <= RSS_GROWTH_TARGET),
            ],
            requests_row(sample, leads),
        ],
    )


def bench_incremental(bench: Bench, leads: int) -> Table:
    """Run after `bench_full_sync`, on the leads it loaded."""
    config = bench.config("default")
    progress(f"incremental: full sync of {leads:,} leads to a file, then again from its last STATE")
    full_out = bench.workdir / "full.jsonl"
    full = bench.tap_sync(config, stdout=full_out)
    full_records, full_states = read_singer(full_out)
    if not full_states:
        raise BenchError("the full sync wrote no STATE message")
    state = bench.workdir / "state.json"
    state.write_text(json.dumps(full_states[-1]["value"]), encoding="utf-8")
    again_out = bench.workdir / "incremental.jsonl"
    again = bench.tap_sync(config, state=state, stdout=again_out)
    again_records, again_states = read_singer(again_out)
    budget = request_budget(leads)
    return Table(
        f"Incremental: the tap again with the last STATE of a full sync of {leads:,} leads "
        "(stdout to a file)",
        ["run", "requests", "RECORD messages", "STATE messages", "wall s", "target requests", ""],
        [
            [
                "full sync",
                f"{full.requests:,}",
                f"{full_records:,}",
                f"{len(full_states):,}",
                f"{full.wall:.2f}",
                f"<= {budget:,}",
                verdict(full.requests <= budget and full_records == leads),
            ],
            [
                "nothing new",
                f"{again.requests:,}",
                f"{again_records:,}",
                f"{len(again_states):,}",
                f"{again.wall:.2f}",
                "1",
                verdict(again.requests == 1),
            ],
        ],
    )


def bench_latency(bench: Bench, leads: int, latency_ms: float, parallel: int, runs: int) -> Table:
    bench.sandbox.load(leads)
    sequential_config = bench.config("sequential", max_parallel_requests=1)
    parallel_config = bench.config("parallel", max_parallel_requests=parallel)
    bench.floor(sequential_config)  # warm the sandbox's cache before adding latency
    bench.sandbox.latency(latency_ms)
    progress(f"{leads:,} leads at {latency_ms:g} ms a request: sequential/parallel x {runs}")
    sample: dict[str, list[Run]] = {"sequential": [], "parallel": []}
    for number in range(1, runs + 1):
        for name, config in (("sequential", sequential_config), ("parallel", parallel_config)):
            run = bench.tap_sync(config)
            sample[name].append(run)
            progress(f"  {name} {number}/{runs}: {run.wall:.2f} s wall")
    bench.sandbox.latency(0)
    sequential_wall = median(sample["sequential"], "wall")
    sequential_sync = median(sample["sequential"], "sync_seconds")
    ratio = median(sample["parallel"], "wall") / sequential_wall
    table = Table(
        f"Tap, {leads:,} leads with {latency_ms:g} ms latency per request (median of {runs} each)",
        [
            "max_parallel_requests",
            "wall s",
            "vs sequential",
            "target",
            "",
            "sync s (SDK timer)",
            "vs sequential",
            "CPU s",
            "requests",
        ],
    )
    for name, setting in (("sequential", 1), ("parallel", parallel)):
        runs_of = sample[name]
        table.rows.append(
            [
                f"{setting} ({name})",
                f"{median(runs_of, 'wall'):.2f}",
                f"{median(runs_of, 'wall') / sequential_wall:.2f}x",
                f"<= {PARALLEL_RATIO_TARGET:g}x" if name == "parallel" else "",
                verdict(ratio <= PARALLEL_RATIO_TARGET) if name == "parallel" else "",
                f"{median(runs_of, 'sync_seconds'):.2f}",
                f"{median(runs_of, 'sync_seconds') / sequential_sync:.2f}x",
                f"{median(runs_of, 'cpu'):.2f}",
                counts({run.requests for run in runs_of}),
            ]
        )
    return table


def bench_privacy(bench: Bench, leads: int, runs: int, seed: int) -> list[Table]:
    """Full syncs with `pii` keep, hash and drop, alternating; and the transform alone."""
    bench.sandbox.load(leads)
    configs = {mode: bench.config(f"pii-{mode}", pii=mode) for mode in ("keep", "hash", "drop")}
    progress(f"pii: full sync of {leads:,} leads: warm-up, then keep, hash and drop x {runs}")
    bench.tap_sync(configs["keep"])  # the sandbox encodes each lead once and caches it
    sample: dict[str, list[Run]] = {mode: [] for mode in configs}
    for number in range(1, runs + 1):
        for mode, config in configs.items():
            run = bench.tap_sync(config)
            sample[mode].append(run)
            progress(f"  {mode} {number}/{runs}: {run.cpu:.2f} s CPU, {run.wall:.2f} s wall")
    keep_cpu = median(sample["keep"], "cpu")
    keep_fastest = min(run.cpu for run in sample["keep"])
    table = Table(
        f"Tap, full sync of {leads:,} leads by `pii` mode "
        f"(median and fastest of {runs} runs each, the modes alternating)",
        [
            "pii",
            "CPU s (median)",
            "vs keep",
            "target",
            "",
            "CPU s (fastest)",
            "vs keep",
            "extra CPU ms per 1,000 leads (median)",
            "wall s",
            "peak RSS MiB",
            "requests",
        ],
    )
    for mode, runs_of in sample.items():
        cpu, fastest = median(runs_of, "cpu"), min(run.cpu for run in runs_of)
        table.rows.append(
            [
                f"`{mode}`",
                f"{cpu:.2f}",
                f"{cpu / keep_cpu:.2f}x",
                f"<= {PII_HASH_RATIO_TARGET:g}x" if mode == "hash" else "",
                verdict(cpu / keep_cpu <= PII_HASH_RATIO_TARGET) if mode == "hash" else "",
                f"{fastest:.2f}",
                f"{fastest / keep_fastest:.2f}x",
                f"{(cpu - keep_cpu) / leads * 1e6:.1f}" if mode != "keep" else "",
                f"{median(runs_of, 'wall'):.2f}",
                f"{median(runs_of, 'rss_mib'):.0f}",
                counts({run.requests for run in runs_of}),
            ]
        )
    return [table, bench_protect_alone(leads, seed)]


def bench_protect_alone(leads: int, seed: int, runs: int = 9) -> Table:
    """CPU of `protect_leads` itself on the sandbox's leads, in this process."""
    sys.path.insert(0, str(REPO))
    from tap_leadtrackr.privacy import hashed_email, hashed_name, hashed_phone, protect_leads
    from tap_leadtrackr.sandbox import generate_leads

    generated = generate_leads(leads, seed=seed)
    table = Table(
        f"`protect_leads` alone on the same {leads:,} leads, in-process "
        f"(CPU, median and fastest of {runs}; each run starts with empty hash caches)",
        ["pii", "CPU ms (median)", "us per lead", "CPU ms (fastest)", "us per lead"],
    )
    for mode in ("hash", "drop"):
        times = []
        for _ in range(runs):
            for cached in (hashed_email, hashed_phone, hashed_name):
                cached.cache_clear()
            # Fresh copies of what the transform may change: the lead and its nested objects.
            pages = [
                [
                    {
                        **lead,
                        "userData": copy.copy(lead["userData"]),
                        "formData": copy.copy(lead["formData"]),
                    }
                    for lead in generated[start : start + PAGE_SIZE]
                ]
                for start in range(0, leads, PAGE_SIZE)
            ]
            started = time.process_time()
            for page in pages:
                protect_leads(page, mode)
            times.append(time.process_time() - started)
        cpu, fastest = statistics.median(times), min(times)
        table.rows.append(
            [
                f"`{mode}`",
                f"{cpu * 1e3:.0f}",
                f"{cpu / leads * 1e6:.2f}",
                f"{fastest * 1e3:.0f}",
                f"{fastest / leads * 1e6:.2f}",
            ]
        )
    return table


def machine(command: str, load: tuple[float, float]) -> list[str]:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "tap_leadtrackr"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return [
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"Load average (1 min) at start and end: {load[0]:.2f}, {load[1]:.2f} "
        "(other processes share the cores; CPU seconds suffer less from that than wall)",
        f"Machine: {len(os.sched_getaffinity(0))} cores (nproc), {cpu}, "
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, singer-sdk {metadata.version('singer-sdk')}, "
        f"tap-leadtrackr at {commit or 'unknown commit'}"
        + (" with uncommitted changes in tap_leadtrackr/" if dirty else ""),
        f"Command: `{command}`",
    ]


def render_text(about: list[str], tables: list[Table]) -> str:
    lines = [*about]
    for table in tables:
        rows = [table.header, *table.rows]
        widths = [max(len(row[column]) for row in rows) for column in range(len(table.header))]
        lines += ["", table.title]
        for row in rows:
            cells = [
                cell.ljust(width) if column == 0 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def render_markdown(about: list[str], tables: list[Table]) -> str:
    lines = [f"- {line}" for line in about]
    for table in tables:
        lines += ["", f"**{table.title}**", ""]
        lines.append("| " + " | ".join(table.header) + " |")
        lines.append("| " + " | ".join(["---"] + ["---:"] * (len(table.header) - 1)) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def write_into(path: Path, markdown: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace what lies between the markers `begin` and `end` in `path` with `markdown`."""
    text = path.read_text(encoding="utf-8")
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise BenchError(f"{path} has no {begin} ... {end} block to replace")
    block = f"{begin}\n{markdown}{end}"
    path.write_text(text[:start] + block + text[stop + len(end) :], encoding="utf-8")


def add_output_options(parser: argparse.ArgumentParser, begin: str, end: str) -> None:
    """`--markdown` or `--write FILE`: how a benchmark reports its figures."""
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="print Markdown, not a table")
    output.add_argument(
        "--write",
        type=Path,
        metavar="FILE",
        help=f"replace the figures between {begin} and {end} in FILE (e.g. BENCHMARKS.md)",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark tap-leadtrackr against a minimal loop on the local sandbox."
    )
    parser.add_argument("--leads", type=int, default=20_000, help="leads of the main full sync")
    parser.add_argument("--runs", type=int, default=5, help="runs of the main full sync, each")
    parser.add_argument("--big-leads", type=int, default=100_000, help="leads of the large sync")
    parser.add_argument("--big-runs", type=int, default=1, help="runs of the large sync, each")
    parser.add_argument(
        "--latency-leads", type=int, default=10_000, help="leads of the latency runs"
    )
    parser.add_argument("--latency-ms", type=float, default=50, help="latency per request")
    parser.add_argument("--parallel", type=int, default=4, help="max_parallel_requests to compare")
    parser.add_argument("--latency-runs", type=int, default=3, help="runs with latency, each")
    parser.add_argument(
        "--startup-runs", type=int, default=5, help="runs of --about and --discover"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the sandbox's leads")
    parser.add_argument(
        "--privacy",
        action="store_true",
        help=f"measure only the `pii` modes at --leads (--write fills {PRIVACY_BEGIN} ...)",
    )
    parser.add_argument("--privacy-runs", type=int, default=7, help="runs of each `pii` mode")
    add_output_options(parser, BEGIN, END)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    command = shlex.join(
        [".venv/bin/python", "bench/bench.py", *(argv if argv is not None else sys.argv[1:])]
    )
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as workdir,
        SandboxProcess(options.seed) as sandbox,
    ):
        bench = Bench(sandbox, Path(workdir))
        if options.privacy:
            return report(
                options,
                command,
                bench_privacy(bench, options.leads, options.privacy_runs, options.seed),
                started,
                load_at_start,
                (PRIVACY_BEGIN, PRIVACY_END),
            )
        tables = [bench_startup(bench, options.startup_runs)]
        full, small = bench_full_sync(bench, options.leads, options.runs)
        tables += [full, bench_incremental(bench, options.leads)]
        if options.big_leads > options.leads:
            big = bench_big_sync(bench, options.big_leads, options.big_runs, small, options.leads)
            tables.insert(-1, big)
        tables.append(
            bench_latency(
                bench,
                options.latency_leads,
                options.latency_ms,
                options.parallel,
                options.latency_runs,
            )
        )
    return report(options, command, tables, started, load_at_start, (BEGIN, END))


def report(
    options: argparse.Namespace,
    command: str,
    tables: list[Table],
    started: float,
    load_at_start: float,
    markers: tuple[str, str],
) -> int:
    """Print the figures, and write them between `markers` in `--write`'s file."""
    progress(f"done in {time.perf_counter() - started:.0f} s")
    about = machine(command, (load_at_start, os.getloadavg()[0]))
    if options.write:
        write_into(options.write, render_markdown(about, tables), *markers)
        progress(f"wrote the figures into {options.write}")
    print(
        render_markdown(about, tables) if options.markdown else render_text(about, tables), end=""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
