"""orchestrate/dagster: monthly partitions materialised in process, the daily and weekly jobs.

Dagster runs in its own environment (see conftest); it starts the project's Meltano, which
loads the sandbox's leads into DuckDB.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from tap_leadtrackr.sandbox import Aging, Project, Sandbox, age, generate_leads
from tap_leadtrackr.timestamps import ONE_MILLISECOND, format_timestamp
from tests.e2e.conftest import (
    MELTANO,
    Meltano,
    created_in,
    leads_around_edges,
    query_duckdb,
    sandbox_env,
)

SCRIPT = Path(__file__).with_name("dagster_run.py")
EDGES = [datetime(2026, month, 1, tzinfo=timezone.utc) for month in (1, 2, 3, 4, 5)]
FEBRUARY, MARCH, APRIL = EDGES[1], EDGES[2], EDGES[3]
STATE_ID = "prod:tap-leadtrackr-to-target-duckdb"
"""The definitions run the `prod` environment; the sandbox comes in through variables."""


def warehouse_ids(path: Path) -> list[int]:
    return [row[0] for row in query_duckdb(path, "select id from leadtrackr.leads order by id")]


def bookmark(meltano: Meltano, state_id: str) -> str:
    return meltano.state(state_id)["bookmarks"]["leads"]["replication_key_value"]


def run_dagster(
    dagster_python: Path, meltano: Meltano, cwd: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Run dagster_run.py with these arguments; its Meltano is the tests' one."""
    result = subprocess.run(
        [str(dagster_python), str(SCRIPT), *args],
        cwd=cwd,
        env={
            **meltano.base_env,
            **env,
            "LEADTRACKR_TEST_MELTANO": json.dumps(
                [str(MELTANO), "--env-file", str(meltano.env_file)]
            ),
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-10000:]
    return result


def test_two_monthly_partitions_load_their_months_and_the_daily_job_the_rest(
    meltano: Meltano, dagster_python: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"

    def dagster(*args: str) -> list[dict[str, object]]:
        result = run_dagster(dagster_python, meltano, tmp_path, env, *args)
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    with Sandbox(Project(leads_around_edges(EDGES, regular=300, seed=71))) as sandbox:
        leads = sandbox.project.leads
        env = sandbox_env(sandbox, TARGET_DUCKDB_FILEPATH=warehouse)
        runs = dagster("materialize", "2026-02-01", "2026-03-01")

        assert [(run["success"], run["window"]) for run in runs] == [
            (True, "[2026-02-01, 2026-03-01)"),
            (True, "[2026-03-01, 2026-04-01)"),
        ]
        # Exactly February and March: from the lead at midnight on 1 February to the one
        # 1 ms before April; not the one 1 ms before February, nor those at midnight on 1 April.
        assert set(warehouse_ids(warehouse)) == created_in(leads, FEBRUARY, APRIL)
        assert len(warehouse_ids(warehouse)) == len(created_in(leads, FEBRUARY, APRIL))
        windows = {
            f"{STATE_ID}:2026-02-01_2026-03-01": MARCH,
            f"{STATE_ID}:2026-03-01_2026-04-01": APRIL,
        }
        assert sorted(meltano("state", "list").stdout.split()) == sorted(windows)
        for state_id, end in windows.items():
            assert bookmark(meltano, state_id) == format_timestamp(end - ONE_MILLISECOND)

        # The daily job has a bookmark of its own: its first run reads every lead.
        (daily,) = dagster("daily")
        assert daily["success"]

    assert daily["schedules"] == {
        "leadtrackr_daily_incremental_schedule": [
            "leadtrackr_daily_incremental",
            "0 4 * * *",
            "UTC",
        ],
        # Sundays, four hours after the daily run.
        "leadtrackr_weekly_reconcile_schedule": ["leadtrackr_weekly_reconcile", "0 8 * * 0", "UTC"],
        "leadtrackr_monthly_windows_schedule": ["leadtrackr_monthly_windows", "0 3 1 * *", "UTC"],
    }
    # One pool for every run of Meltano, so one slot keeps them from running at once.
    assert daily["pools"] == {
        "leadtrackr__leads": "leadtrackr_meltano",
        "leadtrackr__project_leads": "leadtrackr_meltano",
        "run_incremental": "leadtrackr_meltano",
        "run_reconcile": "leadtrackr_meltano",
    }

    assert warehouse_ids(warehouse) == sorted(lead["id"] for lead in leads)
    assert bookmark(meltano, STATE_ID) == max(lead["createdAt"] for lead in leads)
    for state_id, end in windows.items():
        assert bookmark(meltano, state_id) == format_timestamp(end - ONE_MILLISECOND)


def test_project_and_month_partitions_load_each_projects_month_under_its_own_state(
    meltano: Meltano, dagster_python: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    keys = {"acme": "lt_acme_5d2", "globex": "lt_globex_8f6"}
    projects = {
        keys[name]: Project(leads_around_edges(EDGES, regular=150, seed=seed))
        for name, seed in (("acme", 72), ("globex", 73))
    }
    listed = json.dumps([{"name": name, "api_key": key} for name, key in keys.items()])
    partitions = ["2026-02-01|acme", "2026-03-01|acme", "2026-03-01|globex"]
    with Sandbox(Project(), projects=projects) as sandbox:
        env = {
            "TAP_LEADTRACKR_API_URL": sandbox.url,
            "TAP_LEADTRACKR_PROJECTS": listed,
            "LEADTRACKR_PROJECT_NAMES": "acme,globex",
            "TARGET_DUCKDB_FILEPATH": str(warehouse),
        }
        result = run_dagster(
            dagster_python, meltano, tmp_path, env, "materialize_projects", *partitions
        )
        # The step's log shows the command and the window, never a key.
        assert all(key not in result.stdout + result.stderr for key in keys.values())

    runs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(run["success"], run["project"], run["window"]) for run in runs] == [
        (True, "acme", "[2026-02-01, 2026-03-01)"),
        (True, "acme", "[2026-03-01, 2026-04-01)"),
        (True, "globex", "[2026-03-01, 2026-04-01)"),
    ]

    def ids(name: str) -> list[int]:
        rows = query_duckdb(warehouse, "select id from leadtrackr.leads where project = ?", name)
        return [row[0] for row in rows]

    acme, globex = projects[keys["acme"]].leads, projects[keys["globex"]].leads
    assert sorted(ids("acme")) == sorted(created_in(acme, FEBRUARY, APRIL))
    assert sorted(ids("globex")) == sorted(created_in(globex, MARCH, APRIL))
    states = {
        f"{STATE_ID}:acme_2026-02-01_2026-03-01",
        f"{STATE_ID}:acme_2026-03-01_2026-04-01",
        f"{STATE_ID}:globex_2026-03-01_2026-04-01",
    }
    assert set(meltano("state", "list").stdout.split()) == states
    for state_id in states:
        (partition,) = meltano.state(state_id)["bookmarks"]["leads"]["partitions"]
        assert partition["context"]["project"] == state_id.split(":")[-1].split("_")[0]


#: Ratings of the last 28 days (inside the daily job's 30-day lookback) and of leads older
#: than 60 days, deletions of any age, new leads.
AGING = Aging(new_leads=10, recent_ratings=6, old_ratings=8, deletions=6, recent_days=28)
RECONCILE_STATE_ID = "prod:tap-leadtrackr--reconcile-to-target-duckdb"


def loaded(path: Path) -> dict[int, tuple[object, ...]]:
    """Each lead's status, price and whether it is flagged deleted, by id."""
    rows = query_duckdb(
        path, "select id, status, price, _sdc_deleted_at is not null from leadtrackr.leads"
    )
    return {
        id_: (status, None if price is None else int(price), flagged)
        for id_, status, price, flagged in rows
    }


def live(lead: dict[str, object]) -> tuple[object, ...]:
    return (lead["status"], lead["price"], False)


def test_the_daily_job_brings_recent_ratings_and_the_weekly_reconcile_old_ones_and_deletions(
    meltano: Meltano, dagster_python: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    project = Project(generate_leads(1000, seed=74))

    def dagster(*args: str) -> None:
        result = run_dagster(dagster_python, meltano, tmp_path, env, *args)
        (run,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert run["success"]

    with Sandbox(project) as sandbox:
        env = sandbox_env(sandbox, TARGET_DUCKDB_FILEPATH=warehouse)
        dagster("daily")
        aged = age(project, AGING, seed=1)
        before = loaded(warehouse)

        # The job's own 30 days: ratings of the last 28 days come, older ones and deletions not.
        dagster("daily")
        after_daily = loaded(warehouse)
        leads = {lead["id"]: lead for lead in project.leads}
        assert aged.rated_recent
        assert {i: after_daily[i] for i in aged.rated_recent} == {
            i: live(leads[i]) for i in aged.rated_recent
        }
        assert aged.rated_old
        assert aged.deleted
        unchanged = aged.rated_old + aged.deleted
        assert {i: after_daily[i] for i in unchanged} == {i: before[i] for i in unchanged}
        assert set(aged.added) <= set(after_daily)
        daily_state = meltano.state(STATE_ID)

        # The weekly job: every rating, and exactly the leads deleted since, flagged.
        dagster("reconcile")
        after_reconcile = loaded(warehouse)
        assert {i for i, (*_, flagged) in after_reconcile.items() if flagged} == set(aged.deleted)
        assert {i: v for i, v in after_reconcile.items() if not v[-1]} == {
            i: live(lead) for i, lead in leads.items()
        }
        # In a state of its own: the daily job's bookmark has not moved.
        assert meltano.state(STATE_ID) == daily_state
        assert RECONCILE_STATE_ID in meltano("state", "list").stdout.split()

        # A run's own lookback wins over the job's: with 0, no rating before the bookmark.
        bookmark = daily_state["bookmarks"]["leads"]["replication_key_value"]
        again = age(project, Aging(new_leads=5, old_ratings=0, deletions=0, recent_days=28), seed=2)
        leads = {lead["id"]: lead for lead in project.leads}
        before_bookmark = [i for i in again.rated_recent if leads[i]["createdAt"] < bookmark]
        assert before_bookmark
        dagster("daily", "0")
        final = loaded(warehouse)
        assert {i: final[i] for i in before_bookmark} == {
            i: after_reconcile[i] for i in before_bookmark
        }
        assert {i: final[i] for i in again.added} == {i: live(leads[i]) for i in again.added}
