"""The LeadTrackr demo: leads -> Meltano job `leads-to-warehouse` -> DuckDB, then a report.

The job loads the leads and their touchpoints, then builds and tests the dbt models of
`transform/` in the same file (`lead_journeys`, `channel_performance`, the attribution),
which the report reads; the attribution's charts go to `output/report.html`.

    python scripts/demo.py [--full-refresh]      (`make demo ARGS=--full-refresh`)
    python scripts/demo.py --reconcile           (`make demo ARGS=--reconcile`)
    python scripts/demo.py --projects 3          (`make demo ARGS="--projects 3"`)

Without `TAP_LEADTRACKR_API_KEY` it serves a local sandbox project (Meltano environment
`dev`): the first run loads its leads; before every later run the project ages by a round,
as a live one would between two daily runs (25 new leads, 15 rated, 5 deleted:
`tap_leadtrackr.sandbox.aging`). The daily job brings the new leads and the ratings of its
lookback window; `--reconcile` runs the weekly job `reconcile-leads-to-warehouse` instead,
which reads every lead and flags the deleted ones. Each run says what it changed and what
the warehouse still lacks. With the variable exported it reads the real API instead
(environment `prod`) and starts no sandbox.

With `--projects N` the sandbox serves N projects, each with its own key and leads (ids
overlapping), read in one sync through the tap's `projects` setting (Meltano environment
`agency`, warehouse `output/demo/agency.duckdb`); the report breaks the leads down per project.

The sandbox runs in this process and stops with it, whatever happens. The warehouse and
Meltano's bookmark persist from one run to the next, apart from everything else: the
warehouse in `output/demo/`, the bookmark under the job's state id with the suffix `demo`.
So the Meltano commands of the docs, run by hand, neither start from the demo's bookmark
nor load into its warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import duckdb
from html_report import write_report
from warehouse_report import SCHEMA, format_report, read_warehouse

from tap_leadtrackr.sandbox import Aged, Project, Sandbox, age, generate_leads, project_key

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output" / "demo"
"""The demo's warehouses, apart from the Meltano environments' (in `output/`)."""
MELTANO = Path(sys.executable).with_name("meltano")
JOB = "leads-to-warehouse"
RECONCILE_JOB = "reconcile-leads-to-warehouse"
"""The weekly job: every lead read again, deleted leads flagged."""
STATE_SUFFIX = "tap-leadtrackr-to-target-duckdb"
"""Meltano keeps the job's bookmark under `<environment>:<tap>-to-<loader>`."""
STATE_ID_SUFFIX = "demo"
"""The demo's runs add `:demo` to that (`meltano run --state-id-suffix`): a bookmark of its own."""
SANDBOX_PORT = 8787
"""The port of the dev environment's `api_url`; any free port when it is taken."""
PROJECT_NAMES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
"""What `--projects` calls the sandbox's projects (then `project-9`, `project-10`, ...)."""
DBT_SUMMARY = re.compile(r"Done\. (PASS=\d+ WARN=\d+ ERROR=\d+ SKIP=\d+)")
"""dbt's last line after `dbt build`: models built and tests passed, warned, failed."""


@dataclass(frozen=True)
class Demo:
    """Where the leads come from and go to."""

    environment: str
    warehouse: Path
    report: Path
    """The HTML report's page."""
    env: dict[str, str]
    env_file: Path | None = None

    @property
    def state_id(self) -> str:
        """Where Meltano keeps the job's bookmark."""
        return f"{self.environment}:{STATE_SUFFIX}:{STATE_ID_SUFFIX}"

    def command(self, *args: str) -> str:
        """`meltano ARGS` as the user would type it, in the demo's environment."""
        return " ".join(("meltano", "--environment", self.environment, *args))

    def meltano(self, *args: str, log: bool = False) -> str:
        """Run Meltano in the project and return its output, and its log with `log`.

        Exits with its log if it fails, naming the command as `command` shows it.
        """
        options = ["--env-file", str(self.env_file)] if self.env_file else []
        # dbt's summary is logged at info level, whatever MELTANO_CLI_LOG_LEVEL says.
        options += ["--log-level=info"] if log else []
        command = [str(MELTANO), *options, "--environment", self.environment, *args]
        # Its own process group, so an interrupt stops Meltano, the tap and the loader alike.
        with subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate()
            except BaseException:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                raise
        if process.returncode != 0:
            lines = (stdout + stderr).splitlines()
            sys.stderr.write("\n".join(lines[-60:]) + "\n")
            raise SystemExit(f"`{self.command(*args)}` failed (exit code {process.returncode})")
        return stdout + stderr if log else stdout

    def bookmark(self) -> str | None:
        """The `leads` bookmark of the job (the newest of the projects'), or None before."""
        text = self.meltano("state", "get", self.state_id).strip()
        state = json.loads(text).get("singer_state", {}) if text else {}
        leads = state.get("bookmarks", {}).get("leads", {})
        values = [
            partition.get("replication_key_value")
            for partition in [leads, *leads.get("partitions", [])]
        ]
        return max((str(value) for value in values if value is not None), default=None)


def shown(path: Path) -> str:
    """A path as the user types it: relative to the project when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens on it, else 0 (any free port)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred


def make_demo(projects: int, *options: str) -> str:
    """The command that runs this demo again, for `projects` sandbox projects (0: one)."""
    given = " ".join([*([f"--projects {projects}"] if projects else []), *options])
    return f'make demo ARGS="{given}"' if given else "make demo"


def project_name(number: int) -> str:
    """The name of sandbox project `number` (from 1) in the `projects` setting."""
    return PROJECT_NAMES[number - 1] if number <= len(PROJECT_NAMES) else f"project-{number}"


def sandbox_project(leads: int, seed: int, rounds: int) -> tuple[Project, Aged | None]:
    """The sandbox project after `rounds` rounds of aging, and what the last round changed.

    Round K is always the same (`age` is seeded by K), so the same count of rounds rebuilds
    the same project: what the previous runs loaded, and what changed since.
    """
    project = Project(generate_leads(leads, seed))
    last = None
    for number in range(1, rounds + 1):
        last = age(project, seed=number)
    return project, last


Key = tuple[Any, ...]
Values = tuple[Any, ...]


def lead_values(warehouse: Path) -> dict[Key, Values]:
    """Each loaded lead's status and price, and whether it is flagged deleted, by key."""
    if not warehouse.exists():
        return {}
    with duckdb.connect(str(warehouse), read_only=True) as db:
        columns = {
            name
            for (name,) in db.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = 'leads'",
                [SCHEMA],
            ).fetchall()
        }
        if not columns:
            return {}
        key = "project, id" if "project" in columns else "id"
        flagged = "_sdc_deleted_at is not null" if "_sdc_deleted_at" in columns else "false"
        rows = db.execute(f"select {key}, status, price, {flagged} from {SCHEMA}.leads").fetchall()
    return {tuple(row[:-3]): tuple(row[-3:]) for row in rows}


@dataclass(frozen=True)
class Changes:
    """What a run did to the leads in the warehouse."""

    new: int
    updated: int
    """Leads whose status or price changed."""
    deleted: int
    """Leads newly flagged as deleted (or deleted, with `hard_delete`)."""

    @classmethod
    def between(cls, before: dict[Key, Values], after: dict[Key, Values]) -> Changes:
        """The changes from one snapshot of `lead_values` to the next."""
        live_before = {key for key, (_, _, flagged) in before.items() if not flagged}
        live_after = {key for key, (_, _, flagged) in after.items() if not flagged}
        return cls(
            new=len(after.keys() - before.keys()),
            updated=sum(1 for key in live_before & live_after if before[key][:2] != after[key][:2]),
            deleted=len(live_before - live_after),
        )

    def __str__(self) -> str:
        return f"{self.new:,} new, {self.updated:,} updated, {self.deleted:,} deleted"


def still_missing(truth: dict[Key, Values], loaded: dict[Key, Values]) -> str:
    """What LeadTrackr has that the warehouse does not show yet, in a sentence."""
    live = {key: values[:2] for key, values in loaded.items() if not values[2]}
    deletions = len(live.keys() - truth.keys())
    ratings = sum(1 for key in live.keys() & truth.keys() if live[key] != truth[key])
    new = len(truth.keys() - live.keys())
    if not (deletions or ratings or new):
        return f"The warehouse equals LeadTrackr: {len(truth):,} leads, the same status and price."
    return (
        f"Not in the warehouse yet: {ratings:,} ratings older than the lookback window, "
        f"{deletions:,} deleted leads{f', {new:,} new leads' if new else ''}; the weekly "
        f"reconcile brings them (`make demo ARGS=--reconcile`)."
    )


def sync(
    demo: Demo,
    *,
    job: str,
    full_refresh: bool,
    mark_before: str | None,
    truth: dict[Key, Values] | None = None,
) -> int:
    """Run a job once and report what it changed (and, given LeadTrackr's leads, what is left)."""
    before, values_before = read_warehouse(demo.warehouse), lead_values(demo.warehouse)
    args = ["run", f"--state-id-suffix={STATE_ID_SUFFIX}"]
    args += ["--full-refresh"] if full_refresh else []
    print(f"\n$ {demo.command(*args, job)}", flush=True)
    started = time.monotonic()
    log = demo.meltano(*args, job, log=True)
    seconds = time.monotonic() - started
    models = DBT_SUMMARY.findall(log)
    after, mark_after = read_warehouse(demo.warehouse), demo.bookmark()
    values_after = lead_values(demo.warehouse)
    changes = Changes.between(values_before, values_after)

    print(f"  done in {seconds:.1f} s")
    print(f"  warehouse  {before.leads:,} -> {after.leads:,} leads")
    print(f"  bookmark   {mark_before or '(none)'} -> {mark_after or '(none)'}")
    newest = "newest lead of any project" if demo.environment == "agency" else "newest lead"
    print(f"             (createdAt of the {newest}; Meltano state `{demo.state_id}`)")
    if after.distinct_ids != after.leads:
        duplicated = after.leads - after.distinct_ids
        print(f"  {duplicated:,} leads are DUPLICATED: the upsert on the key failed.")
    elif not values_before:
        print(f"  First sync: {changes.new:,} leads loaded.")
    elif job == RECONCILE_JOB:
        print(
            f"  Reconcile: every lead read again; {changes}. Deleted leads stay in "
            f"{SCHEMA}.leads, flagged (`_sdc_deleted_at`), out of the models and the report."
        )
    elif full_refresh:
        print(f"  Full refresh: every lead read again; {changes}, none duplicated.")
    else:
        print(f"  Incremental sync from the bookmark, the lookback window read again: {changes}.")
    if truth is not None:
        print(f"  {still_missing(truth, values_after)}")
    if models:
        print(f"  dbt build  {models[-1]} (models and tests of transform/)")
    print(f"\nWarehouse report ({shown(demo.warehouse)}, schema {SCHEMA})")
    print(format_report(after))
    if models:
        page = write_report(demo.warehouse, demo.report)
        print(f"\nHTML report: {shown(page)} (the attribution in charts; open it in a browser)")
    return 0 if after.distinct_ids == after.leads else 1


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when the job ran and the warehouse holds each lead once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument(
        "--full-refresh",
        action="store_true",
        help="ignore the bookmark and read every lead again (rows are updated, not duplicated)",
    )
    runs.add_argument(
        "--reconcile",
        action="store_true",
        help=f"run the weekly job `{RECONCILE_JOB}`: every lead read again, the deleted "
        "ones flagged",
    )
    parser.add_argument("--leads", type=int, default=3000, help="sandbox leads (default 3000)")
    parser.add_argument("--seed", type=int, default=1, help="sandbox seed (default 1)")
    parser.add_argument(
        "--projects",
        type=int,
        default=0,
        metavar="N",
        help="serve N sandbox projects and read them in one sync (the `projects` setting)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=OUTPUT,
        help="folder of the warehouse (output/demo/, which no Meltano environment writes)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=OUTPUT.parent,
        help="folder of the HTML report, report.html or agency-report.html (output/)",
    )
    parser.add_argument(
        "--env-file", type=Path, help="the dotenv file Meltano reads (default: the project's .env)"
    )
    args = parser.parse_args(argv)

    # SIGTERM (from a supervisor or CI) unwinds like Ctrl-C, so the sandbox always stops.
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    several = args.projects > 0
    real_api = bool(env.get("TAP_LEADTRACKR_API_KEY")) and not several
    environment = "agency" if several else "prod" if real_api else "dev"
    warehouse = {"agency": "agency.duckdb", "prod": "warehouse.duckdb", "dev": "sandbox.duckdb"}
    demo = Demo(
        environment=environment,
        warehouse=output / warehouse[environment],
        report=args.report_dir.resolve() / f"{'agency-' if several else ''}report.html",
        env=env,
        env_file=args.env_file,
    )
    env["TARGET_DUCKDB_FILEPATH"] = str(demo.warehouse)
    job = RECONCILE_JOB if args.reconcile else JOB
    print(f"LeadTrackr demo: Meltano job `{job}`, environment `{demo.environment}`")
    print(f"  warehouse  {shown(demo.warehouse)}")
    try:
        mark_before = demo.bookmark()
        if real_api:
            print("  source     the LeadTrackr API (TAP_LEADTRACKR_API_KEY is set)")
            return sync(demo, job=job, full_refresh=args.full_refresh, mark_before=mark_before)

        record = output / ("agency-projects.json" if several else "sandbox-project.json")
        recorded = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
        asked = {"leads": args.leads, "seed": args.seed, "projects": args.projects}
        first_run = (
            mark_before is None
            or not demo.warehouse.exists()
            or any(recorded.get(name, 0) != value for name, value in asked.items())
        )
        if first_run:
            # No bookmark, no warehouse, or another sandbox project: start afresh, with the
            # main job (the reconcile would leave the daily job without a bookmark).
            for stale in (demo.warehouse, demo.warehouse.with_name(demo.warehouse.name + ".wal")):
                stale.unlink(missing_ok=True)
            mark_before, job = None, JOB
        rounds = 0 if first_run else recorded.get("batches", 0) + 1
        # Project K of several: its own leads (seed + K - 1), ids from 1 as in every project.
        aged = {
            project_key("sandbox-key", number): sandbox_project(
                args.leads, args.seed + number - 1, rounds
            )
            for number in range(1, max(args.projects, 1) + 1)
        }
        projects = {key: project for key, (project, _) in aged.items()}
        names = {key: project_name(number) for number, key in enumerate(projects, start=1)}
        changes = [change for _, change in aged.values() if change is not None]
        project = projects[project_key("sandbox-key", 1)]
        record.write_text(json.dumps({**asked, "batches": rounds}) + "\n", encoding="utf-8")
        served = projects if several else {}
        with Sandbox(project, port=free_port(SANDBOX_PORT), projects=served) as sandbox:
            # Explicit values beat a `.env`, which may hold a real key for `prod`.
            env["TAP_LEADTRACKR_API_URL"] = sandbox.url
            if several:
                listed = [{"name": names[key], "api_key": key} for key in projects]
                env["TAP_LEADTRACKR_PROJECTS"] = json.dumps(listed)
                # Unset: one project's key and `projects` together are refused.
                env["TAP_LEADTRACKR_API_KEY"] = ""
                where = f"{args.projects} projects ({', '.join(names.values())}), "
                truth = {
                    (names[key], lead["id"]): (lead["status"], lead["price"])
                    for key, each in projects.items()
                    for lead in each.leads
                }
            else:
                env["TAP_LEADTRACKR_API_KEY"] = sandbox.api_key
                # The spend sample for the sandbox's channels (transform/seeds/): one project.
                env["DBT_DUCKDB_AD_SPEND"] = "sandbox_ad_spend"
                where = ""
                truth = {(lead["id"],): (lead["status"], lead["price"]) for lead in project.leads}
            count = sum(len(each) for each in projects.values())
            news = ""
            if changes:
                news = (
                    f"; since the last run {sum(len(c.added) for c in changes)} new, "
                    f"{sum(len(c.rated) for c in changes)} rated "
                    f"({sum(len(c.rated_recent) for c in changes)} of the last 10 days), "
                    f"{sum(len(c.deleted) for c in changes)} deleted"
                )
            print(f"  source     sandbox at {sandbox.url}: {where}{count:,} leads{news}")
            status = sync(
                demo,
                job=job,
                full_refresh=args.full_refresh or first_run,
                mark_before=mark_before,
                truth=truth,
            )
        print(
            f"\nRun `{make_demo(args.projects)}` again: the sandbox project"
            f"{'s' if several else ''} will have aged by a round (new leads, ratings, "
            f"deletions).\n`{make_demo(args.projects, '--reconcile')}` runs the weekly "
            f"reconcile; `{make_demo(args.projects, '--full-refresh')}` reads every lead again."
        )
        return status
    except KeyboardInterrupt:
        print("\nInterrupted." + ("" if real_api else " The sandbox is stopped."), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
