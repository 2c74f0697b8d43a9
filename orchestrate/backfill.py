r"""Backfill LeadTrackr history one month per `meltano run`, several months at once.

    python orchestrate/backfill.py 2025-01 2025-12 --jobs 4 --loader target-postgres
    python orchestrate/backfill.py 2025-01 2025-12                   # into the DuckDB warehouse
    python orchestrate/backfill.py 2025-01 2025-12 --jobs 4 --duckdb-dir output/backfill

Each month is a window [first day, first day of the next month) (`start_date` inclusive,
`end_date` exclusive, so a lead created exactly at midnight on the 1st belongs to the new
month only) and runs

    TAP_LEADTRACKR_START_DATE=2025-03-01 TAP_LEADTRACKR_END_DATE=2025-04-01 meltano run \
      --state-id-suffix=2025-03-01_2025-04-01 tap-leadtrackr <loader>

with its own state id, so windows never move each other's bookmark nor the daily job's.
Run it again after a failure: finished windows find nothing new, the others resume from
their bookmark (`--full-refresh` reads every window again; rows are upserted).

Two things stop `meltano run`s of one project from running side by side, and this script
handles both:

- Meltano writes each extractor's catalog and state file to one place,
  `.meltano/run/tap-leadtrackr/`; two runs at once overwrite each other's. Each window
  here gets its own system directory (`MELTANO_SYS_DIR_ROOT`) holding links to the
  installed plugins, and shares the project's system database (so its state).
- DuckDB lets one process write a file at a time. With `--jobs` above 1, target-duckdb
  needs `--duckdb-dir`: one file per window, to be read together afterwards. A server
  warehouse (`--loader target-postgres`) takes every window at once into one schema,
  once the first window, run alone, has created the tables.

Needs only the Python standard library and the project's `meltano`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
EXTRACTOR = "tap-leadtrackr"
PLUGIN_DIRS = ("extractors", "loaders", "mappers", "utilities")
"""What a window's system directory links to: the plugins `meltano install` put in `.meltano/`."""


@dataclass(frozen=True)
class Window:
    """The leads created in [start, end)."""

    start: date
    end: date

    @property
    def state_id_suffix(self) -> str:
        """The same suffix the Dagster and Airflow examples give this window."""
        return f"{self.start.isoformat()}_{self.end.isoformat()}"


def month(text: str) -> date:
    """The first day of a `YYYY-MM` month."""
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a month like 2025-01: {text!r}") from None


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def monthly_windows(first: date, last: date) -> list[Window]:
    """One window per month from `first` to `last`, both included."""
    windows = []
    start = first
    while start <= last:
        windows.append(Window(start, next_month(start)))
        start = windows[-1].end
    return windows


class Backfill:
    """Runs `meltano run` for windows, each in its own Meltano system directory."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.meltano = args.meltano
        self.loader = args.loader
        self.options = [
            *(["--env-file", str(args.env_file)] if args.env_file else []),
            *(["--environment", args.environment] if args.environment else []),
        ]
        self.full_refresh = args.full_refresh
        self.duckdb_dir = args.duckdb_dir
        self.sys_dir = Path(os.environ.get("MELTANO_SYS_DIR_ROOT", PROJECT / ".meltano")).resolve()
        self._running: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    def command(self, *args: str) -> list[str]:
        """`meltano` with the options every call shares, then `args`."""
        return [self.meltano, *self.options, *args]

    def database_uri(self) -> str:
        """The project's system database (where state is kept), migrated before the windows.

        Asked once up front: a window's own system directory would otherwise give it a
        database of its own, and several runs migrating a new database at once fail.
        """
        result = subprocess.run(
            self.command("config", "print", "meltano", "--format=json"),
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            sys.exit(f"`meltano config print meltano` failed:\n{result.stderr[-3000:]}")
        return str(json.loads(result.stdout)["database_uri"])

    def run(self, window: Window, database_uri: str) -> tuple[Window, int, float, str]:
        """Run one window; return its exit code, seconds and the end of its log."""
        env = {
            **os.environ,
            "MELTANO_DATABASE_URI": database_uri,
            "TAP_LEADTRACKR_START_DATE": window.start.isoformat(),
            "TAP_LEADTRACKR_END_DATE": window.end.isoformat(),
        }
        if self.duckdb_dir:
            env["TARGET_DUCKDB_FILEPATH"] = str(
                self.duckdb_dir / f"{window.state_id_suffix}.duckdb"
            )
        args = ["run", f"--state-id-suffix={window.state_id_suffix}"]
        args += ["--full-refresh"] if self.full_refresh else []
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"meltano-{window.state_id_suffix}-") as sys_dir:
            for name in PLUGIN_DIRS:
                if (self.sys_dir / name).is_dir():
                    (Path(sys_dir) / name).symlink_to(self.sys_dir / name)
            env["MELTANO_SYS_DIR_ROOT"] = sys_dir
            with subprocess.Popen(
                self.command(*args, EXTRACTOR, self.loader),
                cwd=PROJECT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            ) as process:
                with self._lock:
                    self._running.add(process)
                log, _ = process.communicate()
                with self._lock:
                    self._running.discard(process)
        return window, process.returncode, time.monotonic() - started, log

    def stop(self) -> None:
        """Stop every running window (Meltano, the tap and the loader)."""
        with self._lock:
            for process in self._running:
                os.killpg(process.pid, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """Run the windows; 0 when every one succeeded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=month, help="first month, e.g. 2025-01")
    parser.add_argument("last", type=month, help="last month (included), e.g. 2025-12")
    parser.add_argument("--jobs", type=int, default=1, help="windows at once (default 1)")
    parser.add_argument("--loader", default="target-duckdb", help="default target-duckdb")
    parser.add_argument(
        "--duckdb-dir", type=Path, help="target-duckdb: one file per window in this folder"
    )
    parser.add_argument("--environment", help="Meltano environment (default: the project's)")
    parser.add_argument("--env-file", type=Path, help="dotenv file for Meltano (default .env)")
    parser.add_argument("--full-refresh", action="store_true", help="ignore the windows' state")
    parser.add_argument(
        "--meltano",
        default=str(Path(sys.executable).with_name("meltano")),
        help="the meltano executable (default: next to this Python)",
    )
    args = parser.parse_args(argv)
    windows = monthly_windows(args.first, args.last)
    if not windows:
        parser.error("the last month is before the first")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.loader == "target-duckdb" and args.jobs > 1 and not args.duckdb_dir:
        parser.error(
            "DuckDB takes one writer per file: use --jobs 1, or --duckdb-dir for one file "
            "per window, or a server warehouse such as --loader target-postgres"
        )
    if args.duckdb_dir:
        args.duckdb_dir = args.duckdb_dir.resolve()
        args.duckdb_dir.mkdir(parents=True, exist_ok=True)

    backfill = Backfill(args)
    database_uri = backfill.database_uri()
    print(f"{len(windows)} windows, {args.jobs} at a time, {EXTRACTOR} -> {args.loader}")
    failed: list[Window] = []
    # In one shared warehouse the first window runs alone: it creates the schema and the
    # tables, which loaders starting at the same moment would race to create (PostgreSQL
    # then fails one of them with a duplicate schema or table).
    shared = args.jobs > 1 and not args.duckdb_dir
    batches = [windows[:1], windows[1:]] if shared else [windows]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        try:
            for window, code, seconds, log in (
                result
                for batch in batches
                for result in pool.map(lambda window: backfill.run(window, database_uri), batch)
            ):
                outcome = "ok" if code == 0 else f"FAILED (exit code {code})"
                print(f"  {window.state_id_suffix}  {outcome}  {seconds:.1f} s")
                if code != 0:
                    failed.append(window)
                    print("\n".join(f"    {line}" for line in log.splitlines()[-20:]))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            backfill.stop()
            print("Interrupted; run the same command again to resume.", file=sys.stderr)
            return 130
    if failed:
        print(f"{len(failed)} windows failed; run the same command again to resume them.")
        return 1
    if args.duckdb_dir:
        print(f"One DuckDB file per window in {args.duckdb_dir}; read them together with ATTACH.")
    print(f"Their state: meltano state list --pattern '*:{EXTRACTOR}-to-{args.loader}:*'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
