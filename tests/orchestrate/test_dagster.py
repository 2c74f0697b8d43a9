"""orchestrate/dagster: two monthly partitions materialised in process, then the daily job.

Dagster runs in its own environment (see conftest); it starts the project's Meltano, which
loads the sandbox's leads into DuckDB.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from tap_leadtrackr.sandbox import Project, Sandbox
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


def test_two_monthly_partitions_load_their_months_and_the_daily_job_the_rest(
    meltano: Meltano, dagster_python: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"

    def dagster(*args: str) -> list[dict[str, object]]:
        result = subprocess.run(
            [str(dagster_python), str(SCRIPT), *args],
            cwd=tmp_path,
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
        "leadtrackr_weekly_full_refresh": ["leadtrackr_daily_incremental", "0 5 * * 0", "UTC"],
        "leadtrackr_monthly_windows_schedule": ["leadtrackr_monthly_windows", "0 3 1 * *", "UTC"],
    }
    # One pool for both, so one slot keeps them from running at once.
    assert daily["pools"] == ["leadtrackr_meltano", "leadtrackr_meltano"]

    assert warehouse_ids(warehouse) == sorted(lead["id"] for lead in leads)
    assert bookmark(meltano, STATE_ID) == max(lead["createdAt"] for lead in leads)
    for state_id, end in windows.items():
        assert bookmark(meltano, state_id) == format_timestamp(end - ONE_MILLISECOND)
