"""The main job without Meltano: leads from the sandbox into DuckDB, `tap | loader`, timed.

Run (from the repository root, after `make .venv/.demo-installed` or `meltano install`):

    .venv/bin/python bench/warehouse.py                          # the project's loader
    .venv/bin/python bench/warehouse.py --loader old=PATH ...    # compare loaders
    .venv/bin/python bench/warehouse.py --write BENCHMARKS.md    # refresh the figures there

Each run loads `--leads` leads (and their touchpoints, as `meltano.yml` selects both
streams) into a new DuckDB file with the loader's settings from `meltano.yml`, the tap's
stdout piped into the loader's stdin as `meltano run` does, but without Meltano's own
start-up. Wall seconds run from starting both processes to the later exit; CPU seconds and
peak RSS are each process's own (`os.wait4`). Loaders alternate, run by run; each figure is
the median. After every run the warehouse is counted with the loader's own DuckDB: a run
that lost or doubled a row is reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox_process import SandboxProcess

from bench import (
    BenchError,
    Table,
    add_output_options,
    machine,
    progress,
    render_markdown,
    render_text,
    write_into,
)
from tap_leadtrackr.channel_flow import parse_channel_flow
from tap_leadtrackr.sandbox import generate_leads

REPO = Path(__file__).resolve().parent.parent
PROJECT_LOADER = REPO / ".meltano/loaders/target-duckdb/venv/bin/leadtrackr-target-duckdb"
BEGIN, END = "<!-- warehouse:begin -->", "<!-- warehouse:end -->"
#: The loader's config in meltano.yml (the file path aside).
LOADER_CONFIG = {"default_target_schema": "leadtrackr", "add_metadata_columns": True}
COUNT_ROWS = """
import sys, duckdb
with duckdb.connect(sys.argv[1], read_only=True) as db:
    print(duckdb.__version__, *(number
        for table, key in (("leads", "id"), ("lead_touchpoints", "(lead_id, position)"))
        for number in db.execute(
            f"select count(*), count(distinct {key}) from leadtrackr.{table}").fetchone()))
"""


@dataclass(frozen=True)
class Loader:
    name: str
    command: Path

    @property
    def python(self) -> Path:
        """The interpreter of the loader's virtualenv, next to its command."""
        return self.command.with_name("python")


@dataclass(frozen=True)
class Run:
    wall: float
    tap_cpu: float
    loader_cpu: float
    loader_rss_mib: float
    duckdb: str
    leads: tuple[int, int]
    touchpoints: tuple[int, int]


def parse_loader(text: str) -> Loader:
    name, _, command = text.rpartition("=")
    path = Path(command).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no loader at {path}")
    return Loader(name or path.name, path)


def catalog(tap: str, config: Path, workdir: Path) -> Path:
    """The tap's catalog with every stream selected, as meltano.yml selects them."""
    discovered = json.loads(
        subprocess.run(
            [tap, "--config", str(config), "--discover"], capture_output=True, check=True
        ).stdout
    )
    for stream in discovered["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = True
    path = workdir / "catalog.json"
    path.write_text(json.dumps(discovered), encoding="utf-8")
    return path


def load_once(tap_argv: list[str], loader: Loader, workdir: Path, number: int) -> Run:
    warehouse = workdir / f"run-{number}.duckdb"
    config = workdir / f"loader-{number}.json"
    config.write_text(json.dumps({**LOADER_CONFIG, "filepath": str(warehouse)}), encoding="utf-8")
    with tempfile.TemporaryFile(dir=workdir) as tap_err, tempfile.TemporaryFile(dir=workdir) as err:
        started = time.perf_counter()
        tap = subprocess.Popen(tap_argv, stdout=subprocess.PIPE, stderr=tap_err)
        target = subprocess.Popen(
            [str(loader.command), "--config", str(config)],
            stdin=tap.stdout,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        assert tap.stdout is not None
        tap.stdout.close()  # the loader holds the pipe's only reading end
        usage = {}
        for process in (tap, target):
            _, status, usage[process.pid] = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        for process, log in ((tap, tap_err), (target, err)):
            if process.returncode != 0:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                raise BenchError(f"{shlex.join(process.args)} exited {process.returncode}:\n{tail}")
    counted = subprocess.run(
        [str(loader.python), "-c", COUNT_ROWS, str(warehouse)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    warehouse.unlink()
    tap_usage, loader_usage = usage[tap.pid], usage[target.pid]
    return Run(
        wall=wall,
        tap_cpu=tap_usage.ru_utime + tap_usage.ru_stime,
        loader_cpu=loader_usage.ru_utime + loader_usage.ru_stime,
        loader_rss_mib=loader_usage.ru_maxrss / 1024,
        duckdb=counted[0],
        leads=(int(counted[1]), int(counted[2])),
        touchpoints=(int(counted[3]), int(counted[4])),
    )


def expected_touchpoints(leads: int, seed: int) -> int:
    """Touchpoint rows of the sandbox's leads: their sessions, as the tap parses them."""
    return sum(
        len(parse_channel_flow(lead["channelFlow"]) or []) for lead in generate_leads(leads, seed)
    )


def rows(counted: set[tuple[int, int]], expected: int) -> str:
    """`N` when every run loaded each expected row once, else what the runs found."""
    if counted == {(expected, expected)}:
        return f"{expected:,}"
    found = ", ".join(f"{total:,} ({distinct:,} distinct)" for total, distinct in sorted(counted))
    return f"WRONG: {found} of {expected:,}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000, help="leads per run (20,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per loader (5)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sandbox's leads")
    parser.add_argument(
        "--loader",
        type=parse_loader,
        action="append",
        metavar="[NAME=]COMMAND",
        help="a loader's executable, in its virtualenv; repeat to compare "
        f"(default: the project's, {PROJECT_LOADER.relative_to(REPO)})",
    )
    add_output_options(parser, BEGIN, END)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    loaders: list[Loader] = options.loader or [parse_loader(f"project={PROJECT_LOADER}")]
    tap = str(Path(sys.executable).with_name("tap-leadtrackr"))
    command = shlex.join(
        [".venv/bin/python", "bench/warehouse.py", *(argv if argv is not None else sys.argv[1:])]
    )
    load_at_start = os.getloadavg()[0]
    touchpoints = expected_touchpoints(options.leads, options.seed)
    sample: dict[Loader, list[Run]] = {loader: [] for loader in loaders}
    with (
        tempfile.TemporaryDirectory(prefix="bench-warehouse-") as directory,
        SandboxProcess(options.seed) as sandbox,
    ):
        workdir = Path(directory)
        sandbox.load(options.leads)
        config = workdir / "tap.json"
        config.write_text(json.dumps({"api_url": sandbox.url, "api_key": sandbox.api_key}))
        tap_argv = [tap, "--config", str(config), "--catalog", str(catalog(tap, config, workdir))]
        names = ", ".join(loader.name for loader in loaders)
        progress(f"{options.leads:,} leads: warm-up, then {names}")
        subprocess.run(tap_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        for number in range(1, options.runs + 1):
            for loader in loaders:
                run = load_once(tap_argv, loader, workdir, number)
                sample[loader].append(run)
                progress(
                    f"  {loader.name} {number}/{options.runs}: {run.wall:.2f} s wall, loader "
                    f"{run.loader_cpu:.2f} s CPU, {run.leads[0]:,} leads, "
                    f"{run.touchpoints[0]:,} touchpoints"
                )
    table = Table(
        f"{options.leads:,} leads and their {touchpoints:,} touchpoints from the sandbox into "
        f"a new DuckDB file, `tap-leadtrackr | loader` (median of {options.runs} runs each, "
        "loaders alternating)",
        [
            "loader",
            "DuckDB",
            "wall s",
            "vs first",
            "loader CPU s",
            "tap CPU s",
            "loader peak RSS MiB",
            "leads rows",
            "touchpoint rows",
        ],
    )
    first = statistics.median(run.wall for run in sample[loaders[0]])
    for loader, runs in sample.items():
        wall = statistics.median(run.wall for run in runs)
        table.rows.append(
            [
                loader.name,
                ", ".join(sorted({run.duckdb for run in runs})),
                f"{wall:.2f}",
                f"{wall / first:.2f}x",
                f"{statistics.median(run.loader_cpu for run in runs):.2f}",
                f"{statistics.median(run.tap_cpu for run in runs):.2f}",
                f"{statistics.median(run.loader_rss_mib for run in runs):.0f}",
                rows({run.leads for run in runs}, options.leads),
                rows({run.touchpoints for run in runs}, touchpoints),
            ]
        )
    about = machine(command, (load_at_start, os.getloadavg()[0]))
    about += [f"{loader.name}: `{loader.command}`" for loader in loaders]
    if options.write:
        write_into(options.write, render_markdown(about, [table]), BEGIN, END)
        progress(f"wrote the figures into {options.write}")
    print(
        render_markdown(about, [table]) if options.markdown else render_text(about, [table]),
        end="",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
