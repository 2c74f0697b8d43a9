"""orchestrate/airflow: the DAGs load in Airflow, and their tasks render the right commands.

Airflow runs in its own environment (see conftest) and needs no database here: the DAG
files are parsed as Airflow parses them, and the templates rendered for the data interval
of a run triggered at 2026-04-01 00:00 UTC (see airflow_render.py), with the DAG's
params and with TRIGGER_CONF. The rendered window commands then run for real, against
the sandbox.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import typing as t
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from tap_leadtrackr.sandbox import Project, Sandbox
from tests.e2e.conftest import (
    MELTANO,
    ROOT,
    Meltano,
    created_in,
    extractor_in_meltano_yml,
    leads_around_edges,
    query_duckdb,
    sandbox_env,
)
from tests.orchestrate.conftest import clean_env

SCRIPT = Path(__file__).with_name("airflow_render.py")
DAGS = ROOT / "orchestrate" / "airflow" / "dags"
RUN_AFTER = "2026-04-01T00:00:00+00:00"
WINDOW_COMMAND = (
    "meltano --environment=prod run --state-id-suffix=2026-03-01_2026-04-01 --full-refresh "
    "leads-to-warehouse"
)
TRIGGER_CONF = {"full_refresh": False, "lookback_window_days": 0}
"""What a run is triggered with, for the DAGs that have these params."""
MARCH = {
    "TAP_LEADTRACKR_START_DATE": "2026-03-01T00:00:00+00:00",
    "TAP_LEADTRACKR_END_DATE": "2026-04-01T00:00:00+00:00",
}


@pytest.fixture(scope="module")
def dags(airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, t.Any]:
    """What airflow_render.py found in orchestrate/airflow/dags."""
    home = tmp_path_factory.mktemp("airflow-home")
    output = home / "dags.json"
    result = subprocess.run(
        [
            str(airflow_python),
            str(SCRIPT),
            str(DAGS),
            str(output),
            RUN_AFTER,
            json.dumps(TRIGGER_CONF),
        ],
        cwd=home,
        env=clean_env(AIRFLOW_HOME=home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-10000:]
    found: dict[str, t.Any] = json.loads(output.read_text(encoding="utf-8"))
    assert found["import_errors"] == {}
    assert found["warnings"] == {}
    return found["dags"]


def test_the_monthly_dag_catches_up_month_by_month_with_the_interval_as_the_window(
    dags: dict[str, t.Any],
) -> None:
    dag = dags["leadtrackr_monthly_windows"]
    # A data-interval timetable: a cron string alone would give runs without an interval.
    assert (dag["timetable"], dag["summary"]) == ("CronDataIntervalTimetable", "0 0 1 * *")
    assert dag["catchup"] is True
    assert dag["first_interval"] == ["2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"]
    assert dag["interval"] == ["2026-03-01T00:00:00+00:00", RUN_AFTER]
    # One meltano run at a time: the pool (one slot) and one active run.
    assert dag["max_active_runs"] == 1
    (task,) = dag["tasks"].values()
    assert task["operator"] == "BashOperator"
    assert task["pool"] == "leadtrackr_meltano"
    assert task["append_env"] is True
    assert task["rendered"] == {"bash_command": WINDOW_COMMAND, "env": MARCH, "cwd": str(ROOT)}
    # Triggered with {"full_refresh": false}, it resumes from the window's bookmark.
    resumed = task["rendered_triggered"]
    assert resumed["bash_command"] == WINDOW_COMMAND.replace(" --full-refresh", "")
    assert resumed["env"] == MARCH


def test_the_daily_dag_runs_the_job_from_its_bookmark_with_the_jobs_own_lookback(
    dags: dict[str, t.Any],
) -> None:
    dag = dags["leadtrackr_daily_incremental"]
    assert (dag["timetable"], dag["summary"]) == ("CronDataIntervalTimetable", "0 4 * * *")
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["params"] == {"lookback_window_days": None}
    (task,) = dag["tasks"].values()
    assert task["pool"] == "leadtrackr_meltano"
    assert task["append_env"] is True
    # No lookback of its own: meltano.yml's 30 days (or the worker's variable) apply.
    assert task["rendered"] == {
        "bash_command": "meltano --environment=prod run leads-to-warehouse",
        "env": None,
        "cwd": str(ROOT),
    }
    # Triggered with {"lookback_window_days": 0}, that run reads no day again (0 is a value).
    assert task["rendered_triggered"]["bash_command"] == (
        "TAP_LEADTRACKR_LOOKBACK_WINDOW_DAYS=0 meltano --environment=prod run leads-to-warehouse"
    )


def test_the_weekly_dag_runs_the_reconcile_job_in_the_pool_every_dag_takes(
    dags: dict[str, t.Any],
) -> None:
    dag = dags["leadtrackr_weekly_reconcile"]
    # Sundays, four hours after the daily run; every run reads every lead, so no catchup.
    assert (dag["timetable"], dag["summary"]) == ("CronDataIntervalTimetable", "0 8 * * 0")
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["params"] == {}
    (task,) = dag["tasks"].values()
    assert task["operator"] == "BashOperator"
    assert task["append_env"] is True
    assert task["rendered"] == {
        "bash_command": "meltano --environment=prod run reconcile-leads-to-warehouse",
        "env": None,
        "cwd": str(ROOT),
    }
    # That job of meltano.yml reads with the extractor that sets `reconcile`.
    jobs = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))["jobs"]
    (job,) = [job for job in jobs if job["name"] == "reconcile-leads-to-warehouse"]
    assert job["tasks"][0] == "tap-leadtrackr--reconcile target-duckdb"
    assert extractor_in_meltano_yml("tap-leadtrackr--reconcile")["config"] == {"reconcile": True}
    # One pool (one slot) for every task of every DAG: one `meltano run` at a time.
    pools = {(name, task["pool"]) for name, dag in dags.items() for task in dag["tasks"].values()}
    assert pools == {
        (name, "leadtrackr_meltano")
        for name in (
            "leadtrackr_monthly_windows",
            "leadtrackr_project_windows",
            "leadtrackr_daily_incremental",
            "leadtrackr_weekly_reconcile",
        )
    }


def test_the_rendered_window_command_loads_exactly_that_month(
    dags: dict[str, t.Any], meltano: Meltano, tmp_path: Path
) -> None:
    rendered = dags["leadtrackr_monthly_windows"]["tasks"]["load_window"]["rendered"]
    command = shlex.split(rendered["bash_command"])
    assert command[0] == "meltano"
    # The project's Meltano, and an empty env file instead of a developer's `.env`.
    command[:1] = [str(MELTANO), "--env-file", str(meltano.env_file)]
    edges = [datetime(2026, month, 1, tzinfo=timezone.utc) for month in (2, 3, 4, 5)]
    warehouse = tmp_path / "warehouse.duckdb"
    with Sandbox(Project(leads_around_edges(edges, regular=200, seed=81))) as sandbox:
        env = sandbox_env(sandbox, TARGET_DUCKDB_FILEPATH=warehouse, **rendered["env"])
        result = subprocess.run(
            command,
            cwd=rendered["cwd"],
            env={**meltano.base_env, **env},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-10000:]
        leads = sandbox.project.leads

    ids = [row[0] for row in query_duckdb(warehouse, "select id from leadtrackr.leads")]
    assert len(ids) == len(set(ids))
    assert set(ids) == created_in(leads, edges[1], edges[2])
    assert meltano("state", "list").stdout.split() == [
        "prod:tap-leadtrackr-to-target-duckdb:2026-03-01_2026-04-01"
    ]


PROJECT_COMMAND = (
    'TAP_LEADTRACKR_PROJECTS="$(python3 orchestrate/one_project.py {project})" meltano '
    "--environment=prod run --state-id-suffix={project}_2026-03-01_2026-04-01 --full-refresh "
    "leads-to-warehouse"
)


def test_the_projects_dag_maps_a_task_over_the_projects_each_window_with_its_own_state(
    dags: dict[str, t.Any], meltano: Meltano, tmp_path: Path
) -> None:
    dag = dags["leadtrackr_project_windows"]
    assert (dag["timetable"], dag["summary"]) == ("CronDataIntervalTimetable", "0 0 1 * *")
    assert dag["catchup"] is True
    (task,) = dag["tasks"].values()
    assert task["operator"] == "BashOperator"
    assert task["mapped"] == "bash_command"
    assert task["pool"] == "leadtrackr_meltano"
    assert task["append_env"] is True
    project_env = {**MARCH, "TAP_LEADTRACKR_API_KEY": ""}
    assert task["rendered"] == [
        {
            "bash_command": PROJECT_COMMAND.format(project=project),
            "env": project_env,
            "cwd": str(ROOT),
        }
        for project in ("acme", "globex")
    ]
    resumed = [each["bash_command"] for each in task["rendered_triggered"]]
    assert resumed == [
        PROJECT_COMMAND.format(project=project).replace(" --full-refresh", "")
        for project in ("acme", "globex")
    ]

    # Both mapped commands, as two workers would run them: each loads its project's March.
    edges = [datetime(2026, month, 1, tzinfo=timezone.utc) for month in (2, 3, 4, 5)]
    keys = {"acme": "lt_acme_7c1", "globex": "lt_globex_9e4"}
    warehouse = tmp_path / "warehouse.duckdb"
    projects = {
        keys[name]: Project(leads_around_edges(edges, regular=120, seed=seed))
        for name, seed in (("acme", 91), ("globex", 92))
    }
    listed = json.dumps([{"name": name, "api_key": key} for name, key in keys.items()])
    with Sandbox(Project(), projects=projects) as sandbox:
        for rendered in task["rendered"]:
            command = rendered["bash_command"].replace(
                " meltano ", f" {shlex.quote(str(MELTANO))} --env-file {meltano.env_file} "
            )
            env = {
                **meltano.base_env,
                **rendered["env"],
                "TAP_LEADTRACKR_API_URL": sandbox.url,
                "TAP_LEADTRACKR_PROJECTS": listed,
                "TARGET_DUCKDB_FILEPATH": str(warehouse),
            }
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=rendered["cwd"],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, result.stderr[-10000:]
            assert all(key not in result.stdout + result.stderr for key in keys.values())

    for name, key in keys.items():
        rows = query_duckdb(warehouse, "select id from leadtrackr.leads where project = ?", name)
        ids = [row[0] for row in rows]
        assert len(ids) == len(set(ids))
        assert set(ids) == created_in(projects[key].leads, edges[1], edges[2])
    assert sorted(meltano("state", "list").stdout.split()) == [
        f"prod:tap-leadtrackr-to-target-duckdb:{name}_2026-03-01_2026-04-01" for name in keys
    ]


def test_one_project_narrows_the_list_and_names_a_missing_project_without_keys() -> None:
    listed = json.dumps([{"name": "acme", "api_key": "k-a"}, {"name": "globex", "api_key": "k-g"}])
    script = [sys.executable, str(ROOT / "orchestrate" / "one_project.py")]
    env = clean_env(TAP_LEADTRACKR_PROJECTS=listed)

    found = subprocess.run([*script, "globex"], env=env, capture_output=True, text=True, check=True)
    missing = subprocess.run([*script, "initech"], env=env, capture_output=True, text=True)

    assert json.loads(found.stdout) == [{"name": "globex", "api_key": "k-g"}]
    assert missing.returncode == 1
    assert "initech" in missing.stderr
    assert "k-a" not in missing.stderr + missing.stdout
