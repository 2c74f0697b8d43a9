"""Dagster for the LeadTrackr Meltano project: monthly windows, and a daily incremental job.

    python -m venv .venv-dagster
    .venv-dagster/bin/pip install -r orchestrate/dagster/requirements.txt
    .venv-dagster/bin/dagster dev -f orchestrate/dagster/definitions.py

- `leadtrackr/leads`, partitioned by month: materialising a month runs the job for that
  window only (`TAP_LEADTRACKR_START_DATE`/`END_DATE`, end exclusive) under its own state id
  (`--state-id-suffix=2026-03-01_2026-04-01`), so a backfill of every month never moves
  the daily job's bookmark. A monthly schedule loads each month once it is over.
- `leadtrackr_daily_incremental`: the job from the bookmark, reading again the last
  `LOOKBACK_WINDOW_DAYS` days for status and price changes; once a week a full refresh.

Dagster runs in its own environment; Meltano and the tap in theirs (`meltano` is on the
PATH, or set `MeltanoProject.command`). Both write the same tables, so both take the
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
from pathlib import Path

import dagster as dg

PROJECT_DIR = Path(__file__).resolve().parents[2]
"""The Meltano project: the repository this file is in."""
JOB = "leads-to-warehouse"
POOL = "leadtrackr_meltano"
LOOKBACK_WINDOW_DAYS = 7
"""Days of leads each daily run reads again, for ratings made within a week."""

months = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")
"""One window per month since the project's first lead; change the start to yours."""


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
        state_id_suffix: str | None = None,
        full_refresh: bool = False,
    ) -> list[str]:
        """Run the job with `env` added to this process's; raise `dg.Failure` if it fails.

        Meltano's and the tap's output go to the step's captured stdout and stderr.
        """
        args = [*self.command, f"--environment={self.environment}", "run"]
        args += [f"--state-id-suffix={state_id_suffix}"] if state_id_suffix else []
        args += ["--full-refresh"] if full_refresh else []
        args.append(JOB)
        shown = " ".join(f"{name}={value}" for name, value in env.items())
        context.log.info(f"{shown} {shlex.join(args)}")
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
    """Run the Meltano job for the partition's month: [first day, first day of the next)."""
    window = context.partition_time_window
    start, end = window.start.date().isoformat(), window.end.date().isoformat()
    suffix = f"{start}_{end}"
    env = {"TAP_LEADTRACKR_START_DATE": start, "TAP_LEADTRACKR_END_DATE": end}
    command = meltano.run(
        context,
        env,
        state_id_suffix=suffix,
        full_refresh=config.full_refresh,
    )
    return dg.MaterializeResult(
        metadata={
            "window": f"[{start}, {end})",
            "state_id_suffix": suffix,
            "command": shlex.join(command),
        }
    )


class IncrementalConfig(dg.Config):
    """How the daily run reads."""

    full_refresh: bool = False
    """Read every lead again: catches changes older than the lookback window."""


@dg.op(pool=POOL)
def run_incremental(
    context: dg.OpExecutionContext, config: IncrementalConfig, meltano: MeltanoProject
) -> None:
    """Run the Meltano job from its bookmark, the lookback window included."""
    env = {"TAP_LEADTRACKR_LOOKBACK_WINDOW_DAYS": str(LOOKBACK_WINDOW_DAYS)}
    meltano.run(context, env, full_refresh=config.full_refresh)


@dg.job(description="New leads since the bookmark, and changes of the last week.")
def leadtrackr_daily_incremental() -> None:
    """The job Meltano's own schedule would run, with the lookback window."""
    run_incremental()


monthly_windows = dg.define_asset_job(
    "leadtrackr_monthly_windows", selection=[leads_by_month], partitions_def=months
)

defs = dg.Definitions(
    assets=[leads_by_month],
    jobs=[leadtrackr_daily_incremental, monthly_windows],
    schedules=[
        dg.ScheduleDefinition(
            job=leadtrackr_daily_incremental, cron_schedule="0 4 * * *", execution_timezone="UTC"
        ),
        dg.ScheduleDefinition(
            name="leadtrackr_weekly_full_refresh",
            job=leadtrackr_daily_incremental,
            cron_schedule="0 5 * * 0",
            execution_timezone="UTC",
            run_config=dg.RunConfig(ops={"run_incremental": IncrementalConfig(full_refresh=True)}),
        ),
        dg.build_schedule_from_partitioned_job(monthly_windows, hour_of_day=3),
    ],
    resources={"meltano": MeltanoProject()},
)
