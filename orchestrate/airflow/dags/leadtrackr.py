"""Airflow for the LeadTrackr Meltano project: monthly windows, a daily and a weekly run.

    python -m venv .venv-airflow
    .venv-airflow/bin/pip install -r orchestrate/airflow/requirements.txt
    AIRFLOW__CORE__DAGS_FOLDER=$PWD/orchestrate/airflow/dags .venv-airflow/bin/airflow standalone
    .venv-airflow/bin/airflow pools set leadtrackr_meltano 1 "one meltano run at a time"

- `leadtrackr_monthly_windows`: each run loads the leads created in its data interval,
  [data_interval_start, data_interval_end), passed as `TAP_LEADTRACKR_START_DATE` and
  `TAP_LEADTRACKR_END_DATE` (end exclusive), under a state id of its own
  (`--state-id-suffix=2026-03-01_2026-04-01`). The tap can read any past window, so
  `catchup` backfills the history month by month, and a month's run after it ends loads
  it whole. A run reads its window again in full unless triggered with
  `{"full_refresh": false}` (then it resumes from the window's bookmark).
- `leadtrackr_daily_incremental`: the job `leads-to-warehouse` from its bookmark, reading
  again the days of its lookback window (`lookback_window_days: 30` in meltano.yml) for
  rating changes; triggered with `{"lookback_window_days": 60}`, that many for one run.
- `leadtrackr_weekly_reconcile`: the job `reconcile-leads-to-warehouse` on Sundays, four
  hours after the daily run: every lead read again, older ratings, deleted leads flagged.
- `leadtrackr_project_windows`, for the tap's `projects` (agencies): each month, one task
  per project (dynamic task mapping over `PROJECT_NAMES`), each loading that project's
  window under a state id of its own (`--state-id-suffix=acme_2026-03-01_2026-04-01`), so
  that each (project, month) can be retried or run on a worker of its own. The keys stay
  in the workers' TAP_LEADTRACKR_PROJECTS: a task names its project, and
  `orchestrate/one_project.py` narrows the list to it, so no key reaches Airflow's database.

All write the same tables and take the `leadtrackr_meltano` pool, which needs to exist
with one slot (above): two `meltano run` of one project directory at once collide in
`.meltano/run/`, and DuckDB takes one writer. Windows run in parallel only on separate
workers (one container per task) loading a server warehouse; see orchestrate/backfill.py.

Meltano and the tap live in their own environment: `meltano` must be on the worker's PATH.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

PROJECT_DIR = os.environ.get("LEADTRACKR_MELTANO_PROJECT", str(Path(__file__).resolve().parents[3]))
"""The Meltano project: the repository this file is in, unless the variable says otherwise."""
MELTANO_ENVIRONMENT = "prod"
JOB = "leads-to-warehouse"
RECONCILE_JOB = "reconcile-leads-to-warehouse"
"""The weekly job of meltano.yml: every lead read again, and the deleted ones flagged."""
POOL = "leadtrackr_meltano"
HISTORY_START = pendulum.datetime(2024, 1, 1, tz="UTC")
"""The month of the project's first lead: where catchup starts. Change it to yours."""
PROJECT_NAMES = os.environ.get("LEADTRACKR_PROJECT_NAMES", "acme,globex").split(",")
"""The names of the projects in TAP_LEADTRACKR_PROJECTS (not their keys): one task each."""

MELTANO_RUN = f"meltano --environment={MELTANO_ENVIRONMENT} run"
FULL_REFRESH = "{{ ' --full-refresh' if params.full_refresh else '' }}"
LOOKBACK_OVERRIDE = (
    "{% if params.lookback_window_days is not none %}"
    "TAP_LEADTRACKR_LOOKBACK_WINDOW_DAYS={{ params.lookback_window_days | int }} {% endif %}"
)
"""The run's own lookback, when triggered with one; else the job's applies."""
DEFAULT_ARGS = {"pool": POOL, "retries": 2, "retry_delay": timedelta(minutes=10)}

WINDOW = "{{ data_interval_start | ds }}_{{ data_interval_end | ds }}"
WINDOW_ENV = {
    "TAP_LEADTRACKR_START_DATE": "{{ data_interval_start | ts }}",
    "TAP_LEADTRACKR_END_DATE": "{{ data_interval_end | ts }}",
}
"""The run's data interval as the tap's window."""


def monthly_windows(dag_id: str, description: str) -> DAG:
    """A DAG whose runs are the months since HISTORY_START, each its own window."""
    return DAG(
        dag_id=dag_id,
        description=description,
        # A data-interval timetable: Airflow 3 makes a cron string a point in time, without
        # the interval this DAG uses as its window.
        schedule=CronDataIntervalTimetable("@monthly", timezone="UTC"),
        start_date=HISTORY_START,
        catchup=True,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        params={
            "full_refresh": Param(
                True, type="boolean", description="Read the whole window again (else resume)."
            )
        },
        tags=["leadtrackr", "meltano"],
    )


with monthly_windows(
    "leadtrackr_monthly_windows", "LeadTrackr leads created in each month, one window per run."
):
    BashOperator(
        task_id="load_window",
        bash_command=f"{MELTANO_RUN} --state-id-suffix={WINDOW}{FULL_REFRESH} {JOB}",
        env=WINDOW_ENV,
        append_env=True,
        cwd=PROJECT_DIR,
    )


def project_window_command(project: str) -> str:
    """Load one project's window, with only that project's key, under its own state id."""
    return (
        f'TAP_LEADTRACKR_PROJECTS="$(python3 orchestrate/one_project.py {project})" '
        f"{MELTANO_RUN} --state-id-suffix={project}_{WINDOW}{FULL_REFRESH} {JOB}"
    )


with monthly_windows(
    "leadtrackr_project_windows",
    "Each LeadTrackr project's leads created in each month, a task per project.",
):
    BashOperator.partial(
        task_id="load_project_window",
        # One project's key (in `projects`), not the environment's single `api_key`.
        env={**WINDOW_ENV, "TAP_LEADTRACKR_API_KEY": ""},
        append_env=True,
        cwd=PROJECT_DIR,
    ).expand(bash_command=[project_window_command(project) for project in PROJECT_NAMES])

with DAG(
    dag_id="leadtrackr_daily_incremental",
    description="New LeadTrackr leads since the bookmark, and changes within the lookback window.",
    schedule=CronDataIntervalTimetable("0 4 * * *", timezone="UTC"),
    start_date=HISTORY_START,
    # The job's bookmark, not the interval, says what to read: one run catches up.
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "lookback_window_days": Param(
            None,
            type=["null", "integer"],
            minimum=0,
            description="Days before the bookmark read again, this run only (empty: the job's).",
        )
    },
    tags=["leadtrackr", "meltano"],
):
    BashOperator(
        task_id="load_incremental",
        bash_command=f"{LOOKBACK_OVERRIDE}{MELTANO_RUN} {JOB}",
        append_env=True,
        cwd=PROJECT_DIR,
    )

with DAG(
    dag_id="leadtrackr_weekly_reconcile",
    description="Every LeadTrackr lead read again: older ratings, and deleted leads flagged.",
    # Four hours after the daily run, as in meltano.yml: rarely queued behind it in the pool.
    schedule=CronDataIntervalTimetable("0 8 * * 0", timezone="UTC"),
    start_date=HISTORY_START,
    # Every run reads every lead: a missed week needs no run of its own.
    catchup=False,
    max_active_runs=1,
    # A failed or interrupted reconcile flags nothing, so the retries are safe.
    default_args=DEFAULT_ARGS,
    tags=["leadtrackr", "meltano"],
):
    BashOperator(
        task_id="reconcile",
        bash_command=f"{MELTANO_RUN} {RECONCILE_JOB}",
        append_env=True,
        cwd=PROJECT_DIR,
    )
