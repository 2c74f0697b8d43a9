"""Sandbox -> `meltano run leads-to-warehouse` -> DuckDB, as the project's meltano.yml has it."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.timestamps import format_timestamp, parse_timestamp
from tests.e2e.agency import run_agency_scenario
from tests.e2e.conftest import MAIN_JOB_LOOKBACK, Meltano, lead_requests, query_duckdb, sandbox_env
from tests.e2e.test_touchpoints_warehouse import TOUCHPOINT_ROWS, expected_touchpoints

LEADS = 2500
BATCH_ROWS = 1000
"""Rows per loader batch: several batches per stream and run, since target-duckdb 0.8.0 on
its own loses the first row of each one with current DuckDB."""


def warehouse_ids(path: Path) -> list[int]:
    return [row[0] for row in query_duckdb(path, "select id from leadtrackr.leads order by id")]


def assert_touchpoints_are(path: Path, expected: set[tuple[object, ...]]) -> None:
    """Each session of each lead once: several batches of them, upserted on the key."""
    assert len(expected) > 2 * BATCH_ROWS
    keys = query_duckdb(
        path,
        "select count(*), count(distinct (lead_id, position)) from leadtrackr.lead_touchpoints",
    )
    assert keys == [(len(expected), len(expected))]
    assert set(query_duckdb(path, TOUCHPOINT_ROWS)) == expected


def test_warehouse_holds_each_sandbox_lead_once_through_incremental_and_full_refresh_runs(
    meltano: Meltano, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with Sandbox(Project(generate_leads(LEADS, seed=11))) as sandbox:
        env = sandbox_env(
            sandbox, TARGET_DUCKDB_FILEPATH=warehouse, TARGET_DUCKDB_BATCH_SIZE_ROWS=str(BATCH_ROWS)
        )
        meltano("run", "leads-to-warehouse", env=env)

        leads = sandbox.project.leads
        assert warehouse_ids(warehouse) == sorted(lead["id"] for lead in leads)
        assert_touchpoints_are(warehouse, expected_touchpoints(leads))
        newest = max(lead["createdAt"] for lead in leads)
        bookmark = meltano.state()["bookmarks"]["leads"]["replication_key_value"]
        assert bookmark == newest

        # Nested objects are JSON columns: their keys are queryable.
        gclids = dict(
            query_duckdb(
                warehouse,
                "select id, attributiondata->>'gclid' from leadtrackr.leads "
                "where coalesce(attributiondata->>'gclid', '') <> ''",
            )
        )
        expected_gclids = {
            lead["id"]: lead["attributionData"]["gclid"]
            for lead in leads
            if (lead["attributionData"] or {}).get("gclid")
        }
        assert gclids == expected_gclids
        assert len(gclids) > LEADS // 5

        sandbox.clear_requests()
        added = sandbox.project.add_leads(40)
        # The job's load alone from here: these runs check the rows, not the models.
        meltano("run", "tap-leadtrackr", "target-duckdb", env=env)

        assert warehouse_ids(warehouse) == sorted(lead["id"] for lead in sandbox.project.leads)
        assert len(warehouse_ids(warehouse)) == LEADS + len(added)
        # The second run asked only for the leads of the main job's lookback window before
        # the bookmark, and the new ones: two pages, not 26.
        requests = lead_requests(sandbox)
        window_start = format_timestamp(parse_timestamp(bookmark) - MAIN_JOB_LOOKBACK)
        assert requests[0].params["createdAt[gte]"] == window_start
        reread = [lead for lead in leads if lead["createdAt"] >= window_start]
        assert len(requests) == math.ceil((len(reread) + len(added)) / 100) == 2
        new_bookmark = meltano.state()["bookmarks"]["leads"]["replication_key_value"]
        assert new_bookmark == max(lead["createdAt"] for lead in added)

        # Rating a lead changes its status and price, never its createdAt: only a full
        # refresh (or a lookback window) reads it again, and it updates the row in place.
        sandbox.project.update_lead(7, status="Sale", price=125_000)
        meltano("run", "--full-refresh", "tap-leadtrackr", "target-duckdb", env=env)

        leads = sandbox.project.leads

    counts = query_duckdb(warehouse, "select count(*), count(distinct id) from leadtrackr.leads")
    assert counts == [(LEADS + len(added), LEADS + len(added))]
    assert_touchpoints_are(warehouse, expected_touchpoints(leads))
    changed = query_duckdb(warehouse, "select status, price from leadtrackr.leads where id = 7")
    assert changed == [("Sale", 125_000)]


def test_three_projects_land_side_by_side_and_a_lapsed_one_fails_the_run_alone(
    meltano: Meltano, tmp_path: Path
) -> None:
    warehouse = tmp_path / "agency.duckdb"

    def rows() -> Counter[str]:
        if not warehouse.exists():
            return Counter()
        sql = "select project, count(*) from leadtrackr.leads group by 1"
        return Counter(dict(query_duckdb(warehouse, sql)))

    def distinct_ids() -> int:
        return query_duckdb(warehouse, "select count(distinct id) from leadtrackr.leads")[0][0]

    env = {"TARGET_DUCKDB_FILEPATH": str(warehouse)}
    run_agency_scenario(meltano, env, rows, distinct_ids, "leads-to-warehouse")
