"""What a reconcile costs: the tap reading every lead, and the DuckDB loader flagging the gone.

Run (from the repository root, after `make .venv/.demo-installed`; about 5 minutes):

    .venv/bin/python bench/reconcile.py                          # the figures as tables
    .venv/bin/python bench/reconcile.py --write BENCHMARKS.md    # refresh them there

The tap: a reconcile (`reconcile: true`) of --sizes leads each, and a first full sync of the
largest for comparison, against the sandbox in a process of its own; wall and CPU seconds
and peak RSS of the tap's process (`os.wait4`), getLeads requests counted by the sandbox.
Peak RSS that does not grow with the leads shows the tap holds no set of every id.

The loader (`leadtrackr-target-duckdb` from `.meltano/`): the full sync's output loaded
into a new DuckDB file, then the reconcile's output with 1 in 100 leads left out (deleted
since) and its ACTIVATE_VERSION, timed as a whole; then ACTIVATE_VERSION's statement
alone on that table, for the 1% and for every row (soft delete, then `hard_delete`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox_process import SandboxProcess
from warehouse import LOADER_CONFIG, PROJECT_LOADER

from bench import (
    Bench,
    BenchError,
    Run,
    Table,
    add_output_options,
    machine,
    progress,
    render_markdown,
    render_text,
    write_into,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "loaders" / "target-duckdb"))

BEGIN, END = "<!-- reconcile:begin -->", "<!-- reconcile:end -->"
#: One lead in this many is left out of the loaded reconcile: deleted since the full sync.
DELETED_ONE_IN = 100


def tap_runs(bench: Bench, sizes: list[int], workdir: Path) -> tuple[Table, Path, Path]:
    """Reconciles of each size, and a full sync of the largest; their outputs, of the largest."""
    table = Table(
        "The tap: a reconcile of every lead (`reconcile: true`), against a first full sync",
        ["sync", "leads", "requests", "wall (s)", "tap CPU (s)", "peak RSS (MiB)"],
    )
    full_output, reconcile_output = workdir / "full.jsonl", workdir / "reconcile.jsonl"
    for size in sizes:
        bench.sandbox.load(size)
        largest = size == max(sizes)
        runs: list[tuple[str, Run]] = []
        if largest:
            progress(f"full sync of {size:,} leads")
            runs.append(
                ("first full sync", bench.tap_sync(bench.config("full"), stdout=full_output))
            )
        progress(f"reconcile of {size:,} leads")
        config = bench.config("reconcile", reconcile=True)
        runs.append(
            ("reconcile", bench.tap_sync(config, stdout=reconcile_output if largest else None))
        )
        for name, run in runs:
            table.rows.append(
                [
                    name,
                    f"{size:,}",
                    f"{run.requests:,}",
                    f"{run.wall:.1f}",
                    f"{run.cpu:.1f}",
                    f"{run.rss_mib:.0f}",
                ]
            )
    return table, full_output, reconcile_output


def check_reconcile_output(path: Path, leads: int) -> int:
    """The reconcile's version, after checking every lead came with it before ACTIVATE_VERSION."""
    versions, records, activated, last = set(), 0, [], ""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            last = line
            if '"type":"RECORD"' in line:
                records += 1
                versions.add(json.loads(line)["version"])
            elif '"ACTIVATE_VERSION"' in line:
                activated.append(json.loads(line))
    if records != leads or len(versions) != 1 or len(activated) != 1:
        raise BenchError(f"reconcile output: {records} records, {versions}, {activated}")
    if activated[0]["version"] not in versions or json.loads(last) != activated[0]:
        raise BenchError("ACTIVATE_VERSION is not the last message, with the records' version")
    return int(activated[0]["version"])


def load(warehouse: Path, messages: Path, workdir: Path, **settings: object) -> tuple[float, str]:
    """Run the project's loader on a file of messages; its wall seconds and its log."""
    config = workdir / "loader.json"
    config.write_text(json.dumps({**LOADER_CONFIG, "filepath": str(warehouse), **settings}))
    with messages.open("rb") as stdin, tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        done = subprocess.run(
            [str(PROJECT_LOADER), "--config", str(config)],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=log,
            check=False,
        )
        wall = time.perf_counter() - started
        log.seek(0)
        text = log.read().decode(errors="replace")
    if done.returncode != 0:
        raise BenchError(f"the loader failed:\n{text[-2000:]}")
    return wall, text


def without_deleted(source: Path, target: Path) -> int:
    """Copy a reconcile's output, leaving out one lead in `DELETED_ONE_IN`; how many went."""
    left_out = seen = 0
    with source.open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as out:
        for line in lines:
            if '"type":"RECORD"' in line:
                seen += 1
                if seen % DELETED_ONE_IN == 0:
                    left_out += 1
                    continue
            out.write(line)
    return left_out


def loader_runs(full: Path, reconcile: Path, leads: int, version: int, workdir: Path) -> Table:
    """The loader: a full load, a reconcile's load, and ACTIVATE_VERSION's statement alone."""
    import duckdb
    from leadtrackr_target_duckdb.activate_version import activate_version

    table = Table(
        f"The DuckDB loader: a table of {leads:,} leads",
        ["step", "rows flagged or deleted", "seconds"],
    )
    warehouse = workdir / "warehouse.duckdb"
    progress(f"loader: full load of {leads:,} leads")
    wall, _ = load(warehouse, full, workdir)
    table.rows.append(["full sync's output loaded (no version)", "0", f"{wall:.1f}"])
    loaded = workdir / "loaded.duckdb"
    shutil.copy(warehouse, loaded)

    trimmed = workdir / "reconcile-trimmed.jsonl"
    gone = without_deleted(reconcile, trimmed)
    progress(f"loader: reconcile with {gone:,} leads gone")
    wall, log = load(warehouse, trimmed, workdir)
    if f"flagged as deleted {gone} rows" not in log:
        raise BenchError(f"the loader did not flag the {gone} leads gone:\n{log[-2000:]}")
    table.rows.append(
        ["reconcile's output loaded, ACTIVATE_VERSION included", f"{gone:,}", f"{wall:.1f}"]
    )

    schema = next(
        json.loads(line)
        for line in full.open(encoding="utf-8")
        if '"type":"SCHEMA"' in line and '"stream":"leads"' in line
    )
    cases = [
        (f"ACTIVATE_VERSION alone, 1 row in {DELETED_ONE_IN} gone", DELETED_ONE_IN, {}),
        ("ACTIVATE_VERSION alone, every row gone", 1, {}),
        ("ACTIVATE_VERSION alone, every row gone, `hard_delete`", 1, {"hard_delete": True}),
    ]
    for name, one_in, settings in cases:
        copy = workdir / "activate.duckdb"
        shutil.copy(loaded, copy)
        config = {**LOADER_CONFIG, "filepath": str(copy), **settings}
        with duckdb.connect(str(copy)) as connection:
            # Rows the read brought carry its version; the others, none (as after a daily run).
            connection.execute(
                "update leadtrackr.leads set _sdc_table_version = ? where id % ? <> 0",
                [version, one_in],
            )
            started = time.perf_counter()
            count = activate_version(
                connection,
                config,
                schema,
                {"type": "ACTIVATE_VERSION", "stream": "leads", "version": version},
            )
            seconds = time.perf_counter() - started
        table.rows.append([name, f"{count:,}", f"{seconds:.3f}"])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=[25_000, 50_000, 100_000],
        help="leads of each reconcile, comma-separated (default 25000,50000,100000)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the sandbox's leads")
    add_output_options(parser, BEGIN, END)
    options = parser.parse_args(argv)
    if not PROJECT_LOADER.exists():
        raise SystemExit(f"no {PROJECT_LOADER}: run `make .venv/.demo-installed` first")
    command = shlex.join(
        [".venv/bin/python", "bench/reconcile.py", *(argv if argv is not None else sys.argv[1:])]
    )
    load_at_start = os.getloadavg()[0]
    largest = max(options.sizes)
    with (
        tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp,
        SandboxProcess(options.seed) as sandbox,
    ):
        workdir = Path(tmp)
        tap_table, full, reconcile = tap_runs(Bench(sandbox, workdir), options.sizes, workdir)
        version = check_reconcile_output(reconcile, largest)
        loader_table = loader_runs(full, reconcile, largest, version, workdir)
    about = machine(command, (load_at_start, os.getloadavg()[0]))
    tables = [tap_table, loader_table]
    if options.write:
        write_into(options.write, render_markdown(about, tables), BEGIN, END)
        progress(f"wrote the figures into {options.write}")
    print(
        render_markdown(about, tables) if options.markdown else render_text(about, tables), end=""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
