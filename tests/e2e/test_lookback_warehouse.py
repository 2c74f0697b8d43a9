"""A lookback window through Meltano into DuckDB: late status and price changes land.

Rating a lead in LeadTrackr changes its status and price, never its `createdAt`, so an
incremental run that starts at the bookmark never sees it. With `lookback_window_days`
the run starts that many days earlier and the loader upserts the leads it reads again.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.timestamps import ONE_MILLISECOND, format_timestamp, parse_timestamp
from tests.e2e.conftest import Meltano, lead_requests, query_duckdb, sandbox_env

LEADS = 1500
LOOKBACK_DAYS = 7
PAGE_SIZE = 100


def test_a_change_inside_the_lookback_window_reaches_the_warehouse_and_one_outside_does_not(
    meltano: Meltano, tmp_path: Path
) -> None:
    leads = sorted(generate_leads(LEADS, seed=51), key=lambda lead: lead["createdAt"])
    bookmark = leads[-1]["createdAt"]
    edge = parse_timestamp(bookmark) - timedelta(days=LOOKBACK_DAYS)
    # The two leads either side of the window's start, moved onto it: the first one
    # exactly at the start (inside: the start is inclusive), the other 1 ms before.
    first_inside = next(
        i for i, lead in enumerate(leads) if parse_timestamp(lead["createdAt"]) >= edge
    )
    inside, outside = leads[first_inside], leads[first_inside - 1]
    inside["createdAt"] = format_timestamp(edge)
    outside["createdAt"] = format_timestamp(edge - ONE_MILLISECOND)
    old_outside = (outside["status"], outside["price"])

    warehouse = tmp_path / "warehouse.duckdb"
    with Sandbox(Project(leads)) as sandbox:
        env = sandbox_env(sandbox, TARGET_DUCKDB_FILEPATH=warehouse)
        meltano("run", "leads-to-warehouse", env=env)
        assert meltano.state()["bookmarks"]["leads"]["replication_key_value"] == bookmark
        (first_load,) = query_duckdb(
            warehouse, "select max(_sdc_batched_at) from leadtrackr.leads"
        )[0]

        sandbox.project.update_lead(inside["id"], status="Sale", price=149_900)
        sandbox.project.update_lead(outside["id"], status="Offerte", price=99_900)
        added = sandbox.project.add_leads(25)
        sandbox.clear_requests()
        meltano(  # the job's load alone: this run checks the rows, not the models
            "run",
            "tap-leadtrackr",
            "target-duckdb",
            env={**env, "TAP_LEADTRACKR_LOOKBACK_WINDOW_DAYS": str(LOOKBACK_DAYS)},
        )
        requests = lead_requests(sandbox)

    def row(lead_id: int) -> list[tuple[object, ...]]:
        return query_duckdb(
            warehouse, "select status, price from leadtrackr.leads where id = ?", lead_id
        )

    assert row(inside["id"]) == [("Sale", 149_900)]
    assert row(outside["id"]) == [old_outside]
    total = LEADS + len(added)
    counts = query_duckdb(warehouse, "select count(*), count(distinct id) from leadtrackr.leads")
    assert counts == [(total, total)]

    # The run read exactly the leads created from bookmark - 7 days on, and the new ones.
    assert requests[0].params["createdAt[gte]"] == format_timestamp(edge)
    reread = {lead["id"] for lead in leads if parse_timestamp(lead["createdAt"]) >= edge}
    rewritten = query_duckdb(
        warehouse, "select id from leadtrackr.leads where _sdc_batched_at > ?", first_load
    )
    assert {lead_id for (lead_id,) in rewritten} == reread | {lead["id"] for lead in added}
    # What the lookback costs: one request per page of the leads it reads again.
    assert len(requests) == math.ceil((len(reread) + len(added)) / PAGE_SIZE)
    # The bookmark still moves on to the newest lead.
    newest = max(lead["createdAt"] for lead in added)
    assert meltano.state()["bookmarks"]["leads"]["replication_key_value"] == newest
