"""The LeadTrackr demo: leads -> Meltano job `leads-to-warehouse` -> DuckDB, then a report.

The job loads the leads and their touchpoints, then builds and tests the dbt models of
`transform/` in the same file (`lead_journeys`, `channel_performance`), which the report reads.

    python scripts/demo.py [--full-refresh]      (`make demo ARGS=--full-refresh`)
    python scripts/demo.py --projects 3          (`make demo ARGS="--projects 3"`)

Without `TAP_LEADTRACKR_API_KEY` it serves a local sandbox project (Meltano environment
`dev`): the first run loads its leads; every later run finds 25 new leads in it, as a live
project would have, and loads only those. With the variable exported it reads the real API
instead (environment `prod`) and starts no sandbox.

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

from warehouse_report import SCHEMA, Warehouse, format_report, read_warehouse

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads, project_key

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output" / "demo"
"""The demo's warehouses, apart from the Meltano environments' (in `output/`)."""
MELTANO = Path(sys.executable).with_name("meltano")
JOB = "leads-to-warehouse"
STATE_SUFFIX = "tap-leadtrackr-to-target-duckdb"
"""Meltano keeps the job's bookmark under `<environment>:<tap>-to-<loader>`."""
STATE_ID_SUFFIX = "demo"
"""The demo's runs add `:demo` to that (`meltano run --state-id-suffix`): a bookmark of its own."""
SANDBOX_PORT = 8787
"""The port of the dev environment's `api_url`; any free port when it is taken."""
SANDBOX_BATCH = 25
"""New leads the sandbox project receives between two demo runs."""
PROJECT_NAMES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
"""What `--projects` calls the sandbox's projects (then `project-9`, `project-10`, ...)."""
DBT_SUMMARY = re.compile(r"Done\. (PASS=\d+ WARN=\d+ ERROR=\d+ SKIP=\d+)")
"""dbt's last line after `dbt build`: models built and tests passed, warned, failed."""


@dataclass(frozen=True)
class Demo:
    """Where the leads come from and go to."""

    environment: str
    warehouse: Path
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


def sandbox_project(leads: int, seed: int, batches: int) -> Project:
    """The sandbox project after `batches` rounds of new leads.

    `add_leads` is deterministic, so the same count of batches rebuilds the same project:
    what the previous runs loaded, plus the batch that arrived since.
    """
    project = Project(generate_leads(leads, seed))
    for _ in range(batches):
        project.add_leads(SANDBOX_BATCH)
    return project


def outcome(before: Warehouse, after: Warehouse, rewritten: int, *, full: bool) -> str:
    """What the run did to the warehouse, in a sentence."""
    new = after.leads - before.leads
    if after.distinct_ids != after.leads:
        duplicated = after.leads - after.distinct_ids
        return f"{duplicated:,} leads are DUPLICATED: the upsert on the key failed."
    if not before.leads:
        return f"First sync: {new:,} leads loaded."
    if full:
        return (
            f"Full refresh: every lead read again; {new:,} new, {rewritten:,} updated in place, "
            "none duplicated."
        )
    again = (
        f" (and {rewritten} lead{'s' if rewritten > 1 else ''} at the bookmark read again and "
        "updated in place: the bookmark is inclusive)"
        if rewritten
        else ""
    )
    return f"Incremental sync: only what is new was loaded, {new:,} leads{again}."


def sync(demo: Demo, *, full_refresh: bool, mark_before: str | None) -> int:
    """Run the job once and report what it changed."""
    before = read_warehouse(demo.warehouse)
    args = ["run", f"--state-id-suffix={STATE_ID_SUFFIX}"]
    args += ["--full-refresh"] if full_refresh else []
    print(f"\n$ {demo.command(*args, JOB)}", flush=True)
    started = time.monotonic()
    log = demo.meltano(*args, JOB, log=True)
    seconds = time.monotonic() - started
    models = DBT_SUMMARY.findall(log)
    after, mark_after = read_warehouse(demo.warehouse), demo.bookmark()
    written = after.rows_written_since(demo.warehouse, before)
    rewritten = max(written - (after.leads - before.leads), 0)

    print(f"  done in {seconds:.1f} s")
    print(f"  warehouse  {before.leads:,} -> {after.leads:,} leads")
    print(f"  bookmark   {mark_before or '(none)'} -> {mark_after or '(none)'}")
    newest = "newest lead of any project" if demo.environment == "agency" else "newest lead"
    print(f"             (createdAt of the {newest}; Meltano state `{demo.state_id}`)")
    print(f"  {outcome(before, after, rewritten, full=full_refresh)}")
    if models:
        print(f"  dbt build  {models[-1]} (models and tests of transform/)")
    print(f"\nWarehouse report ({shown(demo.warehouse)}, schema {SCHEMA})")
    print(format_report(after))
    return 0 if after.distinct_ids == after.leads else 1


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when the job ran and the warehouse holds each lead once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="ignore the bookmark and read every lead again (rows are updated, not duplicated)",
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
        env=env,
        env_file=args.env_file,
    )
    env["TARGET_DUCKDB_FILEPATH"] = str(demo.warehouse)
    print(f"LeadTrackr demo: Meltano job `{JOB}`, environment `{demo.environment}`")
    print(f"  warehouse  {shown(demo.warehouse)}")
    try:
        mark_before = demo.bookmark()
        if real_api:
            print("  source     the LeadTrackr API (TAP_LEADTRACKR_API_KEY is set)")
            return sync(demo, full_refresh=args.full_refresh, mark_before=mark_before)

        record = output / ("agency-projects.json" if several else "sandbox-project.json")
        recorded = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
        asked = {"leads": args.leads, "seed": args.seed, "projects": args.projects}
        first_run = (
            mark_before is None
            or not demo.warehouse.exists()
            or any(recorded.get(name, 0) != value for name, value in asked.items())
        )
        if first_run:
            # No bookmark, no warehouse, or another sandbox project: start afresh.
            for stale in (demo.warehouse, demo.warehouse.with_name(demo.warehouse.name + ".wal")):
                stale.unlink(missing_ok=True)
            mark_before = None
        batches = 0 if first_run else recorded.get("batches", 0) + 1
        project = sandbox_project(args.leads, args.seed, batches)
        # Project K of several: its own leads (seed + K - 1), ids from 1 as in every project.
        projects = {
            project_key("sandbox-key", number): (
                project
                if number == 1
                else sandbox_project(args.leads, args.seed + number - 1, batches)
            )
            for number in range(1, args.projects + 1)
        }
        record.write_text(json.dumps({**asked, "batches": batches}) + "\n", encoding="utf-8")
        with Sandbox(project, port=free_port(SANDBOX_PORT), projects=projects) as sandbox:
            # Explicit values beat a `.env`, which may hold a real key for `prod`.
            env["TAP_LEADTRACKR_API_URL"] = sandbox.url
            count = sum(len(each) for each in projects.values()) if several else len(project)
            if several:
                listed = [
                    {"name": project_name(number), "api_key": key}
                    for number, key in enumerate(projects, start=1)
                ]
                env["TAP_LEADTRACKR_PROJECTS"] = json.dumps(listed)
                # Unset: one project's key and `projects` together are refused.
                env["TAP_LEADTRACKR_API_KEY"] = ""
                names = ", ".join(project["name"] for project in listed)
                where = f"{args.projects} projects ({names}), "
                batch = SANDBOX_BATCH * args.projects
            else:
                env["TAP_LEADTRACKR_API_KEY"] = sandbox.api_key
                where, batch = "", SANDBOX_BATCH
            news = "" if first_run else f", {batch} of them new since the last run"
            print(f"  source     sandbox at {sandbox.url}: {where}{count:,} leads{news}")
            status = sync(
                demo, full_refresh=args.full_refresh or first_run, mark_before=mark_before
            )
        print(
            f"\nRun `{make_demo(args.projects)}` again: {SANDBOX_BATCH} new leads"
            f"{' per project' if several else ''} will be waiting in the sandbox, and only "
            f"those are loaded.\n`{make_demo(args.projects, '--full-refresh')}` reads every "
            "lead again."
        )
        return status
    except KeyboardInterrupt:
        print("\nInterrupted." + ("" if real_api else " The sandbox is stopped."), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
