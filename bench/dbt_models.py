"""The dbt models of transform/ on N sandbox leads: what `dbt build` costs, model by model.

Run (from the repository root, after `make .venv/.demo-installed`):

    .venv/bin/python bench/dbt_models.py --leads 3000 --leads 100000
    .venv/bin/python bench/dbt_models.py --transform before=/tmp/old/transform   # compare
    .venv/bin/python bench/dbt_models.py --write BENCHMARKS.md

For each `--leads`, the sandbox's leads are loaded once into a new DuckDB file
(`tap-leadtrackr | loader`, as bench/warehouse.py does), then each transform (the project's
`transform/`, and any `--transform NAME=DIR` to compare) is built on it with `meltano
--environment dev invoke dbt-duckdb:build`, as the main job's last task runs: once to
parse the project, then `--runs` times, transforms alternating. Reported, as medians: the
command's wall seconds (starting Meltano and dbt included), dbt's own elapsed seconds, and
the seconds of each model and of all tests (dbt's run_results.json).
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
from warehouse import LOADER_CONFIG, PROJECT_LOADER, catalog

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

REPO = Path(__file__).resolve().parent.parent
MELTANO = Path(sys.executable).with_name("meltano")
BEGIN, END = "<!-- dbt-models:begin -->", "<!-- dbt-models:end -->"


@dataclass(frozen=True)
class Transform:
    name: str
    directory: Path


@dataclass(frozen=True)
class Build:
    wall: float
    elapsed: float
    models: dict[str, float]
    """Seconds per model or seed, by name."""
    tests: float
    nodes: int


def shown(path: Path) -> str:
    """A path relative to the repository when inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def parse_transform(text: str) -> Transform:
    name, _, directory = text.rpartition("=")
    path = Path(directory).expanduser().resolve()
    if not (path / "dbt_project.yml").exists():
        raise argparse.ArgumentTypeError(f"no dbt_project.yml in {path}")
    return Transform(name or path.name, path)


def load(leads: int, seed: int, warehouse: Path, workdir: Path) -> None:
    """The sandbox's leads and their touchpoints, `tap | loader`, into `warehouse`."""
    tap = str(Path(sys.executable).with_name("tap-leadtrackr"))
    with SandboxProcess(seed) as sandbox:
        sandbox.load(leads)
        config = workdir / "tap.json"
        config.write_text(json.dumps({"api_url": sandbox.url, "api_key": sandbox.api_key}))
        loader_config = workdir / "loader.json"
        loader_config.write_text(json.dumps({**LOADER_CONFIG, "filepath": str(warehouse)}))
        tap_argv = [tap, "--config", str(config), "--catalog", str(catalog(tap, config, workdir))]
        with subprocess.Popen(tap_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as run:
            subprocess.run(
                [str(PROJECT_LOADER), "--config", str(loader_config)],
                stdin=run.stdout,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
        if run.returncode != 0:
            raise BenchError(f"the tap exited {run.returncode}")


def build(transform: Transform, warehouse: Path, workdir: Path) -> Build:
    """`meltano invoke dbt-duckdb:build` of `transform` on `warehouse`, timed."""
    target = workdir / f"target-{transform.name}"
    env = {
        **os.environ,
        "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'meltano.db'}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TARGET_DUCKDB_FILEPATH": str(warehouse),
        # As `make demo` builds the models: with the sandbox's spend sample.
        "DBT_DUCKDB_AD_SPEND": "sandbox_ad_spend",
        # The utility's settings, as Meltano reads them from the environment.
        "DBT_DUCKDB_PROJECT_DIR": str(transform.directory),
        "DBT_DUCKDB_PROFILES_DIR": str(transform.directory),
        "DBT_DUCKDB_TARGET_PATH": str(target),
    }
    started = time.perf_counter()
    result = subprocess.run(
        [str(MELTANO), "--environment", "dev", "invoke", "dbt-duckdb:build"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"dbt build of {transform.name} failed:\n{result.stdout[-3000:]}")
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
    nodes = results["results"]
    return Build(
        wall=wall,
        elapsed=results["elapsed_time"],
        models={
            node["unique_id"].split(".")[-1]: node["execution_time"]
            for node in nodes
            if node["unique_id"].startswith(("model.", "seed."))
        },
        tests=sum(
            node["execution_time"] for node in nodes if node["unique_id"].startswith("test.")
        ),
        nodes=len(nodes),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--leads", type=int, action="append", help="leads of a warehouse; repeat (3,000, 100,000)"
    )
    parser.add_argument("--runs", type=int, default=3, help="builds per transform (3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sandbox's leads")
    parser.add_argument(
        "--transform",
        type=parse_transform,
        action="append",
        metavar="[NAME=]DIR",
        help="another dbt project to build on the same warehouse, to compare",
    )
    add_output_options(parser, BEGIN, END)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    counts: list[int] = options.leads or [3_000, 100_000]
    transforms = [*(options.transform or []), Transform("transform/", REPO / "transform")]
    command = shlex.join(
        [".venv/bin/python", "bench/dbt_models.py", *(argv if argv is not None else sys.argv[1:])]
    )
    load_at_start = os.getloadavg()[0]
    sample: dict[tuple[int, str], list[Build]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dbt-") as directory:
        workdir = Path(directory)
        for leads in counts:
            warehouse = workdir / f"{leads}.duckdb"
            progress(f"{leads:,} leads: loading")
            load(leads, options.seed, warehouse, workdir)
            for transform in transforms:
                progress(f"  {transform.name}: first build (parses the project)")
                build(transform, warehouse, workdir)
            for number in range(1, options.runs + 1):
                for transform in transforms:
                    run = build(transform, warehouse, workdir)
                    sample.setdefault((leads, transform.name), []).append(run)
                    progress(
                        f"  {transform.name} {number}/{options.runs}: {run.wall:.1f} s wall, "
                        f"dbt {run.elapsed:.2f} s"
                    )
            warehouse.unlink()
    builds = Table(
        f"`meltano --environment dev invoke dbt-duckdb:build` on a warehouse of N sandbox "
        f"leads (median of {options.runs} builds after one that parses the project)",
        ["leads", "transform", "nodes", "wall s", "dbt elapsed s", "models s", "tests s"],
    )
    for (leads, name), runs in sample.items():
        builds.rows.append(
            [
                f"{leads:,}",
                name,
                str(runs[0].nodes),
                f"{statistics.median(run.wall for run in runs):.1f}",
                f"{statistics.median(run.elapsed for run in runs):.2f}",
                f"{statistics.median(sum(run.models.values()) for run in runs):.2f}",
                f"{statistics.median(run.tests for run in runs):.2f}",
            ]
        )
    models = Table(
        "Seconds per model of transform/ (median; dbt runs up to 4 at once)",
        ["model", *(f"{leads:,} leads" for leads in counts)],
    )
    project = transforms[-1].name
    for model in sample[(counts[0], project)][0].models:
        medians = [
            statistics.median(run.models[model] for run in sample[(leads, project)])
            for leads in counts
        ]
        models.rows.append([model, *(f"{seconds:.2f}" for seconds in medians)])
    about = machine(command, (load_at_start, os.getloadavg()[0]))
    about += [f"{transform.name}: `{shown(transform.directory)}`" for transform in transforms]
    tables = [builds, models]
    if options.write:
        write_into(options.write, render_markdown(about, tables), BEGIN, END)
        progress(f"wrote the figures into {options.write}")
    print(
        render_markdown(about, tables) if options.markdown else render_text(about, tables), end=""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
