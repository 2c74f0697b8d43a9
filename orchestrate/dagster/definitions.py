"""Dagster for the LeadTrackr Meltano project: monthly windows, a daily and a weekly job.

    python -m venv .venv-dagster
    .venv-dagster/bin/pip install -r orchestrate/dagster/requirements.txt
    .venv-dagster/bin/dagster dev -f orchestrate/dagster/definitions.py

- `leadtrackr/leads`, partitioned by month: materialising a month runs the job for that
  window only (`TAP_LEADTRACKR_START_DATE`/`END_DATE`, end exclusive) under its own state id
  (`--state-id-suffix=2026-03-01_2026-04-01`), so a backfill of every month never moves
  the daily job's bookmark. A monthly schedule loads each month once it is over.
- `leadtrackr_daily_incremental`: the job `leads-to-warehouse` from its bookmark, reading
  again the days of its lookback window (`lookback_window_days: 30` in meltano.yml) for
  rating changes; run config `lookback_window_days` changes it for one run.
- `leadtrackr_weekly_reconcile`: the job `reconcile-leads-to-warehouse` on Sundays, four
  hours after the daily run: every lead read again, older ratings, deleted leads flagged.
- `leadtrackr/project_leads`, for the tap's `projects` (agencies), partitioned by project
  and month (`MultiPartitionsDefinition`): a partition such as `2026-03-01|acme` loads that
  project's month alone, under its own state id (`--state-id-suffix=acme_2026-03-01_2026-04-01`),
  so that each (project, month) can be retried, backfilled or run on a worker of its own.
  The keys stay in the environment's TAP_LEADTRACKR_PROJECTS; a run passes Meltano only its
  project's entry, and its log shows no key.

Dagster runs in its own environment; Meltano and the tap in theirs (`meltano` is on the
PATH, or set `MeltanoProject.command`). All write the same tables, so all take the
`leadtrackr_meltano` pool: give it one slot (`dagster instance concurrency set
leadtrackr_meltano 1`), because two `meltano run` of one project directory at once collide
in `.meltano/run/`, and DuckDB takes one writer. Months run in parallel only on separate
workers (one container per run) loading a server warehouse; see orchestrate/backfill.py.
"""

# No `from __future__ import annotations`: Dagster reads the config classes from the
# annotations at run time.
import os
import shlex
import subprocess
import sys
from pathlib import Path

import dagster as dg

# `orchestrate/one_project.py`, the Airflow example's helper too: one way to narrow the list.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from one_project import one_project as narrowed_projects

PROJECT_DIR = Path(__file__).resolve().parents[2]
"""The Meltano project: the repository this file is in."""
JOB = "leads-to-warehouse"
RECONCILE_JOB = "reconcile-leads-to-warehouse"
"""The weekly job of meltano.yml: every lead read again, and the deleted ones flagged."""
POOL = "leadtrackr_meltano"

months = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")
"""One window per month since the project's first lead; change the start to yours."""
PROJECT_NAMES = os.environ.get("LEADTRACKR_PROJECT_NAMES", "acme,globex").split(",")
"""The names of the projects in TAP_LEADTRACKR_PROJECTS (not their keys)."""
project_months = dg.MultiPartitionsDefinition(
    {"month": months, "project": dg.StaticPartitionsDefinition(PROJECT_NAMES)}
)
"""One partition per project and month: `2026-03-01|acme`."""
#: Variables whose values no log line shows.
SECRET_VARIABLES = frozenset({"TAP_LEADTRACKR_API_KEY", "TAP_LEADTRACKR_PROJECTS"})


class MeltanoProject(dg.ConfigurableResource):
    """Runs the Meltano job of the project."""

    project_dir: str = str(PROJECT_DIR)
    command: list[str] = ["meltano"]  # noqa: RUF012 (a Dagster config field)
    """How to start Meltano: `["meltano"]`, or e.g. `["/opt/meltano/bin/meltano"]`."""
    environment: str = "prod"

    def run(
        self,
        context: dg.AssetExecutionContext | dg.OpExecutionContext,
        env: dict[str, str],
        *,
        job: str = JOB,
        state_id_suffix: str | None = None,
        full_refresh: bool = False,
    ) -> list[str]:
        """Run `job` with `env` added to this process's; raise `dg.Failure` if it fails.

        Meltano's and the tap's output go to the step's captured stdout and stderr.
        """
        args = [*self.command, f"--environment={self.environment}", "run"]
        args += [f"--state-id-suffix={state_id_suffix}"] if state_id_suffix else []
        args += ["--full-refresh"] if full_refresh else []
        args.append(job)
        shown = [
            f"{name}={'<secret>' if name in SECRET_VARIABLES else value}"
            for name, value in env.items()
        ]
        context.log.info(" ".join([*shown, shlex.join(args)]))
        result = subprocess.run(args, cwd=self.project_dir, env={**os.environ, **env}, check=False)
        if result.returncode != 0:
            raise dg.Failure(
                description=f"`meltano run` exited with {result.returncode}; see the step's stderr."
            )
        return args


class WindowConfig(dg.Config):
    """How a month is loaded."""

    full_refresh: bool = True
    """Read the whole month again (picking up status and price changes), rather than resume
    from the window's bookmark. A month is a few pages of leads; rows are upserted."""


@dg.asset(
    key=["leadtrackr", "leads"],
    partitions_def=months,
    pool=POOL,
    kinds={"meltano"},
    description="LeadTrackr leads and their touchpoints in the warehouse, by month created.",
)
def leads_by_month(
    context: dg.AssetExecutionContext, config: WindowConfig, meltano: MeltanoProject
) -> dg.MaterializeResult:
    """Run the Meltano job for the partition's month."""
    return load_window(context, meltano, config, context.partition_time_window, {})


def one_project(name: str) -> str:
    """TAP_LEADTRACKR_PROJECTS narrowed to the project `name`."""
    try:
        return narrowed_projects(name, os.environ.get("TAP_LEADTRACKR_PROJECTS") or "[]")
    except LookupError as error:
        raise dg.Failure(description=str(error)) from None


def load_window(
    context: dg.AssetExecutionContext,
    meltano: "MeltanoProject",
    config: WindowConfig,
    window: dg.TimeWindow,
    env: dict[str, str],
    prefix: str = "",
) -> dg.MaterializeResult:
    """Run the job for [first day, first day of the next) under its own state id."""
    start, end = window.start.date().isoformat(), window.end.date().isoformat()
    suffix = f"{prefix}{start}_{end}"
    env = {"TAP_LEADTRACKR_START_DATE": start, "TAP_LEADTRACKR_END_DATE": end, **env}
    command = meltano.run(context, env, state_id_suffix=suffix, full_refresh=config.full_refresh)
    return dg.MaterializeResult(
        metadata={
            "window": f"[{start}, {end})",
            "state_id_suffix": suffix,
            "command": shlex.join(command),
        }
    )


@dg.asset(
    key=["leadtrackr", "project_leads"],
    partitions_def=project_months,
    pool=POOL,
    kinds={"meltano"},
    description="Each LeadTrackr project's leads and touchpoints, by project and month created.",
)
def leads_by_project_and_month(
    context: dg.AssetExecutionContext, config: WindowConfig, meltano: MeltanoProject
) -> dg.MaterializeResult:
    """Run the Meltano job for one project's month, with only that project's key."""
    keys = project_months.get_partition_key_from_str(context.partition_key).keys_by_dimension
    project = keys["project"]
    env = {
        # The project's entry of `projects`, not the environment's single `api_key`.
        "TAP_LEADTRACKR_API_KEY": "",
        "TAP_LEADTRACKR_PROJECTS": one_project(project),
    }
    window = months.time_window_for_partition_key(keys["month"])
    result = load_window(context, meltano, config, window, env, prefix=f"{project}_")
    return dg.MaterializeResult(metadata={"project": project, **(result.metadata or {})})


class IncrementalConfig(dg.Config):
    """How the daily run reads."""

    lookback_window_days: int | None = None
    """Days before the bookmark read again, for this run only; None: the job's own (30 in
    meltano.yml, or the worker's TAP_LEADTRACKR_LOOKBACK_WINDOW_DAYS)."""


@dg.op(pool=POOL)
def run_incremental(
    context: dg.OpExecutionContext, config: IncrementalConfig, meltano: MeltanoProject
) -> None:
    """Run the Meltano job from its bookmark, its lookback window included."""
    days = config.lookback_window_days
    meltano.run(context, {} if days is None else {"TAP_LEADTRACKR_LOOKBACK_WINDOW_DAYS": str(days)})


@dg.job(description="New leads since the bookmark, and changes within the lookback window.")
def leadtrackr_daily_incremental() -> None:
    """The job Meltano's own daily schedule runs."""
    run_incremental()


@dg.op(pool=POOL)
def run_reconcile(context: dg.OpExecutionContext, meltano: MeltanoProject) -> None:
    """Run the reconcile job; one that fails flags nothing, so running it again is safe."""
    meltano.run(context, {}, job=RECONCILE_JOB)


@dg.job(description="Every lead read again: older ratings, and deleted leads flagged.")
def leadtrackr_weekly_reconcile() -> None:
    """The job Meltano's own weekly schedule runs; it leaves the daily job's bookmark alone."""
    run_reconcile()


monthly_windows = dg.define_asset_job(
    "leadtrackr_monthly_windows", selection=[leads_by_month], partitions_def=months
)

project_windows = dg.define_asset_job(
    "leadtrackr_project_windows",
    selection=[leads_by_project_and_month],
    partitions_def=project_months,
)

defs = dg.Definitions(
    assets=[leads_by_month, leads_by_project_and_month],
    jobs=[
        leadtrackr_daily_incremental,
        leadtrackr_weekly_reconcile,
        monthly_windows,
        project_windows,
    ],
    schedules=[
        dg.ScheduleDefinition(
            job=leadtrackr_daily_incremental, cron_schedule="0 4 * * *", execution_timezone="UTC"
        ),
        # Four hours after the daily run, as in meltano.yml: rarely queued behind it in the pool.
        dg.ScheduleDefinition(
            job=leadtrackr_weekly_reconcile, cron_schedule="0 8 * * 0", execution_timezone="UTC"
        ),
        dg.build_schedule_from_partitioned_job(monthly_windows, hour_of_day=3),
    ],
    resources={"meltano": MeltanoProject()},
)
